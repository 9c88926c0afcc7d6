"""The report stage: report.md (the run's own claims and tables, then the paper's) and PNG plots.

tables   verdict tables, the step summary, metric tables
plots    each metric against expansion ratio, and the dichotomy plot per model
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from widthwise.claims.chance import Distance
from widthwise.claims.coverage import Row
from widthwise.claims.engine import assess, unchecked, waivers_used
from widthwise.claims.spec import Claim
from widthwise.claims.verdict import Verdict
from widthwise.errors import WidthwiseError
from widthwise.names import short_name, slug
from widthwise.plan import Plan
from widthwise.points import group_results
from widthwise.report.plots import plot_dichotomy, plot_metric, plot_name, plotted_metrics
from widthwise.report.tables import (
    append_step_summary,
    check_markdown,
    check_text,
    demotions_markdown,
    departures,
    design_text,
    gaps_markdown,
    methods_markdown,
    metric_table,
    power_text,
    summary_line,
    tier_rate_text,
    verdict_markdown,
    verdict_table,
)
from widthwise.results import collect_results

__all__ = [
    "Report",
    "append_step_summary",
    "check_markdown",
    "check_text",
    "claims_section",
    "metric_table",
    "own_tiers",
    "paper_baselines",
    "design_text",
    "power_text",
    "pass_rates_section",
    "report",
    "summary_line",
    "verdict_markdown",
    "verdict_table",
    "write_report",
]


PAPER_TIER = "paper"


def own_tiers(results: Iterable[Mapping[str, Any]]) -> set[str]:
    """The run's own tiers: every tier of `results` but the paper's (its tables are the reference drawn
    beside a run), or the paper's when that is all there is (a report of baselines/paper itself)."""
    tiers = {r["tier"] for r in results}
    return (tiers - {PAPER_TIER}) or tiers


def _claims_md(
    title: str,
    verdicts: Sequence[Verdict],
    coverage: Sequence[Row],
    waivers: Sequence[tuple[str, str, str]],
    chance: Sequence[Distance],
    tiers: set[str],
) -> list[str]:
    """The verdicts, planned versus present, waivers and distance above chance of `tiers` only."""
    mine = [v for v in verdicts if v.tier in tiers]
    if not mine:
        return [f"### {title}", "", "No claim applies to these Results.", ""]
    return [
        verdict_markdown(mine, title),
        methods_markdown(mine),
        gaps_markdown(
            [r for r in coverage if r.tier in tiers],
            [w for w in waivers if w[1] in tiers],
            [d for d in chance if d.tier in tiers],
        ),
    ]


def _tables_md(groups: Sequence[Any]) -> list[str]:
    md: list[str] = []
    for g in groups:
        md += [f"### {g.model} [{g.tier}]", "", metric_table(g), ""]
        away = departures(g)
        if away:
            md += ["Not as the paper ran it:", "", *away, ""]
        if g.tier == PAPER_TIER and any(k.endswith("j_per_token") for p in g.points for k in p.metrics):
            md += [
                "J/token in the paper's tables are scaled by carbon intensity (its unit bug): "
                "compare them only as ratios to the base model.",
                "",
            ]
    return md


def write_report(
    results: Iterable[Mapping[str, Any]],
    out: Path,
    verdicts: Sequence[Verdict] | None = None,
    coverage: Sequence[Row] = (),
    waivers: Sequence[tuple[str, str, str]] = (),
    chance: Sequence[Distance] = (),
    pass_rates: str | None = None,
    not_applicable: Sequence[str] = (),
    demotions: Sequence[Any] = (),
) -> list[Path]:
    """report.md, plus PNGs under plots/. It leads with the run's own tiers (own_tiers): their verdicts
    (planned versus present, waivers, chance), the claims that did not apply, and one metric table per
    (tier, model); then the plots; then the paper's tier, its verdicts and its own tables, as the
    reference the run is read against."""
    results = list(results)
    out = Path(out)
    groups = group_results(results)
    own = own_tiers(results)
    reference = [g for g in groups if g.tier not in own]
    written: list[Path] = []
    md = ["# widthwise report", ""]
    if verdicts is not None:
        title = "Claims: " + ", ".join(sorted(own)) + (" (this run)" if reference else "")
        md += _claims_md(title, verdicts, coverage, waivers, chance, own)
        if not_applicable:
            md += [
                f"Not applicable to these Results ({len(not_applicable)}: no matching tier or model, nothing "
                f"planned that they select, or, on the paper tier, no matching metric): "
                + ", ".join(not_applicable),
                "",
            ]
    if demotions:  # whatever the run's tiers: a demoted claim no longer gates anywhere it was frozen
        md += [demotions_markdown(demotions)]
    if pass_rates:
        md += ["**Expected pass rates**", "", "```", pass_rates, "```", ""]
    md += ["## Results", "", *_tables_md([g for g in groups if g.tier in own])]
    md += [
        "## Plots",
        "",
        "Paper dashed, measured solid; efficiency relative to each model's base. Bars: 95% intervals "
        "(a measured point with per-document records: the paired interval of its change from the base).",
        "",
    ]
    for g in groups:
        p = plot_dichotomy(g, out / "plots" / f"dichotomy_{g.tier}_{slug(short_name(g.model))}.png")
        if p:
            written.append(p)
            md.append(f"![{short_name(g.model)} {g.tier}](plots/{p.name})")
    for metric in plotted_metrics(groups):
        p = plot_metric(groups, metric, out / "plots" / f"{plot_name(metric)}.png")
        if p:
            written.append(p)
            md.append(f"![{metric}](plots/{p.name})")
    if reference:
        tiers = {g.tier for g in reference}
        md += [
            "",
            "## The paper's tables (reference)",
            "",
            "What the paper itself reports, checked against the same claims: the run above is read "
            "against these.",
            "",
        ]
        if verdicts is not None:
            md += _claims_md(
                "Claims: " + ", ".join(sorted(tiers)), verdicts, coverage, waivers, chance, tiers
            )
        md += _tables_md(reference)
    report = out / "report.md"
    out.mkdir(parents=True, exist_ok=True)
    report.write_text("\n".join(md) + "\n", encoding="utf-8")
    return [report, *written]


@dataclass
class Report:
    paths: list[Path]  # report.md first, then the plots
    verdicts: list[Verdict] | None
    claims_error: str | None  # why the claims could not be evaluated (the tables and plots are still there)


def paper_baselines() -> Path | None:
    """baselines/paper of the checkout this package runs from, when there is one."""
    from widthwise.claims.spec import default_thresholds

    folder = default_thresholds().parent / "baselines" / "paper"
    return folder if folder.is_dir() else None


def report(
    results: Sequence[Mapping[str, Any]],
    out: Path,
    claims: Sequence[Claim] | None = None,
    *,
    paper: Path | None = None,
    plans: Sequence[Plan] = (),
    pass_rates: bool = False,
    regression: Sequence[Verdict] = (),
) -> Report:
    """The report stage: report.md and plots for `results`, the paper's own Results drawn beside them
    (`paper`, default baselines/paper, unless the Results hold the paper's already), and the verdicts of
    `claims` on all of them. `widthwise check` is the gate; a claim that cannot be evaluated here is said
    in the report and does not stop it. `regression`: the regression gate's verdicts of the same run (the
    sweep's end-of-run check), listed with the run's claims."""
    results = list(results)
    if paper is None and not any(r["tier"] == "paper" for r in results):
        paper = paper_baselines()
    if paper is not None:
        results += collect_results([paper])
    verdicts, error, rows, near, judged = None, None, [], [], claims
    if claims is not None:
        try:
            a = assess(claims, results, plans)
            verdicts, rows, near, judged = [*a.verdicts, *regression], a.coverage, a.chance, a.claims
        except WidthwiseError as e:
            error = str(e)
    used = waivers_used(judged, verdicts) if (judged is not None and verdicts) else []
    idle = unchecked(claims, verdicts) if (claims is not None and verdicts is not None) else []
    rates = pass_rates_section(claims, results) if (pass_rates and claims is not None) else None
    demoted = list(getattr(claims, "demotions", [])) if claims is not None else []
    paths = write_report(results, out, verdicts, rows, used, near, rates, idle, demoted)
    return Report(paths, verdicts, error)


def pass_rates_section(
    claims: Sequence[Claim], results: Sequence[Mapping[str, Any]], *, power: bool = False
) -> str | None:
    """The GPU gate's design from the paper-tier Results among `results` (None when there are none): each
    candidate's pass rate on faithful reruns and the whole gate's (`check --pass-rates`, `report
    --pass-rates`), and with `power` each named break's probability of turning it red (`check --power`);
    then the CPU gate's pass rate on reruns of the stored CPU baselines, where the checkout has them."""
    from widthwise.claims import design, rerun

    paper = [r for r in results if r["tier"] == "paper"]
    if not paper:
        return None
    d = design.design(claims, paper)
    text = design_text(d) + ("\n\n" + power_text(d) if power else "")
    cpu = cpu_baselines()
    if cpu is not None:
        rate = rerun.tier_pass_rate(claims, collect_results([cpu]), "cpu")
        text += "\n\n" + tier_rate_text(rate, "baselines/measured/cpu")
    return text


def cpu_baselines() -> Path | None:
    """baselines/measured/cpu of the checkout this package runs from, when there is one."""
    paper = paper_baselines()
    folder = paper.parent / "measured" / "cpu" if paper is not None else None
    return folder if folder is not None and folder.is_dir() else None


def claims_section(report_md: Path) -> str:
    """The claims part of a written report.md, for the step summary."""
    md = Path(report_md).read_text(encoding="utf-8")
    return md.split("## Results", 1)[0].removeprefix("# widthwise report\n")
