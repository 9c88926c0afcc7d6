"""The evaluation of some task families in a process of its own, on a saved (pruned) folder.

Started by widthwise.evaluation.backends (`run_worker`), never by hand, for the two paths that load a
folder rather than take the in-memory model:

  --backend vllm             one process: lm-eval's VLLM with data_parallel_size N. A process of its own, so
                             the GPU memory vLLM takes is given back when it ends.
  --backend hf, N ranks      `torchrun --nproc_per_node N -m <this module>`: every rank loads the folder into
                             widthwise's HFLM, accelerate hands each rank its share of the documents, and
                             lm-eval gathers the outputs on rank 0.

Each family's part is written as a checkpoint (evaluation/pertask.py) as soon as it finishes, by rank 0
only; the parent evaluation owns settings, provenance and the Result, and merges the parts, so a Result
looks the same however it was run, and a worker killed half way leaves its finished families behind.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="widthwise.evaluation.worker")
    p.add_argument("folder", type=Path)
    p.add_argument("--suite", required=True)
    p.add_argument("--tasks", required=True)
    p.add_argument("--limit", type=int)
    p.add_argument("--backend", choices=["hf", "vllm"], required=True)
    p.add_argument("--devices", type=int, default=1)
    p.add_argument("--dtype", required=True)
    p.add_argument("--scoring", default="prefix")
    p.add_argument("--checkpoints", type=Path, required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--allow-hub", action="store_true")
    args = p.parse_args(argv)

    import torch

    from widthwise.evaluation.run import check_inputs, set_threads

    set_threads()
    tasks = [t for t in args.tasks.split(",") if t]
    inputs = check_inputs(args.suite, tasks=tasks, allow_hub=args.allow_hub, limit=args.limit)
    suite = inputs.suite

    from transformers import AutoTokenizer

    from widthwise.evaluation import backends, hflm
    from widthwise.evaluation.loading import load_tasks
    from widthwise.evaluation.pertask import Checkpoints, run_tasks
    from widthwise.evaluation.runner import quiet, run_lm_eval

    # lm-eval returns results on its rank 0 only. On CPU it does not shard (it counts GPUs), so every
    # process computes everything: the global rank keeps the writes to one of them.
    rank0 = int(os.environ.get("RANK", "0")) == 0
    with quiet(False):
        items, tm = load_tasks(suite, inputs.sources)
        tokenizer = AutoTokenizer.from_pretrained(args.folder)
        if args.backend == "vllm":
            lm = backends.make_vllm(args.folder, dtype=args.dtype, devices=args.devices, seed=suite.seed)
        else:
            lm = hflm.WidthwiseHFLM(
                pretrained=str(args.folder),
                tokenizer=tokenizer,
                batch_size=suite.batch_size,
                dtype=args.dtype,
                device="cuda" if torch.cuda.is_available() else "cpu",
                scoring=args.scoring,
                generate_batch_size=suite.generate_batch_size,
            )

        def one(item):
            out = run_lm_eval(lm, suite, [item], tm, tokenizer)
            return out if rank0 else None

        run_tasks(
            items,
            one,
            Checkpoints(args.checkpoints, args.key),
            args.backend,
            profile_of=lambda: hflm.profile_of(lm),
            log=lambda m: print(m, flush=True) if rank0 else None,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
