"""Mean GPU utilisation inside time windows, from an ``nvidia-smi`` CSV log.

    python benchmarks/gpu/utilisation.py gpu-fine.csv drivers.json

The CSV is what ``nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used
--format=csv,noheader,nounits -lms 200`` writes; the JSON is ``benchmarks/drivers.py``'s, whose
``drivers.windows`` holds each driver's wall-clock spans.  Prints one JSON object: per driver the
mean and peak utilisation (%) and the peak memory (MiB) over the samples inside its spans.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path


def samples(csv: Path) -> list[tuple[float, float, float]]:
    """(epoch seconds, utilisation %, memory MiB) per parsable line."""
    out = []
    for line in csv.read_text().splitlines():
        parts = [p.strip() for p in line.split(",")]
        try:
            when = datetime.strptime(parts[0], "%Y/%m/%d %H:%M:%S.%f").timestamp()
            out.append((when, float(parts[1]), float(parts[2])))
        except (ValueError, IndexError):
            continue  # a header or a line cut short
    return out


def within(rows: list[tuple[float, float, float]], spans: list[list[float]]) -> dict[str, float | int]:
    inside = [r for r in rows if any(a <= r[0] <= b for a, b in spans)]
    if not inside:
        return {"samples": 0}
    return {
        "samples": len(inside),
        "mean_utilisation_pct": sum(r[1] for r in inside) / len(inside),
        "peak_utilisation_pct": max(r[1] for r in inside),
        "peak_memory_mib": max(r[2] for r in inside),
    }


def main(csv: str, bench: str) -> dict[str, dict[str, float | int]]:
    rows = samples(Path(csv))
    windows = json.loads(Path(bench).read_text())["drivers"]["windows"]
    return {driver: within(rows, spans) for driver, spans in windows.items()}


if __name__ == "__main__":
    print(json.dumps(main(*sys.argv[1:3]), indent=2))
