"""The report's PNG figures (matplotlib, Agg): accuracy per round, Table 3, traffic, energy and relay.

Every figure is always written, with a "not run" note when its pipeline or rows are missing, so
the paths `dvc plots` and the MLflow report run list never go stale.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless; harmless if already selected
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from ecogen.reporting import paper  # noqa: E402
from ecogen.reporting.cycles import Cycle, in_order  # noqa: E402
from ecogen.reporting.summary import (  # noqa: E402
    BASELINE_ROWS,
    ECOGEN,
    FEDAVG_FULL,
    RowSummary,
    by_clusters,
    format_value,
    ordered,
)
from ecogen.stages.hfsl_metrics import EDGE_CLIENT_BYTES, END, FEDAVG_FULL_BYTES, FIRST  # noqa: E402
from ecogen.stages.metric import ENERGY_KWH, Metric  # noqa: E402

Rows = Mapping[str, RowSummary]


def _save(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _finish_lines(fig: Figure, ax: Axes, xlabel: str, ylabel: str, title: str, path: Path) -> Path:
    """Labels, title, grid and legend of a line chart, then saved to ``path``."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return _save(fig, path)


def _not_run(ax: Axes, what: str) -> None:
    ax.text(0.5, 0.5, f"{what}: not run", ha="center", va="center", transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])


def _ordered(rows: Rows | None) -> list[RowSummary]:
    rows = rows or {}
    return [s for r in ordered(rows, BASELINE_ROWS) if (s := rows.get(r)) is not None]


def accuracy_per_round(baselines: Rows | None, path: Path) -> Path:
    """One line per method (mean over replicates) with a ± std band; round 0 = before training."""
    fig, ax = plt.subplots(figsize=(6.4, 4))
    rows = [s for s in _ordered(baselines) if s.curve]
    if not rows:
        _not_run(ax, "baselines")
        return _save(fig, path)
    for s in rows:
        rounds = np.array(sorted(s.curve))
        mean = np.array([s.curve[r].mean for r in rounds])
        std = np.array([s.curve[r].std for r in rounds])
        (line,) = ax.plot(rounds, mean, marker="o", ms=3, label=s.row, lw=2 if s.row == ECOGEN else 1.2)
        ax.fill_between(rounds, mean - std, mean + std, color=line.get_color(), alpha=0.15, lw=0)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    title = "Accuracy per round (mean ± std over replicates)"
    return _finish_lines(fig, ax, "round (0: before training)", "test accuracy", title, path)


def table3(table3_rows: Rows | None, path: Path) -> Path:
    """First- and last-round accuracy vs clusters (mean ± std error bars) beside the paper's Table 3."""
    fig, ax = plt.subplots(figsize=(6.4, 4))
    clusters = list(paper.TABLE3_CLUSTERS)
    series = (
        (FIRST, paper.TABLE3_FIRST, "tab:blue", "first (round 1)"),
        (END, paper.TABLE3_END, "tab:orange", "end"),
    )
    for metric, reference, colour, name in series:
        ax.plot(
            clusters, [reference[c] for c in clusters], "s--", color=colour, alpha=0.5, label=f"paper {name}"
        )
        if points := [(c, st) for c, s in by_clusters(table3_rows or {}) if (st := s.stat(metric))]:
            means, stds = [st.mean for _, st in points], [st.std for _, st in points]
            xs = [c for c, _ in points]
            ax.errorbar(xs, means, yerr=stds, fmt="o-", color=colour, capsize=3, label=f"measured {name}")
    if table3_rows is None:
        ax.text(0.5, 0.05, "table3: not run (paper values only)", ha="center", transform=ax.transAxes)
    ax.set_xticks(clusters)
    return _finish_lines(fig, ax, "clusters per edge", "test accuracy", "Table 3: accuracy vs clusters", path)


def _bars(baselines: Rows | None, metric: Metric, ax: Axes) -> list[RowSummary]:
    """A bar per method that logged ``metric`` (mean ± std over replicates), labelled with its mean;
    returns the methods drawn (none: the axes say "not run")."""
    rows = [s for s in _ordered(baselines) if s.stat(metric) is not None]
    if not rows:
        _not_run(ax, "baselines")
        return rows
    stats = [s.stat(metric) for s in rows]
    means = [st.mean if st else 0.0 for st in stats]
    stds = [st.std if st else 0.0 for st in stats]
    colours = ["tab:green" if s.row == ECOGEN else "tab:gray" for s in rows]
    bars = ax.bar(range(len(rows)), means, yerr=stds, color=colours, capsize=3)
    ax.bar_label(bars, [format_value(metric, m) for m in means], fontsize=7)
    ax.set_xticks(range(len(rows)), [s.row for s in rows], rotation=30, ha="right", fontsize=8)
    ax.grid(alpha=0.3, axis="y")
    return rows


def bytes_per_round(baselines: Rows | None, path: Path) -> Path:
    """Edge↔client bytes per round per method (log scale) with FedAvg on the full model as reference."""
    fig, ax = plt.subplots(figsize=(6.4, 4))
    if not (rows := _bars(baselines, EDGE_CLIENT_BYTES, ax)):
        return _save(fig, path)
    by_row = {s.row: s for s in rows}
    full = by_row[FEDAVG_FULL].mean(EDGE_CLIENT_BYTES) if FEDAVG_FULL in by_row else None
    if full is None:
        full = next((m for s in rows if (m := s.mean(FEDAVG_FULL_BYTES))), None)
    if full:
        ax.axhline(full, color="tab:red", ls="--", lw=1, label="FedAvg full model")
        ax.axhline(0.05 * full, color="tab:red", ls=":", lw=1, label="5 % of FedAvg full")
        ax.legend(fontsize=7)
    ax.set_yscale("log")
    ax.set_ylabel("edge↔client bytes per round")
    ax.set_title("Communication per round (mean over replicates)", fontsize=9)
    return _save(fig, path)


def energy(baselines: Rows | None, path: Path) -> Path:
    """Energy of each method's hfsl stage (kWh, CodeCarbon), mean ± std over replicates."""
    fig, ax = plt.subplots(figsize=(6.4, 4))
    if _bars(baselines, ENERGY_KWH, ax):
        ax.set_ylabel("energy (kWh)")
        ax.set_title("Energy of the hfsl stage (mean ± std)", fontsize=9)
    return _save(fig, path)


def relay_cycles(cycles: Sequence[Cycle] | None, path: Path) -> Path:
    """Mean cross-domain accuracy after each cycle's relay: the FM, naive averaging, the best edge."""
    fig, ax = plt.subplots(figsize=(6.4, 4))
    ordered_cycles = [c for c in in_order(cycles) if c.fm is not None]
    if not ordered_cycles:
        _not_run(ax, "cycles")
        return _save(fig, path)
    series = (
        ("relayed FM", lambda c: c.fm, "tab:green", "o-"),
        ("naive averaging", lambda c: c.naive, "tab:gray", "s--"),
        ("best single edge", lambda c: c.best, "tab:blue", "^:"),
    )
    for name, value, colour, style in series:
        if points := [(c.k, v) for c in ordered_cycles if (v := value(c)) is not None]:
            ax.plot(*zip(*points, strict=True), style, color=colour, label=name)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    title = "Knowledge relay: accuracy after each cycle's relay"
    return _finish_lines(fig, ax, "cycle", "mean test accuracy over all domains", title, path)


def write_figures(
    table3_rows: Rows | None, baselines: Rows | None, out_dir: Path, cycles: Sequence[Cycle] | None = None
) -> list[Path]:
    return [
        accuracy_per_round(baselines, out_dir / "accuracy_per_round.png"),
        table3(table3_rows, out_dir / "table3.png"),
        bytes_per_round(baselines, out_dir / "bytes_per_round.png"),
        energy(baselines, out_dir / "energy.png"),
        relay_cycles(cycles, out_dir / "relay_cycles.png"),
    ]
