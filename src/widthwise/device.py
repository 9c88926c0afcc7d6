"""Facts about the machine a bench ran on, recorded in the Result so figures can be traced and compared.

On a GPU: name, driver, clocks, temperature, power limit and other processes on the board (a warning: they
share its time and its energy counter). On a CPU: model, logical cores, the cores this process may use,
torch's thread counts and the load average (other work on the machine skews timings and RAPL energy).
"""

from __future__ import annotations

import os
import platform
import warnings
from typing import Any

import torch


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def cpu_facts() -> dict[str, Any]:
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    return {
        "cpu_model": cpu_model(),
        "logical_cores": os.cpu_count(),
        "usable_cores": usable,
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "load_average_1_5_15": load_average(),
        "platform": platform.platform(),
    }


def cuda_uuid(device: str) -> str | None:
    """The board's UUID in NVML's spelling ("GPU-..."), so the meter reads the GPU torch is using."""
    if not device.startswith("cuda") or not torch.cuda.is_available():
        return None
    props = torch.cuda.get_device_properties(torch.device(device))
    uuid = getattr(props, "uuid", None)
    if uuid is None:
        return None
    text = str(uuid)
    return text if text.startswith(("GPU-", "MIG-")) else f"GPU-{text}"


def gpu_facts(nvml: Any, handle: Any) -> dict[str, Any]:
    """What NVML says about one board; each fact is best effort (not every GPU reports every field)."""

    def get(fn: str, *args: Any) -> Any:
        try:
            return getattr(nvml, fn)(*args)
        except Exception:  # NVMLError_NotSupported and friends: record the fact as unknown
            return None

    def mw_to_w(x: Any) -> float | None:
        return None if x is None else x / 1000.0

    procs = get("nvmlDeviceGetComputeRunningProcesses", handle) or []
    others = [
        {"pid": p.pid, "used_memory_bytes": getattr(p, "usedGpuMemory", None)}
        for p in procs
        if p.pid != os.getpid()
    ]
    if others:
        warnings.warn(
            f"{len(others)} other process(es) on the GPU (pids {[o['pid'] for o in others]}): "
            "they share its time and its energy counter",
            stacklevel=2,
        )
    name = get("nvmlDeviceGetName", handle)
    driver = get("nvmlSystemGetDriverVersion")
    return {
        "gpu_name": name.decode() if isinstance(name, bytes) else name,
        "driver": driver.decode() if isinstance(driver, bytes) else driver,
        "sm_clock_mhz": get("nvmlDeviceGetClockInfo", handle, nvml.NVML_CLOCK_SM),
        "mem_clock_mhz": get("nvmlDeviceGetClockInfo", handle, nvml.NVML_CLOCK_MEM),
        "max_sm_clock_mhz": get("nvmlDeviceGetMaxClockInfo", handle, nvml.NVML_CLOCK_SM),
        "temperature_c": get("nvmlDeviceGetTemperature", handle, nvml.NVML_TEMPERATURE_GPU),
        "power_limit_w": mw_to_w(get("nvmlDeviceGetEnforcedPowerLimit", handle)),
        "other_processes": others,
    }


def device_facts(device: str, meter: Any = None) -> dict[str, Any]:
    facts: dict[str, Any] = {
        "device": device,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        **cpu_facts(),
    }
    if device.startswith("cuda") and torch.cuda.is_available():
        facts["cuda_device_name"] = torch.cuda.get_device_name(torch.device(device))
        if meter is not None and getattr(meter, "handle", None) is not None:
            facts.update(gpu_facts(meter.nvml, meter.handle))
    if meter is not None:
        facts["energy_meter"] = meter.facts()
    return facts


def device_name(device: str) -> str:
    """The hardware a figure belongs to: GPU name on CUDA, CPU model otherwise."""
    if device.startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(torch.device(device))
    return cpu_model()
