"""Figures written next to the metrics (PNG for MLflow, CSV for `dvc plots`). matplotlib only."""

from __future__ import annotations

import csv
from pathlib import Path
from types import ModuleType

import torch

from ecogen.models.vit import MaskedAutoencoder


def _pyplot() -> ModuleType:
    """matplotlib on first use (its import is ~0.3 s of every command's start otherwise)."""
    import matplotlib

    matplotlib.use("Agg")  # headless; harmless if already selected
    import matplotlib.pyplot as plt

    return plt


def reconstruction_grid(
    mae: MaskedAutoencoder, x: torch.Tensor, mask_ratio: float, path: Path, seed: int
) -> Path:
    """Rows: input, masked input, reconstruction — the FM's generative view of public images."""
    mae.eval()
    with torch.no_grad():
        _, pred, mask = mae(x, mask_ratio, generator=torch.Generator().manual_seed(seed))
    patches = mae.patchify(x)
    mean, std = patches.mean(-1, keepdim=True), patches.std(-1, keepdim=True)
    recon = mae.unpatchify(pred * std + mean)
    masked = mae.unpatchify(patches * (1 - mask[..., None]) - mask[..., None])
    rows = [x, masked, recon]
    n = x.shape[0]
    plt = _pyplot()
    fig, axes = plt.subplots(3, n, figsize=(n * 1.1, 3.5))
    for r, imgs in enumerate(rows):
        for c in range(n):
            ax = axes[r][c]
            ax.imshow(imgs[c, 0].clamp(-1, 1).numpy(), cmap="gray", vmin=-1, vmax=1)
            ax.axis("off")
    for r, title in enumerate(["input", "masked", "reconstruction"]):
        axes[r][0].set_title(title, fontsize=7, loc="left")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def series_plot(series: dict[str, list[float]], ylabel: str, path: Path, xlabel: str = "round") -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.2))
    for name, values in series.items():
        ax.plot(range(1, len(values) + 1), values, marker="o", label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def series_csv(series: dict[str, list[float]], path: Path, x: str = "round") -> Path:
    """Long format ``round,edge,value`` so `dvc plots show` draws one line per edge."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow([x, "edge", "value"])
        for name, values in series.items():
            for i, v in enumerate(values, start=1):
                w.writerow([i, name, v])
    return path
