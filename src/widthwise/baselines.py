"""Stored baselines: where a Result lives under baselines/NAME, and how an update is planned and applied.

An update is planned first (pure: what would change, metric by metric, and which settings differ) and
written only when asked, so `widthwise baseline update` can show the difference before touching a file.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from widthwise.errors import WidthwiseError
from widthwise.names import config_slug, short_name, slug
from widthwise.results import read_result, settings_mismatch, write_result

_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]*(/[a-z0-9][a-z0-9_.-]*)*$")


def filename_for(result: Mapping[str, Any]) -> str:
    """<model>_<configuration>_<suite>.json, e.g. llama-3.2-1b_ppm-pct40_paper.json."""
    model = slug(short_name(result["model"]["name"]))
    return f"{model}_{config_slug(result.get('pruning'))}_{slug(str(result.get('suite') or 'none'))}.json"


def baseline_dir(root: Path, name: str) -> Path:
    if not _NAME.match(name):
        raise WidthwiseError(f"baseline name {name!r}: use lowercase letters, digits, '.', '_', '-' and '/'")
    return Path(root) / name


@dataclass
class Row:
    metric: str
    stored: float | None
    new: float | None
    delta: float | None
    delta_se: float | None  # the difference in standard errors, where both sides give one (or n)


@dataclass
class Change:
    path: Path
    status: str  # new | changed | unchanged
    result: dict[str, Any]
    mismatch: list[str] = field(default_factory=list)
    rows: list[Row] = field(default_factory=list)


def _se(entry: Mapping[str, Any] | None) -> float | None:
    if not entry or entry.get("value") is None:
        return None
    if entry.get("stderr") is not None:
        return float(entry["stderr"])
    v, n = float(entry["value"]), entry.get("n")
    return math.sqrt(v * (1 - v) / n) if n and 0 <= v <= 1 else None


def diff_metrics(stored: Mapping[str, Any], new: Mapping[str, Any]) -> list[Row]:
    """Every metric of either Result, with its change; not-measurable values show as None."""
    rows = []
    sm, nm = stored.get("metrics", {}), new.get("metrics", {})
    for key in sorted(set(sm) | set(nm)):
        a, b = sm.get(key), nm.get(key)
        av = a.get("value") if a else None
        bv = b.get("value") if b else None
        d = bv - av if av is not None and bv is not None else None
        sa, sb = _se(a), _se(b)
        dse = d / math.hypot(sa, sb) if d is not None and sa and sb else None
        rows.append(Row(key, av, bv, d, dse))
    return rows


def refuse_stand_ins(results: Iterable[Mapping[str, Any]]) -> None:
    """A Result made with a stand-in (FakeCudaDevice, a stand-in model folder) or on a --limit subset
    rehearses the pipeline; it measures nothing a baseline may hold."""
    for r in results:
        prov = r.get("provenance") or {}
        limit = (r.get("settings") or {}).get("limit")
        why = prov.get("stand_in") or (f"--limit {limit}" if limit is not None else None)
        if why:
            raise WidthwiseError(
                f"{r['model']['name']} ({config_slug(r.get('pruning'))}, {r.get('suite')}): made with {why}; "
                "a rehearsal is never a baseline"
            )


def plan_update(results: Iterable[Mapping[str, Any]], target: Path) -> list[Change]:
    results = list(results)
    refuse_stand_ins(results)
    plan: dict[Path, Change] = {}
    for r in results:
        path = Path(target) / filename_for(r)
        if path in plan:
            raise WidthwiseError(f"two of the given Results would both be stored as {path}")
        if path.exists():
            old = read_result(path)
            rows = diff_metrics(old, r)
            same = all(x.stored == x.new for x in rows) and not settings_mismatch(old, r)
            plan[path] = Change(
                path, "unchanged" if same else "changed", dict(r), settings_mismatch(old, r), rows
            )
        else:
            plan[path] = Change(path, "new", dict(r), [], diff_metrics({}, r))
    return [plan[p] for p in sorted(plan)]


def refuse_mismatch(plan: Iterable[Change]) -> None:
    bad = [c for c in plan if c.mismatch]
    if bad:
        c = bad[0]
        raise WidthwiseError(
            f"{c.path.name}: made under different settings than the stored baseline "
            f"({'; '.join(c.mismatch)}); "
            f"{len(bad)} file(s) differ this way. Pass --allow-mismatch to replace them anyway"
        )


def apply(plan: Iterable[Change]) -> list[Path]:
    return [write_result(c.result, c.path, overwrite=True) for c in plan if c.status != "unchanged"]
