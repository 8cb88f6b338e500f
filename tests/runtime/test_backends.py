"""Exports and batches take turns: torch.export switches oneDNN off for every thread."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch

from ecogen.models.export import export_raw_images
from ecogen.models.vit import ViT, ViTConfig
from ecogen.runtime.backends import computing, exporting


def _in_thread(body) -> threading.Thread:  # type: ignore[no-untyped-def]
    t = threading.Thread(target=body, daemon=True)
    t.start()
    return t


def test_an_export_waits_for_the_batches_in_flight_and_new_batches_wait_for_it() -> None:
    order: list[str] = []
    in_batch, leave_batch, export_waits = threading.Event(), threading.Event(), threading.Event()

    def batch() -> None:
        with computing():
            order.append("batch")
            in_batch.set()
            leave_batch.wait(5)
        order.append("batch done")

    def export() -> None:
        export_waits.set()
        with exporting():
            order.append("export")
            time.sleep(0.2)
        order.append("export done")

    first = _in_thread(batch)
    assert in_batch.wait(5)
    exporter = _in_thread(export)
    assert export_waits.wait(5)
    time.sleep(0.2)
    assert order == ["batch"]  # the export waits for the batch in flight ...

    def late_batch() -> None:
        with computing():
            order.append("late batch")

    late = _in_thread(late_batch)
    time.sleep(0.2)
    assert order == ["batch"]  # ... and a batch that starts now waits for the export
    leave_batch.set()
    for t in (first, exporter, late):
        t.join(5)
    assert order == ["batch", "batch done", "export", "export done", "late batch"]
    with exporting():  # nothing left computing: an export goes at once
        pass


def test_nested_batches_never_wait_and_a_batch_cannot_export() -> None:
    with computing(), computing():
        with pytest.raises(RuntimeError, match="cannot export while it computes"):
            with exporting():
                pass
    with exporting():
        pass


def test_no_batch_sees_onednn_switched_off_by_an_export() -> None:
    """torch.export turns oneDNN off process-wide while it traces; a thread polling the flag
    outside :func:`computing` sees it off, inside it never does."""
    model = ViT(ViTConfig(image_size=8, patch_size=4, dim=16, depth=1, heads=2)).eval()
    images = np.zeros((1, 1, 8, 8), dtype=np.uint8)
    seen: dict[bool, set[bool]] = {True: set(), False: set()}

    def poll(guarded: bool, stop: threading.Event) -> None:
        while not stop.is_set():
            if guarded:
                with computing():
                    seen[True].add(torch._C._get_mkldnn_enabled())
            else:
                seen[False].add(torch._C._get_mkldnn_enabled())
            time.sleep(0)

    for guarded in (False, True):
        stop = threading.Event()
        poller = _in_thread(lambda g=guarded, s=stop: poll(g, s))
        for _ in range(2):
            export_raw_images(model, "probabilities", images)
        stop.set()
        poller.join(5)
    assert seen[False] == {True, False}  # the hazard is real: unguarded, the flag flips
    assert seen[True] == {True}
