"""IFEval scoring through lm-eval's own instruction checkers, on hand-written responses, offline.

The checkers are lm-eval's (lm_eval.tasks.ifeval.utils.process_results) and are not tested here;
widthwise adds the per-instruction records, the breakdown by instruction type and the degenerate flag.
The sentence counter needs NLTK's punkt_tab, which must come from WIDTHWISE_DATA_DIR: lm-eval's ifeval
module tries to download it at import time when it is missing.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from widthwise import data
from widthwise.evaluation.scoring import _ifeval_record, ifeval_extras


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


def test_sentence_counter_finds_punkt_in_the_data_folder(process_results):
    # What widthwise owns is the environment: NLTK_DATA pointing at the data folder. A naive split on ". "
    # sees three sentences; punkt knows "Dr." and counts two only when punkt_tab was really loaded.
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
