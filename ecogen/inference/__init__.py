"""SL inference through the split chain."""
