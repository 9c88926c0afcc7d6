"""Tier rules and planned-versus-present on the stored CPU tier: what is absent is named, never skipped."""

from __future__ import annotations

from pathlib import Path

import pytest

from widthwise.claims import coverage, parse_thresholds
from widthwise.claims.spec import MEASURED
from widthwise.errors import WidthwiseError
from widthwise.plan import Plan, Planned
from widthwise.points import group_results
from widthwise.results import collect_results

CPU = Path(__file__).resolve().parents[2] / "baselines" / "measured" / "cpu"
CLAIM = {
    "statement": "s",
    "metric": "piqa/acc",
    "kind": "drop",
    "models": ["m"],
    "tiers": ["cpu"],
    "pcts": [20],
}


@pytest.mark.parametrize(
    "tier, table, match",
    [
        ("paper", {"why": "x"}, "only measured tiers"),
        ("gpu", {"why": "x", "bench": 1}, "bench must be true or false"),
        ("gpu", {"why": "x", "pcts": [0]}, r"pcts must be in \(0, 100\)"),
        ("gpu", {"pcts": [10]}, "why"),
        ("gpu", {"why": "x", "shards": 2}, "unknown key"),
    ],
)
def test_tier_rules_are_validated(tier, table, match):
    with pytest.raises(WidthwiseError, match=match):
        parse_thresholds({"claims": {"c": CLAIM}, "tiers": {tier: table}})


def _stored():
    return collect_results([CPU])


def _rules(**kw):
    return parse_thresholds({"claims": {"c": CLAIM}, "tiers": {"cpu": {"why": "w", **kw}}}).tiers


def test_the_base_is_always_required():
    groups = group_results([r for r in _stored() if r["pruning"]])
    rows, missing = coverage.complete(groups, [], _rules(), MEASURED)
    assert {(v.config, v.metric) for v in missing} >= {("base (2.67x)", "ifeval"), ("base (2.67x)", "mmlu")}
    assert len(missing) == 11  # every task the other configurations' settings name
    assert not any(r.present for r in rows)


def test_required_widths_join_the_group_with_the_exact_width_even_without_a_base():
    results = [r for r in _stored() if r["pruning"] and r["pruning"]["pct"] != 40.0]
    groups = group_results(results)
    _rows, missing = coverage.complete(groups, [], _rules(pcts=[40]), MEASURED)
    labels = {p.label for p in groups[0].points}
    assert "pct 40 (1.60x)" in labels and "base (2.67x)" in labels  # I = 1536 recovered from (pct, k)
    assert {v.config for v in missing} == {"pct 40 (1.60x)", "base (2.67x)"}


def test_a_plan_expects_its_configurations_tasks_and_bench_cells():
    plan = Plan(
        "cpu", "cpu", "smollm2-135m-instruct", ("piqa",), (Planned(None, 0), Planned("ppm", 20)), ("mmlu_b1",)
    )
    groups = group_results(_stored())
    rows, missing = coverage.complete(groups, [plan], {}, MEASURED)
    assert [(r.config, r.item, r.present) for r in rows] == [
        ("base (2.67x)", "piqa", True),
        ("pct 20 (2.13x)", "piqa", True),
        ("pct 20 (2.13x)", "bench mmlu_b1", False),
    ]
    assert [v.observed for v in missing] == [
        f"missing: no Result for bench mmlu_b1 (expected by plan {plan.source})"
    ]
