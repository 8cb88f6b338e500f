"""The edge inference service as a client meets it: ``ecogen serve`` on 127.0.0.1 over HTTP.

A fresh ViT (``--fresh``: no run needed) behind a cache of two answers: a repeated image comes
back ``cached`` with the same answer, a third image evicts the oldest, a bad image is refused
with 422 and a reason, and ``/stats`` counts all of it.  The server is stopped at the end.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import numpy as np
import pytest
from e2e_support import free_port, offline_env, start, stop, wait_for

from benchmarks.agents import healthy

pytestmark = pytest.mark.slow


def _image(seed: int) -> list:
    return np.random.default_rng(seed).integers(0, 256, size=(1, 28, 28)).tolist()


def test_the_served_chain_answers_caches_and_counts(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    env = offline_env(tmp_path)
    with log.open("w") as f:
        proc = start(["ecogen", "serve", "--fresh", "--capacity", "2", "--port", str(port)], tmp_path, env, f)
    try:
        wait_for("the edge service", lambda: healthy(f"{url}/health"), 60, [log], every=0.3)
        with httpx.Client(base_url=url, trust_env=False, timeout=30) as client:
            a1, a2, b, c, a3 = (client.post("/predict", json={"image": _image(s)}) for s in (1, 1, 2, 3, 1))
            replies = [r.json() for r in (a1, a2, b, c, a3)]
            assert all(r.status_code == 200 for r in (a1, a2, b, c, a3)), log.read_text()[-3000:]
            assert [r["cached"] for r in replies] == [False, True, False, False, False]
            assert replies[1]["class"] == replies[0]["class"] == replies[4]["class"]
            assert replies[1]["probabilities"] == replies[0]["probabilities"]
            assert replies[1]["latency_ms"] < replies[0]["latency_ms"]  # a hit skips the devices
            bad = client.post("/predict", json={"image": np.full((1, 28, 28), 0.5).tolist()})
            assert bad.status_code == 422 and "integers 0..255" in bad.json()["detail"]
            stats = client.get("/stats").json()
        # b then c evicted a (capacity 2), so a's third request missed and evicted b
        assert {k: stats[k] for k in ("requests", "hits", "misses", "evictions", "size")} == {
            "requests": 5,
            "hits": 1,
            "misses": 4,
            "evictions": 2,
            "size": 2,
        }
        assert stats["hit_rate"] == pytest.approx(0.2)
    finally:
        stop(proc)
    assert proc.poll() is not None
