"""The prefix-cache scoring path equals lm-eval's plain HFLM path request by request, on real (tiny)
transformers models: shared few-shot headers, multiple-choice groups, one-token contexts, continuations
longer than one token, and contexts cut from the left at the model's length limit."""

from __future__ import annotations

import math
import random

import pytest
import torch

from support import tiny_model, word_tokenizer
from widthwise.evaluation.hflm import WidthwiseHFLM
from widthwise.evaluation.prefixplan import HEADER_MIN, MAX_ROWS, _batches, _groups, common_prefix, plan

VOCAB = 128


def lm_for(model, scoring: str, batch_size: int = 8) -> WidthwiseHFLM:
    torch.set_num_threads(1)
    return WidthwiseHFLM(
        pretrained=model, tokenizer=word_tokenizer(), batch_size=batch_size, device="cpu", scoring=scoring
    )


def requests(seed: int = 0, header: int = 20, docs: int = 7, long: int = 0) -> list:
    """Multiple-choice-shaped requests: a shared header, per-document contexts, 2-5 choices of 1-6
    tokens; `long` adds documents whose context alone passes the model's 64 positions."""
    rng = random.Random(seed)
    tok = lambda n: [rng.randrange(3, VOCAB) for _ in range(n)]  # noqa: E731
    head = tok(header)
    out = []
    for _ in range(docs):
        ctx = head + tok(rng.randrange(1, 25))
        for _ in range(rng.randrange(2, 6)):
            out.append((None, ctx, tok(rng.randrange(1, 7))))
    for _ in range(long):
        ctx = tok(rng.randrange(70, 90))
        out += [(None, ctx, tok(rng.randrange(1, 4))) for _ in range(3)]
    out.append((None, [2], tok(5)))  # an empty lm-eval context: the prefix token alone
    out.append((None, [2], tok(3)))
    out.append(out[0])  # an exact duplicate
    rng.shuffle(out)
    return out


def assert_same(plain, prefix):
    assert len(plain) == len(prefix)
    for (a, ga), (b, gb) in zip(plain, prefix, strict=True):
        assert math.isclose(a, b, rel_tol=1e-4, abs_tol=1e-4), (a, b)
        assert ga == gb


@pytest.mark.parametrize("arch", ["LlamaForCausalLM", "Qwen2ForCausalLM", "Qwen3ForCausalLM"])
def test_prefix_scores_equal_lm_evals_plain_path(arch):
    model = tiny_model(arch, seed=1)
    reqs = requests(seed=2, long=2)
    plain = lm_for(model, "plain")._loglikelihood_tokens(reqs, disable_tqdm=True)
    fast = lm_for(model, "prefix")
    got = fast._loglikelihood_tokens(reqs, disable_tqdm=True)
    assert_same(plain, got)


def test_the_prefix_path_runs_each_shared_context_once():
    model = tiny_model("LlamaForCausalLM", seed=1)
    reqs = [(None, list(range(3, 43)), [50 + k, 60 + k]) for k in range(4)]  # one document, 4 choices
    plain, fast = lm_for(model, "plain"), lm_for(model, "prefix")
    from widthwise.evaluation.hflm import TaskProfile

    for lm in (plain, fast):
        lm._current = TaskProfile("loglikelihood")
    assert_same(
        plain._loglikelihood_tokens(reqs, disable_tqdm=True),
        fast._loglikelihood_tokens(reqs, disable_tqdm=True),
    )
    # plain: 4 rows of 41 tokens, the head at all of them; prefix: the 39-token context once, then
    # 4 suffix rows of 2 tokens with the head at those 2 positions only
    assert plain._current.tokens == 4 * 41 and plain._current.head_positions == 4 * 41
    assert fast._current.tokens == 39 + 4 * 2
    assert fast._current.head_positions == 1 + 4 * 2


def test_results_do_not_depend_on_batch_size():
    model = tiny_model("LlamaForCausalLM", seed=3)
    reqs = requests(seed=4, docs=12)
    one = lm_for(model, "prefix", batch_size=1)._loglikelihood_tokens(reqs, disable_tqdm=True)
    many = lm_for(model, "prefix", batch_size=16)._loglikelihood_tokens(reqs, disable_tqdm=True)
    assert_same(one, many)


def test_a_sliding_window_model_past_its_window_falls_back_to_the_plain_path():
    model = tiny_model("Gemma3ForCausalLM", seed=1)  # sliding_window 16 in tests/support.py
    reqs = requests(seed=5, header=10, docs=3)
    lm = lm_for(model, "prefix")
    assert not lm._prefix_safe(reqs)
    assert_same(
        lm_for(model, "plain")._loglikelihood_tokens(reqs, True), lm._loglikelihood_tokens(reqs, True)
    )


def test_groups_keep_a_documents_choices_together_and_stop_before_scored_positions():
    inputs = [[5, 6, 7, 8, 9], [5, 6, 7, 8, 3], [5, 1, 1, 1, 1], [4, 4]]
    first = [4, 4, 3, 1]
    groups = _groups(sorted(range(4), key=lambda i: inputs[i]), inputs, first)
    assert groups == [([3], 1), ([2], 3), ([1, 0], 4)]
    for members, p in groups:
        assert all(p <= first[i] and inputs[i][:p] == inputs[members[0]][:p] for i in members)


def test_batches_respect_group_and_row_limits_and_isolate_empty_prefixes():
    groups = [([i], 3) for i in range(5)] + [([5], 0)] + [(list(range(6, 6 + MAX_ROWS)), 2)]
    batches = _batches(groups, max_groups=2, max_rows=MAX_ROWS)
    assert [len(b) for b in batches] == [2, 2, 1, 1, 1]
    assert batches[3] == [([5], 0)]
    assert common_prefix([1, 2, 3], [1, 2, 4]) == 2


def test_an_unknown_scoring_path_is_refused():
    from widthwise.errors import WidthwiseError

    with pytest.raises(WidthwiseError, match="unknown scoring"):
        lm_for(tiny_model("LlamaForCausalLM"), "fastest")


def _instances(kind: str, args: list[tuple], task: str) -> list:
    from lm_eval.api.instance import Instance

    return [
        Instance(request_type=kind, doc={}, arguments=a, idx=0, metadata=(task, i, 1))
        for i, a in enumerate(args)
    ]


def test_rolling_log_likelihoods_agree_and_every_task_is_profiled_apart():
    from support import WORDS, word_llama

    model = word_llama(seed=2, max_position_embeddings=64)
    rng = random.Random(7)
    texts = [(" ".join(rng.choice(WORDS) for _ in range(rng.randrange(5, 150))),) for _ in range(6)]
    reqs = _instances("loglikelihood_rolling", texts[:4], "alpha") + _instances(
        "loglikelihood_rolling", texts[4:], "beta"
    )
    plain, fast = lm_for(model, "plain"), lm_for(model, "prefix")
    a = plain.loglikelihood_rolling(reqs, disable_tqdm=True)
    b = fast.loglikelihood_rolling(reqs, disable_tqdm=True)
    assert all(math.isclose(x, y, rel_tol=1e-4, abs_tol=1e-4) for x, y in zip(a, b, strict=True))
    for lm in (plain, fast):
        assert {t: p.requests for t, p in lm.profile.items()} == {"alpha": 4, "beta": 2}
        assert all(p.seconds > 0 and p.tokens > 0 for p in lm.profile.values())
    # the head runs at every position of plain's windows, at the scored ones only on the prefix path
    assert fast.profile["alpha"].head_positions <= plain.profile["alpha"].head_positions


def test_generation_runs_at_its_own_batch_size_and_is_restored():
    from support import WORDS, word_llama

    calls = []

    class Counting(WidthwiseHFLM):
        def _model_generate(self, context, max_length, stop, **kw):
            calls.append(context.shape[0])
            return super()._model_generate(context, max_length, stop, **kw)

    torch.set_num_threads(1)
    lm = Counting(
        pretrained=word_llama(seed=1),
        tokenizer=word_tokenizer(),
        batch_size=2,
        device="cpu",
        generate_batch_size=5,
    )
    prompts = [(" ".join(WORDS[i : i + 4]), {"until": ["[EOS]"], "max_gen_toks": 3}) for i in range(5)]
    out = lm.generate_until(_instances("generate_until", prompts, "gen"), disable_tqdm=True)
    assert len(out) == 5 and calls == [5] and lm.batch_size == 2
    assert lm.profile["gen"].requests == 5 and lm.profile["gen"].kind == "generate_until"


def test_the_plan_shares_long_contexts_and_runs_short_ones_whole():
    primer = list(range(3, 3 + HEADER_MIN))
    inputs, first = [], []

    def add(ctx, conts):
        for c in conts:
            inputs.append((ctx + c)[:-1])
            first.append(len(ctx) - 1)

    doc = [[90 + (k % 30) for k in range(40)], [91 + (k % 29) for k in range(40)]]
    add(primer + doc[0], [[5], [6], [7]])  # two documents after one primer: shared, one header
    add(primer + doc[1], [[5], [6]])
    add([40, 41], [[50, 51, 52, 53, 54], [60, 61, 62]])  # a short goal before long solutions: whole rows
    add([70, 71, 72, 73, 74, 75], [[80]])  # a single continuation: a whole row
    batches = plan(inputs, first, max_groups=8)
    shared = [b for b in batches if all(p > 0 for _, p in b)]
    whole = [b for b in batches if all(p == 0 for _, p in b)]
    assert len(shared) == 1 and sorted(len(m) for m, _ in shared[0]) == [2, 3]
    assert len(whole) == 1 and sorted(i for m, _ in whole[0] for i in m) == [5, 6, 7]
    assert sorted(i for b in batches for m, _ in b for i in m) == list(range(8))
