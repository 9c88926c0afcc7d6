"""Statistics that fit the sample size: one-sided confidence bounds, paired tests, trends, correlation, MDE.

Every function here is pure (numbers in, numbers out) so the gates in claims.py can be unit-tested on
published reference values. Bounds are one-sided at level 1 - alpha because every claim states a
direction ("drops", "non-inferior", "at most").

Differences are always pruned - base. `side="upper"` asks for the upper bound of that difference
(used to show a drop), `side="lower"` for the lower bound (used for non-inferiority and improvement).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as st

from widthwise.errors import WidthwiseError

POWER = 0.8
BOOTSTRAP_SEED = 20251222  # arXiv 2512.22671's submission date: fixed so a rerun gives the same bound
BOOTSTRAP_RESAMPLES = 4000


def _z(alpha: float) -> float:
    return float(st.norm.ppf(1.0 - alpha))


def _check_side(side: str) -> None:
    if side not in ("lower", "upper"):
        raise ValueError(f"side must be 'lower' or 'upper', got {side!r}")


@dataclass(frozen=True)
class Bound:
    """A difference (pruned - base) with its one-sided confidence bound and how it was obtained."""

    delta: float
    bound: float
    side: str
    method: str
    n: int | None
    p_value: float | None = None
    se: float | None = None  # standard error of the difference where no effect; feeds the MDE
    means: tuple[float, float] | None = None  # (base, pruned) over the paired documents


def wilson_interval(p: float, n: int, z: float) -> tuple[float, float]:
    """Wilson score interval for a proportion p observed over n trials, at normal quantile z."""
    if n <= 0:
        raise ValueError("n must be positive")
    p = min(max(p, 0.0), 1.0)
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z / (1 + z2 / n) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def newcombe_bound(p1: float, n1: int, p0: float, n0: int, alpha: float, side: str) -> Bound:
    """One-sided bound on p1 - p0 for independent proportions: Newcombe's hybrid score (method 10).

    Built from the two Wilson intervals, it keeps its coverage near 0 and 1, where the Wald interval
    does not (GSM8K at 2% is such a case). Also conservative for [0, 1]-bounded mean scores such as
    TruthfulQA-MC2, whose variance is at most p(1 - p).
    """
    _check_side(side)
    z = _z(alpha)
    l1, u1 = wilson_interval(p1, n1, z)
    l0, u0 = wilson_interval(p0, n0, z)
    d = p1 - p0
    if side == "lower":
        b = d - math.sqrt((p1 - l1) ** 2 + (u0 - p0) ** 2)
    else:
        b = d + math.sqrt((u1 - p1) ** 2 + (p0 - l0) ** 2)
    se0 = math.sqrt(max(p0 * (1 - p0), 1e-12) * (1 / n1 + 1 / n0))
    return Bound(d, b, side, "Newcombe-Wilson (unpaired)", min(n1, n0), se=se0)


def normal_bound(v1: float, se1: float, v0: float, se0: float, alpha: float, side: str) -> Bound:
    """One-sided bound on v1 - v0 from two independent estimates with standard errors."""
    _check_side(side)
    d = v1 - v0
    se = math.hypot(se1, se0)
    half = _z(alpha) * se
    return Bound(
        d, d - half if side == "lower" else d + half, side, "normal from stderr (unpaired)", None, se=se
    )


def mcnemar_exact(b: int, c: int, alternative: str = "two-sided") -> float:
    """Exact McNemar p-value: b = base right/pruned wrong, c = base wrong/pruned right.

    alternative "less" tests that pruned is worse (c < b), "greater" that it is better.
    """
    m = b + c
    if m == 0:
        return 1.0
    return float(st.binomtest(c, m, 0.5, alternative=alternative).pvalue)


def _cp(x: int, n: int, alpha: float) -> tuple[float, float]:
    """Clopper-Pearson bounds for x of n, each one-sided at alpha."""
    if n == 0:
        return 0.0, 1.0
    ci = st.binomtest(x, n, 0.5).proportion_ci(confidence_level=1 - 2 * alpha, method="exact")
    return float(ci.low), float(ci.high)


def paired_binary_bound(base: Sequence[bool], pruned: Sequence[bool], alpha: float, side: str) -> Bound:
    """Bound on the paired difference of two correct/incorrect vectors, from exact binomial bounds.

    With m discordant pairs of n, c of them for the pruned model, the difference is (m/n)(2 pi - 1)
    where c ~ Binomial(m, pi). Bounding pi given m (exact, as McNemar's test) and the discordant share
    m/n itself (Clopper-Pearson), with alpha split between the two, keeps the bound valid when the
    discordant pairs are few or none: four identical answers do not prove non-inferiority. The exact
    one-sided McNemar p-value is reported alongside.
    """
    _check_side(side)
    a, p = np.asarray(base, dtype=bool), np.asarray(pruned, dtype=bool)
    if a.shape != p.shape or a.ndim != 1 or a.size == 0:
        raise ValueError("paired vectors must be non-empty and of equal length")
    n = int(a.size)
    b = int(np.sum(a & ~p))
    c = int(np.sum(~a & p))
    m = b + c
    d = (c - b) / n
    se = math.sqrt(max(m, 1)) / n  # McNemar: the difference's spread comes from the discordant pairs only
    means = (float(a.mean()), float(p.mean()))
    pi_low, pi_high = _cp(c, m, alpha / 2)
    share_low, share_high = _cp(m, n, alpha / 2)
    if side == "lower":
        g = 2 * pi_low - 1
        bound = (share_high if g < 0 else share_low) * g
    else:
        g = 2 * pi_high - 1
        bound = (share_high if g > 0 else share_low) * g
    pv = mcnemar_exact(b, c, "greater" if side == "lower" else "less")
    return Bound(d, bound, side, f"exact McNemar (paired, b={b}, c={c})", n, pv, se, means)


def paired_bootstrap_bound(
    base: Sequence[float],
    pruned: Sequence[float],
    alpha: float,
    side: str,
    *,
    seed: int = BOOTSTRAP_SEED,
    resamples: int = BOOTSTRAP_RESAMPLES,
) -> Bound:
    """Percentile bound on the mean paired difference of per-document scores, resampling documents."""
    _check_side(side)
    a, p = np.asarray(base, dtype=float), np.asarray(pruned, dtype=float)
    if a.shape != p.shape or a.ndim != 1 or a.size == 0:
        raise ValueError("paired vectors must be non-empty and of equal length")
    diff = p - a
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, diff.size, size=(resamples, diff.size))
    means = diff[idx].mean(axis=1)
    q = alpha if side == "lower" else 1 - alpha
    return Bound(
        float(diff.mean()),
        float(np.quantile(means, q)),
        side,
        f"paired bootstrap ({resamples} resamples, seed {seed})",
        int(diff.size),
        se=float(means.std(ddof=1)),
        means=(float(a.mean()), float(p.mean())),
    )


def paired_t_bound(base: Sequence[float], pruned: Sequence[float], alpha: float, side: str) -> Bound:
    """Student t bound on the mean paired difference of per-document continuous scores (df = n - 1)."""
    _check_side(side)
    a, p = np.asarray(base, dtype=float), np.asarray(pruned, dtype=float)
    if a.shape != p.shape or a.ndim != 1 or a.size < 2:
        raise ValueError("paired vectors must have equal length of at least 2")
    diff = p - a
    n = int(diff.size)
    se = float(diff.std(ddof=1) / math.sqrt(n))
    t = float(st.t.ppf(1.0 - alpha, n - 1))
    d = float(diff.mean())
    return Bound(
        d,
        d - t * se if side == "lower" else d + t * se,
        side,
        f"paired t over {n} documents (df {n - 1})",
        n,
        p_value=float(st.t.sf(abs(d) / se, n - 1)) if se > 0 else None,
        se=se,
        means=(float(a.mean()), float(p.mean())),
    )


def clustered_paired_bound(
    clusters: Sequence[tuple[Sequence[bool], Sequence[bool]]], alpha: float, side: str
) -> Bound:
    """Bound on the mean paired change of per-unit flags whose units come in clusters (IFEval's
    instructions within one prompt share one response, so they are not independent).

    The estimate is the ratio sum(d) / sum(m) over clusters (d: a cluster's summed change, m: its units);
    its standard error is the cluster-robust (linearised) one, with Student t on clusters - 1 degrees of
    freedom, so the unit is the instruction and the evidence is counted in prompts."""
    _check_side(side)
    d = np.array([sum(map(float, p)) - sum(map(float, b)) for b, p in clusters])
    m = np.array([len(b) for b, _p in clusters], dtype=float)
    if any(len(b) != len(p) for b, p in clusters):
        raise ValueError("a cluster has a different number of units on the two sides")
    k, total = len(clusters), float(m.sum())
    if k < 2 or total == 0:
        raise ValueError("need at least 2 clusters with units")
    est = float(d.sum() / total)
    resid = d - est * m
    se = float(math.sqrt(k / (k - 1) * float((resid**2).sum())) / total)
    t = float(st.t.ppf(1.0 - alpha, k - 1))
    base = float(sum(sum(map(float, b)) for b, _ in clusters) / total)
    return Bound(
        est,
        est - t * se if side == "lower" else est + t * se,
        side,
        f"paired, clustered: {int(total)} instructions in {k} prompts (cluster-robust t, df {k - 1})",
        int(total),
        p_value=float(st.t.sf(abs(est) / se, k - 1)) if se > 0 else None,
        se=se,
        means=(base, base + est),
    )


def quantile(alpha: float, df: int | None = None) -> float:
    """One-sided critical value: Student t with df degrees of freedom when the runs are few, else normal."""
    return float(st.t.ppf(1.0 - alpha, df)) if df else _z(alpha)


def ratio_bound(
    v1: float, se1: float | None, v0: float, se0: float | None, alpha: float, side: str, df: int | None = None
) -> Bound:
    """Ratio v1/v0 with a one-sided delta-method bound on its log when both stderrs are known.

    Bench figures are means of a handful of runs, so pass df (runs - 1 of the smaller side): with 3 runs
    the t quantile is 2.92, not the normal 1.64.
    """
    _check_side(side)
    if v0 <= 0 or v1 <= 0:
        raise ValueError("ratio needs positive values")
    r = v1 / v0
    if se1 is None or se0 is None:
        return Bound(r, r, side, "point estimate (no stderr on both sides)", None)
    s = math.hypot(se1 / v1, se0 / v0)
    q = quantile(alpha, df)
    b = r * math.exp(-q * s) if side == "lower" else r * math.exp(q * s)
    how = f"t with {df} df" if df else "normal"
    return Bound(r, b, side, f"delta method on log ratio ({how})", None)


def pearson(x: Sequence[float], y: Sequence[float]) -> tuple[float, float]:
    """Pearson r and its two-sided p-value."""
    if len(x) != len(y) or len(x) < 3:
        raise WidthwiseError(f"correlation needs at least 3 paired points, got {min(len(x), len(y))}")
    res = st.pearsonr(np.asarray(x, float), np.asarray(y, float))
    return float(res.statistic), float(res.pvalue)


@dataclass(frozen=True)
class Trend:
    worst_step: float  # the largest step against the trend (positive = a violation of that size)
    worst_at: int  # index i of the step values[i] -> values[i+1]
    total: float  # values[-1] - values[0], signed


def trend(values: Sequence[float], increasing: bool) -> Trend:
    """How far a sequence (ordered by increasing pruning) strays from monotone in the stated direction."""
    v = [float(x) for x in values]
    if len(v) < 2:
        raise WidthwiseError("a trend needs at least two configurations")
    steps = [(b - a) if not increasing else (a - b) for a, b in zip(v, v[1:], strict=False)]
    i = int(np.argmax(steps))
    return Trend(steps[i], i, v[-1] - v[0])


def monotone_holds(t: Trend, increasing: bool, tolerance: float) -> bool:
    """Monotone within tolerance, and moving in the stated direction end to end by more than it."""
    moved = t.total > tolerance if increasing else t.total < -tolerance
    return t.worst_step <= tolerance and moved


def mde_proportion(p: float, n: int, alpha: float, power: float = POWER) -> float:
    """Smallest difference of two independent proportions near p, each over n, a one-sided test finds."""
    p = min(max(p, 1e-6), 1 - 1e-6)
    return (_z(alpha) + float(st.norm.ppf(power))) * math.sqrt(2 * p * (1 - p) / n)


def mde_stderr(se_diff: float, alpha: float, power: float = POWER, df: int | None = None) -> float:
    if df:
        return (quantile(alpha, df) + float(st.t.ppf(power, df))) * se_diff
    return (_z(alpha) + float(st.norm.ppf(power))) * se_diff


def mde_correlation(n: int, alpha: float, power: float = POWER) -> float:
    """Smallest |r| a two-sided test at alpha detects with the given power over n points (Fisher z)."""
    if n <= 3:
        return float("nan")
    zr = (float(st.norm.ppf(1 - alpha / 2)) + float(st.norm.ppf(power))) / math.sqrt(n - 3)
    return math.tanh(zr)
