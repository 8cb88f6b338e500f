"""Example-level DP-SGD (``hfsl.dp_mechanism: dp_sgd``): the RDP accounting meets the stated ε,
each example's gradient is clipped, and with no noise and no clip the step is ordinary SGD's."""

import math

import dp_accounting
import pytest
import torch
import torch.nn.functional as F
from dp_accounting import rdp
from federated_support import CFG, cluster

from ecogen.config.params import HfslParams, PeftParams
from ecogen.federated import example_dp, privacy
from ecogen.federated.hfsl import EdgeJob, run_hfsl_edges
from ecogen.models.vit import MaskedAutoencoder, ViT
from ecogen.peft.edge import build_edge_model
from ecogen.peft.registry import apply_peft
from ecogen.split import Channel, allocate_blocks
from ecogen.split.dp_sgd import ExampleDp, clipped_sums, example_gradients, noised_means
from ecogen.split.stacked import StackedChain

DP = {"dp_epsilon": 8.0, "dp_delta": 1e-5, "dp_mechanism": "dp_sgd", "unlabelled_weight": 0.0}


def _spent(dp: ExampleDp, steps: int, delta: float) -> float:
    """The accountant stepped as a DP-SGD run steps it: one Poisson-sampled Gaussian step at a time."""
    accountant = rdp.RdpAccountant(privacy.SAMPLED_ORDERS)
    step = dp_accounting.PoissonSampledDpEvent(
        dp.sample_rate, dp_accounting.GaussianDpEvent(dp.noise_multiplier)
    )
    for _ in range(steps):
        accountant.compose(step)
    return accountant.get_epsilon(delta)


@pytest.mark.parametrize(("records", "rounds", "steps"), [(100, 16, 15), (40, 4, 10), (1000, 16, 15)])
def test_the_noise_meets_the_stated_epsilon_by_the_accountant(records: int, rounds: int, steps: int) -> None:
    cfg = HfslParams(**DP, rounds=rounds, local_steps=steps, batch_size=16)
    dp = example_dp.plan(cfg, records, steps)
    assert dp.sample_rate == pytest.approx(16 / records) and dp.expected_batch == pytest.approx(16)
    spent = _spent(dp, rounds * steps, 1e-5)
    assert 0.97 * 8.0 <= spent <= 8.0  # the target, not far under it: σ no larger than it must be
    # the history the driver keeps, round by round, is the same accountant
    history: example_dp.History = []
    for _ in range(rounds):
        example_dp.spend(history, dp, steps)
    assert history == [(dp.noise_multiplier, dp.sample_rate, rounds * steps)]
    assert example_dp.epsilon_spent(history, 1e-5) == pytest.approx(spent)


def _chain(lanes: int) -> tuple[torch.nn.Module, StackedChain]:
    torch.manual_seed(0)
    full = apply_peft(ViT(CFG), PeftParams(method="lora", lora_rank=2))
    with torch.no_grad():  # LoRA B starts at zero: perturb, so every tunable tensor gets a gradient
        for p in full.parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p) * 0.1)
    names = [n for n, p in full.named_parameters() if p.requires_grad]
    chain = StackedChain(full, allocate_blocks(CFG.depth, 3), [Channel() for _ in range(lanes)], names)
    with torch.no_grad():  # lanes differ
        for t in chain.stacked().values():
            t.add_(torch.randn_like(t) * 0.05)
    return full, chain


def _batches() -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    g = torch.Generator().manual_seed(1)
    inputs = [torch.randn(n, 1, 8, 8, generator=g) for n in (3, 2)]
    labels = [torch.randint(0, 3, (n,), generator=g) for n in (3, 2)]
    return inputs, labels


def _one_at_a_time(
    chain: StackedChain, lane: int, x: torch.Tensor, y: torch.Tensor
) -> dict[str, torch.Tensor]:
    """One example's gradient through the ordinary chain: its lane alone has a row."""
    stacked = chain.stacked()
    for t in stacked.values():
        t.grad = None
    rows = torch.zeros(chain.lanes, 1, *x.shape)
    rows[lane, 0] = x
    counts = [int(c == lane) for c in range(chain.lanes)]
    labels = [y[None] if c == lane else y[None][:0] for c in range(chain.lanes)]
    out, trace = chain(rows, counts, labels, train=True)
    chain.backward(F.cross_entropy(out[lane, :1], y[None]), trace)
    return {n: t.grad[lane].clone() for n, t in stacked.items() if t.grad is not None}


def test_each_example_is_clipped_and_the_sum_is_the_clipped_examples_one_at_a_time() -> None:
    _, chain = _chain(2)
    inputs, labels = _batches()
    grads, _ = example_gradients(chain, inputs, labels)
    reference = [
        (c, _one_at_a_time(chain, c, x, y))
        for c in range(2)
        for x, y in zip(inputs[c], labels[c], strict=True)
    ]
    norms = [math.sqrt(sum(float(g.pow(2).sum()) for g in r.values())) for _, r in reference]
    clip = sorted(norms)[len(norms) // 2]  # some examples clipped, some under the clip
    assert min(norms) < clip < max(norms)
    for i, (_, r) in enumerate(reference):  # each copy's gradient is that example's
        for name, g in r.items():
            assert torch.allclose(grads[name][i], g, atol=1e-6), name
    sums = clipped_sums(grads, [3, 2], [clip, clip])
    for name in grads:
        expected = torch.zeros_like(sums[name])
        for (c, r), norm in zip(reference, norms, strict=True):
            expected[c] += r[name] * min(1.0, clip / (norm + 1e-6))
        assert torch.allclose(sums[name], expected, atol=1e-6), name
    # each example's contribution has norm ≤ C
    for i in range(len(norms)):
        one = clipped_sums({n: g[i : i + 1] for n, g in grads.items()}, [1, 0], [clip, clip])
        assert math.sqrt(sum(float(g[0].pow(2).sum()) for g in one.values())) <= clip + 1e-6


def test_no_noise_and_no_clip_is_ordinary_sgd() -> None:
    _, chain = _chain(2)
    inputs, labels = _batches()
    out, trace = chain(
        torch.stack([inputs[0], torch.cat([inputs[1], inputs[1][:1] * 0])]), [3, 2], labels, True
    )
    loss = F.cross_entropy(out[0, :3], labels[0]) + F.cross_entropy(out[1, :2], labels[1])
    chain.backward(loss, trace)
    ordinary = {n: t.grad.clone() for n, t in chain.stacked().items() if t.requires_grad}
    grads, _ = example_gradients(chain, inputs, labels)
    sums = clipped_sums(grads, [3, 2], [math.inf, math.inf])
    gens = [torch.Generator().manual_seed(0) for _ in range(2)]
    for plans in ([None, None], [ExampleDp(0.0, 1.0, math.inf, 3.0), ExampleDp(0.0, 1.0, math.inf, 2.0)]):
        means = noised_means(sums, plans, [3, 2], gens)
        for name, g in ordinary.items():
            assert torch.allclose(means[name], g, atol=1e-6), name


def test_the_noise_is_sigma_times_the_clip_over_the_expected_batch() -> None:
    sums = {"w": torch.zeros(2, 20000)}
    plans = [ExampleDp(2.0, 0.1, 0.5, 4.0), None]
    means = noised_means(sums, plans, [3, 0], [torch.Generator().manual_seed(s) for s in (0, 1)])
    assert means["w"][0].std().item() == pytest.approx(2.0 * 0.5 / 4.0, rel=0.03)
    assert means["w"][1].abs().max().item() == 0.0  # no plan: no noise


def _run(**levers: object):
    torch.manual_seed(0)
    model = build_edge_model(MaskedAutoencoder(ViT(CFG)), PeftParams(method="lora", lora_rank=2), seed=0)
    cfg = HfslParams(**{"clusters": 3, "rounds": 2, "batch_size": 4, "local_steps": 3, **DP, **levers})
    job = EdgeJob("e", model, [cluster(s, 16, 12) for s in range(3)], lambda m: 0.0, 0, own=cluster(9, 16))
    return run_hfsl_edges([job], cfg, "cpu")["e"], cfg


def test_a_run_spends_the_stated_epsilon_on_each_cluster_and_none_on_the_edge() -> None:
    out, cfg = _run()
    assert sorted(out.dp_history) == [0, 1, 2]  # the clusters; the edge's own participant (3) has none
    dp = example_dp.plan(cfg, 12, 3)
    for history in out.dp_history.values():
        assert history == [(dp.noise_multiplier, dp.sample_rate, 6)]
        assert 0.97 * 8.0 <= example_dp.epsilon_spent(history, 1e-5) <= 8.0
    again, _ = _run()  # seeded: the same sampling and noise
    assert all(torch.equal(out.state[k], again.state[k]) for k in out.state)
    clean, _ = _run(dp_epsilon=None, dp_mechanism="upload")
    assert max((out.state[k] - clean.state[k]).abs().max().item() for k in out.state) > 1e-4
