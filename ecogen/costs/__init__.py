"""Modelled costs: what a round would take in time and energy on the devices and links a
cluster really has (``costs`` params), from FLOPs counted on the actual model.

Every figure here is *modelled*, never measured on this host: CodeCarbon measures the host, and
the names of the figures this package returns start with ``modelled_`` so the two never mix.
"""
