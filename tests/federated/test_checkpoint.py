"""Round checkpoints: an HFSL run stopped after round k continues from round k + 1 and ends
where the uninterrupted run ends."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from federated_support import CFG, cluster

from ecogen.config.params import HfslParams, PeftParams
from ecogen.federated.hfsl import EdgeJob, run_hfsl_edges
from ecogen.models.vit import MaskedAutoencoder, ViT
from ecogen.peft.edge import build_edge_model


def _jobs(evaluate) -> list[EdgeJob]:
    torch.manual_seed(0)
    fm = MaskedAutoencoder(ViT(CFG))
    model = build_edge_model(fm, PeftParams(method="lora", lora_rank=2), seed=0)
    clusters = [cluster(1, 20, 10), cluster(2, 20, 10)]
    return [EdgeJob("e", model, clusters, evaluate, 3, own=cluster(9, 12, 12))]


class Stop(Exception):
    pass


# fedex: the frozen weights FedEx-LoRA corrected, and which correction each cluster holds (one
# missed a delivery while offline), come back too
LEVERS = {
    "ecogen": {},
    "local": {"method": "local"},
    "fedex": {"lora_aggregation": "fedex", "device_dropout": 0.4},
}


@pytest.mark.parametrize("levers", LEVERS.values(), ids=LEVERS.keys())
def test_a_run_stopped_after_round_two_continues_from_round_three(
    tmp_path: Path, levers: dict, caplog
) -> None:
    cfg = HfslParams(
        **{"clusters": 2, "rounds": 4, "batch_size": 4, "local_steps": 3, "unlabelled_weight": 0.0, **levers}
    )
    counted: list[int] = []
    jobs = _jobs(lambda m: counted.append(1) or 0.5)
    whole, whole_model = run_hfsl_edges(jobs, cfg, "cpu")["e"], jobs[0].model
    per_round = len(counted) // cfg.rounds  # evaluations a round makes (local: one per cluster)

    calls: list[int] = []

    def stop_in_round_three(model) -> float:
        calls.append(1)
        if len(calls) > 2 * per_round:
            raise Stop
        return 0.5

    ckpt = tmp_path / ".rounds.pt"
    with pytest.raises(Stop):
        run_hfsl_edges(_jobs(stop_in_round_three), cfg, "cpu", checkpoint=ckpt)
    assert ckpt.is_file()
    with caplog.at_level("INFO", logger="ecogen.hfsl"):
        jobs = _jobs(lambda m: 0.5)
        resumed, ended = run_hfsl_edges(jobs, cfg, "cpu", checkpoint=ckpt)["e"], jobs[0].model
    assert "continuing after round 2" in caplog.text
    assert not ckpt.exists()  # gone once the run finished
    assert resumed.bytes_per_round == whole.bytes_per_round
    assert resumed.per_round("steps") == whole.per_round("steps") and len(resumed.accuracy) == 4
    gap = max((resumed.state[k] - whole.state[k]).abs().max().item() for k in whole.state)
    assert gap <= 1e-6
    for (n, p), q in zip(ended.state_dict().items(), whole_model.state_dict().values(), strict=True):
        assert (p - q).abs().max().item() <= 1e-6, n  # the frozen weights too


def test_a_checkpoint_of_another_run_is_ignored(tmp_path: Path, caplog) -> None:
    cfg = HfslParams(clusters=2, rounds=2, batch_size=4, local_steps=2, unlabelled_weight=0.0)
    ckpt = tmp_path / ".rounds.pt"
    run_hfsl_edges(_jobs(lambda m: 0.5), cfg.model_copy(update={"rounds": 3}), "cpu", checkpoint=ckpt)
    ckpt.write_bytes(b"")  # a damaged file
    with caplog.at_level("INFO", logger="ecogen.hfsl"):
        out = run_hfsl_edges(_jobs(lambda m: 0.5), cfg, "cpu", checkpoint=ckpt)["e"]
    assert len(out.accuracy) == 2 and "ignoring the unreadable checkpoint" in caplog.text
