"""Federated learning: aggregation maths and the HFSL round loop."""
