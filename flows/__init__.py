"""Prefect flows: thin tasks (one ecogen call each), one small flow per stage, a parent flow per pipeline."""
