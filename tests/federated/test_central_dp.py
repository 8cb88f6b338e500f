"""Central DP at the edge (``hfsl.dp_mechanism: central``, DP-FedAvg): each cluster's update
clipped, the noise on the sum σ·C·max n_k, the edge's own update as it is."""

import pytest
import torch

from ecogen.config.params import HfslParams
from ecogen.federated import privacy
from ecogen.federated.central_dp import central_noise, dp_fedavg


def test_each_cluster_update_is_clipped_and_the_edge_own_joins_as_it_is() -> None:
    start = {"w": torch.zeros(4)}
    big = {"w": torch.tensor([30.0, 40.0, 0.0, 0.0])}  # norm 50 → clipped to 0.5: (0.3, 0.4, 0, 0)
    small = {"w": torch.tensor([0.0, 0.0, 0.1, 0.0])}  # under the clip: as it is
    own = {"w": torch.tensor([0.0, 0.0, 0.0, 10.0])}  # the edge's: not clipped
    g = torch.Generator().manual_seed(0)
    out = dp_fedavg([(big, 2), (small, 1)], [(own, 5)], start, 0.5, 0.0, g)
    expected = torch.tensor([2 * 0.3, 2 * 0.4, 1 * 0.1, 5 * 10.0]) / 8
    assert torch.allclose(out["w"], expected, atol=1e-6)


def test_the_noise_on_the_sum_is_sigma_clip_max_weight() -> None:
    start = {"w": torch.zeros(40000)}
    zero = {"w": torch.zeros(40000)}
    out = dp_fedavg([(zero, 3), (zero, 1)], [(zero, 4)], start, 0.5, 2.0, torch.Generator().manual_seed(0))
    assert out["w"].std().item() == pytest.approx(2.0 * 0.5 * 3 / 8, rel=0.03)


def test_central_dp_is_on_for_its_mechanism_only_with_the_accountant_sigma() -> None:
    assert central_noise(HfslParams(dp_epsilon=8.0)) is None  # the upload noise's row
    assert central_noise(HfslParams()) is None
    cfg = HfslParams(dp_epsilon=8.0, dp_mechanism="central", clip_norm=0.5, rounds=16)
    merge = central_noise(cfg)
    assert merge is not None
    start, zero = {"w": torch.zeros(40000)}, {"w": torch.zeros(40000)}
    out = merge([(zero, 1), (zero, 1)], [], start, 3, 0)
    sigma = privacy.noise_multiplier(8.0, 16, 1e-5)
    assert out["w"].std().item() == pytest.approx(sigma * 0.5 / 2, rel=0.03)
    again = merge([(zero, 1), (zero, 1)], [], start, 3, 0)
    assert torch.equal(out["w"], again["w"])  # seeded by edge and round
    assert not torch.equal(out["w"], merge([(zero, 1), (zero, 1)], [], start, 3, 1)["w"])
