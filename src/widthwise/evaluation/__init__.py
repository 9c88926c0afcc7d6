"""Evaluation through lm-eval: a suite of real tasks over local data -> one Result per model.

    suites      suites.toml as frozen dataclasses (tasks, shots, fixed documents, tier)
    loading     where each task's data is, the local task YAMLs (tasks/), the fixed document ids
    settings    everything that changes a score, recorded in the Result
    runner      lm-eval's simple_evaluate on one task family at a time
    pertask     each finished family checkpointed, so a killed evaluation resumes (pertask.Checkpoints)
    scoring     lm-eval's output -> metrics, headlines, per-document records (IFEval's extras)
    cache       the result cache and its key
    backends    hf in process, hf data parallel (torchrun), vllm, auto (generation on vLLM on a GPU)
    worker      a saved folder evaluated in a process of its own (vLLM; hf over several ranks)
    run         the stage: check_inputs(suite) before loading, evaluate(model, pruning, suite) -> Outcome

The names below load on first use, so that building a command line does not import torch or lm-eval.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Inputs": "run",
    "Outcome": "run",
    "check_inputs": "run",
    "evaluate": "run",
    "set_threads": "run",
    "Suite": "suites",
    "TaskSpec": "suites",
    "get_suite": "suites",
    "suite_names": "suites",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
