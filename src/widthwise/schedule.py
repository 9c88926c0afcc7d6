"""How a sweep spreads its evaluations over worker processes: units of task families, longest first.

One configuration is one evaluation of every task family of a suite. Whole configurations on `jobs`
workers can leave a worker idle for most of the run: the main job's three (base, PPM 40% and ppm-reverse
40%) on two cores put two on one worker while the other stops after the base. A unit is some of one
configuration's families: `widthwise.evaluation.run.evaluate(..., families=...)` runs a unit into the
configuration's checkpoints, and the configuration's Result is assembled from them once every unit of it
is done (the same cache key, the same records as an unsplit evaluation).

Pure functions: cost estimates in, units out. `split` cuts configurations only as far as a longest-first
schedule needs to finish close to total/jobs, since every unit pays for starting (loading the suite's
tasks and the model, pruning it). A process pool that hands the next unit, in the order `split` returns,
to whichever worker frees first runs exactly that longest-first schedule when the estimates hold.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from widthwise.names import canonical_method, model_key

# What starting a unit costs, in seconds of the stored profiles (suite and task loading 10 s, model load and
# pruning 5 s, measured on the project's 2-core machine). Only used when the costs are measured seconds.
UNIT_OVERHEAD_S = 15.0
# `split` stops once the schedule is within this share of its lower bound: a further cut costs a unit's
# start for less than the share saves.
SLACK = 0.03


@dataclass(frozen=True)
class Unit:
    """Families of one configuration (`label`) run by one worker; `part` of `parts` of that configuration."""

    label: str
    families: tuple[str, ...]
    cost: float  # estimated, the unit's start included
    part: int = 1
    parts: int = 1

    @property
    def whole(self) -> bool:
        return self.parts == 1


def longest_first(units: Sequence[Unit], jobs: int) -> list[list[Unit]]:
    """Each worker's units when every unit, longest first, goes to the worker that frees first (the
    lowest-numbered one on a tie)."""
    if jobs < 1:
        raise ValueError("jobs must be at least 1")
    workers: list[list[Unit]] = [[] for _ in range(jobs)]
    load = [0.0] * jobs
    for u in order(units):
        w = min(range(jobs), key=lambda i: (load[i], i))
        workers[w].append(u)
        load[w] += u.cost
    return workers


def order(units: Sequence[Unit]) -> list[Unit]:
    """Longest first; ties by configuration and part, so that the order is the same on every machine."""
    return sorted(units, key=lambda u: (-u.cost, u.label, u.part))


def makespan(workers: Sequence[Sequence[Unit]]) -> float:
    return max((sum(u.cost for u in w) for w in workers), default=0.0)


def _halves(families: Sequence[str], cost: Mapping[str, float]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Two sets of families of near-equal cost (greedy: each family, costliest first, to the lighter
    half), each kept in the suite's order."""
    sides: tuple[list[str], list[str]] = ([], [])
    load = [0.0, 0.0]
    for f in sorted(families, key=lambda f: (-cost[f], f)):
        i = 0 if load[0] <= load[1] else 1
        sides[i].append(f)
        load[i] += cost[f]
    first, second = ({f for f in side} for side in sides)
    return tuple(f for f in families if f in first), tuple(f for f in families if f in second)


def _units(pieces: Mapping[str, list[tuple[str, ...]]], costs: Mapping[str, Mapping[str, float]],
           overhead: float) -> list[Unit]:  # fmt: skip
    out = []
    for label, parts in pieces.items():
        suite_order = list(costs[label])
        parts = sorted(parts, key=lambda fams: suite_order.index(fams[0]))
        for i, fams in enumerate(parts, 1):
            cost = sum(costs[label][f] for f in fams) + overhead
            out.append(Unit(label, fams, cost, i, len(parts)))
    return order(out)


def split(costs: Mapping[str, Mapping[str, float]], jobs: int, overhead: float = 0.0) -> list[Unit]:
    """Units for `jobs` workers, longest first: each configuration (label -> family -> estimated seconds, in
    the suite's order) whole, unless cutting it brings the longest-first makespan closer to total/jobs.

    Repeatedly halves the costliest unit that has two families or more, keeping the best schedule seen
    (each unit costs `overhead` to start, so a cut that does not shorten the schedule is not kept), until
    the makespan is within SLACK of its lower bound or every unit is one family."""
    if jobs < 1:
        raise ValueError("jobs must be at least 1")
    pieces: dict[str, list[tuple[str, ...]]] = {label: [tuple(fams)] for label, fams in costs.items() if fams}
    best = _units(pieces, costs, overhead)
    best_span = makespan(longest_first(best, jobs))
    total = sum(sum(c.values()) for c in costs.values())
    biggest = max((max(c.values()) for c in costs.values() if c), default=0.0)
    while True:
        units = _units(pieces, costs, overhead)
        bound = max((total + len(units) * overhead) / jobs, biggest + overhead)
        if best_span <= bound * (1 + SLACK):
            break
        cuttable = [u for u in units if len(u.families) > 1]
        if not cuttable:
            break
        u = cuttable[0]  # units are longest first
        pieces[u.label].remove(u.families)
        pieces[u.label] += list(_halves(u.families, costs[u.label]))
        units = _units(pieces, costs, overhead)
        span = makespan(longest_first(units, jobs))
        if span < best_span - 1e-9:
            best, best_span = units, span
    return best


def profile_seconds(result: Mapping[str, Any]) -> dict[str, float]:
    """Each family's measured seconds in a Result's provenance.profile (empty when it has none)."""
    tasks = ((result.get("provenance") or {}).get("profile") or {}).get("tasks") or {}
    return {t: float(v["seconds"]) for t, v in tasks.items() if isinstance(v, dict) and v.get("seconds")}


def estimate(
    configs: Sequence[tuple[str, str | None, float]],
    families: Sequence[str],
    model: str,
    stored: Sequence[Mapping[str, Any]] = (),
) -> tuple[dict[str, dict[str, float]], bool]:
    """Each configuration's (label, method or None for the base, pct) cost per family, and whether the
    costs are measured seconds: from the stored Result of `model` at the same configuration, else at the
    nearest pct (a narrower model is faster), else 1 per family. A family the profile lacks costs that
    profile's mean."""
    profiles = []
    for r in stored:
        secs = profile_seconds(r)
        if secs and model_key(r["model"]["name"]) == model_key(model):
            pr = r.get("pruning")
            if pr:
                profiles.append((canonical_method(pr["method"]), float(pr["pct"]), secs))
            else:
                profiles.append((None, 0.0, secs))
    out: dict[str, dict[str, float]] = {}
    for label, method, pct in configs:
        method = canonical_method(method) if method else None
        pct = 0.0 if method is None else float(pct)
        if not profiles:
            out[label] = dict.fromkeys(families, 1.0)
            continue
        _, _, secs = min(profiles, key=lambda p: (abs(p[1] - pct), p[0] != method, p[1], str(p[0])))
        mean = sum(secs.values()) / len(secs)
        out[label] = {f: secs.get(f, mean) for f in families}
    return out, bool(profiles)
