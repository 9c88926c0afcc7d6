"""Results grouped into points: one Point per (tier, model, configuration), one Group per (tier, model).

Claims, the report and the regression gate all read Results this way. Results for one point are merged,
so eval and bench shards made on different machines check together; a metric given twice with two values
is refused. A base Result that a bench run wrote beside its pruned partner (one bench run measures both,
interleaved) becomes that configuration's reference instead of competing for the base model's point.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from widthwise.errors import WidthwiseError
from widthwise.names import canonical_method, config_label, model_key


@dataclass
class Point:
    tier: str
    model: str
    method: str | None  # None for the base model
    pct: float | None
    k: int | None
    ratio: float
    label: str
    metrics: dict[str, tuple[dict, dict]] = field(default_factory=dict)  # key -> (entry, source Result)
    # The base model as measured in the same bench run (interleaved with this configuration): a ratio
    # is taken against it rather than against a base measured at another time.
    refs: dict[str, tuple[dict, dict]] = field(default_factory=dict)

    @property
    def is_base(self) -> bool:
        return self.method is None


@dataclass
class Group:
    tier: str
    model: str
    points: list[Point]  # base first, then by decreasing expansion ratio

    @property
    def base(self) -> Point | None:
        return self.points[0] if self.points and self.points[0].is_base else None


def identity(result: Mapping[str, Any]) -> tuple:
    """What a Result measures: tier, model and configuration (not which stage, when or where)."""
    pr = result.get("pruning")
    method = canonical_method(pr["method"]) if pr else None
    return (
        result["tier"],
        model_key(result["model"]["name"]),
        method,
        pr.get("intermediate_size") if pr else None,
    )


def bench_run(result: Mapping[str, Any]) -> tuple[str, str] | None:
    """(run id, role) of a Result that the bench wrote beside its partner, else None.

    One bench run measures the base and one pruned model interleaved and writes both with the same
    bench.run_id; Results from before run_id existed share their device facts (with the run's wall
    time), which identify the run as well.
    """
    b = result.get("bench")
    if not isinstance(b, dict) or b.get("role") not in ("base", "pruned"):
        return None
    if b.get("run_id"):
        return str(b["run_id"]), b["role"]
    if "device" not in b:
        return None
    run = hashlib.sha256(json.dumps(b["device"], sort_keys=True, default=str).encode()).hexdigest()
    return run, b["role"]


def group_results(results: Iterable[Mapping[str, Any]]) -> list[Group]:
    """Merge Results per (tier, model, configuration); groups sorted by (tier, model key)."""
    results = list(results)
    runs: dict[str, dict[str, Mapping[str, Any]]] = {}
    for r in results:
        br = bench_run(r)
        if br:
            runs.setdefault(br[0], {})[br[1]] = r
    partnered = {id(rs["base"]) for rs in runs.values() if "base" in rs and "pruned" in rs}
    pts: dict[tuple, Point] = {}
    names: dict[tuple, str] = {}
    for r in results:
        if id(r) in partnered:
            continue
        key = identity(r)
        tier, mk, method, k = key
        names.setdefault((tier, mk), r["model"]["name"])
        if key not in pts:
            pr = r.get("pruning")
            ratio = float(r["expansion_ratio"])
            pts[key] = Point(
                tier,
                names[(tier, mk)],
                method,
                pr.get("pct") if pr else None,
                k,
                ratio,
                config_label(pr, ratio),
            )
        p = pts[key]
        for mkey, entry in r["metrics"].items():
            if mkey in p.metrics and p.metrics[mkey][0].get("value") != entry.get("value"):
                other = p.metrics[mkey][1]
                raise WidthwiseError(
                    f"two Results give {mkey} for {p.model} {p.label} [{tier}]: "
                    f"{p.metrics[mkey][0].get('value')} (suite {other.get('suite')!r}) and "
                    f"{entry.get('value')} (suite {r.get('suite')!r}); pass one of them"
                )
            p.metrics[mkey] = (entry, r)
        br = bench_run(r)
        if br and br[1] == "pruned" and "base" in runs[br[0]]:
            partner = runs[br[0]]["base"]
            p.refs.update({k: (e, partner) for k, e in partner["metrics"].items()})
    groups: dict[tuple, list[Point]] = {}
    for (tier, mk, *_), p in pts.items():
        groups.setdefault((tier, mk), []).append(p)
    out = []
    for (tier, mk), ps in sorted(groups.items()):
        ps.sort(key=lambda p: (not p.is_base, -p.ratio))
        out.append(Group(tier, names[(tier, mk)], ps))
    return out
