"""widthwise eval MODEL --suite NAME [--tasks a,b] [--pct P | --ratio R | --intermediate-size K] [--out F]"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

HELP = "Evaluate MODEL (pruned in memory first with --pct) on a suite through lm-eval and write a Result."


def add_arguments(p: argparse.ArgumentParser) -> None:
    from widthwise import prune
    from widthwise.evaluation import backends
    from widthwise.models import DEFAULT_MODEL

    p.add_argument(
        "model", metavar="MODEL", help=f"{DEFAULT_MODEL!r}, a .gguf file, a model folder or a hub id"
    )
    p.add_argument(
        "--suite",
        required=True,
        help="suite name from widthwise/evaluation/suites.toml: paper, paper-instruct, cpu, smoke",
    )
    p.add_argument("--tasks", help="comma-separated subset of the suite's tasks")
    p.add_argument(
        "--limit",
        type=int,
        help="at most N documents per task family (recorded in settings; never the paper's numbers)",
    )
    prune.add_arguments(p, required=False, what="prune in memory first")
    p.add_argument("--out", type=Path, help="write the Result JSON here (it is also kept in the cache)")
    p.add_argument("--force", action="store_true", help="overwrite an existing --out file")
    p.add_argument("--refresh", action="store_true", help="re-evaluate even when a cached Result exists")
    p.add_argument("--no-cache", action="store_true", help="neither read nor write the result cache")
    p.add_argument(
        "--allow-hub",
        action="store_true",
        help="use lm-eval's built-in hub tasks where no offline data exists (also WIDTHWISE_ALLOW_HUB=1)",
    )
    p.add_argument(
        "--trust-remote-code", action="store_true", help="allow custom model code (off by default)"
    )
    backends.add_arguments(p, devices_default="1")
    p.add_argument(
        "--dtype",
        default="auto",
        choices=["auto", "float32", "bfloat16", "float16"],
        help="model dtype (default auto: the checkpoint's own, float32 for the default model)",
    )
    p.add_argument("--threads", type=int, help="torch CPU threads (default 1, or WIDTHWISE_THREADS)")
    p.add_argument(
        "--profile",
        action="store_true",
        help="print where the time went: per task requests, tokens, seconds and tokens/s beside the "
        "machine's attainable fp32 GEMM rate",
    )
    p.add_argument("--verbose", action="store_true", help="show lm-eval's own logging")


def _fmt(entry: dict) -> str:
    v, se = entry.get("value"), entry.get("stderr")
    if v is None:
        return "n/a"
    text = f"{v:.4g}"
    if se is not None and math.isfinite(se):
        text += f" ± {se:.2g}"
    return text + f"  (n={entry.get('n')})"


def run(args: argparse.Namespace) -> int:
    from widthwise.device import resolve as resolve_device
    from widthwise.errors import WidthwiseError
    from widthwise.evaluation import check_inputs, evaluate, set_threads
    from widthwise.models import load_model
    from widthwise.names import config_label
    from widthwise.prune import prune_model, spec_from_args
    from widthwise.results import write_result

    device = resolve_device(args.device)
    if args.out is not None and args.out.exists() and not args.force:
        raise WidthwiseError(f"--out {args.out} exists; pass --force to overwrite it")
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()] if args.tasks else None
    spec = spec_from_args(args)
    inputs = check_inputs(
        args.suite,
        tasks=tasks,
        allow_hub=args.allow_hub,
        device=device,
        backend=args.backend,
        devices=args.devices,
        scoring=args.scoring,
        limit=args.limit,
    )
    set_threads(args.threads)
    loaded = load_model(args.model, dtype=args.dtype, trust_remote_code=args.trust_remote_code, device=device)
    report = prune_model(loaded.model, spec, loaded.tokenizer) if spec is not None else None
    outcome = evaluate(
        loaded,
        report,
        inputs,
        refresh=args.refresh,
        use_cache=not args.no_cache,
        verbose=args.verbose,
        log=lambda m: print(m, file=sys.stderr, flush=True),
    )
    result = outcome.result
    if args.out is not None:
        write_result(result, args.out, overwrite=args.force)
    how = f"cache hit {outcome.cache_file}" if outcome.cached else f"evaluated in {outcome.seconds:.0f}s"
    label = config_label(result["pruning"], result["expansion_ratio"])
    print(f"{args.model} ({label}) on suite {result['suite']}: {how}")
    for key in result["headline"].values():
        print(f"  {key:45s} {_fmt(result['metrics'][key])}")
    if "ifeval/degenerate_share" in result["metrics"]:
        for key in ("ifeval/prompt_level_strict_acc_nondegenerate", "ifeval/degenerate_share"):
            print(f"  {key:45s} {_fmt(result['metrics'][key])}")
    if args.profile:
        from widthwise.evaluation.profile import table

        print(table(result))
    if args.out is not None:
        print(f"wrote {args.out}")
    elif not outcome.cached and outcome.cache_file.exists():
        print(f"Result kept at {outcome.cache_file}")
    return 0
