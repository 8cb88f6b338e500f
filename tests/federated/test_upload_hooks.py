"""Upload hooks: an attacker's poisoned modules and DP noise, composed; the first that applies wins."""

from __future__ import annotations

import torch

from ecogen.config.params import HfslParams
from ecogen.federated.upload_hooks import Upload, received, upload_hooks


def _upload(participant: int, r: int = 0) -> Upload:
    return Upload({"w": torch.full((3,), 2.0)}, {"w": torch.ones(3)}, participant, edge_seed=5, round=r)


def test_no_hooks_leave_the_upload_as_trained():
    assert upload_hooks(HfslParams()) == []
    assert torch.equal(received([], _upload(0))["w"], torch.full((3,), 2.0))


def test_attackers_poison_and_honest_participants_do_not():
    hooks = upload_hooks(HfslParams(attack="sign_flip", attackers=1, attack_scale=10.0, clusters=4))
    assert torch.equal(received(hooks, _upload(0))["w"], torch.full((3,), -9.0))  # 1 - 10 (2 - 1)
    assert torch.equal(received(hooks, _upload(1))["w"], torch.full((3,), 2.0))


def test_dp_noise_is_seeded_by_edge_round_and_participant():
    hooks = upload_hooks(HfslParams(dp_epsilon=8.0, clip_norm=0.5))
    a, again, other = (
        received(hooks, _upload(1)),
        received(hooks, _upload(1)),
        received(hooks, _upload(1, r=1)),
    )
    assert torch.equal(a["w"], again["w"]) and not torch.equal(a["w"], other["w"])
    assert not torch.equal(a["w"], torch.full((3,), 2.0))


def test_an_attacker_is_not_also_noised():
    hooks = upload_hooks(
        HfslParams(attack="scale", attackers=1, attack_scale=3.0, dp_epsilon=8.0, clusters=4)
    )
    assert len(hooks) == 2
    assert torch.equal(received(hooks, _upload(0))["w"], torch.full((3,), 4.0))  # 1 + 3 (2 - 1), no noise
