"""Routing transfer images to teachers by the edges' style prototypes."""

from __future__ import annotations

import pytest
import torch

from ecogen.data.prepared import UNLABELLED, Split, to_float
from ecogen.models.vit import ViT, ViTConfig
from ecogen.relay.distill import TeacherEnsemble
from ecogen.relay.routing import StyleRouter, class_prototypes, nearest_teacher, style_features
from ecogen.relay.weighting import routed_weights, teacher_weights
from ecogen.split.channel import Channel, StylePrototypes

CFG = ViTConfig(image_size=8, patch_size=4, dim=8, depth=1, heads=2, num_classes=3)


def test_nearest_teacher_owns_the_nearest_of_its_prototypes() -> None:
    a = torch.tensor([[0.0, 0.0], [10.0, 0.0]])  # teacher 0: two class prototypes
    b = torch.tensor([[0.0, 10.0]])  # teacher 1: one
    feats = torch.tensor([[9.0, 1.0], [1.0, 8.0], [0.5, 0.5]])
    assert nearest_teacher(feats, [a, b]).tolist() == [0, 1, 0]
    with pytest.raises(ValueError, match="at least one teacher"):
        nearest_teacher(feats, [])


def test_class_prototypes_are_the_class_means_of_the_labelled_features() -> None:
    torch.manual_seed(0)
    enc = ViT(CFG)
    x = torch.randint(0, 256, (12, 1, 8, 8), dtype=torch.uint8)
    y = torch.tensor([0, 0, 2, 2, 2, 0, UNLABELLED, UNLABELLED, 0, 2, 2, 0])
    protos = class_prototypes(enc, Split(x, y))
    feats = style_features(enc, to_float(x))
    assert protos.dtype == torch.float16 and protos.shape == (2, feats.shape[1])  # classes 0 and 2
    assert feats.shape[1] == (1 + 4) * CFG.dim  # class token + 2×2 patches, every token kept
    assert torch.allclose(protos[1].float(), feats[y == 2].mean(0), atol=1e-2)
    with pytest.raises(ValueError, match="labelled"):
        class_prototypes(enc, Split(x, torch.full((12,), UNLABELLED)))


def test_router_sends_each_style_to_the_edge_that_uploaded_it() -> None:
    """Two 'domains' (images and their inverses): prototypes from a few labelled images of each
    route held-out images of each to its own edge."""
    torch.manual_seed(0)
    enc = ViT(CFG)
    g = torch.Generator().manual_seed(1)
    base = torch.randint(0, 120, (40, 1, 8, 8), generator=g, dtype=torch.uint8)  # dark images
    styles = [base, 255 - base]
    y = torch.arange(40) % 3
    protos = [class_prototypes(enc, Split(s[:20], y[:20])) for s in styles]
    router = StyleRouter(enc, protos)
    for k, s in enumerate(styles):
        assert (router(to_float(s[20:])) == k).all()


def test_routed_weights_put_all_the_weight_on_the_routed_teacher() -> None:
    w = routed_weights(torch.tensor([1, 0, 1]), 2)
    assert w.tolist() == [[0.0, 1.0, 0.0], [1.0, 0.0, 1.0]]
    with pytest.raises(ValueError, match="routing"):
        teacher_weights(torch.rand(2, 3, 4).softmax(-1), "routed")


def test_routed_ensemble_targets_are_the_routed_teachers_predictions() -> None:
    torch.manual_seed(0)
    teachers = [ViT(CFG).eval(), ViT(CFG).eval()]

    class Halves(torch.nn.Module):  # first half of the batch → teacher 1, the rest → teacher 0
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return (torch.arange(len(x)) < len(x) // 2).long()

    x = torch.rand(6, 1, 8, 8) * 2 - 1
    target, weights = TeacherEnsemble(teachers, "routed", 1.0, Halves()).predict_step([x], 0)
    with torch.no_grad():
        want = torch.cat([teachers[1](x[:3]).softmax(-1), teachers[0](x[3:]).softmax(-1)])
    assert torch.allclose(target, want, atol=1e-6)
    with pytest.raises(ValueError, match="router"):
        TeacherEnsemble(teachers, "routed", 1.0)


def test_prototypes_cross_the_link_and_are_counted() -> None:
    channel = Channel()
    p = torch.zeros(10, 50 * 64, dtype=torch.float16)
    got = channel.send(StylePrototypes(p), "cloud_edge", "up")
    assert torch.equal(got.tensor, p) and got.tensor is not p
    assert channel.ledger.total("cloud_edge") == 10 * 50 * 64 * 2
