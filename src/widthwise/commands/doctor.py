"""widthwise doctor [--device D] [--backend B] [--suite S] [--model M]... [--allow-shared] [--json]"""

from __future__ import annotations

import argparse
import json
import sys

HELP = (
    "Check this machine before a GPU sweep: torch and its CUDA build, the driver, the device, free memory, "
    "other processes, vLLM, the data, a token for gated models and NVML's energy counter."
)

EXIT_CODES = (
    "Prints the facts, then 'doctor: ready' (exit 0) or one 'doctor: refused:' line per problem, each "
    "naming its fix (exit 2, like any bad input)."
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    from widthwise.doctor.diagnose import BACKENDS
    from widthwise.doctor.facts import COUNTER_SECONDS, VLLM_TIMEOUT_S

    p.epilog = EXIT_CODES
    p.add_argument(
        "--device",
        default="auto",
        help="the run's device: auto (the GPU when there is one), cpu, cuda or cuda:N",
    )
    p.add_argument(
        "--backend",
        default="auto",
        choices=BACKENDS,
        help="the run's evaluation backend: auto (vLLM on CUDA), hf or vllm; vLLM must import unless hf",
    )
    p.add_argument(
        "--suite", default="paper", help="the suite whose tasks must have their data (default paper)"
    )
    p.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="MODEL",
        help="a model the run uses (repeatable): sizes the memory check; a gated hub id needs a token",
    )
    p.add_argument(
        "--allow-shared",
        action="store_true",
        help="accept other processes on the GPU (they share its time and energy counter); recorded",
    )
    p.add_argument(
        "--allow-hub",
        action="store_true",
        help="the run may read the dataset hub (WikiText, MuSR have no offline copy); also "
        "WIDTHWISE_ALLOW_HUB=1",
    )
    p.add_argument(
        "--counter-seconds",
        type=float,
        default=COUNTER_SECONDS,
        help=f"how long to sample NVML's energy counter (default {COUNTER_SECONDS:g})",
    )
    p.add_argument(
        "--vllm-timeout",
        type=float,
        default=VLLM_TIMEOUT_S,
        help=f"seconds the child process importing vLLM may take (default {VLLM_TIMEOUT_S:g})",
    )
    p.add_argument("--json", action="store_true", help="print facts, needs and problems as JSON")


def run(args: argparse.Namespace) -> int:
    from widthwise import data
    from widthwise.doctor.diagnose import Needs, diagnose
    from widthwise.doctor.facts import as_json, gather, model_need, table
    from widthwise.errors import WidthwiseError
    from widthwise.evaluation.suites import get_suite

    get_suite(args.suite)  # an unknown suite is bad input: one line before anything is probed
    if args.counter_seconds <= 0 or args.vllm_timeout <= 0:
        raise WidthwiseError("--counter-seconds and --vllm-timeout must be positive")
    needs = Needs(
        device=args.device,
        backend=args.backend,
        suite=args.suite,
        models=tuple(model_need(m) for m in args.model),
        allow_shared=args.allow_shared,
        allow_hub=args.allow_hub or data.hub_allowed(),
    )
    facts = gather(needs, counter_seconds=args.counter_seconds, vllm_timeout_s=args.vllm_timeout)
    problems = diagnose(facts, needs)
    if args.json:
        print(json.dumps(as_json(facts, needs, problems), indent=2))
    else:
        print(table(facts, needs))
        if not problems:
            print("doctor: ready")
        for p in problems:
            print(f"doctor: refused: {p.line()}", file=sys.stderr)
    return 2 if problems else 0
