"""`widthwise bench` end to end: a saved tiny Llama folder, and the embedded default model (slow)."""

from __future__ import annotations

import json

import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from widthwise.cli import main
from widthwise.results import collect_results, read_result

KEYS = ("ttft_ms", "tpot_ms", "latency_ms", "throughput_tok_s", "j_per_token", "j_per_token_gross")


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    """A random Llama saved as an ordinary HF folder, with a word tokenizer covering MMLU-ish English."""
    d = tmp_path_factory.mktemp("tiny")
    words = [
        "[UNK]",
        "[PAD]",
        "[EOS]",
        "the",
        "of",
        "a",
        "is",
        "which",
        "following",
        "what",
        "to",
        "in",
        "and",
    ]
    tk = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    tok = PreTrainedTokenizerFast(
        tokenizer_object=tk, unk_token="[UNK]", pad_token="[PAD]", eos_token="[EOS]"
    )
    torch.manual_seed(0)
    cfg = LlamaConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=64,
        max_position_embeddings=1024,
        eos_token_id=2,
        pad_token_id=1,
    )
    LlamaForCausalLM(cfg).save_pretrained(d)
    tok.save_pretrained(d)
    return d


def bench_args(model, out, *extra):
    return ["bench", str(model), "--new-tokens", "3", "--prompts", "8", "--workloads", "mmlu,hellaswag",
            "--threads", "1", "--out", str(out), *extra]  # fmt: skip


def test_pruned_run_writes_comparable_base_and_pruned_results(tiny_folder, tmp_path, capsys):
    out = tmp_path / "r" / "tiny.json"
    # --align 16 rounds the planned 39 neurons down to 32; it must not be applied to the range check.
    assert main(bench_args(tiny_folder, out, "--pct", "40", "--align", "16", "--meter", "none")) == 0
    pruned, base = read_result(out), read_result(tmp_path / "r" / "tiny.base.json")
    assert base["pruning"] is None and pruned["pruning"]["pct"] == 40
    assert pruned["pruning"]["align"] == 16 and pruned["model"]["intermediate_size"] == 32
    assert base["settings"] == pruned["settings"] and base["suite"] == "bench"
    assert pruned["model"]["intermediate_size"] < base["model"]["intermediate_size"]
    # model.weights_sha256 is the weights as measured; both start from the same base weights.
    assert pruned["model"]["weights_sha256"] != base["model"]["weights_sha256"]
    assert pruned["provenance"]["base_weights_sha256"] == base["provenance"]["base_weights_sha256"]
    assert base["provenance"]["base_weights_sha256"] == base["model"]["weights_sha256"]
    for r in (base, pruned):
        m = r["metrics"]
        for w in ("mmlu", "hellaswag"):
            for b in (1, 8):
                for k in KEYS[:4]:
                    e = m[f"bench:{w}_b{b}/{k}"]
                    assert e["value"] > 0 and e["n"] == 5
                for k in KEYS[4:]:
                    e = m[f"bench:{w}_b{b}/{k}"]
                    assert e["value"] is None and "not measurable" in e["not_measurable"]
        for k in ("b8/throughput_tok_s", "b1/throughput_tok_s", "b1/latency_ms", "b1/ttft_ms", "b1/tpot_ms"):
            assert m[f"bench:{k}"]["value"] > 0
        assert m["bench:avg/j_per_token"]["value"] is None
        assert (
            r["bench"]["spread"]["mmlu_b8/ttft_ms"]["p90"] >= r["bench"]["spread"]["mmlu_b8/ttft_ms"]["p10"]
        )
        assert r["provenance"]["machine"]["load_average_1_5_15"] is not None
    vs = pruned["bench"]["vs_base"]["b8"]["throughput_tok_s"]
    assert vs["ideal_speedup"] > 1 and vs["achieved_over_ideal"] > 0
    assert len(collect_results([tmp_path / "r"])) == 2  # what `widthwise check` reads
    printed = capsys.readouterr().out
    assert "achieved/ideal" in printed and "energy not measurable here" in printed


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--repeats", "3"], "--repeats must be at least 5"),
        (["--batch-sizes", "1,16"], "batch size 16 needs more"),
        (["--pct", "120"], "--pct must be in"),
        (["--align", "8"], "--align needs"),
        (["--meter", "nvml"], "--meter nvml"),
    ],
)
def test_bad_input_exits_2_and_writes_nothing(tiny_folder, tmp_path, capsys, extra, message):
    out = tmp_path / "x.json"
    assert main(bench_args(tiny_folder, out, *extra)) == 2
    assert message in capsys.readouterr().err
    assert not out.exists() and not list(tmp_path.iterdir())


def test_existing_result_needs_force(tiny_folder, tmp_path, capsys):
    out = tmp_path / "x.json"
    out.write_text("{}")
    assert main(bench_args(tiny_folder, out)) == 2
    assert "pass --force" in capsys.readouterr().err
    assert json.loads(out.read_text()) == {}


@pytest.mark.slow
def test_default_model_pct40_runs_and_energy_is_reported_not_measurable_or_measured(tmp_path, capsys):
    out = tmp_path / "smol.json"
    args = ["bench", "smollm2-135m-instruct", "--pct", "40", "--new-tokens", "2", "--prompts", "8",
            "--workloads", "hellaswag", "--warmup", "0", "--threads", "1", "--out", str(out)]  # fmt: skip
    assert main(args) == 0
    r = read_result(out)
    e = r["metrics"]["bench:hellaswag_b8/j_per_token"]
    reason = r["bench"]["energy"]["not_measurable"]
    if reason is None:  # a machine with readable RAPL measures it; then it is a real, sane number
        assert e["value"] > 0
    else:
        assert e["value"] is None and reason in e["not_measurable"]
        assert "energy not measurable here" in capsys.readouterr().out
    assert r["metrics"]["bench:b8/throughput_tok_s"]["value"] > 0
