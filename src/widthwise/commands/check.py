"""widthwise check RESULTS... [--thresholds FILE] [--baselines DIR] [--json]

Exit codes: 0 when every applicable claim holds, is explicitly not measurable (e.g. energy on CPU) or is
skipped for want of per-sample records (each listed in the table); 1 when any claim fails or a value it
needs is missing; 2 for bad input (unreadable Result or thresholds, settings that differ, no claim
applies), with one line on stderr.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

HELP = "Check the paper's claims (thresholds.toml) against Result files; exit 1 when one fails."


EXIT_CODES = (
    "exit codes: 0 when every applicable claim holds, is not measurable here (e.g. energy on CPU) or is "
    "skipped for want of per-sample records, each listed in the table; 1 when any claim fails or a value "
    "it needs is missing; 2 for bad input (one line on stderr)."
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
        "--max-changed",
        type=int,
        default=0,
        help="regression: documents per task allowed to change outcome (default 0: CPU runs reproduce)",
    )
    p.add_argument("--json", action="store_true", help="print the verdicts as JSON instead of a table")


def run(args: argparse.Namespace) -> int:
    from widthwise import claims, report
    from widthwise.errors import WidthwiseError
    from widthwise.results import collect_results

    thresholds = args.thresholds or claims.default_thresholds()
    claim_list = claims.load_thresholds(thresholds)
    fresh = collect_results(args.results)
    results = fresh + (collect_results(args.baselines) if args.baselines else [])
    verdicts = claims.evaluate(claim_list, results)
    if args.regression is not None:
        from widthwise import regression

        if args.max_changed < 0:
            raise WidthwiseError("--max-changed must be 0 or more")
        stored = collect_results([args.regression])
        verdicts += regression.check(fresh, stored, max_changed=args.max_changed)
    if not verdicts:
        groups = claims.group_results(results)
        seen = ", ".join(sorted({f"{g.model} [{g.tier}]" for g in groups}))
        raise WidthwiseError(f"no claim in {thresholds} applies to these Results ({seen})")
    code = claims.exit_code(verdicts)
    skipped = claims.unchecked(claim_list, verdicts)
    if args.json:
        out = {"exit_code": code, "verdicts": [v.as_dict() for v in verdicts], "not_applicable": skipped}
        print(json.dumps(out, indent=1))
    else:
        print(report.verdict_table(verdicts))
        print()
        print(report.summary_line(verdicts))
        if skipped:
            print(
                f"not applicable to these Results (no matching tier, model or metric): {', '.join(skipped)}"
            )
        for v in verdicts:
            if v.verdict in claims.FAILING:
                print(v.message)
    md = report.verdict_markdown(verdicts)
    if skipped:
        md += f"\nNot applicable to these Results: {', '.join(skipped)}\n"
    report.append_step_summary(md)
    return code
