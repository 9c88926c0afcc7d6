"""The engine: every claim against every (tier, model) group of Results it applies to, in thresholds order.

On the paper tier a claim applies where the Results carry its metric(s): the paper's tables report what
they report. On the measured tiers (cpu, gpu) evidence is required: a claim applies wherever its tier and
model are present or planned, a planned or required configuration with no Result joins the group empty
(claims/coverage.py), and a check that ends without numbers (missing, not measurable, skipped) fails
unless the claim waives that tier with a reason (`optional`): a value that cannot be measured or paired
there is then `waived`, listed in the report; a missing one still fails.
A claim still does not apply where it selects nothing the run planned (e.g. a control at a width no plan or
tier rule names); those are listed as not applicable. Every claim stated on PPM also applies, as its twin
`<id>@<method>`, to each other method a measured tier ran for its own sake (claims/subjects.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from widthwise.claims import coverage
from widthwise.claims.chance import Distance, distances
from widthwise.claims.evidence import applies_to_model, selected
from widthwise.claims.kinds.pairwise import check_pooled
from widthwise.claims.registry import KINDS
from widthwise.claims.spec import MEASURED, Claim
from widthwise.claims.subjects import with_subjects
from widthwise.claims.verdict import WAIVABLE, Verdict, failing, reported, waived
from widthwise.names import model_key
from widthwise.plan import Plan
from widthwise.points import Group, group_results


def applicable(claim: Claim, group: Group) -> bool:
    """The claim names this tier and model, and (paper tier) the Results carry its metric(s) somewhere in
    the group, or (measured tiers) the group holds or plans something the claim selects."""
    if group.tier not in claim.tiers or not applies_to_model(claim, group.model):
        return False
    kind = KINDS[claim.kind]
    if kind.applies is not None and not kind.applies(claim, group):
        return False
    if group.tier in MEASURED:
        return not kind.select or bool(selected(claim, group))
    return all(any(m in p.metrics for p in group.points) for m in claim.metrics)


def required(claim: Claim, verdicts: list[Verdict]) -> list[Verdict]:
    """On a measured tier a verdict without numbers fails. A claim that waives the tier (`optional`)
    accepts a value that cannot be measured or paired there (`waived`), never one that is absent: a
    missing Result is a lost shard or a dropped task, whatever the claim says."""
    out = []
    for v in verdicts:
        why = claim.waiver(v.tier) if v.tier in MEASURED else None
        v = waived(v, why) if why and v.verdict in WAIVABLE else v
        # A reported-only claim is shown, whatever it found, and never turns the build red; a gap still
        # does (missing anywhere, unmeasurable or unpaired on a measured tier unless waived), because the
        # report cannot show what is not there.
        out.append(reported(v) if claim.reported(v.tier) and v.verdict in ("holds", "fails") else v)
    return out


def judge(claims: Sequence[Claim], groups: Sequence[Group]) -> list[Verdict]:
    out: list[Verdict] = []
    for c in claims:
        if c.pooled:  # one verdict per tier over all the claim's models (claims/kinds/pairwise.py)
            mine = [g for g in groups if applicable(c, g)]
            for tier in dict.fromkeys(g.tier for g in mine):
                here = [g for g in mine if g.tier == tier]
                # The paper's tables judge what they report: a pool whose models are not all there does
                # not apply. A measured tier needs every one (check_pooled says which is missing).
                if tier in MEASURED or {model_key(g.model) for g in here} >= {model_key(m) for m in c.models}:
                    out.extend(required(c, check_pooled(c, here)))
            continue
        for g in groups:
            if applicable(c, g):
                out.extend(required(c, KINDS[c.kind].check(c, g)))
    return out


@dataclass(frozen=True)
class Assessment:
    verdicts: list[Verdict]
    coverage: list[coverage.Row]  # planned or required versus present
    chance: list[Distance]  # each claimed metric's distance above chance, per group
    claims: list[Claim]  # the claims judged: those given, and their twins for other methods (subjects.py)


def assess(
    claims: Sequence[Claim], results: Iterable[Mapping[str, Any]], plans: Sequence[Plan] = ()
) -> Assessment:
    """Every applicable claim against every matching group, in thresholds order, then what the plans and
    tier rules (a Thresholds' `.tiers`) expected and no Result gave; the planned-versus-present rows; and
    the distance above chance of every metric a verdict was reached on."""
    groups = group_results(results)
    rows, gaps = coverage.complete(groups, plans, getattr(claims, "tiers", {}), MEASURED)
    claims = with_subjects(claims, groups)
    verdicts = judge(claims, groups)
    judged = {(v.tier, v.model) for v in verdicts}
    metrics = [m for c in claims if any(v.claim == c.id for v in verdicts) for m in c.metrics]
    near = distances([g for g in groups if (g.tier, g.model) in judged], metrics)
    return Assessment(verdicts + gaps, rows, near, claims)


def evaluate(
    claims: Sequence[Claim], results: Iterable[Mapping[str, Any]], plans: Sequence[Plan] = ()
) -> list[Verdict]:
    return assess(claims, results, plans).verdicts


def waivers_used(claims: Sequence[Claim], verdicts: Sequence[Verdict]) -> list[tuple[str, str, str]]:
    """(claim, tier, why) of every waiver that turned a gap into `waived`, and of every reported-only
    claim that was evaluated ("reported only: why"), for the report."""
    by_id = {c.id: c for c in claims}
    out = set()
    for v in verdicts:
        if v.verdict == "waived":
            out.add((v.claim, v.tier, by_id[v.claim].waiver(v.tier) or ""))
        elif v.verdict == "reported":
            out.add((v.claim, v.tier, f"reported only: {by_id[v.claim].reported(v.tier)}"))
    return sorted(out)


def unchecked(claims: Sequence[Claim], verdicts: Sequence[Verdict]) -> list[str]:
    """Claims that matched no (tier, model, metric) in these Results: listed, so none vanishes silently."""
    seen = {v.claim for v in verdicts}
    return [c.id for c in claims if c.id not in seen]


def exit_code(verdicts: Sequence[Verdict]) -> int:
    """1 when any verdict fails, is missing, or (measured tiers) is not measurable or skipped without a
    waiver; else 0."""
    return 1 if any(failing(v) for v in verdicts) else 0
