"""Expected pass rates: how often a faithful rerun, on the same sample sizes, would pass each claim.

A threshold placed at the paper's observed bound passes a faithful rerun about half the time. To see
that before a GPU run does, the paper's Results are redrawn many times, each metric value from a normal
with the paper's own standard error (its stderr, or sqrt(p(1-p)/n) for a proportion or score with n), and
every claim is evaluated on every draw by the engine itself. The rate of a claim is the share of draws
in which all its verdicts hold; the gate's is the share in which every gating claim holds.

Simplifications, each making the estimate conservative or saying what it cannot see:
- base and pruned are redrawn independently (a measured tier pairs per document, whose correlated noise
  makes drops and non-inferiority easier to show);
- a figure with no standard error and no n (perplexity, most bench figures) is held fixed, so a claim on
  it shows 1.0 only because its noise is unknown (listed as `fixed`);
- reported-only claims and claims skipped on the paper's tables are not rated.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from widthwise.claims.engine import evaluate
from widthwise.claims.evidence import standard_error
from widthwise.claims.metrics import metric_info
from widthwise.claims.spec import Claim

RUNS = 400
SEED = 20251222  # fixed, so the rates are a pinned property of thresholds.toml and the paper's data
TARGET = 0.90  # a claim a faithful rerun would fail more often than one time in ten is restated


@dataclass(frozen=True)
class PassRate:
    claim: str
    rate: float | None  # None: not rated (reported only, or skipped on these Results)
    noisy: bool  # False when every figure it reads had no standard error (held fixed)


def _redraw(results: Sequence[Mapping[str, Any]], rng: np.random.Generator) -> list[dict[str, Any]]:
    out = []
    for r in results:
        r2 = dict(r)
        metrics = {}
        for k, e in r["metrics"].items():
            se = standard_error(k, e)
            if se is None:
                metrics[k] = e
                continue
            v = float(e["value"]) + float(rng.normal(0.0, se))
            info = metric_info(k)
            if info is not None and info.type in ("proportion", "score"):
                v = min(max(v, 0.0), 1.0)
            metrics[k] = {**e, "value": v}
        r2["metrics"] = metrics
        out.append(r2)
    return out


def pass_rates(
    claims: Sequence[Claim], results: Sequence[Mapping[str, Any]], *, runs: int = RUNS, seed: int = SEED
) -> tuple[list[PassRate], float]:
    """Each claim's expected pass rate over `runs` redraws of `results`, and the whole gate's."""
    results = [copy.deepcopy(dict(r)) for r in results]
    rated = [c for c in claims if not c.reported_only]
    faithful = evaluate(rated, results)
    judged = {v.claim for v in faithful if v.verdict in ("holds", "fails")}
    noisy = {
        c.id: any(
            standard_error(m, e) is not None
            for r in results
            for m, e in r["metrics"].items()
            if m in c.metrics
        )
        for c in rated
    }
    rng = np.random.default_rng(seed)
    held = {c.id: 0 for c in rated if c.id in judged}
    whole = 0
    for _ in range(runs):
        verdicts = evaluate(rated, _redraw(results, rng))
        ok = {cid: True for cid in held}
        for v in verdicts:
            if v.claim in ok and v.verdict != "holds":
                ok[v.claim] = False
        for cid, good in ok.items():
            held[cid] += good
        whole += all(ok.values())
    rates = [
        PassRate(c.id, held[c.id] / runs if c.id in held else None, noisy.get(c.id, False)) for c in claims
    ]
    return rates, whole / runs
