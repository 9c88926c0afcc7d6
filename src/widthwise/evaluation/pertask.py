"""An evaluation runs one task family at a time and keeps each finished family as a checkpoint.

A GPU shard of the paper suite runs for hours; a shard killed at hour 5 must not lose hours 1-5. Each
family's part of the Result (its metrics, headline entries, per-document records, cost and backend) is
written atomically as soon as the family finishes, to

    DIR/<cache key[:16]>/<task>.checkpoint.json

The folder is named by the evaluation's cache key (evaluation/cache.py: weights, settings, data, runtime,
code, versions), so a part is only ever reused by the identical evaluation; each part also holds the whole
key, checked on reading. Parts are written by whichever process ran the family (the evaluation itself, or
its vLLM / data-parallel worker), and merged by the evaluation into one Result, after which the folder is
removed. `widthwise check` never reads them as Results (results.result_files skips the suffix).

Running families one by one gives the same numbers as one lm-eval call over all of them: widthwise's
lm-eval model already runs every request kind task by task, lm-eval seeds each call the same way, and
each task's few-shot sampler is seeded per task.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from widthwise.errors import WidthwiseError
from widthwise.results import CHECKPOINT_SUFFIX, atomic_write_text

PART_KEYS = ("task", "cache_key", "backend", "metrics", "headline", "samples", "cost")


@dataclass(frozen=True)
class Checkpoints:
    """The parts of one evaluation (one cache key) under `root`."""

    root: Path
    key: str

    @property
    def folder(self) -> Path:
        return Path(self.root) / self.key[:16]

    def path(self, task: str) -> Path:
        return self.folder / f"{task}{CHECKPOINT_SUFFIX}"

    def load(self) -> dict[str, dict[str, Any]]:
        """Every finished family's part; a part of another key or a corrupt one is an error, not a redo."""
        parts: dict[str, dict[str, Any]] = {}
        if not self.folder.is_dir():
            return parts
        for f in sorted(self.folder.glob(f"*{CHECKPOINT_SUFFIX}")):
            try:
                part = json.loads(f.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError) as e:
                raise WidthwiseError(f"{f}: corrupt checkpoint ({e}); delete it to rerun that task") from None
            missing = [k for k in PART_KEYS if k not in part]
            if missing or part["cache_key"] != self.key:
                why = f"missing {missing}" if missing else "made by another evaluation (cache key differs)"
                raise WidthwiseError(f"{f}: not a checkpoint of this evaluation ({why}); delete it")
            parts[part["task"]] = part
        return parts

    def save(self, part: Mapping[str, Any]) -> Path:
        missing = [k for k in PART_KEYS if k not in part]
        if missing:
            raise ValueError(f"checkpoint part lacks {missing}")
        if part["cache_key"] != self.key:
            raise ValueError("checkpoint part of another evaluation")
        text = json.dumps(dict(part), sort_keys=True, allow_nan=True)
        return atomic_write_text(self.path(part["task"]), text, overwrite=True)

    def clear(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def family_cost(item: Any, profile: Mapping[str, Mapping[str, Any]], seconds: float) -> dict[str, Any]:
    """One family's cost: widthwise's lm-eval model records per leaf task (MMLU: 57 subjects), summed
    here; a backend that records nothing (vLLM) gets the family's wall time alone."""
    from widthwise.evaluation.profile import by_family

    leaves = {leaf: profile[leaf] for leaf in item.leaves if leaf in profile}
    if not leaves:
        return {"kind": item.spec.kind, "seconds": round(seconds, 3), "requests": None, "tokens": None,
                "head_positions": None}  # fmt: skip
    return by_family(leaves, dict.fromkeys(leaves, item.spec.name))[item.spec.name]


def run_tasks(
    items: list[Any],
    run_one: Callable[[Any], Mapping[str, Any] | None],
    store: Checkpoints,
    backend: str,
    profile_of: Callable[[], Mapping[str, Mapping[str, Any]]] = dict,
    log: Callable[[str], None] = lambda msg: None,
) -> None:
    """Run each family with `run_one(item)` (lm-eval's output for that one family, or None on a rank
    that gets none) and store its part as soon as it is done."""
    from widthwise.evaluation.scoring import to_result_parts

    for item in items:
        name = item.spec.name
        log(f"eval {name} ({backend}) ...")
        t0 = time.perf_counter()
        out = run_one(item)
        seconds = time.perf_counter() - t0
        if out is None:  # a data-parallel rank other than 0: lm-eval returns outputs on rank 0 only
            continue
        metrics, headline, samples = to_result_parts([item], out)
        part = {
            "task": name,
            "cache_key": store.key,
            "backend": backend,
            "metrics": metrics,
            "headline": headline,
            "samples": samples,
            "cost": family_cost(item, profile_of(), seconds),
        }
        store.save(part)
        log(f"eval {name} done in {seconds:.0f}s (checkpoint {store.path(name)})")
