"""widthwise methods [--json]"""

from __future__ import annotations

import argparse

HELP = (
    "List every pruning method: built-ins and installed plug-ins, with package, version and what each reads."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="one JSON object per method, one per line")
    p.add_argument("--reverses", action="store_true", help="also list each method's reverse control")


def rows(reverses: bool = False) -> list[dict]:
    from widthwise import pruners

    out = []
    for m in pruners.registry().values():
        if m.reverse_of is not None and not reverses:
            continue
        out.append(
            {
                "name": m.name,
                "package": m.package,
                "version": m.version,
                "entry_point": m.entry_point or "built-in",
                "keep": m.keep,
                "calibration": ",".join(m.calibration) or "-",
                "reverse": m.reverse or "-",
                "doc": (m.doc.splitlines() or [""])[0],
                "source_sha256": m.source_sha256,
            }
        )
    return sorted(out, key=lambda r: (r["package"] != "widthwise", r["package"], r["name"]))


def run(args: argparse.Namespace) -> int:
    import json
    import os

    from tabulate import tabulate

    from widthwise import pruners

    found = rows(args.reverses)
    if args.json:
        for r in found:
            print(json.dumps(r, sort_keys=True))
        return 0
    cols = ("name", "package", "version", "entry_point", "keep", "calibration", "reverse", "doc")
    print(tabulate([[r[c] for c in cols] for r in found], headers=cols, tablefmt="simple"))
    allowed = pruners.allowed_plugins()
    if allowed is not None:
        print(f"\nplug-ins restricted by {pruners.PLUGINS_ENV}={os.environ[pruners.PLUGINS_ENV]!r}")
    return 0
