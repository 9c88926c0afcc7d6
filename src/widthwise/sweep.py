"""The main job: prune -> evaluate -> bench over a list of configurations, then check and report.

Every stage is a library call (widthwise.prune, widthwise.evaluation, widthwise.bench, widthwise.claims,
widthwise.report); nothing here goes back through the command line. A sweep writes plain files into its
output folder, one Result per (configuration, stage):

    DIR/sweep.json                         what was asked (model, suite, configurations); a rerun must match
    DIR/results/plans/<shard>.plan.json    what the whole sweep covers (widthwise.plan), one per shard
    DIR/results/eval/<label>.json          widthwise eval Results
    DIR/results/bench/<label>.json         widthwise bench Results (pruned; the interleaved base beside it)
    DIR/checkpoints/<key>/<task>.checkpoint.json   each finished task of an unfinished evaluation
    DIR/report/                            claims table and plots (unsharded runs; shards are merged by check)

A finished file is never redone, so an interrupted sweep resumes where it stopped. `--shard i/n` runs every
n-th configuration starting at the i-th, so a CI matrix spreads one sweep over n runners and
`widthwise check DIR1 DIR2 ...` merges them.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from widthwise.errors import WidthwiseError
from widthwise.names import config_slug
from widthwise.plan import plan_dict, write_plan
from widthwise.prune import PruneSpec, canonical_method, width_from_pct
from widthwise.results import atomic_write_text, read_result, write_result
from widthwise.widths import pct_in

CONTROLS = ("random", "ppm-reverse")
CHECKPOINTS = "checkpoints"  # DIR/checkpoints/<cache key>/<task>.checkpoint.json, per unfinished evaluation


def _log(msg: str) -> None:
    print(msg, flush=True)


@dataclass(frozen=True)
class Config:
    """One point of a sweep: the base model (pct 0) or a method at a pruning percentage."""

    method: str
    pct: float

    @property
    def is_base(self) -> bool:
        return self.pct == 0

    @property
    def spec(self) -> PruneSpec | None:
        return None if self.is_base else PruneSpec(method=self.method, pct=self.pct)

    @property
    def label(self) -> str:
        return config_slug(None if self.is_base else {"method": self.method, "pct": self.pct})


def parse_pcts(text: str) -> list[float]:
    try:
        pcts = [float(p) for p in text.split(",") if p.strip()]
    except ValueError:
        raise WidthwiseError(f"--pcts must be comma-separated numbers, got {text!r}") from None
    if not pcts:
        raise WidthwiseError("--pcts is empty")
    for p in pcts:
        width_from_pct(1, p)  # the same range check as prune
    if len(set(pcts)) != len(pcts):
        raise WidthwiseError(f"--pcts repeats a value: {text!r}")
    return sorted(pcts)


def parse_shard(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise WidthwiseError(f"--shard must look like i/n (e.g. 2/7), got {text!r}") from None
    if not 1 <= i <= n:
        raise WidthwiseError(f"--shard {text}: need 1 <= i <= n")
    return i, n


def plan(
    pcts: Sequence[float], method: str = "ppm", controls: bool = False, control_pcts: Sequence[float] = ()
) -> list[Config]:
    """Base first (always: every claim compares against it), then the method, then the controls."""
    method = canonical_method(method)
    configs = [Config("base", 0.0)]
    configs += [Config(method, float(p)) for p in pcts if p > 0]
    if controls:
        for c in CONTROLS:
            if c != method:
                configs += [Config(c, float(p)) for p in (control_pcts or pcts) if p > 0]
    return configs


def shard(configs: Sequence[Config], which: tuple[int, int] | None) -> list[Config]:
    if which is None:
        return list(configs)
    i, n = which
    return list(configs[i - 1 :: n])


def result_path(out: Path, stage: str, config: Config) -> Path:
    return out / "results" / stage / f"{config.label}.json"


def _manifest(out: Path, request: dict[str, Any]) -> None:
    """Record what the folder holds; a rerun that asks for something else is refused, not mixed in."""
    path = out / "sweep.json"
    if path.exists():
        before = json.loads(path.read_text())
        diff = [k for k in request if k not in ("configs", "shard") and before.get(k) != request[k]]
        if diff:
            raise WidthwiseError(
                f"{out} holds a sweep with other settings ({', '.join(diff)}); use another --out"
            )
        request = {**request, "configs": sorted({*before.get("configs", []), *request["configs"]})}
        atomic_write_text(path, json.dumps(request, indent=1, sort_keys=True) + "\n", overwrite=True)
    else:
        atomic_write_text(path, json.dumps(request, indent=1, sort_keys=True) + "\n")


def plan_of(
    model: str,
    planned: Sequence[Config],
    configs: Sequence[Config],
    suite: str,
    bench: Any,
    shard_label: str | None,
    bench_pcts: Sequence[float] | None = None,
) -> dict[str, Any]:
    """The plan file's content (widthwise.plan): the whole sweep, and which part of it this run is."""
    from widthwise.evaluation import get_suite

    s = get_suite(suite)
    cells = None
    if bench is not None:
        cells = {
            "workloads": [w.name for w in bench.load_workloads()],
            "batch_sizes": list(bench.batch_sizes),
            **({"pcts": sorted(float(p) for p in bench_pcts)} if bench_pcts is not None else {}),
        }
    return plan_dict(
        tier=s.tier,
        suite=suite,
        model=model,
        tasks=[t.name for t in s.tasks],
        configs=[(None if c.is_base else c.method, c.pct) for c in planned],
        bench=cells,
        shard=shard_label,
        shard_configs=[c.label for c in configs],
    )


@dataclass
class Stage:
    config: Config
    name: str  # "eval" or "bench"
    path: Path


def _done(stage: Stage) -> bool:
    from widthwise.bench import base_result_path

    paths = [stage.path] + ([base_result_path(stage.path)] if stage.name == "bench" else [])
    if not all(p.exists() for p in paths):
        return False
    for p in paths:
        read_result(p)  # a corrupt file is an error, not something to silently redo over
    return True


def _fmt(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    return f"{m}m{s:02d}s"


def run(
    model: str,
    configs: Sequence[Config],
    out: Path,
    *,
    suite: str,
    bench: Any = None,
    jobs: int = 1,
    eval_kw: Mapping[str, Any] | None = None,
    eval_fn: Callable[[str, Config, Path], None] | None = None,
    bench_fn: Callable[[str, Config, Path], None] | None = None,
    request: dict[str, Any] | None = None,
    planned: Sequence[Config] | None = None,
    shard_label: str | None = None,
    bench_pcts: Sequence[float] | None = None,
    log: Callable[[str], None] = print,
) -> list[Stage]:
    """Run every unfinished stage of `configs`; return the stages that ran.

    `bench` is a widthwise.bench.BenchConfig, or None for no bench; `bench_pcts` the pruned widths that get
    one (None: every one). Evaluations are independent and, with
    jobs > 1, run in that many processes (one torch thread each is the evaluation default, so two jobs
    fill a 2-core machine). eval_kw (device, backend, devices) goes to every evaluation. Benches always run
    one at a time, after every evaluation, because a bench timed beside other work measures the other work.

    Before any stage runs, the plan of the whole sweep (`planned`, default `configs`; this run is shard
    `shard_label` of it) is written beside the Results, so that `check` fails on whatever it lacks.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    _manifest(out, {**(request or {}), "model": model, "suite": suite, "configs": [c.label for c in configs]})
    write_plan(
        out / "results", plan_of(model, planned or configs, configs, suite, bench, shard_label, bench_pcts)
    )
    if jobs < 1:
        raise WidthwiseError(f"--jobs must be at least 1, got {jobs}")
    if jobs > 1 and (eval_fn or bench_fn):
        raise WidthwiseError("custom stage functions run in this process only (jobs=1)")

    stages = [Stage(c, "eval", result_path(out, "eval", c)) for c in configs]
    # The bench compares base and pruned inside one run, so the base needs no bench stage of its own.
    if bench is not None:
        stages += [
            Stage(c, "bench", result_path(out, "bench", c))
            for c in configs
            if not c.is_base and (bench_pcts is None or pct_in(c.pct, bench_pcts))
        ]
    todo = [s for s in stages if not _done(s)]
    if len(todo) < len(stages):
        log(f"sweep: {len(stages) - len(todo)} of {len(stages)} stages already done in {out}, skipping them")
    progress = _Progress(todo, log, jobs=jobs)
    evals = [s for s in todo if s.name == "eval"]
    benches = [s for s in todo if s.name == "bench"]
    if jobs > 1 and len(evals) > 1:
        import concurrent.futures as cf
        import multiprocessing

        ctx = multiprocessing.get_context("spawn")  # a fresh interpreter: no forked torch thread pools
        with cf.ProcessPoolExecutor(min(jobs, len(evals)), mp_context=ctx) as pool:
            # A stage waits in the pool's queue before it runs: the worker says when it starts and
            # measures its own run, so "done in" and the estimate are run times, not queue plus run.
            log(f"sweep: {len(evals)} evaluations, {min(jobs, len(evals))} at a time")
            running = {
                pool.submit(timed_eval_stage, model, st.config, st.path, suite, eval_kw): st for st in evals
            }
            for fut in cf.as_completed(running):
                took = fut.result()  # re-raises a stage's error here
                progress.done(running[fut], took=took)
    else:
        for st in evals:
            progress.start(st)
            (eval_fn or partial(eval_stage, suite=suite, eval_kw=eval_kw))(model, st.config, st.path)
            progress.done(st)
    for st in benches:
        progress.start(st)
        device = (eval_kw or {}).get("device", "cpu")
        stage = bench_fn or partial(bench_stage, bench=bench, suite=suite, device=device, log=log)
        stage(model, st.config, st.path)
        progress.done(st)
    return progress.finished


class _Progress:
    """One line when a stage starts and one when it ends, with elapsed and estimated remaining time.

    The estimate takes each kind of stage (eval, bench) from finished stages of that kind that did real
    work: a cached evaluation returns in seconds and would promise a 17-minute sweep in one minute.
    Evaluations run `jobs` at a time, benches one at a time."""

    REAL_WORK_S = 30.0

    def __init__(self, todo: Sequence[Stage], log: Callable[[str], None], jobs: int = 1) -> None:
        self.todo, self.log, self.jobs, self.t0 = list(todo), log, jobs, time.perf_counter()
        self.started: dict[str, float] = {}
        self.finished: list[Stage] = []
        self.took: dict[str, list[float]] = {}

    def start(self, st: Stage) -> None:
        self.started[str(st.path)] = time.perf_counter()
        self.log(f"sweep {st.config.label} {st.name} ...")

    def remaining(self) -> str:
        done = {str(s.path) for s in self.finished}
        left = [s for s in self.todo if str(s.path) not in done]
        if not left:
            return "nothing left"
        total = 0.0
        for name in dict.fromkeys(s.name for s in left):
            real = [t for t in self.took.get(name, []) if t >= self.REAL_WORK_S]
            if not real:
                return f"time left unknown until one {name} stage runs uncached"
            n = sum(s.name == name for s in left)
            total += sum(real) / len(real) * (math.ceil(n / self.jobs) if name == "eval" else n)
        return f"about {_fmt(total)} to go"

    def done(self, st: Stage, took: float | None = None) -> None:
        """`took`: the run time a worker process measured (its start is not seen here)."""
        now = time.perf_counter()
        self.finished.append(st)
        self.took.setdefault(st.name, []).append(
            took if took is not None else now - self.started[str(st.path)]
        )
        self.log(
            f"sweep [{len(self.finished)}/{len(self.todo)}] {st.config.label} {st.name} done in "
            f"{_fmt(self.took[st.name][-1])}; elapsed {_fmt(now - self.t0)}, {self.remaining()}"
        )


def timed_eval_stage(
    model: str, config: Config, path: Path, suite: str, eval_kw: Mapping[str, Any] | None = None
) -> float:
    """eval_stage in a worker process: announce the start when it really starts, return the run's seconds."""
    print(f"sweep {config.label} eval ...", flush=True)
    t0 = time.perf_counter()
    eval_stage(model, config, path, suite, eval_kw)
    return time.perf_counter() - t0


def eval_stage(
    model: str, config: Config, path: Path, suite: str, eval_kw: Mapping[str, Any] | None = None
) -> None:
    """Load, prune in memory, evaluate, write: one configuration (a top-level function, so a process pool
    can run it)."""
    from widthwise.evaluation import check_inputs, evaluate, set_threads
    from widthwise.models import load_model
    from widthwise.prune import prune_model

    kw = dict(eval_kw or {})
    device = kw.pop("device", "cpu")
    # Per-task checkpoints live beside the sweep's Results (not under results/), so a killed shard's
    # finished tasks travel with its folder and a rerun resumes there (evaluation/pertask.py).
    checkpoints = Path(path).parents[2] / CHECKPOINTS
    inputs = check_inputs(suite, device=device, **kw)  # refuse before loading anything
    set_threads()
    loaded = load_model(model, device=inputs.device)
    report = prune_model(loaded.model, config.spec) if config.spec else None
    outcome = evaluate(loaded, report, inputs, checkpoints=checkpoints, log=_log)
    write_result(outcome.result, path)


def bench_stage(
    model: str,
    config: Config,
    path: Path,
    *,
    bench: Any,
    suite: str,
    device: Any,
    log: Callable[[str], None] = print,
) -> None:
    """Bench the base model and this configuration interleaved; write the pruned Result at `path` and the
    base's beside it. Only an incomplete pair (interrupted between its two files) is overwritten."""
    from widthwise.bench import base_result_path
    from widthwise.bench import bench as run_bench
    from widthwise.bench.models import load_bench_model
    from widthwise.device import resolve
    from widthwise.evaluation import get_suite
    from widthwise.prune import pruned_copy

    assert config.spec is not None, "the base model has no bench stage of its own"
    workloads = bench.load_workloads()  # refuse bad workloads before loading the model
    dev = resolve(device)
    loaded = load_bench_model(model, dtype=dev.dtype_name, device=dev)
    outcome = run_bench(
        loaded,
        pruned_copy(loaded.model, config.spec),
        bench,
        device=dev,
        tier=get_suite(suite).tier,
        workloads=workloads,
    )
    write_result(outcome.results["base"], base_result_path(path), overwrite=True)
    write_result(outcome.results["pruned"], path, overwrite=True)
    log(outcome.tables(model, config.label))


def finish(out: Path, thresholds: Path | None = None) -> tuple[Any, list[Path]]:
    """Report and check a whole sweep's Results (a shard's are checked merged, by `widthwise check`):
    the Check (verdicts, exit code) and the report's files."""
    from widthwise import claims, report
    from widthwise.plan import read_plans
    from widthwise.results import collect_results

    results = collect_results([Path(out) / "results"])
    path = thresholds or claims.default_thresholds()
    claim_list = claims.load_thresholds(path)
    plans = read_plans([Path(out) / "results"])
    written = report.report(results, Path(out) / "report", claim_list, plans=plans).paths
    return claims.check(results, claim_list, plans=plans, where=str(path)), written
