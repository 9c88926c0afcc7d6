"""widthwise sweep [MODEL] [--pcts P,...] [--method M[,M...]] [--suite S] [--no-bench] [--controls [C,...]]
                [--shard i/n] [--no-check] [--regression DIR|none] [--out DIR]

widthwise sweep --dry-run [--json] [--gpu DEVICE] [--runners N] [--models M,...] [--calibrate DIR ...]
    the GPU job (src/widthwise/gpujob.toml): every shard's configuration, estimated hours and exact
    command, loading nothing; --json prints gpu.yml's matrix.
"""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "Prune, evaluate and bench a model at every configuration, then check the claims and report."

# The main job (`nox -s sweep`, `widthwise sweep` with no arguments) runs where the CPU tier's gating
# claims live: at 40% the stored baselines (baselines/measured/cpu) back cpu-lambada-perplexity-rises,
# cpu-gsm8k-gold-logprob-falls and cpu-ppm-beats-ppm-reverse-{lambada, arc_challenge-margin,
# hellaswag-margin, truthfulqa_mc1-margin, gsm8k-gold-logprob} (thresholds.toml), so base, PPM 40% and the
# ppm-reverse control at 40% gate seven claims, and each of the three is compared document by document
# with its stored baseline. Not random: PPM does not beat it on
# this model at any stored width (every cpu-ppm-beats-random claim is reported only), so a fourth
# evaluation would gate nothing. Three evaluations spread over two workers in units of task families
# (widthwise.schedule) fit the 15-minute goal on a machine whose 1-thread GEMM probe reads 200 GFLOP/s.
DEFAULT_PCTS = "0,40"
# With the default --pcts, the swept method's own reverse (ppm-reverse for ppm); an explicit --pcts runs
# no control unless asked.
DEFAULT_CONTROLS = "reverse"
# On CPU suites the bench is a short, fixed-length probe; GPU runners use the full workloads.
CPU_BENCH_ARGS = "--workloads mmlu --prompts 8 --new-tokens 16 --repeats 5"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from widthwise import sweep
    from widthwise.evaluation import backends
    from widthwise.models import DEFAULT_MODEL

    p.add_argument(
        "model", nargs="?", default=DEFAULT_MODEL, metavar="MODEL", help=f"default {DEFAULT_MODEL}"
    )
    p.add_argument(
        "--pcts",
        help=f"pruning percentages, 0 = base (default {DEFAULT_PCTS}, with the method's reverse as control)",
    )
    p.add_argument(
        "--method",
        default="ppm",
        help="neuron importance (default ppm): a built-in or an installed plug-in (`widthwise methods`), or "
        "several, comma-separated; PPM, the paper's method, always runs beside the others as their reference",
    )
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
    p.add_argument(
        "--controls",
        nargs="?",
        const=",".join(sweep.CONTROLS),
        metavar="C,...",
        help=f"also run these ablation controls at the same widths (bare --controls: "
        f"{', '.join(sweep.CONTROLS)}, where reverse is the method's own, e.g. ppm-reverse; none: no "
        f"control); default {DEFAULT_CONTROLS} with the default --pcts, none with an explicit --pcts",
    )
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
    p.add_argument(
        "--regression",
        metavar="DIR|none",
        default="auto",
        help="the check also compares every planned configuration that has a stored baseline in DIR with it, "
        "document by document (default: baselines/measured/<suite> where it exists and --limit is not "
        "given; none: no comparison)",
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


def configs_of(args: argparse.Namespace) -> list:
    """The sweep's configurations from its arguments (pure): --pcts of --method, then the controls."""
    from widthwise import sweep

    pcts = sweep.parse_pcts(args.pcts or DEFAULT_PCTS)
    controls = (
        args.controls if args.controls is not None else (DEFAULT_CONTROLS if args.pcts is None else "none")
    )
    control_pcts = sweep.parse_pcts(args.control_pcts) if args.control_pcts else ()
    return sweep.plan(
        pcts, args.method, sweep.parse_controls(controls, sweep.parse_methods(args.method)), control_pcts
    )


def regression_dir(args: argparse.Namespace) -> Path | None:
    """The stored baselines the check compares with: --regression DIR, none, or (auto) the suite's own
    (a limited run's settings differ from every stored baseline's, so it compares with none)."""
    from widthwise import sweep
    from widthwise.errors import WidthwiseError

    if args.regression == "none":
        return None
    if args.regression == "auto":
        return None if args.limit is not None else sweep.stored_baselines(args.suite)
    folder = Path(args.regression)
    if not folder.is_dir():
        raise WidthwiseError(f"--regression {folder}: no such folder of stored Results")
    return folder


def run(args: argparse.Namespace) -> int:
    import shlex
    import time

    from widthwise import bench, report, sweep
    from widthwise.device import load_average
    from widthwise.device import resolve as resolve_device
    from widthwise.errors import WidthwiseError
    from widthwise.evaluation import backends, get_suite
    from widthwise.results import collect_results

    if args.dry_run:
        return dry_run(args)
    t0 = time.perf_counter()
    if args.backend is None:
        args.backend = backends.DEFAULT_BACKEND
    configs = configs_of(args)
    pcts = sweep.parse_pcts(args.pcts or DEFAULT_PCTS)
    which = sweep.parse_shard(args.shard)
    the_suite = get_suite(args.suite, limit=args.limit)  # an unknown suite is refused before anything runs
    regression = regression_dir(args)
    stored = sweep.stored_baselines(args.suite)
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
    bench_pcts = sweep.parse_pcts(args.bench_pcts) if args.bench_pcts else None
    if bench_pcts is not None and not set(bench_pcts) <= {p for p in pcts if p > 0}:
        raise WidthwiseError(f"--bench-pcts {args.bench_pcts}: every one must be a pruned width of --pcts")
    methods = sweep.swept(sweep.parse_methods(args.method))
    # The methods' widths are benched, not the controls' (the same shapes, timed again).
    controlled = any(not c.is_base and c.method not in methods for c in configs)
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
        bench_methods=list(methods) if controlled else None,
        # Each family's measured seconds in the suite's stored baselines weigh the units of work that
        # balance the workers (widthwise.schedule).
        profiles=collect_results([stored]) if stored is not None and jobs > 1 else (),
    )
    code = 0
    if which is not None:
        print(f"sweep: shard {args.shard} done; merge shards with `widthwise check DIR1 DIR2 ...`")
    elif not args.check:
        print(
            f"sweep: done, not checked (--no-check); check with `widthwise check {args.out / 'results'} ...`"
        )
    else:
        if regression is not None:
            print(f"sweep: comparing with the stored baselines in {regression}")
        chk, written = sweep.finish(args.out, regression=regression)
        print(f"wrote {written[0]} and {len(written) - 1} plots under {args.out / 'report' / 'plots'}")
        print(report.check_text(chk))
        report.append_step_summary(report.check_markdown(chk))
        code = chk.exit_code
    print(sweep.timing_line(time.perf_counter() - t0, dev.gemm_probe(1), load_average()))
    return code


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
