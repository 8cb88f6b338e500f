"""Prefect flows: thin tasks (one ecogen call each), one small flow per stage, a parent flow per pipeline."""

from ecogen.runtime.environment import quiet_defaults

# a work pool's worker imports the flows without going through the CLI, which sets these first.
# setdefault only (what the user exported wins); MKL's code path takes effect only if no tensor op
# has run yet in the process
quiet_defaults()
