"""Evaluate the default model pruned by PPM with one of the regression gate's mutants applied
(tests/mutants.py), on a few families of a suite, and write the Result: compare it with
tools/regression_spread.py against the stored baseline, or against a run with `--mutant none` on the
same machine, to see how far the mutant moves each log-likelihood next to the kernel-level spread.

    python tools/regression_mutants.py --mutant down-scale --tasks winogrande,lambada_openai --out m.json
    python tools/regression_spread.py m.json none.json
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))


def main(argv: list[str] | None = None) -> int:
    from mutants import MUTANTS

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mutant", choices=sorted(MUTANTS), required=True)
    p.add_argument("--suite", default="cpu")
    p.add_argument("--tasks", required=True, help="comma-separated task families")
    p.add_argument("--pct", type=float, default=20.0)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)

    from widthwise.evaluation import evaluate, set_threads
    from widthwise.models import DEFAULT_MODEL, load_model
    from widthwise.prune import PruneSpec, prune_model
    from widthwise.results import write_result

    set_threads(1)
    with MUTANTS[args.mutant](), tempfile.TemporaryDirectory() as tmp:
        loaded = load_model(DEFAULT_MODEL)
        report = prune_model(loaded.model, PruneSpec(method="ppm", pct=args.pct))
        outcome = evaluate(
            loaded, report, args.suite, tasks=args.tasks.split(","), use_cache=False, checkpoints=Path(tmp)
        )
    write_result(outcome.result, args.out)
    print(f"{args.mutant}: {args.out} ({outcome.seconds:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
