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
from widthwise.claims.verdict import Verdict, bounded, confidence, fmt, missing, skipped
from widthwise.errors import WidthwiseError
from widthwise.names import model_key, short_name
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
    if "pooled" in t:
        if not isinstance(t["pooled"], bool):
            raise WidthwiseError(f"claim {cid!r}: pooled must be true or false")
        if t["pooled"] and len(t.get("models", [])) < 2:
            raise WidthwiseError(f"claim {cid!r}: pooled needs two or more models")
        kw["pooled"] = t["pooled"]
    if "exclude_degenerate" in t:
        if not isinstance(t["exclude_degenerate"], bool):
            raise WidthwiseError(f"claim {cid!r}: exclude_degenerate must be true or false")
        if not kw["metric"].startswith("ifeval/"):
            raise WidthwiseError(f"claim {cid!r}: exclude_degenerate applies to ifeval metrics only")
        kw["exclude_degenerate"] = t["exclude_degenerate"]


# IFEval's instruction-level metrics, paired per instruction from the records' `instructions` lists.
PER_INSTRUCTION = {"ifeval/inst_level_strict_acc": "strict", "ifeval/inst_level_loose_acc": "loose"}


def instruction_bound(claim: Any, bs: list, ps: list, side: str, where: str) -> stats.Bound | str | None:
    """Per-instruction verdicts paired across base and pruned, clustered by prompt (one response each);
    None without them (bounded from the aggregates on the paper tier, a gap on a measured one)."""
    if not (bs and ps) or not all("instructions" in r for r in (*bs, *ps)):
        if claim.exclude_degenerate:
            return "skip: no per-response records with per-instruction verdicts on both sides"
        return None
    if claim.exclude_degenerate and not all("degenerate" in r for r in (*bs, *ps)):
        return "skip: no per-response records with a 'degenerate' flag on both sides"
    key = PER_INSTRUCTION[claim.metric]

    def flags(r: dict) -> list[bool]:
        dead = claim.exclude_degenerate and r.get("degenerate")
        return [bool(i[key]) and not dead for i in r["instructions"]]

    pairs = paired_records(bs, ps, where)
    if any([i["id"] for i in x["instructions"]] != [i["id"] for i in y["instructions"]] for x, y in pairs):
        raise WidthwiseError(
            f"{where}: a prompt lists different instructions on the two sides; pairing refused"
        )
    return stats.clustered_paired_bound([(flags(x), flags(y)) for x, y in pairs], claim.alpha, side)


def paired_bound(claim: Any, bres: dict, pres: dict, side: str, where: str) -> stats.Bound | str | None:
    """A paired bound from per-sample records, 'skip: why' when exclude_degenerate has none, else None."""
    task = claim.metric.split("/", 1)[0]
    bs, ps = samples(bres, task), samples(pres, task)
    if claim.metric in PER_INSTRUCTION:
        return instruction_bound(claim, bs, ps, side, where)
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


def _threshold(claim: Any, side: str) -> tuple[float, str]:
    if claim.kind == "drop":
        return -claim.margin, "<"
    if claim.kind == "improves":
        return claim.margin, ">"
    return (-claim.margin, ">=") if side == "lower" else (claim.margin, "<=")


def bound_at(claim: Any, group: Group, pp: Any, side: str) -> tuple[stats.Bound, dict, dict] | Verdict:
    """The bound on pruned - base at one configuration (paired where records allow), with the two
    metric entries; or the verdict that says why there is none (missing, not measurable, skipped)."""
    info = metric_info(claim.metric)
    assert info is not None
    cfg = pp.label
    pair = base_and_pruned(claim, group, pp)
    if isinstance(pair, Verdict):
        return pair
    b, bres, p, pres = pair
    bd = paired_bound(claim, bres, pres, side, f"{claim.id}: {group.model} {cfg}")
    if isinstance(bd, str):
        return skipped(claim, group, cfg, bd.removeprefix("skip: "))
    if bd is None and group.tier in MEASURED:
        # A measured tier has every document: a comparison that cannot be paired is a gap, not a
        # weaker test (the paper's tables, which have no documents, are bounded unpaired).
        task = claim.metric.split("/", 1)[0]
        why = f"unpaired: no per-document records of {task} scored by {claim.metric} on both sides"
        return skipped(claim, group, cfg, why)
    if bd is None:
        bd = unpaired_bound(info, b, p, claim.alpha, side)
    return bd, b, p


@register_kind(
    "drop",
    "improves",
    "non_inferior",
    keys={"margin", "exclude_degenerate", "pooled"},
    select=True,
    parse=_parse,
)
def check_pairwise(claim: Any, group: Group) -> list[Verdict]:
    """Pruned below (drop), above (improves) or not worse than base by more than margin (non_inferior)."""
    info = metric_info(claim.metric)
    assert info is not None
    out = []
    side = side_of(claim.kind, info.higher_is_better)
    thr, op = _threshold(claim, side)
    for pp in selected(claim, group):
        got = bound_at(claim, group, pp, side)
        if isinstance(got, Verdict):
            out.append(got)
            continue
        bd, b, p = got
        lower = bd.bound if side == "lower" else -math.inf
        upper = bd.bound if side == "upper" else math.inf
        ok = gate_pairwise(claim.kind, info.higher_is_better, lower, upper, claim.margin)
        n = bd.n or p.get("n") or b.get("n")
        # Paired tests report the means over the paired documents (degenerate responses as failures
        # where the claim says so), which can differ from the stored metric.
        bv, pv = bd.means if bd.means else (float(b["value"]), float(p["value"]))
        unit = "instructions" if claim.metric in PER_INSTRUCTION else "docs"
        paired = f", paired over {bd.n} {unit}" if bd.means else ""
        out.append(
            bounded(
                claim,
                group,
                pp.label,
                ok,
                bd,
                observed=f"{fmt(bd.delta)} ({pv:.4g} vs base {bv:.4g}{paired})",
                bound=f"{confidence(claim.alpha, side)} {fmt(bd.bound)} {op} {fmt(thr)}",
                threshold=thr,
                n=int(n) if n else None,
            )
        )
    return out


def check_pooled(claim: Any, groups: list[Group]) -> list[Verdict]:
    """`pooled = true`: one verdict on the mean of pruned - base over the claim's models, each at its
    selected configuration (one each). Its standard error combines the models' (independent models,
    each paired per document where records allow), so two models that each gain a little can show
    together what neither shows alone; a missing model is a missing verdict, never a smaller pool."""
    info = metric_info(claim.metric)
    assert info is not None
    side = side_of(claim.kind, info.higher_is_better)
    thr, op = _threshold(claim, side)
    tier = groups[0].tier
    pool = Group(tier, " + ".join(short_name(m) for m in claim.models), [])
    by_key = {model_key(g.model): g for g in groups}
    parts, labels, gaps = [], [], []
    for m in claim.models:  # every model's gap is reported, not only the first one's
        g = by_key.get(model_key(m))
        pts = selected(claim, g) if g is not None else []
        if len(pts) != 1:
            what = (
                "no configuration selected"
                if not pts
                else f"{len(pts)} configurations selected (pool needs one)"
            )
            gaps.append(missing(claim, pool, "pooled", f"{short_name(m)}: {what}"))
            continue
        got = bound_at(claim, g, pts[0], side)
        if isinstance(got, Verdict):
            gaps.append(got)
            continue
        bd, _b, _p = got
        if bd.se is None:
            gaps.append(
                skipped(claim, pool, "pooled", f"{short_name(m)}: its bound has no standard error to pool")
            )
            continue
        parts.append(bd)
        labels.append(f"{short_name(m)} {pts[0].label}")
    if gaps:
        return gaps
    k = len(parts)
    delta = sum(bd.delta for bd in parts) / k
    se = math.sqrt(sum(bd.se**2 for bd in parts)) / k  # type: ignore[operator]
    z = stats.quantile(claim.alpha)
    pooled = stats.Bound(
        delta,
        delta - z * se if side == "lower" else delta + z * se,
        side,
        f"mean of {k} models' differences, normal from their standard errors",
        sum(bd.n or 0 for bd in parts) or None,
        se=se,
    )
    lower = pooled.bound if side == "lower" else -math.inf
    upper = pooled.bound if side == "upper" else math.inf
    ok = gate_pairwise(claim.kind, info.higher_is_better, lower, upper, claim.margin)
    each = ", ".join(f"{lab} {fmt(bd.delta)}" for lab, bd in zip(labels, parts, strict=True))
    return [
        bounded(
            claim,
            pool,
            "pooled: " + "; ".join(labels),
            ok,
            pooled,
            observed=f"mean {fmt(delta)} ({each})",
            bound=f"{confidence(claim.alpha, side)} {fmt(pooled.bound)} {op} {fmt(thr)}",
            threshold=thr,
        )
    ]
