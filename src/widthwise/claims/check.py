"""The check stage: Results (their plans, stored baselines) -> verdicts of every claim that applies, what
the plans and tier rules expected against what is present, and the regression gate if asked."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from widthwise.claims import coverage, regression
from widthwise.claims.chance import Distance
from widthwise.claims.engine import assess, exit_code, unchecked, waivers_used
from widthwise.claims.gating import Demotion
from widthwise.claims.spec import Claim
from widthwise.claims.verdict import Verdict
from widthwise.errors import WidthwiseError
from widthwise.names import model_key
from widthwise.plan import Plan
from widthwise.points import group_results


@dataclass(frozen=True)
class Check:
    verdicts: list[Verdict]
    not_applicable: list[str]  # claim ids that matched no (tier, model, metric) in these Results
    coverage: list[coverage.Row] = field(default_factory=list)  # planned or required versus present
    waivers: list[tuple[str, str, str]] = field(default_factory=list)  # (claim, tier, why) that were used
    chance: list[Distance] = field(default_factory=list)  # claimed metrics' distance above chance
    demotions: list[Demotion] = field(default_factory=list)  # gating claims demoted (claims/gating.py)

    @property
    def exit_code(self) -> int:
        return exit_code(self.verdicts)


def check(
    results: Sequence[Mapping[str, Any]],
    claims: Sequence[Claim],
    *,
    beside: Sequence[Mapping[str, Any]] = (),
    stored: Sequence[Mapping[str, Any]] | None = None,
    plans: Sequence[Plan] = (),
    max_changed: int = 0,
    where: str = "thresholds",
) -> Check:
    """Every claim on `results` with `beside` (e.g. a stored base that pruned shards compare with), against
    what `plans` and the tier rules of `claims` (a Thresholds' `.tiers`) expected; with `stored`, also the
    per-document regression gate of every fresh eval Result in `results`.

    Refuses (WidthwiseError) when no claim applies to `results` themselves: a gate that checked nothing
    must not pass, and neither must one whose only verdicts are about the `beside` Results."""
    a = assess(claims, [*results, *beside], plans)
    verdicts = a.verdicts
    if stored is not None:
        verdicts += regression.check(results, stored, max_changed=max_changed)
    fresh = {(r["tier"], model_key(r["model"]["name"])) for r in results} | {p.key for p in plans}
    if not any((v.tier, model_key(v.model)) in fresh for v in verdicts):
        seen = ", ".join(sorted({f"{g.model} [{g.tier}]" for g in group_results(results)}))
        also = " (verdicts were reached only on the --baselines Results)" if verdicts else ""
        raise WidthwiseError(f"no claim in {where} applies to these Results ({seen}){also}")
    return Check(
        verdicts,
        unchecked(claims, verdicts),
        a.coverage,
        waivers_used(a.claims, verdicts),
        a.chance,
        list(getattr(claims, "demotions", [])),
    )
