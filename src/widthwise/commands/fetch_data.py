"""widthwise fetch-data [--dest DIR]"""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "Fetch and verify IFEval, TruthfulQA and punkt_tab (once; default into $WIDTHWISE_CACHE/data)."


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--dest",
        type=Path,
        help="the data folder to fill (default: the one in use, else $WIDTHWISE_CACHE/data)",
    )


def run(args: argparse.Namespace) -> int:
    from widthwise import data, fetch

    if args.dest is not None:
        where = data.fetch_or_explain(args.dest)
    else:
        where = data.require_data_dir()
        if fetch.missing(where):
            where = data.fetch_or_explain(where)
    print(f"data folder: {where} (every file of data.sha256 present and verified)")
    return 0
