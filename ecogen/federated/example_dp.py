"""The accounting of example-level DP-SGD (``hfsl.dp_mechanism: dp_sgd``, :mod:`ecogen.split.dp_sgd`),
by the RDP accountant of Google's ``dp-accounting`` (:mod:`ecogen.federated.privacy`) over the
sampled Gaussian mechanism (Mironov, Talwar & Zhang, 2019, arXiv 1908.10530) — the analysis
Opacus's and TF Privacy's RDP accountants implement.

A cluster participant with n labelled records samples each step's batch at q = batch_size / n, so
a step's expected batch is ``hfsl.batch_size``; it takes ``rounds × steps per round`` steps over the
run, and σ is the smallest noise multiplier for which those steps are (``dp_epsilon``,
``dp_delta``)-DP for every one of its records.  The steps a participant actually took are
recorded as an accountant history, (σ, q, steps) entries (Opacus's ``RDPAccountant.history``
format), and the ε they spent is the accountant's over that history: a participant that missed
rounds (dropout, ``clusters_per_round``) spent less than the target.

Opacus itself is not a dependency: its wheel installs a top-level ``benchmarks`` package into
site-packages, which shadows this project's ``benchmarks/`` (``import benchmarks.trials`` fails).
"""

from __future__ import annotations

from collections.abc import Sequence

import dp_accounting
from dp_accounting import rdp

from ecogen.config.params import HfslParams
from ecogen.federated import privacy
from ecogen.split.dp_sgd import ExampleDp

History = list[tuple[float, float, int]]  # accountant history: (σ, q, steps) entries


def plan(cfg: HfslParams, records: int, steps_per_round: int) -> ExampleDp:
    """The DP-SGD of a participant holding ``records`` labelled records, taking ``steps_per_round``
    client steps in each of ``cfg.rounds`` rounds."""
    if not cfg.dp_epsilon or records <= 0:
        raise ValueError(f"DP-SGD needs dp_epsilon and labelled records; got {cfg.dp_epsilon}, {records}")
    rate = min(1.0, cfg.batch_size / records)
    sigma = privacy.noise_multiplier(cfg.dp_epsilon, cfg.rounds * steps_per_round, cfg.dp_delta, rate)
    return ExampleDp(sigma, rate, cfg.dp_example_clip, rate * records)


def spend(history: History, dp: ExampleDp, steps: int) -> None:
    """Adds ``steps`` steps of ``dp`` to an accountant ``history`` (merged with its last entry
    where σ and q are the same)."""
    if history and history[-1][:2] == (dp.noise_multiplier, dp.sample_rate):
        sigma, rate, done = history.pop()
        history.append((sigma, rate, done + steps))
    else:
        history.append((dp.noise_multiplier, dp.sample_rate, steps))


def epsilon_spent(history: Sequence[tuple[float, float, int]], delta: float) -> float:
    """The ε the RDP accountant gives for ``history`` at ``delta`` (0 for none)."""
    if not history:
        return 0.0
    accountant = rdp.RdpAccountant(privacy.SAMPLED_ORDERS)
    for sigma, rate, steps in history:
        gaussian = dp_accounting.GaussianDpEvent(sigma)
        accountant.compose(
            dp_accounting.PoissonSampledDpEvent(rate, gaussian) if rate < 1 else gaussian, steps
        )
    return float(accountant.get_epsilon(delta))
