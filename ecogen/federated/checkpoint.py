"""Round-level checkpoints of an HFSL run: a run stopped in round k (even by ``kill -9``)
continues from round k when its stage runs again (``ecogen run P --resume``).

After every round the loop writes, atomically, everything a round reads from the rounds before:
each edge's aggregated modules and server-optimiser moments, each participant's tunable modules
(participants that keep their own model between rounds, as ``local`` does, need them; where
rounds draw their clusters, ``hfsl.clusters_per_round``, there are none to keep: a drawn cluster
starts from the edge's modules), the frozen weights FedEx-LoRA corrected (the edge's and each
participant's), and the per-round accuracy, bytes and compute so far.  Each
round's client seeds are derived from the round number, and so are the clusters a round draws,
so continuing from a checkpoint trains what the uninterrupted run would have.

A checkpoint is used only by a run that starts from the same place: its fingerprint covers the
HFSL params, the edges (names, seeds, starting modules) and their participants' data sizes; any
other checkpoint is ignored and overwritten.  It is deleted when the run finishes.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Any

import torch

from ecogen.config.params import HfslParams
from ecogen.federated.fedex import copy_bases, put_bases
from ecogen.federated.roles import EdgeServer
from ecogen.peft.tunable import load_tunable_state, tunable_state

log = logging.getLogger("ecogen.hfsl")

Records = dict[str, list[dict[str, Any]]]  # edge name → its RoundRecords so far, as dicts


def fingerprint(cfg: HfslParams, edges: list[EdgeServer], sizes: list[list[int]]) -> str:
    """``sizes``: per edge, the data sizes of its participants (every cluster, then the edge's own)."""
    h = hashlib.sha256(cfg.model_dump_json().encode())
    for e, n in zip(edges, sizes, strict=True):
        h.update(f"{e.name}/{e.seed}/{n}".encode())
        for key in sorted(e.state):
            h.update(key.encode())
            h.update(e.state[key].detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def save(path: Path, stamp: str, r: int, edges: list[EdgeServer], records: Records) -> None:
    """Everything rounds ``r + 1…`` need, written atomically (a kill mid-write leaves the last one)."""
    body = {
        "fingerprint": stamp,
        "round": r,
        "edges": {
            e.name: {
                "state": e.state,
                "server": e.server,
                "clients": [tunable_state(c.model) for c in e.clients],
                "dp_history": e.dp_history,
                **_bases(e),
            }
            for e in edges
        },
        "records": records,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(body, tmp)
    os.replace(tmp, path)


def _bases(e: EdgeServer) -> dict[str, Any]:
    """FedEx-LoRA's corrections of the frozen weights so far: the edge's log and weights, and each
    participant's version and weights (nothing when the edge has made none)."""
    if e.bases is None:
        return {}
    clients = [(c.base_version, copy_bases(c.model)) for c in e.clients]
    return {"bases": e.bases, "base": copy_bases(e.model), "client_bases": clients}


def restore(path: Path | None, stamp: str, edges: list[EdgeServer]) -> tuple[int, Records] | None:
    """Puts a matching checkpoint's state back into ``edges``; (rounds done, records), or None."""
    if path is None or not path.is_file():
        return None
    try:
        body = torch.load(path, weights_only=False)
    except Exception as exc:  # a damaged checkpoint only costs the rounds it held
        log.warning("hfsl: ignoring the unreadable checkpoint %s (%s)", path, exc)
        return None
    if body.get("fingerprint") != stamp or "records" not in body:  # (an older EcoGen's has none)
        log.info("hfsl: %s was written by another run (other params or inputs); starting at round 1", path)
        return None
    for e in edges:
        saved = body["edges"][e.name]
        e.server = saved["server"]
        e.install(saved["state"])
        for client, state in zip(e.clients, saved["clients"], strict=True):
            load_tunable_state(client.model, state)
        e.dp_history = saved.get("dp_history", {})
        if "bases" in saved:  # FedEx-LoRA's corrections of the frozen weights, edge and clients
            e.bases = saved["bases"]
            put_bases(e.model, saved["base"])
            for client, (version, weights) in zip(e.clients, saved["client_bases"], strict=True):
                client.base_version = version
                put_bases(client.model, weights)
    done = int(body["round"]) + 1
    log.info("hfsl: continuing after round %d from the checkpoint %s", done, path)
    return done, body["records"]


def clear(path: Path | None) -> None:
    if path is not None:
        path.unlink(missing_ok=True)
