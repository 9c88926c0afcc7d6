"""The main job: prune -> evaluate -> bench over a list of configurations, then check and report.

A sweep writes plain files into its output folder, one Result per (configuration, stage):

    DIR/sweep.json                         what was asked (model, suite, configurations); a rerun must match
    DIR/results/eval/<label>.json          widthwise eval Results
    DIR/results/bench/<label>.json         widthwise bench Results (pruned; the interleaved base beside it)
    DIR/report/                            claims table and plots (unsharded runs; shards are merged by check)

A finished file is never redone, so an interrupted sweep resumes where it stopped. `--shard i/n` runs every
n-th configuration starting at the i-th, so a CI matrix spreads one sweep over n runners and
`widthwise check DIR1 DIR2 ...` merges them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from widthwise.errors import WidthwiseError
from widthwise.prune import canonical_method, width_from_pct
from widthwise.results import atomic_write_text, read_result

CONTROLS = ("random", "ppm-reverse")


@dataclass(frozen=True)
class Config:
    """One point of a sweep: the base model (pct 0) or a method at a pruning percentage."""

    method: str
    pct: float

    @property
    def is_base(self) -> bool:
        return self.pct == 0

    @property
    def label(self) -> str:
        return "base" if self.is_base else f"{self.method}-pct{self.pct:g}"


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


@dataclass
class Stage:
    config: Config
    name: str  # "eval" or "bench"
    path: Path


def _bench_base(path: Path) -> Path:
    return path.with_name(path.name.removesuffix(".json") + ".base.json")


def _done(stage: Stage) -> bool:
    paths = [stage.path] + ([_bench_base(stage.path)] if stage.name == "bench" else [])
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
    bench: bool,
    bench_args: Sequence[str] = (),
    eval_fn: Callable[[str, Config, Path], None] | None = None,
    bench_fn: Callable[[str, Config, Path], None] | None = None,
    request: dict[str, Any] | None = None,
    log: Callable[[str], None] = print,
) -> list[Stage]:
    """Run every unfinished stage of `configs`; return the stages that ran."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    _manifest(out, {**(request or {}), "model": model, "suite": suite, "configs": [c.label for c in configs]})
    eval_fn = eval_fn or _eval_stage(suite)
    bench_fn = bench_fn or _bench_stage(bench_args)

    stages = [Stage(c, "eval", result_path(out, "eval", c)) for c in configs]
    # The bench compares base and pruned inside one run, so the base needs no bench stage of its own.
    if bench:
        stages += [Stage(c, "bench", result_path(out, "bench", c)) for c in configs if not c.is_base]
    todo = [s for s in stages if not _done(s)]
    if len(todo) < len(stages):
        log(f"sweep: {len(stages) - len(todo)} of {len(stages)} stages already done in {out}, skipping them")
    t0, ran = time.perf_counter(), []
    for n, stage in enumerate(todo, 1):
        t = time.perf_counter()
        log(f"sweep [{n}/{len(todo)}] {stage.config.label} {stage.name} ...")
        (eval_fn if stage.name == "eval" else bench_fn)(model, stage.config, stage.path)
        ran.append(stage)
        elapsed = time.perf_counter() - t0
        remaining = elapsed / n * (len(todo) - n)
        took = _fmt(time.perf_counter() - t)
        log(
            f"sweep [{n}/{len(todo)}] {stage.config.label} {stage.name} done in {took}"
            f"; elapsed {_fmt(elapsed)}, about {_fmt(remaining)} to go"
        )
    return ran


def _eval_stage(suite: str) -> Callable[[str, Config, Path], None]:
    def stage(model: str, config: Config, path: Path) -> None:
        from widthwise.evaluate import evaluate
        from widthwise.results import write_result

        kw = {} if config.is_base else {"pct": config.pct, "method": config.method}
        outcome = evaluate(model, suite, **kw)
        write_result(outcome.result, path)

    return stage


def _bench_stage(extra: Sequence[str]) -> Callable[[str, Config, Path], None]:
    def stage(model: str, config: Config, path: Path) -> None:
        from widthwise.cli import main

        argv = ["bench", model, "--pct", f"{config.pct:g}", "--method", config.method, "--out", str(path)]
        # Only an incomplete pair (interrupted between its two files) is here to be overwritten.
        code = main(
            [*argv, *extra, "--force"] if path.exists() or _bench_base(path).exists() else [*argv, *extra]
        )
        if code != 0:
            raise WidthwiseError(f"bench of {config.label} failed (exit {code})")

    return stage


def describe(configs: Sequence[Config]) -> list[dict[str, Any]]:
    return [asdict(c) | {"label": c.label} for c in configs]
