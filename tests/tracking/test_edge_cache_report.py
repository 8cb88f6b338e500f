"""The edge cache benchmark's runs, as benchmarks/edge_cache.py logs them, read back for the report:
the newest replay per configuration, the newest load test, and the section in report.md."""

from __future__ import annotations

from pathlib import Path

from mlflow.entities import Metric, Param

from ecogen.config.params import Params
from ecogen.tracking.edge_cache_report import EDGE_CACHE_KIND, LOAD_RUN, load_edge_cache
from ecogen.tracking.report import build_report
from ecogen.tracking.runs import KIND, tracking_client


def _log(client, exp: str, name: str, params: dict[str, str], metrics: dict[str, float]) -> str:  # type: ignore[no-untyped-def]
    run = client.create_run(exp, run_name=name, tags={KIND: EDGE_CACHE_KIND})
    client.log_batch(
        run.info.run_id,
        metrics=[Metric(k, v, 0, 0) for k, v in metrics.items()],
        params=[Param(k, v) for k, v in params.items()],
    )
    client.set_terminated(run.info.run_id)
    return run.info.run_id


def test_newest_replay_per_configuration_and_newest_load(project: Path, tmp_path: Path) -> None:
    params = Params.model_validate({"tracking": {"experiment": "ecogen-edge-cache"}})
    client, exp = tracking_client(params, project)
    assert load_edge_cache(client, exp) is None  # nothing logged: the report leaves the section out
    plain = {"capacity": "1000", "warmup": "0", "near": "None", "jitter": "0.0"}
    figures = {"cache/hit_rate": 0.9, "p95_ratio": 0.95, "hits/exact_hit_agreement": 1.0}
    _log(client, exp, "edge-cache", plain, figures)
    newer = _log(client, exp, "edge-cache", plain, {**figures, "cache/hit_rate": 0.91})
    warm = _log(client, exp, "edge-cache", {**plain, "warmup": "10000"}, {**figures, "p95_ratio": 0.46})
    load = _log(
        client, exp, LOAD_RUN, {}, {"requests": 3000, "offered_rate": 50.0, "seconds": 60.5, "errors": 0}
    )
    found = load_edge_cache(client, exp)
    assert found is not None
    replays, loaded = found
    assert [r.run_id for r in replays] == [warm, newer] and loaded is not None and loaded.run_id == load
    md = build_report(params, project, tmp_path / "report", pipelines=()).read_text()
    assert "## Edge cache" in md and "| capacity 1000, warmup 10000 | 0.900 |" in md
    assert "Edge service under load: 50 requests/s for 60 s, no errors" in md
