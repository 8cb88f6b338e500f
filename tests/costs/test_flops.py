"""FLOP counting against a hand-checked layer, and on the real ViT."""

from __future__ import annotations

import torch
from torch import nn

from ecogen.costs.flops import module_flops, segment_flops
from ecogen.models.vit import ViT, ViTConfig

CFG = ViTConfig(image_size=8, patch_size=4, dim=16, depth=3, heads=2)


def test_linear_counts_two_flops_per_multiply_add_and_backward_twice_that() -> None:
    batch, d_in, d_out = 5, 7, 3
    layer = nn.Linear(d_in, d_out)
    x = torch.randn(batch, d_in, requires_grad=True)
    forward, backward = module_flops(layer, x)
    # by hand: the output is batch × d_out dot products of length d_in, 2 FLOPs per multiply-add
    assert forward == 2 * batch * d_in * d_out == 210
    # backward: dL/dx (batch × d_in, length d_out) and dL/dW (d_out × d_in, length batch), each as many
    assert backward == 2 * forward == 420


def test_a_frozen_layer_on_a_constant_input_has_no_backward() -> None:
    layer = nn.Linear(4, 2).requires_grad_(False)
    assert module_flops(layer, torch.randn(3, 4)) == (2 * 3 * 4 * 2, 0)


def test_every_block_of_the_vit_counts_the_same_and_grows_linearly_with_the_batch() -> None:
    vit = ViT(CFG)
    flops = segment_flops(vit, batch=4)
    assert len(flops.forward) == len(flops.backward) == CFG.depth + 2  # embedding, blocks, head
    assert len(set(flops.forward[1:-1])) == 1 and len(set(flops.backward[1:-1])) == 1
    tokens, dim, hidden = 1 + CFG.num_patches, CFG.dim, int(CFG.dim * CFG.mlp_ratio)
    linears = 2 * (dim * 3 * dim + dim * dim + dim * hidden + hidden * dim)  # per token
    attention = 2 * 2 * tokens * dim  # q·kᵀ and (softmax)·v, per token: counted, though CPU fuses it
    assert flops.forward[1] == 4 * tokens * (linears + attention)
    assert segment_flops(vit, batch=8).forward == [2 * f for f in flops.forward]
    assert all(flops.trains)


def test_frozen_segments_send_no_gradient_back_and_the_model_is_left_as_it_was() -> None:
    vit = ViT(CFG)
    vit.embedding.requires_grad_(False)
    vit.blocks[0].requires_grad_(False)
    flops = segment_flops(vit, batch=2)
    assert flops.trains == [False, False, True, True, True]
    assert flops.backward[:2] == [0, 0]  # nothing before block 1 trains: no gradient is wanted there
    assert all(not m.__dict__.get("written_out", False) for m in vit.modules())
