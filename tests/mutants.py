"""The smallest real changes the regression gate must catch, as context managers over the real code.

Imported by name (`from mutants import MUTANTS`) by tests/integration/test_regression_mutants.py, and by
tools/regression_mutants.py, which measures how far each moves the log-likelihoods against the spread
between CPU kernel levels.

  neuron       one neuron of one layer kept differently: the lowest-scoring kept neuron of LAYER swapped
               for the highest-scoring dropped one (the neighbour across the cut: an off-by-one in k)
  down-scale   down_proj of LAYER scaled by 1.001 after slicing
  checker      an IFEval instruction checker's verdict inverted (detectable_format:title)
  stop         a stop sequence added to every generation ("\\n\\n"): changes generated text only
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from unittest import mock

import torch

LAYER = 15  # the middle of SmolLM2-135M's 30 layers
SCALE = 1.001
CHECKER = "detectable_format:title"
STOP = "\n\n"


@contextlib.contextmanager
def neuron() -> Iterator[None]:
    import widthwise.prune as prune
    from widthwise import pruners
    from widthwise.models import mlp_layers

    right = prune.plan

    def swapped(
        model: torch.nn.Module, spec: prune.PruneSpec, tokenizer: object = None
    ) -> tuple[list[torch.Tensor], dict]:
        keep, pruner = right(model, spec, tokenizer)
        mlp = mlp_layers(model)[LAYER]
        m = pruners.get(spec.method)
        layer = pruners.Layer(
            LAYER,
            mlp.gate_proj.weight.float(),
            mlp.up_proj.weight.float(),
            mlp.down_proj.weight.float(),
            torch.Generator(),
        )
        with torch.no_grad():
            scores = m.score(layer)
        kept = keep[LAYER]
        dropped = torch.ones_like(scores, dtype=torch.bool)
        dropped[kept] = False
        weakest = kept[scores[kept].argmin()]
        strongest = torch.nonzero(dropped).flatten()[scores[dropped].argmax()]
        keep[LAYER] = torch.sort(torch.where(kept == weakest, strongest, kept)).values
        return keep, pruner

    with mock.patch.object(prune, "plan", swapped):
        yield


@contextlib.contextmanager
def down_scale() -> Iterator[None]:
    import widthwise.prune as prune
    from widthwise.models import mlp_layers

    right = prune.apply

    def scaled(model: torch.nn.Module, keep: list[torch.Tensor]) -> None:
        right(model, keep)
        with torch.no_grad():
            mlp_layers(model)[LAYER].down_proj.weight.mul_(SCALE)

    with mock.patch.object(prune, "apply", scaled):
        yield


@contextlib.contextmanager
def checker() -> Iterator[None]:
    from lm_eval.tasks.ifeval import instructions_registry

    cls = instructions_registry.INSTRUCTION_DICT[CHECKER]
    right = cls.check_following
    with mock.patch.object(cls, "check_following", lambda self, value: not right(self, value)):
        yield


@contextlib.contextmanager
def stop() -> Iterator[None]:
    import lm_eval.models.huggingface as hf

    right = hf.handle_stop_sequences

    def more(until, eos):
        return [*right(until, eos), STOP]

    with mock.patch.object(hf, "handle_stop_sequences", more):
        yield


@contextlib.contextmanager
def none() -> Iterator[None]:
    yield


MUTANTS: dict[str, Callable[[], contextlib.AbstractContextManager[None]]] = {
    "none": none,
    "neuron": neuron,
    "down-scale": down_scale,
    "checker": checker,
    "stop": stop,
}
