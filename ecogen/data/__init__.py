"""Data: sources, domains, partitions and the prepared layout."""
