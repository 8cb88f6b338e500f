"""FixMatch views (Sohn et al., 2020, arXiv 2001.07685) for single-channel images in [-1, 1].

weak  = random translation by up to 2 pixels per 28 (background-filled; 1 pixel on 8×8 digits)
strong = weak + random contrast/brightness + a cutout square + gaussian noise
All randomness comes from the generator passed in.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def weak(x: Tensor, g: torch.Generator, shift: int | None = None) -> Tensor:  # (B, C, H, W)
    B, _, H, W = x.shape
    shift = max(1, round(2 * H / 28)) if shift is None else shift  # 2 px would wreck 8×8 images
    padded = F.pad(x, (shift, shift, shift, shift), value=-1.0)
    dx = torch.randint(0, 2 * shift + 1, (B,), generator=g)
    dy = torch.randint(0, 2 * shift + 1, (B,), generator=g)
    rows = (dy[:, None] + torch.arange(H)[None]).to(x.device)  # (B, H)
    cols = (dx[:, None] + torch.arange(W)[None]).to(x.device)  # (B, W)
    b = torch.arange(B, device=x.device)[:, None, None]
    return padded.permute(0, 2, 3, 1)[b, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)


def strong(x: Tensor, g: torch.Generator) -> Tensor:
    x = weak(x, g)
    B, _, H, W = x.shape
    contrast = (0.5 + torch.rand(B, 1, 1, 1, generator=g)).to(x.device)
    bright = (0.4 * torch.rand(B, 1, 1, 1, generator=g) - 0.2).to(x.device)
    x = (x * contrast + bright).clamp(-1, 1)
    side = max(1, H // 4)
    cy = torch.randint(0, H - side + 1, (B,), generator=g).to(x.device)
    cx = torch.randint(0, W - side + 1, (B,), generator=g).to(x.device)
    ys = torch.arange(H, device=x.device)[None, :, None]
    xs = torch.arange(W, device=x.device)[None, None, :]
    hole = (
        (ys >= cy[:, None, None])
        & (ys < cy[:, None, None] + side)
        & (xs >= cx[:, None, None])
        & (xs < cx[:, None, None] + side)
    )
    x = x.masked_fill(hole[:, None], 0.0)
    noise = torch.randn(x.shape, generator=g).to(x.device) * 0.1
    return (x + noise).clamp(-1, 1)
