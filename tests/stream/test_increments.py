"""Cutting a split into increments, and the stream settings' validation."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from ecogen.config.params import Params, StreamParams
from ecogen.stream.increments import StreamState, bounds


def test_bounds_cut_contiguous_near_equal_parts():
    assert bounds(10, 3) == [0, 4, 7, 10]
    assert bounds(6, 6) == [0, 1, 2, 3, 4, 5, 6]
    with pytest.raises(ValueError, match="cannot cut 2 rows into 3"):
        bounds(2, 3)


def test_state_rows_only_of_increments_taken_in():
    state = StreamState(increments=4, taken=2, shift_at=1, shift="invert", cluster=[0, 5, 10], edge=[0, 2, 4])
    assert state.newest == 1 and state.rows(state.cluster, 1) == slice(5, 10)
    assert not state.shifted(0) and state.shifted(1)
    with pytest.raises(ValueError, match="increment 2 is not in the data"):
        state.rows(state.cluster, 2)


def test_stream_settings_are_validated():
    assert StreamParams().increments is None  # not a stream unless asked
    with pytest.raises(ValidationError, match="need stream.increments"):
        StreamParams(increment=1)
    with pytest.raises(ValidationError, match=r"stream.shift_at \(6\) must be below"):
        StreamParams(increments=6, shift_at=6)
    with pytest.raises(ValidationError, match="greater than or equal to 2"):
        StreamParams(increments=1)
    with pytest.raises(ValidationError, match="retune_epochs"):
        StreamParams(increments=2, retune_epochs=-1)
    with pytest.raises(ValidationError, match="each needs at least one image per increment"):
        Params.model_validate({"data": {"edge_labelled": 3}, "stream": {"increments": 4}})


def test_warm_rounds_after_a_drift():
    s = StreamParams(increments=3, warm_rounds=4, drift_rounds=12)
    assert s.warm_rounds_for(drifted=False) == 4 and s.warm_rounds_for(drifted=True) == 12
    assert StreamParams(increments=3, warm_rounds=4).warm_rounds_for(drifted=True) == 4
    with pytest.raises(ValidationError, match="drift_rounds"):
        StreamParams(increments=2, drift_rounds=0)
