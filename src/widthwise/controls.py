"""The `beats_control` claim kind: the paper's method against an ablation control at the same width.

NOTES §3: the paper found PPM far better than other neuron criteria on Llama-3.2. The controls here are
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
"""

from __future__ import annotations

from widthwise import stats
from widthwise.claims import (
    Claim,
    Group,
    Point,
    Verdict,
    _bound_method,
    _mde,
    _missing,
    _not_measurable,
    _samples,
    _selected,
    _unmeasurable,
    _value,
    _verdict,
    metric_info,
    paired_records,
)
from widthwise.results import require_comparable


def control_point(group: Group, point: Point, control: str) -> Point | None:
    """The control's configuration at the same width as `point` (same k; same pct when k is unknown)."""
    for p in group.points:
        if p.method != control:
            continue
        if (p.k is not None and p.k == point.k) or (p.k is None and p.pct == point.pct):
            return p
    return None


def paired_difference(claim: Claim, method_res: dict, control_res: dict, where: str) -> stats.Bound | str:
    """Lower bound on method - control over the paired documents, or why it cannot be had."""
    info = metric_info(claim.metric)
    assert info is not None
    task = claim.metric.split("/", 1)[0]
    ms, cs = _samples(method_res, task), _samples(control_res, task)
    if not (ms and cs):
        return f"per-document records for {task} on both sides"
    if not all((r.get("headline") or {}).get(task) == claim.metric for r in (method_res, control_res)):
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


def check_beats_control(claim: Claim, group: Group) -> list[Verdict]:
    info = metric_info(claim.metric)
    assert info is not None and claim.control is not None
    out = []
    for pp in _selected(claim, group):
        cfg = f"{pp.label} vs {claim.control}"
        cp = control_point(group, pp, claim.control)
        if cp is None:
            out.append(_missing(claim, group, cfg, f"the {claim.control} control at this width"))
            continue
        m, mres = _value(pp, claim.metric)
        c, cres = _value(cp, claim.metric)
        if m is None or c is None:
            out.append(_missing(claim, group, cfg, f"{claim.metric} on both sides"))
            continue
        why = _unmeasurable(m, c)
        if why:
            out.append(_not_measurable(claim, group, cfg, why))
            continue
        require_comparable(mres, cres)
        bd = paired_difference(claim, mres, cres, f"{claim.id}: {group.model} {cfg}")
        if isinstance(bd, str):
            out.append(_missing(claim, group, cfg, bd))
            continue
        ok = bd.bound > claim.margin
        unit = " nats/doc log-likelihood" if info.type == "perplexity" else ""
        values = f"{float(m['value']):.4g} vs {claim.control} {float(c['value']):.4g}"
        out.append(
            _verdict(
                claim,
                group,
                cfg,
                verdict="holds" if ok else "fails",
                observed=f"{bd.delta:+.4f}{unit} ({values}, paired over {bd.n} docs)",
                bound=f"{100 * (1 - claim.alpha):g}% LCB {bd.bound:+.4f} > {claim.margin:+.4f}",
                n=bd.n,
                mde=_mde(bd, claim.alpha),
                method=_bound_method(bd),
                value=bd.delta,
                threshold=claim.margin,
            )
        )
    return out
