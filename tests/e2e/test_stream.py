"""The `stream` pipeline as a deployment, end to end against real servers (issue 22's acceptance).

A `prefect server` and an `mlflow server` on 127.0.0.1 (``benchmarks/agents.py``'s
:func:`services`, no workers), a project whose `stream` pipeline is shrunk and whose schedule
fires once a year, and `ecogen deploy stream` serving it.  The test triggers runs of the
deployment itself: one, then two at once — the deployment's concurrency limit makes the second
wait (AwaitingConcurrencySlot), so they take in increments 1 and 2 one after the other.  Then the
registry: one FM version, three versions per edge tagged with their increment and the gate's
decision as the gate stage logged it, the ``champion`` alias on the newest promoted version, and
each run started from the champions of its time.  A fourth run asking for increment 1 again does
nothing; `ecogen rollback` moves an edge's alias back (after an `ecogen promote` where no edge has
had two champions), the reason on the versions.
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from e2e_support import ROOT, quick_overrides, read_yaml, sh, start, stop
from mlflow import MlflowClient
from mlflow.entities import Run
from mlflow.entities.model_registry import ModelVersion

from benchmarks.agents import Services, make_project, services
from ecogen.config.load import deep_merge
from ecogen.served import STARTED_FROM
from ecogen.tracking.registry import (
    CHAMPION,
    DECISION,
    DEMOTED,
    INCREMENT,
    PROMOTED,
    _history,  # the champion alias's history, oldest first
)

pytestmark = pytest.mark.slow

PIPELINE = "stream"
DEPLOYMENT = f"ecogen-pipeline/{PIPELINE}"
# On top of the e2e tests' tiny `quick` sizes (quick_overrides): a run's stages take about 25 s.
SMALLER = {
    "data": {"public_pool": 1000},
    "hfsl": {"local_steps": 5},
    "stream": {"warm_rounds": 1, "test_per_increment": 100, "drift_samples": 100},
}
NEVER = {"cron": "0 3 1 1 *", "timezone": "Europe/Paris"}  # once a year: only triggered runs run
FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
RUN_TIMEOUT = 150.0  # one run's bound (about 40 s here); two in a row get twice that


class Prefect:
    """The Prefect server's REST API, as far as the test needs it; failures carry the logs."""

    def __init__(self, svc: Services) -> None:
        self.svc = svc

    def call(self, method: str, path: str, body: Any = None) -> Any:
        for _ in range(10):
            r = httpx.request(method, f"{self.svc.prefect_api}{path}", json=body, timeout=10, trust_env=False)
            # 503: the server's "retry": e.g. its SQLite database was busy (a create_flow_run got
            # it under load here); Prefect's own client retries it too
            if r.status_code != 503:
                break
            time.sleep(1)
        r.raise_for_status()
        return r.json()

    def trigger(self, deployment_id: str, overrides: list[str] | None = None) -> str:
        """A flow run of the deployment, due now (not the schedule's); its id."""
        params = {"overrides": overrides} if overrides else {}
        return str(
            self.call("POST", f"/deployments/{deployment_id}/create_flow_run", {"parameters": params})["id"]
        )

    def states(self, run_id: str) -> list[str]:
        """The run's state names, oldest first."""
        history = self.call("GET", f"/flow_run_states/?flow_run_id={run_id}")
        return [s["name"] for s in sorted(history, key=lambda s: s["timestamp"])]

    def logs(self, limit: int = 120) -> str:
        """The newest log lines of every flow run (the pipeline's and its stage subflows')."""
        body = {"sort": "TIMESTAMP_DESC", "limit": limit}
        return "\n".join(line["message"] for line in reversed(self.call("POST", "/logs/filter", body)))

    def wait(self, run_ids: list[str], timeout: float) -> list[dict[str, Any]]:
        """Every run in a final state (the flow runs as the server has them); fails, with the logs,
        if one is not COMPLETED, if time runs out, or if two of them are ever RUNNING at once."""
        deadline = time.monotonic() + timeout
        while True:
            runs = [self.call("GET", f"/flow_runs/{i}") for i in run_ids]
            types = [r["state"]["type"] for r in runs]
            if types.count("RUNNING") > 1:
                pytest.fail(f"runs of {DEPLOYMENT} overlap: {[r['name'] for r in runs]} both RUNNING")
            if all(t in FINAL for t in types) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        if types != ["COMPLETED"] * len(runs):
            said = [(r["id"], r["state"]["name"], r["state"].get("message")) for r in runs]
            pytest.fail(
                f"flow runs of {DEPLOYMENT} after {timeout:.0f} s: {said}\n{self.logs()}\n{self.svc.tails()}"
            )
        return runs


def _when(run: dict[str, Any], key: str) -> datetime:
    return datetime.fromisoformat(run[key])


def _pipeline_runs(client: MlflowClient) -> list[Run]:
    experiments = [e.experiment_id for e in client.search_experiments()]
    query = f"tags.`ecogen.kind` = 'pipeline' and tags.`ecogen.pipeline` = '{PIPELINE}'"
    return list(client.search_runs(experiments, query, max_results=100))


def _versions(client: MlflowClient, name: str) -> list[ModelVersion]:
    return sorted(client.search_model_versions(f"name = '{name}'"), key=lambda v: int(v.version))


def _stage_run(client: MlflowClient, pipeline_run: Run, stage: str) -> Run:
    query = f"tags.`mlflow.parentRunId` = '{pipeline_run.info.run_id}' and tags.`ecogen.stage` = '{stage}'"
    (run,) = client.search_runs([pipeline_run.info.experiment_id], query)
    return run


def _gate_logged(client: MlflowClient, pipeline_run: Run) -> dict[str, Run]:
    """Domain → the gate stage's edge run under this pipeline run (metric ``promoted``, param
    ``gate_reason``)."""
    gate = _stage_run(client, pipeline_run, "gate")
    query = f"tags.`mlflow.parentRunId` = '{gate.info.run_id}'"
    edges = client.search_runs([pipeline_run.info.experiment_id], query)
    return {r.data.tags["ecogen.edge"].removeprefix("edge-"): r for r in edges}


def _champion_before(versions: list[ModelVersion], increment: int) -> str:
    """The version the gate had made champion when the run taking in ``increment`` started."""
    return [
        v.version
        for v in versions
        if int(v.tags[INCREMENT]) < increment and v.tags[DECISION].startswith("promoted: ")
    ][-1]


def test_three_increments_through_the_deployment(tmp_path: Path, offline_process_env: None) -> None:
    began = time.monotonic()
    spec = read_yaml(ROOT / "pipelines.yaml")["pipelines"][PIPELINE]
    spec = {**spec, "overrides": deep_merge(spec["overrides"], quick_overrides(SMALLER)), "schedule": NEVER}
    with services(tmp_path, machines={}) as svc:
        project = make_project(tmp_path / "project", {PIPELINE: spec})
        env = {**svc.env(project), "PREFECT_RUNNER_POLL_FREQUENCY": "1"}
        deploy_log = tmp_path / "ecogen-deploy.log"
        svc.logs.append(deploy_log)
        with deploy_log.open("w") as log:
            serve = start(["ecogen", "deploy", PIPELINE], project, env, log)
        prefect = Prefect(svc)
        client = MlflowClient(tracking_uri=svc.mlflow_uri)
        try:

            def deployment() -> dict[str, Any] | None:
                assert serve.poll() is None, f"ecogen deploy exited {serve.returncode}\n{svc.tails()}"
                try:
                    return prefect.call("GET", f"/deployments/name/{DEPLOYMENT}")
                except httpx.HTTPError:
                    return None

            dep = svc.wait_for(f"deployment {DEPLOYMENT}", deployment, 90)
            assert dep["global_concurrency_limit"]["limit"] == 1, dep
            assert dep["concurrency_options"]["collision_strategy"] == "ENQUEUE", dep

            (first,) = prefect.wait([prefect.trigger(dep["id"])], RUN_TIMEOUT)
            # two at once: the one that runs second waited for the deployment's slot
            pair = prefect.wait([prefect.trigger(dep["id"]), prefect.trigger(dep["id"])], 2 * RUN_TIMEOUT)
            seen = {r["id"]: prefect.states(r["id"]) for r in pair}
            earlier, later = sorted(pair, key=lambda r: _when(r, "start_time"))
            assert "AwaitingConcurrencySlot" in seen[later["id"]], seen
            assert _when(first, "end_time") <= _when(earlier, "start_time")
            assert _when(earlier, "end_time") <= _when(later, "start_time"), (earlier, later)

            made = _pipeline_runs(client)
            runs = {int(r.data.tags[INCREMENT]): r for r in made}
            assert sorted(runs) == [0, 1, 2] and len(made) == 3, [r.data.tags for r in made]
            assert [runs[k].info.status for k in range(3)] == ["FINISHED"] * 3
            for k in (1, 2):  # one after the other in MLflow too
                assert runs[k].info.start_time >= runs[k - 1].info.end_time

            # a run asking for an increment taken in already: completes, runs and registers nothing
            domains = read_yaml(project / "params.yaml")["data"]["domains"]
            names = [f"{PIPELINE}.edge-{d}" for d in domains]
            counts = {n: len(_versions(client, n)) for n in [f"{PIPELINE}.fm", *names]}
            (again,) = prefect.wait([prefect.trigger(dep["id"], ["stream.increment=1"])], RUN_TIMEOUT)
            said = again["state"]["message"]
            assert f"increment 1 was taken in by run {runs[1].info.run_id}" in said, again
            assert len(_pipeline_runs(client)) == 3
            assert {n: len(_versions(client, n)) for n in counts} == counts

            # the FM: registered once, by the first run, and served since
            (fm,) = _versions(client, f"{PIPELINE}.fm")
            assert (fm.version, fm.tags[INCREMENT], fm.run_id) == ("1", "0", runs[0].info.run_id)
            assert client.get_model_version_by_alias(fm.name, CHAMPION).version == "1"
            assert runs[0].data.tags[STARTED_FROM] == "nothing served yet: a cold start"

            edges = {name: _versions(client, name) for name in names}
            logged = {k: _gate_logged(client, runs[k]) for k in runs}
            gate_files = project / "runs" / PIPELINE / "artifacts" / "gate"
            for domain, name in zip(domains, names, strict=True):
                versions = edges[name]
                assert [v.version for v in versions] == ["1", "2", "3"]
                assert [v.tags[INCREMENT] for v in versions] == ["0", "1", "2"]
                assert [v.run_id for v in versions] == [runs[k].info.run_id for k in range(3)]
                for k, v in enumerate(versions):  # the tag says what the gate stage logged
                    verdict, reason = v.tags[DECISION].split(": ", 1)
                    assert verdict in ("promoted", "rejected"), v.tags[DECISION]
                    assert logged[k][domain].data.metrics["promoted"] == float(verdict == "promoted")
                    assert reason.startswith(logged[k][domain].data.params["gate_reason"]), (name, v.version)
                # the newest decision, as the gate stage wrote it: the last run's
                decision = json.loads((gate_files / f"{domain}.json").read_text())
                verdict = "promoted" if decision["promote"] else "rejected"
                assert decision["increment"] == 2
                assert versions[-1].tags[DECISION] == f"{verdict}: {decision['reason']}"
                # the champion: the newest promoted version; the first had no champion to beat
                promoted = [v.version for v in versions if v.tags[DECISION].startswith("promoted: ")]
                assert promoted[0] == "1" and "no champion" in versions[0].tags[DECISION]
                assert client.get_model_version_by_alias(name, CHAMPION).version == promoted[-1]
                assert _history(client, name) == promoted

            for k in (1, 2):  # warm starts: from the champions of their time, the FM delivered
                champions = ", ".join(f"{n}@v{_champion_before(edges[n], k)}" for n in names)
                assert runs[k].data.tags[STARTED_FROM] == f"{PIPELINE}.fm@v1, {champions}"
                pretrain = _stage_run(client, runs[k], "pretrain")
                assert pretrain.data.params["warm_from"] == f"{PIPELINE}.fm@champion"

            # rollback by hand: an edge that has had two champions (else one promoted by hand first)
            name = next((n for n in names if len(_history(client, n)) >= 2), names[0])
            cli_env = svc.env(project)
            if len(_history(client, name)) < 2:
                current = client.get_model_version_by_alias(name, CHAMPION).version
                other = max((v.version for v in edges[name] if v.version != current), key=int)
                sh(["ecogen", "promote", name, other, "--reason", "test"], project, cli_env)
            history = _history(client, name)
            out = sh(["ecogen", "rollback", name, "--reason", "test"], project, cli_env)
            assert f"champion is version {history[-2]} again" in out.stdout, out.stdout
            assert client.get_model_version_by_alias(name, CHAMPION).version == history[-2]
            back, left = (client.get_model_version(name, v).tags for v in history[-2:])
            assert "rolled back to: by hand: test" in back[PROMOTED], back
            assert "rolled back from: by hand: test" in left[DEMOTED], left
        finally:
            # serve first: it hangs when the server is already gone.  Stopped only now: stopped the
            # moment a run completes, its runner marked that run Cancelled ("Runner is shutting down")
            stop(serve)
    print(f"test_stream: {time.monotonic() - began:.0f} s; rolled back {name}; states of the pair: {seen}")
