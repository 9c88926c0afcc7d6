"""widthwise sweep [MODEL] [--pcts P,...] [--suite S] [--no-bench] [--controls] [--shard i/n] [--no-check]
                [--out DIR]

widthwise sweep --dry-run [--json] [--gpu DEVICE] [--runners N] [--models M,...] [--calibrate DIR ...]
    the GPU job (src/widthwise/gpujob.toml): every shard's configuration, estimated hours and exact
    command, loading nothing; --json prints gpu.yml's matrix.
"""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "Prune, evaluate and bench a model at every configuration, then check the claims and report."

# What the embedded default shows (baselines/measured/cpu): SmolLM2-135M's perplexity is 19x at 2% and 800x
# at 20%, and every kind of CPU-tier claim but the controls is backed at 20%, so base and 20% are the two
# points that fit the main job's 30-minute budget on 2 cores: 15m53s measured from a fresh clone (two
# evaluations in parallel, then one bench).
DEFAULT_PCTS = "0,20"
# On CPU suites the bench is a short, fixed-length probe; GPU runners use the full workloads.
CPU_BENCH_ARGS = "--workloads mmlu --prompts 8 --new-tokens 16 --repeats 5"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from widthwise.evaluation import backends
    from widthwise.models import DEFAULT_MODEL

    p.add_argument(
        "model", nargs="?", default=DEFAULT_MODEL, metavar="MODEL", help=f"default {DEFAULT_MODEL}"
    )
    p.add_argument(
        "--pcts", default=DEFAULT_PCTS, help=f"pruning percentages, 0 = base (default {DEFAULT_PCTS})"
    )
    p.add_argument("--method", default="ppm", help="neuron importance (default ppm)")
    p.add_argument("--suite", default="cpu", help="evaluation suite (default cpu)")
    p.add_argument(
        "--bench", action=argparse.BooleanOptionalAction, default=True, help="run the efficiency bench"
    )
    p.add_argument(
        "--bench-args",
        help=f"bench options for each bench, as `widthwise bench` takes them (default on CPU suites: "
        f"{CPU_BENCH_ARGS!r}; none on the GPU tier's suites, paper and paper-instruct)",
    )
    p.add_argument(
        "--bench-pcts",
        help="the pruned widths that get a bench (default: every one); the GPU job benches where the "
        "efficiency claims read (thresholds.toml [tiers.gpu] bench)",
    )
    p.add_argument("--controls", action="store_true", help="also run the random and ppm-reverse controls")
    p.add_argument("--control-pcts", help="pcts for the controls (default: the same as --pcts)")
    p.add_argument(
        "--jobs",
        default="auto",
        help="evaluations run in parallel processes (auto: one per CPU core, at most 4, on the CPU suites; "
        "1 for the paper suite, whose runs each fill a GPU); benches always run alone",
    )
    p.add_argument("--shard", help="run shard i of n (e.g. 2/7); check merges shard folders")
    p.add_argument(
        "--limit",
        type=int,
        help="at most N documents per task family (a rehearsal or a quick look; recorded in settings, so "
        "limited Results never compare with full ones)",
    )
    backends.add_arguments(p, devices_default="auto")
    p.add_argument("--out", type=Path, default=Path("runs/sweep"), help="output folder (default runs/sweep)")
    p.add_argument(
        "--check",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="report and check an unsharded sweep at its end (--no-check: Results and plans only, for a "
        "later `widthwise check` over several sweeps)",
    )
    # None tells an explicit --backend from the default: the dry run then takes the GPU job's own.
    p.set_defaults(backend=None)
    g = p.add_argument_group("dry run (the GPU job's plan: nothing is loaded or run)")
    g.add_argument(
        "--dry-run",
        action="store_true",
        help="print each shard of the GPU job (src/widthwise/gpujob.toml): configuration, estimated hours, "
        "timeout and the exact command",
    )
    g.add_argument("--json", action="store_true", help="with --dry-run: gpu.yml's matrix as one JSON line")
    g.add_argument("--gpu", help="with --dry-run: the time model's device (default: the job's, h100)")
    g.add_argument("--runners", type=int, help="with --dry-run: GPU runners to size the night for")
    g.add_argument("--models", help="with --dry-run: keep only these of the job's models (comma-separated)")
    g.add_argument(
        "--calibrate",
        nargs="+",
        type=Path,
        metavar="RESULTS",
        help="with --dry-run: Results folders or files whose measured per-task seconds (provenance.profile) "
        "replace the rate table's on the same device",
    )


def run(args: argparse.Namespace) -> int:
    import shlex

    from widthwise import bench, report, sweep
    from widthwise.device import resolve as resolve_device
    from widthwise.errors import WidthwiseError
    from widthwise.evaluation import backends, get_suite

    if args.dry_run:
        return dry_run(args)
    if args.backend is None:
        args.backend = backends.DEFAULT_BACKEND
    pcts = sweep.parse_pcts(args.pcts)
    which = sweep.parse_shard(args.shard)
    control_pcts = sweep.parse_pcts(args.control_pcts) if args.control_pcts else ()
    the_suite = get_suite(args.suite, limit=args.limit)  # an unknown suite is refused before anything runs
    dev = resolve_device(args.device)
    # Refuse an impossible backend/device choice now, not after the first configuration's model load.
    n_devices = backends.resolve_devices(args.backend, args.devices, dev)
    if args.jobs == "auto":
        # A GPU-tier suite's evaluations each fill a board; on a CPU, one per core (one thread each).
        jobs = 1 if the_suite.tier == "gpu" else dev.parallel_evaluations()
    else:
        try:
            jobs = int(args.jobs)
        except ValueError:
            raise WidthwiseError(f"--jobs must be a number or auto, got {args.jobs!r}") from None
    # The GPU tier's suites (paper, paper-instruct) bench the full workloads; CPU suites a short probe.
    bench_words = (
        args.bench_args
        if args.bench_args is not None
        else ("" if the_suite.tier == "gpu" else CPU_BENCH_ARGS)
    )
    bench_config = bench.parse_config(shlex.split(bench_words)) if args.bench else None
    configs = sweep.plan(pcts, args.method, args.controls, control_pcts)
    bench_pcts = sweep.parse_pcts(args.bench_pcts) if args.bench_pcts else None
    if bench_pcts is not None and not set(bench_pcts) <= {p for p in pcts if p > 0}:
        raise WidthwiseError(f"--bench-pcts {args.bench_pcts}: every one must be a pruned width of --pcts")
    request = {
        "bench": args.bench,
        "bench_pcts": bench_pcts,
        "method": args.method,
        "backend": args.backend,
        "devices": n_devices,
        "scoring": args.scoring,
        "limit": args.limit,
    }
    sweep.run(
        args.model,
        sweep.shard(configs, which),
        args.out,
        suite=args.suite,
        bench=bench_config,
        jobs=jobs,
        eval_kw={
            "device": dev,
            "backend": args.backend,
            "devices": n_devices,
            "scoring": args.scoring,
            "limit": args.limit,
        },
        request=request,
        planned=configs,
        shard_label=f"{which[0]}/{which[1]}" if which is not None else None,
        bench_pcts=bench_pcts,
    )
    if which is not None:
        print(f"sweep: shard {args.shard} done; merge shards with `widthwise check DIR1 DIR2 ...`")
        return 0
    if not args.check:
        print(
            f"sweep: done, not checked (--no-check); check with `widthwise check {args.out / 'results'} ...`"
        )
        return 0
    chk, written = sweep.finish(args.out)
    print(f"wrote {written[0]} and {len(written) - 1} plots under {args.out / 'report' / 'plots'}")
    print(report.check_text(chk))
    report.append_step_summary(report.check_markdown(chk))
    return chk.exit_code


def dry_run(args: argparse.Namespace) -> int:
    """The GPU job's shards with estimates and commands; nothing is loaded, nothing runs."""
    import json
    import shlex
    import sys
    from collections import Counter

    from widthwise import gpujob, timemodel
    from widthwise.bench import parse_config
    from widthwise.results import collect_results

    job = gpujob.load_job()
    tm = timemodel.load()
    device = args.gpu or job.device
    if device not in tm.devices:
        from widthwise.errors import WidthwiseError

        raise WidthwiseError(f"--gpu {device}: the time model knows {', '.join(sorted(tm.devices))}")
    if args.calibrate:
        tm, notes = timemodel.calibrate(tm, collect_results(args.calibrate), device)
        for line, n in Counter(notes).items():
            print(f"calibrate: skipped {n} Result(s): {line}", file=sys.stderr)
    backend = args.backend or job.backend
    bench_config = parse_config(shlex.split(args.bench_args or ""))
    suites = {s.suite: gpujob.suite_tasks(s.suite) for s in job.sweeps}
    shards = gpujob.plan(
        job,
        tm,
        suites=suites,
        bench_s=gpujob.bench_estimates(tm, job, device, bench_config),
        device=device,
        backend=backend,
        devices=args.devices if args.devices != "auto" else "1",
        bench=args.bench,
        bench_args=args.bench_args,
        models=[m.strip() for m in args.models.split(",") if m.strip()] if args.models else None,
    )
    if args.json:
        print(json.dumps(gpujob.matrix(shards), separators=(",", ":")))
    else:
        print(gpujob.table(job, shards, device, backend, args.runners))
    return 0
