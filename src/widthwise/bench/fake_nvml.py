"""FakePynvml: a stand-in for the `pynvml` module, for rehearsing the GPU job on a machine without one.

It is a fake at a hardware boundary (NVML), and it says so: `FAKE` names it, NvmlMeter.facts() records
that name, and so every Result measured with it. `widthwise.bench.energy.import_pynvml()` returns one
when WIDTHWISE_FAKE_CUDA=1; tests also build it directly with the parameters below.

It behaves like the board in the ways a measurement can get wrong:

* The total-energy counter (mJ, `nvmlDeviceGetTotalEnergyConsumption`) advances in steps: it holds its
  value between updates, every `update_s` (NVML's counter updates on the order of 100 ms), so a short
  window is quantised by up to one step, exactly the error that long windows are there to bound.
* Power is `idle_w` plus `busy_w` times the share of one core this process used since the last update
  (time.process_time), capped at one core: a window that generates reads above idle, a sleep reads idle.
  A negative `busy_w` makes a meter that reads below idle while working, to exercise the flags.
* It starts wherever a driver would have left it (not at 0) and never runs backwards.

Only the calls the meter and the device facts make; errors mirror pynvml's class hierarchy.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Sequence
from typing import Any

UPDATE_ENV = "WIDTHWISE_FAKE_NVML_UPDATE_S"  # the counter's update period, for rehearsals (default 0.1)
DEFAULT_UPDATE_S = 0.1


class _Clock:
    """The share of one core this process used between two readings of the host clock."""

    def __init__(self) -> None:
        self.t = time.perf_counter()
        self.cpu = time.process_time()

    def busy_share(self) -> float:
        t, cpu = time.perf_counter(), time.process_time()
        share = (cpu - self.cpu) / (t - self.t) if t > self.t else 0.0
        self.t, self.cpu = t, cpu
        return min(max(share, 0.0), 1.0)


class FakePynvml:
    """A fake `pynvml`: one board drawing idle_w + busy_w x (this process's share of a core)."""

    FAKE = "FakePynvml (widthwise.bench.fake_nvml): simulated NVML, energy follows this process's CPU time"

    NVML_CLOCK_SM = 1
    NVML_CLOCK_MEM = 2
    NVML_TEMPERATURE_GPU = 0

    class NVMLError(Exception):
        pass

    class NVMLError_NotSupported(NVMLError):  # noqa: N801 (pynvml's spelling)
        pass

    class NVMLError_LibraryNotFound(NVMLError):  # noqa: N801
        pass

    def __init__(
        self,
        idle_w: float = 60.0,
        busy_w: float = 240.0,
        update_s: float | None = None,
        *,
        counter: bool = True,
        library: bool = True,
        procs: Sequence[Any] = (),
        power_limit_w: float = 700.0,
    ) -> None:
        if update_s is None:
            update_s = float(os.environ.get(UPDATE_ENV) or DEFAULT_UPDATE_S)
        if update_s <= 0:
            raise ValueError(f"update_s must be positive, got {update_s}")
        self.idle_w = idle_w
        self.busy_w = busy_w
        self.update_s = update_s
        self.counter = counter
        self.library = library
        self.procs = list(procs)
        self.power_limit_w = power_limit_w
        self.shutdown = False
        self._lock = threading.Lock()
        self._mj = 7_000_000.0  # counters start wherever the driver left them
        self._tick = time.perf_counter()  # when the counter last updated
        self._counter_clock = _Clock()
        self._power_clock = _Clock()

    def watts(self, busy_share: float) -> float:
        return self.idle_w + self.busy_w * busy_share

    # ---- the calls NvmlMeter and device facts make ---------------------------------------------------
    def nvmlInit(self) -> None:  # noqa: N802
        if not self.library:
            raise self.NVMLError_LibraryNotFound("NVML Shared Library Not Found")

    def nvmlShutdown(self) -> None:  # noqa: N802
        self.shutdown = True

    def nvmlDeviceGetCount(self) -> int:  # noqa: N802
        return 1

    def nvmlDeviceGetHandleByIndex(self, i: int) -> tuple[str, int]:  # noqa: N802
        return ("gpu", i)

    def nvmlDeviceGetHandleByUUID(self, uuid: str) -> tuple[str, str]:  # noqa: N802
        return ("gpu", uuid)

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: Any) -> int:  # noqa: N802
        if not self.counter:
            raise self.NVMLError_NotSupported("Not Supported")
        with self._lock:
            now = time.perf_counter()
            steps = math.floor((now - self._tick) / self.update_s)
            if steps > 0:
                # Every update since the last reading saw the same average load: all we know of it.
                w = self.watts(self._counter_clock.busy_share())
                self._mj += steps * self.update_s * w * 1000.0
                self._tick += steps * self.update_s
            return round(self._mj)

    def nvmlDeviceGetPowerUsage(self, handle: Any) -> int:  # noqa: N802
        with self._lock:
            return int(self.watts(self._power_clock.busy_share()) * 1000)

    def nvmlDeviceGetEnforcedPowerLimit(self, handle: Any) -> int:  # noqa: N802
        return int(self.power_limit_w * 1000)

    def nvmlDeviceGetName(self, handle: Any) -> str:  # noqa: N802
        return "Fake H200"

    def nvmlSystemGetDriverVersion(self) -> str:  # noqa: N802
        return "999.1"

    def nvmlDeviceGetClockInfo(self, handle: Any, kind: int) -> int:  # noqa: N802
        return 1980 if kind == self.NVML_CLOCK_SM else 3201

    def nvmlDeviceGetMaxClockInfo(self, handle: Any, kind: int) -> int:  # noqa: N802
        return 1980

    def nvmlDeviceGetTemperature(self, handle: Any, kind: int) -> int:  # noqa: N802
        return 41

    def nvmlDeviceGetComputeRunningProcesses(self, handle: Any) -> list[Any]:  # noqa: N802
        return self.procs
