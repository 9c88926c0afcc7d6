"""widthwise claims show|check|write [--tier TIER] [--thresholds FILE] [--baselines DIR]"""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = (
    "A measured tier's claims against its frozen gating set (baselines/measured/TIER/gating.toml): show "
    "them, check them (exit 1 naming each problem), or write the CPU tier's generated block and tables."
)
ACTIONS = {
    "show": "print the generated block and tables (a rule tier) or each claim's gating status",
    "check": "exit 1 when a frozen gating claim fails on the stored Results, thresholds.toml gates on "
    "another set than frozen - demoted, or the generated block or README is stale",
    "write": "rewrite thresholds.toml's generated block and the README tables (a rule tier), then check",
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=tuple(ACTIONS), help="; ".join(f"{k}: {v}" for k, v in ACTIONS.items()))
    p.add_argument(
        "--tier",
        help="cpu or gpu (default: every tier with a gating.toml; show and write: cpu, the one with a rule)",
    )
    p.add_argument(
        "--thresholds", type=Path, help="claims file (default: ./thresholds.toml, else the checkout's)"
    )
    p.add_argument(
        "--baselines",
        type=Path,
        metavar="DIR",
        help="the tier's folder (default: baselines/measured/TIER beside the thresholds)",
    )


def _tiers(args: argparse.Namespace) -> list[str]:
    from widthwise.claims import rules
    from widthwise.claims.verdict import MEASURED_TIERS
    from widthwise.errors import WidthwiseError

    if args.tier is not None:
        if args.tier not in MEASURED_TIERS:
            raise WidthwiseError(f"--tier {args.tier}: not a measured tier ({', '.join(MEASURED_TIERS)})")
        return [args.tier]
    if args.baselines is not None:
        raise WidthwiseError("--baselines names one tier's folder: give --tier too")
    if args.action != "check":
        return ["cpu"]
    return [t for t in MEASURED_TIERS if rules.layout(t, args.thresholds).gating.is_file()]


def run(args: argparse.Namespace) -> int:
    from widthwise.claims import gating, rules
    from widthwise.errors import WidthwiseError

    code = 0
    for tier in _tiers(args):
        lay = rules.layout(tier, args.thresholds, args.baselines)
        if args.action in ("show", "write") and not lay.generated:
            if args.action == "write":
                raise WidthwiseError(f"tier {tier} has no rule ({lay.rule}): its claims are written by hand")
            g = gating.read(lay.gating, tier)
            for c in g.frozen:
                d = g.demotion(c)
                print(f"{c}: " + (f"demoted {d.date}: {d.reason}" if d else "gating"))
            continue
        if args.action == "show":
            g = gating.read(lay.gating, tier)
            results = rules.stored(lay)
            applied = rules.apply(lay.rule, results, g)
            from widthwise.claims import rule_tables as t

            print("\n\n".join((rules.toml_block(applied), t.readme_table(applied))))
            print("\n\n".join((t.headline_tables(results), t.mde_table(results))))
            continue
        if args.action == "write":
            g = gating.read(lay.gating, tier)
            applied, texts = rules.render(lay, rules.stored(lay), g)
            written = rules.write_texts(texts)
            n = sum(a.gating for a in applied)
            print(
                f"{tier}: {n} gating and {len(applied) - n} reported-only claims; "
                + (f"wrote {', '.join(p.name for p in written)}" if written else "nothing changed")
            )
        bad = rules.problems(lay)
        for line in bad:
            print(f"{tier}: {line}")
        if bad:
            code = 1
        else:
            g = gating.read(lay.gating, tier)
            judged = "hold on the stored Results" if rules.stored(lay) else "(no stored Results yet)"
            print(
                f"{tier}: {len(g.gating)} gating claims (frozen {len(g.frozen)}, demoted {len(g.demoted)}) "
                f"{judged} and are what thresholds.toml gates on"
            )
    return code
