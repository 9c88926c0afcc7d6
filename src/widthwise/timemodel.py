"""How long a GPU sweep takes, from the suite's token counts and a per-device rate table (pure functions).

    load(path)                         the TimeModel in timemodel.toml (rates, token counts, sources)
    task_seconds(tm, task, ...)        one task of one evaluation on one device and backend
    eval_seconds / bench_seconds       one configuration's evaluation / its bench
    shard_seconds(tm, ...)             one shard of a sweep (setup, load, evaluation, bench)
    calibrate(tm, results, device)     per-task seconds measured in real Results replace the table's
    prefix_path_cost(inputs, first, g) the forwards and tokens widthwise's HF prefix path runs
    makespan(hours, runners)           a night's length when shards share runners

Every figure is an estimate until a Result calibrates it: the rates in timemodel.toml are anchored on
the issue's HF eager figures and public vLLM throughput (sources in its comments), and a pruned model is
estimated at its base model's rates (HF eager at batch 1 is launch-bound, so a narrower MLP is barely
faster; a timeout must not assume it is).
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from widthwise.errors import WidthwiseError

TIMEMODEL_FILE = Path(__file__).with_name("timemodel.toml")
LL_KINDS = ("loglikelihood", "loglikelihood_rolling")
# The backend that runs each kind of request: `auto` is vLLM for generation, HF for log-likelihoods.
BACKEND_OF = {
    "hf": {"generate": "hf", "loglikelihood": "hf"},
    "vllm": {"generate": "vllm", "loglikelihood": "vllm"},
    "auto": {"generate": "vllm", "loglikelihood": "hf"},
}


@dataclass(frozen=True)
class TaskTokens:
    """One task of the paper suite, full split: what its requests cost in tokens.

    kind            "loglikelihood" (multiple choice, perplexity) or "generate"
    docs, requests  documents, and lm-eval requests (a multiple-choice document has one per choice)
    context_tokens, continuation_tokens   summed over requests (what a plain path runs, padding aside)
    prefix_forwards, prefix_tokens        what widthwise's HF prefix path runs, per batch size
    prompt_tokens, max_gen_toks           generation: prompts summed, and lm-eval's cap per request
    expected_fraction                     generation: share of the cap an average response uses
    source          "counted" (tools/token_counts.py over the offline data) or why it is an estimate
    """

    name: str
    kind: str
    docs: int
    requests: int
    context_tokens: int = 0
    continuation_tokens: int = 0
    prefix_forwards: Mapping[int, int] = field(default_factory=dict)
    prefix_tokens: Mapping[int, int] = field(default_factory=dict)
    prompt_tokens: int = 0
    max_gen_toks: int = 0
    expected_fraction: float = 1.0
    source: str = "counted"


@dataclass(frozen=True)
class Rates:
    """What one backend does per second with one model class on one device.

    forward_s          fixed cost of one forward call (HF eager at batch 1 is kernel-launch bound)
    tokens_per_s       log-likelihood and prefill tokens through the model beyond that fixed cost
    decode_tokens_per_s   generated tokens per second: per sequence at batch 1 (hf), summed over the
                       continuous batch (vllm)
    batch_step_growth  hf decode: a step at batch b costs (1 + growth * (b - 1)) steps at batch 1
    startup_s          per evaluation: vLLM's save + engine start + CUDA graphs; 0 for hf
    load_s             loading the weights once per configuration (from the runner's cache)
    """

    forward_s: float
    tokens_per_s: float
    decode_tokens_per_s: float
    batch_step_growth: float = 0.0
    startup_s: float = 0.0
    load_s: float = 0.0


@dataclass(frozen=True)
class Workload:
    name: str
    prompts: int
    new_tokens: int
    prompt_tokens: int  # per prompt, typical (the bench truncates to max_prompt_tokens)


@dataclass(frozen=True)
class TimeModel:
    tasks: Mapping[str, TaskTokens]
    rates: Mapping[tuple[str, str, str], Rates]  # (device, backend, model class) -> Rates
    models: Mapping[str, str]  # model id -> model class
    devices: Mapping[str, Mapping[str, Any]]  # device key -> {name, match: [substrings of the GPU name]}
    safety_factor: float
    setup_s: float  # per shard: checkout, install from the lock, data, doctor, pytest -m gpu
    per_config_s: float  # per configuration: task loading, pruning, Result writing
    min_window_s: float  # the bench's window floor with a meter on GPU
    idle_calibrations: int  # idle windows the bench measures (before and after)
    workload_prompt_tokens: Mapping[str, int] = field(default_factory=dict)
    # (device, model class, task, backend) -> measured seconds for the full task, from Results
    measured: Mapping[tuple[str, str, str, str], float] = field(default_factory=dict)


def load(path: Path = TIMEMODEL_FILE) -> TimeModel:
    try:
        with open(path, "rb") as f:
            doc = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise WidthwiseError(f"time model {path}: {e}") from None
    return from_dict(doc, where=str(path))


def from_dict(doc: Mapping[str, Any], where: str = "timemodel") -> TimeModel:
    try:
        tasks: dict[str, TaskTokens] = {}
        for table in ("tasks", "estimated"):
            for name, t in doc.get(table, {}).items():
                fraction = doc.get("generation", {}).get(name, {}).get("expected_fraction", 1.0)
                fields = {k: v for k, v in t.items() if k in TaskTokens.__dataclass_fields__}
                for k in ("prefix_forwards", "prefix_tokens"):
                    v = fields.get(k, {})
                    fields[k] = (
                        {int(b): int(n) for b, n in v.items()} if isinstance(v, Mapping) else {1: int(v)}
                    )
                tasks[name] = TaskTokens(name=name, expected_fraction=float(fraction), **fields)
        rates = {}
        for device, backends in doc["rates"].items():
            for backend, classes in backends.items():
                for cls, r in classes.items():
                    rates[(device, backend, cls)] = Rates(**r)
        bench = doc["bench"]
        return TimeModel(
            tasks=tasks,
            rates=rates,
            models=dict(doc["models"]),
            devices={k: dict(v) for k, v in doc["devices"].items()},
            safety_factor=float(doc["safety_factor"]),
            setup_s=float(doc["setup_minutes"]) * 60,
            per_config_s=float(doc["per_config_s"]),
            min_window_s=float(bench["min_window_s"]),
            idle_calibrations=int(bench["idle_calibrations"]),
            workload_prompt_tokens=dict(bench.get("prompt_tokens", {})),
        )
    except (KeyError, TypeError, ValueError) as e:
        raise WidthwiseError(f"time model {where}: malformed ({type(e).__name__}: {e})") from None


def model_class(tm: TimeModel, model: str) -> str:
    if model in tm.models:
        return tm.models[model]
    raise WidthwiseError(
        f"the time model has no rates for model {model!r}; known: {', '.join(sorted(tm.models))} "
        "(add it to [models] in src/widthwise/timemodel.toml)"
    )


def rates(tm: TimeModel, device: str, backend: str, cls: str) -> Rates:
    try:
        return tm.rates[(device, backend, cls)]
    except KeyError:
        known = sorted({d for d, _, _ in tm.rates})
        raise WidthwiseError(
            f"the time model has no {backend} rates for {cls} on {device!r} (devices: {', '.join(known)})"
        ) from None


def request_kind(kind: str) -> str:
    return "generate" if kind in ("generate", "generate_until") else "loglikelihood"


def scaled(
    task: TaskTokens, n: int | None = None, per_subject: int | None = None, subjects: int = 57
) -> float:
    """The share of the full split a suite's `n` (or MMLU's `per_subject`) runs."""
    if per_subject is not None:
        return min(1.0, per_subject * subjects / task.docs)
    if n is not None:
        return min(1.0, n / task.docs)
    return 1.0


def prefix_at(task: TaskTokens, batch_size: int) -> tuple[int, int]:
    """(forwards, tokens) of the prefix path at the largest counted batch size not above `batch_size`
    (a smaller batch never runs fewer forwards, so the estimate errs long)."""
    if not task.prefix_forwards:
        raise WidthwiseError(f"the time model has no prefix-path counts for task {task.name}")
    sizes = sorted(task.prefix_forwards)
    b = max([s for s in sizes if s <= batch_size] or sizes[:1])
    return task.prefix_forwards[b], task.prefix_tokens[b]


def task_seconds(
    tm: TimeModel,
    task: TaskTokens,
    device: str,
    backend: str,
    cls: str,
    *,
    share: float = 1.0,
    max_gen_toks: int | None = None,
    batch_size: int = 1,
) -> float:
    """Seconds for one task of one evaluation: measured when a Result calibrated it, else from the rates.

    log-likelihood, hf:    forwards x forward_s + prefix-path tokens / tokens_per_s, at the suite's batch
    log-likelihood, vllm:  requests x forward_s + (context + continuation) / tokens_per_s
    generate, hf (batch 1): per request one prefill forward, then its expected tokens one step each
    generate, vllm:        prompts / tokens_per_s + expected tokens / decode_tokens_per_s (one batch)
    """
    kind = request_kind(task.kind)
    used = BACKEND_OF[backend][kind]
    measured = tm.measured.get((device, cls, task.name, used))
    if measured is not None:
        return measured * share
    r = rates(tm, device, used, cls)
    if kind == "loglikelihood":
        if used == "hf":
            forwards, tokens = prefix_at(task, batch_size)
            return share * (forwards * r.forward_s + tokens / r.tokens_per_s)
        return share * (
            task.requests * r.forward_s + (task.context_tokens + task.continuation_tokens) / r.tokens_per_s
        )
    generated = task.requests * (max_gen_toks or task.max_gen_toks) * task.expected_fraction
    if used == "hf":
        prefill = task.requests * r.forward_s + task.prompt_tokens / r.tokens_per_s
        return share * (prefill + generated / r.decode_tokens_per_s)
    return share * (task.prompt_tokens / r.tokens_per_s + generated / r.decode_tokens_per_s)


@dataclass(frozen=True)
class SuiteTask:
    """A suite's task as the time model needs it (from widthwise.evaluation.suites.TaskSpec)."""

    name: str
    n: int | None = None
    per_subject: int | None = None
    max_gen_toks: int | None = None
    batch_size: int = 1


def eval_seconds(
    tm: TimeModel, tasks: Sequence[SuiteTask], device: str, backend: str, cls: str
) -> dict[str, float]:
    """Seconds per task of one configuration's evaluation, plus "startup" (vLLM's engine, once per
    evaluation when anything runs on it)."""
    out: dict[str, float] = {}
    missing = [t.name for t in tasks if t.name not in tm.tasks]
    if missing:
        raise WidthwiseError(f"the time model has no token counts for task(s) {', '.join(missing)}")
    for t in tasks:
        tok = tm.tasks[t.name]
        share = scaled(tok, t.n, t.per_subject)
        out[t.name] = task_seconds(
            tm, tok, device, backend, cls, share=share, max_gen_toks=t.max_gen_toks, batch_size=t.batch_size
        )
    used = {BACKEND_OF[backend][request_kind(tm.tasks[t.name].kind)] for t in tasks}
    out["startup"] = sum(rates(tm, device, b, cls).startup_s for b in sorted(used))
    return out


def bench_window_s(natural_s: float, min_window_s: float) -> float:
    """A window runs every batch once, then again until min_window_s has passed (bench/timing.py)."""
    if natural_s <= 0:
        return 0.0
    return natural_s * max(1, math.ceil(min_window_s / natural_s))


def bench_seconds(
    tm: TimeModel,
    workloads: Sequence[Workload],
    batch_sizes: Sequence[int],
    repeats: int,
    warmup: int,
    idle_s: float,
    device: str,
    cls: str,
    min_window_s: float | None = None,
) -> float:
    """One bench run: base and pruned, each cell's warm-up windows (one pass) and timed windows (at least
    min_window_s), HF eager at the bench's batch sizes; idle calibration; the bench loads its own model."""
    r = rates(tm, device, "hf", cls)
    floor = tm.min_window_s if min_window_s is None else min_window_s
    total = 0.0
    for w in workloads:
        for b in batch_sizes:
            batches = w.prompts // b  # the bench drops a remainder batch
            step = (1 + r.batch_step_growth * (b - 1)) / r.decode_tokens_per_s
            prefill = r.forward_s + b * w.prompt_tokens / r.tokens_per_s
            natural = batches * (prefill + (w.new_tokens - 1) * step)
            total += 2 * (warmup * natural + repeats * bench_window_s(natural, floor))
    return total + tm.idle_calibrations * idle_s + r.load_s


@dataclass(frozen=True)
class ShardEstimate:
    seconds: float
    parts: Mapping[str, float]  # setup, load, per-task seconds, startup, bench
    calibrated: tuple[str, ...]  # tasks whose seconds came from Results

    @property
    def hours(self) -> float:
        return self.seconds / 3600


def shard_seconds(
    tm: TimeModel,
    tasks: Sequence[SuiteTask],
    device: str,
    backend: str,
    model: str,
    configs: int = 1,
    bench: float = 0.0,
) -> ShardEstimate:
    """One shard: the job's setup once, then per configuration the weights, the evaluation and its
    bench (`bench`: seconds of one configuration's bench, 0 for the base or no bench)."""
    cls = model_class(tm, model)
    per_task = eval_seconds(tm, tasks, device, backend, cls)
    load_s = rates(tm, device, "hf", cls).load_s + tm.per_config_s
    parts = {"setup": tm.setup_s, "load": configs * load_s}
    parts.update({k: configs * v for k, v in per_task.items()})
    parts["bench"] = bench
    used = {BACKEND_OF[backend][request_kind(tm.tasks[t.name].kind)] for t in tasks}
    calibrated = tuple(t.name for t in tasks if any((device, cls, t.name, b) in tm.measured for b in used))
    return ShardEstimate(sum(parts.values()), parts, calibrated)


def timeout_minutes(seconds: float, safety_factor: float) -> int:
    """The job's limit: the estimate times the safety factor, rounded up to a whole minute."""
    return max(1, math.ceil(seconds * safety_factor / 60))


def makespan(hours: Sequence[float], runners: int) -> float:
    """The night's length when shards go, longest first, to whichever of `runners` frees first (what a
    matrix over a pool of runners does, give or take GitHub's queue order)."""
    if runners < 1:
        raise WidthwiseError("--runners must be at least 1")
    free = [0.0] * runners
    for h in sorted(hours, reverse=True):
        i = free.index(min(free))
        free[i] += h
    return max(free)


# -- calibration from Results ----------------------------------------------------------------------


def device_of(tm: TimeModel, result: Mapping[str, Any]) -> str | None:
    """The time model's device key for a Result's machine (by GPU name), or None when none matches."""
    prov = result.get("provenance") or {}
    machine = prov.get("machine") or {}
    # A GPU's name when there is one: the host CPU of a GPU runner is not the device that did the work.
    gpu = [machine.get(k) for k in ("gpu_name", "cuda_device_name", "device_name", "name") if machine.get(k)]
    name = str(gpu[0]) if gpu else str(machine.get("cpu_model") or "")
    if not name:
        return None
    for key, d in tm.devices.items():
        if any(m.lower() in name.lower() for m in d.get("match", ())):
            return key
    return None


def backend_of_task(result: Mapping[str, Any], task: str) -> str:
    """Which backend ran a task: its profile's or settings' per-task record (schema 4: `--backend auto`
    runs tasks on different backends), else the run's backend (older Results ran all on one)."""
    settings = result.get("settings") or {}
    profiled = (((result.get("provenance") or {}).get("profile") or {}).get("tasks") or {}).get(task) or {}
    configured = (settings.get("tasks") or {}).get(task) or {}
    return str(profiled.get("backend") or configured.get("backend") or settings.get("backend") or "hf")


def measured_seconds(
    tm: TimeModel, results: Iterable[Mapping[str, Any]], device: str
) -> tuple[dict[tuple[str, str, str, str], float], list[str]]:
    """Per (device, model class, task, backend): the slowest measured seconds of the whole task, each
    Result's profile scaled from the requests it ran to the table's (a `--limit` or subset run counts in
    proportion). Results from other devices or unknown models are skipped, each with a line saying why."""
    out: dict[tuple[str, str, str, str], float] = {}
    notes: list[str] = []
    for r in results:
        if r.get("stage") != "eval":
            continue
        label = f"{(r.get('model') or {}).get('name')} ({(r.get('provenance') or {}).get('device')})"
        profile = (r.get("provenance") or {}).get("profile") or {}
        if not profile.get("tasks"):
            notes.append(f"{label}: no profile (made before widthwise recorded one, or by vLLM)")
            continue
        on = device_of(tm, r)
        if on != device:
            notes.append(f"{label}: measured on {on or 'an unknown device'}, not {device}")
            continue
        model = (r.get("model") or {}).get("name", "")
        if model not in tm.models:
            notes.append(f"{label}: model not in the time model")
            continue
        cls = tm.models[model]
        for task, t in profile["tasks"].items():
            if task not in tm.tasks or not t.get("requests"):
                continue
            full = t["seconds"] * tm.tasks[task].requests / t["requests"]
            key = (device, cls, task, backend_of_task(r, task))
            out[key] = max(out.get(key, 0.0), full)
    return out, notes


def calibrate(
    tm: TimeModel, results: Iterable[Mapping[str, Any]], device: str
) -> tuple[TimeModel, list[str]]:
    """The time model with every task measured on `device` taking its measured seconds."""
    measured, notes = measured_seconds(tm, results, device)
    merged = {**tm.measured, **measured}
    return TimeModel(**{**tm.__dict__, "measured": merged}), notes


# -- what the HF prefix path runs (mirrors widthwise.evaluation.hflm._prefix_scores) ---------------


def prefix_path_cost(inputs: list[list[int]], first: list[int], max_groups: int) -> tuple[int, int]:
    """(forward calls, tokens) the prefix path runs for these requests (inputs: context + continuation
    as scored, first: where the continuation starts). Padding is counted, as the profile counts it."""
    from widthwise.evaluation.prefixplan import common_prefix, plan

    forwards = tokens = 0
    cached: list[int] = []
    for batch in plan(inputs, first, max_groups):
        prefixes = [inputs[members[0]][:p] for members, p in batch]
        h = min(common_prefix(prefixes[0], q) for q in prefixes)
        keep = common_prefix(cached, prefixes[0][:h])
        if h > keep:
            forwards, tokens = forwards + 1, tokens + (h - keep)
        cached = prefixes[0][:h]
        middles = [q[h:] for q in prefixes]
        distinct: dict[tuple[int, tuple[int, ...]], list[int]] = {}
        for g, (members, p) in enumerate(batch):
            for i in members:
                distinct.setdefault((g, tuple(inputs[i][p:])), [g, len(inputs[i][p:])])
        rows = list(distinct.values())
        if len(rows) == len(batch):
            width = max(len(middles[g]) + n for g, n in rows)
            forwards, tokens = forwards + 1, tokens + len(rows) * width
        else:
            width_m = max(map(len, middles))
            if width_m:
                forwards, tokens = forwards + 1, tokens + len(batch) * width_m
            width = max(n for _, n in rows)
            forwards, tokens = forwards + 1, tokens + len(rows) * width
    return forwards, tokens
