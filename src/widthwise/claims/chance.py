"""Chance levels (chance.toml) and each score's distance above them, for the report and the kinds.

A claim that a robust metric "holds" means nothing when the metric sits at chance: a collapsed model
holds it too. The report shows, per model and metric a claim names, how far the base and the worst
pruned configuration are above chance; keeps_above_chance claims are stated against it.
"""

from __future__ import annotations

import functools
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

from widthwise.points import Group


@dataclass(frozen=True)
class Chance:
    value: float | None  # None: no chance level is known (why says so)
    why: str


@functools.cache
def levels() -> dict[str, Chance]:
    text = resources.files("widthwise.claims").joinpath("chance.toml").read_text(encoding="utf-8")
    return {
        k: Chance(t.get("value"), " ".join(t["why"].split()))
        for k, t in tomllib.loads(text)["metrics"].items()
    }


def chance_of(metric: str) -> Chance | None:
    return levels().get(metric)


@dataclass(frozen=True)
class Distance:
    tier: str
    model: str
    metric: str
    chance: float
    base: float | None  # base value - chance
    worst: float | None  # lowest (value - chance) over the pruned configurations with a value
    worst_at: str


def distances(groups: Sequence[Group], metrics: Sequence[str]) -> list[Distance]:
    """Base and worst pruned distance above chance of each metric (with a known chance) per group."""
    out = []
    for g in groups:
        for m in dict.fromkeys(metrics):
            c = chance_of(m)
            if c is None or c.value is None:
                continue
            vals: list[tuple[Any, float]] = []
            for p in g.points:
                e = p.metrics.get(m, (None, None))[0]
                if e is not None and e.get("value") is not None:
                    vals.append((p, float(e["value"]) - c.value))
            if not vals:
                continue
            base = next((d for p, d in vals if p.is_base), None)
            pruned = [(p, d) for p, d in vals if not p.is_base]
            worst = min(pruned, key=lambda x: x[1]) if pruned else None
            out.append(
                Distance(
                    g.tier,
                    g.model,
                    m,
                    c.value,
                    base,
                    worst[1] if worst else None,
                    worst[0].label if worst else "—",
                )
            )
    return out
