"""The engine: every claim against every (tier, model) group of Results it applies to, in thresholds order.

A claim applies to a group when the group's tier and model are the claim's, the Results carry its
metric(s) somewhere, and its kind has nothing against it (a control claim needs the control's Results).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from widthwise.claims.evidence import applies_to_model
from widthwise.claims.registry import KINDS
from widthwise.claims.spec import Claim
from widthwise.claims.verdict import FAILING, Verdict
from widthwise.points import Group, group_results


def applicable(claim: Claim, group: Group) -> bool:
    """The claim names this tier and model, and the Results carry its metric(s) somewhere in the group."""
    if group.tier not in claim.tiers or not applies_to_model(claim, group.model):
        return False
    kind = KINDS[claim.kind]
    if kind.applies is not None and not kind.applies(claim, group):
        return False
    return all(any(m in p.metrics for p in group.points) for m in claim.metrics)


def evaluate(claims: Sequence[Claim], results: Iterable[Mapping[str, Any]]) -> list[Verdict]:
    """Every applicable claim against every matching group, in thresholds order."""
    groups = group_results(results)
    out: list[Verdict] = []
    for c in claims:
        for g in groups:
            if applicable(c, g):
                out.extend(KINDS[c.kind].check(c, g))
    return out


def unchecked(claims: Sequence[Claim], verdicts: Sequence[Verdict]) -> list[str]:
    """Claims that matched no (tier, model, metric) in these Results: listed, so none vanishes silently."""
    seen = {v.claim for v in verdicts}
    return [c.id for c in claims if c.id not in seen]


def exit_code(verdicts: Sequence[Verdict]) -> int:
    """0 when every verdict holds, is not measurable or is skipped; 1 when any fails or is missing."""
    return 1 if any(v.verdict in FAILING for v in verdicts) else 0
