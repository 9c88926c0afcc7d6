"""Tier rules and planned-versus-present on the stored CPU tier: what is absent is named, never skipped."""

from __future__ import annotations

from pathlib import Path

import pytest

from widthwise.claims import coverage, parse_thresholds
from widthwise.claims.spec import MEASURED
from widthwise.errors import WidthwiseError
from widthwise.plan import Plan, Planned, merge
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
        ("gpu", {"why": "x", "bench": 1}, "bench must be true, false or a list"),
        ("gpu", {"why": "x", "pcts": [10, 60], "bench": [40]}, r"bench names widths \[40.0\]"),
        ("gpu", {"why": "x", "pcts": [0]}, r"pcts must be in \(0, 100\)"),
        ("gpu", {"pcts": [10]}, "why"),
        ("gpu", {"why": "x", "shards": 2}, "unknown key"),
        (
            "gpu",
            {"why": "x", "requires": {"model": "m"}},
            r"requires must be tables \[\[tiers.gpu.requires\]\]",
        ),
        (
            "gpu",
            {"why": "x", "requires": [{"pcts": [10], "why": "y"}]},
            r"requires\[0\]: model .* is required",
        ),
        ("gpu", {"why": "x", "requires": [{"model": "m", "pcts": [10]}]}, r"requires\[0\]: why"),
        ("gpu", {"why": "x", "requires": [{"model": "m", "why": "y", "bench": "no"}]}, "bench must be true"),
        (
            "gpu",
            {"why": "x", "requires": [{"model": "m", "why": "y", "pcts": [60, 100]}]},
            r"pcts must be in",
        ),
        (
            "gpu",
            {"why": "x", "requires": [{"model": "m", "why": "y", "models": ["n"]}]},
            "unknown key.*models",
        ),
        (
            "gpu",
            {"why": "x", "models": ["org/M"], "requires": [{"model": "m", "why": "y"}]},
            "m required twice",
        ),
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
    pruned = [r for r in _stored() if r["pruning"]]
    groups = group_results(pruned)
    rows, missing = coverage.complete(groups, [], _rules(), MEASURED)
    assert {(v.config, v.metric) for v in missing} >= {("base (2.67x)", "ifeval"), ("base (2.67x)", "mmlu")}
    named = {t for r in pruned for t in r["settings"]["tasks"]}
    assert len(named) == 12  # the cpu suite's families
    assert len(missing) == len(named)  # every task the other configurations' settings name
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


def test_a_required_model_has_its_own_widths_and_bench():
    (rule,) = _rules(
        models=["org/Big"],
        pcts=[10, 20],
        bench=True,
        requires=[{"model": "org/Small-Instruct", "pcts": [40], "why": "its own"}],
    ).values()
    assert rule.required_models() == ("org/Big", "org/Small-Instruct")
    assert rule.for_model("org/Big") == ((10.0, 20.0), True, "tiers.cpu in thresholds.toml")
    assert rule.for_model("/runners/cache/Small-Instruct") == (  # a local folder of the same name
        (40.0,),
        False,
        "tiers.cpu.requires org/Small-Instruct in thresholds.toml",
    )
    assert rule.for_model("org/Other") is None  # a rule with models covers only those
    (open_rule,) = _rules(pcts=[20], requires=[{"model": "org/Small-Instruct", "why": "base only"}]).values()
    assert open_rule.for_model("org/Other")[:2] == ((20.0,), False)  # without models: every other model
    assert open_rule.for_model("org/Small-Instruct")[:2] == ((), False)


def test_a_required_models_own_widths_are_required_and_no_bench_unless_asked():
    """The stored CPU tier's model required as a `requires` model at 40% (no bench) while the tier's
    other models would need 20% with a bench: only 40% is expected of it, and no bench."""
    results = [r for r in _stored() if not r["pruning"] or r["pruning"]["pct"] not in (20.0, 40.0)]
    rules = _rules(
        models=["org/Other"],
        pcts=[20],
        bench=True,
        requires=[{"model": "smollm2-135m-instruct", "pcts": [40], "why": "its own widths"}],
    )
    groups = group_results(results)
    rows, missing = coverage.complete(groups, [], rules, MEASURED)
    ours = [v for v in missing if v.model != "org/Other"]
    assert {v.config for v in ours} == {"pct 40 (1.60x)"}  # not pct 20, the other models' width
    assert {v.metric for v in ours} == {t for t in _stored()[0]["settings"]["tasks"]}  # no bench item
    assert all("tiers.cpu.requires smollm2-135m-instruct" in v.observed for v in ours)
    # The tier's other required model, absent altogether, is missing as before.
    assert [(v.model, v.config) for v in missing if v.model == "org/Other"] == [
        ("org/Other", "every configuration")
    ]


def test_a_rule_that_benches_some_widths_asks_a_bench_there_only():
    """[tiers.gpu] bench = [60]: the efficiency claims read the most-pruned width, so a bench is asked at
    that width alone; a missing one there is a missing verdict, none is asked at the other widths."""
    results = [r for r in _stored() if not r["pruning"] or r["pruning"]["pct"] in (20.0, 40.0)]
    rules = _rules(pcts=[20, 40], bench=[40])
    rows, missing = coverage.complete(group_results(results), [], rules, MEASURED)
    assert [(v.config, v.metric) for v in missing] == [("pct 40 (1.60x)", "bench")]
    assert not any(r.item == "bench" and r.config.startswith("pct 20") for r in rows)


def test_a_plan_that_benches_some_widths_expects_their_cells_only():
    base, p20, p40 = Planned(None, 0), Planned("ppm", 20), Planned("ppm", 40)
    plan = Plan(
        "cpu", "cpu", "smollm2-135m-instruct", ("piqa",), (base, p20, p40), ("mmlu_b1",), "p", (40.0,)
    )
    assert plan.benches(40) and not plan.benches(20)
    rows, missing = coverage.complete(group_results(_stored()), [plan], {}, MEASURED)
    assert [(v.config, v.metric) for v in missing] == [("pct 40 (1.60x)", "bench mmlu_b1")]
    # Shards of one sweep merge: a shard that benches nothing leaves the widths of the one that does.
    merged = merge([plan, Plan("cpu", "cpu", "smollm2-135m-instruct", ("piqa",), (base,), (), "q")])
    assert merged[0].bench_pcts == (40.0,)
