"""Tiny random models of every supported architecture, for tests that must run in seconds.

Imported by name (`from tinymodels import tiny_model`): pytest puts this folder on sys.path because
tests/conftest.py lives here. Not named conftest, so it cannot collide with tests/claims/conftest.py.
"""

from __future__ import annotations

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


def tiny_model(arch: str, seed: int = 0, **overrides) -> torch.nn.Module:
    """A randomly initialised model; biases (zero at init) are randomised so slicing them is tested."""
    import transformers as tf

    torch.manual_seed(seed)
    model = getattr(tf, arch)(tiny_config(arch, **overrides)).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(".bias"):
                p.normal_(0, 0.1)
    return model


ARCHS = [
    "LlamaForCausalLM",
    "MistralForCausalLM",
    "Qwen2ForCausalLM",
    "Qwen3ForCausalLM",
    "Gemma3ForCausalLM",
]


def save_tiny_llama(path, tokenizer):
    """A random 2-layer Llama with a real tokenizer (SmolLM2's), saved to `path`, so lm-eval runs its real
    tasks in seconds per configuration."""
    model = tiny_model(
        "LlamaForCausalLM",
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        max_position_embeddings=4096,
    )
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path
