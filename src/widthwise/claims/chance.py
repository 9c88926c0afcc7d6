"""Chance levels (chance.toml) and each score's distance above them, for the report and the kinds.

A claim that a robust metric "holds" means nothing when the metric sits at chance: a collapsed model
holds it too. The report shows, per model and metric a claim names, how far the base and the worst
pruned configuration are above chance; keeps_above_chance claims are stated against it.
"""

from __future__ import annotations

import functools
import math
import tomllib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

from widthwise.points import Group

# A position beats a uniform guess "clearly" when it holds more golds than a uniform guess expects by more
# than this many binomial sd: 3 keeps chance-level imbalance (HellaSwag's best position, +1.7 sd) out.
CLEAR_SD = 3.0


@dataclass(frozen=True)
class Chance:
    value: float | None  # None: no chance level is known (why says so)
    why: str
    rule: str | None = None  # how a computed value was computed (chance.toml header)
    split: str | None = None  # the split it was computed on ...
    n: int | None = None  # ... and its number of documents


@functools.cache
def levels() -> dict[str, Chance]:
    text = resources.files("widthwise.claims").joinpath("chance.toml").read_text(encoding="utf-8")
    return {
        k: Chance(t.get("value"), " ".join(t["why"].split()), t.get("rule"), t.get("split"), t.get("n"))
        for k, t in tomllib.loads(text)["metrics"].items()
    }


def content_free(golds: Sequence[int], ks: Sequence[int]) -> tuple[str, float]:
    """(rule, value): the score of the best content-free answer to documents with gold index golds[i] of
    ks[i] choices. Two choices: the majority class. More: a uniform guess (mean 1/k), unless one position
    is clearly over-represented (CLEAR_SD), and then always answering that position."""
    n, count = len(golds), Counter(golds)
    if set(ks) == {2}:
        return "majority class", max(count.values()) / n
    best = max(count, key=lambda j: (count[j], -j))
    p = [1 / k for k in ks if k > best]
    sd = math.sqrt(sum(x * (1 - x) for x in p))
    if sd > 0 and (count[best] - sum(p)) / sd > CLEAR_SD:
        return "constant position", count[best] / n
    return "uniform 1/k", sum(1 / k for k in ks) / n


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
