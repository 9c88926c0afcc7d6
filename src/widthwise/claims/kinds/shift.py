"""score_shift: a bound on the paired mean change of a per-document continuous score.

An accuracy flag moves only when a document's argmax does, so on a 135M model a few hundred documents
rarely show a knowledge loss the log-likelihoods show plainly. `metric` names a continuous score that
every multiple-choice record keeps (`<task>/margin` or `<task>/gold_logprob`, evaluation/scoring.py):

  direction = "falls"  the one-sided upper bound of mean(pruned - base) is below -margin, AND the pruned
                       model's headline accuracy stays above chance (its one-sided Wilson lower bound
                       exceeds claims/chance.toml's level): a fall to chance is a collapse, not the
                       paper's gradual loss, so a model at chance fails the claim. A family without an
                       accuracy, whose headline is itself a log-likelihood score (gsm8k_gold), has no
                       chance level and no guard, as LAMBADA's perplexity has none
  direction = "holds"  the lower bound is at least -margin (non-inferior)
  direction = "rises"  the lower bound is above margin

Paired Student t over documents (doc, prompt and target hashes must match). Without per-document records
keeping the score on both sides the verdict is `skipped`, a gap that fails a measured tier.
"""

from __future__ import annotations

import math
from typing import Any

from widthwise import stats
from widthwise.claims.chance import chance_of
from widthwise.claims.evidence import base_and_pruned, paired_records, samples, selected
from widthwise.claims.metrics import CONTINUOUS_SCORES, metric_info
from widthwise.claims.registry import register_kind
from widthwise.claims.verdict import Verdict, bounded, confidence, fmt, skipped
from widthwise.errors import WidthwiseError
from widthwise.points import Group

DIRECTIONS = ("falls", "holds", "rises")


def _parse(cid: str, t: dict, kw: dict[str, Any]) -> None:
    d = t.get("direction")
    if d not in DIRECTIONS:
        raise WidthwiseError(f"claim {cid!r}: score_shift needs direction, one of {', '.join(DIRECTIONS)}")
    kw["direction"] = d
    task, _, score = kw["metric"].partition("/")
    if score not in CONTINUOUS_SCORES:
        raise WidthwiseError(
            f"claim {cid!r}: score_shift takes a per-document continuous score "
            f"(<task>/{' or <task>/'.join(CONTINUOUS_SCORES)}), not {kw['metric']!r}"
        )
    if d == "holds" and "margin" not in t:
        raise WidthwiseError(f"claim {cid!r}: direction holds needs a stated margin")


def gate(direction: str, bound: float, margin: float) -> bool:
    """Does the one-sided bound on pruned - base satisfy the direction? (pure, tested on CPU)"""
    if direction == "falls":
        return bound < -margin
    if direction == "holds":
        return bound >= -margin
    if direction == "rises":
        return bound > margin
    raise ValueError(direction)


def has_accuracy(headline: str | None) -> bool:
    """Does the task's headline have a chance level to guard? Not where it is a log-likelihood score or a
    perplexity; an unknown or absent headline is guarded (and fails the guard, naming what is missing)."""
    info = metric_info(headline) if headline else None
    return info is None or info.type not in ("logprob", "perplexity")


def above_chance(records: list[dict], headline: str | None, alpha: float) -> tuple[bool, str]:
    """Is the pruned model's accuracy, from its records' correct flags, above chance? (ok, how)"""
    c = chance_of(headline) if headline else None
    if c is None or c.value is None:
        return False, f"no chance level for {headline} (claims/chance.toml)"
    flags = [bool(r["correct"]) for r in records if "correct" in r]
    if not flags:
        return False, "no correct flags to place the pruned accuracy against chance"
    acc = sum(flags) / len(flags)
    lo, _ = stats.wilson_interval(acc, len(flags), stats.quantile(alpha))
    return lo > c.value, f"pruned {headline} {acc:.3f} (LCB {lo:.3f}) vs chance {c.value:g}"


@register_kind("score_shift", keys={"direction", "margin"}, select=True, parse=_parse)
def check_shift(claim: Any, group: Group) -> list[Verdict]:
    """The paired mean change of a per-document continuous score falls, holds or rises."""
    task, _, score = claim.metric.partition("/")
    side = "upper" if claim.direction == "falls" else "lower"
    thr = -claim.margin if claim.direction in ("falls", "holds") else claim.margin
    op = {"falls": "<", "holds": ">=", "rises": ">"}[claim.direction]
    out = []
    for pp in selected(claim, group):
        pair = base_and_pruned(claim, group, pp)
        if isinstance(pair, Verdict):
            out.append(pair)
            continue
        _b, bres, _p, pres = pair
        bs, ps = samples(bres, task), samples(pres, task)
        if not (bs and ps):
            out.append(skipped(claim, group, pp.label, f"unpaired: no per-document records of {task}"))
            continue
        pairs = paired_records(bs, ps, f"{claim.id}: {group.model} {pp.label}")
        kept = [(x[score], y[score]) for x, y in pairs if score in x and score in y]
        if len(kept) != len(pairs) or len(kept) < 2:
            why = f"unpaired: {len(pairs) - len(kept)} of {len(pairs)} documents lack {score} on a side"
            out.append(skipped(claim, group, pp.label, why))
            continue
        bd = stats.paired_t_bound([float(a) for a, _ in kept], [float(b) for _, b in kept], claim.alpha, side)
        ok = gate(claim.direction, bd.bound, claim.margin)
        guard = ""
        headline = (pres.get("headline") or {}).get(task)
        if claim.direction == "falls" and math.isfinite(bd.bound) and has_accuracy(headline):
            alive, how = above_chance(ps, headline, claim.alpha)
            ok = ok and alive
            guard = f"; {how}{'' if alive else ': at chance, a collapse'}"
        elif claim.direction == "falls" and math.isfinite(bd.bound):
            guard = f"; no chance guard ({headline} is a log-likelihood score, not an accuracy)"
        bv, pv = bd.means or (math.nan, math.nan)
        out.append(
            bounded(
                claim,
                group,
                pp.label,
                ok,
                bd,
                observed=f"{fmt(bd.delta)} ({pv:.4g} vs base {bv:.4g}, paired over {bd.n} docs){guard}",
                bound=f"{confidence(claim.alpha, side)} {fmt(bd.bound)} {op} {fmt(thr)}",
                threshold=thr,
            )
        )
    return out
