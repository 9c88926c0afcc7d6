"""The device boundary: everything that differs between a CPU, a CUDA GPU and the fake that rehearses one.

Stage code (evaluate, bench, sweep) holds a `Device` and asks it; it never tests a device's name. What
differs by device lives here and only here:

    resolve(spec)            "auto" | "cpu" | "cuda" | "cuda:N" -> a Device, or one line saying why not
    Device.kind              "cpu" | "cuda": what Results record and what a tier is chosen by
    Device.label             "cpu" | "cuda:0": the device as recorded in provenance
    Device.torch_device      where tensors go
    Device.dtype             the default weights' dtype (bf16 on a GPU, as the paper; fp32 on a CPU)
    Device.synchronize()     wait for queued work (timing edges)
    Device.gemm_probe(n)     the attainable matmul rate, for the evaluation profile
    Device.facts(meter)      what a Result records about the machine
    Device.visible_count()   devices one evaluation may spread over

`FakeCudaDevice` is the fake: with WIDTHWISE_FAKE_CUDA=1, "cuda" and "auto" resolve to it. It reports
itself as a CUDA device (kind "cuda", label "cuda:0", bf16) while its tensors live on this CPU, so every
stage runs its CUDA path in CPU CI, through the real command line. Everything it measures is this CPU's,
and every Result made with it says so (`machine.fake`); `widthwise baseline update` refuses such Results.

On a GPU the facts are: name, UUID, driver, clocks, temperature, power limit and other processes on the
board (a warning: they share its time and its energy counter). On a CPU: model, logical cores, the cores
this process may use, torch's thread counts and the load average (other work skews timings and RAPL).
"""

from __future__ import annotations

import contextlib
import os
import platform
import time
import warnings
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import torch

from widthwise.errors import WidthwiseError

FAKE_ENV = "WIDTHWISE_FAKE_CUDA"
# A 4096^3 bf16 GEMM takes ~0.2 ms on an H100 and ~1 ms on an L4: long enough to time, short to run.
CUDA_GEMM_N = 4096
CPU_GEMM_N = 1024
# Above this 1-minute load per usable core, other work shares the cores and timings get noisy.
BUSY_LOAD = 0.5


def fake_requested(env: Mapping[str, str] | None = None) -> bool:
    """Is the fake CUDA boundary asked for (WIDTHWISE_FAKE_CUDA set, not 0)? The one rule that the
    device, the NVML import (bench.energy) and doctor all follow."""
    return (os.environ if env is None else env).get(FAKE_ENV, "").strip() not in ("", "0")


# ---------------------------------------------------------------------------------------------------
# Facts that need no device object
# ---------------------------------------------------------------------------------------------------
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


def own_pids(status_file: str = "/proc/self/status") -> set[int]:
    """This process's PIDs in every PID namespace /proc shows (the `NSpid` line), and os.getpid()."""
    pids = {os.getpid()}
    try:
        with open(status_file, encoding="utf-8") as f:
            for line in f:
                if line.startswith("NSpid:"):
                    pids.update(int(x) for x in line.split()[1:])
    except (OSError, ValueError):
        pass
    return pids


def other_gpu_processes(procs: Iterable[Any], own: set[int], holds_context: bool) -> dict[str, Any]:
    """The processes on a board that are not this one.

    NVML reports PIDs of the host's namespace. Inside a container none of them is os.getpid(), so this
    process would count itself as "other". When we hold a CUDA context and none of the reported PIDs is
    ours, one entry is ours by construction: it is taken off the count, and the note says which case held.
    Pure, so both cases are tested on CPU."""
    procs = list(procs)
    listed = [{"pid": p.pid, "used_memory_bytes": getattr(p, "usedGpuMemory", None)} for p in procs]
    others = [e for e in listed if e["pid"] not in own]
    note = None
    if holds_context and others and len(others) == len(listed):
        note = (
            "NVML reports host PIDs and none is this process's (a PID namespace, e.g. a container); "
            "one entry is this process, so the count excludes one"
        )
        return {"count": len(others) - 1, "processes": others, "note": note}
    return {"count": len(others), "processes": others, "note": note}


def gpu_facts(nvml: Any, handle: Any, holds_context: bool = False) -> dict[str, Any]:
    """What NVML says about one board; each fact is best effort (not every GPU reports every field)."""

    def get(fn: str, *args: Any) -> Any:
        try:
            return getattr(nvml, fn)(*args)
        except Exception:  # NVMLError_NotSupported and friends: record the fact as unknown
            return None

    def text(x: Any) -> Any:
        return x.decode() if isinstance(x, bytes) else x

    def mw_to_w(x: Any) -> float | None:
        return None if x is None else x / 1000.0

    procs = get("nvmlDeviceGetComputeRunningProcesses", handle) or []
    others = other_gpu_processes(procs, own_pids(), holds_context)
    if others["count"]:
        warnings.warn(
            f"{others['count']} other process(es) on the GPU "
            f"(pids {[o['pid'] for o in others['processes']]}): they share its time and its energy counter",
            stacklevel=2,
        )
    return {
        "gpu_name": text(get("nvmlDeviceGetName", handle)),
        "gpu_uuid": text(get("nvmlDeviceGetUUID", handle)),
        "driver": text(get("nvmlSystemGetDriverVersion")),
        "sm_clock_mhz": get("nvmlDeviceGetClockInfo", handle, getattr(nvml, "NVML_CLOCK_SM", 1)),
        "mem_clock_mhz": get("nvmlDeviceGetClockInfo", handle, getattr(nvml, "NVML_CLOCK_MEM", 2)),
        "max_sm_clock_mhz": get("nvmlDeviceGetMaxClockInfo", handle, getattr(nvml, "NVML_CLOCK_SM", 1)),
        "temperature_c": get("nvmlDeviceGetTemperature", handle, getattr(nvml, "NVML_TEMPERATURE_GPU", 0)),
        "power_limit_w": mw_to_w(get("nvmlDeviceGetEnforcedPowerLimit", handle)),
        "other_processes": others["processes"],
        "other_process_count": others["count"],
        "other_processes_note": others["note"],
    }


def cpu_gemm_probe(threads: int, n: int = CPU_GEMM_N, repeats: int = 5) -> dict[str, Any]:
    """The best of `repeats` n^3 fp32 GEMMs after one warm-up, as GFLOP/s (best, because the question is
    what the machine can attain; a shared machine only ever makes it slower)."""
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        a, b = torch.randn(n, n), torch.randn(n, n)
        torch.mm(a, b)
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            torch.mm(a, b)
            best = min(best, time.perf_counter() - t0)
    finally:
        torch.set_num_threads(old)
    return {"n": n, "dtype": "float32", "threads": threads, "gflops": round(2 * n**3 / best / 1e9, 1)}


# ---------------------------------------------------------------------------------------------------
# Devices
# ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Device:
    """A CPU. The base class is the CPU; CudaDevice and FakeCudaDevice override what differs."""

    kind: str = "cpu"
    index: int | None = None
    fake: str | None = None  # None for real hardware; a fake says what it is and what it measures

    @property
    def label(self) -> str:
        return self.kind if self.index is None else f"{self.kind}:{self.index}"

    @property
    def torch_device(self) -> str:
        return self.label

    @property
    def dtype(self) -> torch.dtype:
        return torch.float32

    @property
    def dtype_name(self) -> str:
        return str(self.dtype).removeprefix("torch.")

    @property
    def tier(self) -> str:
        """The measured tier a bench on this device belongs to."""
        return "cpu"

    @property
    def meter(self) -> str:
        """The energy meter `--meter auto` opens (widthwise.bench.energy)."""
        return "rapl"

    def parallel_evaluations(self) -> int:
        """How many evaluations a sweep runs at once (one torch thread each on a CPU)."""
        return max(1, min(4, os.cpu_count() or 1))

    def synchronize(self) -> None:
        pass

    @contextlib.contextmanager
    def offloaded(self, model: torch.nn.Module) -> Iterator[None]:
        """The model's weights off this device while another process needs its memory (a vLLM worker).
        A CPU has nothing to give back."""
        yield

    def gemm_probe(self, threads: int) -> dict[str, Any]:
        return cpu_gemm_probe(threads)

    def visible_count(self) -> int:
        return 1

    def uuid(self) -> str | None:
        return None

    def hardware_name(self) -> str:
        return cpu_model()

    def busy_warning(self, facts: dict[str, Any]) -> str | None:
        """A warning when other work shares the cores (timings get noisy; with every core asked for,
        OpenMP threads wait on each other at every barrier, several times slower, not just noisier)."""
        load = facts.get("load_average_1_5_15")
        if load and load[0] > BUSY_LOAD:
            hint = "" if torch.get_num_threads() == 1 else " (consider --threads 1)"
            return (
                f"warning: load average {load[0]:g} on {facts.get('usable_cores')} cores before the bench; "
                f"timings will be noisy{hint}"
            )
        return None

    def facts(self, meter: Any = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "device": self.label,
            "torch": torch.__version__,
            "cuda": torch.version.cuda,
            **cpu_facts(),
        }
        if meter is not None:
            out["energy_meter"] = meter.facts()
        return out


@dataclass(frozen=True)
class CudaDevice(Device):
    kind: str = "cuda"
    index: int | None = 0

    @property
    def dtype(self) -> torch.dtype:
        return torch.bfloat16

    @property
    def tier(self) -> str:
        return "gpu"

    @property
    def meter(self) -> str:
        return "nvml"

    def parallel_evaluations(self) -> int:
        return 1  # one evaluation fills a GPU

    def synchronize(self) -> None:
        torch.cuda.synchronize(torch.device(self.torch_device))

    @contextlib.contextmanager
    def offloaded(self, model: torch.nn.Module) -> Iterator[None]:
        model.to("cpu")
        torch.cuda.empty_cache()
        try:
            yield
        finally:
            model.to(self.torch_device)

    def gemm_probe(self, threads: int, n: int = CUDA_GEMM_N, repeats: int = 10) -> dict[str, Any]:
        """The best of `repeats` n^3 bf16 GEMMs on the board after a warm-up, as GFLOP/s."""
        dev = torch.device(self.torch_device)
        a = torch.randn(n, n, device=dev, dtype=torch.bfloat16)
        b = torch.randn(n, n, device=dev, dtype=torch.bfloat16)
        torch.mm(a, b)
        self.synchronize()
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            torch.mm(a, b)
            self.synchronize()
            best = min(best, time.perf_counter() - t0)
        del a, b
        return {
            "n": n,
            "dtype": "bfloat16",
            "threads": threads,
            "device": self.hardware_name(),
            "gflops": round(2 * n**3 / best / 1e9, 1),
        }

    def visible_count(self) -> int:
        return torch.cuda.device_count()

    def uuid(self) -> str | None:
        """The board's UUID in NVML's spelling ("GPU-..."), so the meter reads the GPU torch is using."""
        props = torch.cuda.get_device_properties(torch.device(self.torch_device))
        uuid = getattr(props, "uuid", None)
        if uuid is None:
            return None
        text = str(uuid)
        return text if text.startswith(("GPU-", "MIG-")) else f"GPU-{text}"

    def hardware_name(self) -> str:
        return torch.cuda.get_device_name(torch.device(self.torch_device))

    def busy_warning(self, facts: dict[str, Any]) -> str | None:
        n = facts.get("other_process_count")
        if n:
            return (
                f"warning: {n} other process(es) on {facts.get('gpu_name')}: timings and energy include them"
            )
        return None

    def holds_context(self) -> bool:
        return torch.cuda.is_initialized()

    def facts(self, meter: Any = None) -> dict[str, Any]:
        out = super().facts(None)
        out["cuda_device_name"] = self.hardware_name()
        out["cuda_device_uuid"] = self.uuid()
        if meter is not None and getattr(meter, "handle", None) is not None:
            out.update(gpu_facts(meter.nvml, meter.handle, holds_context=self.holds_context()))
        if meter is not None:
            out["energy_meter"] = meter.facts()
        return out


FAKE_UUID = "GPU-fa4ec0da-0000-4000-8000-000000000000"


@dataclass(frozen=True)
class FakeCudaDevice(CudaDevice):
    """FAKE: a CPU standing in for one CUDA device, to rehearse the GPU path on CPU (WIDTHWISE_FAKE_CUDA=1).

    Stage code sees a CUDA device (kind, label, bf16, the gpu tier, the nvml meter, one visible device);
    tensors live on this CPU and every figure is this CPU's. Its NVML is widthwise.bench.fake_nvml."""

    fake: str | None = (
        f"FakeCudaDevice: this CPU stands in for a CUDA device ({FAKE_ENV}=1); every figure is the CPU's"
    )

    @property
    def torch_device(self) -> str:
        return "cpu"

    def synchronize(self) -> None:
        pass

    @contextlib.contextmanager
    def offloaded(self, model: torch.nn.Module) -> Iterator[None]:
        yield  # its tensors are on the CPU already

    def gemm_probe(self, threads: int, n: int = CPU_GEMM_N, repeats: int = 5) -> dict[str, Any]:
        # The same keys as the real board's probe, measured on the CPU and said to be so.
        probe = cpu_gemm_probe(threads, n, repeats)
        return {**probe, "dtype": "float32", "device": self.hardware_name(), "fake": self.fake}

    def visible_count(self) -> int:
        return 1

    def uuid(self) -> str | None:
        return FAKE_UUID

    def hardware_name(self) -> str:
        return f"FakeCudaDevice on {cpu_model()}"

    def holds_context(self) -> bool:
        return True  # as a real run would, once its model is on the board

    def facts(self, meter: Any = None) -> dict[str, Any]:
        return {**super().facts(meter), "fake": self.fake}


def resolve(spec: str | Device | None = "auto") -> Device:
    """The Device for `--device SPEC`; refuses (one line) a device that is not there."""
    if isinstance(spec, Device):
        return spec
    spec = (spec or "auto").strip()
    if spec == "auto":
        spec = "cuda" if fake_requested() or torch.cuda.is_available() else "cpu"
    if spec == "cpu":
        return Device()
    kind, _, idx = spec.partition(":")
    if kind != "cuda" or (idx and not idx.isdigit()):
        raise WidthwiseError(f"unknown device {spec!r}; use auto, cpu, cuda or cuda:N")
    index = int(idx) if idx else 0
    if fake_requested():
        if index != 0:
            raise WidthwiseError(f"--device {spec}: the fake CUDA device ({FAKE_ENV}=1) is cuda:0 only")
        return FakeCudaDevice()
    if not torch.cuda.is_available():
        build = torch.version.cuda
        raise WidthwiseError(
            f"--device {spec}: torch {torch.__version__} sees no CUDA device "
            f"({'CUDA build ' + build if build else 'a CPU build of torch'}); "
            "`widthwise doctor` names the driver and the fix"
        )
    if index >= torch.cuda.device_count():
        raise WidthwiseError(f"--device {spec}: only {torch.cuda.device_count()} CUDA device(s) are visible")
    return CudaDevice(index=index)


def of_tensor_device(device: str | torch.device) -> Device:
    """The Device of a model's parameters, for callers that hold a model but no Device (real hardware)."""
    text = str(device)
    if text == "cpu":
        return Device()
    kind, _, idx = text.partition(":")
    if kind == "cuda":
        return CudaDevice(index=int(idx) if idx else 0)
    raise WidthwiseError(f"unsupported tensor device {text!r}")


# Thin wrappers kept for callers that name a device by string (tests/gpu).
def device_facts(device: str, meter: Any = None) -> dict[str, Any]:
    return resolve(device).facts(meter)


def cuda_uuid(device: str) -> str | None:
    return resolve(device).uuid() if device.startswith("cuda") else None
