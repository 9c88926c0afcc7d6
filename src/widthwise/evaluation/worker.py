"""One rank of a data-parallel evaluation, run as `torchrun --nproc_per_node N -m <this module> FOLDER ...`.

Started by widthwise.evaluation.backends.run_data_parallel, never by hand. Every rank loads the same saved
(pruned) folder into lm-eval's HFLM, which hands each rank its share of the documents through accelerate;
rank 0 gets everything back from lm-eval and writes the metrics, headline and per-sample records as JSON.
The parent process owns settings, provenance and the Result, so a Result looks the same however it was run.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="widthwise.evaluation.dataparallel")
    p.add_argument("folder", type=Path)
    p.add_argument("--suite", required=True)
    p.add_argument("--tasks")
    p.add_argument("--dtype", required=True)
    p.add_argument("--scoring", default="prefix")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--allow-hub", action="store_true")
    args = p.parse_args(argv)

    import torch

    from widthwise.evaluation.run import check_inputs, set_threads

    set_threads()
    tasks = [t for t in args.tasks.split(",") if t] if args.tasks else None
    inputs = check_inputs(args.suite, tasks=tasks, allow_hub=args.allow_hub)
    suite = inputs.suite

    from transformers import AutoTokenizer

    from widthwise.evaluation.hflm import WidthwiseHFLM
    from widthwise.evaluation.loading import load_tasks
    from widthwise.evaluation.runner import quiet, run_lm_eval
    from widthwise.evaluation.scoring import to_result_parts
    from widthwise.results import atomic_write_text

    with quiet(False):
        task_items, tm = load_tasks(suite, inputs.sources)
        tokenizer = AutoTokenizer.from_pretrained(args.folder)
        lm = WidthwiseHFLM(
            pretrained=str(args.folder),
            tokenizer=tokenizer,
            batch_size=suite.batch_size,
            dtype=args.dtype,
            device="cuda" if torch.cuda.is_available() else "cpu",
            scoring=args.scoring,
            generate_batch_size=suite.generate_batch_size,
        )
        lm_out = run_lm_eval(lm, suite, task_items, tm, tokenizer)
    # lm-eval returns results on its rank 0 only. On CPU it does not shard (it counts GPUs), so every
    # process computes everything: the global rank keeps the write to one of them.
    if lm_out is None or int(os.environ.get("RANK", "0")) != 0:
        return 0
    metrics, headline, samples = to_result_parts(task_items, lm_out)
    atomic_write_text(args.out, json.dumps({"metrics": metrics, "headline": headline, "samples": samples}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
