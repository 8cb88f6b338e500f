"""The progress hook: listeners per context, whole-stage steps from the edges' steps."""

from __future__ import annotations

import threading
from contextvars import copy_context

import pytest

from ecogen.runtime.progress import Aggregate, Step, listening, report


def test_listeners_hear_only_inside_their_context_and_a_failing_one_stops_nothing() -> None:
    heard: list[Step] = []

    def broken(step: Step) -> None:
        raise RuntimeError("listener bug")

    step = Step("pretrain", 1, 3, {"loss": 1.0})
    report(step)  # nobody listens: nothing happens
    with listening(broken, heard.append):
        report(step)
        context = copy_context()  # what Prefect's task runner hands its threads
        worker = threading.Thread(target=context.run, args=(report, step))
        worker.start()
        worker.join()
    report(step)
    assert heard == [step, step]


def test_aggregate_passes_each_step_once_when_every_edge_has_it() -> None:
    heard: list[Step] = []
    aggregate = Aggregate(heard.append)
    with listening(aggregate):
        report(Step("finetune", 1, 2, {"acc": 0.2, "loss": 2.0}, part="a", parts=3))
        report(Step("finetune", 1, 2, {"acc": 0.4}, part="b", parts=3))
        report(Step("finetune", 2, 2, {"acc": 0.9}, part="a", parts=3))
        assert heard == []
        report(Step("finetune", 1, 2, {"acc": 0.6, "loss": 1.0}, part="c", parts=3))
        report(Step("pretrain", 1, 1, {"loss": 0.5}))  # a whole-stage step goes straight through
    assert [(s.stage, s.step, s.parts, s.mean) for s in heard] == [
        ("finetune", 1, 3, True),
        ("pretrain", 1, 1, False),
    ]
    assert heard[0].metrics == {"acc": pytest.approx(0.4)}  # the mean of what every edge reported
