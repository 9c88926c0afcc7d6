"""thresholds.toml -> Claim: the keys every claim shares, checked here; each kind's own keys by its parser.

Every problem names the claim and the key, so a typo in thresholds.toml is one clear line, never a claim
silently read as something else.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from widthwise.claims import kinds as _kinds  # noqa: F401  (importing the kinds registers them)
from widthwise.claims.metrics import metric_info
from widthwise.claims.registry import KINDS, number, strings
from widthwise.claims.verdict import MEASURED_TIERS
from widthwise.errors import WidthwiseError
from widthwise.names import canonical_method, model_key
from widthwise.results import TIERS, read_toml
from widthwise.widths import pct_in


@dataclass(frozen=True)
class Claim:
    id: str
    statement: str
    metric: str
    kind: str
    models: tuple[str, ...]
    tiers: tuple[str, ...]
    configs: str | None = None  # "all_pruned" | "most_pruned"
    pcts: tuple[float, ...] = ()
    ratios: tuple[float, ...] = ()
    methods: tuple[str, ...] = ("ppm",)
    alpha: float = 0.05
    margin: float = 0.0
    tolerance: float = 0.0
    bound: float | None = None
    metric_y: str | None = None
    r_at_most: float | None = None
    r_at_least: float | None = None
    exclude_degenerate: bool = False
    control: str | None = None  # beats_control: the ablation method compared against
    fraction: float | None = None  # keeps_above_chance: share of base - chance that must remain
    pooled: bool = False  # pairwise: one verdict on the mean difference over the claim's models
    direction: str | None = None  # score_shift: falls | holds | rises
    # Verdicts are shown, never gate: the claim cannot be told from chance (the report prints why).
    reported_only: str = ""
    # Measured tiers where the claim is reported only, with why (reported_only = {tier = "why"}): the GPU
    # gate's design keeps a claim the paper's n cannot gate at 95% out of that tier's gate, while the paper
    # tier still holds the paper's tables to it.
    reported_on: tuple[tuple[str, str], ...] = ()
    # Measured tiers where this claim accepts a value that cannot be measured or paired (not measurable,
    # skipped), with why: a waived gap is listed in the report, never counted as holding. Missing is
    # never waived.
    optional: tuple[tuple[str, str], ...] = ()
    why: str = ""

    def waiver(self, tier: str) -> str | None:
        return dict(self.optional).get(tier)

    def reported(self, tier: str) -> str:
        """Why the claim only reports on this tier ("" where it gates)."""
        return self.reported_only or dict(self.reported_on).get(tier, "")

    @property
    def metrics(self) -> tuple[str, ...]:
        return (self.metric, self.metric_y) if self.metric_y else (self.metric,)


COMMON = frozenset(
    {"statement", "metric", "kind", "models", "tiers", "methods", "alpha", "optional", "reported_only", "why"}
)
MEASURED = MEASURED_TIERS  # tiers whose evidence is required: a gap fails unless a claim waives it
SELECT = frozenset({"configs", "pcts", "ratios"})
_ID = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


def _selection(cid: str, t: Mapping[str, Any], kw: dict[str, Any]) -> None:
    given = [k for k in SELECT if k in t]
    if len(given) != 1:
        raise WidthwiseError(f"claim {cid!r}: give exactly one of configs, pcts or ratios")
    if "configs" in t:
        if t["configs"] not in ("all_pruned", "most_pruned"):
            raise WidthwiseError(f"claim {cid!r}: configs must be 'all_pruned' or 'most_pruned'")
        kw["configs"] = t["configs"]
    for key in ("pcts", "ratios"):
        if key in t:
            if not isinstance(t[key], list) or not t[key]:
                raise WidthwiseError(f"claim {cid!r}: {key} must be a non-empty list of numbers")
            kw[key] = tuple(number(cid, key, x) for x in t[key])


def _optional(cid: str, v: Any, tiers: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """optional = "why" (every measured tier the claim lists) or {tier = "why"}; a reason is required."""
    if isinstance(v, str):
        v = {x: v for x in tiers if x in MEASURED}
    return _tier_reasons(cid, "optional", v, tiers)


def _tier_reasons(cid: str, key: str, v: Any, tiers: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """{tier = "why"} over measured tiers of the claim, each with a reason (optional, reported_only)."""
    measured = [x for x in tiers if x in MEASURED]
    if not isinstance(v, dict) or not v:
        raise WidthwiseError(f"claim {cid!r}: {key} must be a reason string or a table {{tier = reason}}")
    out = []
    for tier, why in v.items():
        if tier not in measured:
            raise WidthwiseError(
                f"claim {cid!r}: {key} names tier {tier!r}, not a measured tier of this claim "
                f"({', '.join(measured) or 'none'}); the paper tier keeps its own rules"
            )
        if not isinstance(why, str) or not why.strip():
            raise WidthwiseError(f"claim {cid!r}: {key}.{tier} needs a reason (a non-empty string)")
        out.append((tier, " ".join(why.split())))
    return tuple(out)


def parse_claim(cid: str, t: Any) -> Claim:
    """Validate one [claims.ID] table; every problem names the claim and the key."""
    if not _ID.match(cid):
        raise WidthwiseError(f"claim id {cid!r}: use lowercase letters, digits, '_' or '-'")
    if not isinstance(t, dict):
        raise WidthwiseError(f"claim {cid!r}: must be a table")
    if "kind" not in t and t and all(isinstance(v, dict) for v in t.values()):
        raise WidthwiseError(
            f"claim {cid!r}: holds only sub-tables; TOML reads a '.' in [claims.a.b] as nesting, "
            "so claim ids must not contain '.'"
        )
    kind = KINDS.get(t.get("kind"))  # type: ignore[arg-type]
    if kind is None:
        raise WidthwiseError(f"claim {cid!r}: unknown kind {t.get('kind')!r} (known: {', '.join(KINDS)})")
    allowed = COMMON | kind.keys | (SELECT if kind.select else frozenset())
    unknown = sorted(set(t) - allowed)
    if unknown:
        raise WidthwiseError(
            f"claim {cid!r}: unknown key(s) {', '.join(unknown)} for kind {kind.name} "
            f"(allowed: {', '.join(sorted(allowed))})"
        )
    for req in ("statement", "metric", "models", "tiers"):
        if req not in t:
            raise WidthwiseError(f"claim {cid!r}: missing required key {req!r}")
    if not isinstance(t["statement"], str) or not t["statement"].strip():
        raise WidthwiseError(f"claim {cid!r}: statement must be a non-empty string")
    kw: dict[str, Any] = {"id": cid, "statement": t["statement"].strip(), "kind": kind.name}
    for key in ("metric", "metric_y"):
        if key in t:
            info = metric_info(t[key]) if isinstance(t[key], str) else None
            if info is None:
                raise WidthwiseError(f"claim {cid!r}: unknown {key} {t[key]!r}")
            if info.type == "energy" and not kind.energy:
                raise WidthwiseError(
                    f"claim {cid!r}: {t[key]} is an energy metric; only ratios of energy figures are "
                    "valid (the paper's absolute J/token are scaled by carbon intensity), use a ratio kind"
                )
            kw[key] = t[key]
    kw["models"] = strings(cid, "models", t["models"])
    kw["tiers"] = strings(cid, "tiers", t["tiers"])
    bad = [x for x in kw["tiers"] if x not in TIERS]
    if bad:
        raise WidthwiseError(f"claim {cid!r}: unknown tier(s) {bad} (known: {', '.join(TIERS)})")
    if "methods" in t:
        kw["methods"] = tuple(canonical_method(m) for m in strings(cid, "methods", t["methods"]))
    if "alpha" in t:
        kw["alpha"] = number(cid, "alpha", t["alpha"])
        if not 0 < kw["alpha"] < 0.5:
            raise WidthwiseError(f"claim {cid!r}: alpha must be in (0, 0.5)")
    for key in ("margin", "tolerance"):
        if key in t:
            kw[key] = number(cid, key, t[key])
            if kw[key] < 0:
                raise WidthwiseError(f"claim {cid!r}: {key} must be >= 0")
    if "optional" in t:
        kw["optional"] = _optional(cid, t["optional"], kw["tiers"])
    if "reported_only" in t:
        if isinstance(t["reported_only"], dict):
            kw["reported_on"] = _tier_reasons(cid, "reported_only", t["reported_only"], kw["tiers"])
        elif not isinstance(t["reported_only"], str) or not t["reported_only"].strip():
            raise WidthwiseError(f"claim {cid!r}: reported_only needs a reason (a non-empty string)")
        else:
            kw["reported_only"] = " ".join(t["reported_only"].split())
    if "why" in t:
        if not isinstance(t["why"], str):
            raise WidthwiseError(f"claim {cid!r}: why must be a string")
        kw["why"] = " ".join(t["why"].split())
    if kind.parse is not None:
        kind.parse(cid, t, kw)
    if kind.select:
        _selection(cid, t, kw)
    return Claim(**kw)


@dataclass(frozen=True)
class ModelRule:
    """One model a tier requires with widths and bench of its own ([[tiers.NAME.requires]])."""

    model: str
    pcts: tuple[float, ...] = ()
    bench: bool | tuple[float, ...] = False
    why: str = ""


def benched(bench: bool | tuple[float, ...], pct: float) -> bool:
    """Does a rule's `bench` (true: every pruned width; a list: those widths) ask a bench at `pct`?"""
    if isinstance(bench, bool):
        return bench
    return pct_in(pct, bench)


@dataclass(frozen=True)
class TierRule:
    """What every check of a measured tier needs, whatever a run planned ([tiers.NAME] in thresholds.toml).

    Each model of the tier (every model its Results name when `models` is empty) needs its base and PPM at
    every one of `pcts`, each with every task its plan or its own settings name, and a bench Result for
    each pruned width `bench` names (true: every one). A model in `requires` needs its own widths and bench
    instead."""

    tier: str
    models: tuple[str, ...] = ()
    pcts: tuple[float, ...] = ()
    bench: bool | tuple[float, ...] = False
    why: str = ""
    requires: tuple[ModelRule, ...] = ()

    def required_models(self) -> tuple[str, ...]:
        """Every model a check of the tier must have Results or a plan for."""
        return (*self.models, *(r.model for r in self.requires))

    def for_model(self, model: str) -> tuple[tuple[float, ...], bool | tuple[float, ...], str] | None:
        """(pcts, bench, where in thresholds.toml) the rule asks of `model`, or None when it covers it not
        (a rule without models covers every model it does not name in `requires`)."""
        mk = model_key(model)
        for r in self.requires:
            if model_key(r.model) == mk:
                return r.pcts, r.bench, f"tiers.{self.tier}.requires {r.model} in thresholds.toml"
        if self.models and not any(model_key(m) == mk for m in self.models):
            return None
        return self.pcts, self.bench, f"tiers.{self.tier} in thresholds.toml"


class Thresholds(list):
    """The claims of a thresholds file, in order, with its tier rules (`.tiers`, by tier name)."""

    def __init__(self, claims: Any = (), tiers: Mapping[str, TierRule] | None = None) -> None:
        super().__init__(claims)
        self.tiers: dict[str, TierRule] = dict(tiers or {})
        # Gating claims demoted in the checkout's baselines/measured/*/gating.toml (claims/gating.py): every
        # check and report lists them, so a claim that stopped gating is never out of sight.
        self.demotions: list[Any] = []


TIER_KEYS = frozenset({"models", "pcts", "bench", "why", "requires"})
REQUIRE_KEYS = frozenset({"model", "pcts", "bench", "why"})


def _widths_and_bench(where: str, t: Mapping[str, Any], kw: dict[str, Any]) -> None:
    """pcts, bench and why of a tier rule or of one of its required models, validated into kw."""
    if "pcts" in t:
        if not isinstance(t["pcts"], list):
            raise WidthwiseError(f"{where}: pcts must be a list of numbers")
        kw["pcts"] = tuple(number(where, "pcts", x) for x in t["pcts"])
        if any(not 0 < p < 100 for p in kw["pcts"]):
            raise WidthwiseError(f"{where}: pcts must be in (0, 100); the base is always required")
    if "bench" in t:
        bench = t["bench"]
        if isinstance(bench, list):
            bench = tuple(number(where, "bench", x) for x in bench)
            outside = [b for b in bench if not pct_in(b, kw.get("pcts", ()))]
            if outside:
                raise WidthwiseError(f"{where}: bench names widths {outside} that pcts does not require")
        elif not isinstance(bench, bool):
            raise WidthwiseError(f"{where}: bench must be true, false or a list of the pcts benched")
        kw["bench"] = bench
    if not isinstance(t.get("why"), str) or not t["why"].strip():
        raise WidthwiseError(f"{where}: why (a non-empty string) says what the requirement rests on")
    kw["why"] = " ".join(t["why"].split())


def _model_rule(where: str, t: Any) -> ModelRule:
    if not isinstance(t, dict):
        raise WidthwiseError(f"{where}: must be a table")
    unknown = sorted(set(t) - REQUIRE_KEYS)
    if unknown:
        raise WidthwiseError(
            f"{where}: unknown key(s) {', '.join(unknown)} (allowed: {', '.join(sorted(REQUIRE_KEYS))})"
        )
    if not isinstance(t.get("model"), str) or not t["model"].strip():
        raise WidthwiseError(f"{where}: model (a model name) is required")
    kw: dict[str, Any] = {"model": t["model"]}
    _widths_and_bench(where, t, kw)
    return ModelRule(**kw)


def parse_tier(name: str, t: Any) -> TierRule:
    if name not in MEASURED:
        raise WidthwiseError(f"tiers.{name}: only measured tiers ({', '.join(MEASURED)}) take requirements")
    if not isinstance(t, dict):
        raise WidthwiseError(f"tiers.{name}: must be a table")
    unknown = sorted(set(t) - TIER_KEYS)
    if unknown:
        raise WidthwiseError(
            f"tiers.{name}: unknown key(s) {', '.join(unknown)} (allowed: {', '.join(sorted(TIER_KEYS))})"
        )
    kw: dict[str, Any] = {"tier": name}
    if "models" in t:
        kw["models"] = strings(f"tiers.{name}", "models", t["models"])
    _widths_and_bench(f"tiers.{name}", t, kw)
    if "requires" in t:
        if not isinstance(t["requires"], list) or not t["requires"]:
            raise WidthwiseError(f"tiers.{name}: requires must be tables [[tiers.{name}.requires]]")
        kw["requires"] = tuple(
            _model_rule(f"tiers.{name}.requires[{i}]", r) for i, r in enumerate(t["requires"])
        )
        named = [model_key(m) for m in (*kw.get("models", ()), *(r.model for r in kw["requires"]))]
        twice = sorted({m for m in named if named.count(m) > 1})
        if twice:
            raise WidthwiseError(f"tiers.{name}: {', '.join(twice)} required twice (models and requires)")
    return TierRule(**kw)


def parse_thresholds(data: Mapping[str, Any], where: str = "thresholds") -> Thresholds:
    unknown = sorted(set(data) - {"version", "claims", "tiers"})
    if unknown:
        raise WidthwiseError(
            f"{where}: unknown top-level key(s) {', '.join(unknown)} (expected [claims.ID] and [tiers.NAME])"
        )
    if data.get("version", 1) != 1:
        raise WidthwiseError(f"{where}: unsupported version {data.get('version')!r}")
    claims = data.get("claims")
    if not isinstance(claims, dict) or not claims:
        raise WidthwiseError(f"{where}: no [claims.ID] tables")
    tiers = data.get("tiers", {})
    if not isinstance(tiers, dict):
        raise WidthwiseError(f"{where}: tiers must be tables [tiers.NAME]")
    try:
        return Thresholds(
            [parse_claim(cid, t) for cid, t in claims.items()],
            {name: parse_tier(name, t) for name, t in tiers.items()},
        )
    except WidthwiseError as e:
        raise WidthwiseError(f"{where}: {e}") from None


def load_thresholds(path: Path) -> Thresholds:
    path = Path(path)
    data = read_toml(path, "no such thresholds file")
    out = parse_thresholds(data, str(path))
    from widthwise.claims.gating import demotions_beside

    out.demotions = demotions_beside(path)
    return out


def default_thresholds() -> Path:
    """./thresholds.toml, else the one at the root of the checkout this package was installed from."""
    here = Path("thresholds.toml")
    if here.is_file():
        return here
    return Path(__file__).resolve().parents[3] / "thresholds.toml"
