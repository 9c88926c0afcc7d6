"""The CPU tier's pass rate: how often a faithful rerun passes its gating claims.

On the CPU tier a rerun is the same code on the same documents; it differs from the stored Results only
by float summation order on another x86 kernel level, which the regression gate bounds (regression.toml:
every log-likelihood within abs + rel x |ll|, ten times the spread measured between AVX2, AVX-512 and the
lowest level). A faithful rerun is therefore simulated by moving every stored per-document score within
that tolerance, one uniform draw per document (a margin by up to twice its choices' largest tolerance,
as the regression gate allows), perplexities with their documents, and judging the tier's gating claims
with the engine itself. Argmax flags and generated text are held: a rerun that flips one is a near tie
the regression gate reports, not a move these claims read.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from widthwise.claims.engine import evaluate
from widthwise.claims.regression import TOLERANCE, Tolerance
from widthwise.claims.spec import Claim

RUNS = 200
SEED = 20251222


@dataclass(frozen=True)
class TierRate:
    tier: str
    claims: dict[str, float]  # gating claim -> share of reruns in which it holds
    whole: float
    runs: int


def _moved(rec: Mapping[str, Any], u: float, tol: Tolerance) -> dict[str, Any]:
    out = dict(rec)
    lls = [float(x) for x in ((rec.get("choices") or {}).get("ll") or [])]
    for k in ("score", "gold_logprob"):
        v = rec.get(k)
        if isinstance(v, float) and not ("correct" in rec and k == "score"):
            out[k] = v + u * tol.ll(v)
    if isinstance(rec.get("margin"), float):
        out["margin"] = rec["margin"] + u * 2 * max((tol.ll(x) for x in lls), default=tol.ll(rec["margin"]))
    per_doc = (rec.get("metrics") or {}).get("perplexity")
    if isinstance(per_doc, float):
        out["metrics"] = {**rec["metrics"], "perplexity": per_doc + u * tol.ll(per_doc)}
        out["score"] = out["metrics"]["perplexity"]
    return out


def rerun(result: Mapping[str, Any], rng: np.random.Generator, tol: Tolerance = TOLERANCE) -> dict[str, Any]:
    """One faithful rerun of a stored Result: its per-document scores moved within the tolerance."""
    out = dict(result)
    samples, metrics = {}, dict(result.get("metrics") or {})
    for task, recs in (result.get("samples") or {}).items():
        us = rng.uniform(-1.0, 1.0, len(recs))
        moved = [_moved(r, float(u), tol) for r, u in zip(recs, us, strict=True)]
        samples[task] = moved
        key = f"{task}/perplexity"
        lls = [
            (r["metrics"]["perplexity"], m["metrics"]["perplexity"])
            for r, m in zip(recs, moved, strict=True)
            if isinstance((r.get("metrics") or {}).get("perplexity"), float)
        ]
        if key in metrics and metrics[key].get("value") is not None and lls:
            # lm-eval's perplexity is exp(-mean per-document log-likelihood): it moves with its documents.
            shift = sum(b - a for a, b in lls) / len(lls)
            metrics[key] = {**metrics[key], "value": float(metrics[key]["value"]) * math.exp(-shift)}
    out["samples"], out["metrics"] = samples, metrics
    return out


def tier_pass_rate(
    claims: Sequence[Claim],
    results: Sequence[Mapping[str, Any]],
    tier: str = "cpu",
    *,
    runs: int = RUNS,
    seed: int = SEED,
    tol: Tolerance = TOLERANCE,
) -> TierRate:
    """Each gating claim's, and the whole gate's, share of faithful reruns of `results` it passes."""
    gating = [c for c in claims if tier in c.tiers and not c.reported(tier)]
    mine = [r for r in results if r.get("tier") == tier]
    rng = np.random.default_rng(seed)
    held = {c.id: 0 for c in gating}
    whole = 0
    for _ in range(runs):
        verdicts = evaluate(gating, [rerun(r, rng, tol) for r in mine])
        ok = {c.id: any(v.claim == c.id for v in verdicts) for c in gating}
        for v in verdicts:
            if v.tier == tier and v.verdict != "holds":
                ok[v.claim] = False
        for cid, good in ok.items():
            held[cid] += good
        whole += all(ok.values())
    return TierRate(tier, {cid: n / runs for cid, n in held.items()}, whole / runs, runs)
