"""Verdict: what one check of one claim on one configuration found, and the few ways one is made.

Verdicts: holds, fails, missing (the claim applies but a needed value is absent: counts as failing),
not_measurable (a needed value is null with a reason, e.g. energy on CPU), skipped (the claim needs
per-sample records that these Results do not carry, e.g. the paper's tables), waived (a gap on a measured
tier that the claim accepts with a stated reason), reported (a reported-only claim: shown, never gating).
On the paper tier not_measurable and skipped pass; on the
measured tiers (cpu, gpu) they fail like missing, unless waived. Pure: numbers in, text out.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from widthwise import stats

VERDICTS = ("holds", "fails", "missing", "not_measurable", "skipped", "waived", "reported")
FAILING = ("fails", "missing")  # on every tier
GAPS = ("missing", "not_measurable", "skipped")  # verdicts reached without numbers
WAIVABLE = ("not_measurable", "skipped")  # a claim's `optional` accepts these on its tier, never missing
MEASURED_TIERS = ("cpu", "gpu")  # where evidence is required (spec.MEASURED)


@dataclass
class Verdict:
    claim: str
    statement: str
    kind: str
    metric: str
    tier: str
    model: str
    config: str
    verdict: str
    observed: str
    bound: str
    n: int | None
    mde: str
    method: str
    value: float | None = None  # the observed number (difference, ratio, r, worst step)
    threshold: float | None = None  # what it was compared with

    @property
    def message(self) -> str:
        return (
            f"{self.claim} {self.verdict.upper()}: {self.model} at {self.config} [{self.tier}], "
            f"{self.metric}: observed {self.observed}; bound {self.bound}"
            + (f"; {self.method}" if self.method else "")
        )

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "message": self.message}


def fmt(x: float | None, digits: int = 4) -> str:
    if x is None:
        return "—"
    return "0" if x == 0 else f"{x:+.{digits}f}"


def verdict(claim: Any, group: Any, config: str, **kw: Any) -> Verdict:
    """A verdict of `claim` on `group` at `config`; kw are the Verdict fields that a check found."""
    return Verdict(
        claim=claim.id,
        statement=claim.statement,
        kind=claim.kind,
        metric=claim.metric if not claim.metric_y else f"{claim.metric} ~ {claim.metric_y}",
        tier=group.tier,
        model=group.model,
        config=config,
        **kw,
    )


def without_numbers(claim: Any, group: Any, config: str, status: str, observed: str) -> Verdict:
    """A verdict reached without a bound: missing, not measurable or skipped, with why."""
    return verdict(
        claim, group, config, verdict=status, observed=observed, bound="—", n=None, mde="—", method=""
    )


def missing(claim: Any, group: Any, config: str, what: str) -> Verdict:
    return without_numbers(claim, group, config, "missing", f"missing: {what}")


def not_measurable(claim: Any, group: Any, config: str, why: str) -> Verdict:
    return without_numbers(claim, group, config, "not_measurable", f"not measurable: {why}")


def skipped(claim: Any, group: Any, config: str, why: str) -> Verdict:
    return without_numbers(claim, group, config, "skipped", why)


def failing(v: Verdict) -> bool:
    """Does this verdict turn the build red? Gaps do on the measured tiers; on the paper tier only a
    missing value does (its tables report what they report)."""
    return v.verdict in FAILING or (v.tier in MEASURED_TIERS and v.verdict in GAPS)


def waived(v: Verdict, why: str) -> Verdict:
    """A measured-tier gap the claim accepts (`optional`): shown with both the gap and the reason."""
    return Verdict(**{**asdict(v), "verdict": "waived", "observed": f"waived ({why}); {v.observed}"})


def reported(v: Verdict) -> Verdict:
    """A reported-only claim's verdict: shown with what it found, never gating (the claim's reason is
    listed once in the report, beside the waivers)."""
    return Verdict(**{**asdict(v), "verdict": "reported", "observed": f"{v.verdict}: {v.observed}"})


def bound_method(bound: stats.Bound) -> str:
    return bound.method + (f", p={bound.p_value:.3g}" if bound.p_value is not None else "")


def mde(bound: stats.Bound, alpha: float) -> str:
    return "—" if bound.se is None else f"{stats.mde_stderr(bound.se, alpha):.4f}"


def confidence(alpha: float, side: str) -> str:
    return f"{100 * (1 - alpha):g}% {'UCB' if side == 'upper' else 'LCB'}"


def bounded(
    claim: Any,
    group: Any,
    config: str,
    ok: bool,
    bd: stats.Bound,
    *,
    observed: str,
    bound: str,
    threshold: float | None,
    n: int | None = None,
    mde_text: str | None = None,
) -> Verdict:
    """The verdict of a check that reached a statistical bound: every bounded kind ends here."""
    return verdict(
        claim,
        group,
        config,
        verdict="holds" if ok else "fails",
        observed=observed,
        bound=bound,
        n=n if n is not None else bd.n,
        mde=mde_text if mde_text is not None else mde(bd, claim.alpha),
        method=bound_method(bd),
        value=bd.delta,
        threshold=threshold,
    )
