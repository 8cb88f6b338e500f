"""The relay rebuilds an edge from the FM, its modules and, for an edge that aggregated by
FedEx-LoRA, the changes it made to its frozen LoRA weights."""

from __future__ import annotations

import torch

from ecogen.config.params import PeftParams
from ecogen.models.vit import MaskedAutoencoder, ViT, ViTConfig
from ecogen.peft.edge import base_delta, build_edge_model
from ecogen.peft.tunable import tunable_state
from ecogen.relay.naive import average_bases, edge_model, naive_relay
from ecogen.split.channel import BaseCorrection, TunableModules

CFG = ViTConfig(image_size=8, patch_size=4, dim=8, depth=1, heads=2, num_classes=3)
PEFT = PeftParams(method="lora", lora_rank=2)


def _edge_with_moved_weights(fm: MaskedAutoencoder) -> torch.nn.Module:
    model = build_edge_model(fm, PEFT, seed=1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(".base_layer.weight"):
                p.add_(0.05 * torch.randn(p.shape, generator=torch.Generator().manual_seed(len(name))))
    return model.eval()


def test_an_edge_is_rebuilt_with_its_frozen_weights_and_the_naive_relay_averages_them() -> None:
    torch.manual_seed(0)
    fm = MaskedAutoencoder(ViT(CFG))
    edge = _edge_with_moved_weights(fm)
    delta = base_delta(edge, fm)
    assert delta and base_delta(build_edge_model(fm, PEFT, seed=1), fm) == {}
    x = torch.rand(4, 1, 8, 8) * 2 - 1
    state = tunable_state(edge)
    with torch.no_grad():
        assert torch.equal(edge_model(fm, PEFT, state, 1, delta)(x), edge(x))
        assert not torch.allclose(edge_model(fm, PEFT, state, 1)(x), edge(x))
    sent = {"a": BaseCorrection({k: v.float() for k, v in delta.items()})}
    half = average_bases(sent, edges=2)  # the other edge changed nothing
    assert all(torch.allclose(half[k], delta[k].float() / 2) for k in delta)
    uploads = {"a": TunableModules(state), "b": TunableModules(state)}
    plain, moved = naive_relay(fm, uploads, PEFT, 1), naive_relay(fm, uploads, PEFT, 1, sent)
    with torch.no_grad():
        assert not torch.allclose(plain(x), moved(x))
