"""Evaluation suites as frozen dataclasses, read from suites.toml beside this module (the data)."""

from __future__ import annotations

import functools
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from widthwise.errors import WidthwiseError

SUITES_FILE = Path(__file__).with_name("suites.toml")


@dataclass(frozen=True)
class TaskSpec:
    name: str  # lm-eval's built-in task name
    kind: str  # "loglikelihood" | "generate"
    headline: str
    template: str | None
    shots: int
    n: int | None = None
    per_subject: int | None = None
    max_gen_toks: int | None = None
    # What the offline copy does differently from the paper (None: nothing); with hub access the built-in
    # task runs instead.
    offline_deviation: str | None = None
    # The hub dataset lm-eval's built-in task reads, pinned to a commit: (path, revision), or None.
    dataset: tuple[str, str] | None = None
    hub_template: str | None = None  # the YAML under tasks/ that applies that pin


@dataclass(frozen=True)
class Suite:
    name: str
    tier: str
    description: str
    seed: int
    chat_template: str
    batch_size: int
    tasks: tuple[TaskSpec, ...]
    substitutes: Mapping[str, str] = field(default_factory=dict)
    # Generation's own batch size where it differs from batch_size (decoding is weight-bound on CPU: one
    # step for 32 rows costs ~2x one for 8); None: batch_size.
    generate_batch_size: int | None = None
    # --limit: at most this many documents per task family (a rehearsal or a quick look, never the
    # paper's numbers); recorded in settings, so limited Results never compare with full ones.
    limit: int | None = None


@functools.cache
def suites_toml(path: Path = SUITES_FILE) -> dict[str, Any]:
    with open(path, "rb") as f:
        return tomllib.load(f)


def suite_names() -> list[str]:
    return sorted(suites_toml()["suites"])


def family(task: str) -> dict[str, Any]:
    """A task family's [tasks.NAME] table: kind, headline metric, template."""
    return suites_toml()["tasks"][task]


def limited(n: int | None, per_subject: int | None, limit: int | None) -> tuple[int | None, int | None]:
    """(n, per_subject) under --limit: at most `limit` documents of the family, drawn as `n` is."""
    if limit is None:
        return n, per_subject
    if limit < 1:
        raise WidthwiseError(f"--limit must be at least 1, got {limit}")
    return (min(n, limit) if n is not None else limit), None


def deviation(task: str, source: str) -> str | None:
    """How a task run from `source` ("local" | "hub") departs from the paper's settings, or None.

    Only offline copies deviate, and only where their family says so ([tasks.NAME] offline_deviation);
    a Result records it in settings.tasks.NAME.deviation."""
    fam = suites_toml()["tasks"].get(task, {})
    return fam.get("offline_deviation") if source == "local" else None


def pinned_dataset(task: str) -> tuple[str, str] | None:
    """(hub path, revision) of the dataset a hub task is pinned to ([tasks.NAME] dataset), or None."""
    fam = suites_toml()["tasks"].get(task, {})
    pin = fam.get("dataset")
    if pin is None:
        return None
    if not isinstance(pin, dict) or not all(isinstance(pin.get(k), str) for k in ("path", "revision")):
        raise WidthwiseError(f"suites.toml: tasks.{task}.dataset must be {{path = ..., revision = ...}}")
    if not fam.get("hub_template"):
        raise WidthwiseError(
            f"suites.toml: tasks.{task} pins a dataset but names no hub_template to apply it"
        )
    return pin["path"], pin["revision"]


def get_suite(name: str, tasks: list[str] | None = None, limit: int | None = None) -> Suite:
    """The named suite, optionally restricted to some of its tasks and to `limit` documents per family;
    WidthwiseError for unknown names."""
    doc = suites_toml()
    if name not in doc["suites"]:
        raise WidthwiseError(f"unknown suite {name!r}; known: {', '.join(suite_names())}")
    raw = doc["suites"][name]
    chosen = list(raw["tasks"])
    if tasks:
        unknown = [t for t in tasks if t not in raw["tasks"]]
        if unknown:
            raise WidthwiseError(
                f"unknown task(s) {', '.join(unknown)} for suite {name!r}; its tasks: {', '.join(chosen)}"
            )
        chosen = [t for t in chosen if t in tasks]
    specs = []
    for t in chosen:
        fam, opts = doc["tasks"][t], raw["tasks"][t]
        if "per_subject" in opts and t != "mmlu":
            raise WidthwiseError(f"suites.toml: {name}.{t}: per_subject is for mmlu only")
        n, per_subject = limited(opts.get("n"), opts.get("per_subject"), limit)
        specs.append(
            TaskSpec(
                name=t,
                kind=fam["kind"],
                headline=fam["headline"],
                template=fam.get("template"),
                shots=int(opts["shots"]),
                n=n,
                per_subject=per_subject,
                max_gen_toks=opts.get("max_gen_toks"),
                offline_deviation=fam.get("offline_deviation"),
                dataset=pinned_dataset(t),
                hub_template=fam.get("hub_template"),
            )
        )
    return Suite(
        name=name,
        tier=raw["tier"],
        description=raw.get("description", ""),
        seed=int(raw["seed"]),
        chat_template=raw.get("chat_template", "generation"),
        batch_size=int(raw.get("batch_size", 1)),
        tasks=tuple(specs),
        substitutes={k: v for k, v in raw.get("substitutes", {}).items() if not tasks or k in tasks},
        generate_batch_size=int(raw["generate_batch_size"]) if "generate_batch_size" in raw else None,
        limit=limit,
    )
