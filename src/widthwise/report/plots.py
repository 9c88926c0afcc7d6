"""Plots: each metric against expansion ratio, the paper's curve dashed beside the measured one solid.

Expansion ratio is on x, decreasing to the right (more pruning). Efficiency metrics are plotted relative
to each model's base: the paper's absolute J/token are not joules (its unit bug), and its L4 timings do
not transfer. Each `draw_*` draws onto an Axes and returns what it drew, so a test can read the curves'
data; each `plot_*` saves one PNG.

Each point carries a 95% interval where its standard error is known (_interval says which one).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from widthwise.claims.evidence import paired_records, samples, scored_by, standard_error
from widthwise.claims.metrics import EVAL, metric_info
from widthwise.claims.subjects import is_control
from widthwise.errors import WidthwiseError
from widthwise.names import model_key, short_name, slug
from widthwise.points import Group

BENCH_PLOTS = (
    "bench:avg/j_per_token",
    "bench:b8/throughput_tok_s",
    "bench:b1/ttlt_ms",
    "bench:b1/latency_ms",
    "bench:b1/ttft_ms",
    "bench:b1/tpot_ms",
)
# The dichotomy: knowledge and commonsense (solid) against instruction following and truthfulness (dashed).
KNOWLEDGE = ("mmlu/acc", "gsm8k/exact_match,flexible-extract", "hellaswag/acc_norm", "arc_challenge/acc_norm")
ROBUST = ("ifeval/prompt_level_strict_acc", "truthfulqa_mc2/acc", "leaderboard_musr/acc_norm")
DICHOTOMY = (*KNOWLEDGE, *ROBUST)


Z95 = 1.959963984540054  # the normal quantile of a two-sided 95% interval
INTERVAL = "95% interval"


@dataclass(frozen=True)
class Curve:
    """One line drawn: its legend label, its points (y as plotted, relative where the axis is) and each
    point's 95% interval as plotted (None where no standard error is known)."""

    label: str
    xs: tuple[float, ...]
    ys: tuple[float, ...]
    lower: tuple[float | None, ...] = ()
    upper: tuple[float | None, ...] = ()


def _curve(label: str, xs: Sequence[float], ys: Sequence[float], half: Sequence[float | None]) -> Curve:
    return Curve(
        label,
        tuple(xs),
        tuple(ys),
        tuple(None if h is None else y - h for y, h in zip(ys, half, strict=True)),
        tuple(None if h is None else y + h for y, h in zip(ys, half, strict=True)),
    )


def paired_se(metric: str, base: Mapping[str, Any], pruned: Mapping[str, Any]) -> float | None:
    """Standard error of the mean per-document difference pruned - base of `metric`, when both Results
    carry records of its task scored by it and the metric is their mean (a proportion or a score); None
    otherwise (a perplexity, a bench figure, the paper's tables)."""
    info = metric_info(metric)
    if info is None or info.type not in ("proportion", "score") or not scored_by(metric, base, pruned):
        return None
    task = metric.split("/", 1)[0]
    a, b = samples(base, task), samples(pruned, task)
    if not (a and b):
        return None
    try:
        pairs = paired_records(a, b, f"plot of {metric}")
    except WidthwiseError:
        return None  # not the same documents: each point keeps its own interval (`check` refuses the pair)
    if len(pairs) < 2 or not all("score" in x and "score" in y for x, y in pairs):
        return None
    diffs = [float(y["score"]) - float(x["score"]) for x, y in pairs]
    return statistics.stdev(diffs) / math.sqrt(len(diffs))


def _interval(
    metric: str,
    entry: Mapping[str, Any],
    ref: tuple[Mapping[str, Any], Mapping[str, Any]] | None,
    res: Any,
    relative: bool,
) -> float | None:
    """Half the width of a point's 95% interval, in the units of the unscaled value (None: unknown).

    With `ref` (the base's entry and Result; None at the base itself, or when there is no base), the
    interval is that of the change from the base, drawn at the point's value, so a bar that reaches the
    base's value is a change that 95% confidence does not tell from zero:
    - where both carry per-document records of the metric, the paired interval of pruned - base
      (Z95 * the standard error of the mean per-document difference): it holds the base's noise too;
    - else each side's own standard error, taken as independent: sqrt(se^2 + se_base^2) for a difference,
      sqrt(se^2 + (value / base)^2 se_base^2) for a ratio (the delta method). A bench ratio's two sides
      ran interleaved and share drift, so that errs wide.
    Without `ref`, the point's own Z95 * stderr (a proportion with n and no stderr: its binomial one).
    A relative plot divides by the base's value as if it were exact (a second-order error).
    """
    se = standard_error(metric, entry)
    if ref is None:
        return None if se is None else Z95 * se
    base_entry, base_res = ref
    paired = paired_se(metric, base_res, res) if base_res is not None and res is not None else None
    if paired is not None:
        return Z95 * paired
    base_se = standard_error(metric, base_entry)
    if se is None or base_se is None or not base_entry.get("value"):
        return None if se is None else Z95 * se
    weight = float(entry["value"]) / float(base_entry["value"]) if relative else 1.0
    return Z95 * math.sqrt(se**2 + (weight * base_se) ** 2)


def plot_name(metric: str) -> str:
    return slug(metric.replace("/", "__"))


def methods_of(group: Group) -> list[str]:
    """The group's pruning methods, PPM (the paper's) first: one line each, so controls never join PPM's."""
    found = {p.method for p in group.points if p.method is not None}
    return sorted(found, key=lambda m: (m != "ppm", m))


def _series(
    group: Group, metric: str, relative: bool, method: str | None = None
) -> tuple[list[float], list[float], list[float | None]]:
    """x, y and the 95% interval's half-width (_interval, None where unknown) of one metric for the base
    and one method's points (all points when method is None); y and the half-width relative to the base
    model as measured beside each point when it was."""
    xs: list[float] = []
    ys: list[float] = []
    es: list[float | None] = []
    base = group.base.metrics.get(metric) if group.base else None
    refs = [p.refs[metric][1] for p in group.points if metric in p.refs]
    if relative and not base and refs:
        # Only interleaved bases: the base sits at 1 by definition, at its own expansion ratio.
        xs, ys, es = [float(refs[0]["expansion_ratio"])], [1.0], [None]
    for p in group.points:
        if method is not None and not p.is_base and p.method != method:
            continue
        e, res = p.metrics.get(metric, (None, None))
        if not e or e.get("value") is None:
            continue
        ref = p.refs.get(metric) or base
        if relative and (not ref or not ref[0].get("value")):
            continue
        scale = 1.0 / float(ref[0]["value"]) if relative else 1.0
        # The base itself, drawn relative, sits at exactly 1: its own noise is in its partners' intervals.
        half = _interval(metric, e, None if p.is_base else ref, res, relative)
        if relative and p.is_base:
            half = None
        xs.append(p.ratio)
        ys.append(float(e["value"]) * scale)
        es.append(None if half is None else half * abs(scale))
    return xs, ys, es


_CONTROL_MARKERS = ("x", "^", "v", "d")
XLABEL = "expansion ratio (intermediate / hidden); more pruning to the right"


def is_relative(metric: str) -> bool:
    info = metric_info(metric)
    return info is not None and info.efficiency


def draw_metric(ax: Any, groups: Sequence[Group], metric: str, colours: Sequence[str]) -> list[Curve]:
    """One metric against expansion ratio onto `ax`: paper dashed, measured solid, a colour per model,
    each ablation control its own dotted line in its model's colour."""
    relative = is_relative(metric)
    by_model: dict[str, str] = {}
    curves = []
    for g in groups:
        for i, method in enumerate(methods_of(g)):
            xs, ys, es = _series(g, metric, relative, method)
            if not xs:
                continue
            c = by_model.setdefault(model_key(g.model), colours[len(by_model) % len(colours)])
            paper = g.tier == "paper"
            label = f"{short_name(g.model)} ({'paper' if paper else g.tier + ', measured'})"
            style = {
                "ls": "--" if paper else "-",
                "marker": "o" if paper else "s",
                "alpha": 0.85 if paper else 1,
            }
            if i:
                label = f"{short_name(g.model)} {method} control ({g.tier})"
                style = {"ls": ":", "marker": _CONTROL_MARKERS[(i - 1) % len(_CONTROL_MARKERS)], "alpha": 0.8}
            yerr = [e or 0.0 for e in es] if any(e is not None for e in es) else None
            ax.errorbar(xs, ys, yerr=yerr, color=c, ms=4, lw=1.4, capsize=2, label=label, **style)
            curves.append(_curve(label, xs, ys, es))
    if not curves:
        return curves
    info = metric_info(metric)
    ax.invert_xaxis()
    ax.set_xlabel(XLABEL)
    ax.set_ylabel(f"{metric} relative to base" if relative else metric)
    if info is not None and info.type == "perplexity":
        ax.set_yscale("log")
    if relative:
        ax.axhline(1.0, color="grey", lw=0.8, ls=":")
    bars = any(lo is not None for c in curves for lo in c.lower)
    ax.set_title(
        metric
        + (" (paper: only ratios are valid)" if info and info.type == "energy" else "")
        + (
            f"\nbars: {INTERVAL} (paired change from the base where per-document records exist)"
            if bars
            else ""
        ),
        fontsize=9,
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return curves


_METHOD_MARKERS = ("o", "s", "^", "D", "v", "P")


def _marker(j: int) -> str:
    """The marker of the dichotomy plot's j-th method."""
    return _METHOD_MARKERS[j % len(_METHOD_MARKERS)]


def draw_dichotomy(ax: Any, group: Group, colours: Sequence[str]) -> list[Curve]:
    """Change from base, in percent, of the knowledge metrics (solid) and the robust ones (dashed) onto
    `ax`, a line per method the group ran for its own sake (PPM first, then each other, by marker; the
    controls are left to the metric plots); one colour per metric in every model's plot, so they read
    side by side."""
    curves = []
    methods = [m for m in methods_of(group) if not is_control(m)] or methods_of(group)[:1]
    for i, metric in enumerate(DICHOTOMY):
        for j, method in enumerate(methods or [None]):
            xs, ys, es = _series(group, metric, relative=True, method=method)
            if len(xs) < 2:
                continue
            change = [100 * (y - 1) for y in ys]
            half = [None if e is None else 100 * e for e in es]
            label = metric.split(",")[0] + (f" ({method})" if len(methods) > 1 else "")
            ls = "-" if metric in KNOWLEDGE else "--"
            colour = colours[i % len(colours)]
            marker = _marker(j)
            ax.plot(
                xs, change, marker=marker, ms=4, color=colour, ls=ls, label=label, alpha=1 if j == 0 else 0.8
            )
            curve = _curve(label, xs, change, half)
            known = [k for k, lo in enumerate(curve.lower) if lo is not None]
            if known and j == 0:  # one band per metric, the reference's: more would hide the lines
                ax.fill_between(
                    [xs[k] for k in known],
                    [curve.lower[k] for k in known],
                    [curve.upper[k] for k in known],
                    color=colour,
                    alpha=0.12,
                    lw=0,
                )
            curves.append(curve)
    if len(curves) < 2:
        return curves
    # The axis fits the points: a band wider than that (GSM8K's 16 documents) runs off it, which is what
    # it says, rather than squeezing every curve flat.
    ys = [y for c in curves for y in c.ys]
    pad = max(10.0, 0.25 * (max(ys) - min(ys)))
    ax.set_ylim(min(ys) - pad, max(ys) + pad)
    ax.axhline(0, color="grey", lw=0.8)
    ax.invert_xaxis()
    ax.set_xlabel(XLABEL)
    ax.set_ylabel("change from base model (%)")
    bands = any(lo is not None for c in curves for lo in c.lower)
    ax.set_title(
        f"{short_name(group.model)} [{group.tier}]"
        + (f" — {', '.join(f'{m} {_marker(j)}' for j, m in enumerate(methods))}" if len(methods) > 1 else "")
        + "\nsolid: knowledge and commonsense; dashed: IFEval, TruthfulQA, MuSR"
        + (f"\nbands: {INTERVAL} of the change (paired where per-document records exist)" if bands else ""),
        fontsize=9,
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    return curves


def _save(draw: Any, size: tuple[float, float], path: Path, minimum: int) -> Path | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=size, dpi=110)
    try:
        if len(draw(ax, plt.rcParams["axes.prop_cycle"].by_key()["color"])) < minimum:
            return None
        fig.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path)
        return path
    finally:
        plt.close(fig)


def plot_metric(groups: Sequence[Group], metric: str, path: Path) -> Path | None:
    """The PNG of draw_metric, or None when no Result has the metric."""
    return _save(lambda ax, colours: draw_metric(ax, groups, metric, colours), (6.4, 4.2), path, 1)


def plot_dichotomy(group: Group, path: Path) -> Path | None:
    """The PNG of draw_dichotomy, or None with fewer than two curves to set against each other."""
    return _save(lambda ax, colours: draw_dichotomy(ax, group, colours), (8.2, 4.2), path, 2)


def plotted_metrics(groups: Sequence[Group]) -> list[str]:
    present = {k for g in groups for p in g.points for k in p.metrics}
    return [m for m in (*EVAL, *BENCH_PLOTS) if m in present]
