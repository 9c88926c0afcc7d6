"""Verdict tables (terminal and markdown), the GitHub step summary, and per-model metric tables."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tabulate import tabulate

from widthwise.claims.metrics import metric_info
from widthwise.claims.verdict import FAILING, Verdict
from widthwise.names import short_name
from widthwise.points import Group

HEADERS = ["claim", "model", "configuration", "observed", "bound", "n", "MDE", "verdict"]
_MARK = {
    "holds": "holds",
    "fails": "FAILS",
    "missing": "MISSING",
    "not_measurable": "not measurable",
    "skipped": "skipped",
}


def verdict_rows(verdicts: Sequence[Verdict]) -> list[list[Any]]:
    return [
        [
            v.claim,
            f"{short_name(v.model)} [{v.tier}]",
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


def check_text(verdicts: Sequence[Verdict], not_applicable: Sequence[str]) -> str:
    """What `widthwise check` prints: the table, the counts, what did not apply, every failure's message."""
    lines = [verdict_table(verdicts), "", summary_line(verdicts)]
    if not_applicable:
        names = ", ".join(not_applicable)
        lines.append(f"not applicable to these Results (no matching tier, model or metric): {names}")
    lines += [v.message for v in verdicts if v.verdict in FAILING]
    return "\n".join(lines)


def check_markdown(verdicts: Sequence[Verdict], not_applicable: Sequence[str]) -> str:
    """The step summary of a check: the markdown table, and what did not apply."""
    md = verdict_markdown(verdicts)
    if not_applicable:
        md += f"\nNot applicable to these Results: {', '.join(not_applicable)}\n"
    return md


def verdict_markdown(verdicts: Sequence[Verdict], title: str = "widthwise check") -> str:
    rows = [[_md_cell(c) for c in r] for r in verdict_rows(verdicts)]
    out = [f"### {title}", "", summary_line(verdicts), ""]
    out.append(tabulate(rows, HEADERS, tablefmt="github", disable_numparse=True))
    bad = [v for v in verdicts if v.verdict in FAILING]
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
