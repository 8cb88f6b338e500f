"""`ecogen deploy` end to end against a real Prefect server.

A `prefect server start` subprocess (its database under the project's PREFECT_HOME), then
`ecogen deploy e2etiny` serving a tiny pipeline from the project's pipelines.yaml; the test waits
for the deployment, checks its schedule and that it pins nothing but the pipeline, the profile
and the files; edits params.yaml (no redeploy); runs it with `prefect deployment run --watch`
and a run-time override, and finds the finished pipeline run in the project's MLflow store with
both the edit and the override; a bad override fails at once, in one line.  Teardown stops
`serve` before the server (with the server gone first, `serve` hangs) and kills whatever does
not stop in time.
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
PROFILE_LATENCY_MS = 7.0  # the profile's one change, found again in the run's params
EDITED_BANDWIDTH = 55.0  # params.yaml edited after deploying
OVERRIDE_ROUNDS = 1  # a run-time override (the pipeline says 2)
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
            # nothing but what names the run is pinned: the params are read when it runs
            assert shown["parameters"] == {
                "pipeline": NAME,
                "profile": PROFILE,
                "overrides": [],
                "params_file": "params.yaml",
                "pipelines_file": "pipelines.yaml",
            }
            # edited after deploying: the next run uses it, with no redeploy
            edited = read_yaml(project / "params.yaml")
            edited["inference"]["d2d_bandwidth_mbps"] = EDITED_BANDWIDTH
            write_yaml(project / "params.yaml", edited)

            def deployment_run(*args: str) -> str:
                cmd = ["prefect", "deployment", "run", DEPLOYMENT, *args, "--watch", "--watch-timeout", "300"]
                out = sh(cmd, project, env, timeout=330, check=False)
                return f"exit {out.returncode}\n{out.stdout}"

            # a bad override: the run fails at once, saying what is wrong in one line
            bad = deployment_run("--param", 'overrides=["hfsl.rounds=zero"]')
            assert bad.startswith("exit 1"), bad[-3000:]

            good = deployment_run("--param", f'overrides=["hfsl.rounds={OVERRIDE_ROUNDS}"]')
            tails = "\n".join(f"--- {p.name}\n{p.read_text()[-4000:]}" for p in logs)
            assert good.startswith("exit 0"), f"{good[-3000:]}\n{tails}"
            assert "Completed" in good, good[-3000:]

            # the server agrees: the two runs of the deployment (no scheduled run ran)
            dep_id = shown["id"]
            r = httpx.post(
                f"{api}/flow_runs/filter",
                json={
                    "flow_runs": {
                        "deployment_id": {"any_": [dep_id]},
                        "state": {"type": {"not_any_": ["SCHEDULED"]}},
                    },
                    "sort": "EXPECTED_START_TIME_ASC",
                },
                timeout=10,
                trust_env=False,
            )
            r.raise_for_status()
            runs = r.json()
            assert [fr["state"]["type"] for fr in runs] == ["FAILED", "COMPLETED"], runs
            assert "hfsl.rounds: Input should be a valid integer" in runs[0]["state"]["message"]

            def run_logs(run_id: str | None) -> list[str]:  # None: every run's (subflows too)
                logs = {"flow_run_id": {"any_": [run_id]}} if run_id else {}
                r = httpx.post(
                    f"{api}/logs/filter", json={"logs": logs, "limit": 200}, timeout=10, trust_env=False
                )
                return [line["message"] for line in r.json()]

            # one line says what is wrong, and no traceback: nothing was started
            said = [m for m in run_logs(runs[0]["id"]) if "hfsl.rounds" in m]
            assert said, run_logs(runs[0]["id"])
            assert not [m for m in run_logs(runs[0]["id"]) if "Traceback" in m]
            # EcoGen's own lines reached the Prefect UI: the run's, and its stage subflows'
            assert any("params hash" in m for m in run_logs(runs[1]["id"]))
            seen = run_logs(None)
            assert any("stage 1/5: prepare" in m for m in seen), seen[:10]
            assert any("data version" in m for m in seen), seen[:10]
            artifacts = httpx.post(
                f"{api}/artifacts/filter",
                json={"artifacts": {"flow_run_id": {"any_": [runs[1]["id"]]}}},
                timeout=10,
                trust_env=False,
            ).json()
            assert [a["type"] for a in artifacts] == ["markdown"], artifacts
            assert "MLflow run" in artifacts[0]["data"] and "infer" in artifacts[0]["data"]
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
    assert runs[0].data.tags["mlflow.source.name"] == f"prefect deployment {DEPLOYMENT}"
    # the file as edited after deploying, the profile, and the run's own override
    assert float(runs[0].data.params["inference.d2d_bandwidth_mbps"]) == EDITED_BANDWIDTH
    assert float(runs[0].data.params["inference.d2d_latency_ms"]) == PROFILE_LATENCY_MS
    assert int(runs[0].data.params["hfsl.rounds"]) == OVERRIDE_ROUNDS != spec.overrides["hfsl"]["rounds"]
    assert (project / "runs" / NAME / "metrics" / "infer.json").is_file()
    assert not (ROOT / "runs" / NAME).exists()
