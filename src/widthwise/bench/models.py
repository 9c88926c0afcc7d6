"""The models a bench measures: a loaded MODEL or a random one with a real model's shapes, and the ideal.

Ideal speed-up: each generated token multiplies every decoder weight matrix and the LM head once, so the
compute (and, when decoding is memory-bound, the bytes read) per token is proportional to those
parameters; base/pruned of that count bounds what pruning can buy per generated token (TPOT). Prefill
runs the LM head on one position per sequence only, so TTFT's bound is the decoder's matmul parameters
alone. Latency, throughput and J/token mix both phases: their bound is the base's own prefill and
decode times each divided by its ideal. Attention over the cache, norms and sampling do not shrink, so
achieved/ideal < 1 is expected.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

import torch

from widthwise.errors import WidthwiseError

# "random:llama-3.2-1b-shape[:LAYERS]": Llama-3.2-1B's layer shapes with random weights, built locally.
LLAMA_32_1B_SHAPE = dict(
    hidden_size=2048,
    intermediate_size=8192,
    num_attention_heads=32,
    num_key_value_heads=8,
    vocab_size=128256,
    tie_word_embeddings=True,
    rope_theta=500000.0,
    max_position_embeddings=131072,
)
RANDOM_SHAPES = {"llama-3.2-1b-shape": LLAMA_32_1B_SHAPE}
RANDOM_PREFIX = "random:"


def random_model(spec: str, *, dtype: torch.dtype = torch.float32, seed: int = 0) -> torch.nn.Module:
    """A randomly initialised Llama with a named real model's layer shapes (no hub)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    _, shape, *rest = spec.split(":")
    if shape not in RANDOM_SHAPES or len(rest) > 1:
        raise WidthwiseError(f"random model {spec!r}: expected random:<{'|'.join(RANDOM_SHAPES)}>[:LAYERS]")
    try:
        layers = int(rest[0]) if rest else 2
    except ValueError:
        raise WidthwiseError(f"random model {spec!r}: LAYERS must be an integer") from None
    if layers < 1:
        raise WidthwiseError(f"random model {spec!r}: LAYERS must be at least 1")
    config = LlamaConfig(num_hidden_layers=layers, **RANDOM_SHAPES[shape])
    torch.manual_seed(seed)
    return LlamaForCausalLM(config).to(dtype).eval()


def load_bench_model(spec: str, *, dtype: str = "float32", device: Any = "cpu") -> Any:
    """widthwise.models.Loaded for MODEL or a `random:` spec (which borrows the default model's tokenizer:
    token ids only feed embeddings, and the default tokenizer's ids all fit in a Llama-3 vocabulary)."""
    from transformers import AutoTokenizer

    from widthwise.device import resolve as resolve_device
    from widthwise.models import DEFAULT_MODEL, Loaded, load_model, resolve, weights_sha256

    dev = resolve_device(device)
    torch_dtype = getattr(torch, dtype, None)
    if not isinstance(torch_dtype, torch.dtype):
        raise WidthwiseError(f"unknown dtype {dtype!r}; use float32, bfloat16 or float16")
    if not spec.startswith(RANDOM_PREFIX):
        return load_model(spec, dtype=torch_dtype, device=dev)
    model = random_model(spec, dtype=torch_dtype).to(dev.torch_device)
    tokenizer = AutoTokenizer.from_pretrained(resolve(DEFAULT_MODEL))
    return Loaded(
        model=model,
        tokenizer=tokenizer,
        name=spec,
        path=spec,
        weights_sha256=weights_sha256(model),
        device=dev,
    )


def matmul_params_per_token(model: torch.nn.Module) -> int:
    """Weights multiplied once per generated token: every Linear (decoder projections and the LM head).
    The input embedding is a lookup, not a matmul; a tied LM head still counts as one matmul."""
    return sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))


def prefill_matmul_params(model: torch.nn.Module) -> int:
    """Weights multiplied once per prompt token: the decoder's Linears, not the LM head (generate() computes
    logits for the last position only)."""
    return matmul_params_per_token(model) - model.get_output_embeddings().weight.numel()


@dataclass(frozen=True)
class Ideal:
    """Parameter-count bounds on pruned-over-base speed-up (see the module doc)."""

    decode: float  # per generated token
    prefill: float  # per prompt token

    @classmethod
    def of(cls, base: torch.nn.Module, pruned: torch.nn.Module) -> Ideal:
        return cls(
            decode=matmul_params_per_token(base) / matmul_params_per_token(pruned),
            prefill=prefill_matmul_params(base) / prefill_matmul_params(pruned),
        )

    def for_metric(self, metric: str, base: dict[str, list[float | None]]) -> float:
        if metric == "ttft_ms":
            return self.prefill
        if metric == "tpot_ms" or "ttft_ms" not in base or "latency_ms" not in base:
            return self.decode
        # Mixed: the base's measured prefill and decode times, each cut by its own ideal.
        t_first = statistics.median(base["ttft_ms"])
        t_all = statistics.median(base["latency_ms"])
        return t_all / (t_first / self.prefill + (t_all - t_first) / self.decode)
