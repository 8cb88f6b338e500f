"""The peer job in Flower's Simulation Engine (Ray backend): a ``ClientApp`` whose train handler
runs the same client code as EcoGen, a ``ServerApp`` with Flower's ``FedAvg`` weighted by the
examples each client trained on, and central evaluation on the test set after every round.

Each virtual client is given one CPU (``client_resources``) and one torch thread.  Bytes per
round are what Flower's messages carry down and up (the arrays of the tunable modules).  Needs the
``peers`` extra (``pip install -e '.[peers]'``, see README.md here).  Prints one JSON object."""

from __future__ import annotations

import json
import logging
import os
import sys
import time

from flwr.app import ArrayRecord, Context, MetricRecord
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedAvg
from flwr.simulation import run_simulation

from benchmarks.peers.flower_client import client_app, shards
from benchmarks.peers.job import CLIENTS, EVAL_BATCH, ROUNDS, RssSampler, initial_model, state_bytes, summary
from ecogen.peft.tunable import load_tunable_state, tunable_state
from ecogen.training.classifier import evaluate

RESULT: dict[str, list[float]] = {"ends": [], "accuracy": [], "replied_rounds": []}


def _server_app() -> ServerApp:
    app = ServerApp()

    @app.main()
    def main(grid: Grid, context: Context) -> None:
        model = initial_model()
        test = shards()[1]

        def central(server_round: int, arrays: ArrayRecord) -> MetricRecord:
            if server_round > 0:  # round 0: the initial model, before any training
                load_tunable_state(model, dict(arrays.to_torch_state_dict()))
                RESULT["accuracy"].append(evaluate(model, test, EVAL_BATCH, "cpu"))
            RESULT["ends"].append(time.perf_counter())
            return MetricRecord({"accuracy": RESULT["accuracy"][-1] if server_round else 0.0})

        strategy = FedAvg(
            fraction_train=1.0, fraction_evaluate=0.0, min_train_nodes=CLIENTS, min_available_nodes=CLIENTS
        )
        result = strategy.start(
            grid=grid,
            initial_arrays=ArrayRecord(tunable_state(model)),
            num_rounds=ROUNDS,
            evaluate_fn=central,
        )
        RESULT["replied_rounds"] = [float(r) for r in result.train_metrics_clientapp]

    return app


def main() -> dict:
    logging.getLogger("flwr").setLevel(logging.WARNING)
    modules = state_bytes(tunable_state(initial_model()))
    backend = {
        "client_resources": {"num_cpus": 1, "num_gpus": 0.0},
        "init_args": {"num_cpus": os.cpu_count() or 1},
    }
    with RssSampler() as rss:
        run_simulation(_server_app(), client_app, num_supernodes=CLIENTS, backend_config=backend)
    if len(RESULT["replied_rounds"]) < ROUNDS:  # Flower logs a failing client and goes on
        raise RuntimeError(f"Flower's clients replied in {len(RESULT['replied_rounds'])} of {ROUNDS} rounds")
    # every round: the modules down to each client and back up (Flower does not count; its
    # messages carry exactly these arrays, plus a few bytes of config and metrics)
    per_round = [2 * CLIENTS * modules] * ROUNDS
    return summary("flower", RESULT["ends"], RESULT["accuracy"], per_round, rss.peak)


if __name__ == "__main__":
    json.dump(main(), sys.stdout)
    print()
