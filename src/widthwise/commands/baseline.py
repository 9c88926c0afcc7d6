"""widthwise baseline update RESULTS... --name NAME [--allow-mismatch | --tasks T1,T2 --reason WHY]
[--demote CLAIM ... --reason WHY] [--yes] [--root DIR] [--thresholds FILE]"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # commands import their stage only when run (cli.py)
    from widthwise.claims import freeze

HELP = "Manage stored baselines: `update` shows each metric's change and writes only with --yes."


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", required=True)
    u = sub.add_parser("update", help="compare Results with baselines/NAME and (with --yes) store them")
    u.add_argument("results", nargs="+", type=Path, metavar="RESULTS", help="Result JSON files or folders")
    u.add_argument("--name", required=True, help="baseline set, e.g. measured/cpu (stored under --root)")
    u.add_argument(
        "--root", type=Path, default=Path("baselines"), help="baselines folder (default: baselines)"
    )
    u.add_argument(
        "--allow-mismatch", action="store_true", help="replace baselines made under other settings"
    )
    u.add_argument(
        "--tasks",
        help="replace only these task families (comma-separated) in the stored Results of the same "
        "configurations; every other setting, the versions and the threads must equal the stored ones",
    )
    u.add_argument(
        "--reason",
        default="",
        help="with --tasks: why, recorded per family in provenance; with --demote: why the claims stop gating"
        "",
    )
    u.add_argument(
        "--demote",
        action="append",
        default=[],
        metavar="CLAIM",
        help="a measured tier's gating claim this update makes fail: demote it (gating.toml, provenance, "
        "thresholds.toml) instead of refusing the update; repeatable, one --reason for all",
    )
    u.add_argument(
        "--thresholds", type=Path, help="claims file (default: ./thresholds.toml, else the checkout's)"
    )
    u.add_argument("--yes", action="store_true", help="write the files (without it nothing is written)")


def run(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from tabulate import tabulate

    from widthwise import baselines
    from widthwise.claims import freeze
    from widthwise.errors import WidthwiseError
    from widthwise.results import collect_results

    target = baselines.baseline_dir(args.root, args.name)
    results = collect_results(args.results)
    if args.name == "paper" and any(r["stage"] != "paper" for r in results):
        raise WidthwiseError(
            "baselines/paper holds the paper's own results; store measured ones under another name"
        )
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()] if args.tasks is not None else None
    if tasks is not None and args.allow_mismatch:
        raise WidthwiseError(
            "--tasks replaces families only where every other setting matches; it takes no --allow-mismatch"
        )
    if tasks is not None:
        today = datetime.now(UTC).strftime("%Y-%m-%d")
        plan = baselines.plan_partial(results, target, tasks, args.reason, today)
    else:
        plan = baselines.plan_update(results, target)
    for c in plan:
        print(
            f"{c.path}: {c.status}" + (f" (settings differ: {'; '.join(c.mismatch)})" if c.mismatch else "")
        )
        rows = [
            [
                r.metric,
                "" if r.stored is None else f"{r.stored:.6g}",
                "" if r.new is None else f"{r.new:.6g}",
                "" if r.delta is None else f"{r.delta:+.4g}",
                "" if r.delta_se is None else f"{r.delta_se:+.2f}",
            ]
            for r in c.rows
            if c.status != "unchanged"
        ]
        if rows:
            print(tabulate(rows, ["metric", "stored", "new", "change", "change/SE"], disable_numparse=True))
        print()
    if not args.allow_mismatch:
        baselines.refuse_mismatch(plan)
    todo = [c for c in plan if c.status != "unchanged"]
    if not todo:
        if args.demote:
            raise WidthwiseError("--demote: nothing to update, so no gating claim is made to fail")
        print(f"{target}: already up to date")
        return 0
    outcome = _guard(args, target, todo)
    if not args.yes:
        print(f"dry run: {len(todo)} file(s) would be written under {target}; pass --yes to write them")
        return 0
    if outcome is not None and outcome.demotions:
        for c in todo:
            c.result = freeze.record(c.result, outcome.demotions)
    written = baselines.apply(plan)
    print(f"wrote {len(written)} file(s) under {target}")
    if outcome is not None:
        from widthwise.claims import rules

        for p in rules.write_texts(outcome.texts):
            print(f"wrote {p}")
        for d in outcome.demotions:
            print(f"demoted {d.line()}")
            if not outcome.generated:
                print(
                    f'  give {d.claim} reported_only.{d.tier} = "why" in thresholds.toml by hand: '
                    "`widthwise claims check` fails till then"
                )
    return 0


def _guard(args: argparse.Namespace, target: Path, todo: list) -> freeze.Outcome | None:
    """A measured tier's gate: refuse when the update makes a gating claim fail and --demote does not name
    it (WidthwiseError); else what to write besides the Results."""
    from datetime import UTC, datetime

    from widthwise.claims import default_thresholds, freeze
    from widthwise.errors import WidthwiseError

    if not freeze.guarded(target):
        if args.demote:
            raise WidthwiseError(f"--demote: {target} is not a measured tier with a gating.toml")
        return None
    update = f"widthwise baseline update --name {args.name}" + (
        f" --tasks {args.tasks}" if args.tasks else ""
    )
    update += ": " + ", ".join(f"{c.path.name} {c.status}" for c in todo)
    outcome = freeze.guard_update(
        target,
        args.thresholds or default_thresholds(),
        {c.path: c.result for c in todo},
        args.demote,
        args.reason,
        datetime.now(UTC).strftime("%Y-%m-%d"),
        update,
    )
    for d in outcome.demotions:
        print(f"would demote {d.line()}" if not args.yes else f"demoting {d.claim}")
    return outcome
