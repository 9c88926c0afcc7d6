"""keeps_above_chance: pruning keeps at least `fraction` of the base model's distance above chance.

"Knowledge degrades gradually rather than collapsing" as a bound a model at chance fails: at each selected
configuration, pruned - chance >= fraction * (base - chance), i.e. the one-sided lower bound of
pruned - fraction * base - (1 - fraction) * chance is above 0. Paired per document when both sides carry
records scored by the metric (a paired bootstrap over documents); otherwise from the aggregates'
standard errors, which only the paper's tables may use (a measured tier without records is a gap).
"""

from __future__ import annotations

import math
from typing import Any

from widthwise import stats
from widthwise.claims.chance import chance_of
from widthwise.claims.evidence import (
    base_and_pruned,
    paired_records,
    samples,
    scored_by,
    selected,
    standard_error,
)
from widthwise.claims.registry import number, register_kind
from widthwise.claims.verdict import MEASURED_TIERS, Verdict, bounded, confidence, fmt, skipped
from widthwise.errors import WidthwiseError
from widthwise.points import Group


def _parse(cid: str, t: dict, kw: dict[str, Any]) -> None:
    if "fraction" not in t:
        raise WidthwiseError(f"claim {cid!r}: keeps_above_chance needs fraction (of base - chance)")
    kw["fraction"] = number(cid, "fraction", t["fraction"])
    if not 0 < kw["fraction"] < 1:
        raise WidthwiseError(f"claim {cid!r}: fraction must be in (0, 1)")
    c = chance_of(kw["metric"])
    if c is None or c.value is None:
        why = c.why if c else "not in claims/chance.toml"
        raise WidthwiseError(f"claim {cid!r}: {kw['metric']} has no chance level ({why})")


@register_kind("keeps_above_chance", keys={"fraction"}, select=True, parse=_parse)
def check_keeps(claim: Any, group: Group) -> list[Verdict]:
    """Pruned keeps at least `fraction` of base's distance above chance at each selected configuration."""
    chance = chance_of(claim.metric).value  # type: ignore[union-attr]  (parse refused None)
    f = claim.fraction
    task = claim.metric.split("/", 1)[0]
    out = []
    for pp in selected(claim, group):
        cfg = pp.label
        pair = base_and_pruned(claim, group, pp)
        if isinstance(pair, Verdict):
            out.append(pair)
            continue
        b, bres, p, pres = pair
        bv, pv = float(b["value"]), float(p["value"])
        bs, ps = samples(bres, task), samples(pres, task)
        if bs and ps and scored_by(claim.metric, bres, pres):
            pairs = paired_records(bs, ps, f"{claim.id}: {group.model} {cfg}")
            # mean(pruned_i - (f * base_i + (1 - f) * chance)) is exactly the distance to the bound.
            bd = stats.paired_bootstrap_bound(
                [f * float(x["correct"]) + (1 - f) * chance for x, _ in pairs],
                [float(y["correct"]) for _, y in pairs],
                claim.alpha,
                "lower",
            )
        elif group.tier in MEASURED_TIERS:
            why = f"unpaired: no per-document records of {task} scored by {claim.metric} on both sides"
            out.append(skipped(claim, group, cfg, why))
            continue
        else:
            sb, sp = standard_error(claim.metric, b), standard_error(claim.metric, p)
            if sb is None or sp is None:
                out.append(skipped(claim, group, cfg, "no stderr or n on one side"))
                continue
            bd = stats.normal_bound(pv, sp, f * bv + (1 - f) * chance, f * sb, claim.alpha, "lower")
        kept = (pv - chance) / (bv - chance) if bv != chance else math.nan
        out.append(
            bounded(
                claim,
                group,
                cfg,
                bd.bound > 0,
                bd,
                observed=f"{pv:.4g} vs base {bv:.4g}, chance {chance:g}: keeps {kept:.0%} of base - chance",
                bound=f"{confidence(claim.alpha, 'lower')} of pruned - ({f:g} base + {1 - f:g} chance) "
                f"{fmt(bd.bound)} > 0",
                threshold=0.0,
            )
        )
    return out
