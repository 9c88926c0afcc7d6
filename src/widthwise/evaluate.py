"""Suite -> lm-eval -> Result, with per-sample records, provenance and a result cache.

The flow for one (model, pruning, suite):
  1. the suite (suites.toml) names task families with shots and document counts; each family is either
     a local YAML under widthwise/tasks that `include:`s lm-eval's built-in task and swaps in offline
     data, or (with hub access allowed) the built-in task itself;
  2. the fixed document ids are drawn once per task from the suite seed, so every run scores the same
     documents, and are passed to lm-eval as `samples`;
  3. loglikelihood tasks run without a chat template, generation tasks with the model's chat template
     when the suite asks for it (two simple_evaluate calls, each with lm-eval's default seeds);
  4. lm-eval's own metrics become "<builtin task>/<metric>" entries; its logged samples become
     per-sample records (doc hash, prompt hash, correctness/score) for paired statistics; IFEval also
     gets per-instruction verdicts, a breakdown by instruction type and the degenerate-text measure.
Everything that changes a score is in `settings` and in the cache key.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import math
import os
import random
import shutil
import string
import tempfile
import time
import tomllib
from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from widthwise import backends, data, degeneracy
from widthwise.errors import WidthwiseError

SUITES_FILE = Path(__file__).with_name("suites.toml")
TASKS_DIR = Path(__file__).with_name("tasks")
PREFIX = "widthwise_"  # local task names are PREFIX + the built-in name
CACHE_VERSION = 1
BOOTSTRAP_ITERS = 1000  # lm-eval's default 100000 takes minutes on 2 cores for perplexity stderr alone
# lm-eval's own defaults (what the paper ran with), recorded in settings.
LM_EVAL_SEEDS = {
    "random_seed": 0,
    "numpy_random_seed": 1234,
    "torch_random_seed": 1234,
    "fewshot_random_seed": 1234,
}

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------
# Suites
# ---------------------------------------------------------------------------------------------
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


@dataclass(frozen=True)
class Suite:
    name: str
    description: str
    seed: int
    chat_template: str
    batch_size: int
    tasks: tuple[TaskSpec, ...]
    substitutes: Mapping[str, str] = field(default_factory=dict)


@functools.cache
def _suites_toml(path: Path = SUITES_FILE) -> dict[str, Any]:
    with open(path, "rb") as f:
        return tomllib.load(f)


def suite_names() -> list[str]:
    return sorted(_suites_toml()["suites"])


def get_suite(name: str, tasks: list[str] | None = None) -> Suite:
    """The named suite, optionally restricted to some of its tasks; WidthwiseError for unknown names."""
    doc = _suites_toml()
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
        specs.append(
            TaskSpec(
                name=t,
                kind=fam["kind"],
                headline=fam["headline"],
                template=fam.get("template"),
                shots=int(opts["shots"]),
                n=opts.get("n"),
                per_subject=opts.get("per_subject"),
                max_gen_toks=opts.get("max_gen_toks"),
            )
        )
    return Suite(
        name=name,
        description=raw.get("description", ""),
        seed=int(raw["seed"]),
        chat_template=raw.get("chat_template", "generation"),
        batch_size=int(raw.get("batch_size", 1)),
        tasks=tuple(specs),
        substitutes={k: v for k, v in raw.get("substitutes", {}).items() if not tasks or k in tasks},
    )


# ---------------------------------------------------------------------------------------------
# Data sources and task YAMLs
# ---------------------------------------------------------------------------------------------
@dataclass
class Source:
    kind: str  # "local" | "hub"
    files: dict[str, Path] = field(default_factory=dict)


def plan_sources(suite: Suite, allow_hub: bool) -> dict[str, Source]:
    """Where each task's documents come from; fails before any model is loaded when data is missing."""
    out: dict[str, Source] = {}
    for spec in suite.tasks:
        try:
            files = data.locate(spec.name) if spec.template else None
        except WidthwiseError:
            if not allow_hub:
                raise
            files = None
        if files is not None:
            out[spec.name] = Source("local", files)
        elif allow_hub:
            out[spec.name] = Source("hub")
        else:
            raise WidthwiseError(
                f"task {spec.name}: no offline copy of its data exists; it needs hub access "
                f"(--allow-hub or {data.HUB_ENV}=1), or leave it out with --tasks"
            )
    return out


def render_templates(names: list[str]) -> dict[str, str]:
    """{file name: YAML text} for the local tasks, with absolute roots filled in."""
    variables = data.template_vars()
    doc = _suites_toml()
    files: dict[str, str] = {}
    for name in names:
        template = string.Template((TASKS_DIR / doc["tasks"][name]["template"]).read_text())
        if name == "mmlu":
            for subject in data.mmlu_subjects():
                files[f"mmlu_{subject}.yaml"] = template.substitute(variables, SUBJECT=subject)
        else:
            files[f"{name}.yaml"] = template.substitute(variables)
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


# ---------------------------------------------------------------------------------------------
# Loading tasks and choosing documents
# ---------------------------------------------------------------------------------------------
@dataclass
class Loaded:
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


def load_tasks(suite: Suite, sources: dict[str, Source]) -> tuple[list[Loaded], Any]:
    from lm_eval.tasks import TaskManager

    local = [s.name for s in suite.tasks if sources[s.name].kind == "local"]
    task_dir = write_task_dir(render_templates(local)) if local else None
    any_hub = any(src.kind == "hub" for src in sources.values())
    tm = TaskManager(
        include_path=str(task_dir) if task_dir else None, include_defaults=any_hub or not task_dir
    )
    out = []
    for spec in suite.tasks:
        is_local = sources[spec.name].kind == "local"
        name = PREFIX + spec.name if is_local else spec.name
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
        out.append(Loaded(spec, top, dict(leaves), ids, sizes))
    return out, tm


def _ids_sha256(ids: dict[str, list[int] | None], sizes: dict[str, int]) -> str:
    canon = {builtin_name(k): (v if v is not None else f"all:{sizes[k]}") for k, v in sorted(ids.items())}
    return hashlib.sha256(json.dumps(canon, sort_keys=True).encode()).hexdigest()


# ---------------------------------------------------------------------------------------------
# Settings, provenance, cache key
# ---------------------------------------------------------------------------------------------
def _jsonable(x: Any) -> Any:
    return json.loads(json.dumps(x, default=str, sort_keys=True))


def chat_template_of(tokenizer: Any) -> str | None:
    return getattr(tokenizer, "chat_template", None) or None


def applies_chat_template(suite: Suite, spec: TaskSpec, tokenizer: Any) -> bool:
    return (
        suite.chat_template == "generation" and spec.kind == "generate" and bool(chat_template_of(tokenizer))
    )


def build_settings(
    suite: Suite,
    loaded: list[Loaded],
    sources: dict[str, Source],
    tokenizer: Any,
    dtype: str,
    backend: str = backends.DEFAULT_BACKEND,
) -> dict[str, Any]:
    tasks = {}
    for item in loaded:
        spec = item.spec
        leaf = next(iter(item.leaves.values()))
        gen = leaf.get_config("generation_kwargs") if spec.kind == "generate" else None
        n = sum(len(v) if v is not None else item.sizes[k] for k, v in item.ids.items())
        chat = applies_chat_template(suite, spec, tokenizer)
        tasks[spec.name] = {
            "source": sources[spec.name].kind,
            "shots": spec.shots,
            # Offline copies can lack a split (GSM8K has no train split: shots come from test).
            "split": leaf.get_config("test_split") or leaf.get_config("validation_split"),
            "fewshot_split": leaf.get_config("fewshot_split") if spec.shots else None,
            "n": n,
            "sample_ids_sha256": _ids_sha256(item.ids, item.sizes),
            "generation_kwargs": _jsonable(gen) if gen else None,
            "chat_template": chat,
            "fewshot_as_multiturn": chat and spec.shots > 0,
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
        "lm_eval": data_version("lm_eval"),
        "lm_eval_seeds": LM_EVAL_SEEDS,
        "bootstrap_iters": BOOTSTRAP_ITERS,
        "limit": None,
        "degeneracy": degeneracy.definition(),
        "substitutes": dict(suite.substitutes),
    }


def data_version(dist: str) -> str | None:
    from widthwise.provenance import version

    return version(dist)


def code_sha256() -> str:
    """The evaluation code and task YAMLs: a change here may change a score, so it is in the cache key."""
    h = hashlib.sha256()
    here = Path(__file__).parent
    files = [here / "evaluate.py", here / "data.py", here / "degeneracy.py", SUITES_FILE]
    files += sorted(TASKS_DIR.glob("*.yaml")) + sorted(TASKS_DIR.glob("*.py"))
    for p in files:
        h.update(p.name.encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()


def data_checksums(sources: dict[str, Source]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for task, src in sorted(sources.items()):
        if src.kind == "hub":
            out[task] = {"source": "hub"}
            continue
        sums = data.checksums(src.files)
        if len(sums) > 4:  # MMLU: 114 files, one combined hash
            out[task] = {
                "source": "local",
                "files": len(sums),
                "combined_sha256": data.combined_sha256(sums.items()),
            }
        else:
            out[task] = {
                "source": "local",
                "files": {k: {"path": str(src.files[k]), "sha256": v} for k, v in sums.items()},
            }
    return out


def cache_key(
    weights_sha: str, settings: Mapping[str, Any], checksums: Mapping[str, Any], runtime: Mapping[str, Any]
) -> str:
    """runtime: device and thread count, which can move floating-point results (not a comparison setting)."""
    from widthwise.provenance import versions

    v = versions()
    material = {
        "cache_version": CACHE_VERSION,
        "runtime": dict(runtime),
        "weights_sha256": weights_sha,
        "settings": settings,
        "data": {
            t: {k: c for k, c in d.items() if k != "files"} | _file_hashes(d) for t, d in checksums.items()
        },
        "code_sha256": code_sha256(),
        "versions": {k: v[k] for k in ("widthwise", "torch", "transformers", "lm_eval")},
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True, default=str).encode()).hexdigest()


def _file_hashes(d: Mapping[str, Any]) -> dict[str, Any]:
    files = d.get("files")
    return {"files": {k: f["sha256"] for k, f in files.items()}} if isinstance(files, dict) else {}


def cache_path(key: str) -> Path:
    from widthwise.models import cache_dir

    return cache_dir() / "results" / f"{key[:40]}.json"


# ---------------------------------------------------------------------------------------------
# Turning lm-eval output into Result metrics and samples
# ---------------------------------------------------------------------------------------------
def canonical_sha256(obj: Any) -> str:
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _number(x: Any) -> float | None:
    if isinstance(x, bool):
        return float(x)
    if isinstance(x, (int, float)) and math.isfinite(x):
        return float(x)
    return None


def metric_entries(
    lm_results: Mapping[str, Mapping[str, Any]], name: str, n: int
) -> dict[str, dict[str, Any]]:
    """lm-eval's "metric,filter" values of one task/group as {"<metric>[,filter]": {value, stderr, n}}."""
    out: dict[str, dict[str, Any]] = {}
    for k, v in lm_results.items():
        if "," not in k or "_stderr," in k:
            continue
        metric, _, filt = k.partition(",")
        key = metric if filt == "none" else f"{metric},{filt}"
        value = _number(v)
        entry: dict[str, Any] = {
            "value": value,
            "stderr": _number(lm_results.get(f"{metric}_stderr,{filt}")),
            "n": n,
        }
        if value is None:
            entry["not_measurable"] = f"lm-eval returned {v!r} for {name} {k}"
        out[key] = entry
    return out


def _stat(values: list[float], why_empty: str) -> dict[str, Any]:
    from lm_eval.api.metrics import mean_stderr

    if not values:
        return {"value": None, "stderr": None, "n": 0, "not_measurable": why_empty}
    value = sum(values) / len(values)
    return {"value": value, "stderr": mean_stderr(values) if len(values) > 1 else None, "n": len(values)}


BINARY = {"acc", "acc_norm", "exact_match", "prompt_level_strict_acc"}


def sample_records(spec: TaskSpec, leaf: str, logged: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One record per document: ids and hashes for pairing, every per-sample metric, correct/score."""
    by_doc: dict[int, dict[str, Any]] = {}
    docs: dict[int, Any] = {}
    for s in logged:
        rec = by_doc.get(s["doc_id"])
        if rec is None:
            docs[s["doc_id"]] = s["doc"]
            doc_id: Any = s["doc_id"]
            if spec.name == "mmlu":  # ids restart in every subject
                doc_id = f"{builtin_name(leaf).removeprefix('mmlu_')}/{s['doc_id']}"
            rec = by_doc[s["doc_id"]] = {
                "doc_id": doc_id,
                "doc_hash": canonical_sha256(s["doc"]),
                "prompt_hash": s["prompt_hash"],
                "target_hash": s["target_hash"],
                "metrics": {},
            }
            if spec.kind == "generate":
                rec["response"] = s["filtered_resps"][0] if spec.name == "ifeval" else s["resps"][0][0]
        filt = s["filter"]
        for m in s["metrics"]:
            rec["metrics"][m if filt == "none" else f"{m},{filt}"] = s[m]
    for raw_id, rec in by_doc.items():
        head = rec["metrics"].get(spec.headline)
        if spec.name in ("lambada_openai", "wikitext"):
            # Perplexities aggregate per-document log-likelihoods; "acc" is the per-document verdict.
            rec["score"] = _number(head) if not isinstance(head, (list, tuple)) else _number(head[0])
            if "acc" in rec["metrics"]:
                rec["correct"] = bool(rec["metrics"]["acc"])
        elif spec.headline.split(",")[0] in BINARY and spec.name != "truthfulqa_mc2":
            rec["score"] = _number(head)
            rec["correct"] = bool(head)
        else:
            rec["score"] = _number(head)
        if spec.name == "ifeval":
            _ifeval_record(rec, docs[raw_id])
    return [by_doc[k] for k in sorted(by_doc)]


def _ifeval_record(rec: dict[str, Any], doc: Mapping[str, Any]) -> None:
    m = rec.pop("metrics")
    ids = list(doc["instruction_id_list"])
    rec["key"] = doc.get("key")
    rec["correct"] = bool(m["prompt_level_strict_acc"])
    rec["prompt_level_loose"] = bool(m["prompt_level_loose_acc"])
    rec["instructions"] = [
        {"id": i, "strict": bool(s), "loose": bool(lo)}
        for i, s, lo in zip(ids, m["inst_level_strict_acc"], m["inst_level_loose_acc"], strict=True)
    ]
    d = degeneracy.measure(rec["response"])
    rec["degenerate"] = d.degenerate
    rec["degeneracy"] = d.as_dict()


def ifeval_extras(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """IFEval as scored, split by degenerate/non-degenerate responses, and by instruction type."""
    out: dict[str, dict[str, Any]] = {}
    ok = [r for r in records if not r["degenerate"]]
    bad = [r for r in records if r["degenerate"]]
    out["degenerate_share"] = _stat([float(r["degenerate"]) for r in records], "no IFEval responses")
    out["prompt_level_strict_acc_nondegenerate"] = _stat(
        [float(r["correct"]) for r in ok], "every response is degenerate"
    )
    out["inst_level_strict_acc_nondegenerate"] = _stat(
        [float(i["strict"]) for r in ok for i in r["instructions"]], "every response is degenerate"
    )
    out["prompt_level_strict_acc_degenerate"] = _stat(
        [float(r["correct"]) for r in bad], "no response is degenerate"
    )
    by_type: dict[str, list[float]] = defaultdict(list)
    for r in records:
        for i in r["instructions"]:
            by_type[i["id"]].append(float(i["strict"]))
    for inst, vals in sorted(by_type.items()):
        out[f"strict_acc@{inst}"] = _stat(vals, "no instruction of this type")
    return out


# ---------------------------------------------------------------------------------------------
# Running
# ---------------------------------------------------------------------------------------------
@contextlib.contextmanager
def _quiet(verbose: bool) -> Iterator[None]:
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
    lm: Any, suite: Suite, loaded: list[Loaded], tm: Any, tokenizer: Any
) -> dict[str, Any] | None:
    """Run lm-eval once per phase (no chat template / chat template); merge results and samples.

    None on the ranks other than 0 of a data-parallel run: lm-eval returns outputs on rank 0 only."""
    from lm_eval import simple_evaluate

    phases: dict[bool, list[Loaded]] = defaultdict(list)
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
        for key in merged:
            merged[key].update(out.get(key, {}))
    return merged


def to_result_parts(loaded: list[Loaded], lm_out: Mapping[str, Any]) -> tuple[dict, dict, dict]:
    from lm_eval.api.group import Group

    metrics: dict[str, dict[str, Any]] = {}
    headline: dict[str, str] = {}
    samples: dict[str, list[dict[str, Any]]] = {}
    for item in loaded:
        spec = item.spec
        top_name = item.top.name if isinstance(item.top, Group) else item.top.task_name
        counts = {leaf: lm_out["n-samples"][leaf]["effective"] for leaf in item.leaves}
        records: list[dict[str, Any]] = []
        for leaf in sorted(item.leaves):
            records += sample_records(spec, leaf, lm_out["samples"][leaf])
            if len(item.leaves) > 1:  # MMLU subjects, under their built-in names
                for k, e in metric_entries(lm_out["results"][leaf], leaf, counts[leaf]).items():
                    metrics[f"{builtin_name(leaf)}/{k}"] = e
        for k, e in metric_entries(lm_out["results"][top_name], top_name, sum(counts.values())).items():
            metrics[f"{spec.name}/{k}"] = e
        if spec.name == "ifeval":
            n_inst = sum(len(r["instructions"]) for r in records)
            for k in ("inst_level_strict_acc", "inst_level_loose_acc"):
                metrics[f"ifeval/{k}"]["n"] = n_inst
            for k, e in ifeval_extras(records).items():
                metrics[f"ifeval/{k}"] = e
        key = f"{spec.name}/{spec.headline}"
        if key not in metrics:
            raise WidthwiseError(f"lm-eval produced no {spec.headline!r} for {spec.name}")
        headline[spec.name] = key
        samples[spec.name] = records
    return metrics, headline, samples


@dataclass
class Outcome:
    result: dict[str, Any]
    cached: bool
    cache_file: Path
    seconds: float


def evaluate(
    model: str,
    suite_name: str,
    *,
    tasks: list[str] | None = None,
    pct: float | None = None,
    method: str = "ppm",
    allow_hub: bool = False,
    refresh: bool = False,
    use_cache: bool = True,
    verbose: bool = False,
    trust_remote_code: bool = False,
    threads: int | None = None,
    device: str = "cpu",
    dtype: str = "auto",
    backend: str = backends.DEFAULT_BACKEND,
    devices: int | str = 1,
) -> Outcome:
    """Evaluate MODEL (pruned by `pct` first when given) on a suite; a cached Result when unchanged.

    backend/devices choose the lm-eval backend and how many devices it spreads over (widthwise.backends).
    """
    t0 = time.perf_counter()
    suite = get_suite(suite_name, tasks)
    n_devices = backends.resolve_devices(backend, devices, device)
    allow_hub = allow_hub or data.hub_allowed()
    data.setup_environment(allow_hub)
    spec_prune = None
    if pct is not None:
        from widthwise.prune import PruneSpec

        spec_prune = PruneSpec(method=method, pct=pct)
        spec_prune.width(100, 1)  # range check before loading anything
    sources = plan_sources(suite, allow_hub)

    import torch

    # One thread by default: on a shared 2-core machine two OpenMP threads spin against other
    # processes and run 3-6x slower than one (measured: 19 s vs 5.5 s for the same 48 requests).
    torch.set_num_threads(threads or int(os.environ.get("WIDTHWISE_THREADS", "1")))

    from widthwise import provenance
    from widthwise.models import count_parameters, load_model, weights_sha256

    with _quiet(verbose):
        loaded_model = load_model(model, dtype=dtype, trust_remote_code=trust_remote_code, device=device)
        m = loaded_model.model
        report = None
        if spec_prune is not None:
            from widthwise.prune import prune_model

            report = prune_model(m, spec_prune)
        weights = weights_sha256(m) if report else loaded_model.weights_sha256
        dtype = str(next(m.parameters()).dtype).removeprefix("torch.")
        task_items, tm = load_tasks(suite, sources)
    settings = build_settings(suite, task_items, sources, loaded_model.tokenizer, dtype, backend)
    checksums = data_checksums(sources)
    runtime = {"device": device, "threads": torch.get_num_threads(), "devices": n_devices}
    key = cache_key(weights, settings, checksums, runtime)
    cfile = cache_path(key)
    if use_cache and not refresh and cfile.exists():
        from widthwise.results import read_result

        try:
            cached = read_result(cfile)
        except WidthwiseError as e:
            raise WidthwiseError(f"{e}; delete it or pass --refresh") from None
        return Outcome(cached, True, cfile, time.perf_counter() - t0)

    cfg = m.config
    pruning = None
    if report is not None:
        pruning = {
            "method": report.method,
            "pct": report.pct,
            "ratio": report.ratio,
            "intermediate_size": report.intermediate_size,
            "align": report.align,
            "seed": report.seed,
        }
    versions = provenance.versions()
    prov = {
        "widthwise_version": versions["widthwise"],
        "git_sha": versions["widthwise_git_sha"],
        "versions": versions,
        "source": "widthwise eval",
        "model_source": model,
        "model_path": loaded_model.path,
        "base_weights_sha256": loaded_model.weights_sha256,
        "weights_sha256": weights,
        "pruning": report.as_dict() if report else None,
        "device": device,
        "torch_threads": torch.get_num_threads(),
        "backend": backends.describe(backend, n_devices),
        "seed": suite.seed,
        "dtype": dtype,
        "chat_template_applied": {t: s["chat_template"] for t, s in settings["tasks"].items()},
        "data": checksums,
        "sample_ids": {
            it.spec.name: {builtin_name(k): v for k, v in sorted(it.ids.items())} for it in task_items
        },
        "cache_key": key,
    }
    from widthwise.results import new_result, write_result

    result = new_result(
        model={
            "name": model,
            "weights_sha256": weights,
            "hidden_size": cfg.hidden_size,
            "intermediate_size": cfg.intermediate_size,
            "num_layers": cfg.num_hidden_layers,
            "params": count_parameters(m),
        },
        pruning=pruning,
        suite=suite.name,
        settings=settings,
        provenance=prov,
    )

    t_run = time.perf_counter()
    if backends.needs_folder(backend, n_devices):
        metrics, headline, samples = _evaluate_from_folder(
            loaded_model, report, suite, task_items, tm, tasks, dtype, backend, n_devices, allow_hub, verbose
        )
    else:
        from lm_eval.models.huggingface import HFLM

        with _quiet(verbose):
            lm = HFLM(
                pretrained=m, tokenizer=loaded_model.tokenizer, batch_size=suite.batch_size, device=device
            )
            lm_out = run_lm_eval(lm, suite, task_items, tm, loaded_model.tokenizer)
        assert lm_out is not None  # one process is always rank 0
        metrics, headline, samples = to_result_parts(task_items, lm_out)
    for task, why in suite.substitutes.items():
        metric = _suites_toml()["tasks"][task]["headline"]
        metrics[f"{task}/{metric}"] = {
            "value": None,
            "stderr": None,
            "n": None,
            "not_measurable": f"not in suite {suite.name!r}; substitute: {why}",
        }
    result["metrics"], result["headline"], result["samples"] = metrics, headline, samples
    prov["eval_seconds"] = round(time.perf_counter() - t_run, 1)
    result["provenance"] = prov
    if use_cache:
        write_result(result, cfile, overwrite=True)
    return Outcome(result, False, cfile, time.perf_counter() - t0)


def _evaluate_from_folder(
    loaded_model: Any,
    report: Any,
    suite: Suite,
    task_items: list[Loaded],
    tm: Any,
    tasks: list[str] | None,
    dtype: str,
    backend: str,
    n_devices: int,
    allow_hub: bool,
    verbose: bool,
) -> tuple[dict, dict, dict]:
    """vllm, or hf over several devices: both load a folder, so the (pruned) model is saved to a
    temporary one beside the model cache and removed afterwards."""
    from widthwise.models import cache_dir, save_model

    scratch = cache_dir() / "scratch"
    scratch.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=scratch, prefix="eval-") as tmp:
        folder = Path(tmp) / "model"
        manifest = {"source": loaded_model.name, "pruning": report.as_dict() if report else None}
        save_model(loaded_model.model, loaded_model.tokenizer, folder, manifest, force=False)
        if backend == "hf":
            parts = backends.run_data_parallel(
                folder,
                suite.name,
                tasks,
                dtype=dtype,
                nproc=n_devices,
                workdir=Path(tmp),
                allow_hub=allow_hub,
            )
            return parts["metrics"], parts["headline"], parts["samples"]
        with _quiet(verbose):
            lm = backends.make_vllm(folder, dtype=dtype, devices=n_devices, seed=suite.seed)
            lm_out = run_lm_eval(lm, suite, task_items, tm, loaded_model.tokenizer)
        assert lm_out is not None
        return to_result_parts(task_items, lm_out)
