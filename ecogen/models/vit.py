"""A small Vision Transformer with its split points in plain sight, and an MAE decoder.

The classifier is three segments that also run on their own, one per kind of device in a
client cluster (the edge model is split across its devices):

    x ──► Embedding ──► o_s = [x0, E0] ──► blocks[a:b] ──► ... ──► Head ──► logits (o_e)
          (start client)                   (middle clients)          (end client)

``ViT.forward`` is exactly ``head(blocks(embedding(x)))``; nothing else happens between the
segments, so the split chain reproduces it bit for bit.  Attention uses plain ``nn.Linear``
projections (``qkv``, ``proj``, ``fc1``, ``fc2``) so that ``peft`` can target every one of them
(``nn.MultiheadAttention`` hides ``in_proj_weight`` and has a fused path that ignores adapters).

Pre-training is a masked autoencoder (He et al., 2022, arXiv 2111.06377): the encoder sees a
random 25 % of the patches, a light decoder reconstructs the pixels of the rest.
Only torch is imported here.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclass(frozen=True)
class ViTConfig:
    image_size: int = 28  # square images
    channels: int = 1
    patch_size: int = 4  # 28 / 4 = 7 → 49 patches
    num_classes: int = 10
    dim: int = 64  # token width
    depth: int = 4  # transformer blocks
    heads: int = 4
    mlp_ratio: float = 2.0
    decoder_dim: int = 32  # MAE decoder, used only in pre-training
    decoder_depth: int = 1
    head_hidden: int | None = None  # hidden width of the head's MLP (None: dim; 0: a linear head)

    @property
    def num_patches(self) -> int:
        return (self.image_size // self.patch_size) ** 2

    @property
    def patch_pixels(self) -> int:
        return self.patch_size * self.patch_size * self.channels


class Attention(nn.Module):
    # softmax(q·kᵀ/√d)·v written out instead of the fused kernel: set where the model runs under
    # torch.func.vmap (the batched HFSL driver), for which CPU's fused attention has no batching rule
    written_out: bool = False

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        B, T, C = x.shape
        q, k, v = self.qkv(x).view(B, T, 3, self.heads, C // self.heads).permute(2, 0, 3, 1, 4)
        if self.written_out:
            y = ((q @ k.transpose(-2, -1)) * (C // self.heads) ** -0.5).softmax(-1) @ v
        else:
            y = F.scaled_dot_product_attention(q, k, v)  # (B, heads, T, C/heads)
        return self.proj(y.transpose(1, 2).reshape(B, T, C))


class Block(nn.Module):
    """Pre-norm transformer block."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float) -> None:
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:  # (B, T, dim) → (B, T, dim)
        x = x + self.attn(self.norm1(x))
        return x + self.fc2(F.gelu(self.fc1(self.norm2(x))))


class Embedding(nn.Module):
    """Start-client segment: image → o_s = [x0, E0] (class token, patch embeddings + positions)."""

    def __init__(self, cfg: ViTConfig) -> None:
        super().__init__()
        self.patch = nn.Conv2d(cfg.channels, cfg.dim, cfg.patch_size, stride=cfg.patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, cfg.dim))
        self.pos = nn.Parameter(torch.zeros(1, cfg.num_patches, cfg.dim))
        nn.init.trunc_normal_(self.pos, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=0.02)

    def patches(self, x: Tensor) -> Tensor:  # (B, C, H, W) → (B, N, dim), positions added
        return self.patch(x).flatten(2).transpose(1, 2) + self.pos

    def with_cls(self, tokens: Tensor) -> Tensor:  # (B, n, dim) → (B, 1 + n, dim)
        return torch.cat([self.cls_token.expand(tokens.shape[0], -1, -1), tokens], dim=1)

    def forward(self, x: Tensor) -> Tensor:  # (B, C, H, W) → (B, 1 + N, dim)
        return self.with_cls(self.patches(x))


class Head(nn.Module):
    """End-client segment: final norm + MLP head (or linear, ``head_hidden=0``) → logits (B, classes).

    Pools by averaging all tokens rather than reading the class token alone: MAE pre-training
    never supervises the class token, and averaged MAE features probe markedly better.
    """

    def __init__(self, cfg: ViTConfig) -> None:
        super().__init__()
        hidden = cfg.dim if cfg.head_hidden is None else cfg.head_hidden
        self.norm = nn.LayerNorm(cfg.dim)
        self.fc = nn.Linear(cfg.dim, hidden) if hidden else None
        self.out = nn.Linear(hidden or cfg.dim, cfg.num_classes)

    def forward(self, h: Tensor) -> Tensor:  # (B, T, dim) → (B, classes)
        z = self.norm(h).mean(dim=1)
        return self.out(z if self.fc is None else F.gelu(self.fc(z)))


class ViT(nn.Module):
    def __init__(self, cfg: ViTConfig) -> None:
        super().__init__()
        if cfg.image_size % cfg.patch_size:
            raise ValueError(f"patch_size {cfg.patch_size} does not divide image {cfg.image_size}")
        self.cfg = cfg
        self.embedding = Embedding(cfg)
        self.blocks = nn.ModuleList(Block(cfg.dim, cfg.heads, cfg.mlp_ratio) for _ in range(cfg.depth))
        self.head = Head(cfg)
        self.apply(_init_linear)

    def forward(self, x: Tensor) -> Tensor:  # (B, C, H, W) → (B, classes)
        h = self.embedding(x)
        for block in self.blocks:
            h = block(h)
        return self.head(h)


def split_segments(model: ViT, block_ranges: list[tuple[int, int]]) -> list[nn.Module]:
    """The segments one cluster's devices hold: embedding, one block range per middle device, head.

    ``block_ranges`` must tile ``0..depth`` contiguously, e.g. ``[(0, 2), (2, 4)]``.
    The returned modules share parameters with ``model`` (and with any adapters injected into it).
    """
    expected = 0
    for start, end in block_ranges:
        if start != expected or end <= start:
            raise ValueError(f"block ranges {block_ranges} do not tile 0..{len(model.blocks)}")
        expected = end
    if expected != len(model.blocks):
        raise ValueError(f"block ranges {block_ranges} do not tile 0..{len(model.blocks)}")
    middle = [nn.Sequential(*model.blocks[a:b]) for a, b in block_ranges]
    return [model.embedding, *middle, model.head]


class MAEDecoder(nn.Module):
    """Light transformer that predicts the pixels of every patch from the visible tokens."""

    def __init__(self, cfg: ViTConfig) -> None:
        super().__init__()
        self.embed = nn.Linear(cfg.dim, cfg.decoder_dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, cfg.decoder_dim))
        self.pos = nn.Parameter(torch.zeros(1, 1 + cfg.num_patches, cfg.decoder_dim))
        heads = max(1, cfg.decoder_dim // 16)
        self.blocks = nn.ModuleList(Block(cfg.decoder_dim, heads, 2.0) for _ in range(cfg.decoder_depth))
        self.norm = nn.LayerNorm(cfg.decoder_dim)
        self.pred = nn.Linear(cfg.decoder_dim, cfg.patch_pixels)
        nn.init.trunc_normal_(self.pos, std=0.02)
        nn.init.trunc_normal_(self.mask_token, std=0.02)
        self.apply(_init_linear)

    def forward(self, latent: Tensor, restore: Tensor) -> Tensor:
        # latent: (B, 1 + kept, dim) in shuffled order; restore: (B, N) un-shuffles the patches
        x = self.embed(latent)
        B, N = restore.shape
        masks = self.mask_token.expand(B, N + 1 - x.shape[1], -1)
        patches = torch.cat([x[:, 1:], masks], dim=1)  # (B, N, d) shuffled
        patches = torch.gather(patches, 1, restore.unsqueeze(-1).expand(-1, -1, x.shape[-1]))
        x = torch.cat([x[:, :1], patches], dim=1) + self.pos
        for block in self.blocks:
            x = block(x)
        return self.pred(self.norm(x))[:, 1:]  # (B, N, patch_pixels)


class MaskedAutoencoder(nn.Module):
    """The cloud's generative FM: the ViT encoder (no classifier MLP) + an MAE decoder."""

    def __init__(self, encoder: ViT) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = MAEDecoder(encoder.cfg)

    def patchify(self, x: Tensor) -> Tensor:  # (B, C, H, W) → (B, N, p*p*C)
        return patchify(x, self.encoder.cfg.patch_size)

    def unpatchify(self, patches: Tensor) -> Tensor:  # inverse of patchify
        cfg = self.encoder.cfg
        p, g = cfg.patch_size, cfg.image_size // cfg.patch_size
        x = patches.reshape(-1, g, g, p, p, cfg.channels).permute(0, 5, 1, 3, 2, 4)
        return x.reshape(-1, cfg.channels, g * p, g * p)

    def noise(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """(B, N) uniform noise whose order picks each image's visible patches."""
        return torch.rand(x.shape[0], self.encoder.cfg.num_patches, device=x.device, generator=generator)

    def forward(
        self,
        x: Tensor,
        mask_ratio: float,
        generator: torch.Generator | None = None,
        noise: Tensor | None = None,  # drawn by the caller (outside a compiled forward), else here
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Returns (loss, predicted patches (B, N, P), mask (B, N) with 1 = hidden)."""
        emb = self.encoder.embedding
        noise = noise if noise is not None else self.noise(x, generator)
        tokens = emb.patches(x)  # (B, N, dim)
        keep, shuffle, restore = masking(noise, mask_ratio)
        D = tokens.shape[-1]
        visible = torch.gather(tokens, 1, shuffle[:, :keep, None].expand(-1, -1, D))
        h = emb.with_cls(visible)
        for block in self.encoder.blocks:
            h = block(h)
        h = self.encoder.head.norm(h)
        pred = self.decoder(h, restore)
        mask = hidden_mask(keep, restore)
        loss = reconstruction_loss(pred, self.patchify(x), mask)
        return loss, pred, mask


def patchify(x: Tensor, p: int) -> Tensor:  # (B, C, H, W) → (B, N, p*p*C), patches of side p
    B, C, H, W = x.shape
    x = x.reshape(B, C, H // p, p, W // p, p).permute(0, 2, 4, 3, 5, 1)
    return x.reshape(B, (H // p) * (W // p), p * p * C)


def masking(noise: Tensor, mask_ratio: float) -> tuple[int, Tensor, Tensor]:
    """(visible patches per image, shuffle, restore) from ``noise`` (B, N): each image keeps the
    patches of its ``keep`` smallest noise values, ``shuffle[:, :keep]``; ``restore`` un-shuffles."""
    keep = max(1, int(round(noise.shape[1] * (1 - mask_ratio))))
    shuffle = noise.argsort(dim=1)
    return keep, shuffle, shuffle.argsort(dim=1)


def hidden_mask(keep: int, restore: Tensor) -> Tensor:
    """(B, N) in patch order, 1 where a patch is hidden from the encoder."""
    B, N = restore.shape
    mask = torch.ones(B, N, device=restore.device)
    mask[:, :keep] = 0
    return torch.gather(mask, 1, restore)


def reconstruction_loss(pred: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    """MSE of the predicted patches (B, N, P) on the hidden ones (``mask`` 1), against the
    normalised pixels of ``target`` (B, N, P), as in the MAE paper; the mean over hidden patches."""
    mean, var = target.mean(-1, keepdim=True), target.var(-1, keepdim=True)
    target = (target - mean) / (var + 1e-6).sqrt()
    per_patch = ((pred - target) ** 2).mean(-1)
    return (per_patch * mask).sum() / mask.sum()


def _init_linear(m: nn.Module) -> None:
    if isinstance(m, nn.Linear):
        nn.init.trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)


def parameter_count(model: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
