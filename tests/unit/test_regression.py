"""The regression gate on real smoke-suite Results of the default model (tests/claims/data)."""

import copy
from pathlib import Path

import pytest

from widthwise.claims import exit_code
from widthwise.claims.regression import check, compare
from widthwise.errors import WidthwiseError
from widthwise.results import read_result

DATA = Path(__file__).resolve().parents[1] / "claims" / "data" / "eval-smoke"
STORED_CPU = Path(__file__).resolve().parents[2] / "baselines" / "measured" / "cpu"


@pytest.fixture
def base():
    return read_result(DATA / "base.json")


@pytest.fixture
def pruned():
    return read_result(DATA / "pct40.json")


def test_a_reproduced_run_holds(base, pruned):
    verdicts = check([copy.deepcopy(base), copy.deepcopy(pruned)], [base, pruned])
    assert {v.verdict for v in verdicts} == {"holds"}
    assert {v.metric.split("/")[0] for v in verdicts} == set(base["samples"])
    assert all(v.observed.startswith("0 of ") for v in verdicts)


def test_one_changed_answer_fails_and_is_named(base):
    fresh = copy.deepcopy(base)
    rec = fresh["samples"]["mmlu"][1]
    rec["correct"] = not rec["correct"]
    (mmlu,) = [v for v in compare(fresh, base) if v.metric.startswith("mmlu/")]
    assert mmlu.verdict == "fails" and f"doc_ids {rec['doc_id']}" in mmlu.observed
    assert compare(fresh, base, max_changed=1)[1].verdict == "holds"


def test_scores_change_beyond_float_noise(base):
    fresh = copy.deepcopy(base)
    fresh["samples"]["truthfulqa_mc2"][0]["score"] *= 1 + 1e-6  # summation-order noise: tolerated
    assert {v.verdict for v in compare(fresh, base)} == {"holds"}
    fresh["samples"]["truthfulqa_mc2"][0]["score"] *= 1.01
    verdict = [v for v in compare(fresh, base) if v.metric.startswith("truthfulqa_mc2")][0]
    assert verdict.verdict == "fails"


def test_different_inputs_or_settings_are_refused(base, pruned):
    fresh = copy.deepcopy(base)
    fresh["samples"]["mmlu"][0]["prompt_hash"] = "0" * 64
    with pytest.raises(WidthwiseError, match="prompt_hash differs"):
        compare(fresh, base)
    fresh = copy.deepcopy(base)
    fresh["settings"]["dtype"] = "bfloat16"
    with pytest.raises(WidthwiseError, match="other settings.*dtype"):
        compare(fresh, base)
    with pytest.raises(WidthwiseError, match="no stored baseline"):
        check([pruned], [base])


def test_log_likelihoods_are_compared_not_only_the_correct_flag():
    # LAMBADA's `correct` is 0 for most documents of a small model: shifting every log-likelihood by
    # -0.5 nats (perplexity x1.65) leaves every flag as it was and must still fail.
    base = read_result(STORED_CPU / "smollm2-135m-instruct_ppm-pct40_cpu.json")
    fresh = copy.deepcopy(base)
    for rec in fresh["samples"]["lambada_openai"]:
        rec["score"] -= 0.5
        rec["metrics"]["perplexity"] -= 0.5
    (lambada,) = [v for v in compare(fresh, base) if v.metric.startswith("lambada_openai/")]
    assert lambada.verdict == "fails"
    n = len(base["samples"]["lambada_openai"])
    assert lambada.observed.startswith(f"{n} of {n} documents changed")


def test_a_stored_baseline_without_a_fresh_result_is_missing(base, pruned):
    verdicts = check([copy.deepcopy(base)], [base, pruned])
    (gap,) = [v for v in verdicts if v.verdict == "missing"]
    assert gap.config == "pct 40 (1.60x)" and "no fresh Result" in gap.observed
    assert exit_code(verdicts) == 1


@pytest.mark.parametrize(
    "path, value, named",
    [
        (("torch_threads",), 2, "torch_threads 2 (fresh) vs 1 (stored)"),
        (("versions", "torch"), "2.99.0+cpu", "torch 2.99.0+cpu (fresh)"),
        (("versions", "transformers"), "9.0.0", "transformers 9.0.0 (fresh)"),
        (("versions", "torch_cpu_capability"), "AVX512", "torch CPU capability AVX512 (fresh) vs AVX2"),
    ],
)
def test_another_thread_count_library_or_cpu_kernel_level_is_refused_not_flaky(base, path, value, named):
    stored = copy.deepcopy(base)
    stored["provenance"]["torch_threads"] = 1
    stored["provenance"]["versions"]["torch_cpu_capability"] = "AVX2"
    fresh = copy.deepcopy(stored)
    assert {v.verdict for v in compare(fresh, stored)} == {"holds"}
    target = fresh["provenance"]
    for k in path[:-1]:
        target = target[k]
    target[path[-1]] = value
    with pytest.raises(WidthwiseError, match="ran in another environment") as e:
        compare(fresh, stored)
    assert named in str(e.value) and "widthwise baseline update" in str(e.value)


def test_a_level_the_stored_baseline_never_recorded_is_not_compared(base):
    stored = copy.deepcopy(base)
    stored["provenance"]["versions"].pop("torch_cpu_capability", None)
    fresh = copy.deepcopy(stored)
    fresh["provenance"]["versions"]["torch_cpu_capability"] = "AVX512"
    assert {v.verdict for v in compare(fresh, stored)} == {"holds"}


def _with_choices(result, task="mmlu"):
    """Records that keep every choice's log-likelihood (schema 3), gold first by construction."""
    r = copy.deepcopy(result)
    for i, rec in enumerate(r["samples"][task]):
        lls = [-10.0 - i, -12.0 - i, -13.0, -14.0]
        rec["choices"] = {"ll": lls, "greedy": [False] * 4, "chars": [10] * 4, "gold": 0}
    return r


def test_an_outcome_flip_on_a_near_tie_is_float_noise_only_when_every_choice_agrees(base):
    stored = _with_choices(base)
    fresh = copy.deepcopy(stored)
    rec = fresh["samples"]["mmlu"][0]
    rec["correct"] = not rec["correct"]
    rec["metrics"]["acc"] = 1.0 - rec["metrics"]["acc"]
    rec["score"] = rec["metrics"]["acc"]
    rec["choices"]["ll"][1] *= 1 + 1e-6  # the tie fell the other way: every log-likelihood agrees
    (mmlu,) = [v for v in compare(fresh, stored) if v.metric.startswith("mmlu/")]
    assert mmlu.verdict == "holds"
    rec["choices"]["ll"][1] += 0.01  # a real change of one choice's score
    (mmlu,) = [v for v in compare(fresh, stored) if v.metric.startswith("mmlu/")]
    assert mmlu.verdict == "fails" and f"doc_ids {rec['doc_id']}" in mmlu.observed


def test_a_flip_against_a_baseline_without_choices_is_still_a_change(base):
    fresh = _with_choices(base)  # fresh keeps choices, the stored (schema 2) record does not
    rec = fresh["samples"]["mmlu"][0]
    rec["correct"] = not rec["correct"]
    (mmlu,) = [v for v in compare(fresh, base) if v.metric.startswith("mmlu/")]
    assert mmlu.verdict == "fails"
    assert {v.verdict for v in compare(_with_choices(base), base)} == {"holds"}
