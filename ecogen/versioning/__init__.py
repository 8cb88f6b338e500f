"""DVC for EcoGen: the only package that imports it.  The prepared data is versioned here."""

from ecogen.versioning.dvc_data import (
    DataVersionError,
    data_version_from_lock,
    ensure_dvc_repo,
    hash_data,
    version_data,
)
from ecogen.versioning.shown import show_last_run

__all__ = [
    "DataVersionError",
    "data_version_from_lock",
    "ensure_dvc_repo",
    "hash_data",
    "show_last_run",
    "version_data",
]
