"""The evaluate stage: an already loaded (and pruned) model -> lm-eval -> one Result, cached when unchanged.

    check_inputs(suite, ...)            everything that needs no model: suite, tasks, data, backend choice
    evaluate(model, pruning, suite)     the Result of `model` (a widthwise.models.Loaded, pruned in place
                                        when `pruning`, its PruneReport, is given) on the suite

Everything that changes a score is in the Result's settings and in the cache key (evaluation/cache.py).
Families run one at a time and each is checkpointed as it finishes (evaluation/pertask.py), so a killed
evaluation resumes at its first unfinished family. What differs by device is asked of the model's
widthwise.device.Device; nothing here tests a device's name.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from widthwise import data
from widthwise.errors import WidthwiseError
from widthwise.evaluation import backends
from widthwise.evaluation import profile as profiling
from widthwise.evaluation.cache import cache_key, cache_path, data_checksums
from widthwise.evaluation.loading import LoadedTask, Source, builtin_name, load_tasks, plan_sources
from widthwise.evaluation.pertask import Checkpoints, run_tasks
from widthwise.evaluation.runner import quiet, run_lm_eval
from widthwise.evaluation.settings import build_settings
from widthwise.evaluation.suites import Suite, family, get_suite

THREADS_ENV = "WIDTHWISE_THREADS"


@dataclass(frozen=True)
class Inputs:
    """A suite with every task's data located and the backend choice resolved: nothing left to refuse."""

    suite: Suite
    tasks: list[str] | None
    sources: dict[str, Source]
    allow_hub: bool
    device: Any  # widthwise.device.Device
    backend: str
    devices: int
    scoring: str
    kinds: dict[str, str]  # request kind -> the backend that runs it (backends.per_kind)


@dataclass
class Outcome:
    result: dict[str, Any] | None  # None after a families-only run: its parts are in the checkpoints
    cached: bool
    cache_file: Path
    seconds: float


def set_threads(threads: int | None = None) -> int:
    """Torch intra-op threads for an evaluation: one by default (or $WIDTHWISE_THREADS).

    On a shared 2-core machine two OpenMP threads spin against other processes and run 3-6x slower than
    one (measured: 19 s vs 5.5 s for the same 48 requests)."""
    import torch

    torch.set_num_threads(threads or int(os.environ.get(THREADS_ENV, "1")))
    return torch.get_num_threads()


def check_inputs(
    suite: str | Suite,
    *,
    tasks: list[str] | None = None,
    allow_hub: bool = False,
    device: Any = "cpu",
    backend: str = backends.DEFAULT_BACKEND,
    devices: int | str = 1,
    scoring: str = backends.DEFAULT_SCORING,
    limit: int | None = None,
) -> Inputs:
    """Refuse, before any model is loaded, what cannot run: an unknown suite or task, missing data, an
    impossible backend. Also switches the hub libraries offline unless hub access is allowed."""
    from widthwise.device import resolve

    dev = resolve(device)
    the_suite = suite if isinstance(suite, Suite) else get_suite(suite, tasks, limit)
    n = backends.resolve_devices(backend, devices, dev)
    if scoring not in backends.SCORING:
        raise WidthwiseError(f"unknown scoring {scoring!r}; choose from {', '.join(backends.SCORING)}")
    allow_hub = allow_hub or data.hub_allowed()
    data.setup_environment(allow_hub)  # offline switches first: they must precede any hub library import
    sources = plan_sources(the_suite, allow_hub)  # may fetch the data folder
    data.setup_environment(allow_hub)  # again, so that NLTK_DATA points at a folder fetched just now
    kinds = backends.per_kind(backend, dev)
    return Inputs(the_suite, tasks, sources, allow_hub, dev, backend, n, scoring, kinds)


def checkpoint_root() -> Path:
    """Where an evaluation keeps its per-family checkpoints unless told otherwise (a sweep keeps them in
    its own folder, so they travel with a shard's artifact)."""
    from widthwise.models import cache_dir

    return cache_dir() / "checkpoints"


def evaluate(
    model: Any,
    pruning: Any,
    suite: str | Suite | Inputs,
    *,
    tasks: list[str] | None = None,
    allow_hub: bool = False,
    backend: str = backends.DEFAULT_BACKEND,
    devices: int | str = 1,
    scoring: str = backends.DEFAULT_SCORING,
    limit: int | None = None,
    refresh: bool = False,
    use_cache: bool = True,
    checkpoints: Path | None = None,
    families: Sequence[str] | None = None,
    verbose: bool = False,
    log: Any = None,
) -> Outcome:
    """Evaluate `model` (a widthwise.models.Loaded, already pruned when `pruning` is its PruneReport) on a
    suite; a cached Result when nothing that could change it changed. The device is the model's own.
    `checkpoints`: the folder for per-family checkpoints (default under the cache).

    `families`: run only these of the suite's families into their checkpoints and return no Result (a
    sweep spreads one configuration over several processes so); a later call without `families` finds
    every part checkpointed and assembles the Result, running nothing again. The cache key is the whole
    evaluation's either way, so the parts and the Result are those of the unsplit evaluation."""
    import torch

    from widthwise.device import of_tensor_device
    from widthwise.models import describe, weights_sha256
    from widthwise.results import code_provenance, new_result, pruner_of, read_result, write_result

    t0 = time.perf_counter()
    say = log or (lambda msg: None)
    m = model.model
    dev = getattr(model, "device", None) or of_tensor_device(next(m.parameters()).device)
    if isinstance(suite, Inputs):
        inputs = suite
    else:
        inputs = check_inputs(
            suite,
            tasks=tasks,
            allow_hub=allow_hub,
            device=dev,
            backend=backend,
            devices=devices,
            scoring=scoring,
            limit=limit,
        )
    s = inputs.suite
    weights = weights_sha256(m) if pruning is not None else model.weights_sha256
    dtype = str(next(m.parameters()).dtype).removeprefix("torch.")
    with quiet(verbose):
        task_items, tm = load_tasks(s, inputs.sources)
    task_backend = {it.spec.name: inputs.kinds[it.spec.kind] for it in task_items}
    mix = backends.mix_label(task_backend)
    settings = build_settings(s, task_items, inputs.sources, model.tokenizer, dtype, mix, task_backend)
    checksums = data_checksums(inputs.sources)
    # The scoring path applies to HFLM only (vLLM scores its own way).
    scoring_used = inputs.scoring if "hf" in task_backend.values() else None
    runtime = {
        "device": dev.label,
        "threads": torch.get_num_threads(),
        "devices": inputs.devices,
        "scoring": scoring_used,
    }
    key = cache_key(weights, settings, checksums, runtime, pruner_of(pruning))
    cfile = cache_path(key)
    if families is not None:
        unknown = sorted(set(families) - {it.spec.name for it in task_items})
        if unknown:
            raise WidthwiseError(f"suite {s.name!r} has no task family {', '.join(unknown)}")
        if refresh:
            raise WidthwiseError("refresh clears every family's checkpoint: it cannot run a part of one")
    if use_cache and not refresh and cfile.exists():
        try:
            cached = read_result(cfile)
        except WidthwiseError as e:
            raise WidthwiseError(f"{e}; delete it or pass --refresh") from None
        return Outcome(cached, True, cfile, time.perf_counter() - t0)

    stand_in = [x for x in (dev.fake, model_standin(model)) if x]
    result = new_result(
        stage="eval",
        tier=s.tier,
        model=describe(model.name, m, weights),
        pruning=pruning,
        suite=s.name,
        settings=settings,
        provenance={
            **code_provenance(),
            "model_source": model.name,
            "model_path": model.path,
            "base_weights_sha256": model.weights_sha256,
            "device": dev.label,
            "machine": dev.facts(),
            "threads": torch.get_num_threads(),
            "dtype": dtype,
            "backend": backends.describe(mix, inputs.devices, task_backend),
            "seed": s.seed,
            "data": checksums,
            "sample_ids": {
                it.spec.name: {builtin_name(k): v for k, v in sorted(it.ids.items())} for it in task_items
            },
            "cache_key": key,
            "scoring": scoring_used,
            "stand_in": "; ".join(stand_in) or None,
        },
    )
    t_run = time.perf_counter()
    store = Checkpoints(checkpoints or checkpoint_root(), key)
    if refresh:
        store.clear()
    done = store.load()
    if done:
        names = ", ".join(sorted(done))
        say(f"eval: resuming from {len(done)} checkpointed task(s) in {store.folder}: {names}")
    todo = [it for it in task_items if it.spec.name not in done]
    if families is not None:
        todo = [it for it in todo if it.spec.name in families]
    probe = dev.gemm_probe(torch.get_num_threads()) if families is None else None
    in_process = [it for it in todo if not backends.needs_folder(task_backend[it.spec.name], inputs.devices)]
    if in_process:
        _run_in_process(model, dev, inputs, in_process, tm, store, verbose, say)
    elsewhere = [it for it in todo if it not in in_process]
    if elsewhere:
        _run_in_workers(model, pruning, dev, inputs, elsewhere, task_backend, dtype, store, say)
    if families is not None:
        return Outcome(None, False, cfile, time.perf_counter() - t0)
    parts = store.load()
    lost = [it.spec.name for it in task_items if it.spec.name not in parts]
    if lost:
        raise WidthwiseError(f"evaluation finished without a result for task(s) {', '.join(lost)}")
    metrics: dict[str, Any] = {}
    headline: dict[str, Any] = {}
    samples: dict[str, Any] = {}
    for it in task_items:
        part = parts[it.spec.name]
        metrics.update(part["metrics"])
        headline.update(part["headline"])
        samples.update(part["samples"])
    costs = {it.spec.name: {**parts[it.spec.name]["cost"], "backend": parts[it.spec.name]["backend"]}
             for it in task_items}  # fmt: skip
    result["provenance"]["profile"] = profiling.build(costs, probe, m)
    for task, why in s.substitutes.items():
        metrics[f"{task}/{family(task)['headline']}"] = {
            "value": None,
            "stderr": None,
            "n": None,
            "not_measurable": f"not in suite {s.name!r}; substitute: {why}",
        }
    result["metrics"], result["headline"], result["samples"] = metrics, headline, samples
    # Families checkpointed by another process (a split or killed evaluation) count with their own time,
    # so that a Result assembled from parts reports the work it took, not the assembly's second.
    before = sum(float(done[t]["cost"].get("seconds") or 0.0) for t in done)
    result["provenance"]["seconds"] = round(time.perf_counter() - t_run + before, 1)
    if use_cache:
        write_result(result, cfile, overwrite=True)
    store.clear()
    return Outcome(result, False, cfile, time.perf_counter() - t0)


def model_standin(model: Any) -> str | None:
    standin = getattr(model, "standin", None)
    return f"stand-in model folder {standin} for {model.name}" if standin else None


def _run_in_process(
    model: Any,
    dev: Any,
    inputs: Inputs,
    items: list[LoadedTask],
    tm: Any,
    store: Checkpoints,
    verbose: bool,
    say: Any,
) -> None:
    """lm-eval's HFLM (widthwise's) over the in-memory model, one family at a time."""
    from widthwise.evaluation import hflm

    s = inputs.suite
    with quiet(verbose):
        lm = hflm.make(
            model.model,
            model.tokenizer,
            batch_size=s.batch_size,
            device=dev.torch_device,
            scoring=inputs.scoring,
            generate_batch_size=s.generate_batch_size,
        )
        run_tasks(
            items,
            lambda item: run_lm_eval(lm, s, [item], tm, model.tokenizer),
            store,
            "hf",
            profile_of=lambda: hflm.profile_of(lm),
            log=say,
        )


def _run_in_workers(
    model: Any,
    pruning: Any,
    dev: Any,
    inputs: Inputs,
    items: list[LoadedTask],
    task_backend: dict[str, str],
    dtype: str,
    store: Checkpoints,
    say: Any,
) -> None:
    """vLLM, or hf over several devices: both load a folder, so the (pruned) model is saved to a
    temporary one beside the model cache (removed afterwards) and a worker process evaluates it,
    checkpointing each family. While a vLLM worker runs, the in-memory model is moved off the device so
    that vLLM can take the board's memory."""
    from widthwise.models import cache_dir, save_model

    scratch = cache_dir() / "scratch"
    scratch.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=scratch, prefix="eval-") as tmp:
        folder = Path(tmp) / "model"
        manifest = {"source": model.name, "pruning": pruning.as_dict() if pruning is not None else None}
        save_model(model.model, model.tokenizer, folder, manifest, force=False)
        for backend in sorted({task_backend[it.spec.name] for it in items}):
            names = [it.spec.name for it in items if task_backend[it.spec.name] == backend]
            cmd = backends.worker_command(
                folder,
                inputs.suite.name,
                names,
                backend=backend,
                dtype=dtype,
                checkpoints=store.root,
                key=store.key,
                devices=inputs.devices,
                limit=inputs.suite.limit,
                allow_hub=inputs.allow_hub,
                scoring=inputs.scoring,
            )
            say(f"eval: {', '.join(names)} on {backend} in a worker process")
            with ExitStack() as stack:
                if backend == "vllm":
                    stack.enter_context(dev.offloaded(model.model))
                backends.run_worker(cmd)
