"""What the kinds read from a Group: the configurations a claim selects, a metric's entries, paired records.

Shared by every kind and by the regression gate, so "which configurations", "is it measurable" and "are
these the same documents" are each answered in one place.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from widthwise.claims.metrics import metric_info
from widthwise.claims.verdict import Verdict, missing, not_measurable
from widthwise.errors import WidthwiseError
from widthwise.names import model_key
from widthwise.points import Group, Point
from widthwise.results import require_comparable
from widthwise.widths import pct_in

RATIO_MATCH = 0.01  # 7373/2048 = 3.6001 and 7373/3072 = 2.4001 both count as "2.4x" style ratios


def applies_to_model(claim: Any, model: str) -> bool:
    return any(model_key(m) == model_key(model) for m in claim.models)


def selected(claim: Any, group: Group) -> list[Point]:
    """The pruned configurations of the claim's methods that `configs`, `pcts` or `ratios` picks."""
    pruned = [p for p in group.points if not p.is_base and p.method in claim.methods]
    if claim.configs == "all_pruned":
        return pruned
    if claim.configs == "most_pruned":
        # A planned configuration with no Result and no known width counts as the narrowest: it is
        # reported missing rather than replaced by the narrowest one that happens to be present.
        return [min(pruned, key=lambda p: p.ratio if p.ratio == p.ratio else -math.inf)] if pruned else []
    if claim.pcts:
        return [p for p in pruned if p.pct is not None and pct_in(p.pct, claim.pcts)]
    return [p for p in pruned if any(abs(p.ratio - x) <= RATIO_MATCH for x in claim.ratios)]


def value(point: Point | None, metric: str) -> tuple[dict | None, dict | None]:
    """(metric entry, the Result it came from), or (None, None) when the point lacks the metric."""
    if point is None or metric not in point.metrics:
        return None, None
    return point.metrics[metric]


def standard_error(metric: str, entry: Mapping[str, Any]) -> float | None:
    """An aggregate's standard error: its stderr, else sqrt(p(1-p)/n) for a proportion or score with n,
    else None (a perplexity or bench figure without one)."""
    if entry.get("value") is None:
        return None
    if entry.get("stderr"):
        return float(entry["stderr"])
    info = metric_info(metric)
    v, n = float(entry["value"]), entry.get("n")
    if info is not None and info.type in ("proportion", "score") and n:
        return math.sqrt(max(v * (1 - v), 0.0) / int(n))
    return None


def unmeasurable(*entries: Mapping[str, Any]) -> str | None:
    for e in entries:
        if e.get("value") is None:
            return str(e.get("not_measurable") or "no value")
    return None


def base_and_pruned(claim: Any, group: Group, pp: Point) -> tuple[dict, dict, dict, dict] | Verdict:
    """The claim's metric at the base and at `pp` (entry, source Result each), or the verdict that says
    why there is nothing to compare (missing, not measurable). Refuses Results made under other settings.
    A bench figure is taken against the base measured in the same run when there is one."""
    cfg = pp.label
    b, bres = pp.refs.get(claim.metric) or value(group.base, claim.metric)
    p, pres = value(pp, claim.metric)
    if b is None:
        return missing(claim, group, cfg, f"{claim.metric} of the base model")
    if p is None:
        return missing(claim, group, cfg, f"{claim.metric} at this configuration")
    why = unmeasurable(b, p)
    if why:
        return not_measurable(claim, group, cfg, why)
    require_comparable(bres, pres)
    return b, bres, p, pres


def samples(result: Mapping[str, Any], task: str) -> list[dict] | None:
    s = (result.get("samples") or {}).get(task)
    return s if isinstance(s, list) and s else None


def scored_by(metric: str, *results: Mapping[str, Any]) -> bool:
    """Do the per-document records of metric's task score that metric (it is the task's headline)?"""
    task = metric.split("/", 1)[0]
    return all((r.get("headline") or {}).get(task) == metric for r in results)


PAIRING_HASHES = ("doc_hash", "prompt_hash", "target_hash")


def paired_records(a: Sequence[dict], b: Sequence[dict], where: str) -> list[tuple[dict, dict]]:
    """Pair per-sample records by doc_id; refuse unless both sides show the same documents and prompts.

    doc_hash and prompt_hash are required on both sides, target_hash wherever either side has one: a
    record that cannot prove what it scored cannot be paired (WidthwiseError, exit 2), never trusted."""
    x_by = {r["doc_id"]: r for r in a}
    y_by = {r["doc_id"]: r for r in b}
    if set(x_by) != set(y_by):
        raise WidthwiseError(
            f"{where}: per-sample records cover different documents ({len(set(x_by) ^ set(y_by))} doc_ids "
            "differ); pairing refused"
        )
    pairs = []
    for did in sorted(x_by, key=str):
        x, y = x_by[did], y_by[did]
        for h in PAIRING_HASHES:
            if h == "target_hash" and h not in x and h not in y:
                continue
            if not (x.get(h) and y.get(h)):
                side = "either side" if not (x.get(h) or y.get(h)) else "one side"
                raise WidthwiseError(
                    f"{where}: doc_id {did!r} has no {h} on {side}; records must carry doc_hash and "
                    "prompt_hash (and target_hash where there is a target) to be paired, pairing refused"
                )
            if x[h] != y[h]:
                raise WidthwiseError(
                    f"{where}: {h} differs for doc_id {did!r} ({x[h]} vs {y[h]}); the two runs did not see "
                    "the same inputs, pairing refused"
                )
        pairs.append((x, y))
    return pairs
