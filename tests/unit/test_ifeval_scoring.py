"""IFEval scoring through lm-eval's own instruction checkers, on hand-written responses, offline.

The checkers are lm-eval's (lm_eval.tasks.ifeval.utils.process_results); widthwise only adds the
per-instruction records, the breakdown by instruction type and the degenerate flag. The sentence
counter needs NLTK's punkt_tab, which must come from WIDTHWISE_DATA_DIR: lm-eval's ifeval module tries
to download it at import time when it is missing.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from widthwise import data
from widthwise.evaluate import _ifeval_record, ifeval_extras


@pytest.fixture(scope="module")
def process_results():
    shared = data.data_dir()
    assert shared is not None, "WIDTHWISE_DATA_DIR must point at the shared data folder (../shared/data)"
    assert (shared / "nltk_data" / "tokenizers" / "punkt_tab" / "english").is_dir()
    data.setup_environment(allow_hub=False)
    assert str(shared / "nltk_data") in os.environ["NLTK_DATA"].split(os.pathsep)
    import nltk

    # Found locally, so importing lm-eval's ifeval module will not try to download it.
    assert Path(nltk.data.find("tokenizers/punkt_tab")).is_relative_to(shared)
    from lm_eval.tasks.ifeval.utils import process_results

    return process_results


def doc(instruction: str, kwargs: dict, prompt: str = "Write something.") -> dict:
    return {"key": 1, "prompt": prompt, "instruction_id_list": [instruction], "kwargs": [kwargs]}


CASES = [
    # (instruction, kwargs, good response, bad response)
    ("punctuation:no_comma", {}, "I like apples and pears.", "I like apples, pears and plums."),
    (
        "length_constraints:number_words",
        {"relation": "less than", "num_words": 10},
        "Short and sweet.",
        "This answer runs on and on for many more words than the limit allows here.",
    ),
    (
        "detectable_format:number_bullet_lists",
        {"num_bullets": 2},
        "* first point\n* second point",
        "* only one point",
    ),
    ("keywords:existence", {"keywords": ["banana"]}, "A banana is yellow.", "An apple is red."),
    (
        "length_constraints:number_sentences",  # counted by NLTK's punkt (punkt_tab data)
        {"relation": "less than", "num_sentences": 3},
        "Dr. Smith arrived at noon. He left at one.",
        "One thing. Two things. Three things. Four things.",
    ),
]


@pytest.mark.parametrize(("instruction", "kwargs", "good", "bad"), CASES, ids=[c[0] for c in CASES])
def test_checkers_separate_good_from_bad(process_results, instruction, kwargs, good, bad):
    d = doc(instruction, kwargs)
    ok = process_results(d, [good])
    assert ok["prompt_level_strict_acc"] is True
    assert ok["inst_level_strict_acc"] == [True]
    ko = process_results(d, [bad])
    assert ko["prompt_level_strict_acc"] is False
    assert ko["inst_level_strict_acc"] == [False]


def test_sentence_counter_uses_punkt_abbreviations(process_results):
    # A naive split on ". " sees three sentences; punkt knows "Dr." and counts two, so "less than 3" holds
    # only when punkt_tab was really loaded.
    from lm_eval.tasks.ifeval.instructions_util import count_sentences

    assert count_sentences("Dr. Smith arrived at noon. He left at one.") == 2


def _record(process_results, d: dict, response: str) -> dict:
    rec = {"doc_id": 0, "response": response, "metrics": process_results(d, [response])}
    _ifeval_record(rec, d)
    return rec


def test_degenerate_response_passes_negative_constraints_but_is_flagged(process_results):
    looping = "is is is is is is is is is is is is is is is is is is is is"
    no_comma = _record(process_results, doc("punctuation:no_comma", {}), looping)
    assert no_comma["correct"] is True  # lm-eval counts it as following "no commas"
    assert no_comma["degenerate"] is True
    letters = _record(
        process_results,
        doc("keywords:letter_frequency", {"letter": "a", "let_frequency": 2, "let_relation": "less than"}),
        "F" * 80,
    )
    assert letters["correct"] is True
    assert letters["degenerate"] is True
    assert letters["instructions"] == [{"id": "keywords:letter_frequency", "strict": True, "loose": True}]


def test_extras_separate_following_from_degeneration(process_results):
    recs = [
        _record(process_results, doc("punctuation:no_comma", {}), "is is is is is is is is is is is is"),
        _record(process_results, doc("punctuation:no_comma", {}), "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF"),
        _record(process_results, doc("punctuation:no_comma", {}), "I like apples and pears."),
        _record(process_results, doc("keywords:existence", {"keywords": ["banana"]}), "An apple is red."),
    ]
    extras = ifeval_extras(recs)
    assert extras["degenerate_share"]["value"] == pytest.approx(0.5)
    # As scored: 3 of 4 pass; over non-degenerate responses only 1 of 2.
    assert extras["prompt_level_strict_acc_nondegenerate"]["value"] == pytest.approx(0.5)
    assert extras["prompt_level_strict_acc_nondegenerate"]["n"] == 2
    assert extras["prompt_level_strict_acc_degenerate"]["value"] == pytest.approx(1.0)
    assert extras["strict_acc@punctuation:no_comma"]["value"] == pytest.approx(1.0)
    assert extras["strict_acc@punctuation:no_comma"]["n"] == 3
    assert extras["strict_acc@keywords:existence"]["value"] == pytest.approx(0.0)


def test_all_degenerate_is_not_measurable(process_results):
    recs = [_record(process_results, doc("punctuation:no_comma", {}), "is is is is is is is is is is")]
    extras = ifeval_extras(recs)
    entry = extras["prompt_level_strict_acc_nondegenerate"]
    assert entry["value"] is None and entry["n"] == 0 and entry["not_measurable"]
