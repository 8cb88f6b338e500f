"""Reader and writer for the IDX format of (Fashion-)MNIST, with numpy only.

Layout: two zero bytes, a type code, the number of dimensions, each dimension as a big-endian
uint32, then the values in C order, big-endian.  A file whose header disagrees with its size is
rejected rather than reshaped, so a truncated download fails loudly here and not in training.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path
from typing import IO

import numpy as np

from ecogen.data.errors import DataError, DataNotFound

_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODES = {dtype: code for code, dtype in _DTYPES.items()}  # keys are big-endian (or 1-byte)


def _open(path: Path, mode: str) -> IO[bytes]:
    return gzip.open(path, mode) if path.suffix == ".gz" else open(path, mode)  # type: ignore[return-value]


def read_idx(path: Path | str) -> np.ndarray:
    """Parse one IDX file (``.gz`` or plain) into an array in native byte order."""
    path = Path(path)
    try:
        with _open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise DataNotFound(f"{path}: no such file") from None
    except (EOFError, gzip.BadGzipFile, zlib.error, OSError) as exc:
        what = "cut short" if isinstance(exc, EOFError) else f"not readable ({type(exc).__name__}: {exc})"
        raise DataError(f"{path}: the compressed file is {what}; fetch it again") from exc
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _DTYPES:
        raise DataError(
            f"{path}: not an IDX file (bad magic number {raw[:4].hex() or 'empty'}); fetch it again"
        )
    dtype, ndim = _DTYPES[raw[2]], raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: IDX header truncated; fetch the file again")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) != expected:
        raise DataError(
            f"{path}: IDX header says {expected} bytes for shape {shape}, file has {len(raw)}; fetch it again"
        )
    data = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    return data.astype(dtype.newbyteorder("="))


def write_idx(array: np.ndarray, path: Path | str) -> None:
    """Write ``array`` as IDX (gzip-compressed where ``path`` ends in ``.gz``)."""
    path = Path(path)
    big = array.dtype.newbyteorder(">")  # a no-op for 1-byte types
    if big not in _CODES:
        raise ValueError(f"IDX cannot store dtype {array.dtype}")
    header = bytes([0, 0, _CODES[big], array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    with _open(path, "wb") as f:
        f.write(header + np.ascontiguousarray(array, dtype=big).tobytes())
