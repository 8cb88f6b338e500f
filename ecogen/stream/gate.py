"""The gate before promotion: is the challenger better than the served champion?

Scores are accuracies on the fixed held-out test set (``fixed``: the older data, never shifted)
and on the newest increment's test slice (``newest``).  The challenger is promoted when it beats
the champion on the newest slice by more than ``margin`` (a tie is not better) and loses at most
``max_forgetting`` on
the fixed set; with no champion yet it is promoted as the first.  A pure function: the caller
registers the challenger either way and moves the alias only when told to.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Scores:
    fixed: float
    newest: float


@dataclass(frozen=True)
class Decision:
    promote: bool
    reason: str


def decide(challenger: Scores, champion: Scores | None, margin: float, max_forgetting: float) -> Decision:
    if champion is None:
        return Decision(True, "first model: no champion to compare with")
    gain = challenger.newest - champion.newest
    loss = champion.fixed - challenger.fixed
    c, s = challenger, champion
    said = (
        f"newest increment {c.newest:.4f} vs {s.newest:.4f} ({gain:+.4f}, margin {margin:.4f}); "
        f"held-out {c.fixed:.4f} vs {s.fixed:.4f} ({-loss:+.4f}, forgetting allowed {max_forgetting:.4f})"
    )
    if gain <= margin:
        return Decision(False, f"not better on the newest increment: {said}")
    if loss > max_forgetting:
        return Decision(False, f"forgets the older data: {said}")
    return Decision(True, f"better: {said}")
