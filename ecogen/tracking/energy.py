"""Energy and carbon of one stage, measured by CodeCarbon in offline mode.

CodeCarbon is started and stopped here only; a failure of the meter never fails the stage — it
is recorded in the ``ecogen.energy.status`` tag with zeros in the metrics instead.

What the numbers mean depends on the hardware CodeCarbon found, so the method is recorded with
them (``ecogen.energy.hardware``, e.g. ``RAM(); CPU(Cpu Load)``): without RAPL, CPU power is
estimated from load × a per-thread TDP guess and RAM is a fixed estimate.  Tracking mode is
"machine": every meter sees the power of the whole machine.  Stages that run at once (an
experiment's trials side by side) are therefore each charged their share of it: while k meters
run, each gets 1/k of that time's energy (:class:`Sharing`; the share is the tag
``ecogen.energy.machine_share``), so the stages' figures add up to the machine's.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from codecarbon import OfflineEmissionsTracker

from ecogen.config.params import EnergyParams

log = logging.getLogger(__name__)

# CodeCarbon appends to one CSV per output_dir; serialise the appends of concurrent stages.
_CSV_LOCK = threading.Lock()


SHARE_TAG = "ecogen.energy.machine_share"


class Sharing:
    """The share of the machine each of several overlapping meters held: while k run, each holds
    1/k.  ``start()`` gives a token, ``stop(token)`` the meter's mean share over its span."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._running: dict[int, list[float]] = {}  # token → [start, share-seconds so far]
        self._last = 0.0
        self._next = 0

    def _advance(self, now: float) -> None:
        if self._running:
            each = (now - self._last) / len(self._running)
            for entry in self._running.values():
                entry[1] += each
        self._last = now

    def start(self) -> int:
        with self._lock:
            now = self._clock()
            self._advance(now)
            token, self._next = self._next, self._next + 1
            self._running[token] = [now, 0.0]
            return token

    def stop(self, token: int) -> float:
        with self._lock:
            now = self._clock()
            self._advance(now)
            begun, held = self._running.pop(token)
        return held / (now - begun) if now > begun else 1.0


_SHARING = Sharing()


@dataclass(frozen=True)
class EnergyReading:
    energy_kwh: float = 0.0
    emissions_kg_co2eq: float = 0.0
    cpu_kwh: float = 0.0
    ram_kwh: float = 0.0
    gpu_kwh: float = 0.0
    cpu_power_w: float = 0.0  # mean power over the stage, as estimated or read
    ram_power_w: float = 0.0
    gpu_power_w: float = 0.0
    tags: dict[str, str] = field(default_factory=dict)  # method, hardware, status

    def shared(self, share: float) -> EnergyReading:
        """This reading scaled to the ``share`` (0…1] of the machine the stage held."""
        if share >= 1.0:
            return self
        scaled = {f.name: getattr(self, f.name) * share for f in fields(self) if f.name != "tags"}
        return replace(self, **scaled, tags=self.tags | {SHARE_TAG: f"{share:.3f}"})

    def metrics(self) -> dict[str, float]:
        return {
            "energy_kwh": self.energy_kwh,
            "emissions_kg_co2eq": self.emissions_kg_co2eq,
            "energy_cpu_kwh": self.cpu_kwh,
            "energy_ram_kwh": self.ram_kwh,
            "energy_gpu_kwh": self.gpu_kwh,
            "power_cpu_w": self.cpu_power_w,
            "power_ram_w": self.ram_power_w,
            "power_gpu_w": self.gpu_power_w,
        }


def _unmeasured(reason: str) -> EnergyReading:
    return EnergyReading(tags={"ecogen.energy.status": f"unmeasured: {reason}"[:500]})


class EnergyMeter:
    """One CodeCarbon ``OfflineEmissionsTracker`` around one stage: ``start()``, then ``stop()``."""

    def __init__(
        self, energy: EnergyParams, output_dir: Path, project_name: str, measure_power_secs: float = 2.0
    ) -> None:
        self.energy = energy
        self.output_dir = output_dir
        self.project_name = project_name
        self.measure_power_secs = measure_power_secs
        self._tracker: Any = None
        self._error: str | None = None
        self._token: int | None = None

    def start(self) -> None:
        try:
            # The tracker silently records nothing when its output_dir is missing.
            self.output_dir.mkdir(parents=True, exist_ok=True)
            # CodeCarbon applies log_level only after its first INFO/WARNING lines; apply it first.
            logging.getLogger("codecarbon").setLevel(logging.ERROR)
            self._tracker = OfflineEmissionsTracker(
                country_iso_code=self.energy.country_iso_code,
                project_name=self.project_name,
                output_dir=str(self.output_dir),
                measure_power_secs=self.measure_power_secs,
                log_level="error",
                # True is CodeCarbon 3's default, stated because False takes a machine-wide lock
                # file and a second concurrent stage would then measure nothing.
                allow_multiple_runs=True,
            )
            self._tracker.start()
            self._token = _SHARING.start()
        except Exception as exc:  # a broken meter must not fail the stage
            log.warning("CodeCarbon did not start for %s: %s", self.project_name, exc)
            self._error = f"start failed: {type(exc).__name__}: {exc}"
            self._tracker = None

    def stop(self) -> EnergyReading:
        if self._tracker is None:
            return _unmeasured(self._error or "tracker not started")
        tracker, self._tracker = self._tracker, None
        share = _SHARING.stop(self._token) if self._token is not None else 1.0
        self._token = None
        try:
            with _CSV_LOCK:
                tracker.stop()
        except Exception as exc:
            log.warning("CodeCarbon did not stop cleanly for %s: %s", self.project_name, exc)
            return _unmeasured(f"stop failed: {type(exc).__name__}: {exc}")
        data = getattr(tracker, "final_emissions_data", None)
        if data is None:
            return _unmeasured("codecarbon returned no emissions data")
        conf = getattr(tracker, "_conf", {})  # hardware descriptions live only here
        return EnergyReading(
            energy_kwh=_num(data.energy_consumed),
            emissions_kg_co2eq=_num(data.emissions),
            cpu_kwh=_num(data.cpu_energy),
            ram_kwh=_num(data.ram_energy),
            gpu_kwh=_num(data.gpu_energy),
            cpu_power_w=_num(data.cpu_power),
            ram_power_w=_num(data.ram_power),
            gpu_power_w=_num(data.gpu_power),
            tags={
                "ecogen.energy.status": "measured",
                "ecogen.energy.tracker": f"codecarbon {data.codecarbon_version} offline",
                "ecogen.energy.tracking_mode": str(data.tracking_mode),
                "ecogen.energy.hardware": "; ".join(map(str, conf.get("hardware", []))) or "unknown",
                "ecogen.energy.cpu_model": str(data.cpu_model),
                "ecogen.energy.gpu_model": str(data.gpu_model or "none"),
                "ecogen.energy.country_iso_code": str(data.country_iso_code),
            },
        ).shared(share)


def _num(value: object) -> float:
    """CodeCarbon fields may be None (e.g. no GPU); metrics must be finite floats."""
    try:
        out = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 0.0
    return out if out == out and abs(out) != float("inf") else 0.0
