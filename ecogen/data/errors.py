"""Problems with the user's data files, each described in one line that names the file."""

from __future__ import annotations


class DataError(ValueError):
    """A data file or folder that cannot be used as it is: the message names it and says what to do."""


class DataNotFound(DataError, FileNotFoundError):
    """A data file or folder that is not there."""
