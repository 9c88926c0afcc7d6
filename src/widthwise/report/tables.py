"""Verdict tables (terminal and markdown), the GitHub step summary, and per-model metric tables."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tabulate import tabulate

from widthwise.claims.chance import Distance
from widthwise.claims.check import Check
from widthwise.claims.coverage import Row
from widthwise.claims.metrics import metric_info
from widthwise.claims.verdict import Verdict, failing, fmt
from widthwise.names import short_name
from widthwise.points import Group

HEADERS = ["claim", "model", "configuration", "observed", "bound", "n", "MDE", "verdict"]
_MARK = {
    "holds": "holds",
    "fails": "FAILS",
    "missing": "MISSING",
    "not_measurable": "not measurable",
    "skipped": "skipped",
    "waived": "waived",
    "reported": "reported",
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
            _MARK[v.verdict].upper()
            if failing(v) and v.verdict not in ("fails", "missing")
            else _MARK[v.verdict],
        ]
        for v in verdicts
    ]


def summary_line(verdicts: Sequence[Verdict]) -> str:
    counts = {k: sum(v.verdict == k for v in verdicts) for k in _MARK}
    parts = [f"{counts[k]} {_MARK[k].lower()}" for k in _MARK if counts[k]]
    claims = len({v.claim for v in verdicts})
    # Not measurable and skipped fail on the measured tiers (evidence is required there): say how many did.
    gaps = sum(failing(v) for v in verdicts if v.verdict in ("not_measurable", "skipped"))
    tail = f" ({gaps} of them failing: not measurable or skipped on a measured tier)" if gaps else ""
    return f"{len(verdicts)} checks of {claims} claims: " + ", ".join(parts) + tail


def verdict_table(verdicts: Sequence[Verdict]) -> str:
    return tabulate(verdict_rows(verdicts), HEADERS, tablefmt="simple", disable_numparse=True)


def _md_cell(x: Any) -> str:
    return str(x).replace("|", "\\|")


def coverage_rows(rows: Sequence[Row]) -> list[list[Any]]:
    """Planned (or required) versus present, one line per (tier, model, configuration)."""
    by: dict[tuple[str, str, str], list[Row]] = {}
    for r in rows:
        by.setdefault((r.tier, r.model, r.config), []).append(r)
    out = []
    for (tier, model, config), rs in by.items():
        absent = [r.item for r in rs if not r.present]
        out.append(
            [
                f"{short_name(model)} [{tier}]",
                config,
                f"{len(rs) - len(absent)}/{len(rs)}",
                ", ".join(absent) if absent else "—",
                "; ".join(dict.fromkeys(r.source for r in rs)),
            ]
        )
    return out


COVERAGE_HEADERS = ["model", "configuration", "present", "missing", "expected by"]
CHANCE_HEADERS = ["model", "metric", "chance", "base - chance", "worst pruned - chance", "at"]


def pass_rate_text(rates: Sequence[Any], whole: float, target: float, runs: int) -> str:
    """Expected pass rates (widthwise.claims.passrate): one line per rated claim, the gate's last."""
    rows = [
        [
            r.claim,
            f"{r.rate:.3f}" if r.rate is not None else "—",
            ("" if r.noisy else "fixed: no standard error known")
            if r.rate is not None
            else "not rated (reported only, or not judged on these Results)",
            "BELOW TARGET" if r.rate is not None and r.rate < target else "",
        ]
        for r in rates
    ]
    table = tabulate(rows, ["claim", "expected pass rate", "note", ""], disable_numparse=True)
    return (
        f"expected pass rates of a faithful rerun ({runs} redraws of the paper's Results from their own "
        f"standard errors; target {target:.0%}):\n{table}\nwhole gate: {whole:.3f}"
    )


def chance_rows(chance: Sequence[Distance]) -> list[list[Any]]:
    return [
        [
            f"{short_name(d.model)} [{d.tier}]",
            d.metric,
            f"{d.chance:g}",
            fmt(d.base),
            fmt(d.worst),
            d.worst_at,
        ]
        for d in chance
    ]


def check_text(chk: Check) -> str:
    """What `widthwise check` prints: the table, the counts, planned versus present, distance above chance,
    the waivers, what did not apply, and every failure's message."""
    verdicts, coverage, chance, waivers = chk.verdicts, chk.coverage, chk.chance, chk.waivers
    lines = [verdict_table(verdicts), "", summary_line(verdicts)]
    if coverage:
        lines += [
            "",
            "planned versus present:",
            tabulate(coverage_rows(coverage), COVERAGE_HEADERS, disable_numparse=True),
        ]
    if chance:
        lines += [
            "",
            "distance above chance:",
            tabulate(chance_rows(chance), CHANCE_HEADERS, disable_numparse=True),
        ]
    for cid, tier, why in waivers:
        lines.append(
            f"{cid} [{tier}]: {why}" if why.startswith("reported only") else f"waived: {cid} [{tier}]: {why}"
        )
    if chk.not_applicable:
        names = ", ".join(chk.not_applicable)
        lines.append(
            f"not applicable to these Results (no matching tier or model, nothing planned that they select, "
            f"or, on the paper tier, no matching metric): {names}"
        )
    lines += [v.message for v in verdicts if failing(v)]
    return "\n".join(lines)


def gaps_markdown(
    coverage: Sequence[Row] = (),
    waivers: Sequence[tuple[str, str, str]] = (),
    chance: Sequence[Distance] = (),
) -> str:
    """Planned versus present, distance above chance and the waivers used, as markdown ('' when none)."""
    md = ""
    if chance:
        rows = [[_md_cell(c) for c in r] for r in chance_rows(chance)]
        md += (
            "\n**Distance above chance**\n\n"
            + tabulate(rows, CHANCE_HEADERS, tablefmt="github", disable_numparse=True)
            + "\n"
        )
    if coverage:
        rows = [[_md_cell(c) for c in r] for r in coverage_rows(coverage)]
        table = tabulate(rows, COVERAGE_HEADERS, tablefmt="github", disable_numparse=True)
        md += f"\n**Planned versus present**\n\n{table}\n"
    if waivers:
        md += "\n**Waived, and reported only**\n\n" + "".join(
            f"- {_md_cell(c)} [{t}]: {_md_cell(w)}\n" for c, t, w in waivers
        )
    return md


def check_markdown(chk: Check) -> str:
    """The step summary of a check: the table, planned versus present, waivers, what did not apply."""
    md = verdict_markdown(chk.verdicts) + gaps_markdown(chk.coverage, chk.waivers, chk.chance)
    if chk.not_applicable:
        md += f"\nNot applicable to these Results: {', '.join(chk.not_applicable)}\n"
    return md


def verdict_markdown(verdicts: Sequence[Verdict], title: str = "widthwise check") -> str:
    rows = [[_md_cell(c) for c in r] for r in verdict_rows(verdicts)]
    out = [f"### {title}", "", summary_line(verdicts), ""]
    out.append(tabulate(rows, HEADERS, tablefmt="github", disable_numparse=True))
    bad = [v for v in verdicts if failing(v)]
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


def departures(group: Group) -> list[str]:
    """How the group's evaluations departed from the paper's settings, one markdown bullet per task and
    reason: an offline copy's deviation (settings.tasks.NAME.deviation) and a task stood in for by another
    (settings.substitutes)."""
    seen: dict[tuple[str, str], None] = {}
    for point in group.points:
        for _entry, res in point.metrics.values():
            settings = res.get("settings") or {}
            tasks = settings.get("tasks")
            for task, t in tasks.items() if isinstance(tasks, dict) else ():
                if isinstance(t, dict) and t.get("deviation"):
                    seen[(task, str(t["deviation"]))] = None
            for task, why in (settings.get("substitutes") or {}).items():
                seen[(task, f"not run; substitute: {why}")] = None
    return [f"- {_md_cell(task)}: {_md_cell(why)}" for task, why in sorted(seen)]
