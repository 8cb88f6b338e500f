"""Energy per method of the baselines experiment: modelled device and link joules (``modelled_…``,
:mod:`ecogen.costs.method`) beside CodeCarbon's measured host kWh and CO2eq, and what each
method spends to reach a stated accuracy.

"To reach FedAvg-full's end accuracy" is read off the rows' mean accuracy curves: the first round
whose mean accuracy is at least the fedavg-full row's mean end accuracy.  Rounds cost alike (the
same client step every round), so the modelled joules and seconds to reach it are the stage's
times the share of its rounds run by then; a row whose curve never gets there has not reached it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ecogen.reporting.summary import FEDAVG_FULL, RowSummary
from ecogen.stages.hfsl_metrics import END, MODELLED_DEVICE_J, MODELLED_LINK_J, MODELLED_TIME_S

EPS = 1e-9  # accuracies are counts over a test set: equal means reach, despite rounding
ENERGY_SHARE = 0.5  # the target: EcoGen's device + link joules ≤ this share of FedAvg-full's


@dataclass(frozen=True)
class Reach:
    """When a row's mean accuracy first reaches ``accuracy``, and what it cost by then."""

    accuracy: float
    round: int | None  # None: never reached within the rounds run
    rounds: int  # the rounds the row ran
    joules: float | None  # modelled device + link joules by then (the whole stage if not reached)
    seconds: float | None  # modelled wall seconds by then

    @property
    def reached(self) -> bool:
        return self.round is not None


def modelled_joules(s: RowSummary) -> float | None:
    """The stage's modelled device + link joules (mean over edges and replicates)."""
    device, link = s.mean(MODELLED_DEVICE_J), s.mean(MODELLED_LINK_J)
    return None if device is None or link is None else device + link


def reference_accuracy(rows: Mapping[str, RowSummary]) -> float | None:
    """FedAvg-full's mean end accuracy: the accuracy every method is costed to reach."""
    full = rows.get(FEDAVG_FULL)
    return None if full is None else full.mean(END)


def reach(s: RowSummary, accuracy: float) -> Reach:
    """The first round of ``s``'s mean curve at ≥ ``accuracy`` and its modelled cost by then."""
    curve = {r: stat.mean for r, stat in s.curve.items() if r > 0}
    rounds = max(curve, default=0)
    first = next((r for r in sorted(curve) if curve[r] >= accuracy - EPS), None)
    share = 1.0 if first is None or not rounds else first / rounds
    joules, seconds = modelled_joules(s), s.mean(MODELLED_TIME_S)
    return Reach(
        accuracy,
        first,
        rounds,
        None if joules is None else joules * share,
        None if seconds is None else seconds * share,
    )
