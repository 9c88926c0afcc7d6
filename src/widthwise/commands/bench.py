"""widthwise bench MODEL [--pct P --method M] [--batch-sizes 1,8] [--new-tokens N] [--repeats R] [--out FILE]

With a pruning option, the base model and its pruned copy are benched in one run, alternating window by
window, and two Results are written: FILE for the pruned model and FILE with ".base" before ".json" for the
base (same settings and the same bench.run_id, so `widthwise check` can pair them). Without one, only the
base Result (FILE). Tables of medians with [p10, p90], and of pruned/base ratios with achieved/ideal, are
printed; what each figure means is in widthwise/bench/timing.py.

MODEL `random:llama-3.2-1b-shape[:LAYERS]` is Llama-3.2-1B's layer shapes (hidden 2048, intermediate 8192,
32/8 heads, vocabulary 128256, tied embeddings) with random weights (seed 0), LAYERS decoder layers (2 by
default), built locally with no hub; it borrows the default model's tokenizer.

On a CPU shared with other work, `--threads 1` gives steadier timings: with every core requested, torch's
threads wait on each other at each barrier whenever another process holds a core.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = "Time generation (TTFT, TPOT, latency, throughput) and energy per token at a fixed output length."


def add_arguments(p: argparse.ArgumentParser) -> None:
    from widthwise import bench, prune
    from widthwise.models import DEFAULT_MODEL

    p.add_argument(
        "model",
        metavar="MODEL",
        help=f"{DEFAULT_MODEL!r}, a .gguf file, a model folder, a hub id, or "
        "random:llama-3.2-1b-shape[:LAYERS] "
        "(random weights with Llama-3.2-1B's layer shapes, 2 layers by default)",
    )
    prune.add_arguments(p, required=False, what="also bench a copy pruned")
    bench.add_arguments(p)
    p.add_argument("--device", help="cpu or cuda[:N] (default: cuda when available)")
    p.add_argument("--dtype", help="float32, bfloat16 or float16 (default: float32 on CPU, bfloat16 on GPU)")
    p.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's choice)")
    p.add_argument("--out", type=Path, help="Result file (default runs/bench-<model>-<pruning>.json)")
    p.add_argument("--force", action="store_true", help="overwrite existing Result files")


def run(args: argparse.Namespace) -> int:
    import torch

    from widthwise import bench
    from widthwise.bench.models import load_bench_model
    from widthwise.device import resolve as resolve_device
    from widthwise.errors import WidthwiseError
    from widthwise.names import slug
    from widthwise.prune import pruned_copy, spec_from_args
    from widthwise.results import write_result

    # Everything that needs no model is checked first, so bad input costs nothing.
    config = bench.config_from_args(args)
    spec = spec_from_args(args)
    workloads = config.load_workloads()
    dev = resolve_device(args.device or "auto")  # refuses a device that is not there, naming the fix
    dtype = args.dtype or dev.dtype_name
    out = args.out or Path("runs") / f"bench-{slug(args.model)}-{spec.label() if spec else 'base'}.json"
    targets = {"base": bench.base_result_path(out) if spec else out, "pruned": out}
    for role in ("base", "pruned") if spec else ("base",):
        if targets[role].exists() and not args.force:
            raise WidthwiseError(f"{targets[role]} exists; pass --force to overwrite it")
    if args.threads is not None:
        if args.threads < 1:
            raise WidthwiseError("--threads must be positive")
        torch.set_num_threads(args.threads)

    loaded = load_bench_model(args.model, dtype=dtype, device=dev)
    pruned = pruned_copy(loaded.model, spec, loaded.tokenizer) if spec is not None else None
    outcome = bench.bench(
        loaded,
        pruned,
        config,
        device=dev,
        workloads=workloads,
        log=lambda m: print(m, file=sys.stderr, flush=True),
    )
    print(outcome.tables(args.model, spec.label() if spec else None))
    for role, r in outcome.results.items():
        write_result(r, targets[role], overwrite=args.force)
        print(f"wrote {targets[role]}")
    return 0
