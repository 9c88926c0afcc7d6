"""The GPU gate's design: how often a faithful rerun passes it, and how often each named break fails it.

The procedure is data, written before this code (baselines/measured/gpu/rule.toml): Bonferroni over the
claim family, each claim a one-sided confirmatory test, models never pooled. Here it is simulated the way
the tier tests: per-document binary outcomes of every configuration of a model are drawn at the paper's n
from one Gaussian copula (concordance: the latent correlation of any two configurations), and each check
is decided from the drawn counts by the engine's own bounds (exact McNemar on paired differences; a normal
bound where the engine bootstraps a mean over documents; t bounds on bench ratios). Perplexities carry no
standard error in the paper and are held fixed. tests/unit/test_design.py checks each simulated bound
against the engine's own function on the same counts.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats as st

from widthwise import stats
from widthwise.claims.chance import chance_of
from widthwise.claims.engine import applicable
from widthwise.claims.evidence import base_and_pruned, selected
from widthwise.claims.kinds.pairwise import gate_pairwise
from widthwise.claims.kinds.ratio import gate_ratio
from widthwise.claims.metrics import metric_info
from widthwise.claims.spec import Claim
from widthwise.errors import WidthwiseError
from widthwise.names import model_key
from widthwise.points import Group, Point, group_results
from widthwise.results import read_toml

CHANGES = ("to_base", "shift", "degenerate", "as_most_pruned", "none")
PAIRWISE = ("drop", "improves", "non_inferior")
TRENDS = ("monotone_decreasing", "monotone_increasing")
RATIOS = ("ratio_at_most", "ratio_at_least")
SIMULATED = (*PAIRWISE, *TRENDS, "keeps_above_chance", *RATIOS)
SCALES = (1.25, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0)  # the n multipliers searched for "would need"


@dataclass(frozen=True)
class Break:
    id: str
    what: str
    change: str
    metrics: tuple[str, ...] = ()
    models: tuple[str, ...] = ()  # empty: every model
    amount: float = 0.0
    why: str = ""

    def touches(self, model: str, metric: str) -> bool:
        return metric in self.metrics and (
            not self.models or model_key(model) in {model_key(m) for m in self.models}
        )


@dataclass(frozen=True)
class Rule:
    target_pass: float
    target_power: float
    concordance: float
    concordances: tuple[float, ...]
    runs: int
    seed: int
    candidates: tuple[str, ...]
    breaks: tuple[Break, ...] = field(default_factory=tuple)

    @property
    def share(self) -> float:
        """Each candidate's share of the gate's false-red budget (Bonferroni)."""
        return (1 - self.target_pass) / len(self.candidates)


def default_rule_path() -> Path:
    from widthwise.claims.spec import default_thresholds

    return default_thresholds().parent / "baselines" / "measured" / "gpu" / "rule.toml"


def load_rule(path: Path | None = None) -> Rule:
    path = path or default_rule_path()
    t = read_toml(path, "no GPU gate rule (baselines/measured/gpu/rule.toml in a checkout)")
    fam = t.get("family", {})
    if fam.get("procedure") != "bonferroni":
        raise WidthwiseError(f"{path}: [family] procedure must be 'bonferroni', got {fam.get('procedure')!r}")
    try:
        breaks = []
        for b in t.get("break", []):
            if b.get("change") not in CHANGES:
                raise WidthwiseError(
                    f"{path}: break {b.get('id')!r}: change must be one of {', '.join(CHANGES)}"
                )
            breaks.append(
                Break(
                    b["id"],
                    b["what"],
                    b["change"],
                    tuple(b.get("metrics", ())),
                    tuple(b.get("models", ())),
                    float(b.get("amount", 0.0)),
                    " ".join(b.get("why", "").split()),
                )
            )
        rule = Rule(
            float(fam["target_pass"]),
            float(fam["target_power"]),
            float(fam["concordance"]),
            tuple(float(x) for x in fam["concordances"]),
            int(fam["runs"]),
            int(fam["seed"]),
            tuple(fam.get("candidates", ())),
            tuple(breaks),
        )
    except (KeyError, TypeError, ValueError) as e:
        raise WidthwiseError(f"{path}: not a GPU gate rule (missing or bad key: {e})") from None
    if not rule.candidates:
        raise WidthwiseError(f"{path}: [family] candidates lists no claim")
    return rule


# ---- the truth a faithful rerun draws from, and the breaks applied to it ------------------------------


@dataclass
class Curve:
    """One model's metric over its configurations (base first), as a simulation draws it."""

    labels: list[str]
    values: np.ndarray
    n: int | None  # documents (binary metrics) or runs (bench figures)


def _curve(group: Group, metric: str) -> Curve | None:
    pts = [p for p in group.points if metric in p.metrics]
    if not pts or not pts[0].is_base:
        return None
    es = [p.metrics[metric][0] for p in pts]
    ns = [e.get("n") for e in es]
    return Curve(
        [p.label for p in pts],
        np.array([float(e["value"]) for e in es]),
        int(min(ns)) if all(ns) else None,
    )


def broken(curve: Curve, brk: Break | None, model: str, metric: str, exclude_degenerate: bool) -> Curve:
    if brk is None or not brk.touches(model, metric):
        return curve
    v = curve.values.copy()
    if brk.change == "to_base":
        v[1:] = v[0]
    elif brk.change == "shift":
        v[1:] = v[1:] + brk.amount
    elif brk.change == "as_most_pruned":
        v[1:] = v[-1]
    elif brk.change == "degenerate" and exclude_degenerate:
        v[1:] = 0.0
    return Curve(curve.labels, v, curve.n)


# ---- binary outcomes from one copula per (model, metric) ---------------------------------------------


def pattern_probabilities(p: Sequence[float], concordance: float, nodes: int = 96) -> np.ndarray:
    """P(every pattern of right/wrong over the configurations) when document i's latent score is
    sqrt(c) z_i + sqrt(1-c) e_ik and configuration k gets it right below Phi^-1(p_k): 2**K probabilities,
    bit k of the pattern index for configuration k. Integrated over z by Gauss-Hermite quadrature."""
    p = np.clip(np.asarray(p, dtype=float), 0.0, 1.0)
    c = min(max(concordance, 0.0), 0.999)
    x, w = np.polynomial.hermite_e.hermegauss(nodes)
    w = w / w.sum()
    with np.errstate(divide="ignore"):
        t = st.norm.ppf(p)
    q = st.norm.cdf((t[None, :] - math.sqrt(c) * x[:, None]) / math.sqrt(1 - c))  # (nodes, K)
    bits = ((np.arange(2 ** len(p))[:, None] >> np.arange(len(p))) & 1).astype(bool)  # (P, K)
    probs = np.prod(np.where(bits[None], q[:, None, :], 1 - q[:, None, :]), axis=2)  # (nodes, P)
    out = w @ probs
    return out / out.sum()


@dataclass
class Draws:
    """Per run: accuracy of every configuration and the 2x2 table of each against the base."""

    acc: np.ndarray  # (runs, K)
    n11: np.ndarray  # (runs, K) base right, pruned right
    n10: np.ndarray  # base right, pruned wrong
    n01: np.ndarray  # base wrong, pruned right
    n: int
    bounds: dict = field(default_factory=dict)  # (configuration, alpha) -> paired (lower, upper)

    def paired(self, k: int, alpha: float) -> tuple[np.ndarray, np.ndarray]:
        if (k, alpha) not in self.bounds:
            self.bounds[k, alpha] = paired_bounds(self.n10[:, k], self.n01[:, k], self.n, alpha)
        return self.bounds[k, alpha]


@functools.lru_cache(maxsize=320)
def draw_binary(values: tuple[float, ...], n: int, concordance: float, runs: int, seed: int) -> Draws:
    """Per-run counts for one curve. Cached and seeded by what it draws, so every simulation (faithful, a
    break that leaves this curve alone, another claim on the same curve) sees the same documents."""
    probs = pattern_probabilities(values, concordance)
    counts = np.random.default_rng(seed).multinomial(n, probs, size=runs).astype(np.float32)  # (runs, P)
    k = len(values)
    bits = ((np.arange(2**k)[:, None] >> np.arange(k)) & 1).astype(bool)
    base = bits[:, :1]
    f = np.float32
    return Draws(
        counts @ bits.astype(f) / n,
        counts @ (base & bits).astype(f),
        counts @ (base & ~bits).astype(f),
        counts @ (~base & bits).astype(f),
        n,
    )


def _cp(x: np.ndarray, m: np.ndarray, a: float) -> tuple[np.ndarray, np.ndarray]:
    """Clopper-Pearson one-sided bounds at a for x of m, elementwise (stats._cp on arrays)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        low = np.where(x > 0, st.beta.ppf(a, x, m - x + 1), 0.0)
        high = np.where(x < m, st.beta.ppf(1 - a, x + 1, m - x), 1.0)
    none = m == 0
    return np.where(none, 0.0, np.nan_to_num(low)), np.where(none, 1.0, np.nan_to_num(high, nan=1.0))


def paired_bounds(b: np.ndarray, c: np.ndarray, n: int, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """(lower, upper) of stats.paired_binary_bound from its counts: b base-only right, c pruned-only."""
    m = b + c
    pi_low, pi_high = _cp(c, m, alpha / 2)
    share_low, share_high = _cp(m, np.full_like(m, n), alpha / 2)
    g = 2 * pi_low - 1
    lower = np.where(g < 0, share_high, share_low) * g
    g = 2 * pi_high - 1
    upper = np.where(g > 0, share_high, share_low) * g
    return lower, upper


# ---- the checks of one claim, decided per run ---------------------------------------------------------


class Simulation:
    """One set of faithful (or broken) reruns of the paper's Results: every candidate claim's checks,
    decided per run, from draws shared between claims (so the whole gate's rate is joint, not a product)."""

    def __init__(
        self,
        groups: Sequence[Group],
        concordance: float,
        runs: int,
        seed: int,
        brk: Break | None = None,
        scale: float = 1.0,
    ) -> None:
        self.groups, self.concordance, self.runs, self.brk, self.scale = groups, concordance, runs, brk, scale
        self.seed = seed  # every draw is seeded by what it draws: common to all simulations that read it
        self._binary: dict[tuple[str, str, bool], tuple[Curve, Draws]] = {}

    def binary(self, group: Group, metric: str, exclude_degenerate: bool) -> tuple[Curve, Draws]:
        key = (group.model, metric, exclude_degenerate and self._degenerate(group, metric))
        if key not in self._binary:
            curve = _curve(group, metric)
            assert curve is not None and curve.n
            curve = broken(curve, self.brk, group.model, metric, exclude_degenerate)
            seed = zlib.crc32(f"{self.seed}|{group.model}|{metric}|{self.scale}".encode())
            n = round(curve.n * self.scale)  # type: ignore[operator]
            values = tuple(float(x) for x in curve.values)
            self._binary[key] = (curve, draw_binary(values, n, self.concordance, self.runs, seed))
        return self._binary[key]

    def _degenerate(self, group: Group, metric: str) -> bool:
        return (
            self.brk is not None and self.brk.change == "degenerate" and self.brk.touches(group.model, metric)
        )

    def holds(self, claim: Claim) -> np.ndarray | None:
        """Per run: does every check of the claim hold? None when it applies to nothing here."""
        ok = None
        for g in self.groups:
            if not applicable(claim, g):
                continue
            got = self._group(claim, g)
            ok = got if ok is None else ok & got
        return ok

    def _group(self, claim: Claim, g: Group) -> np.ndarray:
        if claim.kind in TRENDS:
            return self._trend(claim, g)
        pts = selected(claim, g)
        if not pts:
            return np.zeros(self.runs, dtype=bool)  # a claim that selects nothing here cannot hold
        ok = np.ones(self.runs, dtype=bool)
        for pp in pts:
            ok &= self._ratio(claim, g, pp) if claim.kind in RATIOS else self._pairwise(claim, g, pp)
        return ok

    def _index(self, curve: Curve, pp: Point) -> int:
        return curve.labels.index(pp.label)

    def _pairwise(self, claim: Claim, g: Group, pp: Point) -> np.ndarray:
        curve, d = self.binary(g, claim.metric, claim.exclude_degenerate)
        k = self._index(curve, pp)
        if claim.kind == "keeps_above_chance":
            f, ch = claim.fraction, chance_of(claim.metric).value  # type: ignore[union-attr]
            n11, n10, n01 = d.n11[:, k], d.n10[:, k], d.n01[:, k]
            mean = (n11 * (1 - f) - n10 * f + n01) / d.n
            sq = (n11 * (1 - f) ** 2 + n10 * f**2 + n01) / d.n
            se = np.sqrt(np.maximum(sq - mean**2, 0.0) / d.n)
            return mean - (1 - f) * ch - stats.quantile(claim.alpha) * se > 0
        lower, upper = d.paired(k, claim.alpha)
        info = metric_info(claim.metric)
        assert info is not None
        return gate_pairwise(claim.kind, info.higher_is_better, lower, upper, claim.margin)

    def _trend(self, claim: Claim, g: Group) -> np.ndarray:
        info = metric_info(claim.metric)
        assert info is not None
        inc = claim.kind == "monotone_increasing"
        if info.type == "proportion":
            _, d = self.binary(g, claim.metric, False)
            vals = d.acc
        else:  # no standard error in the paper: the values as they are (after a break)
            curve = _curve(g, claim.metric)
            assert curve is not None
            vals = broken(curve, self.brk, g.model, claim.metric, False).values[None, :]
        steps = vals[:, :-1] - vals[:, 1:] if inc else vals[:, 1:] - vals[:, :-1]
        total = vals[:, -1] - vals[:, 0]
        moved = total > claim.tolerance if inc else total < -claim.tolerance
        ok = (steps.max(axis=1) <= claim.tolerance) & moved
        return np.broadcast_to(ok, (self.runs,)).copy()

    def _ratio(self, claim: Claim, g: Group, pp: Point) -> np.ndarray:
        pair = base_and_pruned(claim, g, pp)
        assert not hasattr(pair, "verdict"), pair
        b, _, p, _ = pair  # type: ignore[misc]
        bv, pv = float(b["value"]), float(p["value"])
        if self.brk is not None and self.brk.touches(g.model, claim.metric) and self.brk.change == "to_base":
            pv = bv
        runs = min(int(b["n"]), int(p["n"])) if b.get("n") and p.get("n") else None
        bse, pse = b.get("stderr"), p.get("stderr")
        if not (bse and pse and runs and runs > 1):
            r = np.full(self.runs, pv / bv)  # a point estimate: held fixed
            return gate_ratio(claim.kind, r, claim.bound)
        m = max(2, round(runs * self.scale))
        key = f"{g.model}|{claim.metric}|{pp.label}"
        bm, bs = self._redraw(bv, float(bse) * math.sqrt(runs / m), m, f"{key}|base")
        pm, ps = self._redraw(pv, float(pse) * math.sqrt(runs / m), m, key)
        r = pm / bm
        s = np.hypot(ps / pm, bs / bm)
        q = stats.quantile(claim.alpha, m - 1 if m < 30 else None)
        bound = r * np.exp(q * s) if claim.kind == "ratio_at_most" else r * np.exp(-q * s)
        return gate_ratio(claim.kind, bound, claim.bound)

    def _redraw(self, v: float, se: float, runs: int, key: str) -> tuple[np.ndarray, np.ndarray]:
        """A mean of `runs` runs and its standard error, as a rerun with the same spread would give; seeded
        by what it draws, like the binary curves."""
        rng = np.random.default_rng(zlib.crc32(f"{self.seed}|{key}|{self.scale}".encode()))
        mean = v + se * rng.standard_normal(self.runs)
        var = se**2 * runs * rng.chisquare(runs - 1, self.runs) / (runs - 1)
        return np.maximum(mean, 1e-12), np.sqrt(var / runs)


# ---- the design: pass rates, gating set, power --------------------------------------------------------


@dataclass(frozen=True)
class ClaimRate:
    claim: str
    rate: float  # share of faithful reruns in which the claim holds, at the design concordance
    by_concordance: tuple[float, ...]
    fixed: bool  # every figure it reads is held fixed (no standard error known)
    gates: bool  # red rate within its Bonferroni share
    needs: str  # when it misses: the n at which it would meet its share


@dataclass(frozen=True)
class Power:
    brk: Break
    power: float  # P(gate red | break) at the design concordance, with the gating set
    by_concordance: tuple[float, ...]
    reads: tuple[str, ...]  # gating claims that read a metric the break changes
    needs: str  # when below target: why, and the n that would reach it (or why no n would)


@dataclass(frozen=True)
class Design:
    rule: Rule
    claims: list[ClaimRate]
    whole: float  # whole gate's pass rate at the design concordance
    whole_by_concordance: tuple[float, ...]
    power: list[Power]

    @property
    def gating(self) -> list[str]:
        return [c.claim for c in self.claims if c.gates]


def paper_groups(results: Sequence[Mapping[str, Any]]) -> list[Group]:
    return [g for g in group_results(results) if g.tier == "paper"]


def candidates(claims: Sequence[Claim], rule: Rule) -> list[Claim]:
    by_id = {c.id: c for c in claims}
    unknown = [c for c in rule.candidates if c not in by_id]
    if unknown:
        raise WidthwiseError(f"the GPU gate rule names claims thresholds.toml lacks: {', '.join(unknown)}")
    out = [by_id[c] for c in rule.candidates]
    bad = [c.id for c in out if "gpu" not in c.tiers or c.kind not in SIMULATED or c.pooled]
    if bad:
        raise WidthwiseError(f"the GPU gate rule names claims it cannot simulate: {', '.join(bad)}")
    return out


def _rates(cands: Sequence[Claim], groups: Sequence[Group], rule: Rule, conc: float, brk=None, scale=1.0):
    sim = Simulation(groups, conc, rule.runs, rule.seed, brk, scale)
    return {c.id: sim.holds(c) for c in cands}


def _fixed(claim: Claim) -> bool:
    info = metric_info(claim.metric)
    return info is not None and info.type != "proportion" and claim.kind in TRENDS


def _needs_claim(claim: Claim, cands, groups, rule: Rule) -> str:
    for s in SCALES:
        held = _rates([claim], groups, rule, rule.concordance, scale=s)[claim.id]
        if held is not None and 1 - held.mean() <= rule.share:
            return f"meets its share at about {s:g}x the paper's n"
    return f"misses its share even at {SCALES[-1]:g}x the paper's n"


def design(
    claims: Sequence[Claim],
    results: Sequence[Mapping[str, Any]],
    rule: Rule | None = None,
    *,
    full: bool = True,
) -> Design:
    """Pass rates, the gating set they give, the whole gate's pass rate and each break's power. `full`
    also sweeps the concordance range and searches the n a missed share or a weak break would need
    (about a minute); without it, the design concordance alone (seconds)."""
    rule = rule or load_rule()
    if not full:
        rule = dataclasses.replace(rule, concordances=(rule.concordance,))
    groups = paper_groups(results)
    cands = candidates(claims, rule)
    per_c = {c: _rates(cands, groups, rule, c) for c in rule.concordances}
    design_held = per_c.get(rule.concordance) or _rates(cands, groups, rule, rule.concordance)
    rates = []
    for c in cands:
        held = design_held[c.id]
        if held is None:
            raise WidthwiseError(f"claim {c.id!r} applies to nothing in the paper's Results")
        rate = float(held.mean())
        gates = 1 - rate <= rule.share
        rates.append(
            ClaimRate(
                c.id,
                rate,
                tuple(float(per_c[x][c.id].mean()) for x in rule.concordances),  # type: ignore[union-attr]
                _fixed(c),
                gates,
                "" if gates or not full else _needs_claim(c, cands, groups, rule),
            )
        )
    gating = [c for c in cands if next(r for r in rates if r.claim == c.id).gates]

    def whole(held: Mapping[str, np.ndarray | None]) -> float:
        ok = np.ones(rule.runs, dtype=bool)
        for c in gating:
            ok &= held[c.id]  # type: ignore[operator]
        return float(ok.mean())

    powers = [_power(b, gating, cands, groups, rule, full) for b in rule.breaks]
    return Design(
        rule,
        rates,
        whole(design_held),
        tuple(whole(per_c[x]) for x in rule.concordances),
        powers,
    )


def _red(gating: Sequence[Claim], groups, rule: Rule, conc: float, brk: Break, scale: float = 1.0) -> float:
    held = _rates(gating, groups, rule, conc, brk, scale)
    ok = np.ones(rule.runs, dtype=bool)
    for c in gating:
        ok &= held[c.id]  # type: ignore[operator]
    return 1 - float(ok.mean())


def _power(brk: Break, gating, cands, groups, rule: Rule, full: bool = True) -> Power:
    reads = tuple(
        c.id for c in gating if brk.change != "none" and any(brk.touches(m, c.metric) for m in c.models)
    )
    power = _red(gating, groups, rule, rule.concordance, brk)
    by_c = tuple(_red(gating, groups, rule, x, brk) for x in rule.concordances)
    needs = ""
    if power < rule.target_power and full:
        if brk.change == "none":
            needs = f"no gating claim can see it: {brk.why}"
        else:
            needs = _needs_break(brk, cands, groups, rule)
    return Power(brk, power, by_c, reads, needs)


def _needs_break(brk: Break, cands, groups, rule: Rule) -> str:
    """The smallest multiple of the paper's n at which the claims that would then gate reach the target."""
    touched = [c for c in cands if any(brk.touches(m, c.metric) for m in c.models)]
    if not touched:
        return (
            f"no candidate claim reads {', '.join(brk.metrics)} (each is reported only, for its own reason)"
        )
    for s in SCALES:
        held = _rates(cands, groups, rule, rule.concordance, scale=s)
        gating = [c for c in cands if 1 - held[c.id].mean() <= rule.share]  # type: ignore[union-attr]
        if gating and _red(gating, groups, rule, rule.concordance, brk, s) >= rule.target_power:
            return (
                f"reached at about {s:g}x the paper's n, where {', '.join(c.id for c in touched)} would gate"
            )
    return f"not reached even at {SCALES[-1]:g}x the paper's n"
