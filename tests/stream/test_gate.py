"""The gate's decision: better on the newest increment by the margin, no more forgetting than allowed."""

from __future__ import annotations

from ecogen.stream.gate import Scores, decide


def test_first_model_is_promoted():
    assert decide(Scores(0.5, 0.5), None, 0.01, 0.01).promote


def test_better_on_the_newest_increment_is_promoted():
    d = decide(Scores(fixed=0.80, newest=0.75), Scores(fixed=0.80, newest=0.70), 0.02, 0.01)
    assert d.promote and d.reason.startswith("better")


def test_within_the_margin_is_not_promoted():
    d = decide(Scores(fixed=0.80, newest=0.71), Scores(fixed=0.80, newest=0.70), 0.02, 0.01)
    assert not d.promote and "not better on the newest increment" in d.reason
    assert not decide(Scores(0.8, 0.7), Scores(0.8, 0.7), 0.0, 0.01).promote  # a tie is not better


def test_forgetting_the_older_data_is_not_promoted():
    d = decide(Scores(fixed=0.70, newest=0.90), Scores(fixed=0.80, newest=0.70), 0.0, 0.05)
    assert not d.promote and d.reason.startswith("forgets the older data")
    assert decide(Scores(fixed=0.76, newest=0.90), Scores(fixed=0.80, newest=0.70), 0.0, 0.05).promote
