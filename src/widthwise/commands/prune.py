"""widthwise prune MODEL (--pct P | --ratio R | --intermediate-size K) --out DIR"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

HELP = "Prune the GLU MLPs of MODEL to a narrower width and save an ordinary Hugging Face folder."


def add_arguments(p: argparse.ArgumentParser) -> None:
    from widthwise.models import DEFAULT_MODEL

    p.add_argument(
        "model", metavar="MODEL", help=f"{DEFAULT_MODEL!r}, a .gguf file, a model folder or a hub id"
    )
    how = p.add_mutually_exclusive_group(required=True)
    how.add_argument("--pct", type=float, help="percentage of intermediate neurons to remove, in [0, 100)")
    how.add_argument("--ratio", type=str, help="target expansion ratio intermediate/hidden; k = ceil(R*H)")
    how.add_argument("--intermediate-size", type=int, help="target intermediate size k")
    p.add_argument(
        "--method",
        default="ppm",
        help="neuron importance: ppm (alias maw), vow, pon, l2, random, ppm-reverse",
    )
    p.add_argument("--align", type=int, help="round k down to a multiple of N (never up, never below N)")
    p.add_argument("--seed", type=int, default=0, help="seed for --method random")
    p.add_argument("--out", type=Path, required=True, help="output folder (must be empty unless --force)")
    p.add_argument("--force", action="store_true", help="replace a non-empty --out")
    p.add_argument(
        "--trust-remote-code", action="store_true", help="allow custom model code (off by default)"
    )


def run(args: argparse.Namespace) -> int:
    from widthwise import provenance
    from widthwise.models import check_output_dir, load_model, save_model
    from widthwise.prune import PruneSpec, prune_model

    ratio = None
    if args.ratio is not None:
        try:
            ratio = float(args.ratio)
        except ValueError:
            from widthwise.errors import WidthwiseError

            raise WidthwiseError(f"--ratio must be a number, got {args.ratio!r}") from None
    # Validate everything that needs no model before loading one, and the output before any work.
    spec = PruneSpec(
        method=args.method,
        pct=args.pct,
        ratio=ratio,
        intermediate_size=args.intermediate_size,
        align=args.align,
        seed=args.seed,
    )
    check_output_dir(args.out, args.force)

    t0 = time.perf_counter()
    loaded = load_model(args.model, trust_remote_code=args.trust_remote_code)
    report = prune_model(loaded.model, spec)
    manifest = {
        **report.as_dict(),
        "source": args.model,
        "source_path": loaded.path,
        "source_weights_sha256": loaded.weights_sha256,
        "dtype": str(next(loaded.model.parameters()).dtype).removeprefix("torch."),
        "versions": provenance.versions(),
    }
    out = save_model(loaded.model, loaded.tokenizer, args.out, manifest, force=args.force)
    print(
        f"{args.model}: {report.method} "
        f"{report.intermediate_size_before} -> {report.intermediate_size} neurons/layer, "
        f"expansion {report.expansion_ratio_before:.3g} -> {report.expansion_ratio:.3g}, "
        f"params {report.params_before:,} -> {report.params_after:,}; saved {out} "
        f"in {time.perf_counter() - t0:.1f}s"
    )
    return 0
