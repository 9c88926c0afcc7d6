"""What a run was meant to cover, written before it runs, so that `check` can tell absent from unplanned.

A sweep writes one plan file per shard into its results folder:

    DIR/results/plans/<shard>.plan.json    (all.plan.json unsharded, shard-2-of-7.plan.json for --shard 2/7)

Every shard's file holds the whole sweep (every configuration of every shard), so a shard that fails,
is cancelled or never uploads its artifact is still named by the files of the shards that did: its
configurations are planned and absent, and the check fails on them. Plans merge by union.

    {"schema": "widthwise.plan/1", "tier", "suite", "model", "tasks": [...],
     "configs": [{"method": "base" | "ppm" | "random" | ..., "pct": float}],
     "bench": null | {"workloads": [...], "batch_sizes": [...], "pcts": null | [pruned pcts benched],
               "methods": absent | [methods benched] (the sweep's own, not its controls)},
     "shard": null | "i/n", "shard_configs": [labels run by this shard]}
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from widthwise.errors import WidthwiseError
from widthwise.names import canonical_method, model_key
from widthwise.results import PLAN_SUFFIX, TIERS, atomic_write_text
from widthwise.widths import pct_in

SCHEMA = "widthwise.plan/1"
SUFFIX = PLAN_SUFFIX
FOLDER = "plans"


@dataclass(frozen=True)
class Planned:
    """One planned configuration: the base model (method None) or a method at a pruning percentage."""

    method: str | None
    pct: float

    @property
    def is_base(self) -> bool:
        return self.method is None

    def names(self, method: str | None, pct: float | None) -> bool:
        """Is (canonical method, pct) this configuration? The base is the base whatever pct it carries."""
        if self.is_base:
            return method is None
        return method == self.method and pct is not None and abs(pct - self.pct) < 1e-9


@dataclass(frozen=True)
class Plan:
    tier: str
    suite: str
    model: str
    tasks: tuple[str, ...]
    configs: tuple[Planned, ...]
    bench_cells: tuple[str, ...] = ()  # "<workload>_b<B>" every benched configuration must give
    source: str = ""  # the file(s) it was read from
    bench_pcts: tuple[float, ...] | None = None  # the pruned widths benched; None: every one
    bench_methods: tuple[str, ...] | None = None  # the methods benched; None: every one

    def benches(self, pct: float, method: str | None = None) -> bool:
        """Is the pruned configuration at `pct` (of `method`, when given) planned to have a bench?"""
        if not self.bench_cells:
            return False
        if method is not None and self.bench_methods is not None and method not in self.bench_methods:
            return False
        return self.bench_pcts is None or pct_in(pct, self.bench_pcts)

    @property
    def key(self) -> tuple[str, str]:
        return self.tier, model_key(self.model)


def plan_dict(
    *,
    tier: str,
    suite: str,
    model: str,
    tasks: Sequence[str],
    configs: Iterable[tuple[str | None, float]],
    bench: Mapping[str, Sequence[Any]] | None,
    shard: str | None,
    shard_configs: Sequence[str],
) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "tier": tier,
        "suite": suite,
        "model": model,
        "tasks": sorted(tasks),
        "configs": [{"method": m or "base", "pct": float(p)} for m, p in configs],
        "bench": None if bench is None else {k: list(v) for k, v in bench.items()},
        "shard": shard,
        "shard_configs": list(shard_configs),
    }


def plan_path(results_dir: Path, shard: str | None) -> Path:
    name = "all" if shard is None else "shard-" + shard.replace("/", "-of-")
    return Path(results_dir) / FOLDER / f"{name}{SUFFIX}"


GROWS = ("configs", "shard_configs")  # a rerun into the same folder may add configurations (as sweep.json)


def write_plan(results_dir: Path, plan: Mapping[str, Any]) -> Path:
    """Write this shard's plan. A rerun may add configurations (the plan grows by union); one that plans
    another model, suite, tier, task list or bench is refused, not mixed in."""
    path = plan_path(results_dir, plan.get("shard"))
    new = dict(plan)
    if path.exists():
        old = json.loads(path.read_text(encoding="utf-8"))
        diff = sorted(k for k in set(old) | set(new) if k not in GROWS and old.get(k) != new.get(k))
        if diff:
            raise WidthwiseError(f"{path} holds another plan ({', '.join(diff)} differ); use another --out")
        for k in GROWS:
            new[k] = [*old.get(k, []), *(x for x in new.get(k, []) if x not in old.get(k, []))]
        if new == old:
            return path
    return atomic_write_text(path, json.dumps(new, indent=1, sort_keys=True) + "\n", overwrite=path.exists())


def is_plan_file(path: Path) -> bool:
    return Path(path).name.endswith(SUFFIX)


def parse_plan(data: Any, where: str) -> Plan:
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise WidthwiseError(f"{where}: not a widthwise plan (schema {SCHEMA!r})")
    try:
        tier, suite, model = str(data["tier"]), str(data["suite"]), str(data["model"])
        configs = tuple(
            Planned(None if c["method"] == "base" else canonical_method(c["method"]), float(c["pct"]))
            for c in data["configs"]
        )
        tasks = tuple(str(t) for t in data["tasks"])
        bench = data.get("bench")
        cells = (
            tuple(f"{w}_b{int(b)}" for w in bench["workloads"] for b in bench["batch_sizes"]) if bench else ()
        )
        pcts = bench.get("pcts") if bench else None
        bench_pcts = None if pcts is None else tuple(float(x) for x in pcts)
        methods = bench.get("methods") if bench else None
        bench_methods = None if methods is None else tuple(canonical_method(str(m)) for m in methods)
    except (KeyError, TypeError, ValueError) as e:
        raise WidthwiseError(f"{where}: malformed plan ({e!r})") from None
    if tier not in TIERS:
        raise WidthwiseError(f"{where}: unknown tier {tier!r}")
    return Plan(tier, suite, model, tasks, configs, cells, where, bench_pcts, bench_methods)


def plan_files(paths: Iterable[Path]) -> list[Path]:
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out.extend(sorted(f for f in p.rglob(f"*{SUFFIX}")))
        elif is_plan_file(p):
            out.append(p)
    return out


def read_plans(paths: Iterable[Path]) -> list[Plan]:
    """Every plan under these paths, merged per (tier, model) by union (shards of one sweep, or sweeps of
    one tier run as separate jobs)."""
    plans = []
    for f in plan_files(paths):
        try:
            data = json.loads(f.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as e:
            raise WidthwiseError(f"{f}: cannot read the plan ({e})") from None
        plans.append(parse_plan(data, str(f)))
    return merge(plans)


def merge(plans: Sequence[Plan]) -> list[Plan]:
    by: dict[tuple[str, str], list[Plan]] = {}
    for p in plans:
        by.setdefault(p.key, []).append(p)
    out = []
    for ps in by.values():
        suites = {p.suite for p in ps}
        if len(suites) > 1:
            raise WidthwiseError(
                f"plans for {ps[0].model} [{ps[0].tier}] name different suites "
                f"({', '.join(sorted(suites))}): {', '.join(p.source for p in ps)}"
            )
        limited = [p.bench_pcts for p in ps if p.bench_cells]
        bench_pcts = (
            None
            if not limited or any(b is None for b in limited)
            else tuple(sorted({x for b in limited for x in b if b is not None}))
        )
        named = [p.bench_methods for p in ps if p.bench_cells]
        every = not named or any(m is None for m in named)
        bench_methods = None if every else tuple(sorted({x for m in named if m for x in m}))
        out.append(
            Plan(
                ps[0].tier,
                ps[0].suite,
                ps[0].model,
                tuple(sorted({t for p in ps for t in p.tasks})),
                tuple(dict.fromkeys(c for p in ps for c in p.configs)),
                tuple(dict.fromkeys(c for p in ps for c in p.bench_cells)),
                ", ".join(p.source for p in ps),
                bench_pcts,
                bench_methods,
            )
        )
    return sorted(out, key=lambda p: p.key)
