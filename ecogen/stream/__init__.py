"""A pipeline that keeps learning: data increments, drift, and the gate before promotion.

Pure functions over arrays, tensors and scores; the registry (champion aliases) lives in
:mod:`ecogen.tracking.registry` and the glue that runs an increment in :mod:`ecogen.pipeline`.
"""
