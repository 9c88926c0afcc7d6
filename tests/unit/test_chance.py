"""Chance levels: the computed ones match the data; keeps_above_chance holds on the real CPU tier and
fails on a model at chance, paired per document."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from widthwise.claims import evaluate, exit_code, parse_thresholds
from widthwise.claims.chance import chance_of, levels
from widthwise.data import require_data_dir
from widthwise.errors import WidthwiseError
from widthwise.results import collect_results

CPU = Path(__file__).resolve().parents[2] / "baselines" / "measured" / "cpu"
MODEL = "smollm2-135m-instruct"


def test_truthfulqa_chance_levels_are_recomputed_from_the_data():
    rows = [json.loads(x) for x in (require_data_dir() / "truthfulqa" / "mc_validation.jsonl").open()]
    assert len(rows) == 817
    mc1 = sum(1 / len(r["mc1_targets"]["labels"]) for r in rows) / len(rows)
    mc2 = sum(sum(r["mc2_targets"]["labels"]) / len(r["mc2_targets"]["labels"]) for r in rows) / len(rows)
    assert chance_of("truthfulqa_mc1/acc").value == round(mc1, 4)
    assert chance_of("truthfulqa_mc2/acc").value == round(mc2, 4)


def test_every_chance_level_has_a_reason_and_unknown_ones_say_why():
    assert all(c.why for c in levels().values())
    assert chance_of("leaderboard_musr/acc_norm").value is None
    assert "not computed" in chance_of("leaderboard_musr/acc_norm").why


def _claim(**kw):
    t = {
        "statement": "s",
        "metric": "piqa/acc",
        "kind": "keeps_above_chance",
        "models": [MODEL],
        "tiers": ["cpu"],
        "pcts": [5],
        "fraction": 0.1,
        **kw,
    }
    return parse_thresholds({"claims": {"c": t}})


def test_a_metric_without_a_chance_level_is_refused():
    with pytest.raises(WidthwiseError, match="has no chance level"):
        _claim(metric="leaderboard_musr/acc_norm")
    with pytest.raises(WidthwiseError, match=r"fraction must be in \(0, 1\)"):
        _claim(fraction=1.0)


def test_keeps_above_chance_is_paired_on_the_cpu_tier_and_fails_at_chance():
    results = collect_results([CPU])
    (v,) = evaluate(_claim(), results)  # PIQA at 5%: 0.61 vs 0.71, chance 0.5: keeps 52%
    assert v.verdict == "holds" and "paired bootstrap" in v.method and v.n == 100
    broken = copy.deepcopy(results)
    pruned = next(r for r in broken if (r["pruning"] or {}).get("pct") == 5.0)
    for i, rec in enumerate(pruned["samples"]["piqa"]):
        rec["correct"] = i % 2 == 0  # a coin: exactly chance
    (w,) = evaluate(_claim(), broken)
    assert w.verdict == "fails" and exit_code([w]) == 1
    for r in broken:
        r["samples"].pop("piqa")
    (u,) = evaluate(_claim(), broken)
    assert u.verdict == "skipped" and "unpaired" in u.observed and exit_code([u]) == 1
