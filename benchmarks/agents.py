"""EcoGen on Prefect agents against running it in one process: placed `quick`, trials on 2 workers.

Starts, on 127.0.0.1 and under a temporary folder, what a team would run on its machines: a
`prefect server`, an `mlflow server` with an artifact proxy, work pools, and "machines" (each an
empty folder of its own whose environment names the servers and nothing of the project) with one
`prefect worker` per pool they serve.  Then, in a fresh copy of the project, it times:

* ``trials``: a small experiment (four equal hfsl trials of about a minute, over shared stages
  run beforehand) run locally one trial at a time — at one thread, and at torch's default —
  against its trials on two workers of the pool ``trials``, one thread each (``--limit 1``);
* ``placed``: `quick` run locally, against `quick` with pretrain on pool ``gpu`` (machine A) and
  finetune/hfsl/infer on pool ``edge`` (machine B).

Both sides track to the same server; results are compared metric by metric.  One JSON object on
stdout, progress on stderr::

    python -m benchmarks.agents            # about 6 minutes on 2 cores
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx
import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
# machine → the pools its workers poll; the trials pool's workers take one flow run at a time
MACHINES = {"machine-a": ("gpu", "trials"), "machine-b": ("edge", "trials")}
ONE_AT_A_TIME = ("trials",)
QUIET = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    "DVC_NO_ANALYTICS": "1",
    "CODECARBON_LOG_LEVEL": "error",
    "TQDM_DISABLE": "1",
    "HF_HUB_OFFLINE": "1",
    "PYTHONUNBUFFERED": "1",
    "GIT_CONFIG_NOSYSTEM": "1",
}
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}  # a worker's flow runs: one thread each
LEAKY = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    """os.environ for a process working in ``home``: no Prefect or MLflow settings of the caller's,
    nothing written outside ``home``."""
    env = {k: v for k, v in os.environ.items() if k not in LEAKY and not k.startswith("PREFECT_")}
    (home / ".tmp").mkdir(parents=True, exist_ok=True)
    env.update(QUIET, PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}")
    env.update(PREFECT_HOME=str(home / ".prefect"), TMPDIR=str(home / ".tmp"))
    env.update(extra)
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_process(args: list[str], cwd: Path, env: Mapping[str, str], log: IO[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        args, cwd=cwd, env=dict(env), stdout=log, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )


def stop_process(proc: subprocess.Popen[str], grace: float = 20) -> None:
    """SIGTERM, then SIGKILL: the process and the group it leads."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            pass
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        time.sleep(0.5)
    proc.wait(10)


def mlflow_server(store: Path, port: int) -> list[str]:
    """The command of an `mlflow server` on 127.0.0.1 keeping runs and artifacts in ``store``,
    its artifacts proxied over HTTP (``--artifacts-destination``)."""
    return [
        "mlflow", "server", "--backend-store-uri", f"sqlite:///{store / 'mlflow.db'}",
        "--artifacts-destination", str(store / "artifacts"), "--host", "127.0.0.1",
        "--port", str(port), "--workers", "1",
    ]  # fmt: skip


def mlflow_env(env: Mapping[str, str]) -> dict[str, str]:
    return {**env, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}  # 0.5 GB and 2 processes, not 2.2 and 9


def healthy(url: str) -> bool:
    try:
        return httpx.get(url, timeout=3, trust_env=False).status_code == 200
    except httpx.HTTPError:
        return False


@dataclass
class Services:
    """What :func:`services` started: the servers' addresses, the machines' folders, the logs."""

    root: Path
    prefect_api: str
    mlflow_uri: str
    logs: list[Path] = field(default_factory=list)

    def env(self, project: Path, threads: int | None = 1) -> dict[str, str]:
        """The environment of a project's ``ecogen`` commands: both servers named; ``threads``:
        torch's (OMP_NUM_THREADS; None: its default, the machine's cores)."""
        env = clean_env(project, PREFECT_API_URL=self.prefect_api, MLFLOW_TRACKING_URI=self.mlflow_uri)
        if threads is not None:
            env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
        return env

    def tails(self, chars: int = 3000) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-chars:]}" for p in self.logs)

    def wait_for(self, what: str, probe: Callable[[], Any], timeout: float) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if value := probe():
                return value
            time.sleep(0.5)
        raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}\n{self.tails()}")


@contextmanager
def services(root: Path, machines: Mapping[str, tuple[str, ...]] = MACHINES) -> Iterator[Services]:
    """A Prefect server, an MLflow server with an artifact proxy, a process work pool per pool the
    ``machines`` name, and their workers (named ``<machine>-<pool>``); all stopped on exit, the
    workers first."""
    home = root / "services"
    home.mkdir(parents=True)
    prefect_port, mlflow_port = free_port(), free_port()
    found = Services(root, f"http://127.0.0.1:{prefect_port}/api", f"http://127.0.0.1:{mlflow_port}")
    base = clean_env(home)

    def start(name: str, args: list[str], cwd: Path, env: Mapping[str, str]) -> subprocess.Popen[str]:
        log = root / f"{name}.log"
        found.logs.append(log)
        with log.open("w") as f:
            return start_process(args, cwd, env, f)

    servers: list[subprocess.Popen[str]] = []
    workers: list[subprocess.Popen[str]] = []
    try:
        port = str(prefect_port)
        servers.append(
            start(
                "prefect-server",
                ["prefect", "server", "start", "--host", "127.0.0.1", "--port", port],
                home,
                base,
            )
        )
        store = home / "mlflow"
        store.mkdir()
        servers.append(start("mlflow-server", mlflow_server(store, mlflow_port), home, mlflow_env(base)))
        found.wait_for("the Prefect server", lambda: healthy(f"{found.prefect_api}/health"), 90)
        found.wait_for("the MLflow server", lambda: healthy(f"{found.mlflow_uri}/health"), 90)
        env = {**base, "PREFECT_API_URL": found.prefect_api}
        pools = list(dict.fromkeys(p for ps in machines.values() for p in ps))
        for pool in pools:
            subprocess.run(
                ["prefect", "work-pool", "create", pool, "--type", "process"],
                cwd=home, env=env, check=True, capture_output=True, timeout=60,
            )  # fmt: skip
        for machine, served in machines.items():
            folder = root / machine
            folder.mkdir()
            # a second machine: its own empty folder, the servers' addresses and nothing else
            menv = clean_env(
                folder, PREFECT_API_URL=found.prefect_api, PREFECT_WORKER_QUERY_SECONDS="1", **ONE_THREAD
            )
            menv["PATH"] = f"{BIN}{os.pathsep}/usr/bin:/bin"
            for pool in served:
                args = [
                    "prefect",
                    "worker",
                    "start",
                    "--pool",
                    pool,
                    "--name",
                    f"{machine}-{pool}",
                    "--type",
                    "process",
                ]
                args += ["--limit", "1"] if pool in ONE_AT_A_TIME else []
                workers.append(start(f"{machine}-{pool}", args, folder, menv))

        def online() -> bool:
            for pool in pools:
                r = httpx.post(
                    f"{found.prefect_api}/work_pools/{pool}/workers/filter",
                    json={},
                    timeout=5,
                    trust_env=False,
                )
                up = [w for w in r.json() if w.get("status") == "ONLINE"]
                if len(up) < sum(pool in ps for ps in machines.values()):
                    return False
            return True

        found.wait_for("every worker online", online, 90)
        yield found
    finally:
        for proc in [*workers, *reversed(servers)]:  # workers before the servers they talk to
            stop_process(proc)


def make_project(folder: Path, pipelines: Mapping[str, Any]) -> Path:
    """params.yaml, pipelines.yaml (with ``pipelines`` added) and dvc.yaml in a fresh git repo."""
    folder.mkdir(parents=True)
    for name in ("params.yaml", "pipelines.yaml", "dvc.yaml"):
        shutil.copy(ROOT / name, folder / name)
    data = yaml.safe_load((folder / "pipelines.yaml").read_text())
    data["pipelines"].update(pipelines)
    (folder / "pipelines.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    env = clean_env(folder)
    git = [
        "git",
        "-c",
        "user.name=EcoGen",
        "-c",
        "user.email=ecogen@example.invalid",
        "-c",
        "commit.gpgsign=false",
    ]
    for args in (["git", "init", "-q"], ["git", "add", "-A"], [*git, "commit", "-q", "-m", "the project"]):
        subprocess.run(args, cwd=folder, env=env, check=True, capture_output=True)
    return folder


def quick(placed: bool, *more: Mapping[str, Any]) -> dict[str, Any]:
    """The `quick` pipeline of pipelines.yaml (``more`` replaces its keys), pools set when ``placed``."""
    spec = dict(yaml.safe_load((ROOT / "pipelines.yaml").read_text())["pipelines"]["quick"])
    spec.pop("schedule", None)
    for over in more:
        spec.update(over)
    if placed:
        spec["pools"] = {"pretrain": "gpu", "finetune": "edge", "hfsl": "edge", "infer": "edge"}
    return spec


def experiment(pool: str | None, parallel: int, *more: Mapping[str, Any]) -> dict[str, Any]:
    """`quick`'s shared stages, then two hfsl trials (1 and 2 clusters per edge)."""
    trials: dict[str, Any] = {"stages": ["hfsl"], "replicates": 1, "parallel": parallel}
    trials["rows"] = {"c1": {"hfsl": {"clusters": 1}}, "c2": {"hfsl": {"clusters": 2}}}
    if pool:
        trials["pool"] = pool
    return quick(False, {"stages": SHARED + ["hfsl"], "trials": trials}, *more)


SHARED = ["prepare", "pretrain", "finetune"]
# The benchmark's experiment: four equal trials (hfsl, 2 clusters per edge, 40 rounds: about a
# minute each at one thread) over small shared stages, so that the trials are what is compared.
SMALL_SHARED = {
    "data": {"test_per_domain": 300, "public_pool": 4000, "edge_labelled": 300, "samples_per_cluster": 400},
    "model": {"dim": 32, "depth": 2, "heads": 2},
    "pretrain": {"epochs": 5},
    "peft": {"epochs": 10},
    "hfsl": {"clusters": 2, "rounds": 40},
}
FOUR_TRIALS = {"stages": ["hfsl"], "replicates": 4, "parallel": 1, "rows": {"c2": {}}}


def ecogen_run(svc: Services, project: Path, pipeline: str, *args: str, threads: int | None = None) -> float:
    """Seconds `ecogen run PIPELINE` took (``threads``: OMP_NUM_THREADS, else torch's default);
    RuntimeError with its output if it failed."""
    env = svc.env(project, threads)
    start = time.perf_counter()
    out = subprocess.run(
        ["ecogen", "run", pipeline, *args], cwd=project, env=env, capture_output=True, text=True, timeout=3600
    )
    took = time.perf_counter() - start
    if out.returncode != 0:
        raise RuntimeError(
            f"ecogen run {pipeline} exited {out.returncode}:\n"
            f"{out.stdout[-4000:]}{out.stderr[-4000:]}\n{svc.tails()}"
        )
    print(
        f"  ecogen run {pipeline} {' '.join(args)} (threads {threads or 'default'}): {took:.1f} s",
        file=sys.stderr,
    )
    return took


def _stage_metrics(svc: Services, pipeline: str) -> dict[str, dict[str, float]]:
    """Every stage run's model metrics (not its own time or energy), by stage label."""
    from mlflow import MlflowClient

    client = MlflowClient(svc.mlflow_uri)
    experiments = [e.experiment_id for e in client.search_experiments()]
    query = f"tags.`ecogen.pipeline` = '{pipeline}' and tags.`ecogen.kind` = 'stage'"
    own = ("duration", "energy", "emissions", "power", "latency", "_s", "_ms", "time")
    return {
        f"{r.data.tags['ecogen.stage']}[{r.data.tags.get('ecogen.trial', '')}]": {
            k: v for k, v in r.data.metrics.items() if not any(o in k for o in own)
        }
        for r in client.search_runs(experiments, query, max_results=1000)
    }


def _experiment(svc: Services, root: Path, name: str, threads: int | None, *args: str) -> float:
    """A fresh project whose shared stages ran once (not timed); then the experiment ``name``,
    which reuses them, timed: what differs between the variants is how the trials run."""
    spec = {"stages": [*SHARED, "hfsl"], "overrides": SMALL_SHARED, "trials": FOUR_TRIALS}
    project = make_project(
        root / name, {name: spec, f"{name}-base": {"stages": SHARED, "overrides": SMALL_SHARED}}
    )
    ecogen_run(svc, project, f"{name}-base", threads=threads)
    return ecogen_run(svc, project, name, *args, threads=threads)


def _quick(svc: Services, root: Path, name: str, placed: bool) -> float:
    project = make_project(root / name, {name: quick(placed)})
    return ecogen_run(svc, project, name, threads=1)


MEASURES = ("trials_local_in_turn_1_thread", "trials_local_in_turn_default_threads", "trials_on_2_workers",
            "quick_local", "quick_placed")  # fmt: skip


def _measure(svc: Services, root: Path, name: str) -> float:
    if name == "trials_local_in_turn_1_thread":  # one trial at a time, each at one thread
        return _experiment(svc, root, "x-local1", 1, "--trials-at-once", "1")
    if name == "trials_local_in_turn_default_threads":  # ... at torch's default (the machine's cores)
        return _experiment(svc, root, "x-local", None, "--trials-at-once", "1")
    if name == "trials_on_2_workers":  # two in flight, one per worker of `trials`, one thread each
        return _experiment(svc, root, "x-agents", 1, "--place", "trials=trials", "--trials-at-once", "2")
    if name == "quick_local":
        return _quick(svc, root, "q-local", placed=False)
    return _quick(svc, root, "q-placed", placed=True)


def _ratio(t: Mapping[str, float], a: str, b: str) -> float | None:
    return round(t[a] / t[b], 2) if a in t and b in t else None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", nargs="+", choices=MEASURES, default=list(MEASURES), help="what to measure")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="ecogen-agents-") as tmp, ExitStack() as stack:
        root = Path(tmp)
        svc = stack.enter_context(services(root))
        t = {name: _measure(svc, root, name) for name in args.only}
        same = {}
        if {"trials_on_2_workers", "trials_local_in_turn_1_thread"} <= set(t):
            same["trials"] = _stage_metrics(svc, "x-agents") == _stage_metrics(svc, "x-local1")
        if {"quick_placed", "quick_local"} <= set(t):
            same["quick"] = _stage_metrics(svc, "q-placed") == _stage_metrics(svc, "q-local")
        result = {
            "machine": f"{os.cpu_count()} cores",
            "seconds": {k: round(v, 1) for k, v in t.items()},
            "trials_on_2_workers_vs_local_in_turn_1_thread": _ratio(
                t, "trials_on_2_workers", "trials_local_in_turn_1_thread"
            ),
            "trials_on_2_workers_vs_local_in_turn_default_threads": _ratio(
                t, "trials_on_2_workers", "trials_local_in_turn_default_threads"
            ),
            "placed_quick_vs_local_quick": _ratio(t, "quick_placed", "quick_local"),
            "same_metrics": same,
        }
        print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
