"""The Result: one schema for every stage, the one builder they all use, its upgrade step and atomic I/O.

A Result is one (model, pruning configuration, suite) measured once by one stage. It is a plain JSON object
so that any stage can run on another machine and `check` can merge shards:

    {
      "schema":     "widthwise.result/4",
      "stage":      "eval" | "bench" | "paper"       which stage wrote it (paper: transcribed, not measured)
      "tier":       "paper" | "cpu" | "gpu"          which claims apply (thresholds.toml `tiers`)
      "model":      {"name", "weights_sha256", "hidden_size", "intermediate_size", "num_layers", "params"}
                    the model as measured: after pruning, with the hash of the pruned weights
      "pruning":    null | {"method", "pct", "ratio", "intermediate_size", "align", "seed",
                            "kept_indices_sha256"}   what was asked and what it kept (null: the base model)
      "expansion_ratio": intermediate_size / hidden_size as measured
      "suite":      the evaluation suite, "bench" for the bench, "paper" for the paper's tables
      "settings":   {...}  everything that changes a figure; two Results compare only if these match
      "metrics":    {"<task>/<metric>": {"value": float | null, "stderr": float | null, "n": int | null,
                                         "not_measurable": "why" (only when value is null)}}
      "headline":   {"<task>": "<task>/<metric>"}   the paper's headline metric per task (eval, paper)
      "samples":    {"<task>": [{"doc_id", "doc_hash", "prompt_hash", "target_hash", "score", "correct"...}]}
      "bench":      null | {"run_id", "role", "cells", "spread", "vs_base", ...}   (bench only, see bench/)
      "provenance": PROVENANCE_KEYS, every key present (null where a stage has nothing to say), and
                    any of PROVENANCE_OPTIONAL
    }

Metric keys are "<task>/<metric>" (e.g. "mmlu/acc", "ifeval/prompt_level_strict_acc",
"bench:mmlu_b8/throughput_tok_s"), so a claim names one metric with one string; widthwise.claims.metrics
is the catalogue. Results written before version 2 are upgraded when read (`upgrade`), so every stored
baseline keeps loading; nothing on disk is rewritten.
"""

from __future__ import annotations

import copy
import json
import math
import os
import re
import tempfile
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from widthwise.errors import WidthwiseError

SCHEMA = "widthwise.result/4"
SCHEMA_V3 = "widthwise.result/3"  # before each task recorded its backend and stand-ins were recorded
SCHEMA_V2 = "widthwise.result/2"  # before provenance had scoring and profile
SCHEMA_V1 = "widthwise.result/1"
STAGES = ("eval", "bench", "paper")
TIERS = ("paper", "cpu", "gpu")
# JSON files that live beside Results in widthwise folders but are not Results.
MANIFESTS = ("widthwise.json", "sweep.json")
PLAN_SUFFIX = ".plan.json"  # what a run was meant to cover (widthwise.plan), beside its Results
CHECKPOINT_SUFFIX = (
    ".checkpoint.json"  # one finished task of an unfinished evaluation (evaluation/pertask.py)
)
REQUIRED = ("schema", "stage", "tier", "model", "pruning", "expansion_ratio", "settings", "metrics")
PRUNING_KEYS = ("method", "pct", "ratio", "intermediate_size", "align", "seed", "kept_indices_sha256")
# One meaning each, the same keys in every Result (null where a stage has nothing to record).
PROVENANCE_KEYS = {
    "stage": "the stage that wrote the Result (eval, bench, paper)",
    "widthwise_version": "widthwise's version",
    "git_sha": "the commit of the widthwise checkout, when it is one",
    "versions": "torch, transformers, lm_eval and widthwise versions",
    "model_source": "MODEL as it was asked for: a name, a folder, a .gguf file or a hub id",
    "model_path": "the local folder the weights were loaded from",
    "base_weights_sha256": "the weights before pruning (model.weights_sha256 is after)",
    "device": "the torch device it ran on (cpu, cuda, cuda:1)",
    "machine": "facts about the machine: CPU or GPU model, cores, load average, driver",
    "threads": "torch intra-op threads",
    "dtype": "the weights' dtype as measured",
    "backend": "how evaluation was spread: {name, devices, how}",
    "seed": "the suite's seed",
    "data": "the checksum of every data file read",
    "sample_ids": "the document ids evaluated per task",
    "cache_key": "the result-cache key this Result is stored under",
    "seconds": "the stage's wall time, seconds",
    "scoring": "how log-likelihoods were computed (evaluation/hflm.SCORING: prefix or plain)",
    "profile": "where the time went: per task {kind, requests, seconds, tokens, head_positions} and the "
    "machine's attainable fp32 GEMM rate at the eval's thread count (evaluation/profile.py)",
    "reference": "for transcribed Results: the paper, its data and what is known to be wrong in it",
    "stand_in": "what stood in for real hardware or weights (FakeCudaDevice, a stand-in model folder): "
    "such a Result rehearses the pipeline and is never a baseline; null for a real measurement",
}


# Keys only some Results carry, each with one meaning.
PROVENANCE_OPTIONAL = {
    "tasks_restored": "per task family that `widthwise baseline update --tasks` replaced in a stored Result: "
    "where its records came from (reason, date, git sha, machine, CPU capability, GEMM probe, seconds); "
    "every other key of provenance describes the run that made the rest",
    "pruner": "pruned Results: which code chose the neurons (widthwise.pruners): {method, reverse_of, "
    "package, version, entry_point (null for a built-in), source_sha256 (the score function's source), "
    "calibration: null | {source, field, documents, max_tokens, tokens, sha256} (widthwise.calibration)}",
    "demotions": "gating claims that the `widthwise baseline update` writing this Result demoted (--demote): "
    "[{claim, reason, date}], as appended to the tier's gating.toml",
}


def new_provenance(**given: Any) -> dict[str, Any]:
    """A provenance entry with every key of PROVENANCE_KEYS; an unknown key is a programming error."""
    unknown = sorted(set(given) - set(PROVENANCE_KEYS))
    if unknown:
        raise ValueError(f"unknown provenance key(s) {unknown}; add them to PROVENANCE_KEYS with a meaning")
    return {k: given.get(k) for k in PROVENANCE_KEYS}


def code_provenance() -> dict[str, Any]:
    """The provenance keys that say which code made a Result (for the stages that run code)."""
    from widthwise import provenance

    v = provenance.versions()
    return {"widthwise_version": v["widthwise"], "git_sha": v["widthwise_git_sha"], "versions": v}


def _fields(pruning: Any) -> dict[str, Any]:
    return pruning.as_dict() if hasattr(pruning, "as_dict") else dict(pruning)


def pruning_entry(pruning: Any) -> dict[str, Any] | None:
    """The one pruning entry, from a PruneReport (or a mapping with its fields); None for the base model."""
    if pruning is None:
        return None
    d = _fields(pruning)
    return {k: d.get(k) for k in PRUNING_KEYS}


def pruner_of(pruning: Any) -> dict[str, Any] | None:
    """provenance.pruner of a PruneReport (or a mapping with its fields); None for the base model."""
    return None if pruning is None else _fields(pruning).get("pruner")


def new_result(
    *,
    stage: str,
    tier: str,
    model: Mapping[str, Any],
    pruning: Any,
    suite: str | None,
    settings: Mapping[str, Any],
    provenance: Mapping[str, Any],
) -> dict[str, Any]:
    """An empty Result for one configuration, the one way every stage starts one; the stage then fills
    metrics, headline, samples and bench."""
    if stage not in STAGES:
        raise ValueError(f"stage {stage!r} not in {STAGES}")
    if tier not in TIERS:
        raise ValueError(f"tier {tier!r} not in {TIERS}")
    ratio = model["intermediate_size"] / model["hidden_size"]
    prov = new_provenance(**{**dict(provenance), "stage": stage})
    pruner = pruner_of(pruning)
    if pruner is not None:
        prov["pruner"] = pruner
    return {
        "schema": SCHEMA,
        "stage": stage,
        "tier": tier,
        "model": dict(model),
        "pruning": pruning_entry(pruning),
        "expansion_ratio": round(ratio, 6),
        "suite": suite,
        "settings": dict(settings),
        "metrics": {},
        "headline": {},
        "samples": {},
        "bench": None,
        "provenance": prov,
    }


# ---- the upgrade from version 1 ------------------------------------------------------------------------


def _v1_tier(r: Mapping[str, Any]) -> str:
    """Version 1 derived the tier from other fields; this is that rule, kept only to read old files."""
    if (r.get("provenance") or {}).get("source") == "paper":
        return "paper"
    suite = r.get("suite")
    if suite == "cpu":
        return "cpu"
    if suite == "paper":
        return "gpu"
    settings = r.get("settings") or {}
    kind = settings.get("device_kind") or settings.get("device") or ""
    return "gpu" if re.search(r"cuda|nvidia|gpu", str(kind), re.I) else "cpu"


def _upgrade_v1(old: Mapping[str, Any]) -> dict[str, Any]:
    r = copy.deepcopy(dict(old))
    prov = dict(r.get("provenance") or {})
    bench = r.get("bench")
    stage = "paper" if prov.get("source") == "paper" else ("bench" if bench else "eval")
    full_pruning = prov.get("pruning") or (bench or {}).get("prune_report") or {}
    pruning = pruning_entry({**full_pruning, **r["pruning"]}) if r.get("pruning") else None
    model = dict(r["model"])
    if stage == "paper":
        new = new_provenance(
            reference={k: v for k, v in prov.items() if k not in ("source",)},
        )
    elif stage == "eval":
        new = new_provenance(
            widthwise_version=prov.get("widthwise_version"),
            git_sha=prov.get("git_sha"),
            versions=prov.get("versions"),
            model_source=prov.get("model_source"),
            model_path=prov.get("model_path"),
            base_weights_sha256=prov.get("base_weights_sha256"),
            device=prov.get("device"),
            threads=prov.get("torch_threads"),
            dtype=prov.get("dtype"),
            backend=prov.get("backend"),
            seed=prov.get("seed"),
            data=prov.get("data"),
            sample_ids=prov.get("sample_ids"),
            cache_key=prov.get("cache_key"),
            seconds=prov.get("eval_seconds"),
        )
        # Version 1 Results of evaluations predate the backend setting: they were all lm-eval's HFLM.
        r["settings"] = {"backend": "hf", **(r.get("settings") or {})}
    else:
        facts = prov.get("device") or {}
        # Version 1 bench Results held the base model's hash in model.weights_sha256 for both roles.
        new = new_provenance(
            widthwise_version=prov.get("widthwise"),
            git_sha=prov.get("widthwise_git_sha"),
            versions={k: prov.get(k) for k in ("widthwise", "widthwise_git_sha", "torch", "transformers")}
            | {"lm_eval": prov.get("lm_eval")},
            model_source=model["name"],
            model_path=prov.get("source"),
            base_weights_sha256=model.get("weights_sha256"),
            device=facts.get("device"),
            machine=facts or None,
            threads=(r.get("settings") or {}).get("threads"),
            dtype=(r.get("settings") or {}).get("dtype"),
            seconds=facts.get("bench_wall_s"),
        )
        model["weights_sha256"] = prov.get("weights_sha256", model.get("weights_sha256"))
        bench = {k: v for k, v in bench.items() if k != "prune_report"}
    new["stage"] = stage
    return {
        **r,
        "schema": SCHEMA,
        "stage": stage,
        "tier": _v1_tier(old),
        "model": model,
        "pruning": pruning,
        "headline": r.get("headline") or {},
        "samples": r.get("samples") or {},
        "bench": bench,
        "provenance": new,
    }


def _upgrade_v2(old: Mapping[str, Any]) -> dict[str, Any]:
    """Version 2 had no scoring path or profile: those Results were scored by lm-eval's plain HFLM path
    (or vLLM) and timed only as a whole, so both keys are null (not known), never guessed."""
    prov = dict(old.get("provenance") or {})
    prov.setdefault("scoring", None)
    prov.setdefault("profile", None)
    return {**old, "schema": SCHEMA_V3, "provenance": prov}


def _upgrade_v3(old: Mapping[str, Any]) -> dict[str, Any]:
    """Version 3 ran every task of an evaluation on one backend (settings.backend) and had no stand-ins, so
    each task's backend is that one and nothing stood in."""
    prov = {**dict(old.get("provenance") or {}), "stand_in": None}
    settings = dict(old.get("settings") or {})
    if isinstance(settings.get("tasks"), dict) and old.get("stage") == "eval":
        backend = settings.get("backend", "hf")
        settings["tasks"] = {
            t: ({"backend": backend, **v} if isinstance(v, dict) else v) for t, v in settings["tasks"].items()
        }
    return {**old, "schema": SCHEMA, "settings": settings, "provenance": prov}


def upgrade(result: Any, where: str = "Result") -> dict[str, Any]:
    """A Result in the current schema; an older one is converted (a copy), a current one returned as is."""
    if isinstance(result, dict) and result.get("schema") == SCHEMA_V1:
        for k in ("model", "pruning", "expansion_ratio", "settings", "metrics", "provenance"):
            if k not in result:
                raise WidthwiseError(f"{where}: missing field(s) {k}")
        return _upgrade_v3(_upgrade_v2(_upgrade_v1(result)))
    if isinstance(result, dict) and result.get("schema") == SCHEMA_V2:
        return _upgrade_v3(_upgrade_v2(result))
    if isinstance(result, dict) and result.get("schema") == SCHEMA_V3:
        return _upgrade_v3(result)
    return result


def validate(result: Any, where: str = "Result") -> dict[str, Any]:
    """Check the shape of a current Result; raise WidthwiseError naming the first problem."""
    if not isinstance(result, dict):
        raise WidthwiseError(f"{where}: not a JSON object")
    if result.get("schema") != SCHEMA:
        raise WidthwiseError(
            f"{where}: schema is {result.get('schema')!r}, expected {SCHEMA!r} "
            f"(or {SCHEMA_V3!r}, {SCHEMA_V2!r}, {SCHEMA_V1!r})"
        )
    missing = [k for k in REQUIRED if k not in result]
    if missing:
        raise WidthwiseError(f"{where}: missing field(s) {', '.join(missing)}")
    if result["stage"] not in STAGES:
        raise WidthwiseError(f"{where}: stage {result['stage']!r} is not one of {', '.join(STAGES)}")
    if result["tier"] not in TIERS:
        raise WidthwiseError(f"{where}: tier {result['tier']!r} is not one of {', '.join(TIERS)}")
    if not isinstance(result["metrics"], dict):
        raise WidthwiseError(f"{where}: 'metrics' must be an object")
    for key, m in result["metrics"].items():
        if "/" not in key:
            raise WidthwiseError(f"{where}: metric key {key!r} is not '<task>/<metric>'")
        if not isinstance(m, dict) or "value" not in m:
            raise WidthwiseError(f"{where}: metric {key!r} has no 'value'")
        v = m["value"]
        if v is None:
            if not m.get("not_measurable"):
                raise WidthwiseError(f"{where}: metric {key!r} is null without a 'not_measurable' reason")
        elif not isinstance(v, (int, float)) or isinstance(v, bool) or math.isnan(v):
            raise WidthwiseError(f"{where}: metric {key!r} has a non-numeric value {v!r}")
    prov = result.get("provenance")
    if not isinstance(prov, dict) or set(prov) - set(PROVENANCE_OPTIONAL) != set(PROVENANCE_KEYS):
        got = set(prov) - set(PROVENANCE_OPTIONAL) if isinstance(prov, dict) else set()
        raise WidthwiseError(
            f"{where}: provenance must have exactly the keys of results.PROVENANCE_KEYS "
            f"(missing {sorted(set(PROVENANCE_KEYS) - got)}, unknown {sorted(got - set(PROVENANCE_KEYS))})"
        )
    return result


def load(data: Any, where: str = "Result") -> dict[str, Any]:
    """A Result read from JSON (any schema version), upgraded and validated."""
    return validate(upgrade(data, where), where)


# ---- files --------------------------------------------------------------------------------------------


def atomic_write_text(path: Path, text: str, *, overwrite: bool = False) -> Path:
    """Write text to path via a temporary file and rename, so a crash never leaves half a file."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise WidthwiseError(f"{path} exists; refusing to overwrite it")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp creates 0600; a Result is shared data, so give it what open() would have.
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_result(result: Mapping[str, Any], path: Path, *, overwrite: bool = False) -> Path:
    validate(dict(result), str(path))
    text = json.dumps(result, indent=1, sort_keys=True, allow_nan=False) + "\n"
    return atomic_write_text(path, text, overwrite=overwrite)


def read_toml(path: Path, missing: str) -> dict[str, Any]:
    """A TOML file's tables (thresholds, a tier's gating or rule file), or one line saying why not:
    `missing` when there is no file."""
    try:
        return tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise WidthwiseError(f"{path}: {missing}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise WidthwiseError(f"{path}: not valid TOML ({e})") from None


def read_result(path: Path) -> dict[str, Any]:
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise WidthwiseError(f"{path}: no such Result file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise WidthwiseError(f"{path}: corrupt Result file ({e})") from None
    return load(data, str(path))


def result_files(folder: Path) -> list[Path]:
    """The Result files under a folder (shards, baselines), sorted for stable output."""
    files = sorted(f for f in Path(folder).rglob("*.json") if not f.name.startswith("."))
    return [
        f for f in files if f.name not in MANIFESTS and not f.name.endswith((PLAN_SUFFIX, CHECKPOINT_SUFFIX))
    ]


def collect_results(paths: Iterable[Path]) -> list[dict[str, Any]]:
    """Read Result files, and every Result under folders, sorted for stable output."""
    out: list[dict[str, Any]] = []
    for p in map(Path, paths):
        if p.is_dir():
            files = result_files(p)
            if not files:
                raise WidthwiseError(f"{p}: no Result files in this folder")
            out.extend(read_result(f) for f in files)
        else:
            out.append(read_result(p))
    return out


# ---- comparability -----------------------------------------------------------------------------------


# Per-task notes that describe, in words, settings compared on their own: `deviation` says what `source`
# and `fewshot_split` record. Rewording a note must not split Results into sets that never compare.
NOTE_TASK_KEYS = frozenset({"deviation"})


def _compared(settings: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(settings)
    if isinstance(out.get("tasks"), dict):
        out["tasks"] = {
            t: ({k: v for k, v in d.items() if k not in NOTE_TASK_KEYS} if isinstance(d, dict) else d)
            for t, d in out["tasks"].items()
        }
    return out


def settings_mismatch(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[str]:
    """The settings on which two Results differ; comparing them is refused when this is non-empty."""
    sa, sb = _compared(a.get("settings", {})), _compared(b.get("settings", {}))
    return [
        f"{k}: {sa.get(k)!r} != {sb.get(k)!r}" for k in sorted(set(sa) | set(sb)) if sa.get(k) != sb.get(k)
    ]


def require_comparable(a: Mapping[str, Any], b: Mapping[str, Any]) -> None:
    diff = settings_mismatch(a, b)
    if diff:
        raise WidthwiseError("results were made under different settings: " + "; ".join(diff))
