"""The edge service in-process (FastAPI's TestClient): answers, cache counters, bad requests."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient

from ecogen.config.params import CostParams, LinkClass
from ecogen.models.vit import ViTConfig
from ecogen.serving.cache import EdgeCache
from ecogen.serving.chain import fresh_chain
from ecogen.serving.service import EdgeService, make_app

CFG = ViTConfig(image_size=8, channels=1, patch_size=4, num_classes=3, dim=16, depth=2, heads=2)


def _image(seed: int) -> list:
    return np.random.default_rng(seed).integers(0, 256, size=(1, 8, 8)).tolist()


@pytest.fixture
def client() -> TestClient:
    return TestClient(make_app(EdgeService(fresh_chain(CFG, devices=4, seed=0), EdgeCache(capacity=2))))


def test_a_repeat_is_answered_from_the_cache_with_the_same_answer(client: TestClient) -> None:
    first = client.post("/predict", json={"image": _image(1)}).json()
    again = client.post("/predict", json={"image": _image(1)}).json()
    assert not first["cached"] and again["cached"]
    assert again["class"] == first["class"] and again["probabilities"] == first["probabilities"]
    assert len(first["probabilities"]) == 3 and sum(first["probabilities"]) == pytest.approx(1.0)
    # a hit skips the devices: fewer bytes, less time
    assert again["bytes"] < first["bytes"] and again["latency_ms"] < first["latency_ms"]
    stats = client.get("/stats").json()
    assert (stats["requests"], stats["hits"], stats["misses"], stats["evictions"]) == (2, 1, 1, 0)
    assert stats["hit_rate"] == 0.5


def test_stats_count_evictions(client: TestClient) -> None:
    for seed in (1, 2, 3, 1):  # capacity 2: 3 evicts 1, so 1 misses again
        client.post("/predict", json={"image": _image(seed)})
    stats = client.get("/stats").json()
    assert (stats["hits"], stats["misses"], stats["evictions"], stats["size"]) == (0, 4, 2, 2)


def test_a_miss_crosses_every_device_hop() -> None:
    chain = fresh_chain(CFG, devices=4, seed=0)
    reply = EdgeService(chain).predict(np.zeros((1, 8, 8), np.uint8))
    # 3 d2d hops of (1, 1 + 4 patches, 16) float32 tokens, in the channel's ledger
    assert chain.channel.ledger.total("d2d") == 3 * 5 * 16 * 4
    assert reply["bytes"] == 2 * (64 + 12) + 3 * 5 * 16 * 4
    assert not reply["cached"]


@pytest.mark.parametrize(
    ("image", "says"),
    [
        (np.zeros((1, 8, 7), int).tolist(), "shape [1, 8, 7]"),
        (np.full((1, 8, 8), 0.5).tolist(), "integers 0..255"),
        (np.full((1, 8, 8), 300).tolist(), "0..255, got 300..300"),
        ([[[1, 2], [3]]], "rectangular"),
    ],
)
def test_bad_images_are_refused_with_a_reason(client: TestClient, image: list, says: str) -> None:
    r = client.post("/predict", json={"image": image})
    assert r.status_code == 422
    assert says in r.json()["detail"]
    assert client.get("/stats").json()["requests"] == 0


def test_health(client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "ok"}


def test_near_duplicates_share_an_answer() -> None:
    service = EdgeService(fresh_chain(CFG, seed=0), EdgeCache(capacity=4, near_threshold=0.99))
    image = np.asarray(_image(5), np.uint8)
    twin = image.copy()
    twin[0, 0, 0] ^= 1  # one pixel one level off: another key, nearly the same features
    first, second = service.predict(image), service.predict(twin)
    assert second["cached"] and second["near"] and second["class"] == first["class"]
    assert service.stats()["near_hits"] == 1


def test_link_time_and_energy_follow_the_cost_model() -> None:
    service = EdgeService(fresh_chain(CFG, devices=4, seed=0), EdgeCache(capacity=2))
    image = np.zeros((1, 8, 8), np.uint8)
    miss, hit = service.predict(image), service.predict(image)
    ec, d2d = CostParams().links["edge_client"], CostParams().links["d2d"]

    def hop_ms(n: int, link: LinkClass) -> float:
        return 1e3 * (n * 8 / (link.mbps * 1e6) + link.latency_ms / 1e3)

    # a hit: image up, answer (3 float32) down, both client↔edge
    assert hit["link_ms"] == pytest.approx(hop_ms(64, ec) + hop_ms(12, ec))
    # a miss: and edge → start device, 3 d2d hops of 5 tokens × 16 floats, end device → edge
    assert miss["link_ms"] == pytest.approx(2 * hop_ms(64, ec) + 2 * hop_ms(12, ec) + 3 * hop_ms(320, d2d))
    assert miss["latency_ms"] == pytest.approx(miss["link_ms"] + miss["compute_ms"])
    link_mj = 1e3 * (2 * 76 * ec.joules_per_byte + 3 * 320 * d2d.joules_per_byte)
    assert miss["energy_mj"] > link_mj and hit["energy_mj"] > 1e3 * 76 * ec.joules_per_byte
