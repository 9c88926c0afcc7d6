"""The check stage: Results -> verdicts of every claim that applies, plus the regression gate if asked."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from widthwise.claims import regression
from widthwise.claims.engine import evaluate, exit_code, unchecked
from widthwise.claims.spec import Claim
from widthwise.claims.verdict import Verdict
from widthwise.errors import WidthwiseError
from widthwise.points import group_results


@dataclass(frozen=True)
class Check:
    verdicts: list[Verdict]
    not_applicable: list[str]  # claim ids that matched no (tier, model, metric) in these Results

    @property
    def exit_code(self) -> int:
        return exit_code(self.verdicts)


def check(
    results: Sequence[Mapping[str, Any]],
    claims: Sequence[Claim],
    *,
    beside: Sequence[Mapping[str, Any]] = (),
    stored: Sequence[Mapping[str, Any]] | None = None,
    max_changed: int = 0,
    where: str = "thresholds",
) -> Check:
    """Every claim on `results` with `beside` (e.g. a stored base that pruned shards compare with);
    with `stored`, also the per-document regression gate of every fresh eval Result in `results`.
    Refuses (WidthwiseError) when no claim applies at all: a gate that checked nothing must not pass."""
    everything = [*results, *beside]
    verdicts = evaluate(claims, everything)
    if stored is not None:
        verdicts += regression.check(results, stored, max_changed=max_changed)
    if not verdicts:
        seen = ", ".join(sorted({f"{g.model} [{g.tier}]" for g in group_results(everything)}))
        raise WidthwiseError(f"no claim in {where} applies to these Results ({seen})")
    return Check(verdicts, unchecked(claims, verdicts))
