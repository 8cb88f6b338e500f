"""``python stream_patched.py MODE ARGS...``: the ``ecogen`` command with one fault put in first,
for tests/e2e/test_stream_gate.py (the product code runs as it is; only the named piece changes).

* ``fail-hfsl``: the hfsl stage raises (a run that fails after the data is in, before the gate);
* ``corrupt-labels``: every label the clients and edges get is class 0 (a corrupted increment),
  so the run's challenger is worse than the champion it started from.
"""

from __future__ import annotations

import sys
from typing import Any


def _fail_hfsl() -> None:
    import ecogen.stages.hfsl as hfsl

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("hfsl broke (stream_patched.py)")

    hfsl.hfsl = broken  # type: ignore[assignment]


def _corrupt_labels() -> None:
    import ecogen.stages.prepare as prepare
    from ecogen.stream import ingest

    cut = ingest.cut

    def corrupted(*args: Any, **kwargs: Any) -> Any:
        splits, state = cut(*args, **kwargs)
        for name, split in splits.items():
            if name != "test":
                split.y[split.labelled] = 0
        return splits, state

    prepare.ingest.cut = corrupted  # type: ignore[assignment]


if __name__ == "__main__":
    mode, args = sys.argv[1], sys.argv[2:]
    {"fail-hfsl": _fail_hfsl, "corrupt-labels": _corrupt_labels}[mode]()
    from ecogen.cli import app

    sys.argv = ["ecogen", *args]
    app()
