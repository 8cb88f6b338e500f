"""Prefect flows: thin tasks (one ecogen call each), one small flow per stage, a parent flow per pipeline."""

from ecogen.environment import quiet_defaults

# a work pool's worker imports the flows without going through the CLI, which sets these first
quiet_defaults()
