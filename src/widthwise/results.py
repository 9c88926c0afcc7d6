"""The Result schema shared by eval, bench, check and report, and its atomic reads and writes.

A Result is one (model, pruning configuration, suite) measured once. It is a plain JSON object so that
any stage can run on another machine and `check` can merge shards:

    {
      "schema": "widthwise.result/1",
      "model":  {"name", "weights_sha256", "hidden_size", "intermediate_size", "num_layers", "params"},
      "pruning": null | {"method", "pct", "ratio", "intermediate_size", "align", "seed"},
      "expansion_ratio": intermediate_size / hidden_size after pruning,
      "suite": "paper" | "cpu" | "smoke" | "bench" | ...,
      "settings": {...},       # everything that changes a score; two Results compare only if these match
      "metrics": {"<task>/<metric>": {"value": float | null, "stderr": float | null, "n": int | null,
                                      "not_measurable": "why" (only when value is null)}},
      "headline": {"<task>": "<task>/<metric>"},
      "samples": {"<task>": [{"doc_id", "doc_hash", "prompt_hash", "score", "correct", ...}]},
      "bench": null | {...},   # raw timings and device facts, see bench.py
      "provenance": {"widthwise_version", "git_sha", "source", ...}
    }

Metric keys are "<task>/<metric>" (e.g. "mmlu/acc", "ifeval/prompt_level_strict_acc",
"bench:mmlu_b8/throughput_tok_s"), so a claim names one metric with one string.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from widthwise.errors import WidthwiseError

SCHEMA = "widthwise.result/1"
# JSON files that live beside Results in widthwise folders but are not Results.
MANIFESTS = ("widthwise.json", "sweep.json")
REQUIRED = ("schema", "model", "pruning", "expansion_ratio", "settings", "metrics", "provenance")


def new_result(
    *,
    model: Mapping[str, Any],
    pruning: Mapping[str, Any] | None,
    suite: str | None,
    settings: Mapping[str, Any],
    provenance: Mapping[str, Any],
) -> dict[str, Any]:
    """An empty Result for one configuration; stages fill metrics, headline, samples and bench."""
    ratio = model["intermediate_size"] / model["hidden_size"]
    return {
        "schema": SCHEMA,
        "model": dict(model),
        "pruning": dict(pruning) if pruning else None,
        "expansion_ratio": round(ratio, 6),
        "suite": suite,
        "settings": dict(settings),
        "metrics": {},
        "headline": {},
        "samples": {},
        "bench": None,
        "provenance": dict(provenance),
    }


def validate(result: Any, where: str = "Result") -> dict[str, Any]:
    """Check the shape of a Result; raise WidthwiseError naming the first problem."""
    if not isinstance(result, dict):
        raise WidthwiseError(f"{where}: not a JSON object")
    if result.get("schema") != SCHEMA:
        raise WidthwiseError(f"{where}: schema is {result.get('schema')!r}, expected {SCHEMA!r}")
    missing = [k for k in REQUIRED if k not in result]
    if missing:
        raise WidthwiseError(f"{where}: missing field(s) {', '.join(missing)}")
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
    return result


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


def read_result(path: Path) -> dict[str, Any]:
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise WidthwiseError(f"{path}: no such Result file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise WidthwiseError(f"{path}: corrupt Result file ({e})") from None
    return validate(data, str(path))


def collect_results(paths: Iterable[Path]) -> list[dict[str, Any]]:
    """Read Result files, and every *.json under folders (shards, baselines), sorted for stable output."""
    out: list[dict[str, Any]] = []
    for p in map(Path, paths):
        if p.is_dir():
            files = sorted(f for f in p.rglob("*.json") if not f.name.startswith("."))
            files = [f for f in files if f.name not in MANIFESTS]
            if not files:
                raise WidthwiseError(f"{p}: no Result files in this folder")
            out.extend(read_result(f) for f in files)
        else:
            out.append(read_result(p))
    return out


# Settings recorded only since a later version: a Result without one was made with this value.
SETTING_DEFAULTS = {"backend": "hf"}


def settings_mismatch(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[str]:
    """The settings on which two Results differ; comparing them is refused when this is non-empty."""
    sa = SETTING_DEFAULTS | dict(a.get("settings", {}))
    sb = SETTING_DEFAULTS | dict(b.get("settings", {}))
    return [
        f"{k}: {sa.get(k)!r} != {sb.get(k)!r}" for k in sorted(set(sa) | set(sb)) if sa.get(k) != sb.get(k)
    ]


def require_comparable(a: Mapping[str, Any], b: Mapping[str, Any]) -> None:
    diff = settings_mismatch(a, b)
    if diff:
        raise WidthwiseError("results were made under different settings: " + "; ".join(diff))
