"""IDX reading/writing: roundtrips, and broken files rejected with a clear error."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from ecogen.data.idx import read_idx, write_idx


@pytest.mark.parametrize("name", ["a-idx3-ubyte.gz", "a-idx3-ubyte"])
@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
def test_roundtrip(tmp_path, name, dtype):
    array = (np.arange(2 * 3 * 4) - 5).reshape(2, 3, 4).astype(dtype)
    write_idx(array, tmp_path / name)
    back = read_idx(tmp_path / name)
    assert back.dtype == np.dtype(dtype) and back.shape == (2, 3, 4)
    np.testing.assert_array_equal(back, array)


def test_reads_the_standard_header(tmp_path):
    # Labels file as published: magic 0x00000801, count 3, then the bytes.
    path = tmp_path / "labels.gz"
    with gzip.open(path, "wb") as f:
        f.write(bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 0, 9]))
    np.testing.assert_array_equal(read_idx(path), np.array([7, 0, 9], dtype=np.uint8))


@pytest.mark.parametrize("header", [b"\x01\x00\x08\x01", b"\x00\x00\x42\x01", b"PK\x03\x04", b""])
def test_bad_magic(tmp_path, header):
    path = tmp_path / "bad"
    path.write_bytes(header + b"\x00\x00\x00\x01\x05")
    with pytest.raises(ValueError, match="magic"):
        read_idx(path)


def test_truncated_file(tmp_path):
    path = tmp_path / "short"
    write_idx(np.zeros((4, 5), dtype=np.uint8), path)
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(ValueError, match="header says"):
        read_idx(path)
