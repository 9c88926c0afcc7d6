"""widthwise report RESULTS... [--out DIR] [--baselines DIR] [--thresholds FILE]"""

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


def run(args: argparse.Namespace) -> int:
    from widthwise import claims, report
    from widthwise.errors import WidthwiseError
    from widthwise.results import collect_results

    results = collect_results(args.results)
    paper_dir = args.baselines
    if paper_dir is None and not any(claims.tier_of(r) == "paper" for r in results):
        default = claims.default_thresholds().parent / "baselines" / "paper"
        paper_dir = default if default.is_dir() else None
    if paper_dir is not None:
        results += collect_results([paper_dir])
    verdicts = None
    if not args.no_claims:
        claim_list = claims.load_thresholds(args.thresholds or claims.default_thresholds())
        try:
            verdicts = claims.evaluate(claim_list, results)
        except WidthwiseError as e:
            # The report still shows the tables and plots; `widthwise check` is the gate that refuses.
            print(f"widthwise report: claims not evaluated: {e}", file=sys.stderr)
    paths = report.write_report(results, args.out, verdicts)
    print(f"wrote {paths[0]} and {len(paths) - 1} plots under {args.out / 'plots'}")
    if verdicts:
        md = paths[0].read_text(encoding="utf-8")
        report.append_step_summary(md.split("## Results", 1)[0].removeprefix("# widthwise report\n"))
    return 0
