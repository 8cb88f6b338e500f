"""Glue of a stream run (``stream.increments``): which increment it takes in, the served models
into its workspace before the stages, and the gate's decisions into the registry after them.

A run takes in the increment after the last one a FINISHED run of the same pipeline and profile
took in (tag ``ecogen.increment``); one already taken in is a no-op (:class:`NothingToDo`).  It
starts from the registry's ``champion`` of the FM and of each edge's modules
(:mod:`ecogen.tracking.registry`), copied into ``runs/P/served/``; when it ends, each edge's
challenger is registered and promoted only where the gate said so.  A run that fails before then
moves nothing.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

from mlflow import MlflowClient

from ecogen.config.params import Params, StreamParams
from ecogen.config.pipelines import StageName
from ecogen.pipeline import RunContext, _stage
from ecogen.stages.result import StageResult
from ecogen.tracking import registry
from ecogen.tracking.registry import INCREMENT, LINEAGE, STARTED_FROM
from ecogen.tracking.runs import KIND, PIPELINE, quote, search_all, tracking_client

log = logging.getLogger("ecogen.stream")

SERVED_FM = "fm.pt"


class NothingToDo(Exception):
    """The increment asked for is in already, or every increment is: the run does nothing."""


def lineage(pipeline: str, profile: str | None, params: Params) -> str:
    """The stream a run belongs to, and the prefix of its registered models: the pipeline (and
    profile), plus the mode and the seed where they are not the defaults (an experiment's rows and
    seeds are streams of their own), e.g. ``stream``, ``stream-cpu``, ``stream-retrain-s2``."""
    name = registry.prefix(pipeline, profile)
    if params.stream.mode != "continuous":
        name += f"-{params.stream.mode}"
    return name + (f"-s{params.seed}" if params.seed else "")


def taken(params: Params, pipeline: str, root: Path, profile: str | None) -> dict[int, str]:
    """Increment → the FINISHED pipeline run of this stream (:func:`lineage`) that took it in."""
    client, exp = tracking_client(params, root)
    stream = quote(lineage(pipeline, profile, params))
    query = (
        f"tags.`{KIND}` = 'pipeline' AND tags.`{PIPELINE}` = {quote(pipeline)} "
        f"AND tags.`{LINEAGE}` = {stream} AND attributes.status = 'FINISHED'"
    )
    runs = search_all(client, exp, query)
    return {int(r.data.tags[INCREMENT]): r.info.run_id for r in runs if INCREMENT in r.data.tags}


def resolve_increment(params: Params, pipeline: str, root: Path, profile: str | None) -> Params:
    """``params`` with ``stream.increment`` set to the one this run takes in; NothingToDo when it
    is in already (or all are)."""
    s = params.stream
    if s.increments is None:
        return params
    done = taken(params, pipeline, root, profile)
    following = max(done) + 1 if done else 0
    if s.increment is not None and s.increment in done:
        raise NothingToDo(f"increment {s.increment} was taken in by run {done[s.increment]}: nothing to do")
    if s.increment is not None and s.increment != following:
        raise NothingToDo(
            f"increment {s.increment} cannot be taken in before increment {following}: "
            f"give stream.increment={following}, or none for the next one"
        )
    if following >= s.increments:
        raise NothingToDo(f"all {s.increments} increments are taken in (the last by run {done[max(done)]})")
    return params.model_copy(update={"stream": s.model_copy(update={"increment": following})})


def _names(ctx: RunContext) -> tuple[str, dict[str, str]]:
    """The registered FM and edge models of this run's stream.  The FM is the same whatever the
    mode (it is pre-trained once per pipeline, profile and seed), so retraining and continuous
    streams of one seed share it, as a fair comparison of the edges needs."""
    stream = lineage(ctx.pipeline, ctx.profile, ctx.params)
    fm = lineage(ctx.pipeline, ctx.profile, ctx.params.model_copy(update={"stream": StreamParams()}))
    return f"{fm}.fm", {d: f"{stream}.edge-{d}" for d in ctx.params.data.domains}


def fetch_served(ctx: RunContext) -> RunContext:
    """The champions into ``runs/P/served/`` — the FM's, and in continuous mode the edges' (retrain
    fine-tunes them afresh) — and the edges' first versions beside them (the frozen reference the
    gate scores); what it started from is recorded on the pipeline run."""
    ws, s = ctx.workspace, ctx.params.stream
    shutil.rmtree(ws.served, ignore_errors=True)
    client = MlflowClient()  # the tracking store the pipeline run set
    client.set_tag(ctx.run_id, INCREMENT, str(s.increment))
    client.set_tag(ctx.run_id, LINEAGE, lineage(ctx.pipeline, ctx.profile, ctx.params))
    fm_name, edges = _names(ctx)
    fm = registry.champion(client, fm_name)
    started: list[str] = []
    if fm is not None:
        registry.fetch_file(fm, SERVED_FM, ws.served / SERVED_FM)
        started.append(f"{fm_name}@v{fm.version}")
    if fm is not None and s.mode == "continuous":
        for domain, name in edges.items():
            if (version := registry.champion(client, name)) is not None:
                registry.fetch_file(version, "tunable.pt", ws.champion(domain))
                started.append(f"{name}@v{version.version}")
    for domain, name in edges.items():
        if (first := registry.first_version(client, name)) is not None:
            registry.fetch_file(first, "tunable.pt", ws.first(domain))
    said = ", ".join(started) or "nothing served yet: a cold start"
    client.set_tag(ctx.run_id, STARTED_FROM, said)
    log.info("%s: increment %d of %d, starting from %s", ctx.pipeline, s.increment, s.increments, said)
    return ctx.model_copy(update={"reuse": False})  # its stages depend on the served models too


def served_stage(ctx: RunContext, stage: StageName) -> dict[str, float] | None:
    """pretrain in a stream that serves an FM: the champion FM is delivered, not pre-trained again."""
    served = ctx.workspace.served / SERVED_FM
    if stage != "pretrain" or not served.is_file() or ctx.trial is not None or ctx.cycle is not None:
        return None
    with _stage(ctx, stage) as run:
        ctx.workspace.fm.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(served, ctx.workspace.fm)
        run.log(StageResult(name=stage, params={"warm_from": f"{_names(ctx)[0]}@champion"}))
    log.info("pretrain: the served FM delivered, not pre-trained again")
    return {}


def settle(ctx: RunContext) -> dict[str, float]:
    """After the gate: the FM registered and served if none is; every edge's challenger registered,
    the champion alias moved where the gate promoted it.  Returns ``gate.<domain>.*`` metrics."""
    made = {p.stem: json.loads(p.read_text()) for p in sorted(ctx.workspace.gate.glob("*.json"))}
    if not made:
        return {}
    client = MlflowClient()
    fm_name, edges = _names(ctx)
    increment = ctx.params.stream.increment
    if registry.champion(client, fm_name) is None:
        if (fm_id := registry.stage_models(client, ctx.run_id, "pretrain").get("fm")) is not None:
            v = registry.register(client, fm_name, fm_id, ctx.run_id, {INCREMENT: str(increment)})
            registry.promote(client, fm_name, v.version, "the stream's first FM")
    models = registry.stage_models(client, ctx.run_id, "hfsl") or registry.stage_models(
        client, ctx.run_id, "finetune"
    )
    out: dict[str, float] = {}
    for domain, decision in made.items():
        name = edges[domain]
        model_id = models.get(f"edge-{domain}-hfsl") or models.get(f"edge-{domain}")
        if model_id is None:
            log.warning("gate[%s]: no logged model to register", domain)
            continue
        verdict = "promoted" if decision["promote"] else "rejected"
        tags = {INCREMENT: str(increment), registry.DECISION: f"{verdict}: {decision['reason']}"[:5000]}
        version = registry.register(client, name, model_id, ctx.run_id, tags)
        if decision["promote"]:
            registry.promote(
                client, name, version.version, f"gate, increment {increment}: {decision['reason']}"
            )
        log.info("%s version %s: %s", name, version.version, verdict)
        out[f"gate.{domain}.version"] = float(version.version)
        out[f"gate.{domain}.promoted"] = float(bool(decision["promote"]))
    return out
