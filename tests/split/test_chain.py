"""Split equivalence: the device chain (one lane of a StackedChain) computes what the unsplit
model computes, and sends what it should over the links."""

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from ecogen.config.params import PeftParams
from ecogen.models.vit import ViT, ViTConfig
from ecogen.peft.registry import apply_peft
from ecogen.split import Channel, allocate_blocks
from ecogen.split.stacked import StackedChain, StackedTrace

CFG = ViTConfig(image_size=8, patch_size=2, dim=16, depth=4, heads=2, num_classes=5)


def _chain(
    method: str, devices: int, channel: Channel | None = None, crosses: list[bool] | None = None
) -> tuple[torch.nn.Module, StackedChain]:
    """The unsplit model and a one-lane chain over the same weights (tunable ones perturbed: LoRA B
    starts at zero, and gradients should reach every tunable tensor)."""
    torch.manual_seed(0)
    full = apply_peft(ViT(CFG), PeftParams(method=method, lora_rank=2, prompt_tokens=2))
    with torch.no_grad():
        for p in full.parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p) * 0.1)
    names = [n for n, p in full.named_parameters() if p.requires_grad]
    blocks = allocate_blocks(CFG.depth, devices)
    return full, StackedChain(full, blocks, [channel or Channel()], names, [crosses])


def _train(chain: StackedChain, x: Tensor, y: Tensor) -> tuple[Tensor, StackedTrace]:
    out, trace = chain(x[None], [len(x)], [y], train=True)
    labels = trace.labels[0]
    assert labels is not None and torch.equal(labels, y)  # the end device got the labels
    chain.backward(F.cross_entropy(out[0], labels), trace)
    return out[0], trace


@pytest.mark.parametrize("method", ["lora", "prompt", "head"])
@pytest.mark.parametrize("devices", [3, 4, 6])
def test_split_chain_matches_unsplit_outputs_and_gradients(method: str, devices: int) -> None:
    full, chain = _chain(method, devices)
    x, y = torch.randn(6, 1, 8, 8), torch.randint(0, 5, (6,))
    ref = full(x)
    F.cross_entropy(ref, y).backward()
    out, _ = _train(chain, x, y)
    assert torch.allclose(out, ref, atol=1e-5)
    got = chain.stacked()
    tunable = {n: p.grad for n, p in full.named_parameters() if p.requires_grad}
    assert tunable and tunable.keys() == got.keys()
    for name, g in tunable.items():
        assert got[name].grad is not None, name
        assert torch.allclose(got[name].grad[0], g, atol=1e-5), name


def test_no_autograd_graph_spans_a_link() -> None:
    _, chain = _chain("lora", 3)
    _, trace = chain(torch.randn(1, 2, 1, 8, 8), [2], train=True)
    for sent, (received,) in trace.links:
        assert received.is_leaf and received.grad_fn is None
        assert received.data_ptr() != sent.data_ptr()


def test_backward_sends_no_gradient_to_frozen_start_device() -> None:
    channel = Channel()
    _, chain = _chain("lora", 4, channel)
    out, trace = chain(torch.randn(1, 3, 1, 8, 8), [3], [torch.zeros(3, dtype=torch.long)], train=True)
    channel.ledger.reset()
    chain.backward(out.sum(), trace)
    # links: start→mid1, mid1→mid2, mid2→end; the start device (embedding) is frozen
    assert channel.ledger.messages[("d2d", "backward")] == 2
    act = 3 * (1 + CFG.num_patches) * CFG.dim * 4
    assert channel.ledger.bytes[("d2d", "backward")] == 2 * act


def test_a_device_running_two_segments_sends_nothing_between_them() -> None:
    """``crosses``: the boundary inside one device (it stands in for an offline neighbour) is handed
    on in memory — same outputs and gradients, no bytes on that link."""
    x, y = torch.randn(4, 1, 8, 8), torch.randint(0, 5, (4,))
    grads, ledgers = [], []
    for crosses in (None, [True, False]):
        channel = Channel()
        _, chain = _chain("lora", 3, channel, crosses)
        _train(chain, x, y)
        grads.append({n: p.grad for n, p in chain.stacked().items()})
        ledgers.append(channel.ledger)
    for name, g in grads[0].items():
        assert torch.allclose(grads[1][name], g, atol=1e-6), name
    assert ledgers[1].messages[("d2d", "forward")] == 1 and ledgers[0].messages[("d2d", "forward")] == 2
    backward = [ledger.messages[("d2d", "backward")] for ledger in ledgers]
    assert backward[1] == backward[0] - 1
