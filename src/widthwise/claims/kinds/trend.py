"""monotone_increasing, monotone_decreasing and correlation: claims over a model's whole curve.

Every configuration of the claim's methods counts, base first, in order of decreasing expansion ratio.
"""

from __future__ import annotations

from typing import Any

from widthwise import stats
from widthwise.claims.evidence import unmeasurable, value
from widthwise.claims.metrics import metric_info
from widthwise.claims.registry import number, register_kind
from widthwise.claims.verdict import Verdict, fmt, missing, not_measurable, verdict
from widthwise.errors import WidthwiseError
from widthwise.points import Group, Point
from widthwise.results import require_comparable


def series(claim: Any, group: Group, metric: str) -> tuple[list[Point], list[float]] | Verdict:
    """The metric at every point of the curve, or the verdict that says which one is absent."""
    pts = [p for p in group.points if p.is_base or p.method in claim.methods]
    if group.base is None:
        return missing(claim, group, "all configurations", "the base model")
    vals = []
    for p in pts:
        e, _ = value(p, metric)
        if e is None:
            return missing(claim, group, p.label, metric)
        why = unmeasurable(e)
        if why:
            return not_measurable(claim, group, p.label, why)
        vals.append(float(e["value"]))
    for a, b in zip(pts, pts[1:], strict=False):
        require_comparable(a.metrics[metric][1], b.metrics[metric][1])
    return pts, vals


@register_kind("monotone_decreasing", "monotone_increasing", keys={"tolerance"})
def check_trend(claim: Any, group: Group) -> list[Verdict]:
    """Every step along the curve goes the stated way (within tolerance), and the whole curve by more."""
    s = series(claim, group, claim.metric)
    if isinstance(s, Verdict):
        return [s]
    pts, vals = s
    inc = claim.kind == "monotone_increasing"
    cfg = f"all {len(pts)} configurations"
    if len(pts) < 2:
        return [missing(claim, group, cfg, "a pruned configuration")]
    t = stats.trend(vals, inc)
    ok = stats.monotone_holds(t, inc, claim.tolerance)
    info = metric_info(claim.metric)
    assert info is not None
    n0 = pts[0].metrics[claim.metric][0].get("n")
    mde = (
        f"{stats.mde_proportion(vals[0], int(n0), claim.alpha):.4f}/step"
        if (info.type in ("proportion", "score") and n0)
        else "—"
    )
    step = f"{pts[t.worst_at].label} -> {pts[t.worst_at + 1].label}"
    signed = -t.worst_step if inc else t.worst_step  # the step closest to breaking the trend, in data units
    return [
        verdict(
            claim,
            group,
            cfg,
            verdict="holds" if ok else "fails",
            observed=f"{'smallest' if inc else 'largest'} step {fmt(signed)} at {step}; "
            f"end to end {fmt(t.total)}",
            bound=f"every step {'>=' if inc else '<='} {fmt(-claim.tolerance if inc else claim.tolerance)}; "
            f"end to end {'>' if inc else '<'} {fmt(claim.tolerance if inc else -claim.tolerance)}",
            n=len(pts),
            mde=mde,
            method="monotone trend with tolerance",
            value=signed,
            threshold=-claim.tolerance if inc else claim.tolerance,
        )
    ]


def gate_correlation(
    r: float, p: float, alpha: float, r_at_most: float | None, r_at_least: float | None
) -> bool:
    if r_at_most is not None and not r <= r_at_most:
        return False
    if r_at_least is not None and not r >= r_at_least:
        return False
    return p < alpha


def _parse_correlation(cid: str, t: dict, kw: dict[str, Any]) -> None:
    if "metric_y" not in t:
        raise WidthwiseError(f"claim {cid!r}: correlation needs metric_y")
    if "r_at_most" not in t and "r_at_least" not in t:
        raise WidthwiseError(f"claim {cid!r}: correlation needs r_at_most or r_at_least")
    for key in ("r_at_most", "r_at_least"):
        if key in t:
            kw[key] = number(cid, key, t[key])
            if not -1 <= kw[key] <= 1:
                raise WidthwiseError(f"claim {cid!r}: {key} must be in [-1, 1]")


@register_kind("correlation", keys={"metric_y", "r_at_most", "r_at_least"}, parse=_parse_correlation)
def check_correlation(claim: Any, group: Group) -> list[Verdict]:
    """Pearson r of two metrics over the curve is at most / at least a bound, and significant."""
    assert claim.metric_y is not None
    sx = series(claim, group, claim.metric)
    if isinstance(sx, Verdict):
        return [sx]
    sy = series(claim, group, claim.metric_y)
    if isinstance(sy, Verdict):
        return [sy]
    pts, xs = sx
    _, ys = sy
    r, pv = stats.pearson(xs, ys)
    ok = gate_correlation(r, pv, claim.alpha, claim.r_at_most, claim.r_at_least)
    cond = []
    if claim.r_at_most is not None:
        cond.append(f"r <= {claim.r_at_most:+.3f}")
    if claim.r_at_least is not None:
        cond.append(f"r >= {claim.r_at_least:+.3f}")
    return [
        verdict(
            claim,
            group,
            f"all {len(pts)} configurations",
            verdict="holds" if ok else "fails",
            observed=f"r = {r:+.4f} (p = {pv:.4f})",
            bound=", ".join(cond) + f", p < {claim.alpha:g}",
            n=len(pts),
            mde=f"|r| >= {stats.mde_correlation(len(pts), claim.alpha):.3f}",
            method="Pearson (scipy.stats.pearsonr, two-sided)",
            value=r,
            threshold=claim.r_at_most if claim.r_at_most is not None else claim.r_at_least,
        )
    ]
