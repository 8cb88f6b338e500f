"""Progress lines: about ten a stage, the last always, each with the time left."""

from __future__ import annotations

import logging

import pytest

from ecogen.progress import Step
from ecogen.terminal import ProgressLines, duration


def test_duration_reads_like_a_clock() -> None:
    assert [duration(s) for s in (0.4, 42, 185, 3725)] == ["0s", "42s", "3m05s", "1h02m"]


def test_a_long_stage_prints_about_ten_lines_with_the_time_left(caplog: pytest.LogCaptureFixture) -> None:
    lines = ProgressLines("finetune", start=0.0)
    with caplog.at_level(logging.INFO, logger="ecogen.progress"):
        for k in range(1, 41):
            lines(Step("finetune", k, 40, {"train_acc": 0.5}, parts=3, mean=True))
    shown = [r.getMessage() for r in caplog.records]
    assert 10 <= len(shown) <= 12
    assert shown[0].startswith("finetune epoch 1/40 (3 edges, mean) train_acc=0.5 · ")
    assert shown[0].endswith(" left") and "left" not in shown[-1]
    assert shown[-1].startswith("finetune epoch 40/40")


def test_edges_trained_in_turn_get_lines_of_their_own(caplog: pytest.LogCaptureFixture) -> None:
    lines = ProgressLines("finetune", lines=2)
    with caplog.at_level(logging.INFO, logger="ecogen.progress"):
        for part in ("identity", "invert"):
            for k in (1, 2):
                lines(Step("finetune", k, 2, {"train_acc": 0.5}, part=part, parts=2))
    shown = [r.getMessage() for r in caplog.records]
    assert [m.split(" train_acc")[0] for m in shown] == [
        "finetune[identity] epoch 1/2",
        "finetune[identity] epoch 2/2",
        "finetune[invert] epoch 1/2",
        "finetune[invert] epoch 2/2",
    ]
