"""`ecogen deploy` end to end against a real Prefect server.

A `prefect server start` subprocess (its database under the project's PREFECT_HOME), then
`ecogen deploy e2etiny` serving a tiny pipeline from the project's pipelines.yaml; the test waits
for the deployment, checks its schedule, runs it with `prefect deployment run --watch` and finds
the finished pipeline run in the project's MLflow store.  Teardown stops `serve` before the
server (with the server gone first, `serve` hangs) and kills whatever does not stop in time.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from e2e_support import (
    ROOT,
    free_port,
    make_project,
    offline_env,
    quick_overrides,
    read_yaml,
    sh,
    sqlite_uri,
    start,
    stop,
    wait_for,
    write_yaml,
)
from mlflow import MlflowClient

from ecogen.config import load_params, load_pipelines

pytestmark = pytest.mark.slow

NAME = "e2etiny"
PROFILE = "e2e"  # deployed with --profile: the deployment is named <pipeline>-<profile>
DEPLOYMENT = f"ecogen-pipeline/{NAME}-{PROFILE}"
PROFILE_LATENCY_MS = 7.0  # the profile's one change, found again in the deployment's params
# Once a year, far from now: the only run of this test is the one it starts itself.
SCHEDULE = {"cron": "0 3 1 1 *", "timezone": "Europe/Paris"}


def test_deploy_serves_the_schedule_and_a_run_completes(tmp_path: Path, offline_process_env: None) -> None:
    project = make_project(tmp_path / "project")
    pipelines = read_yaml(project / "pipelines.yaml")
    pipelines["pipelines"][NAME] = {
        "description": "e2e: the quick pipeline, shrunk further; every stage",
        "stages": ["prepare", "pretrain", "finetune", "hfsl", "infer"],
        "overrides": quick_overrides(),
        "schedule": SCHEDULE,
    }
    pipelines.setdefault("profiles", {})[PROFILE] = {"inference": {"d2d_latency_ms": PROFILE_LATENCY_MS}}
    write_yaml(project / "pipelines.yaml", pipelines)
    spec = load_pipelines(project / "pipelines.yaml").pipelines[NAME]  # valid for ecogen/config
    load_params(project / "params.yaml", spec.overrides)

    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = offline_env(project, PREFECT_API_URL=api, PREFECT_RUNNER_POLL_FREQUENCY="2")
    server_env = {k: v for k, v in env.items() if k != "PREFECT_API_URL"}
    server_log, serve_log = project / "prefect-server.log", project / "ecogen-deploy.log"
    logs = [server_log, serve_log]

    def get(path: str) -> httpx.Response | None:
        try:
            return httpx.get(f"{api}{path}", timeout=5, trust_env=False)
        except httpx.HTTPError:
            return None

    server = serve = None
    with server_log.open("w") as slog, serve_log.open("w") as dlog:
        try:
            server = start(
                ["prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                project,
                server_env,
                slog,
            )

            def healthy() -> bool:
                assert server.poll() is None, f"prefect server exited {server.returncode}"
                r = get("/health")
                return r is not None and r.status_code == 200

            wait_for("the Prefect server's /api/health", healthy, 60, logs)

            serve = start(["ecogen", "deploy", NAME, "--profile", PROFILE], project, env, dlog)

            def deployment() -> dict[str, Any] | None:
                assert serve.poll() is None, f"ecogen deploy exited {serve.returncode}"
                r = get(f"/deployments/name/{DEPLOYMENT}")
                return r.json() if r is not None and r.status_code == 200 else None

            wait_for(f"deployment {DEPLOYMENT}", deployment, 90, logs)

            # the deployment as the CLI shows it: the schedule of pipelines.yaml, the pinned params
            shown = json.loads(
                sh(["prefect", "deployment", "inspect", DEPLOYMENT, "-o", "json"], project, env).stdout
            )
            schedules = [s["schedule"] for s in shown["schedules"]]
            assert schedules == [
                {**schedules[0], "cron": SCHEDULE["cron"], "timezone": SCHEDULE["timezone"]}
            ], schedules
            assert all(s.get("active", True) for s in shown["schedules"])
            assert shown["parameters"]["pipeline"] == NAME
            assert Path(shown["parameters"]["project_root"]) == project.resolve()
            assert shown["parameters"]["params"]["hfsl"]["rounds"] == spec.overrides["hfsl"]["rounds"]
            assert shown["parameters"]["params"]["inference"]["d2d_latency_ms"] == PROFILE_LATENCY_MS

            out = sh(
                ["prefect", "deployment", "run", DEPLOYMENT, "--watch", "--watch-timeout", "300"],
                project,
                env,
                timeout=330,
                check=False,
            )
            tails = "\n".join(f"--- {p.name}\n{p.read_text()[-4000:]}" for p in logs)
            assert out.returncode == 0, f"{out.stdout[-3000:]}\n{tails}"
            assert "Completed" in out.stdout, out.stdout[-3000:]

            # the server agrees: one flow run of the deployment, COMPLETED (no scheduled run ran)
            dep_id = shown["id"]
            r = httpx.post(
                f"{api}/flow_runs/filter",
                json={
                    "flow_runs": {
                        "deployment_id": {"any_": [dep_id]},
                        "state": {"type": {"not_any_": ["SCHEDULED"]}},
                    }
                },
                timeout=10,
                trust_env=False,
            )
            r.raise_for_status()
            states = [fr["state"]["type"] for fr in r.json()]
            assert states == ["COMPLETED"], states
        finally:
            stop(serve)  # serve first: it hangs when the server is already gone
            stop(server)
    assert server is not None and server.poll() is not None
    assert serve is not None and serve.poll() is not None

    # the served run tracked into this project's MLflow store, not the repo's
    client = MlflowClient(tracking_uri=sqlite_uri(project))
    experiment = client.get_experiment_by_name(read_yaml(project / "params.yaml")["tracking"]["experiment"])
    assert experiment is not None
    runs = client.search_runs(
        [experiment.experiment_id], f"tags.`ecogen.kind` = 'pipeline' and tags.`ecogen.pipeline` = '{NAME}'"
    )
    assert [r.info.status for r in runs] == ["FINISHED"], [(r.info.run_id, r.info.status) for r in runs]
    assert runs[0].data.tags["ecogen.profile"] == PROFILE
    assert (project / "runs" / NAME / "metrics" / "infer.json").is_file()
    assert not (ROOT / "runs" / NAME).exists()
