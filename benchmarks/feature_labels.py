"""How right the FM's feature-space pseudo-labels are (``hfsl.feature_labels``), against the true
labels the prepared data keep for the oracle.

For a pipeline folder that has run prepare and pretrain (each FM draw's folder: ``runs/NAME``,
``runs/NAME@fm1``, …), every cluster of every domain is relabelled as the ``ecogen-knn`` row does
(the edge's labelled bank and the cluster's own labels vote) and as the pooled learner does (one
pool, its own labels vote), at each ``--keep``; printed per FM draw: the share of the unlabelled
images kept, the accuracy of the kept pseudo-labels, and the accuracy of the vote on every
unlabelled image (``--keep 1`` with no filter would give).  Run from the project root:

    python -m benchmarks.feature_labels runs/ssl-ceiling runs/ssl-ceiling@fm1 --keep 0.3 0.6 0.9

It reads the folders only; it trains nothing.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from torch import Tensor

from ecogen.data.prepared import PreparedData, Split
from ecogen.federated.strategies.pooled_labels import pooled_clusters
from ecogen.models.checkpoint import load_fm
from ecogen.models.vit import ViT
from ecogen.training.feature_labels import balanced_keep, knn_vote, pooled_features
from ecogen.workspace import Workspace


def _score(
    split: Split,
    truth: Tensor,
    encoder: ViT,
    bank: Tensor,
    bank_y: Tensor,
    keeps: list[float],
    k: int,
    min_confidence: float,
) -> dict[str, int]:
    """Per keep: images kept, of them right; and the unfiltered vote's right count."""
    classes = encoder.cfg.num_classes
    unl = torch.nonzero(~split.labelled).flatten()
    own = pooled_features(encoder, split.x[split.labelled])
    labels, conf = knn_vote(
        torch.cat([bank, own]),
        torch.cat([bank_y, split.y[split.labelled]]),
        pooled_features(encoder, split.x[unl]),
        k,
        classes,
    )
    right = labels == truth[unl]
    out = {"unlabelled": len(unl), "vote_right": int(right.sum())}
    for keep in keeps:
        kept = balanced_keep(labels, conf, keep, classes, min_confidence)
        out[f"kept@{keep}"] = int(kept.sum())
        out[f"right@{keep}"] = int(right[kept].sum())
    return out


def _add(total: dict[str, int], part: dict[str, int]) -> None:
    for key, value in part.items():
        total[key] = total.get(key, 0) + value


def measure(
    folder: Path, keeps: list[float], k: int, clusters: int, min_confidence: float = 0.9
) -> dict[str, dict[str, int]]:
    ws = Workspace(folder)
    data = PreparedData(ws.data)
    encoder = load_fm(ws.fm).encoder.eval()
    federated: dict[str, int] = {}
    pooled: dict[str, int] = {}
    for domain in data.meta.domains:
        edge = data.edge(domain)
        bank, bank_y = pooled_features(encoder, edge.x), edge.y
        for c in range(clusters):
            split, truth = data.cluster(domain, c), data.oracle_labels(domain, c)
            _add(federated, _score(split, truth, encoder, bank, bank_y, keeps, k, min_confidence))
        pool = pooled_clusters(data, domain, clusters, oracle=False, edge=True, unlabelled=True)
        truth = torch.cat([data.oracle_labels(domain, c) for c in range(clusters)] + [edge.y])
        empty = torch.zeros((0, encoder.cfg.dim)), torch.zeros(0, dtype=torch.long)
        _add(pooled, _score(pool, truth, encoder, *empty, keeps, k, min_confidence))
    return {"federated (edge bank + own labels)": federated, "pooled": pooled}


def _print(folder: Path, result: dict[str, dict[str, int]], keeps: list[float]) -> None:
    for kind, r in result.items():
        n = r["unlabelled"]
        parts = [f"vote on all {r['vote_right'] / n:.3f}"]
        for keep in keeps:
            kept = r[f"kept@{keep}"]
            parts.append(f"keep {keep}: {kept / n:.2f} kept, {r[f'right@{keep}'] / max(1, kept):.3f} right")
        print(f"{folder.name:>22} {kind:<36} " + " | ".join(parts))


def main(argv: list[str] | None = None) -> dict[str, dict[str, dict[str, int]]]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folders", nargs="+", type=Path, help="pipeline folders (each FM draw's)")
    ap.add_argument("--keep", nargs="+", type=float, default=[0.3, 0.6, 0.9])
    ap.add_argument("-k", type=int, default=10, help="neighbours that vote (hfsl.feature_labels_k)")
    ap.add_argument("--clusters", type=int, default=6)
    ap.add_argument("--min-confidence", type=float, default=0.9, help="hfsl.feature_labels_confidence")
    ap.add_argument("--json", type=Path, help="also write the counts here")
    args = ap.parse_args(argv)
    results: dict[str, dict[str, dict[str, int]]] = {}
    for folder in args.folders:
        results[str(folder)] = measure(folder, args.keep, args.k, args.clusters, args.min_confidence)
        _print(folder, results[str(folder)], args.keep)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
