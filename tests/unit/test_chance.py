"""Chance levels: the computed ones match the data the paper suite scores; keeps_above_chance holds on
the real CPU tier and fails on a model at chance, paired per document."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import pytest

from widthwise.claims import evaluate, exit_code, parse_thresholds
from widthwise.claims.chance import Chance, chance_of, content_free, levels
from widthwise.errors import WidthwiseError
from widthwise.evaluation import loading
from widthwise.evaluation.suites import get_suite
from widthwise.results import collect_results

CPU = Path(__file__).resolve().parents[2] / "baselines" / "measured" / "cpu"
MODEL = "smollm2-135m-instruct"


# Every computed chance level -> the paper-suite task whose documents it is computed on.
COMPUTED = {
    "mmlu/acc": "mmlu",
    "hellaswag/acc": "hellaswag",
    "hellaswag/acc_norm": "hellaswag",
    "arc_challenge/acc": "arc_challenge",
    "arc_challenge/acc_norm": "arc_challenge",
    "piqa/acc": "piqa",
    "piqa/acc_norm": "piqa",
    "winogrande/acc": "winogrande",
    "boolq/acc": "boolq",
    "truthfulqa_mc1/acc": "truthfulqa_mc1",
    "truthfulqa_mc2/acc": "truthfulqa_mc2",
}


def _gold(task, doc) -> int:
    # As lm-eval's multiple-choice scoring reads it (winogrande's gold is its doc_to_text).
    gold = task.doc_to_text(doc) if task.multiple_input else task.doc_to_target(doc)
    return task.doc_to_choice(doc).index(gold) if isinstance(gold, str) else int(gold)


def _recompute(task: str, leaves: dict) -> Chance:
    """The chance level of `task` from its loaded documents (every leaf: MMLU's 57 subjects)."""
    docs = [(t, d) for t in leaves.values() for d in t.eval_docs]
    (split,) = {
        t.config.test_split if t.has_test_docs() else t.config.validation_split for t in leaves.values()
    }
    if task == "truthfulqa_mc2":  # each answer equally likely: MC2 is the share of true answers
        shares = [sum(x) / len(x) for x in (d["mc2_targets"]["labels"] for _, d in docs)]
        return Chance(sum(shares) / len(shares), "", "uniform likelihoods", split, len(docs))
    ks = [len(t.doc_to_choice(d)) for t, d in docs]
    if task == "truthfulqa_mc1":  # positions are invisible to the model (chance.toml)
        return Chance(sum(1 / k for k in ks) / len(ks), "", "uniform 1/k", split, len(docs))
    rule, value = content_free([_gold(t, d) for t, d in docs], ks)
    return Chance(value, "", rule, split, len(docs))


@pytest.fixture(scope="module")
def recomputed() -> dict[str, Chance]:
    """Each computed metric's level from the documents the paper suite scores, loaded as it loads them."""
    suite = get_suite("paper", sorted(set(COMPUTED.values())))
    loaded, _ = loading.load_tasks(suite, loading.plan_sources(suite, allow_hub=False))
    by_task = {}
    for lt in loaded:
        assert all(ids is None for ids in lt.ids.values()), lt.spec.name  # the full split
        by_task[lt.spec.name] = _recompute(lt.spec.name, lt.leaves)
    return {m: by_task[t] for m, t in COMPUTED.items()}


def _mismatches(stored: dict[str, Chance], computed: dict[str, Chance]) -> list[str]:
    out = []
    for m, c in computed.items():
        s = stored.get(m)
        want = (round(c.value, 4), c.rule, c.split, c.n)
        got = (s.value, s.rule, s.split, s.n) if s else None
        if got != want:
            out.append(f"{m}: chance.toml has {got}, the data give {want}")
    return out


def test_every_computed_chance_level_is_recomputed_from_the_data(recomputed):
    assert _mismatches(levels(), recomputed) == []
    assert {m for m, c in levels().items() if c.rule} == set(COMPUTED)


def test_boolq_chance_is_its_majority_rate(recomputed):
    boolq = chance_of("boolq/acc")
    assert (boolq.rule, boolq.split, boolq.n) == ("majority class", "validation", 3270)
    assert boolq.value == round(recomputed["boolq/acc"].value, 4) > 0.6  # always "yes"


def test_the_recomputation_detects_a_changed_level(recomputed):
    stored = dict(levels())
    stored["boolq/acc"] = dataclasses.replace(stored["boolq/acc"], value=0.5)  # the old stated level
    mmlu = stored["mmlu/acc"]
    stored["mmlu/acc"] = dataclasses.replace(mmlu, value=round(mmlu.value + 0.0001, 4))
    stored["piqa/acc"] = dataclasses.replace(stored["piqa/acc"], split="test")
    stored.pop("winogrande/acc")
    assert [m.split(":")[0] for m in _mismatches(stored, recomputed)] == [
        "mmlu/acc",
        "piqa/acc",
        "winogrande/acc",
        "boolq/acc",
    ]


def test_content_free_takes_a_clearly_favoured_position_only():
    assert content_free([1, 1, 1, 0], [2] * 4) == ("majority class", 0.75)
    # 4 choices, the second position 0.28 of 1000 golds: +2.2 sd, a uniform guess still.
    golds = [1] * 280 + [0, 2, 3] * 240
    assert content_free(golds, [4] * 1000) == ("uniform 1/k", 0.25)
    # 0.30: +3.7 sd, so always answering it.
    golds = [1] * 300 + [0, 2, 3] * 233 + [0]
    assert content_free(golds, [4] * 1000) == ("constant position", 0.3)


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
