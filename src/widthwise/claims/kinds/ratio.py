"""ratio_at_most, ratio_at_least: pruned / base of an efficiency figure, with a one-sided bound on it.

A bench figure is taken against the base measured in the same (interleaved) bench run when there is one.
"""

from __future__ import annotations

import math
from typing import Any

from widthwise import stats
from widthwise.claims.evidence import base_and_pruned, selected
from widthwise.claims.registry import number, register_kind
from widthwise.claims.verdict import Verdict, bounded, confidence
from widthwise.errors import WidthwiseError
from widthwise.points import Group


def gate_ratio(kind: str, bound_value: float, bound: float) -> bool:
    return bound_value <= bound if kind == "ratio_at_most" else bound_value >= bound


def _parse(cid: str, t: dict, kw: dict[str, Any]) -> None:
    if "bound" not in t:
        raise WidthwiseError(f"claim {cid!r}: {t['kind']} needs a bound")
    kw["bound"] = number(cid, "bound", t["bound"])
    if kw["bound"] <= 0:
        raise WidthwiseError(f"claim {cid!r}: bound must be positive")


@register_kind("ratio_at_most", "ratio_at_least", keys={"bound"}, select=True, parse=_parse, energy=True)
def check_ratio(claim: Any, group: Group) -> list[Verdict]:
    """pruned / base is at most / at least `bound`, by its one-sided bound."""
    out = []
    side = "upper" if claim.kind == "ratio_at_most" else "lower"
    assert claim.bound is not None
    for pp in selected(claim, group):
        cfg = pp.label
        pair = base_and_pruned(claim, group, pp)
        if isinstance(pair, Verdict):
            out.append(pair)
            continue
        b, _, p, _ = pair
        bv, pv = float(b["value"]), float(p["value"])
        bse, pse = b.get("stderr"), p.get("stderr")
        n = min(int(b["n"]), int(p["n"])) if b.get("n") and p.get("n") else None
        df = n - 1 if n and n < 30 else None
        bd = stats.ratio_bound(pv, pse, bv, bse, claim.alpha, side, df)
        op = "<=" if claim.kind == "ratio_at_most" else ">="
        if bse is not None and pse is not None:
            rel = math.hypot(pse / pv, bse / bv)
            mde = f"{100 * stats.mde_stderr(rel, claim.alpha, df=df):.1f}% (relative)"
            conf = f"{confidence(claim.alpha, side)} "
        else:
            mde, conf = "—", "point "
        out.append(
            bounded(
                claim,
                group,
                cfg,
                gate_ratio(claim.kind, bd.bound, claim.bound),
                bd,
                observed=f"ratio {bd.delta:.4f} ({pv:.4g} / base {bv:.4g})",
                bound=f"{conf}{bd.bound:.4f} {op} {claim.bound:g}",
                threshold=claim.bound,
                n=n,
                mde_text=mde,
            )
        )
    return out
