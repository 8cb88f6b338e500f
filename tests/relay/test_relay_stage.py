"""The relay stage on digits: the student beats its start, and no edge or client data is touched."""

from __future__ import annotations

import builtins
import io
from pathlib import Path

import pytest
import torch

from ecogen.config.params import Params
from ecogen.models.checkpoint import load_fm
from ecogen.relay import relay as relay_module
from ecogen.relay.relay import run_relay
from ecogen.split.channel import Activation, TunableModules
from ecogen.stages import relay as relay_stage_module
from ecogen.stages.finetune import finetune_edge
from ecogen.stages.hfsl import hfsl
from ecogen.stages.prepare import prepare
from ecogen.stages.pretrain import pretrain
from ecogen.stages.relay import relay
from ecogen.workspace import Workspace

DOMAINS = ["identity", "invert", "rotate90"]


def _params() -> Params:
    return Params.model_validate(
        {
            "seed": 2,
            "accelerator": "cpu",
            "data": {
                "source": "digits",
                "domains": DOMAINS,
                "test_per_domain": 100,
                "public_pool": 600,
                "edge_labelled": 120,
                "samples_per_cluster": 40,
                "labelled_fraction": 0.5,
            },
            "model": {"patch_size": 4, "dim": 32, "depth": 2, "heads": 2, "decoder_dim": 16},
            "pretrain": {"epochs": 20, "batch_size": 64},
            "peft": {"epochs": 25, "lora_rank": 4, "lora_alpha": 8, "batch_size": 32, "lr": 0.003},
            "hfsl": {"clusters": 1, "rounds": 1, "batch_size": 8, "unlabelled_ratio": 1},
            "relay": {"epochs": 15, "public_samples": 600, "synthetic_samples": 300, "batch_size": 64},
            "energy": {"enabled": False},
        }
    )


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    ws = Workspace(Path(tmp_path_factory.mktemp("relay")))
    params = _params()
    prepare(params, ws)
    pretrain(params, ws)
    for d in DOMAINS:
        finetune_edge(params, ws, d)
    hfsl(params, ws)
    return ws


@pytest.fixture(scope="module")
def relayed(workspace: Workspace) -> tuple[dict[str, float], list[tuple[str, bool]]]:
    """Runs the relay stage once, recording every file opened and whether run_relay was running."""
    opened: list[tuple[str, bool]] = []
    inside = [False]
    real_open, real_run = builtins.open, run_relay

    def spy_open(file, *args, **kwargs):  # type: ignore[no-untyped-def]
        opened.append((str(file), inside[0]))
        return real_open(file, *args, **kwargs)

    def spy_run(*args, **kwargs):  # type: ignore[no-untyped-def]
        inside[0] = True
        try:
            return real_run(*args, **kwargs)
        finally:
            inside[0] = False

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(builtins, "open", spy_open)
        mp.setattr(io, "open", spy_open)
        mp.setattr(relay_stage_module, "run_relay", spy_run)
        result = relay(_params(), workspace)
    return result.metrics, opened


def test_relay_improves_the_student_over_its_start_on_the_teachers_domains(relayed) -> None:  # type: ignore[no-untyped-def]
    metrics, _ = relayed
    # the student starts as the naive relay (averaged modules) and is distilled from there
    assert metrics["fm_mean_accuracy"] > metrics["naive_mean_accuracy"]
    per_edge = metrics["upload_bytes_per_edge"] + metrics["prototype_bytes_per_edge"]
    assert per_edge == metrics["cloud_edge_up_bytes"] / len(DOMAINS)
    assert metrics["upload_bytes_per_edge"] < metrics["fm_bytes"]
    # routed (the default): the style prototypes went up too, and send most images home
    assert metrics["prototype_bytes_per_edge"] > 0
    assert sum(metrics[f"routing_accuracy_{d}"] for d in DOMAINS) / len(DOMAINS) > 0.6


def test_relay_reads_no_edge_or_client_data(relayed, workspace: Workspace) -> None:  # type: ignore[no-untyped-def]
    _, opened = relayed
    data = workspace.data.resolve()
    inside = [Path(p).resolve() for p, during in opened if during]
    assert inside, "the spy saw no file at all"
    for path in inside:
        if data in path.parents:
            assert path.name in ("public.pt", "meta.json"), f"run_relay read {path}"
    for path, _ in opened:
        p = Path(path).resolve()
        if data in p.parents and p.parent != data:  # a domain's folder: edge, cluster, test files
            assert p.name == "test.pt", f"the relay stage read {p}"


def test_relay_accepts_model_states_only(workspace: Workspace) -> None:
    params = _params()
    fm = load_fm(workspace.fm)
    public = torch.zeros(4, 1, 8, 8, dtype=torch.uint8)
    sample = Activation(torch.rand(2, 5, 32))
    with pytest.raises(TypeError, match="only TunableModules"):
        relay_module.run_relay(fm, {"identity": sample}, public, params.relay, params.peft, "cpu", 0)  # type: ignore[dict-item]
    images = TunableModules({"x": torch.rand(2, 1, 8, 8)})  # a tensor of samples posing as modules
    with pytest.raises(ValueError, match="StylePrototypes"):  # routed: the prototypes are required
        relay_module.run_relay(fm, {"identity": images}, public, params.relay, params.peft, "cpu", 0)
    confidence = params.relay.model_copy(update={"weighting": "confidence"})
    with pytest.raises(KeyError, match="tunable state mismatch"):
        relay_module.run_relay(fm, {"identity": images}, public, confidence, params.peft, "cpu", 0)
    with pytest.raises(TypeError, match="uint8"):
        relay_module.run_relay(fm, {}, public.float(), params.relay, params.peft, "cpu", 0)
