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
from widthwise.claims.gating import Demotion
from widthwise.claims.metrics import metric_info
from widthwise.claims.subjects import REFERENCE, split_id
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


def _across(values: Sequence[float]) -> str:
    return f"{min(values):.4f}-{max(values):.4f}" if len(values) > 1 else "—"


def design_text(d: Any) -> str:
    """The GPU gate's pass rates (widthwise.claims.design): one line per candidate, the gate's last."""
    r = d.rule
    rows = [
        [
            c.claim,
            f"{c.rate:.4f}",
            _across(c.by_concordance),
            "gates" if c.gates else "reported",
            "fixed: no standard error known" if c.fixed else (c.needs or ""),
        ]
        for c in d.claims
    ]
    heads = ["candidate claim", f"pass rate (c={r.concordance:g})", "across c", "", "note"]
    table = tabulate(rows, heads, disable_numparse=True)
    rng = ", ".join(f"{x:g}" for x in r.concordances)
    verdict = "meets" if d.whole >= r.target_pass else "BELOW"
    return (
        f"GPU gate (baselines/measured/gpu/rule.toml): Bonferroni over {len(r.candidates)} candidate claims, "
        f"each allowed a red rate of {r.share:.5f} on faithful reruns; {r.runs} reruns drawn per document at "
        f"the paper's n, concordance c = {r.concordance:g} (range {rng}):\n{table}\n"
        f"whole gate ({len(d.gating)} gating claims): {d.whole:.4f} at c={r.concordance:g}, "
        f"{_across(d.whole_by_concordance)} across c; target {r.target_pass:g}: {verdict}"
    )


def tier_rate_text(t: Any, where: str) -> str:
    """A deterministic tier's pass rate (widthwise.claims.rerun): each gating claim, then the whole gate."""
    rows = [[cid, f"{rate:.4f}"] for cid, rate in t.claims.items()]
    table = tabulate(rows, ["gating claim", "pass rate"], disable_numparse=True)
    return (
        f"{t.tier} gate ({where}): {t.runs} faithful reruns, every stored per-document score moved within "
        f"the regression tolerance (regression.toml):\n{table}\nwhole gate ({len(t.claims)} gating claims): "
        f"{t.whole:.4f}; target 0.95: {'meets' if t.whole >= 0.95 else 'BELOW'}"
    )


def power_text(d: Any) -> str:
    """Each named break's probability of turning the GPU gate red, beside the pass rate."""
    r = d.rule
    rows = [
        [
            p.brk.id,
            f"{p.power:.4f}",
            _across(p.by_concordance),
            "ok" if p.power >= r.target_power else "BELOW",
            ", ".join(p.reads) or "—",
            p.needs,
        ]
        for p in d.power
    ]
    heads = [
        "break",
        f"power (c={r.concordance:g})",
        "across c",
        "",
        "gating claims that see it",
        "why / n needed",
    ]
    table = tabulate(rows, heads, disable_numparse=True, maxcolwidths=[None, None, None, None, 48, 64])
    return (
        f"power of the GPU gate against named breaks (target {r.target_power:g}; whole-gate pass rate "
        f"{d.whole:.4f} beside it):\n{table}"
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


CONSOLE_OBSERVED = (
    100  # characters of a non-failing verdict's observed text on the console (report.md has all)
)


def _cap(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _folded_regression(vs: Sequence[Verdict], other: bool) -> list[Any]:
    """One row for a configuration's regression verdicts that hold: how many tasks, documents changed."""
    v = vs[0]
    changed = int(sum(x.value or 0 for x in vs))
    docs = sum(x.n or 0 for x in vs)
    tasks = f"{len(vs)} {'other ' if other else ''}task{'s' if len(vs) != 1 else ''}"
    return [
        v.claim,
        f"{short_name(v.model)} [{v.tier}]",
        v.config,
        f"{tasks}: {changed} of {docs} documents changed",
        f"{v.bound} per task",
        docs,
        "—",
        _MARK["holds"],
    ]


def gating_rows(verdicts: Sequence[Verdict]) -> list[list[Any]]:
    """The console's rows of every verdict that can turn the build red (all but reported-only ones), in
    order. The regression gate's verdicts that hold fold into one row per configuration (its tasks and the
    documents changed); a regression verdict that fails or is missing keeps its own row. A non-failing
    row's observed text is cut to CONSOLE_OBSERVED characters (a waiver's reason is in report.md)."""
    rows: list[list[Any]] = []
    regression: dict[tuple[str, str, str], list[Verdict]] = {}
    for v in verdicts:
        if v.verdict == "reported":
            continue
        if v.kind == "regression":
            regression.setdefault((v.tier, v.model, v.config), []).append(v)
            continue
        (row,) = verdict_rows([v])
        if not failing(v):
            row[3] = _cap(str(row[3]), CONSOLE_OBSERVED)
        rows.append(row)
    for vs in regression.values():
        held = [v for v in vs if v.verdict == "holds"]
        for v in vs:
            if v.verdict != "holds":
                (row,) = verdict_rows([v])
                row[3] = f"{v.metric.split('/')[0]}: {row[3]}"  # the table has no metric column
                rows.append(row)
        if held:
            rows.append(_folded_regression(held, other=len(held) < len(vs)))
    return rows


def _reason_head(why: str) -> str:
    """The first clause of a reported-only reason (its text may carry every width's numbers)."""
    head = why.removeprefix("reported only: ").split(": ", 1)[0].split(". ", 1)[0]
    return _cap(head, 60)


def _worst(vs: Sequence[Verdict]) -> Verdict:
    """The reported verdict to show for a claim: among those whose check failed (else all), the least
    favourable observed difference, by the side its bound says the claim needs (a UCB must stay low, an
    LCB high); the first when the bound says neither (a trend, a correlation)."""
    bad = [v for v in vs if v.observed.startswith("fails")] or list(vs)

    def badness(v: Verdict) -> float:
        if v.value is None:
            return float("-inf")
        return v.value if "UCB" in v.bound else -v.value if "LCB" in v.bound else float("-inf")

    return max(bad, key=badness)


def reported_rows(chk: Check) -> list[list[Any]]:
    """One row per reported-only claim: its verdicts that hold and fail, the worst one, and why the claim
    only reports."""
    by: dict[str, list[Verdict]] = {}
    for v in chk.verdicts:
        if v.verdict == "reported":
            by.setdefault(v.claim, []).append(v)
    why = {c: w for c, _t, w in chk.waivers if w.startswith("reported only")}
    rows = []
    for cid, vs in by.items():
        held = sum(v.observed.startswith("holds") for v in vs)
        w = _worst(vs)
        seen = w.observed.split(": ", 1)[-1].split(" (", 1)[0]
        tiers = sorted({v.tier for v in vs})
        rows.append(
            [
                f"{cid} [{', '.join(tiers)}]",
                f"{held} hold, {len(vs) - held} fail",
                _cap(f"{w.config}: {seen} ({w.bound})", 80),
                _reason_head(why.get(cid, "")),
            ]
        )
    return rows


REPORTED_HEADERS = ["reported only (never gating)", "verdicts", "worst", "why only reported"]


def coverage_line(coverage: Sequence[Row]) -> str:
    """Planned versus present in one line: each absent item is also a MISSING row of the gating table."""
    configs = len({(r.tier, r.model, r.config) for r in coverage})
    present = sum(r.present for r in coverage)
    gap = "" if present == len(coverage) else " (each absent one is a MISSING row above)"
    return (
        f"planned versus present: {present} of {len(coverage)} expected tasks and bench cells, over "
        f"{configs} configuration{'s' if configs != 1 else ''}{gap}"
    )


def exit_line(verdicts: Sequence[Verdict]) -> str:
    bad = sum(failing(v) for v in verdicts)
    if bad:
        return (
            f"exit 1: {bad} gating check{'s' if bad != 1 else ''} failed or lacked evidence "
            "(the uppercase verdicts above, each said below)"
        )
    return "exit 0: no gating check failed or lacked evidence"


def _cell(vs: Sequence[Verdict]) -> str:
    """One method's verdicts on one claim, in a word: the worst of them, gating or reported."""
    if not vs:
        return "—"
    bad = [v for v in vs if failing(v)]
    if bad:
        return f"{_MARK[bad[0].verdict].upper()} ({len(bad)}/{len(vs)})"
    if all(v.verdict == "reported" for v in vs):
        held = sum(v.observed.startswith("holds") for v in vs)
        return f"reported ({held}/{len(vs)} hold)"
    return ", ".join(dict.fromkeys(_MARK[v.verdict] for v in vs)) + f" ({len(vs)})"


def method_rows(verdicts: Sequence[Verdict]) -> tuple[list[str], list[list[Any]]]:
    """Each claim stated on PPM against its twins for the other methods (claims/subjects.py), a column per
    method, PPM first: (headers, rows); no rows when only PPM was judged."""
    by: dict[tuple[str, str, str], dict[str, list[Verdict]]] = {}
    for v in verdicts:
        head, method = split_id(v.claim)
        by.setdefault((head, v.tier, short_name(v.model)), {}).setdefault(method, []).append(v)
    methods = sorted({m for cells in by.values() for m in cells}, key=lambda m: (m != REFERENCE, m))
    if methods == [REFERENCE] or not methods:
        return [], []
    rows = [
        [f"{head} [{tier}]", model, *(_cell(cells.get(m, [])) for m in methods)]
        for (head, tier, model), cells in by.items()
        if len(cells) > 1 or REFERENCE not in cells
    ]
    return ["claim", "model", *methods], rows


def check_text(chk: Check) -> str:
    """What `widthwise check` prints, sized to a screen: the gating verdicts (the regression gate's that
    hold folded per configuration), one line per reported-only claim, one line each for planned versus
    present, the waivers, metrics at chance and the claims that did not apply, the counts and what the
    exit code means, then every failing verdict's message. The details (every width of a reported-only
    claim, the waivers' reasons, the names of what did not apply) are in report.md and `check --json`."""
    verdicts = chk.verdicts
    lines = [tabulate(gating_rows(verdicts), HEADERS, tablefmt="simple", disable_numparse=True)]
    reported_only = reported_rows(chk)
    if reported_only:
        lines += ["", tabulate(reported_only, REPORTED_HEADERS, disable_numparse=True)]
    headers, side = method_rows(verdicts)
    if side:
        lines += [
            "",
            "methods side by side (each claim stated on PPM, judged on every method the run swept):",
        ]
        lines.append(tabulate(side, headers, tablefmt="simple", disable_numparse=True))
    lines.append("")
    if chk.coverage:
        lines.append(coverage_line(chk.coverage))
    used = [f"{c} [{t}]" for c, t, w in chk.waivers if not w.startswith("reported only")]
    if used:
        lines.append(f"waived (a gap the claim accepts; reasons in report.md): {', '.join(used)}")
    low = [
        f"{d.metric} at {d.worst_at} [{d.tier}]" for d in chk.chance if d.worst is not None and d.worst <= 0
    ]
    if low:
        lines.append(f"at or below chance when pruned: {', '.join(low)}")
    if chk.not_applicable:
        n = len(chk.not_applicable)
        lines.append(
            f"{n} claim{'s' if n != 1 else ''} not applicable to these Results (no matching tier or model, "
            "or nothing planned that they select): see report.md or `widthwise check --json`"
        )
    lines += demotion_lines(chk.demotions)
    lines += [summary_line(verdicts), exit_line(verdicts)]
    lines += [v.message for v in verdicts if failing(v)]
    return "\n".join(lines)


def demotion_lines(demotions: Sequence[Demotion]) -> list[str]:
    """One line per gating claim demoted by a baseline update (gating.toml): shown on every run, since a
    demoted claim no longer turns the build red."""
    return [f"demoted gating claims: {d.line()}" for d in demotions]


def demotions_markdown(demotions: Sequence[Demotion]) -> str:
    if not demotions:
        return ""
    return "\n**Demoted gating claims** (gating.toml)\n\n" + "".join(
        f"- demoted gating claims: {_md_cell(d.line())}\n" for d in demotions
    )


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


def methods_markdown(verdicts: Sequence[Verdict]) -> str:
    headers, rows = method_rows(verdicts)
    if not rows:
        return ""
    return (
        "\n**Methods side by side**: each claim stated on PPM, judged on every method the run swept "
        "(`<claim>@<method>` in the tables above).\n\n"
        + tabulate(
            [[_md_cell(c) for c in r] for r in rows], headers, tablefmt="github", disable_numparse=True
        )
        + "\n"
    )


def check_markdown(chk: Check) -> str:
    """The step summary of a check: the table, planned versus present, waivers, what did not apply."""
    md = verdict_markdown(chk.verdicts) + methods_markdown(chk.verdicts)
    md += gaps_markdown(chk.coverage, chk.waivers, chk.chance)
    md += demotions_markdown(chk.demotions)
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
