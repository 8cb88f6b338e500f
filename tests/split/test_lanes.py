"""Lane-aware layers compute what vmap over functional_call computes, lane by lane."""

import torch
from torch.func import functional_call, vmap

from ecogen.config.params import PeftParams
from ecogen.models.vit import MaskedAutoencoder, ViT, ViTConfig, split_segments
from ecogen.peft.edge import base_vit, build_edge_model
from ecogen.split.lanes import lane_forwards, lane_layers

CFG = ViTConfig(image_size=8, patch_size=2, dim=16, depth=3, heads=2, num_classes=3)


def _segments(method: str):
    torch.manual_seed(0)
    model = build_edge_model(MaskedAutoencoder(ViT(CFG)), PeftParams(method=method, lora_rank=2), seed=0)
    vit = base_vit(model)
    return model, split_segments(vit, [(0, 1), (1, 2), (2, 3)])


def test_a_lora_segment_runs_lane_by_lane_as_vmap_does() -> None:
    _, segments = _segments("lora")
    lanes, rows = 3, 4
    for seg in segments[1:]:  # blocks, then blocks + head
        names = [n for n, p in seg.named_parameters() if p.requires_grad]
        layers = lane_layers(seg, names)
        assert layers is not None and names
        stacked = {
            n: torch.randn(lanes, *p.shape, requires_grad=True) * 0.3
            for n, p in seg.named_parameters()
            if p.requires_grad
        }
        h = torch.randn(lanes, rows, 1 + CFG.num_patches, CFG.dim)
        want = vmap(lambda p, x, s=seg: functional_call(s, p, (x,)))(stacked, h)
        with lane_forwards(seg, layers, stacked, lanes):
            got = seg(h.flatten(0, 1)).unflatten(0, (lanes, rows))
        assert torch.allclose(got, want, atol=1e-5)
        grads = torch.autograd.grad(got.square().sum(), list(stacked.values()))
        want_grads = torch.autograd.grad(want.square().sum(), list(stacked.values()))
        for g, w in zip(grads, want_grads, strict=True):
            # gradients reach ~1e6 here: float32 sums in another order differ by ~1e-7 of the
            # largest (an AMD EPYC gave 0.12 on 5.6e5); a wrong lane is off by its own size
            assert (g - w).abs().max() <= 1e-5 * w.abs().max()
        assert all("forward" not in vars(layer) for layer in layers.values())  # swapped back


def test_other_tunable_modules_are_left_to_vmap() -> None:
    _, segments = _segments("prompt")
    names = [n for n, p in segments[1].named_parameters() if p.requires_grad]
    assert names and lane_layers(segments[1], names) is None
