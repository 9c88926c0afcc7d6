"""Plots: each metric against expansion ratio, the paper's curve dashed beside the measured one solid.

Expansion ratio is on x, decreasing to the right (more pruning). Efficiency metrics are plotted relative
to each model's base: the paper's absolute J/token are not joules (its unit bug), and its L4 timings do
not transfer. Each `draw_*` draws onto an Axes and returns what it drew, so a test can read the curves'
data; each `plot_*` saves one PNG.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from widthwise.claims.metrics import EVAL, metric_info
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


@dataclass(frozen=True)
class Curve:
    """One line drawn: its legend label and its points (y as plotted, relative where the axis is)."""

    label: str
    xs: tuple[float, ...]
    ys: tuple[float, ...]


def plot_name(metric: str) -> str:
    return slug(metric.replace("/", "__"))


def methods_of(group: Group) -> list[str]:
    """The group's pruning methods, PPM (the paper's) first: one line each, so controls never join PPM's."""
    found = {p.method for p in group.points if p.method is not None}
    return sorted(found, key=lambda m: (m != "ppm", m))


def _series(
    group: Group, metric: str, relative: bool, method: str | None = None
) -> tuple[list[float], list[float], list[float | None]]:
    """x, y, yerr of one metric for the base and one method's points (all points when method is None);
    relative to the base model as measured beside each point when it was."""
    xs, ys, es = [], [], []
    base = group.base.metrics.get(metric, (None,))[0] if group.base else None
    refs = [p.refs[metric][1] for p in group.points if metric in p.refs]
    if relative and not base and refs:
        # Only interleaved bases: the base sits at 1 by definition, at its own expansion ratio.
        xs, ys, es = [float(refs[0]["expansion_ratio"])], [1.0], [None]
    for p in group.points:
        if method is not None and not p.is_base and p.method != method:
            continue
        e = p.metrics.get(metric, (None,))[0]
        if not e or e.get("value") is None:
            continue
        ref = (p.refs.get(metric) or (base,))[0] if relative else None
        if relative and (not ref or not ref.get("value")):
            continue
        scale = 1.0 / float(ref["value"]) if relative else 1.0
        xs.append(p.ratio)
        ys.append(float(e["value"]) * scale)
        es.append(float(e["stderr"]) * scale if e.get("stderr") is not None else None)
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
            curves.append(Curve(label, tuple(xs), tuple(ys)))
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
    ax.set_title(
        metric + (" (paper: only ratios are valid)" if info and info.type == "energy" else ""), fontsize=10
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return curves


def draw_dichotomy(ax: Any, group: Group, colours: Sequence[str]) -> list[Curve]:
    """Change from base, in percent, of the knowledge metrics (solid) and the robust ones (dashed) of
    one model's method curve onto `ax`; one colour per metric in every model's plot, so they read side
    by side."""
    curves = []
    methods = methods_of(group)
    for i, metric in enumerate(DICHOTOMY):
        xs, ys, _ = _series(group, metric, relative=True, method=methods[0] if methods else None)
        if len(xs) < 2:
            continue
        change = [100 * (y - 1) for y in ys]
        label = metric.split(",")[0]
        ls = "-" if metric in KNOWLEDGE else "--"
        ax.plot(xs, change, marker="o", ms=4, color=colours[i % len(colours)], ls=ls, label=label)
        curves.append(Curve(label, tuple(xs), tuple(change)))
    if len(curves) < 2:
        return curves
    ax.axhline(0, color="grey", lw=0.8)
    ax.invert_xaxis()
    ax.set_xlabel(XLABEL)
    ax.set_ylabel("change from base model (%)")
    ax.set_title(
        f"{short_name(group.model)} [{group.tier}]\n"
        "solid: knowledge and commonsense; dashed: IFEval, TruthfulQA, MuSR",
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
