"""widthwise report RESULTS... [--out DIR] [--baselines DIR] [--thresholds FILE] [--no-claims]"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = "Write markdown tables and PNG plots (each metric against expansion ratio, paper beside measured)."


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("results", nargs="+", type=Path, metavar="RESULTS", help="Result JSON files or folders")
    p.add_argument("--out", type=Path, default=Path("report"), help="output folder (default: ./report)")
    p.add_argument(
        "--baselines",
        type=Path,
        help="the paper's Results to draw beside measured ones (default: baselines/paper when it exists "
        "and RESULTS hold none of the paper's)",
    )
    p.add_argument("--thresholds", type=Path, help="claims file whose verdicts head the report")
    p.add_argument("--no-claims", action="store_true", help="leave the verdict table out")
    p.add_argument(
        "--pass-rates",
        action="store_true",
        help="add each claim's expected pass rate for a faithful rerun (redraws of the paper's Results)",
    )


def run(args: argparse.Namespace) -> int:
    from widthwise import claims, report
    from widthwise.plan import read_plans
    from widthwise.results import collect_results

    claim_list = None
    if not args.no_claims:
        claim_list = claims.load_thresholds(args.thresholds or claims.default_thresholds())
    rep = report.report(
        collect_results(args.results),
        args.out,
        claim_list,
        paper=args.baselines,
        plans=read_plans(args.results),
        pass_rates=args.pass_rates and claim_list is not None,
    )
    if rep.claims_error:
        # The report still shows the tables and plots; `widthwise check` is the gate that refuses.
        print(f"widthwise report: claims not evaluated: {rep.claims_error}", file=sys.stderr)
    print(f"wrote {rep.paths[0]} and {len(rep.paths) - 1} plots under {args.out / 'plots'}")
    if rep.verdicts:
        report.append_step_summary(report.claims_section(rep.paths[0]))
    return 0
