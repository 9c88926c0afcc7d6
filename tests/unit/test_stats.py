"""The statistics behind the gates, against published reference values and exact hand computations."""

from __future__ import annotations

import math

import pytest
from scipy import stats as st

from widthwise import stats
from widthwise.errors import WidthwiseError


def test_wilson_matches_newcombe_1998():
    # Newcombe (1998), Statistics in Medicine 17:857, example 81/263: 0.2553 to 0.3662.
    lo, hi = stats.wilson_interval(81 / 263, 263, st.norm.ppf(0.975))
    assert (round(lo, 4), round(hi, 4)) == (0.2553, 0.3662)


def test_newcombe_difference_matches_published_method_10():
    # Newcombe (1998b), example 56/70 - 48/80: hybrid score interval 0.0524 to 0.3339 (two-sided 95%).
    lo = stats.newcombe_bound(56 / 70, 70, 48 / 80, 80, 0.025, "lower")
    hi = stats.newcombe_bound(56 / 70, 70, 48 / 80, 80, 0.025, "upper")
    assert (round(lo.bound, 4), round(hi.bound, 4)) == (0.0524, 0.3339)
    assert lo.delta == pytest.approx(0.2)


def test_exact_mcnemar_is_the_binomial_tail():
    # b=10 discordant pairs against the pruned model, c=2 for it: P(X <= 2 | 12, 1/2) = 79/4096.
    assert stats.mcnemar_exact(10, 2, "less") == pytest.approx(79 / 4096)
    assert stats.mcnemar_exact(0, 0) == 1.0


def test_paired_binary_bound_agrees_with_mcnemar():
    base = [True] * 10 + [False] * 2 + [True] * 50
    pruned = [False] * 10 + [True] * 2 + [True] * 50
    b = stats.paired_binary_bound(base, pruned, 0.05, "upper")
    assert b.delta == pytest.approx(-8 / 62)
    assert b.p_value == pytest.approx(79 / 4096)
    assert b.bound < 0  # significant drop at 0.05, as the McNemar p-value says
    weak = stats.paired_binary_bound([True] * 3 + [False] * 1, [False] * 3 + [True] * 1, 0.05, "upper")
    assert weak.p_value > 0.05 and weak.bound > 0


def test_paired_bootstrap_is_deterministic_and_brackets_the_mean():
    base = [0.1 * (i % 7) for i in range(200)]
    pruned = [x + 0.05 + 0.02 * ((i * 13) % 5 - 2) for i, x in enumerate(base)]
    lo1 = stats.paired_bootstrap_bound(base, pruned, 0.05, "lower")
    lo2 = stats.paired_bootstrap_bound(base, pruned, 0.05, "lower")
    hi = stats.paired_bootstrap_bound(base, pruned, 0.05, "upper")
    assert lo1 == lo2
    assert lo1.delta == pytest.approx(0.05)
    assert lo1.bound < lo1.delta < hi.bound


def test_paired_vectors_must_match():
    with pytest.raises(ValueError):
        stats.paired_binary_bound([True], [True, False], 0.05, "lower")


def test_pearson_reproduces_the_papers_3b_correlation():
    mmlu = [0.5605, 0.4333, 0.2909, 0.2307, 0.2587, 0.2555, 0.2589]
    mc2 = [0.3919, 0.3767, 0.4302, 0.4390, 0.4484, 0.4391, 0.4574]
    r, p = stats.pearson(mmlu, mc2)
    assert round(r, 3) == -0.864 and round(p, 3) == 0.012
    with pytest.raises(WidthwiseError):
        stats.pearson([1, 2], [2, 1])


def test_trend_and_monotone_gate():
    t = stats.trend([1.0, 2.0, 1.9, 3.0], increasing=True)
    assert t.worst_step == pytest.approx(0.1) and t.worst_at == 1 and t.total == pytest.approx(2.0)
    assert not stats.monotone_holds(t, True, 0.0)
    assert stats.monotone_holds(t, True, 0.1 + 1e-12)
    flat = stats.trend([0.5, 0.5, 0.5], increasing=False)
    assert not stats.monotone_holds(flat, False, 0.0)  # a flat line does not "fall"


def test_minimum_detectable_effects():
    z = st.norm.ppf(0.95) + st.norm.ppf(0.8)
    assert stats.mde_proportion(0.1035, 541, 0.05) == pytest.approx(z * math.sqrt(2 * 0.1035 * 0.8965 / 541))
    assert stats.mde_proportion(0.3, 400, 0.05) == pytest.approx(2 * stats.mde_proportion(0.3, 1600, 0.05))
    assert stats.mde_correlation(7, 0.05) == pytest.approx(math.tanh((1.959964 + 0.841621) / 2), abs=1e-5)
    assert stats.mde_stderr(0.01, 0.05, df=2) > stats.mde_stderr(0.01, 0.05)  # few runs cost power


def test_ratio_bound_uses_t_for_few_runs():
    point = stats.ratio_bound(0.8, None, 1.0, 0.01, 0.05, "upper")
    assert point.bound == point.delta == pytest.approx(0.8)
    normal = stats.ratio_bound(0.8, 0.01, 1.0, 0.01, 0.05, "upper")
    few = stats.ratio_bound(0.8, 0.01, 1.0, 0.01, 0.05, "upper", df=2)
    assert 0.8 < normal.bound < few.bound
    s = math.hypot(0.01 / 0.8, 0.01)
    assert few.bound == pytest.approx(0.8 * math.exp(st.t.ppf(0.95, 2) * s))


def test_no_discordant_pairs_prove_little_on_few_documents():
    few = stats.paired_binary_bound([False] * 4, [False] * 4, 0.05, "lower")
    assert few.bound == pytest.approx(-(1 - 0.025 ** (1 / 4)))  # Clopper-Pearson for 0 of 4 at 2.5%
    many = stats.paired_binary_bound(
        [True] * 100 + [False] * 441, [True] * 100 + [False] * 441, 0.05, "lower"
    )
    assert -0.02 < many.bound < 0  # 541 identical answers do show non-inferiority within 0.02


def test_clustered_paired_bound_counts_instructions_but_evidence_in_prompts():
    # Three prompts: 2 instructions lost, 1 lost, 3 unchanged: d = (-2, -1, 0), m = (2, 1, 3).
    clusters = [([True, True], [False, False]), ([True], [False]), ([True, False, True], [True, False, True])]
    b = stats.clustered_paired_bound(clusters, 0.05, "upper")
    est = -3 / 6
    resid = [-2 - est * 2, -1 - est * 1, 0 - est * 3]
    se = math.sqrt(3 / 2 * sum(r * r for r in resid)) / 6
    assert b.delta == pytest.approx(est) and b.se == pytest.approx(se)
    assert b.bound == pytest.approx(est + st.t.ppf(0.95, 2) * se)
    assert b.n == 6 and "6 instructions in 3 prompts" in b.method
    assert b.means == pytest.approx((5 / 6, 2 / 6))
    # The same changes as 6 independent instructions would claim more certainty than 3 prompts give.
    flat = stats.paired_t_bound([1, 1, 1, 1, 0, 1], [0, 0, 0, 1, 0, 1], 0.05, "upper")
    assert flat.bound < b.bound
    with pytest.raises(ValueError, match="different number"):
        stats.clustered_paired_bound([([True], [True, False]), ([True], [True])], 0.05, "upper")
