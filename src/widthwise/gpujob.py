"""The GPU job's plan (gpujob.toml): one shard per configuration, each with its exact command, its
estimated hours (widthwise.timemodel) and a timeout. `widthwise sweep --dry-run` prints it; `--json` is
gpu.yml's matrix, and tools/gpu_rehearsal.py runs every command of that same matrix on CPU.

    load_job(path)                      the job: device, runners, night, sweeps
    plan(job, tm, ...)                  the shards (pure: nothing is loaded or run)
    matrix(shards) / table(shards)      gpu.yml's matrix / the dry run's text
    summary(job, shards)                GPU-hours, the night on the job's runners, the 1B sweep's figure
"""

from __future__ import annotations

import math
import shlex
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from widthwise import timemodel as tmod
from widthwise.errors import WidthwiseError
from widthwise.names import model_key
from widthwise.widths import pct_in

JOB_FILE = Path(__file__).with_name("gpujob.toml")
# A shard's job outlives its sweep step by this much, so that the `if: always()` uploads of a sweep
# killed at its step timeout still run inside the job's own limit.
UPLOAD_MINUTES = 15


@dataclass(frozen=True)
class SweepSpec:
    model: str
    suite: str
    pcts: tuple[float, ...]
    method: str = "ppm"
    bench: bool | tuple[float, ...] = True  # true: every pruned width; a list: those widths only

    @property
    def slug(self) -> str:
        return model_key(self.model)

    def benches(self, pct: float) -> bool:
        if isinstance(self.bench, bool):
            return self.bench and pct > 0
        return pct_in(pct, self.bench)


@dataclass(frozen=True)
class Job:
    device: str
    runners: int
    night_hours: float
    out: str
    backend: str
    sweeps: tuple[SweepSpec, ...]


def _bench(value: Any) -> bool | tuple[float, ...]:
    if isinstance(value, bool):
        return value
    if isinstance(value, list):
        return tuple(float(p) for p in value)
    raise TypeError(f"bench must be true, false or a list of pcts, not {value!r}")


def load_job(path: Path = JOB_FILE) -> Job:
    try:
        with open(path, "rb") as f:
            doc = tomllib.load(f)
        job = doc["job"]
        sweeps = tuple(
            SweepSpec(
                s["model"],
                s["suite"],
                tuple(float(p) for p in s["pcts"]),
                s.get("method", "ppm"),
                _bench(s.get("bench", True)),
            )
            for s in doc["sweeps"]
        )
        return Job(
            job["device"], int(job["runners"]), float(job["night_hours"]), job["out"], job["backend"], sweeps
        )
    except (OSError, tomllib.TOMLDecodeError, KeyError, TypeError, ValueError) as e:
        raise WidthwiseError(f"GPU job {path}: {type(e).__name__}: {e}") from None


def pcts_text(pcts: Sequence[float]) -> str:
    return ",".join(f"{p:g}" for p in pcts)


@dataclass(frozen=True)
class Shard:
    spec: SweepSpec
    index: int  # 1-based
    count: int
    config: str  # the configuration's label (base, ppm-pct10, ...)
    command: tuple[str, ...]
    estimate: tmod.ShardEstimate
    timeout_minutes: int  # the job's limit
    sweep_timeout_minutes: int  # the sweep step's limit (the job's less setup and the uploads)

    @property
    def shard(self) -> str:
        return f"{self.index}/{self.count}"

    @property
    def artifact(self) -> str:
        return f"shard-{self.spec.slug}-{self.index}-of-{self.count}"

    @property
    def out(self) -> str:
        return self.command[self.command.index("--out") + 1]

    def entry(self) -> dict[str, Any]:
        return {
            "model": self.spec.model,
            "slug": self.spec.slug,
            "suite": self.spec.suite,
            "config": self.config,
            "shard": self.shard,
            "out": self.out,
            # what a shard's artifact holds: the root above its out folder, so that artifacts of every
            # model merge into one tree (each model's Results under its own folder)
            "root": str(Path(self.out).parent),
            "artifact": self.artifact,
            "command": shlex.join(self.command),
            # whether this shard's configuration is benched (--bench-pcts), so its Results can be counted
            "bench": self.estimate.parts.get("bench", 0.0) > 0,
            "estimated_hours": round(self.estimate.hours, 2),
            "timeout_minutes": self.timeout_minutes,
            "sweep_timeout_minutes": self.sweep_timeout_minutes,
        }


def shard_command(
    spec: SweepSpec,
    index: int,
    count: int,
    out: str,
    *,
    device: str = "cuda",
    backend: str = "auto",
    devices: str = "1",
    bench: bool = True,
    bench_args: str | None = None,
) -> tuple[str, ...]:
    """The exact `widthwise sweep` that runs one shard (pure)."""
    words = ["widthwise", "sweep", spec.model, "--suite", spec.suite, "--pcts", pcts_text(spec.pcts)]
    words += ["--method", spec.method, "--shard", f"{index}/{count}"]
    words += ["--device", device, "--backend", backend, "--devices", str(devices)]
    benched = bench and spec.bench is not False
    words += ["--bench"] if benched else ["--no-bench"]
    if benched and not isinstance(spec.bench, bool):
        words += ["--bench-pcts", pcts_text(spec.bench)]
    if benched and bench_args:
        words += ["--bench-args", bench_args]
    words += ["--out", f"{out}/{spec.slug}"]
    return tuple(words)


def plan(
    job: Job,
    tm: tmod.TimeModel,
    *,
    suites: Mapping[str, Sequence[tmod.SuiteTask]],
    bench_s: Mapping[str, float],
    device: str | None = None,
    backend: str = "auto",
    devices: str = "1",
    bench: bool = True,
    bench_args: str | None = None,
    models: Sequence[str] | None = None,
) -> list[Shard]:
    """Every shard of the job: `suites` gives each suite's tasks, `bench_s` one pruned configuration's
    bench seconds per model (the base has no bench of its own). `models` keeps only those sweeps."""
    from widthwise.sweep import plan as sweep_plan

    dev = device or job.device
    if backend not in tmod.BACKEND_OF:
        raise WidthwiseError(f"the time model knows backends {', '.join(tmod.BACKEND_OF)}, not {backend!r}")
    chosen = [s for s in job.sweeps if not models or s.model in models or s.slug in models]
    if models and not chosen:
        raise WidthwiseError(f"none of {', '.join(models)} is a sweep of the GPU job")
    out: list[Shard] = []
    for spec in chosen:
        configs = sweep_plan(spec.pcts, spec.method)
        n = len(configs)
        for i, cfg in enumerate(configs, start=1):
            b = bench_s.get(spec.model, 0.0) if bench and spec.benches(cfg.pct) else 0.0
            est = tmod.shard_seconds(tm, suites[spec.suite], dev, backend, spec.model, configs=1, bench=b)
            cmd = shard_command(
                spec, i, n, job.out, backend=backend, devices=devices, bench=bench, bench_args=bench_args
            )
            sweep_min = tmod.timeout_minutes(est.seconds - est.parts["setup"], tm.safety_factor)
            setup_min = tmod.timeout_minutes(est.parts["setup"], tm.safety_factor)
            out.append(
                Shard(spec, i, n, cfg.label, cmd, est, sweep_min + setup_min + UPLOAD_MINUTES, sweep_min)
            )
    return out


def matrix(shards: Sequence[Shard]) -> dict[str, Any]:
    return {"include": [s.entry() for s in shards]}


@dataclass(frozen=True)
class Summary:
    gpu_hours: float
    per_model_hours: Mapping[str, float]  # shards of one model, one after another on one GPU
    night_hours: float  # the shards on the job's runners, longest first
    runners: int
    fits: bool


def summary(job: Job, shards: Sequence[Shard], runners: int | None = None) -> Summary:
    k = runners or job.runners
    per_model: dict[str, float] = {}
    for s in shards:
        per_model[s.spec.model] = per_model.get(s.spec.model, 0.0) + s.estimate.hours
    night = tmod.makespan([s.estimate.hours for s in shards], k)
    return Summary(sum(per_model.values()), per_model, night, k, night <= job.night_hours)


def breakdown(shards: Sequence[Shard], model: str) -> dict[str, float]:
    """Minutes per part (setup, load, each task, startup, bench) summed over one model's shards: the
    arithmetic behind its total."""
    out: dict[str, float] = {}
    for s in shards:
        if s.spec.model == model:
            for part, sec in s.estimate.parts.items():
                out[part] = out.get(part, 0.0) + sec / 60
    return out


def one_gpu_hours(shards: Sequence[Shard], model: str, bench: bool = True) -> float:
    """One model's sweep unsharded on one GPU (`nox -s claims-gpu`, or a runner that takes every shard):
    the job's setup once, then each configuration's load, evaluation and, with `bench`, its bench."""
    mine = [s for s in shards if s.spec.model == model]
    if not mine:
        raise WidthwiseError(f"no shard of {model} in the plan")
    parts = breakdown(mine, model)
    minutes = sum(parts.values()) - parts["setup"] + parts["setup"] / len(mine)
    if not bench:
        minutes -= parts["bench"]
    return minutes / 60


def _hm(hours: float) -> str:
    m = math.ceil(hours * 60)
    return f"{m // 60}h{m % 60:02d}"


def table(job: Job, shards: Sequence[Shard], device: str, backend: str, runners: int | None = None) -> str:
    from tabulate import tabulate

    rows = [
        {
            "shard": f"{s.spec.slug} {s.shard}",
            "config": s.config,
            "suite": s.spec.suite,
            "est.": _hm(s.estimate.hours),
            "timeout": f"{s.timeout_minutes} min",
            "calibrated": ",".join(s.estimate.calibrated) or "-",
        }
        for s in shards
    ]
    lines = [
        f"GPU job: {len(shards)} shards on {device}, backend {backend} (estimates from src/widthwise/"
        f"timemodel.toml; timeout = estimate x safety factor + {UPLOAD_MINUTES} min for the uploads)",
        tabulate(rows, headers="keys", tablefmt="github"),
        "",
    ]
    for s in shards:
        lines.append(f"{s.spec.slug} {s.shard} ({s.config}): {shlex.join(s.command)}")
    sm = summary(job, shards, runners)
    lines.append("")
    for model, h in sm.per_model_hours.items():
        parts = breakdown(shards, model)
        detail = ", ".join(
            f"{k} {v:.0f}" for k, v in sorted(parts.items(), key=lambda kv: -kv[1]) if v >= 0.5
        )
        lines.append(f"{model}: {_hm(h)} of GPU time, one shard after another on one {device}")
        lines.append(f"  minutes: {detail}")
    verdict = "fits" if sm.fits else "does NOT fit"
    lines.append(
        f"all: {sm.gpu_hours:.1f} GPU-hours; on {sm.runners} runner(s) the night takes "
        f"{_hm(sm.night_hours)}, which {verdict} the {job.night_hours:g} h night (gpujob.toml)"
    )
    return "\n".join(lines)


# -- inputs from the project's own data (suites.toml, workloads.toml) -------------------------------


def suite_tasks(name: str) -> list[tmod.SuiteTask]:
    from widthwise.evaluation.suites import get_suite

    s = get_suite(name)
    return [tmod.SuiteTask(t.name, t.n, t.per_subject, t.max_gen_toks, s.batch_size) for t in s.tasks]


def bench_workloads(tm: tmod.TimeModel, config: Any) -> list[tmod.Workload]:
    """The bench's workloads as the time model needs them: workloads.toml's prompts and output lengths
    with the BenchConfig's overrides (read from the TOML alone: no prompt file is opened)."""
    from widthwise.bench.workloads import config as workloads_toml

    table = workloads_toml()["workload"]
    names = list(config.workloads or table)
    unknown = [w for w in names if w not in table]
    if unknown:
        raise WidthwiseError(f"unknown workload(s) {', '.join(unknown)}; known: {', '.join(table)}")
    return [
        tmod.Workload(
            name=w,
            prompts=int(config.prompts or table[w]["prompts"]),
            new_tokens=int(config.new_tokens or table[w]["new_tokens"]),
            prompt_tokens=int(tm.workload_prompt_tokens.get(w, 512)),
        )
        for w in names
    ]


def bench_estimates(tm: tmod.TimeModel, job: Job, device: str, config: Any) -> dict[str, float]:
    """One pruned configuration's bench seconds, per model of the job."""
    wls = bench_workloads(tm, config)
    return {
        s.model: tmod.bench_seconds(
            tm,
            wls,
            config.batch_sizes,
            config.repeats,
            config.warmup,
            config.idle_s,
            device,
            tmod.model_class(tm, s.model),
            config.min_window_s,
        )
        for s in job.sweeps
    }
