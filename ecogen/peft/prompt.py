"""Deep visual prompt tuning (Jia et al., 2022, arXiv 2203.12119), head trainable.

Every block gets ``n`` learnable prompt tokens inserted after the class token on the way in and
dropped on the way out, so the token count between segments (and what crosses a link) is unchanged
and each block's prompts live on the device that holds the block.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ecogen.config.params import PeftParams
from ecogen.models.vit import ViT
from ecogen.peft.tunable import freeze


class PromptedBlock(nn.Module):
    def __init__(self, block: nn.Module, tokens: int, dim: int) -> None:
        super().__init__()
        self.block = block
        self.prompts = nn.Parameter(torch.empty(1, tokens, dim))
        nn.init.trunc_normal_(self.prompts, std=0.02)

    def forward(self, h: Tensor) -> Tensor:  # (B, 1 + N, dim) → (B, 1 + N, dim)
        p = self.prompts.expand(h.shape[0], -1, -1)
        out = self.block(torch.cat([h[:, :1], p, h[:, 1:]], dim=1))  # (B, 1 + P + N, dim)
        return torch.cat([out[:, :1], out[:, 1 + p.shape[1] :]], dim=1)


def apply_prompt(model: ViT, cfg: PeftParams) -> nn.Module:
    freeze(model)
    for i, block in enumerate(model.blocks):
        model.blocks[i] = PromptedBlock(block, cfg.prompt_tokens, model.cfg.dim)
    model.head.requires_grad_(True)
    return model


def apply_head_only(model: ViT, cfg: PeftParams) -> nn.Module:
    """Linear-probe-style baseline: only norm + MLP head train."""
    freeze(model)
    model.head.requires_grad_(True)
    return model
