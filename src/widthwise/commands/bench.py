"""widthwise bench MODEL [--pct P --method M] [--batch-sizes 1,8] [--new-tokens N] [--repeats R] [--out FILE]

With a pruning option, the base model and its pruned copy are benched in one run, alternating window by
window, and two Results are written: FILE for the pruned model and FILE with ".base" before ".json" for the
base (same settings and the same bench.run_id, so `widthwise check` can pair them). Without one, only the
base Result (FILE). Tables of medians with [p10, p90], and of pruned/base ratios with achieved/ideal, are
printed; what each figure means is in widthwise/bench.py.

MODEL `random:llama-3.2-1b-shape[:LAYERS]` is Llama-3.2-1B's layer shapes (hidden 2048, intermediate 8192,
32/8 heads, vocabulary 128256, tied embeddings) with random weights (seed 0), LAYERS decoder layers (2 by
default), built locally with no hub; it borrows the default model's tokenizer.

On a CPU shared with other work, `--threads 1` gives steadier timings: with every core requested, torch's
threads wait on each other at each barrier whenever another process holds a core.
"""

from __future__ import annotations

import argparse
import copy
import re
import sys
import time
import uuid
from pathlib import Path
from typing import Any

HELP = "Time generation (TTFT, TPOT, latency, throughput) and energy per token at a fixed output length."
MIN_REPEATS = 5  # a median and a p90 need at least this many windows to mean anything


def add_arguments(p: argparse.ArgumentParser) -> None:
    from widthwise.energy import METERS
    from widthwise.models import DEFAULT_MODEL

    p.add_argument(
        "model",
        metavar="MODEL",
        help=f"{DEFAULT_MODEL!r}, a .gguf file, a model folder, a hub id, or "
        "random:llama-3.2-1b-shape[:LAYERS] "
        "(random weights with Llama-3.2-1B's layer shapes, 2 layers by default)",
    )
    how = p.add_mutually_exclusive_group()
    how.add_argument("--pct", type=float, help="also bench a copy with this percentage of MLP neurons pruned")
    how.add_argument("--ratio", type=float, help="also bench a copy pruned to this expansion ratio")
    how.add_argument("--intermediate-size", type=int, help="also bench a copy pruned to this width")
    p.add_argument("--method", default="ppm", help="neuron importance for the pruned copy (default ppm)")
    p.add_argument("--align", type=int, help="round the pruned width down to a multiple of N")
    p.add_argument("--seed", type=int, default=0, help="seed for --method random")
    p.add_argument("--workloads", default=None, help="comma-separated (default: all in workloads.toml)")
    p.add_argument("--batch-sizes", default="1,8", help="comma-separated batch sizes (default 1,8)")
    p.add_argument(
        "--new-tokens", type=int, help="fixed output length for every workload (default: per workload)"
    )
    p.add_argument("--prompts", type=int, help="prompts per workload (default: per workload)")
    p.add_argument(
        "--repeats",
        type=int,
        default=MIN_REPEATS,
        help=f"timed windows per model and cell (>= {MIN_REPEATS})",
    )
    p.add_argument("--warmup", type=int, default=1, help="discarded windows per model and cell before timing")
    p.add_argument(
        "--meter", choices=METERS, default="auto", help="energy meter (auto: nvml on GPU, rapl on CPU)"
    )
    p.add_argument("--idle-s", type=float, default=10.0, help="idle power calibration window in seconds")
    p.add_argument(
        "--min-window-s",
        type=float,
        help="repeat a window's batches until it lasts this long (default 1 with a meter)",
    )
    p.add_argument("--device", help="cpu or cuda[:N] (default: cuda when available)")
    p.add_argument("--dtype", help="float32, bfloat16 or float16 (default: float32 on CPU, bfloat16 on GPU)")
    p.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's choice)")
    p.add_argument("--out", type=Path, help="Result file (default runs/bench-<model>-<pruning>.json)")
    p.add_argument("--force", action="store_true", help="overwrite existing Result files")


def _csv(text: str | None, what: str, cast: Any = str) -> list[Any] | None:
    from widthwise.errors import WidthwiseError

    if text is None:
        return None
    try:
        items = [cast(x.strip()) for x in text.split(",") if x.strip()]
    except ValueError:
        raise WidthwiseError(f"{what}: expected a comma-separated list, got {text!r}") from None
    if not items:
        raise WidthwiseError(f"{what} is empty")
    return items


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")


def base_path(out: Path) -> Path:
    return out.with_name(out.name.removesuffix(".json") + ".base.json")


def run(args: argparse.Namespace) -> int:
    import torch

    from widthwise import device, workloads
    from widthwise.energy import open_meter
    from widthwise.errors import WidthwiseError
    from widthwise.prune import PruneSpec, width_from_pct

    # Everything that needs no model is checked first, so bad input costs nothing.
    if args.repeats < MIN_REPEATS:
        raise WidthwiseError(f"--repeats must be at least {MIN_REPEATS}: a median and p90 need them")
    if args.warmup < 0:
        raise WidthwiseError("--warmup must be 0 or more")
    batch_sizes = _csv(args.batch_sizes, "--batch-sizes", int)
    if any(b < 1 for b in batch_sizes):
        raise WidthwiseError("--batch-sizes must be positive")
    spec = None
    if args.pct is not None or args.ratio is not None or args.intermediate_size is not None:
        spec = PruneSpec(
            method=args.method,
            pct=args.pct,
            ratio=args.ratio,
            intermediate_size=args.intermediate_size,
            align=args.align,
            seed=args.seed,
        )
        if args.pct is not None:
            width_from_pct(100, args.pct)  # the range check alone: --align applies to the real width
    elif args.align is not None:
        raise WidthwiseError("--align needs --pct, --ratio or --intermediate-size")
    wls = workloads.load(
        _csv(args.workloads, "--workloads"), prompts=args.prompts, new_tokens=args.new_tokens
    )
    for w in wls:
        if max(batch_sizes) > len(w.prompts):
            raise WidthwiseError(
                f"workload {w.name} has {len(w.prompts)} prompts; batch size {max(batch_sizes)} needs more"
            )
    dev = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if dev.startswith("cuda") and not torch.cuda.is_available():
        raise WidthwiseError(f"--device {dev}: CUDA is not available here")
    dtype = args.dtype or ("bfloat16" if dev.startswith("cuda") else "float32")
    out = args.out or Path("runs") / f"bench-{_slug(args.model)}-{spec.label() if spec else 'base'}.json"
    paths = [out, base_path(out)] if spec else [out]
    for p in paths:
        if p.exists() and not args.force:
            raise WidthwiseError(f"{p} exists; pass --force to overwrite it")
    if args.threads is not None:
        if args.threads < 1:
            raise WidthwiseError("--threads must be positive")
        torch.set_num_threads(args.threads)

    meter = open_meter(args.meter, device=dev, gpu_uuid=device.cuda_uuid(dev))
    try:
        return _bench(args, spec, wls, batch_sizes, dev, dtype, meter, paths)
    finally:
        meter.close()


def _bench(
    args: argparse.Namespace,
    spec: Any,
    wls: list[Any],
    batch_sizes: list[int],
    dev: str,
    dtype: str,
    meter: Any,
    paths: list[Path],
) -> int:
    import torch

    from widthwise import bench, benchresults, device, provenance
    from widthwise.energy import calibrate_idle
    from widthwise.models import count_parameters
    from widthwise.prune import prune_model
    from widthwise.results import new_result, write_result
    from widthwise.workloads import max_prompt_tokens

    def say(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    t_start = time.perf_counter()
    facts_start = device.device_facts(dev, meter)
    load = facts_start.get("load_average_1_5_15")
    if load and load[0] > 0.5 and not dev.startswith("cuda"):
        # Other work shares the cores: timings get noisy, and with every core asked for, OpenMP threads
        # wait on each other at every barrier (several times slower, not just noisier).
        say(
            f"warning: load average {load[0]:g} on {facts_start['usable_cores']} cores before the bench; "
            f"timings will be noisy{'' if args.threads else ' (consider --threads 1)'}"
        )
    loaded = bench.load_bench_model(args.model, dtype=dtype, device=dev)
    models: list[tuple[str, Any]] = [("base", loaded.model)]
    report = None
    if spec is not None:
        pruned = copy.deepcopy(loaded.model)
        report = prune_model(pruned, spec)
        models.append(("pruned", pruned))
    p_matmul = {label: bench.matmul_params_per_token(m) for label, m in models}
    ideal = bench.Ideal.of(loaded.model, models[1][1]) if spec else None

    energy_reason = meter.unavailable
    idle = None
    limit_w = None
    if energy_reason is None:
        say(f"calibrating idle power over {args.idle_s:g}s ...")
        idle = calibrate_idle(meter, args.idle_s)
        limit_w = meter.power_limit_w()
        say(f"idle {idle.watts:.1f} W ({idle.method}); power limit {limit_w} W")
    else:
        say(f"energy: not measurable here ({energy_reason})")
    min_window = (
        args.min_window_s if args.min_window_s is not None else (1.0 if energy_reason is None else 0.0)
    )

    cells = []
    for w in wls:
        for b in batch_sizes:
            say(
                f"{w.name} b{b}: {args.warmup} warm-up + {args.repeats} timed windows per model, "
                f"{w.new_tokens} new tokens"
            )
            cells.append(
                bench.run_cell(
                    models,
                    loaded.tokenizer,
                    w,
                    b,
                    repeats=args.repeats,
                    warmup=args.warmup,
                    device=dev,
                    max_prompt_tokens=max_prompt_tokens(),
                    meter=meter if energy_reason is None else None,
                    idle=idle,
                    power_limit_w=limit_w,
                    min_window_s=min_window,
                    progress=say,
                )
            )
    facts = {
        **facts_start,
        "load_average_end": device.load_average(),
        "bench_wall_s": time.perf_counter() - t_start,
    }

    settings = {
        "workloads": [w.name for w in wls],
        "prompts": {w.name: len(w.prompts) for w in wls},
        "prompts_sha256": {w.name: w.prompts_sha256() for w in wls},
        "new_tokens": {w.name: w.new_tokens for w in wls},
        "batch_sizes": batch_sizes,
        "max_prompt_tokens": max_prompt_tokens(),
        "repeats": args.repeats,
        "warmup": args.warmup,
        "min_window_s": min_window,
        "decoding": "greedy, min_new_tokens = max_new_tokens",
        "dtype": dtype,
        "device_kind": "cuda" if dev.startswith("cuda") else "cpu",
        "device_name": device.device_name(dev),
        "threads": torch.get_num_threads(),
        "meter": meter.name,
    }
    figs = {label: benchresults.series(cells, label) for label, _ in models}
    cfg = loaded.model.config
    shared_bench = {
        # Both Results of one run carry the same id, so a checker can pair a pruned Result with its base.
        "run_id": uuid.uuid4().hex,
        "timing": bench.__doc__,
        "device": facts,
        "energy": {
            "meter": meter.name,
            "method": idle.method if idle else None,
            "not_measurable": energy_reason,
            "idle": idle.as_dict() if idle else None,
            "power_limit_w": limit_w,
        },
        "workloads": {
            w.name: {"source": w.source, "row_ids": list(w.row_ids), "new_tokens": w.new_tokens} for w in wls
        },
        "cells": {
            c.key: {
                "batch_size": c.batch_size,
                "new_tokens": c.new_tokens,
                "batches": c.batches,
                "real_prompt_tokens": c.real_prompt_tokens,
            }
            for c in cells
        },
    }
    results = []
    for label, m in models:
        r = new_result(
            model={
                "name": args.model,
                "weights_sha256": loaded.weights_sha256,
                "hidden_size": cfg.hidden_size,
                "intermediate_size": m.config.intermediate_size,
                "num_layers": cfg.num_hidden_layers,
                "params": count_parameters(m),
            },
            pruning=None
            if label == "base"
            else {
                "method": report.method,
                "pct": report.pct,
                "ratio": report.ratio,
                "intermediate_size": report.intermediate_size,
                "align": report.align,
                "seed": report.seed,
            },
            suite="bench",
            settings=settings,
            provenance={
                **provenance.versions(),
                "source": loaded.path,
                "weights_sha256": loaded.weights_sha256 if label == "base" else bench_weights_sha(m),
                "device": facts,
            },
        )
        r["metrics"] = benchresults.metrics(figs[label], energy_reason)
        r["bench"] = {
            **shared_bench,
            "role": label,
            "matmul_params_per_token": p_matmul[label],
            "spread": benchresults.spreads(figs[label]),
        }
        if label == "pruned":
            r["bench"]["ideal_speedup"] = {"decode": ideal.decode, "prefill": ideal.prefill}
            r["bench"]["vs_base"] = benchresults.ratios(figs["base"], figs["pruned"], ideal)
            r["bench"]["prune_report"] = report.as_dict()
        results.append(r)

    for label, _ in models:
        print(f"\n{label}: {args.model}" + (f" {spec.label()}" if label == "pruned" else ""))
        print(benchresults.figures_table(figs[label], energy_reason))
    if spec is not None:
        print(
            f"\npruned/base, paired by repeat. Ideal speed-up per generated token {ideal.decode:.3f} (matmul "
            f"params {p_matmul['base']:,} / {p_matmul['pruned']:,}), per prompt token {ideal.prefill:.3f} "
            "(decoder only); latency, throughput and J/token: the base's prefill and decode times each cut "
            "by its ideal"
        )
        print(benchresults.ratio_table(results[1]["bench"]["vs_base"]))
    la = facts.get("load_average_1_5_15")
    print(f"\nload average (1, 5, 15 min) at start {la}, at end {facts['load_average_end']}")
    targets = {"base": paths[-1] if spec else paths[0], "pruned": paths[0]}
    for (label, _), r in zip(models, results, strict=True):
        write_result(r, targets[label], overwrite=args.force)
        print(f"wrote {targets[label]}")
    return 0


def bench_weights_sha(model: Any) -> str:
    from widthwise.models import weights_sha256

    return weights_sha256(model)
