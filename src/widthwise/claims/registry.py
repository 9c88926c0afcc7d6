"""The claim-kind registry: each kind registers its check, its keys and its own validation by decorator.

    @register_kind("ratio_at_most", "ratio_at_least", keys={"bound"}, select=True, parse=_parse_bound)
    def check_ratio(claim, group) -> list[Verdict]: ...

as lm-eval's `register_metric` declares a metric's properties beside it. `widthwise.claims.spec` validates a
thresholds table against the kind's declared keys and calls its `parse`; the engine calls its `check` on
every (tier, model) group the claim applies to. A new kind is one module under claims/kinds.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from widthwise.errors import WidthwiseError

Check = Callable[[Any, Any], list]  # (Claim, Group) -> list[Verdict]
Parse = Callable[[str, dict, dict], None]  # (claim id, TOML table, keyword args being built) -> None
Applies = Callable[[Any, Any], bool]  # (Claim, Group) -> bool, beyond tier, model and metrics


@dataclass(frozen=True)
class Kind:
    name: str
    check: Check
    keys: frozenset[str]  # keys this kind accepts beyond the common ones
    select: bool  # needs exactly one of configs, pcts or ratios
    parse: Parse | None
    applies: Applies | None
    energy: bool  # may name an energy metric (only ratios of the paper's energy figures are valid)
    doc: str


KINDS: dict[str, Kind] = {}


def register_kind(
    *names: str,
    keys: Iterable[str] = (),
    select: bool = False,
    parse: Parse | None = None,
    applies: Applies | None = None,
    energy: bool = False,
) -> Callable[[Check], Check]:
    def register(fn: Check) -> Check:
        for name in names:
            if name in KINDS:
                raise ValueError(f"claim kind {name!r} is registered twice")
            KINDS[name] = Kind(
                name, fn, frozenset(keys), select, parse, applies, energy, (fn.__doc__ or "").strip()
            )
        return fn

    return register


# ---- helpers for a kind's `parse` -------------------------------------------------------------------


def number(cid: str, key: str, v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise WidthwiseError(f"claim {cid!r}: {key} must be a finite number, got {v!r}")
    return float(v)


def strings(cid: str, key: str, v: Any) -> tuple[str, ...]:
    if not isinstance(v, list) or not v or not all(isinstance(s, str) and s for s in v):
        raise WidthwiseError(f"claim {cid!r}: {key} must be a non-empty list of strings")
    return tuple(v)
