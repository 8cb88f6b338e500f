"""The comparison report: pure aggregation, target checks, Markdown/CSV/JSON tables and figures.

Nothing here reads MLflow; :mod:`ecogen.tracking.report` turns runs into :class:`Trial` records
and hands them over, so every number in the report can be checked from literal inputs in tests.
"""
