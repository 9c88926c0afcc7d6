"""The regression gate: a fresh Result compared document by document with its stored baseline.

Claims in thresholds.toml ask whether the paper's findings hold; this gate asks a narrower question a
maintainer of pruning code needs answered on every change: does the pruner still produce the model it
produced when the baseline was stored? On CPU, greedy decoding and log-likelihood scoring with the same
thread count reproduce exactly, so the default tolerance is zero changed documents. A changed kept-neuron
set shows up here even when the aggregate accuracy happens to land on the same value.

Scores (log-likelihoods, per-document metrics, MC2 values, and every choice's log-likelihood where both
records keep them) must agree within a relative 1e-4. An outcome flip is float noise only when both
records keep every choice's log-likelihood and those agree within that tolerance: the model is the same
and its argmax fell the other way on a near tie. Any other flip is a change, counted and shown with its
doc_ids, and fails unless `--max-changed` allows that many. Records stored before choices were kept
(schema 2) are compared on what they have.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from widthwise.claims.evidence import paired_records
from widthwise.claims.verdict import Verdict
from widthwise.errors import WidthwiseError
from widthwise.names import config_label
from widthwise.points import identity
from widthwise.results import settings_mismatch


def _key(result: Mapping[str, Any]) -> tuple:
    """What a Result measures: model, configuration and suite (not when or where it ran)."""
    return (*identity(result), result.get("suite"))


def _label(result: Mapping[str, Any]) -> str:
    return config_label(result.get("pruning"), result["expansion_ratio"])


def _numbers(rec: Mapping[str, Any]) -> dict[str, float]:
    """Every score a record stores: `score` and each per-document metric (log-likelihoods, mc2, acc)."""
    out = {"score": rec.get("score")} | {f"metrics.{k}": v for k, v in (rec.get("metrics") or {}).items()}
    return {k: v for k, v in out.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def _same(a: dict, b: dict, rel_tol: float) -> bool:
    """Outcomes equal, and every stored score (log-likelihoods, per-choice scores, mc2) within rel_tol.

    A record's `correct` flag alone is not enough: LAMBADA's is 0 at most widths, so a shift of every
    log-likelihood would pass unseen. 1e-4 relative absorbs float32 summation-order differences between
    CPUs and thread counts and is far below what any change of kept neurons does to a score.
    """

    def close(u: float, v: float) -> bool:
        return math.isclose(u, v, rel_tol=rel_tol, abs_tol=rel_tol)

    ca, cb = a.get("choices"), b.get("choices")
    both_choices = isinstance(ca, dict) and isinstance(cb, dict)
    if both_choices:
        la, lb = ca.get("ll") or [], cb.get("ll") or []
        if len(la) != len(lb) or not all(close(u, v) for u, v in zip(la, lb, strict=True)):
            return False
    if ("correct" in a or "correct" in b) and a.get("correct") != b.get("correct") and not both_choices:
        return False
    x, y = _numbers(a), _numbers(b)
    if set(x) != set(y):
        return False
    if both_choices:
        # A near tie may flip acc (and so score) while every log-likelihood agrees: only the flags differ.
        flags = {"score", *(f"metrics.{k}" for k in (a.get("metrics") or {}) if k.split(",")[0] in FLAGS)}
        return all(close(x[k], y[k]) for k in x if k not in flags)
    return all(close(x[k], y[k]) for k in x)


# Per-document metrics that are argmax outcomes of the choices' log-likelihoods.
FLAGS = {"acc", "acc_norm", "acc_bytes", "exact_match"}


# What decides the floating-point path: scores reproduce per document only where these match. A key
# that one side did not record (older baselines have no CPU capability) is not compared.
ENVIRONMENT = (
    ("torch_threads", ("torch_threads",)),
    ("torch", ("versions", "torch")),
    ("torch CPU capability", ("versions", "torch_cpu_capability")),
    ("transformers", ("versions", "transformers")),
    ("lm_eval", ("versions", "lm_eval")),
)


def environment_mismatch(fresh: Mapping[str, Any], stored: Mapping[str, Any]) -> list[str]:
    def get(r: Mapping[str, Any], path: tuple[str, ...]) -> Any:
        x: Any = r.get("provenance") or {}
        for k in path:
            x = x.get(k) if isinstance(x, dict) else None
        return x

    out = []
    for name, path in ENVIRONMENT:
        a, b = get(fresh, path), get(stored, path)
        if a is not None and b is not None and a != b:
            out.append(f"{name} {a} (fresh) vs {b} (stored)")
    return out


def compare(
    fresh: Mapping[str, Any], stored: Mapping[str, Any], *, max_changed: int = 0, rel_tol: float = 1e-4
) -> list[Verdict]:
    """One verdict per task: how many documents changed their outcome since the baseline was stored.

    Refused (WidthwiseError) when the two were made under other settings, or under another thread count,
    torch, transformers, lm-eval or CPU kernel level: documents would differ for that reason alone, and
    a flaky red build teaches people to ignore the gate."""
    diff = settings_mismatch(fresh, stored)
    if diff:
        raise WidthwiseError(
            f"regression: {fresh['model']['name']} {_label(fresh)} was made under other settings than its "
            f"baseline: {'; '.join(diff)}"
        )
    env = environment_mismatch(fresh, stored)
    if env:
        raise WidthwiseError(
            f"regression: {fresh['model']['name']} {_label(fresh)} ran in another environment than its "
            f"baseline ({'; '.join(env)}); per-document scores reproduce only in the same one: install with "
            "`-c constraints/cpu.txt` (the nox sessions do), or re-store the baseline with "
            "`widthwise baseline update` and say why"
        )
    verdicts = []
    for task in sorted(stored.get("samples") or {}):
        where = f"regression {fresh['model']['name']} {_label(fresh)} {task}"
        if task not in (fresh.get("samples") or {}):
            raise WidthwiseError(f"{where}: the fresh Result has no per-sample records for {task}")
        pairs = paired_records(stored["samples"][task], fresh["samples"][task], where)
        changed = [a.get("doc_id") for a, b in pairs if not _same(a, b, rel_tol)]
        metric = (stored.get("headline") or {}).get(task, f"{task}/samples")
        examples = f" (doc_ids {', '.join(map(str, changed[:5]))}{', ...' if len(changed) > 5 else ''})"
        verdicts.append(
            Verdict(
                claim="regression",
                statement="per-sample outcomes equal the stored baseline's",
                kind="regression",
                metric=metric,
                tier=stored["tier"],
                model=fresh["model"]["name"],
                config=_label(fresh),
                verdict="holds" if len(changed) <= max_changed else "fails",
                observed=f"{len(changed)} of {len(pairs)} documents changed" + (examples if changed else ""),
                bound=f"<= {max_changed} changed",
                n=len(pairs),
                mde="—",
                method="paired by doc_id, doc and prompt hashes must match",
                value=float(len(changed)),
                threshold=float(max_changed),
            )
        )
    return verdicts


def check(
    fresh: Iterable[Mapping[str, Any]],
    stored: Sequence[Mapping[str, Any]],
    *,
    max_changed: int = 0,
    rel_tol: float = 1e-4,
) -> list[Verdict]:
    """Compare every fresh eval Result (one with per-sample records) with the stored one of its identity."""
    if max_changed < 0:
        raise WidthwiseError("--max-changed must be 0 or more")
    by_id: dict[tuple, Mapping[str, Any]] = {}
    for s in stored:
        if s.get("samples"):
            if _key(s) in by_id:
                raise WidthwiseError(f"two stored baselines for {s['model']['name']} {_label(s)}")
            by_id[_key(s)] = s
    verdicts = []
    seen = set()
    for f in fresh:
        if not f.get("samples"):
            continue  # bench Results carry no per-sample records
        base = by_id.get(_key(f))
        if base is None:
            raise WidthwiseError(f"regression: no stored baseline for {f['model']['name']} {_label(f)}")
        seen.add(_key(f))
        verdicts += compare(f, base, max_changed=max_changed, rel_tol=rel_tol)
    if not verdicts:
        raise WidthwiseError("regression: none of the fresh Results has per-sample records to compare")
    # A stored baseline nobody re-measured is a gap in the evidence (a lost shard), not a pass.
    for key, s in sorted(by_id.items(), key=lambda kv: str(kv[0])):
        if key not in seen:
            verdicts.append(_missing(s))
    return verdicts


def planned_baselines(stored: Sequence[Mapping[str, Any]], plans: Sequence[Any]) -> list[Mapping[str, Any]]:
    """The stored baselines whose model and configuration some plan names (a subset run, such as the pull
    request path's three configurations): the rest are not this run's to re-measure. Refused without a
    plan, which is what says what the run set out to cover, so a lost shard is still missing."""
    from widthwise.names import canonical_method, model_key

    if not plans:
        raise WidthwiseError("regression limited to the planned configurations, but the Results have no plan")

    def planned(s: Mapping[str, Any]) -> bool:
        pr = s.get("pruning")
        method, pct = (canonical_method(pr["method"]), pr.get("pct")) if pr else (None, None)
        where = (s["tier"], model_key(s["model"]["name"]))
        return any(p.key == where and any(c.names(method, pct) for c in p.configs) for p in plans)

    return [s for s in stored if planned(s)]


def _missing(stored: Mapping[str, Any]) -> Verdict:
    return Verdict(
        claim="regression",
        statement="per-sample outcomes equal the stored baseline's",
        kind="regression",
        metric=f"{stored.get('suite')}/samples",
        tier=stored["tier"],
        model=stored["model"]["name"],
        config=_label(stored),
        verdict="missing",
        observed="missing: a stored baseline with no fresh Result (was a shard lost?)",
        bound="a fresh Result for every stored baseline",
        n=None,
        mde="—",
        method="paired by doc_id, doc and prompt hashes must match",
        value=None,
        threshold=None,
    )
