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
`widthwise check DIR1 DIR2 ...` merges them. With several workers, evaluations are spread over them in
units of task families (widthwise.schedule), so that no worker idles while another has two configurations
left; a configuration cut into units is assembled from their checkpoints into the Result an unsplit
evaluation gives. The check at the end also compares every configuration that has a stored baseline
(baselines/measured/<suite>) with it, document by document (widthwise.claims.regression).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

from widthwise import schedule
from widthwise.errors import WidthwiseError
from widthwise.names import config_slug
from widthwise.plan import plan_dict, write_plan
from widthwise.prune import PruneSpec, canonical_method, width_from_pct
from widthwise.results import atomic_write_text, read_result, write_result
from widthwise.widths import pct_in

# What a bare --controls runs: random selection and the method's own reverse (`reverse` in a list of
# controls is the swept method's reverse: ppm-reverse for ppm, wanda-reverse for a plug-in's wanda).
CONTROLS = ("random", "reverse")
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


def parse_methods(text: str | Sequence[str]) -> tuple[str, ...]:
    """`ppm` or `wanda,gate-up-down` -> the methods a sweep prunes with, each registered, in order."""
    names = [m.strip() for m in text.split(",")] if isinstance(text, str) else list(text)
    names = [m for m in names if m]
    if not names:
        raise WidthwiseError("--method is empty")
    try:
        return tuple(dict.fromkeys(canonical_method(m) for m in names))
    except WidthwiseError as e:
        raise WidthwiseError(f"--method {text}: {e}") from None


def swept(methods: Sequence[str]) -> tuple[str, ...]:
    """The methods a sweep runs: PPM, the paper's, first as the reference every other method's claims and
    report are read beside, then the methods asked for."""
    return tuple(dict.fromkeys(("ppm", *methods)))


def parse_controls(text: str, methods: str | Sequence[str] = ("ppm",)) -> tuple[str, ...]:
    """`random,reverse` -> the controls, each a registered pruning method (`reverse`: each of `methods`'s
    own, e.g. ppm-reverse for ppm); `none` -> none."""
    from widthwise.pruners import reverse_of

    methods = (methods,) if isinstance(methods, str) else tuple(methods)
    names = [c.strip() for c in text.split(",") if c.strip()]
    if names == ["none"]:
        return ()
    if not names:
        raise WidthwiseError("--controls is empty (name controls, or `none`)")
    out: list[str] = []
    try:
        for c in names:
            out += [reverse_of(m) for m in methods] if c == "reverse" else [canonical_method(c)]
    except WidthwiseError as e:
        raise WidthwiseError(f"--controls {text}: {e}") from None
    return tuple(dict.fromkeys(out))


def plan(
    pcts: Sequence[float],
    method: str | Sequence[str] = "ppm",
    controls: bool | Sequence[str] = False,
    control_pcts: Sequence[float] = (),
) -> list[Config]:
    """Base first (always: every claim compares against it), then PPM (the reference, when other methods
    are swept) and the methods, then the controls (`controls`: True for CONTROLS of the methods asked
    for, or the control methods to run)."""
    asked = parse_methods(method)
    methods = swept(asked)
    configs = [Config("base", 0.0)]
    configs += [Config(m, float(p)) for m in methods for p in pcts if p > 0]
    chosen = parse_controls(",".join(CONTROLS), asked) if controls is True else (controls or ())
    for c in map(canonical_method, chosen):
        if c not in methods:
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
    bench_methods: Sequence[str] | None = None,
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
            **({"methods": sorted(bench_methods)} if bench_methods is not None else {}),
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
    families: tuple[str, ...] | None = None  # a unit of an evaluation: these families into checkpoints
    part: str = ""  # which unit, e.g. "part 1/2"
    weight: float = 1.0  # estimated cost, relative to the other stages of its kind

    @property
    def key(self) -> tuple[str, str, tuple[str, ...] | None]:
        return str(self.path), self.name, self.families

    @property
    def title(self) -> str:
        return f"{self.config.label} {self.name}" + (f" {self.part}" if self.part else "")


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


def units_of(
    evals: Sequence[Stage],
    model: str,
    suite: str,
    jobs: int,
    profiles: Sequence[Mapping[str, Any]] = (),
    limit: int | None = None,
) -> tuple[list[tuple[Stage, list[Stage]]], bool]:
    """Each evaluation and the units it is cut into for `jobs` workers (none: it runs whole), each unit a
    Stage with weight = its estimated cost (widthwise.schedule.split); and whether the weights are seconds
    measured in `profiles` (stored Results of the suite) rather than one per family."""
    from widthwise.evaluation import get_suite

    families = [t.name for t in get_suite(suite, limit=limit).tasks]
    configs = [(st.config.label, None if st.config.is_base else st.config.method, st.config.pct)
               for st in evals]  # fmt: skip
    costs, measured = schedule.estimate(configs, families, model, profiles)
    overhead = schedule.UNIT_OVERHEAD_S if measured else 0.0
    units = schedule.split(costs, jobs, overhead)
    by_label = {st.config.label: st for st in evals}
    out: dict[str, tuple[Stage, list[Stage]]] = {}
    for u in units:
        st = by_label[u.label]
        whole, parts = out.setdefault(u.label, (replace(st, weight=u.cost), []))
        if not u.whole:
            parts.append(replace(st, families=u.families, part=f"part {u.part}/{u.parts}", weight=u.cost))
    for whole, parts in out.values():
        if parts:  # assembling a cut configuration runs no family: it costs a unit's start
            whole.weight = overhead
    return list(out.values()), measured


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
    bench_methods: Sequence[str] | None = None,
    profiles: Sequence[Mapping[str, Any]] = (),
    log: Callable[[str], None] = print,
) -> list[Stage]:
    """Run every unfinished stage of `configs`; return the stages that ran (one per configuration and
    stage, however an evaluation was cut into units).

    `bench` is a widthwise.bench.BenchConfig, or None for no bench; `bench_pcts` the pruned widths and
    `bench_methods` the methods that get one (None: every one). Evaluations are independent and, with
    jobs > 1, run in that many processes (one torch thread each is the evaluation default, so two jobs
    fill a 2-core machine), cut into units of task families where that balances the workers (units_of;
    `profiles`, stored Results of the suite, give each family's cost). eval_kw (device, backend, devices)
    goes to every evaluation. Benches always run one at a time, after every evaluation, because a bench
    timed beside other work measures the other work.

    Before any stage runs, the plan of the whole sweep (`planned`, default `configs`; this run is shard
    `shard_label` of it) is written beside the Results, so that `check` fails on whatever it lacks.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    _manifest(out, {**(request or {}), "model": model, "suite": suite, "configs": [c.label for c in configs]})
    the_plan = plan_of(
        model, planned or configs, configs, suite, bench, shard_label, bench_pcts, bench_methods
    )
    write_plan(out / "results", the_plan)
    if jobs < 1:
        raise WidthwiseError(f"--jobs must be at least 1, got {jobs}")
    if jobs > 1 and (eval_fn or bench_fn):
        raise WidthwiseError("custom stage functions run in this process only (jobs=1)")

    stages = [Stage(c, "eval", result_path(out, "eval", c)) for c in configs]
    # The bench compares base and pruned inside one run, so the base needs no bench stage of its own; the
    # controls get none (the efficiency of a width is the method's; a control's would time the same shapes).
    if bench is not None:
        stages += [
            Stage(c, "bench", result_path(out, "bench", c))
            for c in configs
            if not c.is_base
            and (bench_pcts is None or pct_in(c.pct, bench_pcts))
            and (bench_methods is None or c.method in bench_methods)
        ]
    todo = [s for s in stages if not _done(s)]
    if len(todo) < len(stages):
        log(f"sweep: {len(stages) - len(todo)} of {len(stages)} stages already done in {out}, skipping them")
    evals = [s for s in todo if s.name == "eval"]
    benches = [s for s in todo if s.name == "bench"]
    limit = (eval_kw or {}).get("limit")
    cut, measured = (
        units_of(evals, model, suite, jobs, profiles, limit) if jobs > 1 and evals else ([], False)
    )
    n_units = sum(len(parts) or 1 for _, parts in cut)
    if jobs > 1 and n_units > 1:
        whole = [w for w, _ in cut]
        progress = _Progress([*(p for _, parts in cut for p in parts), *whole, *benches], log, jobs=jobs)
        _run_pool(model, suite, eval_kw, cut, min(jobs, n_units), progress, log, measured)
    else:
        progress = _Progress(todo, log, jobs=jobs)
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
    return [st for st in progress.finished if st.families is None]


def _run_pool(
    model: str,
    suite: str,
    eval_kw: Mapping[str, Any] | None,
    cut: Sequence[tuple[Stage, list[Stage]]],
    workers: int,
    progress: _Progress,
    log: Callable[[str], None],
    measured: bool = False,
) -> None:
    """Every unit in a pool of `workers` processes, longest first; a cut configuration's Result is
    assembled (by a pool process, loading and pruning the model to name its checkpoints) once its last
    unit is done."""
    import concurrent.futures as cf
    import multiprocessing

    first = sorted([*(p for _, parts in cut for p in parts), *(w for w, parts in cut if not parts)],
                   key=lambda st: (-st.weight, st.config.label, st.part))  # fmt: skip
    left = {w.config.label: len(parts) for w, parts in cut}
    whole = {w.config.label: w for w, _ in cut}
    split = sum(1 for _, parts in cut if parts)
    estimate = schedule.makespan(
        schedule.longest_first([schedule.Unit(st.config.label, (), st.weight) for st in first], workers)
    )
    ctx = multiprocessing.get_context("spawn")  # a fresh interpreter: no forked torch thread pools
    with cf.ProcessPoolExecutor(workers, mp_context=ctx) as pool:
        # A stage waits in the pool's queue before it runs: the worker says when it starts and
        # measures its own run, so "done in" and the estimate are run times, not queue plus run.
        # The estimate is in the stored profiles' seconds, the machine that stored them (its GEMM probe
        # is in their provenance.profile): a slower machine takes proportionally longer.
        guess = f", estimated {_fmt(estimate)} as the stored baselines ran" if measured else ""
        log(
            f"sweep: {len(cut)} evaluations in {len(first)} units ({split} cut into parts of task families "
            f"to balance the workers), {workers} at a time, longest first{guess}"
            if split
            else f"sweep: {len(cut)} evaluations, {workers} at a time{guess}"
        )

        def submit(st: Stage) -> cf.Future:
            args = (model, st.config, st.path, suite, eval_kw, st.families, st.part)
            return pool.submit(timed_eval_stage, *args)

        running = {submit(st): st for st in first}
        while running:
            finished, _ = cf.wait(running, return_when=cf.FIRST_COMPLETED)
            for fut in sorted(finished, key=lambda f: running[f].title):
                st = running.pop(fut)
                progress.done(st, took=fut.result())  # re-raises a stage's error here
                if st.families is not None:
                    left[st.config.label] -= 1
                    if left[st.config.label] == 0:
                        running[submit(whole[st.config.label])] = whole[st.config.label]


class _Progress:
    """One line when a stage starts and one when it ends, with elapsed and estimated remaining time.

    The estimate takes each kind of stage (eval, bench) from finished stages of that kind that did real
    work: a cached evaluation returns in seconds and would promise a 17-minute sweep in one minute. A
    stage's weight (an evaluation's units are weighed by their estimated cost) scales what it is expected
    to take. Evaluations run `jobs` at a time, benches one at a time."""

    REAL_WORK_S = 30.0

    def __init__(self, todo: Sequence[Stage], log: Callable[[str], None], jobs: int = 1) -> None:
        self.todo, self.log, self.jobs, self.t0 = list(todo), log, jobs, time.perf_counter()
        self.started: dict[tuple, float] = {}
        self.finished: list[Stage] = []
        self.took: dict[str, list[tuple[float, float]]] = {}  # kind -> (seconds, weight) of finished stages

    def start(self, st: Stage) -> None:
        self.started[st.key] = time.perf_counter()
        self.log(f"sweep {st.title} ...")

    def remaining(self) -> str:
        done = {s.key for s in self.finished}
        left = [s for s in self.todo if s.key not in done]
        if not left:
            return "nothing left"
        total = 0.0
        for name in dict.fromkeys(s.name for s in left):
            real = [(t, w) for t, w in self.took.get(name, []) if t >= self.REAL_WORK_S and w > 0]
            if not real:
                return f"time left unknown until one {name} stage runs uncached"
            per_weight = sum(t for t, _ in real) / sum(w for _, w in real)
            mine = [s for s in left if s.name == name]
            work = per_weight * sum(s.weight for s in mine)
            total += work / min(self.jobs, len(mine)) if name == "eval" else work
        return f"about {_fmt(total)} to go"

    def done(self, st: Stage, took: float | None = None) -> None:
        """`took`: the run time a worker process measured (its start is not seen here)."""
        now = time.perf_counter()
        self.finished.append(st)
        seconds = took if took is not None else now - self.started[st.key]
        self.took.setdefault(st.name, []).append((seconds, st.weight))
        self.log(
            f"sweep [{len(self.finished)}/{len(self.todo)}] {st.title} done in "
            f"{_fmt(seconds)}; elapsed {_fmt(now - self.t0)}, {self.remaining()}"
        )


def timed_eval_stage(
    model: str,
    config: Config,
    path: Path,
    suite: str,
    eval_kw: Mapping[str, Any] | None = None,
    families: Sequence[str] | None = None,
    part: str = "",
) -> float:
    """eval_stage in a worker process: announce the start when it really starts, return the run's seconds."""
    print(f"sweep {config.label} eval{' ' + part if part else ''} ...", flush=True)
    t0 = time.perf_counter()
    eval_stage(model, config, path, suite, eval_kw, families)
    return time.perf_counter() - t0


def eval_stage(
    model: str,
    config: Config,
    path: Path,
    suite: str,
    eval_kw: Mapping[str, Any] | None = None,
    families: Sequence[str] | None = None,
) -> None:
    """Load, prune in memory, evaluate, write: one configuration (a top-level function, so a process pool
    can run it). With `families`, only those families run, into the configuration's checkpoints, and no
    Result is written: the call without `families` that follows its last unit assembles it."""
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
    report = prune_model(loaded.model, config.spec, loaded.tokenizer) if config.spec else None
    outcome = evaluate(loaded, report, inputs, checkpoints=checkpoints, families=families, log=_log)
    if families is None:
        assert outcome.result is not None
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
        pruned_copy(loaded.model, config.spec, loaded.tokenizer),
        bench,
        device=dev,
        tier=get_suite(suite).tier,
        workloads=workloads,
    )
    write_result(outcome.results["base"], base_result_path(path), overwrite=True)
    write_result(outcome.results["pruned"], path, overwrite=True)
    log(outcome.tables(model, config.label))


def stored_baselines(suite: str) -> Path | None:
    """baselines/measured/<suite>, the stored Results a sweep of `suite` is compared with (the CPU tier's for
    `cpu`, `smoke`'s for `smoke`): ./baselines first, else the checkout this package was installed from,
    as claims.default_thresholds finds thresholds.toml. None when the suite has none stored."""
    rel = Path("baselines") / "measured" / suite
    for root in (Path("."), Path(__file__).resolve().parents[2]):
        if (root / rel).is_dir():
            return root / rel
    return None


def check_sweep(out: Path, thresholds: Path | None = None, regression: Path | None = None) -> Any:
    """The check a sweep ends with: every claim on the sweep's Results against its plan and, with
    `regression` (a folder of stored Results), the regression gate of every configuration of the plan
    that has a stored baseline there, document by document (widthwise.claims.regression.check, limited as
    `check --regression-planned` is: a stored configuration the plan names but the sweep lacks is
    missing; a configuration with none stored is not compared)."""
    return _check(*_read(out, thresholds), regression)


def _read(out: Path, thresholds: Path | None) -> tuple[list[Any], list[Any], list[Any], str]:
    """A sweep's Results, the claims, its plans and where the claims came from."""
    from widthwise import claims
    from widthwise.plan import read_plans
    from widthwise.results import collect_results

    path = thresholds or claims.default_thresholds()
    results = collect_results([Path(out) / "results"])
    return results, claims.load_thresholds(path), read_plans([Path(out) / "results"]), str(path)


def _check(results: Any, claim_list: Any, plans: Any, where: str, regression: Path | None) -> Any:
    from widthwise import claims
    from widthwise.claims import regression as gate
    from widthwise.points import identity
    from widthwise.results import collect_results

    chk = claims.check(results, claim_list, plans=plans, where=where)
    if regression is None:
        return chk
    stored = gate.planned_baselines(collect_results([Path(regression)]), plans)
    if not stored:
        return chk
    kept = {(*identity(s), s.get("suite")) for s in stored}
    fresh = [r for r in results if r.get("samples") and (*identity(r), r.get("suite")) in kept]
    return replace(chk, verdicts=[*chk.verdicts, *gate.check(fresh, stored, max_changed=0)])


def finish(
    out: Path, thresholds: Path | None = None, regression: Path | None = None
) -> tuple[Any, list[Path]]:
    """Report and check a whole sweep's Results (a shard's are checked merged, by `widthwise check`):
    the Check (verdicts, exit code; check_sweep) and the report's files."""
    from widthwise import report

    results, claim_list, plans, where = _read(out, thresholds)
    try:
        chk = _check(results, claim_list, plans, where, regression)
    except WidthwiseError:
        report.report(results, Path(out) / "report", claim_list, plans=plans)  # the tables still help
        raise
    # The regression verdicts go into report.md beside the claims: the console points there for details.
    gate = [v for v in chk.verdicts if v.kind == "regression"]
    written = report.report(results, Path(out) / "report", claim_list, plans=plans, regression=gate).paths
    return chk, written


def timing_line(seconds: float, probe: Mapping[str, Any], load: Sequence[float] | None) -> str:
    """The sweep's last line: wall time beside what makes it comparable across machines, the GEMM probe
    (widthwise.device) and the load average (other work on the cores slows every stage)."""
    threads = int(probe.get("threads") or 1)
    kind = f"{threads} thread{'s' if threads != 1 else ''}"
    if probe.get("dtype") not in (None, "float32"):
        kind += f", {probe['dtype']}"
    where = f" on {probe['device']}" if probe.get("device") else ""
    busy = " ".join(f"{x:.1f}" for x in load) if load else "unknown"
    gemm = f"GEMM probe {probe['gflops']:g} GFLOP/s ({kind}){where}"
    return f"sweep: {_fmt(seconds)} end to end; {gemm}; load {busy}"
