"""Data-free knowledge relay: the edges' domain knowledge back into the cloud's FM."""
