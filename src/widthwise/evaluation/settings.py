"""Settings: everything that changes a score, recorded in each Result; two Results compare only if equal.

Loglikelihood tasks run without a chat template; generation tasks with the model's chat template when the
suite asks for it (`chat_template = "generation"`), few-shot examples as turns. The paper's suites use none.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from widthwise import degeneracy
from widthwise.evaluation.loading import LoadedTask, Source, ids_sha256
from widthwise.evaluation.runner import (
    BOOTSTRAP_ITERS,
    LM_EVAL_SEEDS,
    applies_chat_template,
    chat_template_of,
)
from widthwise.evaluation.suites import Suite
from widthwise.provenance import version


def _jsonable(x: Any) -> Any:
    return json.loads(json.dumps(x, default=str, sort_keys=True))


def build_settings(
    suite: Suite,
    loaded: list[LoadedTask],
    sources: dict[str, Source],
    tokenizer: Any,
    dtype: str,
    backend: str = "hf",
    task_backends: dict[str, str] | None = None,
) -> dict[str, Any]:
    """`backend` is the mix the evaluation used ("hf", "vllm", "hf+vllm"); `task_backends` which one
    ran each family (default: `backend` for all)."""
    tasks = {}
    for item in loaded:
        spec = item.spec
        leaf = next(iter(item.leaves.values()))
        gen = leaf.get_config("generation_kwargs") if spec.kind == "generate" else None
        n = sum(len(v) if v is not None else item.sizes[k] for k, v in item.ids.items())
        chat = applies_chat_template(suite, spec, tokenizer)
        src = sources[spec.name]
        tasks[spec.name] = {
            "backend": (task_backends or {}).get(spec.name, backend),
            "source": src.kind,
            "shots": spec.shots,
            # Offline copies can lack a split (GSM8K has no train split: shots come from test).
            "split": leaf.get_config("test_split") or leaf.get_config("validation_split"),
            "fewshot_split": leaf.get_config("fewshot_split") if spec.shots else None,
            "n": n,
            "sample_ids_sha256": ids_sha256(item.ids, item.sizes),
            "generation_kwargs": _jsonable(gen) if gen else None,
            "chat_template": chat,
            "fewshot_as_multiturn": chat and spec.shots > 0,
            # Recorded only when set, so that Results made before they existed still compare. A hub
            # dataset's commit, from the hub or a mirror's copy alike (the same documents either way).
            **({"revision": src.revision} if src.revision else {}),
            # How an offline copy departs from the paper (also told by `split`/`fewshot_split`, which
            # keep hub and offline Results apart); `widthwise report` lists it.
            **({"deviation": src.deviation} if src.deviation else {}),
        }
    template = chat_template_of(tokenizer)
    return {
        "suite": suite.name,
        "seed": suite.seed,
        "backend": backend,
        "tasks": tasks,
        "dtype": dtype,
        "batch_size": suite.batch_size,
        "chat_template_policy": suite.chat_template,
        "chat_template_sha256": hashlib.sha256(template.encode()).hexdigest() if template else None,
        "lm_eval": version("lm_eval"),
        "lm_eval_seeds": LM_EVAL_SEEDS,
        "bootstrap_iters": BOOTSTRAP_ITERS,
        "limit": suite.limit,
        "degeneracy": degeneracy.definition(),
        "substitutes": dict(suite.substitutes),
        # recorded only when set, so that Results made before it existed still compare
        **({"generate_batch_size": suite.generate_batch_size} if suite.generate_batch_size else {}),
    }
