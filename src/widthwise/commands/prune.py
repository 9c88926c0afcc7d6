"""widthwise prune MODEL (--pct P | --ratio R | --intermediate-size K) --out DIR"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

HELP = "Prune the GLU MLPs of MODEL to a narrower width and save an ordinary Hugging Face folder."


def add_arguments(p: argparse.ArgumentParser) -> None:
    from widthwise import prune
    from widthwise.models import DEFAULT_MODEL

    p.add_argument(
        "model", metavar="MODEL", help=f"{DEFAULT_MODEL!r}, a .gguf file, a model folder or a hub id"
    )
    prune.add_arguments(p, required=True)
    p.add_argument("--out", type=Path, required=True, help="output folder (must be empty unless --force)")
    p.add_argument("--force", action="store_true", help="replace a non-empty --out")
    p.add_argument(
        "--trust-remote-code", action="store_true", help="allow custom model code (off by default)"
    )


def run(args: argparse.Namespace) -> int:
    from widthwise import provenance
    from widthwise.models import check_output_dir, load_model, save_model
    from widthwise.prune import prune_model, spec_from_args

    # Validate everything that needs no model before loading one, and the output before any work.
    spec = spec_from_args(args)
    assert spec is not None  # the width is a required argument
    check_output_dir(args.out, args.force)

    t0 = time.perf_counter()
    loaded = load_model(args.model, trust_remote_code=args.trust_remote_code)
    report = prune_model(loaded.model, spec, loaded.tokenizer)
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
