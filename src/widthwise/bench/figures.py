"""Bench windows -> per-repeat series and summaries, Result metrics, paired ratios and printed tables.

Metric keys (each {"value": median over the windows that measured it, "stderr": standard error of the
mean over them, "n": how many}; a figure measured by fewer than MIN_REPEATS windows, energy without a meter
or with too many flagged windows, is {"value": null, "not_measurable": why}):
  bench:{workload}_b{B}/ttft_ms | tpot_ms | latency_ms | throughput_tok_s | j_per_token | j_per_token_gross
  bench:avg/j_per_token, bench:b{B}/throughput_tok_s | latency_ms | ttft_ms | tpot_ms
An aggregate is computed per repeat (the mean over its cells of that repeat's figures) and then summarised
like a cell, so it has a spread and pairs base with pruned repeat by repeat; a repeat in which any of its
cells' windows is flagged does not count for it.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Any

from tabulate import tabulate

from widthwise.bench.config import MIN_REPEATS
from widthwise.bench.models import Ideal
from widthwise.bench.timing import Cell, Window
from widthwise.claims.metrics import BENCH_FIGURES, bench_key

# What a window measures (Window.figures), in table order; the paper's TTLT is only ever transcribed.
WINDOW_FIGURES = ("ttft_ms", "tpot_ms", "latency_ms", "throughput_tok_s", "j_per_token", "j_per_token_gross")
BATCH_AGGREGATES = ("throughput_tok_s", "latency_ms", "ttft_ms", "tpot_ms")
SHOWN_FLAGS = 2  # flags quoted in a not-measurable reason; the Result's bench.windows keeps every one


def quantile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated quantile (numpy's default), q in [0, 1]."""
    xs = sorted(values)
    pos = q * (len(xs) - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def summary(values: Sequence[float]) -> dict[str, float | int | None]:
    """Median (the figure), p10/p90 (the spread) and the standard error of the mean across repeats."""
    n = len(values)
    return {
        "median": statistics.median(values),
        "p10": quantile(values, 0.1),
        "p90": quantile(values, 0.9),
        "mean": statistics.fmean(values),
        "stderr": statistics.stdev(values) / math.sqrt(n) if n > 1 else None,
        "n": n,
    }


def per_repeat(windows: Sequence[Window]) -> dict[str, list[float | None]]:
    figs = [w.figures() for w in windows]
    return {k: [f[k] for f in figs] for k in figs[0]}


def speedup(metric: str, base: float, pruned: float) -> float:
    """How many times faster (or more frugal) pruned is than base: > 1 is better for every metric."""
    return pruned / base if BENCH_FIGURES[metric].higher_is_better else base / pruned


def paired_ratios(
    a: dict[str, list[float | None]],
    b: dict[str, list[float | None]],
    ideal: Ideal,
    min_pairs: int = MIN_REPEATS,
) -> dict[str, dict[str, Any]]:
    """Per-repeat pruned/base ratios of every figure (per_repeat() of base `a` and pruned `b`, repeat r
    paired with repeat r, where both measured it), summarised, with the speed-up against the ideal; a figure
    with fewer than `min_pairs` such pairs is left out."""
    out = {}
    for metric in a:
        if metric not in b:
            continue
        pairs = [(x, y) for x, y in zip(a[metric], b[metric], strict=True) if x is not None and y is not None]
        if len(pairs) < min_pairs:
            continue
        s = summary([y / x for x, y in pairs])
        sp = speedup(metric, 1.0, s["median"])
        bound = ideal.for_metric(metric, a)
        out[metric] = {
            "ratio": s,
            "speedup": sp,
            "ideal_speedup": bound,
            "achieved_over_ideal": sp / bound,
        }
    return out


def _mean_over(series: Sequence[dict[str, list[float | None]]], metric: str) -> list[float | None]:
    n = len(series[0][metric])
    out: list[float | None] = []
    for r in range(n):
        vals = [s[metric][r] for s in series]
        out.append(None if any(v is None for v in vals) else statistics.fmean(vals))
    return out


def series(cells: Sequence[Cell], label: str) -> dict[str, dict[str, list[float | None]]]:
    """Per-repeat figures of every cell and aggregate for one model, keyed like the metric prefixes."""
    out = {c.key: per_repeat(c.windows[label]) for c in cells}
    cell_series = list(out.values())
    out["avg"] = {"j_per_token": _mean_over(cell_series, "j_per_token")}
    for b in sorted({c.batch_size for c in cells}):
        group = [out[c.key] for c in cells if c.batch_size == b]
        out[f"b{b}"] = {m: _mean_over(group, m) for m in BATCH_AGGREGATES}
    return out


def flags(cells: Sequence[Cell], label: str) -> dict[str, list[str | None]]:
    """Per repeat, why its window was left out of the energy figures (None: it was not), for every cell and
    aggregate that series() returns; an aggregate's repeat carries the flags of its cells' windows."""
    out = {c.key: [w.flag for w in c.windows[label]] for c in cells}
    per_cell = dict(out)

    def joined(keys: Sequence[str]) -> list[str | None]:
        n = len(per_cell[keys[0]])
        rows = [[f"{k}: {per_cell[k][r]}" for k in keys if per_cell[k][r]] for r in range(n)]
        return ["; ".join(row) or None for row in rows]

    out["avg"] = joined(list(per_cell))
    for b in sorted({c.batch_size for c in cells}):
        out[f"b{b}"] = joined([c.key for c in cells if c.batch_size == b])
    return out


def unmeasured_reason(
    values: Sequence[float | None],
    flagged: Sequence[str | None] | None,
    energy_reason: str | None,
    min_n: int,
) -> str | None:
    """Why a figure has no value (None: it has one): no meter, or fewer than min_n windows measured it."""
    if energy_reason is not None and all(v is None for v in values):
        return f"energy: not measurable here ({energy_reason})"
    measured = sum(v is not None for v in values)
    if measured >= min_n:
        return None
    why = f"{measured} of {len(values)} windows measured it, {min_n} needed"
    notes = [f"repeat {r + 1}: {f}" for r, f in enumerate(flagged or []) if f and values[r] is None]
    if notes:
        shown = notes[:SHOWN_FLAGS] + (
            [f"{len(notes) - SHOWN_FLAGS} more"] if len(notes) > SHOWN_FLAGS else []
        )
        why = f"energy: {len(notes)} of {len(values)} windows flagged ({'; '.join(shown)}); {why}"
    return why


def metrics(
    figs: dict[str, dict[str, list[float | None]]],
    energy_reason: str | None,
    flagged: dict[str, list[str | None]] | None = None,
    min_n: int = MIN_REPEATS,
) -> dict[str, Any]:
    """Result metrics: each figure summarised over the windows that measured it (flagged windows leave
    the energy figures), or not measurable with the reason when fewer than min_n did."""
    out: dict[str, Any] = {}
    for group, by_metric in figs.items():
        for metric, values in by_metric.items():
            key = bench_key(group, metric)
            why = unmeasured_reason(values, (flagged or {}).get(group), energy_reason, min_n)
            if why is not None:
                out[key] = {"value": None, "stderr": None, "n": None, "not_measurable": why}
                continue
            s = summary([v for v in values if v is not None])
            out[key] = {"value": s["median"], "stderr": s["stderr"], "n": s["n"]}
    return out


def spreads(figs: dict[str, dict[str, list[float | None]]]) -> dict[str, Any]:
    """Median, p10, p90, mean, stderr of every figure over the windows that measured it, and the raw
    per-repeat values (null where a window did not)."""
    out = {}
    for group, by_metric in figs.items():
        for metric, values in by_metric.items():
            measured = [v for v in values if v is not None]
            if measured:
                out[f"{group}/{metric}"] = {**summary(measured), "values": values}
    return out


def ratios(
    base: dict[str, dict[str, list[float | None]]],
    pruned: dict[str, dict[str, list[float | None]]],
    ideal: Ideal,
) -> dict[str, Any]:
    return {group: paired_ratios(base[group], pruned[group], ideal) for group in base}


def _fmt(s: dict[str, Any]) -> str:
    return f"{s['median']:.4g} [{s['p10']:.3g}, {s['p90']:.3g}]"


def figures_table(
    figs: dict[str, dict[str, list[float | None]]],
    energy_reason: str | None,
    min_n: int = MIN_REPEATS,
) -> str:
    rows = []
    for group, by_metric in figs.items():
        row = [group]
        for m in WINDOW_FIGURES:
            v = by_metric.get(m)
            measured = [x for x in v if x is not None] if v is not None else []
            if v is None:
                row.append("")
            elif len(measured) < min_n:
                row.append("n/m")
            else:
                row.append(_fmt(summary(measured)))
        rows.append(row)
    head = ["cell", *(f"{m} median [p10, p90]" if i == 0 else m for i, m in enumerate(WINDOW_FIGURES))]
    note = (
        f"\nn/m: energy not measurable here ({energy_reason})"
        if energy_reason
        else f"\nn/m: fewer than {min_n} unflagged windows (the Result's metrics say why)"
    )
    measured_all = all(
        len([x for x in v if x is not None]) >= min_n for by in figs.values() for v in by.values()
    )
    return tabulate(rows, headers=head, disable_numparse=True) + ("" if measured_all else note)


def ratio_table(r: dict[str, Any]) -> str:
    rows = []
    for group, by_metric in r.items():
        for metric, x in by_metric.items():
            rows.append(
                [
                    group,
                    metric,
                    _fmt(x["ratio"]),
                    f"{x['speedup']:.3f}",
                    f"{x['ideal_speedup']:.3f}",
                    f"{x['achieved_over_ideal']:.3f}",
                ]
            )
    head = ["cell", "metric", "pruned/base median [p10, p90]", "speed-up", "ideal", "achieved/ideal"]
    return tabulate(rows, headers=head, disable_numparse=True)
