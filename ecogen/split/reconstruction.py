"""The FM's generative objective kept at the clients (``hfsl.mae_weight``): masked-autoencoder
reconstruction (He et al., 2022, arXiv 2111.06377) of each client's unlabelled images, through its
cluster's split chain, trained jointly with the labelled loss — the paper's bidirectional flow, the
GAI model learning its clients' data (Chen et al., arXiv 2401.02668).

Device by device, as the classifier's pass goes (:class:`~ecogen.split.stacked.StackedChain`):

* the start device embeds every patch, then keeps the class token and the patches its seeded
  noise leaves visible (:func:`~ecogen.models.vit.masking`, as the cloud's pre-training masks):
  the masking happens before the first link, so only visible tokens cross;
* the middle devices run their blocks with the lane's tunable modules (LoRA, prompts), the
  activations and their gradients crossing every link through the edge's channel (counted);
* the end device, which holds the head, runs the FM's decoder side instead of the head: the
  encoder's final norm and the MAE decoder, as the cloud pre-trained them.

The decoder side is **frozen**.  What adapts to the clients' images is then the lane's tunable
modules — the very modules the classifier trains and FedAvg averages — so the lever adds no
module to train, upload or average and no byte on the edge↔client links, and every cluster's
decoder stays the FM's (a trainable one would be a second set of modules per cluster, to average
or to let drift apart).  The norm is the FM's, not the edge's tuned head norm: the decoder was
trained behind the FM's, and the reconstruction gradient would otherwise pull the classifier's
norm too.  The decoder side travels with the FM each device already holds (its frozen weights are
not counted per round, as the backbone's are not).

Each lane's loss is the MAE loss of its own images (:func:`~ecogen.models.vit.reconstruction_loss`,
the mean over its hidden patches); padded rows get none, as the classifier's padding gets none.
"""

from __future__ import annotations

import copy
from functools import partial

import torch
from torch import Tensor, nn

from ecogen.models.vit import MaskedAutoencoder, hidden_mask, masking, patchify, reconstruction_loss
from ecogen.split.stacked import StackedChain, StackedTrace, pad_stack


class ChainReconstruction(nn.Module):
    """The FM's frozen decoder side on the end device, and the MAE loss through a chain."""

    def __init__(self, fm: MaskedAutoencoder, mask_ratio: float) -> None:
        super().__init__()
        if not 0.0 < mask_ratio < 1.0:
            raise ValueError(f"mask_ratio must lie in (0, 1), got {mask_ratio}")
        self.norm = copy.deepcopy(fm.encoder.head.norm).requires_grad_(False)
        self.decoder = copy.deepcopy(fm.decoder).requires_grad_(False)
        self.patch_size = fm.encoder.cfg.patch_size
        self.patches = fm.encoder.cfg.num_patches
        self.mask_ratio = mask_ratio

    def noise(self, rows: int, generator: torch.Generator) -> Tensor:
        """(rows, N) uniform noise from ``generator``: its order picks each image's visible patches."""
        return torch.rand(rows, self.patches, generator=generator)

    def decode(self, h: Tensor, restore: Tensor) -> Tensor:  # (B, 1 + kept, dim), (B, N) → (B, N, P)
        return self.decoder(self.norm(h), restore)

    def losses(
        self, chain: StackedChain, images: list[Tensor], noise: list[Tensor]
    ) -> tuple[Tensor, StackedTrace]:
        """Each lane's MAE loss (lanes,) on its ``images`` (rows, C, H, W), masked by its ``noise``
        (rows, N) — 0 for a lane with no image — and the pass's trace for ``chain.backward``."""
        counts = [len(x) for x in images]
        lanes, width = len(images), max(counts)
        # padded rows: zero noise, a valid (unused) masking
        keep, shuffle, restore = masking(pad_stack(noise, width).flatten(0, 1), self.mask_ratio)
        # indices into the start device's output [x0, E0]: the class token, then the visible patches
        tokens = torch.cat([shuffle.new_zeros(len(shuffle), 1), 1 + shuffle[:, :keep]], dim=1)
        pred, trace = chain(
            pad_stack(images, width),
            counts,
            train=True,
            tokens=tokens.unflatten(0, (lanes, width)),
            end=partial(self.decode, restore=restore),
        )  # pred: (lanes, width, N, P)
        mask = hidden_mask(keep, restore).unflatten(0, (lanes, width))
        losses = [
            reconstruction_loss(pred[c, :n], patchify(images[c], self.patch_size), mask[c, :n])
            if n
            else pred.new_zeros(())
            for c, n in enumerate(counts)
        ]
        return torch.stack(losses), trace
