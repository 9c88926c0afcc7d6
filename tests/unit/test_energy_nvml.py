"""The NVML meter against FakePynvml (widthwise.bench.fake_nvml), injected where `pynvml` is imported, and
the fake itself: a stepped counter, power that follows this process's CPU time, WIDTHWISE_FAKE_CUDA."""

from __future__ import annotations

import sys
import time

import pytest

from widthwise.bench import energy
from widthwise.bench.energy import (
    NoMeter,
    NvmlMeter,
    Reading,
    calibrate_idle,
    idle_power,
    open_meter,
    power_flag,
)
from widthwise.bench.fake_nvml import FakePynvml
from widthwise.device import FAKE_ENV
from widthwise.errors import WidthwiseError


@pytest.fixture
def fake(monkeypatch):
    def install(**kw):
        f = FakePynvml(**kw)
        monkeypatch.setitem(sys.modules, "pynvml", f)
        return f

    return install


def test_counter_millijoules_become_joules(fake):
    f = fake(idle_w=250.0, update_s=0.01)
    m = NvmlMeter(0)
    assert m.unavailable is None and m.method == "nvml-energy-counter"
    m.start()
    time.sleep(0.2)
    r = m.stop()
    assert r.method == "nvml-energy-counter"
    # 250 W for ~0.2 s is ~50 J (read as mJ it would be ~50,000), give or take one counter step each side
    # and what little CPU this test's own reads use.
    assert abs(r.joules - 250.0 * r.seconds) <= 2 * 250.0 * 0.01 + 0.1 * f.busy_w * r.seconds
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
    fake(idle_w=80.0, busy_w=0.0, counter=False)  # a steady 80 W: what is tested is the integration
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


def test_idle_calibration_and_flags(fake):
    f = fake(idle_w=60.0, update_s=0.01)
    m = open_meter("nvml", device="cuda")
    idle = calibrate_idle(m, 0.2)
    assert idle.watts == pytest.approx(60.0, rel=0.1)
    f.idle_w = 300.0
    m.start()
    time.sleep(0.2)
    busy = m.stop()
    assert power_flag(busy, idle.watts, m.power_limit_w()) is None  # plausible: no flag
    below = power_flag(Reading(joules=1.0, seconds=1.0, method="x"), idle.watts, 700.0)
    assert below is not None and "below idle" in below
    assert "above the power limit" in power_flag(Reading(joules=900.0, seconds=1.0, method="x"), 60.0, 700.0)
    assert "is not > 0" in power_flag(Reading(joules=0.0, seconds=1.0, method="x"), 60.0, 700.0)
    # The tolerance: 5% under idle is still idle (a counter step, a sampled reading), 6% is not.
    assert power_flag(Reading(joules=57.0, seconds=1.0, method="x"), 60.0, 700.0) is None
    assert power_flag(Reading(joules=56.0, seconds=1.0, method="x"), 60.0, 700.0) is not None


def test_a_meter_that_does_not_count_fails_idle_calibration(fake):
    f = fake()
    f.nvmlDeviceGetTotalEnergyConsumption = lambda handle: 5_000
    with pytest.raises(energy.EnergySanityError, match="not counting"):
        calibrate_idle(NvmlMeter(0), 0.01)


def test_idle_before_and_after_mean_and_drift():
    before, after = Reading(600.0, 10.0, "x"), Reading(640.0, 10.0, "x")
    idle = idle_power(before, after)
    assert idle["watts"] == 62.0 and idle["drift_w"] == 4.0 and idle["drift_flag"] is None  # 6.5%: within
    hot = idle_power(before, Reading(700.0, 10.0, "x"))
    assert hot["watts"] == 65.0 and hot["drift_w"] == 10.0
    assert "+10.0 W" in hot["drift_flag"] and "more than 10%" in hot["drift_flag"]
    assert hot["before"]["watts"] == 60.0 and hot["after"]["watts"] == 70.0


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


# ---- the fake itself ------------------------------------------------------------------------------------
def spin(seconds: float) -> None:
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        sum(range(1000))


class Clock:
    """Host and process clocks that move only when told, for the fake's time module."""

    def __init__(self) -> None:
        self.t, self.cpu = 100.0, 5.0

    def perf_counter(self) -> float:
        return self.t

    def process_time(self) -> float:
        return self.cpu


def test_fake_counter_advances_in_steps_of_its_update_period(monkeypatch):
    from widthwise.bench import fake_nvml

    clock = Clock()
    monkeypatch.setattr(fake_nvml, "time", clock)
    f = FakePynvml(idle_w=100.0, busy_w=200.0, update_s=0.1)
    h = f.nvmlDeviceGetHandleByIndex(0)
    e0 = f.nvmlDeviceGetTotalEnergyConsumption(h)
    assert e0 == 7_000_000  # wherever the driver left it, not zero
    clock.t += 0.09
    assert f.nvmlDeviceGetTotalEnergyConsumption(h) == e0  # no update yet: the counter holds
    clock.t += 0.02
    assert f.nvmlDeviceGetTotalEnergyConsumption(h) == e0 + 10_000  # one update: 100 W x 0.1 s, in mJ
    clock.t += 0.25
    clock.cpu += 0.125  # half a core busy since the last reading: 100 + 0.5 x 200 = 200 W
    assert f.nvmlDeviceGetTotalEnergyConsumption(h) == e0 + 10_000 + 2 * 20_000  # two whole updates
    clock.t += 0.2
    clock.cpu += 1.0  # more than one core (several threads): capped at one busy core, 300 W
    assert f.nvmlDeviceGetTotalEnergyConsumption(h) == e0 + 50_000 + 2 * 30_000
    assert f.nvmlDeviceGetPowerUsage(h) == 300_000  # its own reading: the share since the fake began


def test_fake_power_follows_this_process_cpu_time(fake):
    fake(idle_w=60.0, busy_w=240.0, update_s=0.01)
    m = NvmlMeter(0)
    m.start()
    time.sleep(0.3)
    idle = m.stop()
    m.start()
    spin(0.3)
    busy = m.stop()
    assert idle.watts == pytest.approx(60.0, rel=0.1)
    # A spinning core reads well above idle (it shares two cores with others, hence the wide margin).
    assert busy.watts > 60.0 + 0.25 * 240.0
    assert busy.watts <= 60.0 + 240.0 + 1.0  # never more than one busy core
    assert m.facts()["fake"].startswith("FakePynvml")


def test_fake_cuda_environment_gives_the_fake_and_says_so(monkeypatch):
    monkeypatch.delenv(FAKE_ENV, raising=False)
    monkeypatch.setitem(sys.modules, "pynvml", None)  # no bindings here: import fails as without them
    assert "NVML bindings not installed" in NvmlMeter(0).unavailable
    monkeypatch.setenv(FAKE_ENV, "1")
    monkeypatch.setenv("WIDTHWISE_FAKE_NVML_UPDATE_S", "0.05")
    nvml = energy.import_pynvml()
    assert isinstance(nvml, FakePynvml) and nvml.update_s == 0.05
    m = open_meter("auto", device="cuda")
    assert isinstance(m, NvmlMeter) and m.unavailable is None
    assert m.facts()["fake"] == FakePynvml.FAKE and m.facts()["method"] == "nvml-energy-counter"
