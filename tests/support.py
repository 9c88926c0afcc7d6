"""What many tests build: tiny random models of every supported architecture, a word tokenizer, and the
two ways of running the command line (in process, or as the console would in a subprocess).

Imported by name (`from support import tiny_model`): pytest puts this folder on sys.path because
tests/conftest.py lives here. Not named conftest, so it cannot collide with tests/claims/conftest.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import torch

TINY = dict(
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    vocab_size=128,
    max_position_embeddings=64,
)
ARCHS = [
    "LlamaForCausalLM",
    "MistralForCausalLM",
    "Qwen2ForCausalLM",
    "Qwen3ForCausalLM",
    "Gemma3ForCausalLM",
]
# Enough English for MMLU-ish and HellaSwag-ish prompts to be mostly known words.
WORDS = [
    "the",
    "a",
    "man",
    "is",
    "on",
    "roof",
    "he",
    "sits",
    "and",
    "then",
    "what",
    "which",
    "of",
    "following",
    "true",
    "false",
    "why",
    "how",
    "many",
    "to",
    "in",
]


def tiny_config(arch: str, **overrides):
    import transformers as tf

    kw = {**TINY, **overrides}
    if arch == "LlamaForCausalLM":
        return tf.LlamaConfig(**kw)
    if arch == "MistralForCausalLM":
        return tf.MistralConfig(**kw)
    if arch == "Qwen2ForCausalLM":
        return tf.Qwen2Config(**kw)
    if arch == "Qwen3ForCausalLM":
        return tf.Qwen3Config(head_dim=8, **kw)
    if arch == "Gemma3ForCausalLM":
        return tf.Gemma3TextConfig(head_dim=8, sliding_window=16, **kw)
    raise KeyError(arch)


def tiny_model(arch: str = "LlamaForCausalLM", seed: int = 0, **overrides) -> torch.nn.Module:
    """A randomly initialised model; biases (zero at init) are randomised so slicing them is tested."""
    import transformers as tf

    torch.manual_seed(seed)
    model = getattr(tf, arch)(tiny_config(arch, **overrides)).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(".bias"):
                p.normal_(0, 0.1)
    return model


def word_tokenizer(words: Sequence[str] = WORDS):
    """A whitespace word-level tokenizer: ids 0-2 are [UNK], [PAD], [EOS], then the words."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"[UNK]": 0, "[PAD]": 1, "[EOS]": 2, **{w: i + 3 for i, w in enumerate(words)}}
    tk = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(
        tokenizer_object=tk, unk_token="[UNK]", pad_token="[PAD]", eos_token="[EOS]"
    )


def word_llama(seed: int = 0, **overrides) -> torch.nn.Module:
    """A tiny Llama sized for word_tokenizer(), with its EOS and pad ids, for benches and generation."""
    kw = dict(vocab_size=64, max_position_embeddings=1024, eos_token_id=2, pad_token_id=1) | overrides
    return tiny_model("LlamaForCausalLM", seed, **kw)


def save_tiny_llama(path: Path, tokenizer, **overrides) -> Path:
    """A random 2-layer Llama saved with `tokenizer` as an ordinary HF folder. With a real tokenizer
    (SmolLM2's) lm-eval runs its real tasks on it in seconds per configuration."""
    kw = dict(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, max_position_embeddings=4096)
    model = tiny_model("LlamaForCausalLM", **(kw | overrides))
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return Path(path)


def run_cli(argv: Sequence[str], capsys) -> tuple[int, str, str]:
    """`widthwise ARGV` in this process: (exit code, stdout, stderr), argparse's own refusals included."""
    from widthwise.cli import main

    try:
        code = main(list(argv))
    except SystemExit as e:
        code = int(e.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err.strip()


def run_console(*args: str, env: dict[str, str] | None = None, timeout: float = 900):
    """`python -m widthwise ARGS` in a subprocess, as a user's console runs it: (process, seconds)."""
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "widthwise", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=timeout,
    )
    return proc, time.perf_counter() - t0


def one_line_error(err: str, command: str) -> str:
    """The single stderr line a refusal prints, checked to be one line naming the command."""
    lines = [x for x in err.splitlines() if x.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith(f"widthwise {command}: error: "), lines[0]
    return lines[0]


def evaluate_at(model: str, suite: str, pct: float | None = None, **kw) -> dict:
    """The evaluate stage as the sweep runs it: load, prune in memory at PPM `pct`, evaluate uncached."""
    from widthwise.evaluation import evaluate
    from widthwise.models import load_model
    from widthwise.prune import PruneSpec, prune_model

    loaded = load_model(model)
    report = prune_model(loaded.model, PruneSpec(method="ppm", pct=pct)) if pct else None
    return evaluate(loaded, report, suite, use_cache=False, **kw).result
