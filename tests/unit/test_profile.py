"""The profile table: per-family sums, rates against the GEMM probe, and an honest 'no profile'."""

from __future__ import annotations

import pytest

from widthwise.evaluation import profile


def cost(kind, requests, seconds, tokens, head):
    return {"kind": kind, "requests": requests, "seconds": seconds, "tokens": tokens, "head_positions": head}


COSTS = {
    "widthwise_mmlu_anatomy": cost("loglikelihood", 4, 1.0, 400, 8),
    "widthwise_mmlu_virology": cost("loglikelihood", 4, 3.0, 600, 8),
    "widthwise_ifeval": cost("generate_until", 2, 2.0, 100, 100),
}
FAMILY = {"widthwise_mmlu_anatomy": "mmlu", "widthwise_mmlu_virology": "mmlu", "widthwise_ifeval": "ifeval"}


def test_subjects_sum_into_their_family():
    fam = profile.by_family(COSTS, FAMILY)
    assert fam["mmlu"] == {
        "kind": "loglikelihood",
        "requests": 8,
        "seconds": 4.0,
        "tokens": 1000,
        "head_positions": 16,
    }
    assert list(fam) == ["ifeval", "mmlu"]


def test_rates_are_model_flops_over_the_probe():
    prof = {
        "tasks": profile.by_family(COSTS, FAMILY),
        "gemm": {"n": 1024, "dtype": "float32", "threads": 1, "gflops": 100.0},
        "body_params": 10_000_000,
        "head_params": 1_000_000,
    }
    rows = {r["task"]: r for r in profile.rows(prof)}
    # mmlu: 2 * (1e7 * 1000 + 1e6 * 16) FLOPs in 4 s = 5.008 GFLOP/s, 5% of the probe
    assert rows["mmlu"]["tokens/s"] == 250.0 and rows["mmlu"]["model GFLOP/s"] == pytest.approx(5.0, abs=0.01)
    assert rows["mmlu"]["of GEMM"] == "5%"
    assert rows["total"]["requests"] == 10 and rows["total"]["seconds"] == 6.0


def test_a_result_without_a_profile_says_so():
    assert profile.table({"provenance": {"profile": None}}).startswith("no profile")


def test_the_gemm_probe_measures_a_rate():
    from widthwise.device import cpu_gemm_probe

    p = cpu_gemm_probe(1, n=256, repeats=2)
    assert p["threads"] == 1 and p["n"] == 256 and p["gflops"] > 0
