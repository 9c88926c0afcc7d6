"""widthwise's lm-eval model records how each response was decoded (token ids, top-1 minus top-2 margin
per step), on a real tiny transformers model through lm-eval's own generate_until, and changes no text."""

from __future__ import annotations

import math
import random

import torch
from lm_eval.models.huggingface import HFLM

from support import WORDS, word_llama, word_tokenizer
from widthwise.evaluation.hflm import Generated, WidthwiseHFLM, _row_evidence


def _instances(args: list[tuple], task: str = "gen") -> list:
    from lm_eval.api.instance import Instance

    return [
        Instance(request_type="generate_until", doc={}, arguments=a, idx=0, metadata=(task, i, 1))
        for i, a in enumerate(args)
    ]


def _prompts(n: int = 6, seed: int = 3) -> list[tuple]:
    rng = random.Random(seed)
    gen = {"until": ["[EOS]"], "max_gen_toks": 10, "do_sample": False}
    # Contexts of different lengths, so the batch is left-padded.
    return [(" ".join(rng.choice(WORDS) for _ in range(rng.randrange(2, 12))), gen) for _ in range(n)]


def _lm(cls, batch_size: int = 4):
    torch.set_num_threads(1)
    return cls(pretrained=word_llama(seed=5), tokenizer=word_tokenizer(), batch_size=batch_size, device="cpu")


def test_every_response_carries_the_greedy_decisions_that_made_it():
    lm = _lm(WidthwiseHFLM)
    prompts = _prompts()
    out = lm.generate_until(_instances(prompts), disable_tqdm=True)
    assert all(isinstance(t, Generated) and t.evidence for t in out)
    model = lm.model
    for (context, _), text in zip(prompts, out, strict=True):
        ev = text.evidence
        assert len(ev["tokens"]) == len(ev["margins"]) and 0 < len(ev["tokens"]) <= 10
        assert lm.tok_decode([t for t in ev["tokens"] if t != 2]).strip() == text.strip()
        # Teacher-forced on the context and the generated ids, each step's argmax is the id recorded and
        # its top-1 minus top-2 gap is the margin recorded (4 significant digits).
        ctx = lm.tok_encode(context)
        ids = torch.tensor([ctx + ev["tokens"]])
        with torch.no_grad():
            logits = model(ids).logits[0, len(ctx) - 1 : len(ctx) - 1 + len(ev["tokens"])]
        top = logits.topk(2, dim=-1)
        assert top.indices[:, 0].tolist() == ev["tokens"]
        for m, gap in zip(ev["margins"], (top.values[:, 0] - top.values[:, 1]).tolist(), strict=True):
            assert m >= 0 and math.isclose(m, gap, rel_tol=2e-3, abs_tol=1e-4), (m, gap)


def test_recording_changes_no_generated_text():
    prompts = _prompts(n=7, seed=9)
    ours = _lm(WidthwiseHFLM, batch_size=3).generate_until(_instances(prompts), disable_tqdm=True)
    theirs = _lm(HFLM, batch_size=3).generate_until(_instances(prompts), disable_tqdm=True)
    assert [str(t) for t in ours] == theirs
    assert any(t for t in theirs)  # something was generated


def test_a_row_ends_at_its_first_end_of_sequence_token():
    ev = _row_evidence([5, 7, 2, 2, 2], [1.23456, 0.5, 3.0, 9.0, 9.0], ends={2})
    assert ev == {"tokens": [5, 7, 2], "margins": [1.235, 0.5, 3.0]}
    assert _row_evidence([5, 7], [0.000123456, 12345.6], ends={2}) == {
        "tokens": [5, 7],
        "margins": [0.0001235, 12350.0],
    }


def test_a_gsm8k_record_keeps_the_evidence_and_each_filters_answer():
    from widthwise.evaluation.hflm import _generated
    from widthwise.evaluation.scoring import sample_records
    from widthwise.evaluation.suites import get_suite

    spec = next(t for t in get_suite("cpu").tasks if t.name == "gsm8k")
    text = _generated("5 * 16 = 80\n#### 80", {"tokens": [20, 21], "margins": [3.5, 0.01]})
    logged = [
        {
            "doc_id": 5,
            "doc": {"question": "q", "answer": "#### 80"},
            "prompt_hash": "p",
            "target_hash": "t",
            "filter": filt,
            "metrics": ["exact_match"],
            "exact_match": 1.0,
            "resps": [[text]],
            "filtered_resps": [answer],
        }
        for filt, answer in (("strict-match", "80"), ("flexible-extract", "80"))
    ]
    (rec,) = sample_records(spec, "gsm8k", logged)
    assert rec["response"] == str(text) and type(rec["response"]) is str
    assert rec["generation"] == {"tokens": [20, 21], "margins": [3.5, 0.01]}
    assert rec["answers"] == {"strict-match": "80", "flexible-extract": "80"}
    assert rec["metrics"] == {"exact_match,strict-match": 1.0, "exact_match,flexible-extract": 1.0}
    plain = [dict(s, resps=[[str(text)]]) for s in logged]  # another backend (vLLM): no evidence
    assert "generation" not in sample_records(spec, "gsm8k", plain)[0]
