"""Verdict tables (terminal and markdown), the GitHub step summary, per-model metric tables and plots.

Plots put expansion ratio on x (decreasing to the right: more pruning), the paper's curve dashed beside
the measured one solid, one colour per model. Efficiency metrics are plotted relative to each model's
base: the paper's absolute J/token are not joules (unit bug), and its L4 timings do not transfer.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from tabulate import tabulate

from widthwise.claims import METRICS, Group, Verdict, group_results, metric_info, model_key

HEADERS = ["claim", "model", "configuration", "observed", "bound", "n", "MDE", "verdict"]
_MARK = {
    "holds": "holds",
    "fails": "FAILS",
    "missing": "MISSING",
    "not_measurable": "not measurable",
    "skipped": "skipped",
}
BENCH_PLOTS = (
    "bench:avg/j_per_token",
    "bench:b8/throughput_tok_s",
    "bench:b1/ttlt_ms",
    "bench:b1/latency_ms",
    "bench:b1/ttft_ms",
    "bench:b1/tpot_ms",
)
DICHOTOMY = (
    "mmlu/acc",
    "gsm8k/exact_match,flexible-extract",
    "hellaswag/acc_norm",
    "arc_challenge/acc_norm",
    "ifeval/prompt_level_strict_acc",
    "truthfulqa_mc2/acc",
    "leaderboard_musr/acc_norm",
)


def _short(model: str) -> str:
    return model.rstrip("/").rsplit("/", 1)[-1]


def verdict_rows(verdicts: Sequence[Verdict]) -> list[list[Any]]:
    return [
        [
            v.claim,
            f"{_short(v.model)} [{v.tier}]",
            v.config,
            v.observed,
            v.bound,
            "—" if v.n is None else v.n,
            v.mde,
            _MARK[v.verdict],
        ]
        for v in verdicts
    ]


def summary_line(verdicts: Sequence[Verdict]) -> str:
    counts = {k: sum(v.verdict == k for v in verdicts) for k in _MARK}
    parts = [f"{counts[k]} {_MARK[k].lower()}" for k in _MARK if counts[k]]
    claims = len({v.claim for v in verdicts})
    return f"{len(verdicts)} checks of {claims} claims: " + ", ".join(parts)


def verdict_table(verdicts: Sequence[Verdict]) -> str:
    return tabulate(verdict_rows(verdicts), HEADERS, tablefmt="simple", disable_numparse=True)


def _md_cell(x: Any) -> str:
    return str(x).replace("|", "\\|")


def verdict_markdown(verdicts: Sequence[Verdict], title: str = "widthwise check") -> str:
    rows = [[_md_cell(c) for c in r] for r in verdict_rows(verdicts)]
    out = [f"### {title}", "", summary_line(verdicts), ""]
    out.append(tabulate(rows, HEADERS, tablefmt="github", disable_numparse=True))
    bad = [v for v in verdicts if v.verdict in ("fails", "missing")]
    if bad:
        out += ["", "**Failing:**", ""] + [f"- {_md_cell(v.message)}" for v in bad]
    return "\n".join(out) + "\n"


def append_step_summary(markdown: str, env: Mapping[str, str] | None = None) -> Path | None:
    """Append (never overwrite) to $GITHUB_STEP_SUMMARY when it is set."""
    path = (env if env is not None else os.environ).get("GITHUB_STEP_SUMMARY")
    if not path:
        return None
    with open(path, "a", encoding="utf-8") as f:
        f.write(markdown + "\n")
    return Path(path)


# ---- metric tables --------------------------------------------------------------------------------------


def _fmt_value(key: str, e: Mapping[str, Any] | None) -> str:
    if e is None:
        return ""
    if e.get("value") is None:
        return "n/m"
    v, se = float(e["value"]), e.get("stderr")
    info = metric_info(key)
    if info is not None and info.type in ("proportion", "score"):
        return f"{v:.4f}" + ("" if se is None else f" ± {float(se):.4f}")
    return f"{v:.4g}" + ("" if se is None else f" ± {float(se):.2g}")


def metric_table(group: Group, fmt: str = "github") -> str:
    keys = sorted({k for p in group.points for k in p.metrics})
    rows = [[k, *[_fmt_value(k, p.metrics.get(k, (None,))[0]) for p in group.points]] for k in keys]
    headers = ["metric", *[p.label for p in group.points]]
    return tabulate([[_md_cell(c) for c in r] for r in rows], headers, tablefmt=fmt, disable_numparse=True)


# ---- plots ----------------------------------------------------------------------------------------------


def _slug(metric: str) -> str:
    return re.sub(r"[^a-z0-9_]+", "-", metric.lower().replace("/", "__")).strip("-")


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


def plot_metric(groups: Sequence[Group], metric: str, path: Path) -> Path | None:
    """One metric against expansion ratio: paper dashed, measured solid, one colour per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    info = metric_info(metric)
    relative = info is not None and info.type in ("energy", "throughput", "latency")
    colours: dict[str, Any] = {}
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=110)
    drawn = 0
    for g in groups:
        for i, method in enumerate(methods_of(g)):
            xs, ys, es = _series(g, metric, relative, method)
            if not xs:
                continue
            c = colours.setdefault(model_key(g.model), cycle[len(colours) % len(cycle)])
            paper = g.tier == "paper"
            label = f"{_short(g.model)} ({'paper' if paper else g.tier + ', measured'})"
            style = {
                "ls": "--" if paper else "-",
                "marker": "o" if paper else "s",
                "alpha": 0.85 if paper else 1,
            }
            if i:  # an ablation control: same colour as its model, its own marker, dotted
                label = f"{_short(g.model)} {method} control ({g.tier})"
                style = {"ls": ":", "marker": _CONTROL_MARKERS[(i - 1) % len(_CONTROL_MARKERS)], "alpha": 0.8}
            yerr = [e or 0.0 for e in es] if any(e is not None for e in es) else None
            ax.errorbar(xs, ys, yerr=yerr, color=c, ms=4, lw=1.4, capsize=2, label=label, **style)
            drawn += 1
    if not drawn:
        plt.close(fig)
        return None
    ax.invert_xaxis()
    ax.set_xlabel("expansion ratio (intermediate / hidden); more pruning to the right")
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
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def plot_dichotomy(group: Group, path: Path) -> Path | None:
    """Relative change from base of knowledge vs instruction-following metrics for one model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8.2, 4.2), dpi=110)
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    drawn = 0
    methods = methods_of(group)
    for i, metric in enumerate(DICHOTOMY):
        xs, ys, _ = _series(group, metric, relative=True, method=methods[0] if methods else None)
        if len(xs) < 2:
            continue
        knowledge = metric.split("/")[0] in ("mmlu", "gsm8k", "hellaswag", "arc_challenge")
        # One colour per metric in every model's plot, so the three dichotomy plots read side by side.
        ax.plot(
            xs,
            [100 * (y - 1) for y in ys],
            marker="o",
            ms=4,
            color=cycle[i % len(cycle)],
            ls="-" if knowledge else "--",
            label=metric.split(",")[0],
        )
        drawn += 1
    if drawn < 2:
        plt.close(fig)
        return None
    ax.axhline(0, color="grey", lw=0.8)
    ax.invert_xaxis()
    ax.set_xlabel("expansion ratio (intermediate / hidden); more pruning to the right")
    ax.set_ylabel("change from base model (%)")
    ax.set_title(
        f"{_short(group.model)} [{group.tier}]\n"
        "solid: knowledge and commonsense; dashed: IFEval, TruthfulQA, MuSR",
        fontsize=9,
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def plotted_metrics(groups: Sequence[Group]) -> list[str]:
    present = {k for g in groups for p in g.points for k in p.metrics}
    return [m for m in (*METRICS, *BENCH_PLOTS) if m in present]


def write_report(
    results: Iterable[Mapping[str, Any]], out: Path, verdicts: Sequence[Verdict] | None = None
) -> list[Path]:
    """report.md with the verdicts and one metric table per (tier, model), plus PNGs under plots/."""
    out = Path(out)
    groups = group_results(results)
    written: list[Path] = []
    md = ["# widthwise report", ""]
    if verdicts:
        md += [verdict_markdown(verdicts, "Claims"), ""]
    md += ["## Results", ""]
    for g in groups:
        md += [f"### {g.model} [{g.tier}]", "", metric_table(g), ""]
        if g.tier == "paper" and any(k.endswith("j_per_token") for p in g.points for k in p.metrics):
            md += [
                "J/token in the paper's tables are scaled by carbon intensity (its unit bug): "
                "compare them only as ratios to the base model.",
                "",
            ]
    md += ["## Plots", "", "Paper dashed, measured solid; efficiency relative to each model's base.", ""]
    for g in groups:
        p = plot_dichotomy(g, out / "plots" / f"dichotomy_{g.tier}_{_slug(_short(g.model))}.png")
        if p:
            written.append(p)
            md.append(f"![{_short(g.model)} {g.tier}](plots/{p.name})")
    for metric in plotted_metrics(groups):
        p = plot_metric(groups, metric, out / "plots" / f"{_slug(metric)}.png")
        if p:
            written.append(p)
            md.append(f"![{metric}](plots/{p.name})")
    report = out / "report.md"
    out.mkdir(parents=True, exist_ok=True)
    report.write_text("\n".join(md) + "\n", encoding="utf-8")
    return [report, *written]
