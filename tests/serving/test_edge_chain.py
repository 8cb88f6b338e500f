"""The served chain: built from a run folder as the infer stage builds it, and answering as the
unsplit edge model does."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ecogen.config.params import PeftParams
from ecogen.data.prepared import DataMeta, Split, save_meta, save_split, to_float
from ecogen.models.checkpoint import save_fm
from ecogen.models.vit import MaskedAutoencoder, ViT, ViTConfig
from ecogen.peft.edge import build_edge_model, save_tunable
from ecogen.serving.chain import chain_from_run, fresh_chain

CFG = ViTConfig(image_size=8, channels=1, patch_size=4, num_classes=3, dim=16, depth=2, heads=2)
PIPELINES = "default: tiny\npipelines:\n  tiny:\n    stages: [prepare, pretrain, finetune, hfsl, infer]\n"


def _run_folder(root: Path) -> torch.nn.Module:
    """A project whose `tiny` run has an FM, the identity edge's tunable modules and test images."""
    (root / "params.yaml").write_text("seed: 0\ndata: {domains: [identity, invert]}\n")
    (root / "pipelines.yaml").write_text(PIPELINES)
    run = root / "runs" / "tiny"
    torch.manual_seed(0)
    fm = MaskedAutoencoder(ViT(CFG))
    save_fm(fm, run / "artifacts" / "fm.pt")
    edge = build_edge_model(fm, PeftParams(), seed=1)  # edge_seed: params.seed + 1 + domain index
    with torch.no_grad():
        for p in edge.parameters():
            if p.requires_grad:
                p.add_(0.1)  # tuned modules, not the initial ones: the loader must bring them back
    save_tunable(edge, run / "artifacts" / "hfsl" / "identity" / "tunable.pt", "lora")
    x = torch.randint(0, 256, (5, 1, 8, 8), dtype=torch.uint8)
    save_split(Split(x, torch.arange(5) % 3), run / "data" / "identity" / "test.pt")
    meta = DataMeta("synthetic", 8, 1, 3, ["a", "b", "c"], ["identity", "invert"], 1, {})
    save_meta(meta, run / "data")
    return edge.eval()


def test_a_run_folder_serves_its_tuned_edge_model(tmp_path: Path) -> None:
    edge = _run_folder(tmp_path)
    chain, test = chain_from_run(tmp_path, "tiny")
    assert len(test) == 5 and chain.image_shape == (1, 8, 8)
    assert len(chain.segments) == 3  # default hfsl.devices_per_cluster
    x = to_float(test.x[:1])
    with torch.no_grad():
        expected = edge(x).softmax(-1)[0]
    answer = chain.answer(x)
    torch.testing.assert_close(answer.probabilities, expected)
    assert len(answer.compute_s) == 3 and answer.hop_bytes == [5 * 16 * 4] * 2


def test_a_missing_edge_or_run_says_so(tmp_path: Path) -> None:
    _run_folder(tmp_path)
    with pytest.raises(ValueError, match="no edge 'rotate90'"):
        chain_from_run(tmp_path, "tiny", "rotate90")
    with pytest.raises(FileNotFoundError, match="tunable.pt not found"):
        chain_from_run(tmp_path, "tiny", "invert")


def test_fresh_chains_are_seeded() -> None:
    x = torch.zeros(1, 1, 8, 8)
    a, b = fresh_chain(CFG, seed=3).answer(x), fresh_chain(CFG, seed=3).answer(x)
    torch.testing.assert_close(a.probabilities, b.probabilities)
    with pytest.raises(ValueError, match="at least two segments"):
        type(fresh_chain(CFG))(fresh_chain(CFG).segments[:1], fresh_chain(CFG).links, (1, 8, 8))
