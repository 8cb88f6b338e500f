"""Split equivalence: the device chain computes what the unsplit model computes."""

import pytest
import torch
import torch.nn.functional as F

from ecogen.config.params import PeftParams
from ecogen.models.vit import ViT, ViTConfig, split_segments
from ecogen.peft.registry import apply_peft
from ecogen.split import Channel, SplitChain, allocate_blocks

CFG = ViTConfig(image_size=8, patch_size=2, dim=16, depth=4, heads=2, num_classes=5)


def _pair(method: str, devices: int):
    torch.manual_seed(0)
    full = apply_peft(ViT(CFG), PeftParams(method=method, lora_rank=2, prompt_tokens=2))
    torch.manual_seed(0)
    vit = ViT(CFG)
    split_model = apply_peft(vit, PeftParams(method=method, lora_rank=2, prompt_tokens=2))
    split_model.load_state_dict(full.state_dict())
    # LoRA B starts at zero: perturb every tunable tensor so gradients reach all of them
    with torch.no_grad():
        for (_, p), (_, q) in zip(full.named_parameters(), split_model.named_parameters(), strict=True):
            if p.requires_grad:
                noise = torch.randn_like(p) * 0.1
                p.add_(noise)
                q.add_(noise)
    return full, split_model, split_segments(vit, allocate_blocks(CFG.depth, devices))


@pytest.mark.parametrize("method", ["lora", "prompt", "head"])
@pytest.mark.parametrize("devices", [3, 4, 6])
def test_split_chain_matches_unsplit_outputs_and_gradients(method: str, devices: int) -> None:
    full, split_model, segments = _pair(method, devices)
    x = torch.randn(6, 1, 8, 8)
    y = torch.randint(0, 5, (6,))

    ref = full(x)
    F.cross_entropy(ref, y).backward()

    chain = SplitChain(segments, Channel())
    out, trace = chain.forward(x, labels=y, train=True)
    assert torch.allclose(out, ref, atol=1e-5)
    assert torch.equal(trace.labels, y)
    chain.backward(F.cross_entropy(out, trace.labels), trace)

    ref_grads = {n: p.grad for n, p in full.named_parameters() if p.requires_grad}
    got_grads = {n: p.grad for n, p in split_model.named_parameters() if p.requires_grad}
    assert ref_grads.keys() == got_grads.keys() and ref_grads
    for name, g in ref_grads.items():
        assert got_grads[name] is not None, name
        assert torch.allclose(got_grads[name], g, atol=1e-5), name


def test_no_autograd_graph_spans_a_link() -> None:
    _, _, segments = _pair("lora", 3)
    out, trace = SplitChain(segments, Channel()).forward(torch.randn(2, 1, 8, 8), train=True)
    for sent, received in trace.links:
        assert received.is_leaf and received.grad_fn is None
        assert received.data_ptr() != sent.data_ptr()


def test_backward_sends_no_gradient_to_frozen_start_device() -> None:
    _, _, segments = _pair("lora", 4)
    channel = Channel()
    chain = SplitChain(segments, channel)
    out, trace = chain.forward(torch.randn(3, 1, 8, 8), labels=torch.zeros(3, dtype=torch.long), train=True)
    channel.ledger.reset()
    chain.backward(out.sum(), trace)
    # links: start→mid1, mid1→mid2, mid2→end; the start device (embedding) is frozen
    assert channel.ledger.messages[("d2d", "backward")] == 2
    act = 3 * (1 + CFG.num_patches) * CFG.dim * 4
    assert channel.ledger.bytes[("d2d", "backward")] == 2 * act


def test_a_device_running_two_segments_sends_nothing_between_them() -> None:
    """``crosses``: the boundary inside one device (it stands in for an offline neighbour) is handed
    on in memory — same outputs and gradients, no bytes on that link."""
    _, model_a, segments_a = _pair("lora", 3)
    _, model_b, segments_b = _pair("lora", 3)
    x, y = torch.randn(4, 1, 8, 8), torch.randint(0, 5, (4,))
    grads = []
    ledgers = []
    for model, segments, crosses in ((model_a, segments_a, None), (model_b, segments_b, [True, False])):
        channel = Channel()
        chain = SplitChain(segments, channel, crosses)
        out, trace = chain.forward(x, labels=y, train=True)
        assert torch.equal(trace.labels, y)
        chain.backward(F.cross_entropy(out, trace.labels), trace)
        grads.append({n: p.grad for n, p in model.named_parameters() if p.requires_grad})
        ledgers.append(channel.ledger)
    for name, g in grads[0].items():
        assert torch.allclose(grads[1][name], g, atol=1e-6), name
    assert ledgers[1].messages[("d2d", "forward")] == 1 and ledgers[0].messages[("d2d", "forward")] == 2
    backward = [ledger.messages[("d2d", "backward")] for ledger in ledgers]
    assert backward[1] == backward[0] - 1
    with pytest.raises(ValueError, match="boundaries"):
        SplitChain(segments_a, Channel(), [True])
