"""The stream experiment's points (:mod:`ecogen.reporting.stream`) from the tracking store alone:
one per FINISHED run of a stream pipeline, read from its gate, finetune and hfsl stage runs."""

from __future__ import annotations

import json

from mlflow import MlflowClient

from ecogen.config.pipelines import NO_PROFILE
from ecogen.reporting.stream import StreamPoint
from ecogen.stages.hfsl_metrics import CLIENT_IMAGES, END
from ecogen.stages.metric import DURATION_S
from ecogen.stream.increments import bounds
from ecogen.tracking.registry import INCREMENT
from ecogen.tracking.runs import KIND, PIPELINE, PROFILE, STAGE, quote, search_all

STREAM_PIPELINE = "stream"


def load_stream(
    client: MlflowClient, exp_id: str, pipeline: str = STREAM_PIPELINE, profile: str | None = None
) -> list[StreamPoint]:
    query = f"tags.`{KIND}` = 'pipeline' AND tags.`{PIPELINE}` = {quote(pipeline)}"
    query += " AND attributes.status = 'FINISHED'"
    if profile is not None:
        query += f" AND tags.`{PROFILE}` = {quote(profile or NO_PROFILE)}"
    points: dict[tuple[str, int, int], StreamPoint] = {}
    for run in sorted(search_all(client, exp_id, query), key=lambda r: r.info.start_time):
        if INCREMENT not in run.data.tags:
            continue
        children = search_all(client, exp_id, f"tags.`mlflow.parentRunId` = '{run.info.run_id}'")
        staged = [r for r in children if r.data.tags.get(KIND) == "stage"]
        stages = {r.data.tags.get(STAGE): r.data.metrics for r in staged}
        ids = {r.info.run_id: r.data.tags.get(STAGE) for r in staged}
        gate, finetune, hfsl = (stages.get(s, {}) for s in ("gate", "finetune", "hfsl"))
        if "mean_served_newest" not in gate:
            continue
        p = run.data.params
        increment = int(run.data.tags[INCREMENT])
        hfsl_id = next((r for r, m in ids.items() if m == "hfsl"), None)
        rounds = len(client.get_metric_history(hfsl_id, END.name)) if hfsl_id else 0
        edge_images = bounds(int(p["data.edge_labelled"]), int(p["stream.increments"]))[increment + 1]
        retuned = finetune.get("mean_finetuned", 1.0) * int(p["peft.epochs"]) * edge_images
        point = StreamPoint(
            mode=p.get("stream.mode", "continuous"),
            seed=int(p.get("seed", "0")),
            increment=increment,
            served_newest=gate["mean_served_newest"],
            served_first=gate["mean_served_first_increment"],
            frozen_newest=gate.get("mean_frozen_newest"),
            drift_score=finetune.get("mean_drift_score"),
            drift_share=finetune.get("mean_drift"),
            promoted=gate.get("mean_promoted", 0.0),
            compute_s=finetune.get(DURATION_S.name, 0.0) + hfsl.get(DURATION_S.name, 0.0),
            # images trained on per edge: HFSL's (all participants, all rounds) + the fine-tune's
            compute_images=hfsl.get(CLIENT_IMAGES.name, 0.0) * rounds + retuned,
            shift_at=json.loads(p.get("stream.shift_at", "null")),
        )
        points[(point.mode, point.seed, point.increment)] = point  # the newest run of each
    return sorted(points.values(), key=lambda q: (q.mode, q.seed, q.increment))
