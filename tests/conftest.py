"""Shared fixtures: tiny random models of every supported architecture, and the embedded default model."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

# Nothing in the test suite may reach a hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# As the noxfile does: the project's shared data folder beside the checkout, unless the user set one.
_SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
if _SHARED.is_dir():
    os.environ.setdefault("WIDTHWISE_DATA_DIR", str(_SHARED))

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


@pytest.fixture(params=ARCHS)
def arch(request) -> str:
    return request.param


@pytest.fixture
def input_ids() -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    return torch.randint(3, TINY["vocab_size"], (2, 12), generator=g)


@pytest.fixture(scope="session")
def default_model():
    """The embedded default model (converted once into the widthwise cache)."""
    from widthwise.models import DEFAULT_MODEL, load_model

    return load_model(DEFAULT_MODEL)
