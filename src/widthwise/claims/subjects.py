"""The claims that apply to PPM apply to every other method a measured tier ran: a plug-in is gated the
same way as the paper's method.

A method is a *subject* when it is pruned with for its own sake: every method in a measured group but
`random` and the reverses (`<name>-reverse`), which are controls. For each subject other than PPM, every
claim stated on PPM gets a twin on the measured tiers, `<claim id>@<method>`, with the method in PPM's
place and PPM's own reverse control replaced by the method's (`ppm-reverse` -> `<method>-reverse`;
`random` stays random). The twin keeps the claim's numbers, tiers, models and waivers, and whether it
gates: a claim reported only for PPM is reported only for the method, saying so. Which widths it selects
are those the method ran, so a sweep of `--method wanda-mlp --controls` is judged on beats-random,
beats-its-reverse, knowledge-falls and the instruction-following claims wherever those read widths it
planned. The paper tier judges the paper's PPM only: its tables hold no other method.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace

from widthwise.claims.spec import MEASURED, Claim
from widthwise.names import REVERSE
from widthwise.points import Group

REFERENCE = "ppm"
SEP = "@"


def is_control(method: str) -> bool:
    return method == "random" or method.endswith(REVERSE)


def subjects(groups: Iterable[Group]) -> list[str]:
    """The non-PPM methods that measured groups ran (or planned) for their own sake, sorted."""
    found = {
        p.method
        for g in groups
        if g.tier in MEASURED
        for p in g.points
        if p.method is not None and p.method != REFERENCE and not is_control(p.method)
    }
    return sorted(found)


def twin(claim: Claim, method: str) -> Claim | None:
    """`claim` with `method` in PPM's place on the claim's measured tiers; None when the claim is not
    stated on PPM or names no measured tier."""
    if REFERENCE not in claim.methods:
        return None
    tiers = tuple(t for t in claim.tiers if t in MEASURED)
    if not tiers:
        return None
    control = claim.control
    if control == REFERENCE + REVERSE:
        control = method + REVERSE
    reported_on = tuple((t, f"as for PPM ({claim.id}): {why}") for t, why in claim.reported_on if t in tiers)
    return replace(
        claim,
        id=method_claim_id(claim.id, method),
        statement=f"{method} in PPM's place: {claim.statement}",
        methods=(method,),
        tiers=tiers,
        control=control,
        reported_only=f"as for PPM ({claim.id}): {claim.reported_only}" if claim.reported_only else "",
        reported_on=reported_on,
    )


def method_claim_id(claim_id: str, method: str) -> str:
    return f"{claim_id}{SEP}{method}"


def split_id(claim_id: str) -> tuple[str, str]:
    """(the claim as stated, the method it was judged on): ("x@wanda-mlp") -> ("x", "wanda-mlp"),
    ("x") -> ("x", "ppm")."""
    head, sep, method = claim_id.partition(SEP)
    return (head, method) if sep else (claim_id, REFERENCE)


def with_subjects(claims: Sequence[Claim], groups: Sequence[Group]) -> list[Claim]:
    """The claims, then each PPM claim's twin for every other subject method of the groups."""
    out = list(claims)
    for m in subjects(groups):
        out += [t for c in claims if (t := twin(c, m)) is not None]
    return out
