"""The bench on real tiny random Llamas on the CPU: fixed length, left padding, positive figures, ratios."""

from __future__ import annotations

import copy

import pytest
import torch
from transformers import LlamaForCausalLM

from support import WORDS, word_llama, word_tokenizer
from widthwise.bench import figures, models, timing
from widthwise.bench.workloads import Workload
from widthwise.prune import PruneSpec, prune_model

PROMPTS = tuple(" ".join(WORDS[i : i + 3 + i % 5]) for i in range(8))  # 8 prompts of different lengths


def workload(n_new: int = 5) -> Workload:
    return Workload("toy", PROMPTS, tuple(f"toy#{i}" for i in range(8)), n_new, "test")


def eos_loving(model: LlamaForCausalLM, eos: int = 2) -> LlamaForCausalLM:
    """A model whose greedy choice is always EOS: left to itself it stops after one token."""
    head = torch.nn.Linear(model.config.hidden_size, model.config.vocab_size, bias=True)
    with torch.no_grad():
        head.weight.zero_()
        head.bias.zero_()
        head.bias[eos] = 100.0
    model.lm_head = head
    return model


def test_left_padding_keeps_real_tokens_last():
    tok = word_tokenizer()
    (batch,) = timing.make_batches(tok, PROMPTS, 8, 512, "cpu")
    mask = batch.attention_mask
    assert batch.size == 8 and mask[:, -1].all()  # every prompt ends at the right edge
    assert not mask[:, 0].all()  # the shorter ones are padded on the left
    assert batch.real_prompt_tokens == sum(len(p.split()) for p in PROMPTS)
    assert len(timing.make_batches(tok, PROMPTS, 3, 512, "cpu")) == 2  # the remainder of 2 is left out


def test_batch8_every_sequence_gets_exactly_n_new_tokens_even_when_eos_is_preferred():
    model, tok = eos_loving(word_llama()), word_tokenizer()
    (batch,) = timing.make_batches(tok, PROMPTS, 8, 512, "cpu")
    n = 7
    gc = timing.generation_config(model, tok, n)
    call = timing.timed_generate(model, batch, gc, "cpu")
    assert call.new_tokens == 8 * n and call.batch_size == 8
    # The control: without the fixed length this model stops at once, so the rule is what made it 7.
    with torch.inference_mode():
        free = model.generate(
            **batch.__dict__, max_new_tokens=n, do_sample=False, pad_token_id=1, eos_token_id=2
        )
    assert free.shape[1] - batch.input_ids.shape[1] == 1


def test_verify_fixed_length_rejects_short_or_eos_outputs():
    s = timing.TimingStreamer()
    s.put(torch.zeros(2, 3))  # the prompt
    for _ in range(4):
        s.put(torch.tensor([5, 6]))
    ok = torch.tensor([[9, 9, 9, 5, 5, 5, 5], [9, 9, 9, 6, 6, 6, 6]])
    assert timing.verify_fixed_length(ok, 3, 4, s, {2}) == 8
    with pytest.raises(timing.MeasurementError, match="expected 5 new tokens"):
        timing.verify_fixed_length(ok, 3, 5, s, {2})
    eos_inside = ok.clone()
    eos_inside[1, 5] = 2
    with pytest.raises(timing.MeasurementError, match="EOS"):
        timing.verify_fixed_length(eos_inside, 3, 4, s, {2})


def test_real_cpu_bench_of_base_and_pruned_gives_positive_figures():
    tok = word_tokenizer()
    base = word_llama()
    pruned = copy.deepcopy(base)
    prune_model(pruned, PruneSpec(pct=50))
    cells = [
        timing.run_cell(
            [("base", base), ("pruned", pruned)],
            tok,
            workload(5),
            b,
            repeats=3,
            warmup=1,
            device="cpu",
            max_prompt_tokens=512,
        )
        for b in (1, 8)
    ]
    for cell in cells:
        for label in ("base", "pruned"):
            windows = cell.windows[label]
            assert len(windows) == 3
            for w in windows:
                assert w.tokens == 8 * 5  # 8 prompts, 5 real tokens each, at either batch size
                f = w.figures()
                assert f["ttft_ms"] > 0 and f["tpot_ms"] > 0 and f["throughput_tok_s"] > 0
                assert f["ttft_ms"] < f["latency_ms"]
                assert f["j_per_token"] is None  # no meter, no number
    ideal = models.Ideal.of(base, pruned)
    assert ideal.prefill > ideal.decode > 1  # the LM head, unpruned, weighs on decode only
    r = figures.paired_ratios(
        figures.per_repeat(cells[1].windows["base"]),
        figures.per_repeat(cells[1].windows["pruned"]),
        ideal,
        min_pairs=3,
    )
    assert set(r) == {"ttft_ms", "tpot_ms", "latency_ms", "throughput_tok_s"}
    for x in r.values():
        assert x["ratio"]["n"] == 3 and x["ratio"]["median"] > 0
        assert x["achieved_over_ideal"] == pytest.approx(x["speedup"] / x["ideal_speedup"])
    assert r["ttft_ms"]["ideal_speedup"] == ideal.prefill and r["tpot_ms"]["ideal_speedup"] == ideal.decode
    assert ideal.decode < r["latency_ms"]["ideal_speedup"] < ideal.prefill


def test_matmul_params_count_decoder_projections_and_lm_head():
    m = word_llama()
    h, i, layers, v = 32, 64, 2, 64
    kv = 2 * (h // 4)  # 2 kv heads of head_dim 8
    per_layer = h * h + 2 * h * kv + h * h + 3 * h * i
    assert models.matmul_params_per_token(m) == layers * per_layer + v * h
    assert models.prefill_matmul_params(m) == layers * per_layer
    prune_model(m, PruneSpec(pct=50))
    assert models.matmul_params_per_token(m) == layers * (per_layer - 3 * h * 32) + v * h


def test_summary_and_speedup_directions():
    s = figures.summary([1.0, 2.0, 3.0, 4.0, 100.0])
    assert s["median"] == 3.0 and s["p10"] == pytest.approx(1.4) and s["p90"] == pytest.approx(61.6)
    assert s["n"] == 5 and s["stderr"] > 0
    assert figures.speedup("throughput_tok_s", 10.0, 20.0) == 2.0
    assert figures.speedup("ttft_ms", 10.0, 5.0) == 2.0


def test_random_llama_32_1b_shape_is_built_locally():
    with torch.device("meta"):
        m = models.random_model("random:llama-3.2-1b-shape:2")
    c = m.config
    assert (c.hidden_size, c.intermediate_size, c.num_hidden_layers) == (2048, 8192, 2)
    assert (c.num_attention_heads, c.num_key_value_heads, c.vocab_size) == (32, 8, 128256)
    assert c.tie_word_embeddings
    # Decoder projections of 2 layers plus the (tied) LM head.
    decoder = 2 * (2 * 2048 * 2048 + 2 * 2048 * 512 + 3 * 2048 * 8192)
    assert models.matmul_params_per_token(m) == decoder + 128256 * 2048
    assert models.prefill_matmul_params(m) == decoder


@pytest.mark.parametrize(
    "spec", ["random:llama-9b-shape", "random:llama-3.2-1b-shape:x", "random:llama-3.2-1b-shape:0"]
)
def test_random_model_spec_errors(spec):
    from widthwise.errors import WidthwiseError

    with pytest.raises(WidthwiseError, match="random model"):
        models.random_model(spec)
