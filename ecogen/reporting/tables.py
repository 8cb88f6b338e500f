"""The report's tables: Markdown for people, CSV for spreadsheets and plotting tools, JSON for
`dvc metrics show reports/report.json`.

Inputs are aggregated rows (:mod:`ecogen.reporting.summary`) and target checks; a missing
pipeline is ``None`` and a missing row is absent, both written as "not run".
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from ecogen.reporting import paper
from ecogen.reporting.cycles import Cycle, in_order
from ecogen.reporting.energy import reach, reference_accuracy
from ecogen.reporting.summary import (
    BASELINE_ROWS,
    CENTRALIZED,
    DASH,
    FEDAVG_FULL,
    STUDY_PIPELINE,
    RowSummary,
    by_clusters,
    derived,
    format_bytes,
    format_count,
    format_duration,
    format_stat,
    format_value,
    ordered,
)
from ecogen.reporting.targets import TargetCheck
from ecogen.stages.hfsl_metrics import (
    ACCURACIES,
    CHAIN,
    CLIENT_IMAGES,
    CLIENT_STEPS,
    CLOUD_EDGE_BYTES,
    D2D_BYTES,
    EDGE_CLIENT_BYTES,
    END,
    FEDAVG_FULL_BYTES,
    FIRST,
    GAIN,
    MODELLED_DEVICE_J,
    MODELLED_LINK_J,
    REPORT_JSON,
    STUDY,
    VS_FEDAVG_FULL,
)
from ecogen.stages.metric import DURATION_S, EMISSIONS, ENERGY_KWH, Metric

Rows = Mapping[str, RowSummary]
NOT_RUN = "not run"


@dataclass(frozen=True)
class PipelineSource:
    """Where one pipeline's numbers came from (its run; ``run_id=None`` when it never ran)."""

    pipeline: str
    run_id: str | None = None
    profile: str | None = None  # the pipelines.yaml profile of the run (or the one asked for)
    status: str = NOT_RUN
    started: datetime | None = None
    trials: int = 0
    skipped: int = 0  # trial runs left out: unfinished, or superseded by a rerun of the same trial
    params: Mapping[str, str] = field(default_factory=dict)
    replicates: tuple[int, ...] = ()  # per row
    draws: int = 1  # FM draws among the replicates
    model_bytes: float | None = None  # the full model's size, as the trials measured it
    unit: str = ""  # what ``trials`` counts when it is not trials ("cycles")
    wall_s: float | None = None  # the pipeline run's end − start (None while it has no end)


def _cell(s: RowSummary, metric: Metric) -> str:
    return format_stat(metric, s.stat(metric))


def _cell_row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _table(head: Sequence[str], body: Sequence[Sequence[str]]) -> str:
    lines = [_cell_row(head), _cell_row(["---"] * len(head)), *(_cell_row(r) for r in body)]
    return "\n".join(lines)


def _span(values: Sequence[int]) -> str:
    if not values:
        return DASH
    lo, hi = min(values), max(values)
    return str(lo) if lo == hi else f"{lo}–{hi}"


def header_markdown(
    generated: datetime, experiment: str, sources: Sequence[PipelineSource], profile: str | None = None
) -> str:
    """Title, when, and which pipeline runs (with their data, model size, λ and rounds) fed the report."""
    body = []
    for s in sources:
        if s.run_id is None:
            body.append([s.pipeline, NOT_RUN, s.profile or DASH, *[DASH] * 9])
            continue
        p = s.params
        model = ", ".join(f"{k} {p.get(f'model.{k}', '?')}" for k in ("dim", "depth", "heads"))
        if s.model_bytes is not None:
            model += f" ({format_bytes(s.model_bytes)})"
        trials = f"{s.trials} {s.unit}".strip()
        trials += f" (+{s.skipped} unfinished or rerun, left out)" if s.skipped else ""
        started = s.started.strftime("%Y-%m-%d %H:%M UTC") if s.started else DASH
        run = [s.pipeline, f"`{s.run_id}`", s.profile or DASH, s.status, started, trials]
        data = [p.get("data.source", DASH), model, p.get("data.labelled_fraction", DASH)]
        replicates = _span(s.replicates) + (f" ({s.draws} FMs)" if s.draws > 1 else "")
        body.append([*run, *data, p.get("hfsl.rounds", DASH), replicates, format_duration(s.wall_s)])
    head = ["Pipeline", "MLflow run", "Profile", "Status", "Started", "Trials", "Data", "Model (ViT)", "λ"]
    head += ["Rounds", "Replicates", "Wall time"]
    made_with = f" made with profile `{profile}`" if profile else ""
    return (
        "# EcoGen comparison report\n\n"
        f"Generated {generated.strftime('%Y-%m-%d %H:%M:%S UTC')} from MLflow experiment `{experiment}`, "
        f"using the latest finished run of each pipeline{made_with}. "
        "Values are mean ± sample std over replicates (seeds, and foundation models where a "
        'pipeline drew more than one: `trials.fm_draws`; "± —": one replicate).\n\n' + _table(head, body)
    )


def table3_markdown(table3: Rows | None) -> str:
    """Rows = clusters per edge (1…6 and any other measured), beside the paper's Table 3."""
    title = "## Table 3: accuracy vs clusters per edge\n\n"
    if table3 is None:
        return title + "_not run: no finished `table3` pipeline run._"
    measured = dict(by_clusters(table3))
    body = []
    for c in sorted(set(paper.TABLE3_CLUSTERS) | set(measured)):
        pf, pe = paper.TABLE3_FIRST.get(c), paper.TABLE3_END.get(c)
        ref = [DASH if pf is None else f"{pf:.3f}", DASH if pe is None else f"{pe:.3f}"]
        if (s := measured.get(c)) is None:
            body.append([str(c), NOT_RUN, NOT_RUN, *ref, "0"])
        else:
            body.append([str(c), _cell(s, FIRST), _cell(s, END), *ref, str(s.replicates)])
    head = ["Clusters", "First (round 1)", "End (last round)", "Paper first", "Paper end", "Replicates"]
    return title + _table(head, body)


def _vs_full(s: RowSummary, rows: Rows) -> float | None:
    if (ratio := s.mean(VS_FEDAVG_FULL)) is not None:
        return ratio
    full = rows.get(FEDAVG_FULL)
    reference = full.mean(EDGE_CLIENT_BYTES) if full else s.mean(FEDAVG_FULL_BYTES)
    ours = s.mean(EDGE_CLIENT_BYTES)
    return None if ours is None or not reference else ours / reference


def client_compute(s: RowSummary) -> str:
    """``"210 × 16.8k"``: client optimizer steps × images trained on per round (all participants),
    so rows are compared at equal client work, not only equal rounds."""
    steps, images = s.mean(CLIENT_STEPS), s.mean(CLIENT_IMAGES)
    if steps is None and images is None:
        return DASH
    return f"{format_count(steps)} × {format_count(images)}"


def baselines_markdown(baselines: Rows | None, pipeline: str = "baselines") -> str:
    """Rows = methods; accuracy and its gain over the start, ratio to the centralized oracle,
    traffic and client compute per round, energy, time.

    Any other experiment pipeline is tabulated the same way under its own name.
    """
    heading = "Baselines: EcoGen beside the other methods" if pipeline == "baselines" else pipeline
    title = f"## {heading}\n\n"
    if baselines is None:
        return title + f"_not run: no finished `{pipeline}` pipeline run._"
    oracle = baselines[CENTRALIZED].mean(END) if CENTRALIZED in baselines else None
    body = []
    order = BASELINE_ROWS if pipeline == "baselines" else ()
    for row in ordered(baselines, order):
        if (s := baselines.get(row)) is None:
            body.append([row, NOT_RUN, *[DASH] * 9])
            continue
        end = s.mean(END)
        ratio = DASH if end is None or not oracle else f"{end / oracle:.3f}"
        vs_full = DASH if (v := _vs_full(s, baselines)) is None else format_value(VS_FEDAVG_FULL, v)
        cost = [_cell(s, D2D_BYTES), client_compute(s), _cell(s, ENERGY_KWH), _cell(s, DURATION_S)]
        accuracy = [_cell(s, m) for m in (FIRST, END, GAIN)]
        body.append([row, *accuracy, ratio, _cell(s, EDGE_CLIENT_BYTES), vs_full, *cost])
    head = ["Method", "First", "End", "Gain vs start", "End / oracle", EDGE_CLIENT_BYTES.column]
    head += ["vs FedAvg-full", D2D_BYTES.column, "Client compute (steps × images per round)"]
    head += [ENERGY_KWH.column, DURATION_S.column]
    return title + _table(head, body)


def _reach_cells(s: RowSummary, accuracy: float | None) -> list[str]:
    """Round reaching ``accuracy``, modelled device + link joules and wall time by then."""
    if accuracy is None:
        return [DASH] * 3
    got = reach(s, accuracy)
    if got.round is None:
        return [f"not reached ({got.rounds} rounds)", DASH, DASH]
    joules = DASH if got.joules is None else format(got.joules, ".4g")
    return [str(got.round), joules, format_duration(got.seconds)]


def energy_markdown(baselines: Rows | None) -> str:
    """Table 2 of our own: per method, modelled device and link joules (the cost model, never
    measured) beside CodeCarbon's measured host kWh and CO2eq, and what reaching FedAvg-full's
    end accuracy took; then the paper's Table 2 and where it does not add up."""
    rows = baselines or {}
    target = reference_accuracy(rows)
    aim = DASH if target is None else f"{target:.3f}"
    body = []
    for row in ordered(rows, BASELINE_ROWS):
        if (s := rows.get(row)) is None:
            body.append([row, NOT_RUN, *[DASH] * 6])
            continue
        modelled = [_cell(s, MODELLED_DEVICE_J), _cell(s, MODELLED_LINK_J)]
        body.append([row, *modelled, _cell(s, ENERGY_KWH), _cell(s, EMISSIONS), *_reach_cells(s, target)])
    head = ["Method", "Modelled device (J)", "Modelled link (J)", "Host energy (kWh, CodeCarbon)"]
    head += ["CO2eq (kg, CodeCarbon)", f"Round reaching {aim}", "Modelled device + link to reach (J)"]
    head += ["Modelled time to reach"]
    note = (
        "Modelled figures (`modelled_…`) are the cost model's (`costs` in params.yaml): the hfsl stage"
        " on phones, boards and links, per edge, mean over edges and replicates; host figures are"
        " what CodeCarbon measured on the machine that ran every device, the whole stage.  The"
        f" accuracy to reach is FedAvg-full's mean end accuracy ({aim}); the cost to reach it is the"
        " stage's cost × the share of its rounds run by then."
    )
    return "\n\n".join(
        ["## Energy per method (baselines)", note, _table(head, body), paper_table2_markdown()]
    )


def paper_table2_markdown() -> str:
    """The paper's Table 2 as it states it, with power × hours beside each stated energy."""
    body = []
    for model, modality, hardware, watts, hours, kwh in paper.TABLE2:
        product = DASH if watts is None else f"{watts * hours / 1000:.1f}"
        power = DASH if watts is None else f"{watts:.0f}"
        body.append([model, modality, hardware, power, f"{hours:,.0f}", f"{kwh:,.1f}", product])
    head = [
        "Model",
        "Modality",
        "Hardware",
        "Power (W)",
        "Hours",
        "Energy stated (kWh)",
        "Power × hours (kWh)",
    ]
    note = (
        f"Its own row does not add up: the text states {paper.TABLE2_TEXT_KWH} kWh, the table 29.2 kWh,"
        " and 400 W × 97 h = 38.8 kWh (77.6 kWh if the 400 W is per GPU of the two).  It is a"
        " cloud training cost of a different model, not comparable with the rows above."
    )
    return "### The paper's Table 2\n\n" + _table(head, body) + "\n\n" + note


def study_markdown(study: Rows | None, pipeline: str = STUDY_PIPELINE) -> str:
    """The HFSL study: per row (in the order run, i.e. pipelines.yaml's) where HFSL starts, where
    round 1 and the last round take it, the gain over the start (spread over the replicates' own
    gains), and what it cost: client compute and edge↔client bytes per round."""
    title = "## HFSL study\n\n"
    if study is None:
        return title + f"_not run: no finished `{pipeline}` pipeline run._"
    body = [
        [row, DASH if s.rounds is None else str(s.rounds), *(_cell(s, m) for m in STUDY), str(s.replicates)]
        for row, s in study.items()
    ]
    if not body:
        body.append([NOT_RUN, *[DASH] * (len(STUDY) + 2)])
    head = ["Row", "Rounds", *(m.column for m in STUDY), "Replicates"]
    return title + _table(head, body)


def _acc(value: float | None, spec: str = ".3f") -> str:
    return DASH if value is None else format(value, spec)


def _upload_cell(c: Cycle) -> str:
    """``"14.18 kB of FM 21.10 kB (67.2%)"``: what an edge uploads beside the model it received."""
    up, fm = c.upload_bytes, c.fm_bytes
    if up is None:
        return DASH
    return format_bytes(up) if not fm else f"{format_bytes(up)} of FM {format_bytes(fm)} ({up / fm:.1%})"


def _best_cell(c: Cycle) -> str:
    """The best single edge's accuracy, and which edge it is."""
    return _acc(c.best) + (f" ({c.best_edge})" if c.best is not None and c.best_edge else "")


# The cycles table: each column's heading and its cell of one cycle
CYCLE_COLUMNS: tuple[tuple[str, Callable[[Cycle], str]], ...] = (
    ("Cycle", lambda c: str(c.k)),
    ("FM", lambda c: _acc(c.fm)),
    ("Naive", lambda c: _acc(c.naive)),
    ("Best edge", _best_cell),
    ("FM − best edge", lambda c: _acc(c.fm_vs_best_edge, "+.3f")),
    ("FM − naive", lambda c: _acc(c.fm_vs_naive, "+.3f")),
    ("Edges redelivered", lambda c: _acc(c.redelivered)),
    ("Edges after finetune", lambda c: _acc(c.finetuned)),
    ("Edges after HFSL", lambda c: _acc(c.after_hfsl)),
    ("Upload / edge", _upload_cell),
    ("Cloud→edge / edge", lambda c: format_bytes(c.delivery_bytes)),
    (EDGE_CLIENT_BYTES.column, lambda c: format_bytes(c.edge_client_bytes)),
    ("Relay energy (kWh)", lambda c: _acc(c.energy_kwh, ".3g")),
)


def cycles_markdown(cycles: Sequence[Cycle] | None, pipeline: str = "cycles") -> str:
    """One row per cycle: the relay's FM beside naive averaging and the best edge, the edges'
    accuracy through the cycle (redelivered, fine-tuned, after HFSL) and its traffic and energy."""
    title = "## Knowledge relay (cycles)\n\n"
    if cycles is None:
        return title + f"_not run: no finished `{pipeline}` pipeline run._"
    note = (
        "FM, naive and best edge: mean accuracy over every domain's test set after the cycle's relay "
        "(FM: the relayed FM with its shared head; naive: plain parameter averaging of the edges' "
        "modules; best edge: the best single edge model). Edge columns: mean over the edges of each "
        "edge's accuracy on its own domain — redelivered: its previous modules on the newly delivered "
        "FM, before re-adapting (from cycle 1). Bytes are per edge: upload = the edge's tunable "
        "modules; cloud→edge = the FM delivered."
    )
    body = [[cell(c) for _, cell in CYCLE_COLUMNS] for c in in_order(cycles)]
    if not body:
        body.append([NOT_RUN, *[DASH] * (len(CYCLE_COLUMNS) - 1)])
    head = [heading for heading, _ in CYCLE_COLUMNS]
    return title + note + "\n\n" + _table(head, body)


def targets_markdown(checks: Sequence[TargetCheck]) -> str:
    """The checked targets; those whose pipelines have not run are named in one line after them."""
    ran = [c for c in checks if c.status != NOT_RUN]
    body = [[c.claim, c.measured, c.required, f"**{c.status}**"] for c in ran]
    out = "## Targets\n\n" + (_table(["Target", "Measured", "Required", "Result"], body) if ran else "")
    if waiting := [c for c in checks if c.status == NOT_RUN]:
        said = "; ".join(f"{c.claim} ({c.measured.removeprefix(NOT_RUN + ' ').strip('()')})" for c in waiting)
        out += ("\n\n" if ran else "") + f"_Not run yet ({len(waiting)}): {said}._"
    return out


def not_run_markdown(pipelines: Sequence[str]) -> str:
    """One line for the experiment pipelines with no finished run, instead of a section each."""
    names = ", ".join(f"`{p}`" for p in pipelines)
    return (
        f"_Not run yet: {names}. Each is `ecogen run NAME` (`--profile cpu` sizes the experiments for"
        " a laptop); `ecogen report` then adds its section._"
    )


def chain_markdown(metrics: Mapping[str, float], pipeline: str, run_id: str) -> str:
    """A plain pipeline's (``default``'s) HFSL stage: accuracy before, after, and what it cost."""
    values = derived(metrics)
    body = [[m.label, format_value(m, values[m.name])] for m in CHAIN if m.name in values]
    head = f"## `{pipeline}` pipeline\n\nIts newest finished run (`{run_id}`), mean over the edges:\n\n"
    return head + _table(["", "value"], body)


def section(markdown: str, title: str) -> str:
    """The ``## title`` section of a Markdown document (heading included), or ``""``."""
    lines = markdown.splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip() == f"## {title}"), None)
    if start is None:
        return ""
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    return "\n".join(lines[start:end]).strip()


def _write_csv(path: Path, head: Sequence[str], body: Sequence[Sequence[object]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(head)
        w.writerows(body)
    return path


def _num(value: float | None) -> str:
    return "" if value is None else f"{value:.6g}"


def accuracy_csv(baselines: Rows | None, path: Path) -> Path:
    """Long format ``method,round,accuracy`` (mean over replicates; round 0 = before training)."""
    rows = baselines or {}
    body = [
        [row, r, _num(stat.mean)]
        for row in ordered(rows, BASELINE_ROWS)
        if row in rows
        for r, stat in sorted(rows[row].curve.items())
    ]
    return _write_csv(path, ["method", "round", "accuracy"], body)


def table3_csv(table3: Rows | None, path: Path) -> Path:
    """One line per measured cluster count, with the paper's values beside it."""
    body: list[list[object]] = []
    for c, s in by_clusters(table3 or {}):
        first, end = s.stat(FIRST), s.stat(END)
        measured = [_num(st.mean if st else None) for st in (first, end)]
        spread = [_num(st.std if st else None) for st in (first, end)]
        reference = [_num(paper.TABLE3_FIRST.get(c)), _num(paper.TABLE3_END.get(c))]
        body.append([c, *measured, *spread, *reference])
    head = ["clusters", "first", "end", "first_std", "end_std", "paper_first", "paper_end"]
    return _write_csv(path, head, body)


def study_csv(study: Rows | None, path: Path) -> Path:
    """One line per HFSL-study row, in the order run (header only when the pipeline never ran)."""
    means = (CLIENT_STEPS, CLIENT_IMAGES, EDGE_CLIENT_BYTES)
    body: list[list[object]] = []
    for row, s in (study or {}).items():
        stats = [s.stat(k) for k in ACCURACIES]
        spread = [_num(getattr(st, field) if st else None) for field in ("mean", "std") for st in stats]
        rounds = "" if s.rounds is None else s.rounds
        body.append([row, rounds, *spread, *(_num(s.mean(m)) for m in means), s.replicates])
    short = ("start", "first", "end", "gain")  # ACCURACIES, as the CSV names them
    head = ["row", "rounds", *short, *(f"{a}_std" for a in short), *(m.key for m in means), "replicates"]
    return _write_csv(path, head, body)


def bytes_csv(baselines: Rows | None, path: Path) -> Path:
    """Traffic per round per method (means over replicates)."""
    rows = baselines or {}
    traffic = (EDGE_CLIENT_BYTES, D2D_BYTES, CLOUD_EDGE_BYTES, FEDAVG_FULL_BYTES)
    body = [
        [row, *(_num(s.mean(m)) for m in traffic), _num(_vs_full(s, rows))]
        for row in ordered(rows, BASELINE_ROWS)
        if (s := rows.get(row)) is not None
    ]
    return _write_csv(path, ["method", *(m.key for m in traffic), "vs_fedavg_full"], body)


def cycles_csv(cycles: Sequence[Cycle] | None, path: Path) -> Path:
    """One line per cycle (header only when the pipeline never ran)."""
    names = list(Cycle(0).values())
    body = [[c.k, *(_num(v) for v in c.values().values()), c.best_edge or ""] for c in in_order(cycles)]
    return _write_csv(path, ["cycle", *names, "best_edge"], body)


def cycles_json(cycles: Sequence[Cycle] | None) -> dict[str, Any]:
    """``{"<k>": {metric: value, ..., "hfsl_edge_accuracy": {edge: accuracy}}}`` or "not run"."""
    if cycles is None:
        return {"status": NOT_RUN}
    out: dict[str, Any] = {}
    for c in in_order(cycles):
        entry: dict[str, Any] = {k: v for k, v in c.values().items() if v is not None}
        if c.best_edge:
            entry["best_edge"] = c.best_edge
        if c.hfsl_edges:
            entry["hfsl_edge_accuracy"] = dict(sorted(c.hfsl_edges.items()))
        if c.redelivered_edges:
            entry["redelivered_edge_accuracy"] = dict(sorted(c.redelivered_edges.items()))
        out[str(c.k)] = entry
    return out


def _row_json(s: RowSummary, with_clusters: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"replicates": s.replicates, "fm_draws": s.draws}
    if with_clusters and s.clusters is not None:
        out["clusters"] = s.clusters
    for m in REPORT_JSON:
        if (stat := s.stat(m)) is not None:
            out[m.key] = {"mean": stat.mean, "std": stat.std}
    return out


def stage_json(metrics: Mapping[str, float]) -> dict[str, float]:
    """One stage run's numbers under their report.json names (the default chain's hfsl stage)."""
    values = derived(metrics)
    return {m.key: values[m.name] for m in REPORT_JSON if m.name in values}


def report_json(
    pipelines: Mapping[str, Rows | None],
    checks: Sequence[TargetCheck],
    path: Path,
    sections: Mapping[str, Any] | None = None,
) -> Path:
    """Nested numbers for `dvc metrics`: ``{pipeline: {row: {metric: {mean, std}}}, targets: {...}}``.

    ``sections`` are added as they are (``{"cycles": cycles_json(...)}``).
    """
    data: dict[str, Any] = {
        name: {"status": NOT_RUN}
        if rows is None
        else {row: _row_json(s, name == "table3") for row, s in rows.items()}
        for name, rows in pipelines.items()
    }
    data.update(sections or {})
    data["targets"] = {
        c.key: {
            "status": c.status,
            **({} if c.value is None else {"value": c.value}),
            **({} if c.threshold is None else {"threshold": c.threshold}),
        }
        for c in checks
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path
