"""hfsl.mae_weight: the MAE loss through the split chain (visible patches picked on the start
device, the FM's frozen decoder side on the end device) is the unsplit MaskedAutoencoder's, lane by
lane, gradients included; the bytes it sends are the visible tokens'; and with the lever off the
client step is what it was."""

import copy

import pytest
import torch
from pydantic import ValidationError
from split_support import client_split
from torch import nn
from torch.utils.data import DataLoader

from ecogen.config.params import HfslParams, PeftParams
from ecogen.models.vit import MaskedAutoencoder, ViT, ViTConfig
from ecogen.peft.edge import base_vit, build_edge_model
from ecogen.split.channel import Channel
from ecogen.split.client_training import ClientTraining
from ecogen.split.reconstruction import ChainReconstruction
from ecogen.split.semi_supervised import FixMatchBatches, StackedBatches, StackedSemiSupervised
from ecogen.split.stacked import StackedChain
from ecogen.training.trainer import make_trainer

CFG = ViTConfig(image_size=8, patch_size=2, dim=16, depth=3, heads=2, num_classes=3)
RATIO = 0.75
KEPT = 1 + round(CFG.num_patches * (1 - RATIO))  # tokens that cross a link: class token + visible
BLOCKS = [(0, 1), (1, 3)]  # four devices: embedding | block 0 | blocks 1-2 | head


def _fm() -> MaskedAutoencoder:
    torch.manual_seed(0)
    fm = MaskedAutoencoder(ViT(CFG))
    with torch.no_grad():  # a norm that is not the identity, so using another one would show
        fm.encoder.head.norm.weight.uniform_(0.5, 1.5)
        fm.encoder.head.norm.bias.normal_()
    return fm


def _template(fm: MaskedAutoencoder, method: str) -> nn.Module:
    if method == "full":  # every weight trains (FedAvg-full): the start device runs under vmap
        return copy.deepcopy(fm.encoder).requires_grad_(True)
    return build_edge_model(fm, PeftParams(method=method, lora_rank=2, prompt_tokens=2), seed=0)


def _lane(template: nn.Module, seed: int) -> nn.Module:
    """A lane's model: the template with its tunable tensors moved (LoRA B starts at zero), the
    edge's head norm included — the reconstruction must not read it."""
    model = copy.deepcopy(template)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(torch.randn(p.shape, generator=g) * 0.1)
    return model


def _unsplit(model: nn.Module, fm: MaskedAutoencoder) -> MaskedAutoencoder:
    """The FM's MaskedAutoencoder with the lane's tunable modules in its encoder: the lane's ViT,
    with the FM's own head (its norm) and decoder."""
    vit = base_vit(model)
    vit.head = copy.deepcopy(fm.encoder.head).requires_grad_(False)
    mae = MaskedAutoencoder(vit)
    mae.decoder = copy.deepcopy(fm.decoder).requires_grad_(False)
    return mae


@pytest.mark.parametrize("method", ["lora", "prompt", "full"])
def test_mae_loss_through_the_chain_is_the_unsplit_one(method: str) -> None:
    fm = _fm()
    template = _template(fm, method)
    models = [_lane(template, 1), _lane(template, 2)]
    names = [n for n, p in template.named_parameters() if p.requires_grad]
    channels = [Channel(), Channel()]
    chain = StackedChain(template, BLOCKS, list(channels), names)
    for lane, m in enumerate(models):
        chain.load(lane, dict(m.named_parameters()))
    g = torch.Generator().manual_seed(3)
    images = [torch.rand(5, 1, 8, 8, generator=g) * 2 - 1, torch.rand(3, 1, 8, 8, generator=g) * 2 - 1]
    rec = ChainReconstruction(fm, RATIO)
    noise = [rec.noise(len(x), g) for x in images]  # ragged lanes: lane 1 padded by two rows
    losses, trace = rec.losses(chain, images, noise)
    chain.backward(losses.sum(), trace)
    stacked = chain.stacked()
    for lane, (model, x, n) in enumerate(zip(models, images, noise, strict=True)):
        ref, _, _ = _unsplit(model, fm)(x, RATIO, noise=n)
        ref.backward()
        assert abs(losses[lane].item() - ref.item()) < 1e-5, lane
        grads = {k: p.grad for k, p in model.named_parameters() if p.requires_grad and p.grad is not None}
        assert grads, "no tunable tensor got a gradient"
        for k, s in stacked.items():
            got = s.grad[lane] if s.grad is not None else torch.zeros_like(s[lane])
            want = grads.get(k, torch.zeros_like(got))
            assert torch.allclose(got, want, atol=1e-5), (lane, k)
        # the end device's head is not the reconstruction's: it learns nothing from it
        head = [k for k in stacked if ".head." in f".{k}" and stacked[k].grad is not None]
        assert all(not stacked[k].grad[lane].any() for k in head), head
        # every link carried each of its images' visible tokens only, forward
        act = len(x) * KEPT * CFG.dim * 4
        assert channels[lane].ledger.bytes[("d2d", "forward")] == 3 * act


def _step(cfg: HfslParams, rec: ChainReconstruction | None, steps: int = 2) -> tuple[StackedChain, Channel]:
    """``steps`` client steps of one cluster (four devices) as one lane; its chain and channel."""
    fm = _fm()
    edge = build_edge_model(fm, PeftParams(method="lora", lora_rank=2), seed=0)
    names = [n for n, p in edge.named_parameters() if p.requires_grad]
    channel = Channel()
    chain = StackedChain(edge, BLOCKS, [channel], names)
    t = ClientTraining.of(cfg)
    module = StackedSemiSupervised(chain, t, [0], [torch.full((3,), 1 / 3)], steps, reconstruction=rec)
    data = StackedBatches([client_split(n=32)], t, [0], steps)
    make_trainer("cpu", max_epochs=1).fit(module, DataLoader(data, batch_size=None))
    return chain, channel


def test_mae_weight_zero_leaves_the_client_step_as_it_was() -> None:
    cfg = HfslParams(batch_size=4, lr=0.05)
    off, off_bytes = _step(cfg, None)
    given, given_bytes = _step(cfg, ChainReconstruction(_fm(), RATIO))  # a decoder given, lever off
    for k, p in off.stacked().items():
        assert torch.equal(p, given.stacked()[k]), k
    assert off_bytes.ledger.snapshot() == given_bytes.ledger.snapshot()
    # and its batches draw no unlabelled image, as before the lever
    data = client_split(n=32)
    batches = FixMatchBatches(data.labelled, 4, 3, 0, ClientTraining.of(cfg).uses_unlabelled)
    assert all(bool(data.labelled[b].all()) for b in batches)


def test_mae_weight_trains_on_the_unlabelled_images_through_the_links() -> None:
    off, off_channel = _step(HfslParams(batch_size=4, lr=0.05), None)
    cfg = HfslParams(batch_size=4, lr=0.05, mae_weight=1.0)
    on, on_channel = _step(cfg, ChainReconstruction(_fm(), RATIO))
    assert any(not torch.equal(p, off.stacked()[k]) for k, p in on.stacked().items())
    # per step and link: 4 labelled images' every token, then 12 unlabelled images' visible ones;
    # their gradients go back over the two links into devices with LoRA (the embedding has none)
    extra = 2 * 12 * KEPT * CFG.dim * 4
    on_bytes, off_bytes = on_channel.ledger.bytes, off_channel.ledger.bytes
    assert on_bytes[("d2d", "forward")] - off_bytes[("d2d", "forward")] == 3 * extra
    assert on_bytes[("d2d", "backward")] - off_bytes[("d2d", "backward")] == 2 * extra
    with pytest.raises(ValueError, match="decoder"):
        _step(cfg, None)


def test_mae_levers_validate() -> None:
    with pytest.raises(ValidationError):
        HfslParams(mae_weight=-0.5)
    with pytest.raises(ValidationError):
        HfslParams(mae_mask_ratio=1.0)
    assert HfslParams().mae_weight == 0 and not ClientTraining.of(HfslParams()).uses_unlabelled
