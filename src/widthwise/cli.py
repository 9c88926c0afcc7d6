"""`widthwise COMMAND ...`: one module per command under widthwise/commands, imported only when run.

Every command module defines HELP, add_arguments(parser) and run(args) -> exit code.
Exit codes: 0 success, 1 a claim failed (check), 2 bad input (one line on stderr, nothing written).
"""

from __future__ import annotations

import argparse
import importlib
import sys

from widthwise.errors import WidthwiseError

# name -> module; a new command is one line here and one module.
COMMANDS: dict[str, str] = {
    "prune": "widthwise.commands.prune",
    "eval": "widthwise.commands.eval",
    "bench": "widthwise.commands.bench",
    "sweep": "widthwise.commands.sweep",
    "methods": "widthwise.commands.methods",
    "check": "widthwise.commands.check",
    "report": "widthwise.commands.report",
    "baseline": "widthwise.commands.baseline",
    "claims": "widthwise.commands.claims",
    "fetch-data": "widthwise.commands.fetch_data",
    "doctor": "widthwise.commands.doctor",
}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one clear line, exit 2 (argparse prints the whole usage)
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    from widthwise import __version__

    parser = _Parser(prog="widthwise", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"widthwise {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name, module in COMMANDS.items():
        mod = importlib.import_module(module)
        p = sub.add_parser(name, help=mod.HELP, description=mod.HELP)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def _quiet_libraries() -> None:
    """Library progress bars and advice would bury our one-line errors and our own progress lines."""
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:
        return
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _quiet_libraries()
    try:
        return int(args._run(args) or 0)
    except WidthwiseError as e:
        print(f"widthwise {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
