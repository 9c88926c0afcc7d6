"""drop, improves, non_inferior: a one-sided bound on pruned - base at each selected configuration.

Paired when both sides carry per-document records scored by the claim's metric (exact McNemar on correct
flags, a paired bootstrap on scores); otherwise from the two aggregates (stderr, or Newcombe-Wilson on
proportions). `exclude_degenerate` counts a degenerate IFEval response as a failure and needs records.
"""

from __future__ import annotations

import math
from typing import Any

from widthwise import stats
from widthwise.claims.evidence import base_and_pruned, paired_records, samples, scored_by, selected
from widthwise.claims.metrics import MetricInfo, metric_info
from widthwise.claims.registry import register_kind
from widthwise.claims.verdict import MEASURED_TIERS as MEASURED
from widthwise.claims.verdict import Verdict, bounded, confidence, fmt, skipped
from widthwise.errors import WidthwiseError
from widthwise.points import Group


def gate_pairwise(kind: str, higher_is_better: bool, lower: float, upper: float, margin: float) -> bool:
    """Does a one-sided bound on pruned - base satisfy the claim? (lower/upper are the two bounds.)"""
    if kind == "drop":
        return upper < -margin
    if kind == "improves":
        return lower > margin
    if kind == "non_inferior":
        return lower >= -margin if higher_is_better else upper <= margin
    raise ValueError(kind)


def side_of(kind: str, higher_is_better: bool) -> str:
    if kind == "drop" or (kind == "non_inferior" and not higher_is_better):
        return "upper"
    return "lower"


def _parse(cid: str, t: dict, kw: dict[str, Any]) -> None:
    if t["kind"] == "non_inferior" and "margin" not in t:
        raise WidthwiseError(f"claim {cid!r}: non_inferior needs a stated margin")
    if "exclude_degenerate" in t:
        if not isinstance(t["exclude_degenerate"], bool):
            raise WidthwiseError(f"claim {cid!r}: exclude_degenerate must be true or false")
        if not kw["metric"].startswith("ifeval/"):
            raise WidthwiseError(f"claim {cid!r}: exclude_degenerate applies to ifeval metrics only")
        kw["exclude_degenerate"] = t["exclude_degenerate"]


def paired_bound(claim: Any, bres: dict, pres: dict, side: str, where: str) -> stats.Bound | str | None:
    """A paired bound from per-sample records, 'skip: why' when exclude_degenerate has none, else None."""
    task = claim.metric.split("/", 1)[0]
    bs, ps = samples(bres, task), samples(pres, task)
    headline = scored_by(claim.metric, bres, pres)
    if claim.exclude_degenerate:
        if not (bs and ps) or not all("degenerate" in r for r in (*bs, *ps)):
            return "skip: no per-response records with a 'degenerate' flag on both sides"
        if not headline:
            return f"skip: the per-response records are not scored by {claim.metric}"
    elif not (bs and ps and headline):
        return None
    pairs = paired_records(bs, ps, where)
    if all("correct" in x and "correct" in y for x, y in pairs):

        def ok(r: dict) -> bool:
            # A degenerate response that happens to satisfy the instructions counts as a failure.
            return bool(r["correct"]) and not (claim.exclude_degenerate and r.get("degenerate"))

        return stats.paired_binary_bound(
            [ok(x) for x, _ in pairs], [ok(y) for _, y in pairs], claim.alpha, side
        )
    if all("score" in x and "score" in y for x, y in pairs):
        return stats.paired_bootstrap_bound(
            [float(x["score"]) for x, _ in pairs], [float(y["score"]) for _, y in pairs], claim.alpha, side
        )
    return None


def unpaired_bound(info: MetricInfo, b: dict, p: dict, alpha: float, side: str) -> stats.Bound:
    bv, pv = float(b["value"]), float(p["value"])
    bn, pn = b.get("n"), p.get("n")

    def se(e: dict, v: float, n: int | None) -> float | None:
        if e.get("stderr") is not None:
            return float(e["stderr"])
        if info.type in ("proportion", "score") and n:
            return math.sqrt(max(v * (1 - v), 0.0) / n)
        return None

    if b.get("stderr") is not None and p.get("stderr") is not None:
        return stats.normal_bound(pv, float(p["stderr"]), bv, float(b["stderr"]), alpha, side)
    if info.type in ("proportion", "score") and bn and pn:
        return stats.newcombe_bound(pv, int(pn), bv, int(bn), alpha, side)
    sb, sp = se(b, bv, bn), se(p, pv, pn)
    if sb is not None and sp is not None:
        return stats.normal_bound(pv, sp, bv, sb, alpha, side)
    return stats.Bound(pv - bv, pv - bv, side, "point estimate (no n or stderr)", None)


@register_kind(
    "drop", "improves", "non_inferior", keys={"margin", "exclude_degenerate"}, select=True, parse=_parse
)
def check_pairwise(claim: Any, group: Group) -> list[Verdict]:
    """Pruned below (drop), above (improves) or not worse than base by more than margin (non_inferior)."""
    info = metric_info(claim.metric)
    assert info is not None
    out = []
    side = side_of(claim.kind, info.higher_is_better)
    for pp in selected(claim, group):
        cfg = pp.label
        pair = base_and_pruned(claim, group, pp)
        if isinstance(pair, Verdict):
            out.append(pair)
            continue
        b, bres, p, pres = pair
        bd = paired_bound(claim, bres, pres, side, f"{claim.id}: {group.model} {cfg}")
        if isinstance(bd, str):
            out.append(skipped(claim, group, cfg, bd.removeprefix("skip: ")))
            continue
        if bd is None and group.tier in MEASURED:
            # A measured tier has every document: a comparison that cannot be paired is a gap, not a
            # weaker test (the paper's tables, which have no documents, are bounded unpaired).
            task = claim.metric.split("/", 1)[0]
            why = f"unpaired: no per-document records of {task} scored by {claim.metric} on both sides"
            out.append(skipped(claim, group, cfg, why))
            continue
        if bd is None:
            bd = unpaired_bound(info, b, p, claim.alpha, side)
        if claim.kind == "drop":
            thr, op = -claim.margin, "<"
        elif claim.kind == "improves":
            thr, op = claim.margin, ">"
        else:
            thr, op = (-claim.margin, ">=") if side == "lower" else (claim.margin, "<=")
        lower = bd.bound if side == "lower" else -math.inf
        upper = bd.bound if side == "upper" else math.inf
        ok = gate_pairwise(claim.kind, info.higher_is_better, lower, upper, claim.margin)
        n = bd.n or p.get("n") or b.get("n")
        # Paired tests report the means over the paired documents (degenerate responses as failures
        # where the claim says so), which can differ from the stored metric.
        bv, pv = bd.means if bd.means else (float(b["value"]), float(p["value"]))
        paired = f", paired over {bd.n} docs" if bd.means else ""
        out.append(
            bounded(
                claim,
                group,
                cfg,
                ok,
                bd,
                observed=f"{fmt(bd.delta)} ({pv:.4g} vs base {bv:.4g}{paired})",
                bound=f"{confidence(claim.alpha, side)} {fmt(bd.bound)} {op} {fmt(thr)}",
                threshold=thr,
                n=int(n) if n else None,
            )
        )
    return out
