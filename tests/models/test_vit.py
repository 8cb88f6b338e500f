"""The ViT file: segments compose to the whole model; MAE patchify round trip and learning."""

import torch

from ecogen.models.vit import MaskedAutoencoder, ViT, ViTConfig, split_segments

CFG = ViTConfig(image_size=8, patch_size=2, dim=16, depth=3, heads=2, num_classes=4, decoder_dim=16)


def test_forward_is_head_of_blocks_of_embedding() -> None:
    torch.manual_seed(0)
    vit = ViT(CFG)
    x = torch.randn(5, 1, 8, 8)
    h = x
    for seg in split_segments(vit, [(0, 1), (1, 3)]):
        h = seg(h)
    assert torch.allclose(vit(x), h)
    o_s = vit.embedding(x)
    assert o_s.shape == (5, 1 + CFG.num_patches, CFG.dim)  # [x0, E0]


def test_split_segments_rejects_ranges_that_do_not_tile() -> None:
    vit = ViT(CFG)
    for bad in ([(0, 1)], [(0, 2), (1, 3)], [(1, 3)]):
        try:
            split_segments(vit, bad)
        except ValueError:
            continue
        raise AssertionError(f"{bad} accepted")


def test_patchify_round_trip_and_mask_ratio() -> None:
    mae = MaskedAutoencoder(ViT(CFG))
    x = torch.randn(3, 1, 8, 8)
    assert torch.equal(mae.unpatchify(mae.patchify(x)), x)
    loss, pred, mask = mae(x, 0.75, generator=torch.Generator().manual_seed(0))
    assert pred.shape == (3, CFG.num_patches, CFG.patch_pixels)
    assert mask.sum(1).tolist() == [12.0, 12.0, 12.0] and loss.item() > 0


def test_mae_learns_on_a_fixed_batch() -> None:
    torch.manual_seed(0)
    mae = MaskedAutoencoder(ViT(CFG))
    x = torch.randn(16, 1, 8, 8)
    opt = torch.optim.AdamW(mae.parameters(), lr=3e-3)
    losses = []
    for _ in range(60):
        loss, _, _ = mae(x, 0.5, generator=torch.Generator().manual_seed(1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]
