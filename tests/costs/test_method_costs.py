"""The stage-wide modelled costs of a method: split chain, one device holding the whole model,
or a pooled learner at the edge server, against hand arithmetic."""

from __future__ import annotations

import pytest

from ecogen.config.params import DeviceClass, LinkClass, Params
from ecogen.costs.flops import SegmentFlops, image_flops, mae_step_flops, segment_flops
from ecogen.costs.method import MethodKind, Workload, central_costs, method_costs
from ecogen.models.vit import MaskedAutoencoder, ViT, ViTConfig
from ecogen.stages.finetune import modelled_finetune
from ecogen.stages.pretrain import modelled_pretrain

PHONE = DeviceClass(flops=1e9, watts_busy=4.0, watts_idle=1.0)
BOARD = DeviceClass(flops=1e10, watts_busy=10.0, watts_idle=2.0)
SERVER = DeviceClass(flops=1e11, watts_busy=100.0, watts_idle=10.0)
DEVICES = {"phone": PHONE, "board": BOARD, "edge_server": SERVER}
LINKS = {
    "d2d": LinkClass(mbps=8.0, latency_ms=0.0, joules_per_byte=1e-6),
    "edge_client": LinkClass(mbps=8.0, latency_ms=0.0, joules_per_byte=1e-5),
    "cloud_edge": LinkClass(mbps=8.0, latency_ms=0.0, joules_per_byte=1.0),
}
CHAIN = [("phone", PHONE), ("board", BOARD), ("phone", PHONE)]
# per image: embedding 1 GFLOP forward, two blocks 2 + 2 forward and 4 backward each, head 1 + 2
FLOPS = SegmentFlops(
    images=1,
    forward=[10**9, 2 * 10**9, 2 * 10**9, 10**9],
    backward=[0, 4 * 10**9, 4 * 10**9, 2 * 10**9],
    trains=[False, True, True, True],
)
# 10 images a round, 2 rounds, 2 clusters each; 1 MB over each device link (cloud_edge ignored)
WORK = Workload(
    forward_images=10,
    backward_images=10,
    cluster_rounds=4,
    rounds=2,
    link_bytes={"d2d": 1e6, "edge_client": 1e6, "cloud_edge": 1e9},
)


def test_a_split_method_runs_each_segment_on_its_device_of_the_chain() -> None:
    costs = method_costs(MethodKind(split=True), FLOPS, CHAIN, [(0, 2)], DEVICES, LINKS, WORK)
    busy = [10e9 / 1e9, 10 * 12e9 / 1e10, 10 * 3e9 / 1e9]  # start, middle (both blocks), end
    link_s = 2 * 1e6 * 8 / 8e6
    total = sum(busy) + link_s
    joules = [
        d.watts_busy * b + d.watts_idle * (total - b)
        for d, b in zip((PHONE, BOARD, PHONE), busy, strict=True)
    ]
    assert costs.device_j == pytest.approx(sum(joules))
    assert costs.roles == pytest.approx({"start": joules[0], "middle0": joules[1], "end": joules[2]})
    assert costs.link_j == pytest.approx({"d2d": 1.0, "edge_client": 10.0})  # cloud_edge is no device's
    assert costs.time_s == pytest.approx(total / 2)  # two clusters side by side


def test_a_whole_model_method_trains_everything_on_the_first_device_of_the_chain() -> None:
    costs = method_costs(MethodKind(split=False), FLOPS, CHAIN, [], DEVICES, LINKS, WORK)
    busy = 10 * 16e9 / 1e9
    total = busy + 2.0
    assert costs.device_j == pytest.approx(4.0 * busy + 1.0 * 2.0)
    assert costs.time_s == pytest.approx(total / 2)
    metrics = costs.metrics()
    assert metrics["modelled_device_energy_j"] == costs.device_j
    assert metrics["modelled_link_energy_j"] == pytest.approx(11.0)
    assert metrics["modelled_client_energy_j"] == costs.device_j
    assert all(k.startswith("modelled_") for k in metrics)


def test_a_pooled_learner_trains_alone_on_the_edge_server() -> None:
    pooled = Workload(forward_images=10, backward_images=10, cluster_rounds=0, rounds=2, link_bytes={})
    costs = method_costs(MethodKind(split=False, pooled=True), FLOPS, CHAIN, [], DEVICES, LINKS, pooled)
    busy = 10 * 16e9 / 1e11
    assert costs.device_j == pytest.approx(100.0 * busy) and costs.time_s == pytest.approx(busy)
    assert costs.link_energy_j == 0.0


def test_a_chain_that_does_not_fit_the_ranges_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="2 device classes for a chain of 3"):
        method_costs(MethodKind(split=True), FLOPS, CHAIN[:2], [(0, 2)], DEVICES, LINKS, WORK)


def test_a_stage_on_one_device_alone_costs_its_flops_at_the_busy_watts() -> None:
    assert central_costs(2e11, SERVER) == pytest.approx(
        {"modelled_device_energy_j": 200.0, "modelled_time_s": 2.0}
    )


def test_an_mae_step_and_an_edge_model_image_are_counted_by_torch() -> None:
    vit = ViT(ViTConfig())
    step = mae_step_flops(MaskedAutoencoder(vit), 8, 0.75)
    assert 0 < mae_step_flops(MaskedAutoencoder(vit), 4, 0.75) < step  # grows with the batch
    whole = image_flops(vit, 4)  # every weight trains: forward + backward of the full ViT
    assert whole == pytest.approx(sum(segment_flops(vit, 4).blocks) / 4, rel=0.5)


def test_pretrain_is_modelled_on_the_cloud_gpu_and_a_fine_tune_on_the_edge_server() -> None:
    params = Params()
    vit = ViT(ViTConfig())
    gpu, server = params.costs.devices["cloud_gpu"], params.costs.devices["edge_server"]
    mae = MaskedAutoencoder(vit)
    batch = params.pretrain.batch_size
    per_image = mae_step_flops(mae, batch, params.pretrain.mask_ratio, seed=params.seed) / batch
    assert modelled_pretrain(params, mae, 1000) == pytest.approx(central_costs(per_image * 1000, gpu))
    tuned = modelled_finetune(params, vit, 100)
    assert tuned["modelled_time_s"] == pytest.approx(
        image_flops(vit, params.peft.batch_size) * 100 / server.flops
    )
