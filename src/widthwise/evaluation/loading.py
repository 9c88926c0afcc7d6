"""Task loading: where each task's documents come from, the local task YAMLs, and the fixed documents.

Each task family of a suite runs one of three ways: a local YAML under evaluation/tasks that `include:`s
lm-eval's built-in task and swaps in offline data; lm-eval's built-in task itself (hub access allowed);
or, for a family that pins its hub dataset to a commit, a YAML that runs the built-in task on that
commit, from the hub or from a local mirror of it. A family whose offline copy departs from the paper
(`offline_deviation`) prefers the hub when it is allowed. The fixed document ids are drawn once per task
from the suite seed, so every run scores the same documents, and are passed to lm-eval as `samples`.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import string
import tempfile
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from widthwise import data
from widthwise.errors import WidthwiseError
from widthwise.evaluation.suites import Suite, TaskSpec, deviation, family, suites_toml

TASKS_DIR = Path(__file__).with_name("tasks")
PREFIX = "widthwise_"  # local task names are PREFIX + the built-in name


@dataclass
class Source:
    kind: str  # "local" | "hub"
    files: dict[str, Path] = field(default_factory=dict)  # local data, or the mirror's copy of a hub repo
    template: str | None = None  # the YAML under tasks/ to render; None: lm-eval's built-in task as is
    dataset: str | None = None  # hub: the dataset repository pinned in suites.toml ...
    revision: str | None = None  # ... and its commit
    mirror: Path | None = None  # hub: the local copy of that commit ($WIDTHWISE_HUB_MIRROR) read instead
    deviation: str | None = None  # how this source departs from the paper's settings


def _hub(spec: TaskSpec, allow_hub: bool, mirror: bool) -> Source | None:
    """The hub source of a task: pinned and mirrored, pinned, built-in as is, or None (not allowed)."""
    if spec.dataset is not None:
        path, revision = spec.dataset
        if mirror:
            folder = data.mirror_copy(spec.name, path, revision)
            return Source("hub", data.mirror_files(folder), spec.hub_template, path, revision, folder)
        return (
            Source("hub", template=spec.hub_template, dataset=path, revision=revision) if allow_hub else None
        )
    return Source("hub") if allow_hub else None


def plan_sources(suite: Suite, allow_hub: bool) -> dict[str, Source]:
    """Where each task's documents come from; fails before any model is loaded when data is missing."""
    mirror = data.hub_mirror() is not None
    out: dict[str, Source] = {}
    for spec in suite.tasks:
        hub = _hub(spec, allow_hub, mirror)
        # The paper's suites (tier gpu) take the paper's own settings from the hub where the offline copy
        # departs from them; the CPU suites stay on the offline copy their stored baselines were made on.
        faithful = spec.offline_deviation and suite.tier == "gpu"
        if hub is not None and (faithful or not spec.template):
            out[spec.name] = hub
            continue
        try:
            files = data.locate(spec.name) if spec.template else None
        except WidthwiseError:
            if hub is None:
                raise
            files = None
        if files is not None:
            out[spec.name] = Source("local", files, spec.template, deviation=deviation(spec.name, "local"))
        elif hub is not None:
            out[spec.name] = hub
        else:
            mirrored = (
                f", or a copy of {spec.dataset[0]} in a hub mirror ({data.MIRROR_ENV})"
                if spec.dataset
                else ""
            )
            raise WidthwiseError(
                f"task {spec.name}: no offline copy of its data exists; it needs hub access "
                f"(--allow-hub or {data.HUB_ENV}=1){mirrored}, or leave it out with --tasks"
            )
    return out


def _dataset_vars(src: Source) -> dict[str, str]:
    """DATASET_PATH and DATASET_KWARGS of a pinned hub task's YAML: the mirror's copy (its folder is named
    by the revision), or the hub repository with the revision passed on to datasets.load_dataset."""
    if src.mirror is not None:
        return {"DATASET_PATH": str(src.mirror), "DATASET_KWARGS": "{}"}
    return {"DATASET_PATH": str(src.dataset), "DATASET_KWARGS": json.dumps({"revision": src.revision})}


def render_templates(names: list[str], sources: Mapping[str, Source] | None = None) -> dict[str, str]:
    """{file name: YAML text} for the tasks that run from a YAML of ours (every one of `names` when no
    sources are given: the offline copies), with absolute roots and pinned datasets filled in."""
    variables = data.template_vars()
    doc = suites_toml()
    files: dict[str, str] = {}
    for name in names:
        src = (
            sources[name] if sources is not None else Source("local", template=doc["tasks"][name]["template"])
        )
        if src.template is None:
            continue
        extra = _dataset_vars(src) if src.kind == "hub" else {}
        template = string.Template((TASKS_DIR / src.template).read_text())
        if name == "mmlu":
            for subject in data.mmlu_subjects():
                files[f"mmlu_{subject}.yaml"] = template.substitute(variables, SUBJECT=subject)
        else:
            files[f"{name}.yaml"] = template.substitute(variables, **extra)
    return files


def write_task_dir(files: dict[str, str]) -> Path:
    """The rendered YAMLs in a folder named by their content, written once (safe across processes)."""
    from widthwise.models import cache_dir

    digest = hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()[:20]
    dest = cache_dir() / "tasks" / digest
    if dest.is_dir():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{digest}.", dir=dest.parent))
    try:
        for name, text in files.items():
            (tmp / name).write_text(text)
        os.replace(tmp, dest)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not dest.is_dir():
            raise
    return dest


def builtin_name(lm_name: str) -> str:
    return lm_name.removeprefix(PREFIX)


@dataclass
class LoadedTask:
    spec: TaskSpec
    top: Any  # lm-eval Task or Group
    leaves: dict[str, Any]  # lm-eval task name -> Task
    ids: dict[str, list[int] | None]  # lm-eval task name -> doc ids (None = all)
    sizes: dict[str, int]


def choose_ids(spec: TaskSpec, seed: int, sizes: dict[str, int]) -> dict[str, list[int] | None]:
    """Fixed document ids per leaf task (None = all): the same documents on every run of the suite.

    `n` draws n of all (leaf, index) pairs with Random(f"{seed}:{task}") (for a one-leaf task that is
    Random(...).sample(range(N), n)); `per_subject` draws from each leaf with Random(f"{seed}:{task}:{leaf}").
    """
    leaves = sorted(sizes)
    if spec.per_subject is not None:
        out: dict[str, list[int] | None] = {}
        for leaf in leaves:
            if spec.per_subject >= sizes[leaf]:
                out[leaf] = None
            else:
                rng = random.Random(f"{seed}:{spec.name}:{builtin_name(leaf)}")
                out[leaf] = sorted(rng.sample(range(sizes[leaf]), spec.per_subject))
        return out
    pairs = [(leaf, i) for leaf in leaves for i in range(sizes[leaf])]
    if spec.n is None or spec.n >= len(pairs):
        return {leaf: None for leaf in leaves}
    chosen = random.Random(f"{seed}:{spec.name}").sample(pairs, spec.n)
    picked: dict[str, list[int]] = defaultdict(list)
    for leaf, i in chosen:
        picked[leaf].append(i)
    # A leaf without a chosen document is left out of the run (and of the group's average).
    return {leaf: (None if len(ids) == sizes[leaf] else sorted(ids)) for leaf, ids in sorted(picked.items())}


def _mmlu_group(name: str, tasks: dict[str, Any]) -> Any:
    """lm-eval's mmlu aggregation (acc weighted by subject size) over the given subject tasks.

    Built directly: lm-eval 0.4.13 merges an inline group dict's keys into its children's task configs.
    """
    from lm_eval.api.group import Group

    group = Group.from_config(
        {
            "group": name,
            "task": sorted(tasks),
            "aggregate_metric_list": [{"metric": "acc", "weight_by_size": True}],
            "metadata": {"version": 2},
        }
    )
    for leaf in sorted(tasks):
        group.add(tasks[leaf])
    return group


def load_tasks(suite: Suite, sources: dict[str, Source]) -> tuple[list[LoadedTask], Any]:
    from lm_eval.tasks import TaskManager

    ours = [s.name for s in suite.tasks if sources[s.name].template is not None]
    task_dir = write_task_dir(render_templates(ours, sources)) if ours else None
    # lm-eval's whole task index (30-40 s to build) only where a task runs as built in; a YAML of ours
    # that names built-in tasks has their folder indexed alone ([tasks.NAME] builtin_dir).
    builtin = Path(data.template_vars()["LM_EVAL_TASKS"])
    folders = sorted({builtin / d for n in ours if (d := family(n).get("builtin_dir"))})
    as_built_in = any(src.template is None for src in sources.values())
    tm = TaskManager(
        include_path=[str(p) for p in [task_dir, *folders] if p is not None] or None,
        include_defaults=as_built_in or not task_dir,
    )
    out = []
    for spec in suite.tasks:
        is_ours = sources[spec.name].template is not None
        is_local = sources[spec.name].kind == "local"
        name = PREFIX + spec.name if is_ours else spec.name
        try:
            if spec.name == "mmlu":
                every = tm.load(["widthwise_mmlu_subjects" if is_local else "mmlu"])["tasks"]
                sizes = {n: len(t.eval_docs) for n, t in every.items()}
                ids = choose_ids(spec, suite.seed, sizes)
                name = PREFIX + "mmlu"
                loaded = tm.load([_mmlu_group(name, {leaf: every[leaf] for leaf in ids})])
            else:
                loaded = tm.load([name])
        except (KeyError, ValueError) as e:
            raise WidthwiseError(f"task {spec.name}: lm-eval cannot load {name!r}: {e}") from None
        groups, leaves = loaded.get("groups", {}), loaded["tasks"]
        top = groups[name] if name in groups else leaves[name]
        for task in leaves.values():
            task.set_config(key="num_fewshot", value=spec.shots)
            if spec.kind == "generate" and spec.max_gen_toks is not None:
                task.set_config(
                    key="generation_kwargs", value={"max_gen_toks": spec.max_gen_toks}, update=True
                )
        sizes = {n: len(t.eval_docs) for n, t in leaves.items()}
        ids = choose_ids(spec, suite.seed, sizes) if spec.name != "mmlu" else ids
        out.append(LoadedTask(spec, top, dict(leaves), ids, sizes))
    return out, tm


def ids_sha256(ids: dict[str, list[int] | None], sizes: dict[str, int]) -> str:
    canon = {builtin_name(k): (v if v is not None else f"all:{sizes[k]}") for k, v in sorted(ids.items())}
    return hashlib.sha256(json.dumps(canon, sort_keys=True).encode()).hexdigest()
