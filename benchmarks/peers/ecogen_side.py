"""The peer job in EcoGen: ``run_hfsl`` with the ``fedavg_peft`` strategy, one edge, six clients.

Clients train in threads of this process (one torch thread each); the edge's channel counts the
modules that go down and up.  Prints one JSON object (see ``job.summary``)."""

from __future__ import annotations

import json
import sys
import time

from torch import nn

from benchmarks.peers.job import EVAL_BATCH, HFSL, RssSampler, client_data, initial_model, summary
from ecogen.federated.hfsl import run_hfsl
from ecogen.training.classifier import evaluate


def main() -> dict:
    shards, test = client_data()
    model = initial_model()
    ends: list[float] = []
    accuracy: list[float] = []

    def evaluate_round(m: nn.Module) -> float:  # called once at the end of every round
        accuracy.append(evaluate(m, test, EVAL_BATCH, "cpu"))
        ends.append(time.perf_counter())
        return accuracy[-1]

    with RssSampler() as rss:
        ends.append(time.perf_counter())
        out = run_hfsl(model, shards, HFSL, evaluate_round, "cpu", seed=0)
    per_round = [sum(r.values()) for r in out.bytes_per_round]
    return summary("ecogen", ends, accuracy, per_round, rss.peak)


if __name__ == "__main__":
    json.dump(main(), sys.stdout)
    print()
