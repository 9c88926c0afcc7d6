"""The regression gate on real smoke-suite Results of the default model (tests/claims/data)."""

import copy
from pathlib import Path

import pytest

from widthwise.claims import exit_code
from widthwise.claims.regression import TOLERANCE, check, compare, load_tolerance
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
        (("versions", "lm_eval"), "0.9.0", "lm_eval 0.9.0 (fresh)"),
    ],
)
def test_another_thread_count_or_library_is_refused_not_flaky(base, path, value, named):
    stored = copy.deepcopy(base)
    stored["provenance"]["torch_threads"] = 1
    fresh = copy.deepcopy(stored)
    assert {v.verdict for v in compare(fresh, stored)} == {"holds"}
    target = fresh["provenance"]
    for k in path[:-1]:
        target = target[k]
    target[path[-1]] = value
    with pytest.raises(WidthwiseError, match="ran in another environment") as e:
        compare(fresh, stored)
    assert named in str(e.value) and "widthwise baseline update" in str(e.value)


def test_another_cpu_kernel_level_is_compared_within_the_tolerance_and_named():
    stored = read_result(STORED_CPU / "smollm2-135m-instruct_ppm-pct20_cpu.json")
    # The file was stored at AVX512, except the families `baseline update --tasks` re-stored at AVX2.
    restored = {
        t for t, p in stored["provenance"]["tasks_restored"].items() if p["torch_cpu_capability"] == "AVX2"
    }
    assert restored and stored["provenance"]["versions"]["torch_cpu_capability"] == "AVX512"
    fresh = copy.deepcopy(stored)
    del fresh["provenance"]["tasks_restored"]  # a fresh Result ran every family at once
    for level in ("AVX2", "AVX512"):
        fresh["provenance"]["versions"]["torch_cpu_capability"] = level
        verdicts = compare(fresh, stored)
        assert {v.verdict for v in verdicts} == {"holds"}
        for v in verdicts:
            stored_level = "AVX2" if v.metric.split("/")[0] in restored else "AVX512"
            if level == stored_level:
                assert " vs AVX" not in v.method, v.method  # one level: nothing to name
            else:
                assert v.method.count(f"{level} vs {stored_level}: tolerance") == 1, v.method
    same = compare(stored, copy.deepcopy(stored))
    assert not any("AVX" in v.method for v in same)  # one level: nothing to name


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
    assert mmlu.verdict == "holds" and f"1 near tie excused (doc_ids {rec['doc_id']})" in mmlu.observed
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


def _moved(result, task, by):
    """Every choice's log-likelihood of `task` moved by `by` times its tolerance, the same way."""
    r = copy.deepcopy(result)
    for rec in r["samples"][task]:
        rec["choices"]["ll"] = [x + by * TOLERANCE.ll(x) for x in rec["choices"]["ll"]]
    return r


def test_a_log_likelihood_is_held_to_abs_plus_rel_times_its_size():
    stored = read_result(STORED_CPU / "smollm2-135m-instruct_ppm-pct20_cpu.json")
    rec = stored["samples"]["winogrande"][0]
    fresh = copy.deepcopy(stored)
    fresh_rec = fresh["samples"]["winogrande"][0]
    x = rec["choices"]["ll"][0]
    fresh_rec["choices"]["ll"][0] = x - 0.99 * TOLERANCE.ll(x)
    (v,) = [v for v in compare(fresh, stored) if v.metric.startswith("winogrande/")]
    assert v.verdict == "holds"
    fresh_rec["choices"]["ll"][0] = x - 1.01 * (TOLERANCE.abs + TOLERANCE.rel * abs(x))
    (v,) = [v for v in compare(fresh, stored) if v.metric.startswith("winogrande/")]
    assert v.verdict == "fails" and f"1 of 150 documents changed (doc_ids {rec['doc_id']})" in v.observed


def test_a_change_that_moves_every_document_within_the_tolerance_fails_as_a_whole():
    stored = read_result(STORED_CPU / "smollm2-135m-instruct_ppm-pct20_cpu.json")
    # Below the task's RMS bound everything holds; every document moved the same way past it fails,
    # though no single document left its tolerance.
    inside = _moved(stored, "winogrande", 0.9 * TOLERANCE.rms)
    (v,) = [v for v in compare(inside, stored) if v.metric.startswith("winogrande/")]
    assert v.verdict == "holds" and v.observed.startswith("0 of 150 documents changed")
    beyond = _moved(stored, "winogrande", min(1.1 * TOLERANCE.rms, 0.99))
    (v,) = [v for v in compare(beyond, stored) if v.metric.startswith("winogrande/")]
    assert v.verdict == "fails" and v.observed.startswith("0 of 150 documents changed")
    assert "every document moved" in v.observed


def test_a_malformed_tolerance_file_is_one_clear_error(tmp_path):
    bad = tmp_path / "regression.toml"
    bad.write_text("[loglikelihood]\nabs = 1e-3\n")
    with pytest.raises(WidthwiseError, match="not a regression tolerance file"):
        load_tolerance(bad)
    bad.write_text("[loglikelihood]\nabs = -1\nrel = 0\nrms = 1\n[generation]\nnear_tie = 1\n")
    with pytest.raises(WidthwiseError, match="finite and non-negative"):
        load_tolerance(bad)
    assert load_tolerance() == TOLERANCE


def test_mc2_is_a_score_held_to_the_tolerance_not_a_flag():
    stored = read_result(STORED_CPU / "smollm2-135m-instruct_ppm-pct20_cpu.json")
    fresh = copy.deepcopy(stored)
    rec = fresh["samples"]["truthfulqa_mc2"][0]
    rec["metrics"]["acc"] += 1e-7  # float noise in mc2: neither a change nor a near tie
    rec["score"] = rec["metrics"]["acc"]
    (v,) = [v for v in compare(fresh, stored) if v.metric.startswith("truthfulqa_mc2/")]
    assert v.verdict == "holds" and "near tie" not in v.observed
    rec["metrics"]["acc"] += 0.01
    rec["score"] = rec["metrics"]["acc"]
    (v,) = [v for v in compare(fresh, stored) if v.metric.startswith("truthfulqa_mc2/")]
    assert v.verdict == "fails"
