"""The result cache: a Result is reused only when everything that could change it is unchanged.

The key covers the weights evaluated, the settings, the data files' checksums, the runtime that can move
floating-point results (device, thread count, device count), the code of the whole package and the
library versions.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from widthwise import data
from widthwise.evaluation.loading import Source
from widthwise.models import cache_dir
from widthwise.provenance import versions

CACHE_VERSION = 1
PACKAGE = Path(__file__).resolve().parents[1]
CODE_SUFFIXES = (".py", ".toml", ".yaml")


@functools.cache
def code_sha256() -> str:
    """Every source and data file of the widthwise package, by path and content.

    The whole package rather than a list of the evaluation's files: a module moved or split out of the
    list would otherwise serve stale cached Results. The cost is a cache miss after any code change."""
    h = hashlib.sha256()
    for p in sorted(PACKAGE.rglob("*")):
        if p.is_file() and p.suffix in CODE_SUFFIXES and "__pycache__" not in p.parts:
            h.update(p.relative_to(PACKAGE).as_posix().encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()


def data_checksums(sources: dict[str, Source]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for task, src in sorted(sources.items()):
        # A pinned hub dataset names its commit; read from a mirror, its copy's files are hashed as well.
        head: dict[str, Any] = {"source": src.kind}
        if src.revision:
            head |= {"dataset": src.dataset, "revision": src.revision}
        if src.mirror is not None:
            head["mirror"] = str(src.mirror)
        if not src.files:
            out[task] = head
            continue
        sums = data.checksums(src.files)
        if len(sums) > 4:  # MMLU: 114 files, one combined hash
            out[task] = head | {"files": len(sums), "combined_sha256": data.combined_sha256(sums.items())}
        else:
            out[task] = head | {
                "files": {k: {"path": str(src.files[k]), "sha256": v} for k, v in sums.items()}
            }
    return out


def cache_key(
    weights_sha: str,
    settings: Mapping[str, Any],
    checksums: Mapping[str, Any],
    runtime: Mapping[str, Any],
    pruner: Mapping[str, Any] | None = None,
) -> str:
    """runtime: device and thread count, which can move floating-point results (not a comparison setting).
    pruner: provenance.pruner of a pruned model (the method's package, version and source hash, the
    calibration documents' hash): a plug-in's code lies outside code_sha256, and the same weights reached
    by other code or other calibration data are another Result's provenance."""
    v = versions()
    material = {
        "cache_version": CACHE_VERSION,
        "runtime": dict(runtime),
        "weights_sha256": weights_sha,
        "settings": settings,
        "data": {
            # where the files are is not what they hold
            t: {k: c for k, c in d.items() if k not in ("files", "mirror")} | _file_hashes(d)
            for t, d in checksums.items()
        },
        "code_sha256": code_sha256(),
        "versions": {k: v[k] for k in ("widthwise", "torch", "transformers", "lm_eval")},
    }
    if pruner is not None:
        material["pruner"] = dict(pruner)
    return hashlib.sha256(json.dumps(material, sort_keys=True, default=str).encode()).hexdigest()


def _file_hashes(d: Mapping[str, Any]) -> dict[str, Any]:
    files = d.get("files")
    return {"files": {k: f["sha256"] for k, f in files.items()}} if isinstance(files, dict) else {}


def cache_path(key: str) -> Path:
    return cache_dir() / "results" / f"{key[:40]}.json"
