"""The regression gate sees generated text: responses, instruction verdicts, degenerate flags and extracted
answers are compared exactly, document by document, on the stored CPU baseline's real records (edited in
memory). A differing response passes only as a reported near tie with stored evidence on both sides."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from widthwise.claims.regression import TOLERANCE, compare, compare_doc, first_divergence

STORED = Path(__file__).resolve().parents[2] / "baselines" / "measured" / "cpu"


@pytest.fixture(scope="module")
def _stored():
    from widthwise.results import read_result

    return read_result(STORED / "smollm2-135m-instruct_base_cpu.json")


@pytest.fixture
def stored(_stored):
    return copy.deepcopy(_stored)


def verdict(fresh, stored, task):
    (v,) = [v for v in compare(fresh, stored) if v.metric.startswith(f"{task}/")]
    return v


def test_the_stored_records_reproduce_themselves(stored):
    fresh = copy.deepcopy(stored)
    for task in ("ifeval", "gsm8k"):
        v = verdict(fresh, stored, task)
        assert v.verdict == "holds" and v.observed.startswith("0 of ")


@pytest.mark.parametrize(
    "edit, task",
    [
        (lambda r: r.update(response=r["response"] + " "), "ifeval"),  # rewriting every IFEval response
        (lambda r: r.update(degenerate=not r["degenerate"]), "ifeval"),  # flipping every degenerate flag
        (lambda r: r.update(response="The answer is 42.\n#### 42"), "gsm8k"),  # replacing GSM8K responses
        (lambda r: r.update(prompt_level_loose=not r["prompt_level_loose"]), "ifeval"),
    ],
    ids=["ifeval-response", "degenerate", "gsm8k-response", "prompt-level-loose"],
)
def test_every_edited_record_is_a_change(stored, edit, task):
    fresh = copy.deepcopy(stored)
    for rec in fresh["samples"][task]:
        edit(rec)
    v = verdict(fresh, stored, task)
    n = len(stored["samples"][task])
    assert v.verdict == "fails" and v.observed.startswith(f"{n} of {n} documents changed")


def test_flipped_instruction_verdicts_of_incorrect_prompts_are_changes(stored):
    fresh = copy.deepcopy(stored)
    flipped = []
    for rec in fresh["samples"]["ifeval"]:
        if not rec["correct"]:
            for inst in rec["instructions"]:
                inst["strict"] = not inst["strict"]
            flipped.append(rec["doc_id"])
    assert flipped
    v = verdict(fresh, stored, "ifeval")
    assert v.verdict == "fails" and v.observed.startswith(f"{len(flipped)} of 32 documents changed")


def with_answers(result):
    r = copy.deepcopy(result)
    for rec in r["samples"]["gsm8k"]:
        rec["answers"] = {"flexible-extract": rec["response"].split()[-1], "strict-match": "[invalid]"}
    return r


def test_extracted_answers_are_compared_where_both_records_have_them(stored):
    for rec in stored["samples"]["gsm8k"]:
        rec.pop("answers", None)  # as a file stored before answers were recorded
    fresh = with_answers(stored)
    v = verdict(fresh, stored, "gsm8k")  # compared on the rest
    assert v.verdict == "holds" and "stored records lack answers" in v.method
    both = with_answers(stored)
    fresh = copy.deepcopy(both)
    fresh["samples"]["gsm8k"][-1]["answers"]["strict-match"] = "72"
    v = verdict(fresh, both, "gsm8k")
    n = len(both["samples"]["gsm8k"])
    assert v.verdict == "fails" and v.observed.startswith(f"1 of {n} documents changed")


def evidence(tokens, margins):
    return {"tokens": list(tokens), "margins": list(margins)}


def with_evidence(result, task="ifeval", margin=5.0):
    r = copy.deepcopy(result)
    for rec in r["samples"][task]:
        rec["generation"] = evidence(range(100, 110), [margin] * 10)
    return r


def diverge(rec, at, margins_at):
    """The response and the token ids differ from index `at`, where the margins are `margins_at`."""
    rec["response"] = rec["response"] + " (a different ending)"
    rec["generation"]["tokens"][at:] = [7] * (10 - at)
    rec["generation"]["margins"][at] = margins_at


def test_a_differing_response_is_excused_only_as_a_reported_near_tie(stored):
    base = with_evidence(stored)
    tie = TOLERANCE.near_tie / 2
    fresh = copy.deepcopy(base)
    base["samples"]["ifeval"][4]["generation"]["margins"][6] = tie
    rec = fresh["samples"]["ifeval"][4]
    diverge(rec, 6, tie)
    rec["degenerate"] = not rec["degenerate"]  # its outcomes go with the excused text
    rec["instructions"][0]["strict"] = not rec["instructions"][0]["strict"]
    v = verdict(fresh, base, "ifeval")
    assert v.verdict == "holds" and v.observed.startswith("0 of 32 documents changed")
    assert f"1 near tie excused (doc_ids {rec['doc_id']})" in v.observed


@pytest.mark.parametrize("stored_margin, fresh_margin", [(5.0, 5.0), (5.0, 1e-5), (1e-5, 5.0)])
def test_a_differing_response_without_a_tie_on_both_sides_changed(stored, stored_margin, fresh_margin):
    base = with_evidence(stored)
    base["samples"]["ifeval"][4]["generation"]["margins"][6] = stored_margin
    fresh = copy.deepcopy(base)
    diverge(fresh["samples"]["ifeval"][4], 6, fresh_margin)
    assert verdict(fresh, base, "ifeval").verdict == "fails"


def test_no_excuse_without_evidence_on_both_sides(stored):
    base = with_evidence(stored, margin=1e-6)
    fresh = copy.deepcopy(base)
    diverge(fresh["samples"]["ifeval"][0], 2, 1e-6)
    del base["samples"]["ifeval"][0]["generation"]
    v = verdict(fresh, base, "ifeval")
    assert v.verdict == "fails" and "stored records lack generation" in v.method


def test_a_response_cut_short_is_no_near_tie():
    # A changed stop sequence ends the text early: the ids agree as far as both go, no greedy choice
    # differed, and no margin can excuse it.
    a = {"response": "Paris.\n\nAnd", "generation": evidence([1, 2, 3, 4], [1e-6] * 4)}
    b = {"response": "Paris.", "generation": evidence([1, 2], [1e-6] * 2)}
    assert first_divergence(a, b) is None
    assert compare_doc(a, b).status == "changed"


def test_the_same_text_from_other_token_ids_is_a_change():
    a = {"response": "ab", "generation": evidence([1, 2], [3.0, 3.0])}
    b = {"response": "ab", "generation": evidence([9], [3.0])}
    assert compare_doc(a, b).status == "changed"
    assert compare_doc(a, copy.deepcopy(a)).status == "same"
