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


# ---- replacing some task families of a stored Result (`baseline update --tasks`) ------------------------
# A re-store of one family must not re-measure the others (the CPU tier's 14 configurations take ~90 min of
# both cores). A fresh Result that holds the families replaces exactly those in the stored Result of the
# same identity, and only where the rest of the stored Result is what the current suite would make: the
# same global settings, every other family as the suite now defines it, the same versions and threads.

# provenance.versions that decide the floating-point path (the CPU kernel level is recorded, not required)
PARTIAL_VERSIONS = ("torch", "transformers", "lm_eval")
# settings.tasks.T keys the suite definition gives directly (the rest, sample ids and splits, follow from
# the data and are checked through the family's own checksums)
_SPEC_KEYS = ("n", "shots")


def family_of(key: str, families: Iterable[str]) -> str | None:
    """The family a metric key belongs to: its prefix, or the family whose leaves it names (MMLU's
    `mmlu_<subject>/acc`); None for a key of no listed family."""
    prefix = key.split("/", 1)[0]
    fams = set(families)
    if prefix in fams:
        return prefix
    owners = [f for f in fams if prefix.startswith(f + "_")]
    return max(owners, key=len) if owners else None


def _get(d: Mapping[str, Any] | None, *path: str) -> Any:
    x: Any = d or {}
    for k in path:
        x = x.get(k) if isinstance(x, Mapping) else None
    return x


def _suite_expectations(suite_name: str) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """{family: {n, shots, max_gen_toks}} and the substitutes of the suite as suites.toml defines it now."""
    from widthwise.evaluation.suites import get_suite

    s = get_suite(suite_name)
    fams = {}
    for spec in s.tasks:
        want: dict[str, Any] = {"shots": spec.shots}
        if spec.n is not None:
            want["n"] = spec.n
        if spec.max_gen_toks is not None:
            want["max_gen_toks"] = spec.max_gen_toks
        fams[spec.name] = want
    return fams, dict(s.substitutes)


def partial_refusals(
    stored: Mapping[str, Any],
    fresh: Mapping[str, Any],
    tasks: list[str],
    suite: tuple[dict[str, dict[str, Any]], dict[str, str]],
) -> list[str]:
    """Why `fresh`'s families `tasks` may not replace those of `stored` (empty: they may). `suite` is
    _suite_expectations of the Result's suite. Pure."""
    fams, substitutes = suite
    out = []
    for k in ("model", "pruning", "suite", "tier", "stage"):
        if stored.get(k) != fresh.get(k):
            out.append(f"{k} differs")
    ss, fs = stored.get("settings") or {}, fresh.get("settings") or {}
    for k in sorted((set(ss) | set(fs)) - {"tasks", "substitutes"}):
        if ss.get(k) != fs.get(k):
            out.append(f"settings.{k}: stored {ss.get(k)!r} != fresh {fs.get(k)!r}")
    if ss.get("substitutes") != substitutes:
        out.append(f"settings.substitutes: stored {ss.get('substitutes')!r} != the suite's {substitutes!r}")
    for t in tasks:
        if t not in (fresh.get("samples") or {}) or t not in (fs.get("tasks") or {}):
            out.append(f"the fresh Result has no {t} (records and settings)")
        if t not in fams:
            out.append(f"{t} is not a family of suite {ss.get('suite')!r}")
    merged = {**(ss.get("tasks") or {}), **{t: (fs.get("tasks") or {}).get(t) for t in tasks}}
    if set(merged) != set(fams):
        extra, lacking = sorted(set(merged) - set(fams)), sorted(set(fams) - set(merged))
        out.append(f"families not as the suite defines them (not in it: {extra}; missing: {lacking})")
    for t in sorted(set(merged) & set(fams)):
        got = merged[t] or {}
        gen = got.get("generation_kwargs") or {}
        have = {k: got.get(k) for k in _SPEC_KEYS} | {"max_gen_toks": gen.get("max_gen_toks")}
        for k, v in fams[t].items():
            if have.get(k) != v:
                where = "fresh" if t in tasks else "stored"
                out.append(f"{t}.{k}: {where} {have.get(k)!r} != the suite's {v!r}")
    sp, fp = stored.get("provenance") or {}, fresh.get("provenance") or {}
    for v in PARTIAL_VERSIONS:
        a, b = _get(sp, "versions", v), _get(fp, "versions", v)
        if a != b:
            out.append(f"{v}: stored {a!r} != fresh {b!r}")
    if sp.get("threads") != fp.get("threads"):
        out.append(f"threads: stored {sp.get('threads')!r} != fresh {fp.get('threads')!r}")
    if sp.get("scoring") != fp.get("scoring"):
        out.append(f"scoring: stored {sp.get('scoring')!r} != fresh {fp.get('scoring')!r}")
    return out


def restored_from(fresh: Mapping[str, Any], task: str, reason: str, date: str) -> dict[str, Any]:
    """Where a replaced family's records came from: the fresh run's code, machine and cost."""
    p = fresh.get("provenance") or {}
    return {
        "reason": reason,
        "date": date,
        "git_sha": p.get("git_sha"),
        "cache_key": p.get("cache_key"),
        "machine": p.get("machine"),
        "torch_cpu_capability": _get(p, "versions", "torch_cpu_capability"),
        "versions": p.get("versions"),
        "threads": p.get("threads"),
        "gemm": _get(p, "profile", "gemm"),
        "seconds": _get(p, "profile", "tasks", task, "seconds"),
    }


def merge_families(
    stored: Mapping[str, Any], fresh: Mapping[str, Any], tasks: list[str], reason: str, date: str
) -> dict[str, Any]:
    """`stored` with families `tasks` taken from `fresh`: records, metrics (the family's and its leaves'),
    headline, settings.tasks, sample ids, data checksums and profile entries; provenance.tasks_restored
    says per family where it came from. Pure (copies; neither input is changed)."""
    import copy

    out = copy.deepcopy(dict(stored))
    families = set((out.get("settings") or {}).get("tasks") or {}) | set(tasks)
    out["metrics"] = {k: v for k, v in out["metrics"].items() if family_of(k, families) not in tasks}
    for k, v in fresh["metrics"].items():
        if family_of(k, families) in tasks:
            out["metrics"][k] = copy.deepcopy(v)
    prov = out.setdefault("provenance", {})
    fprov = fresh.get("provenance") or {}
    for t in tasks:
        out["samples"][t] = copy.deepcopy(fresh["samples"][t])
        out["headline"][t] = fresh["headline"][t]
        out["settings"]["tasks"][t] = copy.deepcopy(fresh["settings"]["tasks"][t])
        for key in ("sample_ids", "data"):
            if t in (fprov.get(key) or {}):
                prov.setdefault(key, {})[t] = copy.deepcopy(fprov[key][t])
        ftask = _get(fprov, "profile", "tasks", t)
        if ftask is not None and isinstance(prov.get("profile"), dict):
            prov["profile"].setdefault("tasks", {})[t] = copy.deepcopy(ftask)
        prov.setdefault("tasks_restored", {})[t] = restored_from(fresh, t, reason, date)
    out["headline"] = dict(sorted(out["headline"].items()))
    out["samples"] = dict(sorted(out["samples"].items()))
    return out


def _without_restored(r: Mapping[str, Any]) -> dict[str, Any]:
    prov = {k: v for k, v in (r.get("provenance") or {}).items() if k != "tasks_restored"}
    return {**r, "provenance": prov}


def plan_partial(
    results: Iterable[Mapping[str, Any]], target: Path, tasks: list[str], reason: str, date: str
) -> list[Change]:
    """The stored Results of `results`' identities with families `tasks` replaced; WidthwiseError naming
    every refusal (a Result with no stored counterpart, other settings, versions or threads)."""
    if not tasks:
        raise WidthwiseError("--tasks needs at least one task family")
    if not reason.strip():
        raise WidthwiseError("--tasks needs --reason: why these families are re-stored")
    results = list(results)
    refuse_stand_ins(results)
    plan: dict[Path, Change] = {}
    expectations: dict[str, tuple[dict[str, dict[str, Any]], dict[str, str]]] = {}
    for r in results:
        path = Path(target) / filename_for(r)
        if path in plan:
            raise WidthwiseError(f"two of the given Results would both replace families of {path}")
        if not path.exists():
            raise WidthwiseError(f"{path}: no stored Result to replace {', '.join(tasks)} in")
        old = read_result(path)
        suite = str(old.get("suite"))
        if suite not in expectations:
            expectations[suite] = _suite_expectations(suite)
        why = partial_refusals(old, r, tasks, expectations[suite])
        if why:
            raise WidthwiseError(f"{path.name}: cannot replace {', '.join(tasks)}: {'; '.join(why)}")
        merged = merge_families(old, r, tasks, reason, date)
        rows = [x for x in diff_metrics(old, merged) if x.stored != x.new]
        same = _without_restored(merged) == _without_restored(old)
        plan[path] = Change(path, "unchanged" if same else "changed", merged, [], rows)
    return [plan[p] for p in sorted(plan)]
