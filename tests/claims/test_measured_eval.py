"""The engine on real `widthwise eval` output with per-response records.

data/eval-smoke/ holds the embedded default model, base and 40% PPM-pruned, on the smoke suite's ifeval,
mmlu and truthfulqa_mc2 documents (4, 4 and 8). The pruned model's IFEval responses are all degenerate,
and one of them passes its instructions: the "rise" this section is about.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from widthwise.claims import evaluate, parse_thresholds
from widthwise.errors import WidthwiseError
from widthwise.results import collect_results

DATA = Path(__file__).parent / "data" / "eval-smoke"
BASE = {"statement": "s", "models": ["smollm2-135m-instruct"], "tiers": ["cpu"], "configs": "all_pruned"}
IFEVAL = {**BASE, "metric": "ifeval/prompt_level_strict_acc", "kind": "non_inferior", "margin": 0.02}


@pytest.fixture
def results():
    return collect_results([DATA])


def test_degenerate_passes_are_counted_as_failures(results):
    pruned = next(r for r in results if r["pruning"])
    assert all(s["degenerate"] for s in pruned["samples"]["ifeval"])
    claims = parse_thresholds({"claims": {"plain": IFEVAL, "nondeg": {**IFEVAL, "exclude_degenerate": True}}})
    plain, nondeg = evaluate(claims, results)
    assert plain.value == pytest.approx(0.25) and "b=0, c=1" in plain.method
    assert nondeg.value == 0 and "b=0, c=0" in nondeg.method
    # Four paired documents prove nothing either way: both bounds are far below the margin.
    assert plain.verdict == nondeg.verdict == "fails"
    assert float(plain.mde) > 0.5


def test_scores_and_correct_flags_choose_the_paired_test(results):
    claims = parse_thresholds(
        {
            "claims": {
                "mmlu": {**BASE, "metric": "mmlu/acc", "kind": "drop"},
                "mc2": {**BASE, "metric": "truthfulqa_mc2/acc", "kind": "non_inferior", "margin": 0.06},
            }
        }
    )
    mmlu, mc2 = evaluate(claims, results)
    assert mmlu.method.startswith("exact McNemar") and mmlu.n == 4
    assert mc2.method.startswith("paired bootstrap") and mc2.n == 8


def test_pairing_real_records_is_refused_when_prompts_differ(results):
    broken = copy.deepcopy(results)
    pruned = next(r for r in broken if r["pruning"])
    pruned["samples"]["ifeval"][0]["prompt_hash"] = "0" * 64
    with pytest.raises(WidthwiseError, match="prompt_hash differs"):
        evaluate(parse_thresholds({"claims": {"plain": IFEVAL}}), broken)
