"""Energy meters behind one interface: `nvml` (GPU), `rapl` (CPU packages), `none`.

A meter measures one window: `start()` then `stop()` returns the joules and seconds between them. The
bench opens a window around exactly the generations whose tokens it counts, so energy and tokens come from
the same interval (the paper's CodeCarbon window also held dataset loading and warm-up).

* nvml: the GPU's total-energy counter (`nvmlDeviceGetTotalEnergyConsumption`, millijoules since the
  driver loaded, Volta and newer). Only GPUs without that counter fall back to sampling
  `nvmlDeviceGetPowerUsage` (milliwatts) on a thread and integrating; the Reading says which was used.
* rapl: Linux powercap sysfs, `energy_uj` of every top-level `intel-rapl:N` zone (one per package; AMD
  exposes the same tree), summed. The counter wraps at `max_energy_range_uj`; one wrap per window is
  corrected, which holds for windows shorter than range / power (minutes at hundreds of watts).
* none: measures nothing and says why; the bench then reports energy as not measurable, never an estimate.

Idle power is calibrated as its own window before the cells and again after them, and reported apart;
net energy takes off the mean of the two (`idle_power`), and a drift between them larger than
IDLE_DRIFT_TOLERANCE is flagged. `power_flag` says why a window is implausible (average power below idle or
above the board's power limit, or energy not positive); the bench keeps such a window with its flag and
leaves it out of every energy figure, rather than stopping.

WIDTHWISE_FAKE_CUDA=1 makes `import_pynvml` return FakePynvml (widthwise.bench.fake_nvml), so the GPU job
can be rehearsed on a CPU; the meter's facts then name the fake, and so does every Result measured with it.
"""

from __future__ import annotations

import contextlib
import importlib
import statistics
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from widthwise.errors import WidthwiseError

POWERCAP = Path("/sys/class/powercap")
# Counters and power readings are quantised and sampled (NVML's power reading is itself a ~1 s average),
# so a window can read a little under idle or over the limit without anything being wrong.
POWER_TOLERANCE = 0.05
# Idle after the cells may differ from idle before them (a board still warm, clocks not yet down, another
# load started or stopped); beyond this share of their mean the idle subtracted is uncertain, and flagged.
IDLE_DRIFT_TOLERANCE = 0.10
SAMPLE_INTERVAL_S = 0.02


class EnergySanityError(WidthwiseError):
    """The meter is not counting (an idle window of no energy): nothing it reads can be reported."""


@dataclass(frozen=True)
class Reading:
    joules: float
    seconds: float
    method: str  # "nvml-energy-counter", "nvml-power-sampling", "rapl"

    @property
    def watts(self) -> float:
        return self.joules / self.seconds if self.seconds > 0 else float("nan")

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "watts": self.watts}


class Meter:
    """Base: a meter that can measure when `unavailable` is None."""

    name = "none"
    unavailable: str | None = None

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> Reading:
        raise NotImplementedError

    def power_limit_w(self) -> float | None:
        return None

    def facts(self) -> dict[str, Any]:
        return {"meter": self.name, "unavailable": self.unavailable}

    def close(self) -> None:
        pass


class NoMeter(Meter):
    name = "none"

    def __init__(self, reason: str) -> None:
        self.unavailable = reason

    def start(self) -> None:
        pass

    def stop(self) -> Reading:
        raise WidthwiseError(f"energy: not measurable here ({self.unavailable})")


# ---------------------------------------------------------------------------------------------------
# RAPL
# ---------------------------------------------------------------------------------------------------
def rapl_delta_uj(start: int, end: int, max_range: int) -> int:
    """Energy between two readings of a counter that wraps to zero after max_range."""
    return end - start if end >= start else end + (max_range - start)


class RaplMeter(Meter):
    name = "rapl"

    def __init__(self, root: Path = POWERCAP) -> None:
        self.root = Path(root)
        self.zones: list[Path] = []
        self.max_range: list[int] = []
        self._start: list[int] | None = None
        self._t0 = 0.0
        self.unavailable = self._discover()

    def _discover(self) -> str | None:
        if not self.root.is_dir():
            return (
                f"no RAPL: {self.root} does not exist (not Linux, or no powercap driver, or a VM without it)"
            )
        # Top-level zones are the packages; subzones (intel-rapl:0:0 = core, dram, ...) are inside them.
        zones = sorted(p for p in self.root.glob("intel-rapl:*") if p.name.count(":") == 1)
        if not zones:
            return f"no RAPL package zones (intel-rapl:N) under {self.root}"
        try:
            for z in zones:
                (z / "energy_uj").read_text()
                self.max_range.append(int((z / "max_energy_range_uj").read_text()))
        except PermissionError as e:
            return (
                f"RAPL counters are not readable ({e.filename}: permission denied; root-only since the "
                "PLATYPUS fix, CVE-2020-8694)"
            )
        except (OSError, ValueError) as e:
            return f"RAPL counters are not readable ({e})"
        self.zones = zones
        return None

    def _read(self) -> list[int]:
        return [int((z / "energy_uj").read_text()) for z in self.zones]

    def start(self) -> None:
        self._t0 = time.perf_counter()
        self._start = self._read()

    def stop(self) -> Reading:
        end = self._read()
        seconds = time.perf_counter() - self._t0
        if self._start is None:
            raise RuntimeError("RaplMeter.stop() without start()")
        uj = sum(rapl_delta_uj(s, e, m) for s, e, m in zip(self._start, end, self.max_range, strict=True))
        self._start = None
        return Reading(joules=uj / 1e6, seconds=seconds, method="rapl")

    def power_limit_w(self) -> float | None:
        # The highest constraint (the short-term PL2) per package: the package may run above PL1 briefly.
        total = 0.0
        for z in self.zones:
            limits = []
            for f in z.glob("constraint_*_power_limit_uw"):
                try:
                    limits.append(int(f.read_text()))
                except (OSError, ValueError):
                    continue
            if not limits:
                return None
            total += max(limits) / 1e6
        return total or None

    def facts(self) -> dict[str, Any]:
        names = []
        for z in self.zones:
            try:
                names.append((z / "name").read_text().strip())
            except OSError:
                names.append(z.name)
        return {
            **super().facts(),
            "zones": names,
            "power_limit_w": self.power_limit_w() if self.zones else None,
            "note": "RAPL counts the whole package, including other processes on the machine",
        }


# ---------------------------------------------------------------------------------------------------
# NVML
# ---------------------------------------------------------------------------------------------------
def import_pynvml() -> Any:
    """The NVML bindings (nvidia-ml-py), imported here only; FakePynvml under WIDTHWISE_FAKE_CUDA=1."""
    from widthwise.device import fake_requested  # here, not at the top: the parsers import this module

    if fake_requested():
        from widthwise.bench.fake_nvml import FakePynvml

        return FakePynvml()
    return importlib.import_module("pynvml")


class NvmlMeter(Meter):
    name = "nvml"

    def __init__(self, index: int = 0, uuid: str | None = None) -> None:
        self.index = index
        self.nvml: Any = None
        self.handle: Any = None
        self.counter = False
        self._e0 = 0
        self._t0 = 0.0
        self._sampler: _PowerSampler | None = None
        self.unavailable = self._init(index, uuid)

    def _init(self, index: int, uuid: str | None) -> str | None:
        try:
            nvml = import_pynvml()
        except ImportError as e:
            return f"NVML bindings not installed ({e}); pip install nvidia-ml-py"
        try:
            nvml.nvmlInit()
        except Exception as e:  # NVMLError_LibraryNotFound, DriverNotLoaded, ...
            return f"NVML could not start ({type(e).__name__}: {e}); no NVIDIA driver here"
        self.nvml = nvml
        try:
            # CUDA_VISIBLE_DEVICES renumbers devices, NVML does not: the UUID names the same board in both.
            self.handle = (
                nvml.nvmlDeviceGetHandleByUUID(uuid) if uuid else nvml.nvmlDeviceGetHandleByIndex(index)
            )
        except Exception as e:
            try:  # with a single board there is no ambiguity to resolve
                if not uuid or nvml.nvmlDeviceGetCount() != 1:
                    raise e
                self.handle = nvml.nvmlDeviceGetHandleByIndex(0)
            except Exception:
                return f"NVML has no GPU {uuid or index} ({type(e).__name__}: {e})"
        try:
            nvml.nvmlDeviceGetTotalEnergyConsumption(self.handle)
            self.counter = True
        except nvml.NVMLError as e:
            if not isinstance(e, nvml.NVMLError_NotSupported):
                return f"NVML energy counter failed ({type(e).__name__}: {e})"
            try:
                nvml.nvmlDeviceGetPowerUsage(self.handle)
            except nvml.NVMLError as e2:
                return f"this GPU reports neither total energy nor power ({type(e2).__name__}: {e2})"
        return None

    @property
    def method(self) -> str:
        return "nvml-energy-counter" if self.counter else "nvml-power-sampling"

    def start(self) -> None:
        if self.counter:
            self._t0 = time.perf_counter()
            self._e0 = self.nvml.nvmlDeviceGetTotalEnergyConsumption(self.handle)
        else:
            self._sampler = _PowerSampler(lambda: self.nvml.nvmlDeviceGetPowerUsage(self.handle) / 1000.0)
            self._t0 = time.perf_counter()
            self._sampler.start()

    def stop(self) -> Reading:
        if self.counter:
            e1 = self.nvml.nvmlDeviceGetTotalEnergyConsumption(self.handle)
            seconds = time.perf_counter() - self._t0
            return Reading(joules=(e1 - self._e0) / 1000.0, seconds=seconds, method=self.method)
        if self._sampler is None:
            raise RuntimeError("NvmlMeter.stop() without start()")
        joules = self._sampler.stop()
        seconds = time.perf_counter() - self._t0
        self._sampler = None
        return Reading(joules=joules, seconds=seconds, method=self.method)

    def power_limit_w(self) -> float | None:
        try:
            return self.nvml.nvmlDeviceGetEnforcedPowerLimit(self.handle) / 1000.0
        except self.nvml.NVMLError:
            return None

    def facts(self) -> dict[str, Any]:
        return {
            **super().facts(),
            "method": self.method if self.handle is not None else None,
            # A fake says what it is, so a figure it made is never mistaken for a measurement.
            "fake": getattr(self.nvml, "FAKE", None),
        }

    def close(self) -> None:
        if self.nvml is not None:
            # Shutting down a library that failed half way is best effort.
            with contextlib.suppress(Exception):
                self.nvml.nvmlShutdown()
            self.nvml = None


class _PowerSampler:
    """Integrates a power reading (W) over time on a background thread, trapezoid rule."""

    def __init__(self, read_w: Any, interval_s: float = SAMPLE_INTERVAL_S) -> None:
        self.read_w = read_w
        self.interval_s = interval_s
        self.joules = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._last: tuple[float, float] | None = None

    def _sample(self) -> None:
        t, w = time.perf_counter(), self.read_w()
        if self._last is not None:
            t0, w0 = self._last
            self.joules += (t - t0) * (w + w0) / 2
        self._last = (t, w)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._sample()

    def start(self) -> None:
        self._sample()
        self._thread.start()

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        self._sample()
        return self.joules


# ---------------------------------------------------------------------------------------------------
# Choosing a meter, idle calibration, sanity checks
# ---------------------------------------------------------------------------------------------------
METERS = ("auto", "nvml", "rapl", "none")


def open_meter(name: str, *, device: str = "cpu", gpu_uuid: str | None = None, gpu_index: int = 0) -> Meter:
    """The meter for `name`; "auto" picks nvml on a GPU and rapl on a CPU. An unusable meter becomes a
    NoMeter carrying the reason, except when the user asked for that meter by name (then it is an error)."""
    if name not in METERS:
        raise WidthwiseError(f"unknown meter {name!r}; choose one of {', '.join(METERS)}")
    if name == "none":
        return NoMeter("no meter requested (--meter none)")
    choice = name if name != "auto" else ("nvml" if device.startswith("cuda") else "rapl")
    meter: Meter = NvmlMeter(gpu_index, gpu_uuid) if choice == "nvml" else RaplMeter()
    if meter.unavailable is None:
        return meter
    if name != "auto":
        raise WidthwiseError(f"--meter {name}: {meter.unavailable}")
    return NoMeter(meter.unavailable)


def calibrate_idle(meter: Meter, seconds: float) -> Reading:
    """Average power while nothing of ours runs: a window of `seconds` spent sleeping."""
    if seconds <= 0:
        raise WidthwiseError("idle calibration needs a positive --idle-s")
    meter.start()
    time.sleep(seconds)
    reading = meter.stop()
    if reading.joules <= 0:
        raise EnergySanityError(
            f"idle calibration measured {reading.joules:.3f} J over {reading.seconds:.1f}s; "
            "the meter is not counting"
        )
    return reading


def idle_power(before: Reading, after: Reading) -> dict[str, Any]:
    """The idle power that net energy takes off: the mean of the idle before and after the cells, with the
    drift between them (after - before) and whether it exceeds IDLE_DRIFT_TOLERANCE of that mean."""
    watts = statistics.fmean([before.watts, after.watts])
    drift = after.watts - before.watts
    rel = abs(drift) / watts
    return {
        "watts": watts,
        "rule": "mean of the idle before and after the cells",
        "before": before.as_dict(),
        "after": after.as_dict(),
        "drift_w": drift,
        "drift_tolerance": IDLE_DRIFT_TOLERANCE,
        "drift_flag": (
            f"idle drifted {drift:+.1f} W ({100 * rel:.0f}% of {watts:.1f} W) between before and after the "
            f"cells, more than {100 * IDLE_DRIFT_TOLERANCE:.0f}%: net J/token is uncertain by that much"
            if rel > IDLE_DRIFT_TOLERANCE
            else None
        ),
    }


def power_flag(reading: Reading, idle_w: float, limit_w: float | None) -> str | None:
    """Why a window is physically implausible, or None: its energy must be > 0 and its average power
    between idle and the power limit (each within POWER_TOLERANCE). Below idle means the idle windows or
    this one are wrong: another load during calibration, or a window too short for the counter."""
    if reading.joules <= 0:
        return f"energy {reading.joules:.4f} J over {reading.seconds:.3f}s is not > 0"
    w = reading.watts
    if w < idle_w * (1 - POWER_TOLERANCE):
        return f"average power {w:.1f} W below idle {idle_w:.1f} W"
    if limit_w is not None and w > limit_w * (1 + POWER_TOLERANCE):
        return f"average power {w:.1f} W above the power limit {limit_w:.1f} W"
    return None
