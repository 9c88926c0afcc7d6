"""beats_control: the paper's method against an ablation control at the same width, paired per document.

docs/paper.md §1: the paper found PPM far better than other neuron criteria on Llama-3.2. The controls are
`random` (seeded) and `ppm-reverse` (the lowest PPM scores kept). A control point is paired with the
method's point of the same intermediate width, and the two are compared document by document: both saw
the same prompts (paired_records refuses otherwise), so the bound is on the paired difference
method - control, and the claim holds when its lower bound exceeds the margin.

Per metric type:
  proportion   exact McNemar-style bound on the per-document correct flags
  score        paired bootstrap on the per-document scores (TruthfulQA-MC2)
  perplexity   paired bootstrap on the per-document log-likelihood, in nats: lm-eval's perplexity is
               exp(-mean log-likelihood), so a higher mean log-likelihood is exactly a lower perplexity,
               and the margin is in nats per document
  logprob      paired t on a continuous score every multiple-choice record keeps (`<task>/margin`,
               `<task>/gold_logprob`, as score_shift reads them), in the score's own nats
A sweep without controls has nothing to compare with: the claim does not apply (it is listed as such).
"""

from __future__ import annotations

from typing import Any

from widthwise import stats
from widthwise.claims.evidence import paired_records, samples, scored_by, selected, unmeasurable, value
from widthwise.claims.metrics import metric_info
from widthwise.claims.registry import register_kind
from widthwise.claims.verdict import Verdict, bounded, confidence, missing, not_measurable
from widthwise.errors import WidthwiseError
from widthwise.names import canonical_method
from widthwise.points import Group, Point
from widthwise.results import require_comparable


def control_point(group: Group, point: Point, control: str) -> Point | None:
    """The control's configuration at the same width as `point` (same k; same pct when k is unknown)."""
    for p in group.points:
        if p.method != control:
            continue
        if (p.k is not None and p.k == point.k) or (p.k is None and p.pct == point.pct):
            return p
    return None


def paired_difference(claim: Any, method_res: dict, control_res: dict, where: str) -> stats.Bound | str:
    """Lower bound on method - control over the paired documents, or what is missing for one."""
    info = metric_info(claim.metric)
    assert info is not None
    task = claim.metric.split("/", 1)[0]
    ms, cs = samples(method_res, task), samples(control_res, task)
    if not (ms and cs):
        return f"per-document records for {task} on both sides"
    if info.type == "logprob":
        score = claim.metric.split("/", 1)[1]
        pairs = paired_records(cs, ms, where)
        if len(pairs) < 2 or not all(score in c and score in m for c, m in pairs):
            return f"per-document {score} for {task} on both sides (records of schema 3)"
        return stats.paired_t_bound(
            [float(c[score]) for c, _ in pairs], [float(m[score]) for _, m in pairs], claim.alpha, "lower"
        )
    if not scored_by(claim.metric, method_res, control_res):
        return f"per-document records scored by {claim.metric} (it is not {task}'s headline metric)"
    pairs = paired_records(cs, ms, where)
    if info.type == "proportion" and all("correct" in c and "correct" in m for c, m in pairs):
        return stats.paired_binary_bound(
            [bool(c["correct"]) for c, _ in pairs],
            [bool(m["correct"]) for _, m in pairs],
            claim.alpha,
            "lower",
        )
    if info.type in ("score", "perplexity") and all("score" in c and "score" in m for c, m in pairs):
        return stats.paired_bootstrap_bound(
            [float(c["score"]) for c, _ in pairs], [float(m["score"]) for _, m in pairs], claim.alpha, "lower"
        )
    return f"per-document {'correct flags' if info.type == 'proportion' else 'scores'} for {task}"


def _parse(cid: str, t: dict, kw: dict[str, Any]) -> None:
    if not isinstance(t.get("control"), str):
        raise WidthwiseError(f"claim {cid!r}: beats_control needs control = a pruning method name")
    kw["control"] = canonical_method(t["control"])
    if kw["control"] in kw.get("methods", ("ppm",)):
        raise WidthwiseError(f"claim {cid!r}: control {kw['control']!r} is also in methods")


def _ran_controls(claim: Any, group: Group) -> bool:
    return any(p.method == claim.control for p in group.points)


@register_kind("beats_control", keys={"margin", "control"}, select=True, parse=_parse, applies=_ran_controls)
def check_beats_control(claim: Any, group: Group) -> list[Verdict]:
    """The method beats its control at the same width by more than margin (paired lower bound)."""
    info = metric_info(claim.metric)
    assert info is not None and claim.control is not None
    out = []
    for pp in selected(claim, group):
        cfg = f"{pp.label} vs {claim.control}"
        cp = control_point(group, pp, claim.control)
        if cp is None:
            out.append(missing(claim, group, cfg, f"the {claim.control} control at this width"))
            continue
        m, mres = value(pp, claim.metric)
        c, cres = value(cp, claim.metric)
        if m is None or c is None:
            out.append(missing(claim, group, cfg, f"{claim.metric} on both sides"))
            continue
        why = unmeasurable(m, c)
        if why:
            out.append(not_measurable(claim, group, cfg, why))
            continue
        require_comparable(mres, cres)
        bd = paired_difference(claim, mres, cres, f"{claim.id}: {group.model} {cfg}")
        if isinstance(bd, str):
            out.append(missing(claim, group, cfg, bd))
            continue
        unit = f" {info.unit}" if info.unit else ""
        values = f"{float(m['value']):.4g} vs {claim.control} {float(c['value']):.4g}"
        out.append(
            bounded(
                claim,
                group,
                cfg,
                bd.bound > claim.margin,
                bd,
                observed=f"{bd.delta:+.4f}{unit} ({values}, paired over {bd.n} docs)",
                bound=f"{confidence(claim.alpha, 'lower')} {bd.bound:+.4f} > {claim.margin:+.4f}",
                threshold=claim.margin,
            )
        )
    return out
