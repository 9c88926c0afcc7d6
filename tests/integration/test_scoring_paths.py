"""The prefix-cache scoring path against lm-eval's own on the embedded default model and real tasks.

Both paths evaluate SmolLM2-135M-Instruct, pruned by PPM 20%, on the smoke suite's log-likelihood tasks
(every multiple-choice family, MMLU 5-shot, LAMBADA). Per document and per choice the log-likelihoods
agree within 1e-4 (relative, or absolute near zero: the regression gate's tolerance), the greedy flags
and every outcome are equal, and the prefix path runs fewer tokens through the model.
"""

from __future__ import annotations

import math

import pytest

from support import evaluate_at
from widthwise.models import DEFAULT_MODEL

pytestmark = pytest.mark.slow

TASKS = [
    "lambada_openai",
    "mmlu",
    "arc_challenge",
    "hellaswag",
    "boolq",
    "piqa",
    "winogrande",
    "truthfulqa_mc1",
    "truthfulqa_mc2",
]


@pytest.fixture(scope="module")
def both():
    return {
        s: evaluate_at(DEFAULT_MODEL, "smoke", pct=20, tasks=TASKS, scoring=s) for s in ("plain", "prefix")
    }


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-4, abs_tol=1e-4)


def test_every_choice_scores_the_same_on_both_paths(both):
    plain, prefix = both["plain"], both["prefix"]
    choices = 0
    for task in TASKS:
        a, b = plain["samples"][task], prefix["samples"][task]
        assert [r["doc_id"] for r in a] == [r["doc_id"] for r in b]
        for x, y in zip(a, b, strict=True):
            assert x.get("correct") == y.get("correct"), (task, x["doc_id"])
            assert x["metrics"].keys() == y["metrics"].keys()
            for k, v in x["metrics"].items():
                w = y["metrics"][k]
                if isinstance(v, list):  # perplexity: (log-likelihood, ...)
                    assert all(close(p, q) for p, q in zip(v, w, strict=True)), (task, k)
                else:
                    assert close(v, w), (task, x["doc_id"], k)
            if task != "lambada_openai":
                cx, cy = x["choices"], y["choices"]
                assert cx["greedy"] == cy["greedy"] and cx["gold"] == cy["gold"]
                assert all(close(p, q) for p, q in zip(cx["ll"], cy["ll"], strict=True)), (task, x["doc_id"])
                choices += len(cx["ll"])
    assert choices > 80
    # the continuous scores read lm-eval's own gold index: the margin is positive exactly when correct
    for task in ("mmlu", "arc_challenge", "hellaswag", "boolq", "piqa", "winogrande", "truthfulqa_mc1"):
        recs = prefix["samples"][task]
        assert recs and all("margin" in r for r in recs), task
        assert all((r["margin"] > 0) == r["correct"] for r in recs if abs(r["margin"]) > 1e-6), task
        assert f"{task}/margin" in prefix["metrics"]
    for key, entry in plain["metrics"].items():
        if entry["value"] is not None:
            assert close(entry["value"], prefix["metrics"][key]["value"]), key


def test_the_prefix_path_does_less_work_and_says_so(both):
    p, f = (both[s]["provenance"] for s in ("plain", "prefix"))
    assert (p["scoring"], f["scoring"]) == ("plain", "prefix")
    tasks_p, tasks_f = p["profile"]["tasks"], f["profile"]["tasks"]
    assert set(tasks_p) == set(tasks_f) and "truthfulqa_mc2" in tasks_f
    assert tasks_f["truthfulqa_mc2"]["requests"] == tasks_p["truthfulqa_mc2"]["requests"] > 0
    # TruthfulQA's 6-example primer is shared by every choice of every document
    assert tasks_f["truthfulqa_mc2"]["tokens"] < tasks_p["truthfulqa_mc2"]["tokens"] / 3
    head = sum(t["head_positions"] for t in tasks_f.values())
    assert head < sum(t["head_positions"] for t in tasks_p.values()) / 4
    assert f["profile"]["gemm"]["gflops"] > 0 and f["profile"]["body_params"] > 0
