"""The NVML meter against FakePynvml, a stand-in for the `pynvml` module injected where it is imported."""

from __future__ import annotations

import sys
import time

import pytest

from widthwise.bench.energy import (
    EnergySanityError,
    NoMeter,
    NvmlMeter,
    Reading,
    calibrate_idle,
    check_power,
    open_meter,
)
from widthwise.errors import WidthwiseError


class FakePynvml:
    """A fake `pynvml`: a GPU drawing `watts`, whose energy counter (mJ) integrates that over the host clock.

    Only the calls the meter and device facts make; errors mirror pynvml's class hierarchy."""

    NVML_CLOCK_SM = 1
    NVML_CLOCK_MEM = 2
    NVML_TEMPERATURE_GPU = 0

    class NVMLError(Exception):
        pass

    class NVMLError_NotSupported(NVMLError):  # noqa: N801 (pynvml's spelling)
        pass

    class NVMLError_LibraryNotFound(NVMLError):  # noqa: N801
        pass

    def __init__(self, watts: float = 120.0, counter: bool = True, library: bool = True, procs=()) -> None:
        self.watts = watts
        self.counter = counter
        self.library = library
        self.procs = list(procs)
        self.t0 = time.perf_counter()
        self.base_mj = 7_000_000  # counters start wherever the driver left them
        self.shutdown = False

    def nvmlInit(self):  # noqa: N802
        if not self.library:
            raise self.NVMLError_LibraryNotFound("NVML Shared Library Not Found")

    def nvmlShutdown(self):  # noqa: N802
        self.shutdown = True

    def nvmlDeviceGetHandleByIndex(self, i):  # noqa: N802
        return ("gpu", i)

    def nvmlDeviceGetHandleByUUID(self, uuid):  # noqa: N802
        return ("gpu", uuid)

    def nvmlDeviceGetTotalEnergyConsumption(self, handle):  # noqa: N802
        if not self.counter:
            raise self.NVMLError_NotSupported("Not Supported")
        return int(self.base_mj + (time.perf_counter() - self.t0) * self.watts * 1000)

    def nvmlDeviceGetPowerUsage(self, handle):  # noqa: N802
        return int(self.watts * 1000)

    def nvmlDeviceGetEnforcedPowerLimit(self, handle):  # noqa: N802
        return 700_000

    def nvmlDeviceGetName(self, handle):  # noqa: N802
        return "Fake H200"

    def nvmlSystemGetDriverVersion(self):  # noqa: N802
        return "999.1"

    def nvmlDeviceGetClockInfo(self, handle, kind):  # noqa: N802
        return 1980 if kind == self.NVML_CLOCK_SM else 3201

    def nvmlDeviceGetMaxClockInfo(self, handle, kind):  # noqa: N802
        return 1980

    def nvmlDeviceGetTemperature(self, handle, kind):  # noqa: N802
        return 41

    def nvmlDeviceGetComputeRunningProcesses(self, handle):  # noqa: N802
        return self.procs


@pytest.fixture
def fake(monkeypatch):
    def install(**kw):
        f = FakePynvml(**kw)
        monkeypatch.setitem(sys.modules, "pynvml", f)
        return f

    return install


def test_counter_millijoules_become_joules(fake):
    f = fake(watts=250.0)
    m = NvmlMeter(0)
    assert m.unavailable is None and m.method == "nvml-energy-counter"
    m.start()
    time.sleep(0.2)
    r = m.stop()
    assert r.method == "nvml-energy-counter"
    # 250 W for ~0.2 s is ~50 J; read as mJ it would be ~50,000.
    assert r.joules == pytest.approx(250.0 * r.seconds, rel=0.05)
    assert 20 < r.joules < 150
    assert m.power_limit_w() == 700.0
    m.close()
    assert f.shutdown


def test_exact_conversion_of_one_counter_step(fake):
    f = fake()
    m = NvmlMeter(0)
    readings = iter([1_000_000, 1_250_500])
    f.nvmlDeviceGetTotalEnergyConsumption = lambda handle: next(readings)
    m.start()
    assert m.stop().joules == pytest.approx(250.5)


def test_power_sampling_only_without_the_counter(fake):
    fake(watts=80.0, counter=False)
    m = NvmlMeter(0)
    assert m.unavailable is None and m.method == "nvml-power-sampling"
    m.start()
    time.sleep(0.2)
    r = m.stop()
    assert r.method == "nvml-power-sampling"
    assert r.watts == pytest.approx(80.0, rel=0.1)


def test_no_driver_means_not_measurable_with_the_reason(fake):
    fake(library=False)
    m = open_meter("auto", device="cuda")
    assert isinstance(m, NoMeter)
    assert "NVML could not start" in m.unavailable
    with pytest.raises(WidthwiseError, match="--meter nvml"):
        open_meter("nvml", device="cuda")


def test_idle_calibration_and_sanity(fake):
    f = fake(watts=60.0)
    m = open_meter("nvml", device="cuda")
    idle = calibrate_idle(m, 0.1)
    assert idle.watts == pytest.approx(60.0, rel=0.1)
    f.watts = 300.0
    m.start()
    time.sleep(0.1)
    busy = m.stop()
    check_power(busy, idle.watts, m.power_limit_w(), "busy")  # plausible: passes
    with pytest.raises(EnergySanityError, match="below the calibrated idle"):
        check_power(Reading(joules=1.0, seconds=1.0, method="x"), idle.watts, 700.0, "w")
    with pytest.raises(EnergySanityError, match="exceeds the power limit"):
        check_power(Reading(joules=900.0, seconds=1.0, method="x"), idle.watts, 700.0, "w")
    with pytest.raises(EnergySanityError, match="must be > 0"):
        check_power(Reading(joules=0.0, seconds=1.0, method="x"), idle.watts, 700.0, "w")


def test_gpu_facts_warn_about_other_processes(fake):
    from types import SimpleNamespace

    from widthwise.device import gpu_facts

    f = fake(procs=[SimpleNamespace(pid=4242, usedGpuMemory=1 << 30)])
    m = NvmlMeter(0)
    with pytest.warns(UserWarning, match="other process"):
        facts = gpu_facts(f, m.handle)
    assert facts["gpu_name"] == "Fake H200" and facts["power_limit_w"] == 700.0
    assert facts["other_processes"] == [{"pid": 4242, "used_memory_bytes": 1 << 30}]


def test_none_meter_and_unknown_meter():
    m = open_meter("none")
    assert isinstance(m, NoMeter) and m.unavailable
    with pytest.raises(WidthwiseError, match="not measurable"):
        m.stop()
    with pytest.raises(WidthwiseError, match="unknown meter"):
        open_meter("codecarbon")


def test_board_found_by_uuid_or_the_only_board(fake):
    f = fake()
    assert NvmlMeter(uuid="GPU-1234").handle == ("gpu", "GPU-1234")

    def unknown(uuid):
        raise f.NVMLError("Not Found")

    f.nvmlDeviceGetHandleByUUID = unknown
    f.nvmlDeviceGetCount = lambda: 1
    assert NvmlMeter(uuid="GPU-1234").handle == ("gpu", 0)
    f.nvmlDeviceGetCount = lambda: 2  # which of two? refuse rather than read the wrong board
    assert "no GPU GPU-1234" in NvmlMeter(uuid="GPU-1234").unavailable
