"""widthwise check RESULTS... [--thresholds FILE] [--baselines DIR] [--regression DIR] [--json]"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

HELP = "Check the paper's claims (thresholds.toml) against Result files; exit 1 when one fails."

EXIT_CODES = (
    "exit codes: 0 when every applicable claim holds, or, on the paper tier, is not measurable or skipped "
    "for want of per-sample records, or, on a measured tier (cpu, gpu), has a gap its claim waives with a "
    "reason (each listed); 1 when any claim fails, a value it needs is missing, a measured-tier claim is "
    "not measurable or skipped without a waiver, or a planned or required configuration, task or bench "
    "has no Result; 2 for bad input (one line on stderr), including no claim applying to RESULTS."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.epilog = EXIT_CODES
    p.add_argument("results", nargs="+", type=Path, metavar="RESULTS", help="Result JSON files or folders")
    p.add_argument(
        "--thresholds", type=Path, help="claims file (default: ./thresholds.toml, else the checkout's)"
    )
    p.add_argument(
        "--baselines",
        type=Path,
        action="append",
        default=[],
        metavar="DIR",
        help="also load these Results and check them with RESULTS (a stored base-model measurement that "
        "pruned shards compare with, or baselines/paper to list the paper tier beside); repeatable",
    )
    p.add_argument(
        "--regression",
        type=Path,
        metavar="DIR",
        help="also compare every eval Result in RESULTS per document with its stored baseline in DIR "
        "(same model, configuration, suite and settings)",
    )
    p.add_argument(
        "--regression-planned",
        action="store_true",
        help="regression: compare only the stored baselines of configurations the Results' plans name (a "
        "subset run such as the pull-request path); every planned one must still be present",
    )
    p.add_argument(
        "--max-changed",
        type=int,
        default=0,
        help="regression: documents per task allowed to change outcome (default 0: CPU runs reproduce)",
    )
    p.add_argument(
        "--pass-rates",
        action="store_true",
        help="also simulate the GPU gate (baselines/measured/gpu/rule.toml) from the paper-tier Results "
        "among RESULTS and --baselines (else baselines/paper): each candidate claim's and the whole "
        "gate's pass rate on faithful reruns, drawn per document at the paper's n (about a minute)",
    )
    p.add_argument(
        "--power",
        action="store_true",
        help="also print the probability that each named break of the rule file turns the GPU gate red, "
        "beside the pass rates (implies --pass-rates)",
    )
    p.add_argument("--json", action="store_true", help="print the verdicts as JSON instead of a table")


def run(args: argparse.Namespace) -> int:
    from widthwise import claims, report
    from widthwise.errors import WidthwiseError
    from widthwise.plan import read_plans
    from widthwise.results import collect_results

    thresholds = args.thresholds or claims.default_thresholds()
    results = collect_results(args.results)
    beside = collect_results(args.baselines) if args.baselines else []
    claim_list = claims.load_thresholds(thresholds)
    plans = read_plans(args.results)
    stored = collect_results([args.regression]) if args.regression is not None else None
    if args.regression_planned:
        from widthwise.claims.regression import planned_baselines

        if stored is None:
            raise WidthwiseError("--regression-planned needs --regression DIR")
        everything = len(stored)
        stored = planned_baselines(stored, plans)
        print(
            f"regression: {len(stored)} of {everything} stored baselines are planned by this run",
            file=sys.stderr if args.json else sys.stdout,
        )
    chk = claims.check(
        results,
        claim_list,
        beside=beside,
        stored=stored,
        plans=plans,
        max_changed=args.max_changed,
        where=str(thresholds),
    )
    if args.json:
        out = {
            "exit_code": chk.exit_code,
            "verdicts": [v.as_dict() for v in chk.verdicts],
            "not_applicable": chk.not_applicable,
            "coverage": [dataclasses.asdict(r) for r in chk.coverage],
            "waivers": [{"claim": c, "tier": t, "why": w} for c, t, w in chk.waivers],
            "chance": [dataclasses.asdict(d) for d in chk.chance],
            "demotions": [dataclasses.asdict(d) for d in chk.demotions],
        }
        print(json.dumps(out, indent=1))
    else:
        print(report.check_text(chk))
    if args.pass_rates or args.power:
        text = report.pass_rates_section(claim_list, results + beside, power=args.power)
        if text is None and report.paper_baselines() is not None:
            paper = collect_results([report.paper_baselines()])
            text = report.pass_rates_section(claim_list, paper, power=args.power)
        if text is None:
            raise WidthwiseError("--pass-rates needs the paper's Results (baselines/paper)")
        print(text, file=sys.stderr if args.json else sys.stdout)
        report.append_step_summary(f"```\n{text}\n```")
    report.append_step_summary(report.check_markdown(chk))
    return chk.exit_code
