"""Running lm-eval: simple_evaluate with lm-eval's own default seeds, one call per chat-template phase of
the families given (the evaluation gives one family at a time, evaluation/pertask.py)."""

from __future__ import annotations

import contextlib
import logging
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from widthwise.evaluation.loading import LoadedTask
from widthwise.evaluation.scoring import count_tokens
from widthwise.evaluation.suites import Suite

BOOTSTRAP_ITERS = 1000  # lm-eval's default 100000 takes minutes on 2 cores for perplexity stderr alone
# lm-eval's own defaults (what the paper ran with), recorded in settings.
LM_EVAL_SEEDS = {
    "random_seed": 0,
    "numpy_random_seed": 1234,
    "torch_random_seed": 1234,
    "fewshot_random_seed": 1234,
}


def chat_template_of(tokenizer: Any) -> str | None:
    return getattr(tokenizer, "chat_template", None) or None


def applies_chat_template(suite: Suite, spec: Any, tokenizer: Any) -> bool:
    return (
        suite.chat_template == "generation" and spec.kind == "generate" and bool(chat_template_of(tokenizer))
    )


@contextlib.contextmanager
def quiet(verbose: bool) -> Iterator[None]:
    names = ["lm_eval", "lm-eval", "datasets", "transformers"]
    old = {n: logging.getLogger(n).level for n in names}
    if not verbose:
        for n in names:
            logging.getLogger(n).setLevel(logging.ERROR)
    try:
        yield
    finally:
        for n, lvl in old.items():
            logging.getLogger(n).setLevel(lvl)


def run_lm_eval(
    lm: Any, suite: Suite, loaded: list[LoadedTask], tm: Any, tokenizer: Any
) -> dict[str, Any] | None:
    """Run lm-eval once per phase (no chat template / chat template); merge results and samples.

    None on the ranks other than 0 of a data-parallel run: lm-eval returns outputs on rank 0 only."""
    from lm_eval import simple_evaluate

    phases: dict[bool, list[LoadedTask]] = defaultdict(list)
    for item in loaded:
        phases[applies_chat_template(suite, item.spec, tokenizer)].append(item)
    merged: dict[str, Any] = {"results": {}, "n-samples": {}, "samples": {}}
    for chat, items in sorted(phases.items()):
        samples = {leaf: ids for it in items for leaf, ids in it.ids.items() if ids is not None}
        out = simple_evaluate(
            model=lm,
            tasks=[it.top for it in items],
            task_manager=tm,
            samples=samples or None,
            apply_chat_template=chat,
            fewshot_as_multiturn=chat,
            log_samples=True,
            bootstrap_iters=BOOTSTRAP_ITERS,
            **LM_EVAL_SEEDS,
        )
        if out is None:
            return None
        count_tokens(lm, items, out)  # per-token families need the model's own token counts
        for key in merged:
            merged[key].update(out.get(key, {}))
    return merged
