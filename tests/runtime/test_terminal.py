"""Progress lines: about ten a stage, the last always, each with the time left."""

from __future__ import annotations

import logging

import pytest

from ecogen.runtime.progress import Step
from ecogen.runtime.terminal import ProgressLines, drop_bars, duration, live_progress


def test_duration_reads_like_a_clock() -> None:
    assert [duration(s) for s in (0.4, 42, 185, 3725)] == ["0s", "42s", "3m05s", "1h02m"]


def test_a_long_stage_prints_about_ten_lines_with_the_time_left(caplog: pytest.LogCaptureFixture) -> None:
    lines = ProgressLines("finetune", start=0.0)
    with caplog.at_level(logging.INFO, logger="ecogen.runtime.progress"):
        for k in range(1, 41):
            lines(Step("finetune", k, 40, {"train_acc": 0.5}, parts=3, mean=True))
    shown = [r.getMessage() for r in caplog.records]
    assert 10 <= len(shown) <= 12
    assert shown[0].startswith("finetune epoch 1/40 (3 edges, mean) train_acc=0.5 · ")
    assert shown[0].endswith(" left") and "left" not in shown[-1]
    assert shown[-1].startswith("finetune epoch 40/40")


def test_edges_trained_in_turn_get_lines_of_their_own(caplog: pytest.LogCaptureFixture) -> None:
    lines = ProgressLines("finetune", lines=2)
    with caplog.at_level(logging.INFO, logger="ecogen.runtime.progress"):
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


def test_on_a_terminal_a_stage_is_one_bar_and_other_logs_scroll_above_it(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    import io
    import sys

    from rich.console import Console

    monkeypatch.delenv("ECOGEN_PROGRESS", raising=False)
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=100)
    handler = logging.StreamHandler(sys.stderr)  # a handler that writes to the terminal
    other = logging.getLogger("ecogen.test-terminal")
    other.addHandler(handler)
    other.propagate = False
    try:
        with caplog.at_level(logging.INFO, logger="ecogen.runtime.progress"), live_progress(console) as live:
            assert live
            assert handler.stream is not sys.stderr  # through the display's console
            lines = ProgressLines("finetune")
            for k in range(1, 4):
                lines(Step("finetune", k, 3, {"train_acc": 0.5}))
                other.warning("a log line while the bar runs")
        assert handler.stream is sys.stderr
    finally:
        other.removeHandler(handler)
        other.propagate = True
    shown = screen.getvalue()
    assert "━" in shown and "finetune" in shown  # the bar
    assert shown.count("a log line while the bar runs") == 3
    # only the stage's last line is logged; the steps before it were the bar
    assert [r.getMessage().split(" train_acc")[0] for r in caplog.records] == ["finetune epoch 3/3"]


def test_not_on_a_terminal_there_is_no_bar(monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from rich.console import Console

    monkeypatch.delenv("ECOGEN_PROGRESS", raising=False)
    with live_progress(Console(file=io.StringIO())) as live:
        assert not live
    monkeypatch.setenv("ECOGEN_PROGRESS", "lines")
    with live_progress(Console(file=io.StringIO(), force_terminal=True)) as live:
        assert not live


def test_prefects_mlflows_and_late_handlers_print_verbatim_above_the_bars(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import io
    import sys
    import warnings

    from mlflow.utils.logging_utils import MlflowLoggingStream
    from prefect.logging.handlers import PrefectConsoleHandler
    from rich.console import Console

    monkeypatch.delenv("ECOGEN_PROGRESS", raising=False)
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=200)
    logger = logging.getLogger("ecogen.test-terminal-routes")
    logger.propagate = False
    prefects, mlflows = PrefectConsoleHandler(stream=sys.stderr), logging.StreamHandler(MlflowLoggingStream())
    late, warned = logging.StreamHandler(sys.stderr), logging.StreamHandler(sys.stderr)
    try:
        logger.addHandler(prefects)
        logger.addHandler(mlflows)
        logging.getLogger("py.warnings").addHandler(warned)
        with live_progress(console):
            logger.warning("stage 3/7: hfsl[fixmatch-r0] copied [/tmp/x] ok")  # brackets are not markup
            logging.getLogger("ecogen.test-late").addHandler(late)  # a module loaded mid-run
            trial = ProgressLines("hfsl[c1-r0]")
            trial(Step("hfsl", 1, 3, {"accuracy": 0.5}))  # a new bar: late handlers are routed too
            assert late.stream is not sys.stderr
            with warnings.catch_warnings():
                warnings.simplefilter("always")
                warnings.warn("a warning while the bars run", UserWarning, stacklevel=1)
            drop_bars("hfsl[c1-r0]")  # the trial failed: its bar goes
        assert prefects.console.file is sys.stderr and late.stream is sys.stderr
        assert isinstance(mlflows.stream, MlflowLoggingStream)
    finally:
        logger.handlers.clear()
        logger.propagate = True
        logging.getLogger("ecogen.test-late").removeHandler(late)
        logging.getLogger("py.warnings").removeHandler(warned)
    shown = screen.getvalue()
    assert "a warning while the bars run" in shown  # through logging, not written through the bars
    assert shown.count("stage 3/7: hfsl[fixmatch-r0] copied [/tmp/x] ok") == 2  # Prefect's and MLflow's
    assert "hfsl[c1-r0]" in shown  # the bar's label, brackets and all
