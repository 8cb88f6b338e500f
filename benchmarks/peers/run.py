"""Runs the peer job in EcoGen and in Flower, each in its own process (so peak memory is each
framework's own), and prints both results as one JSON object and a Markdown table.

    python -m benchmarks.peers.run            # from the repository root, with the peers extra
"""

from __future__ import annotations

import json
import os
import subprocess
import sys


def side(module: str) -> dict:
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    out = subprocess.run(  # stderr (progress, errors) passes through
        [sys.executable, "-m", module], check=True, stdout=subprocess.PIPE, text=True, env=env
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def table(rows: list[dict]) -> str:
    lines = [
        "| framework | s/round (median, rounds 2–5) | peak RSS, all processes "
        "| accuracy per round | bytes per round |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        acc = ", ".join(f"{a:.3f}" for a in r["accuracy_per_round"])
        lines.append(
            f"| {r['framework']} | {r['s_per_round_median_2_5']:.1f} | {r['peak_rss_bytes'] / 2**20:.0f} MiB "
            f"| {acc} | {r['bytes_per_round'][0] / 1e6:.2f} MB |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    rows = [side("benchmarks.peers.ecogen_side"), side("benchmarks.peers.flower_side")]
    print(json.dumps({r["framework"]: r for r in rows}, indent=1))
    print(table(rows))
