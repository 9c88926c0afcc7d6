"""The evaluate stage: an already loaded (and pruned) model -> lm-eval -> one Result, cached when unchanged.

    check_inputs(suite, ...)            everything that needs no model: suite, tasks, data, backend choice
    evaluate(model, pruning, suite)     the Result of `model` (a widthwise.models.Loaded, pruned in place
                                        when `pruning`, its PruneReport, is given) on the suite

Everything that changes a score is in the Result's settings and in the cache key (evaluation/cache.py).
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from widthwise import data
from widthwise.errors import WidthwiseError
from widthwise.evaluation import backends
from widthwise.evaluation import profile as profiling
from widthwise.evaluation.cache import cache_key, cache_path, data_checksums
from widthwise.evaluation.loading import LoadedTask, Source, builtin_name, load_tasks, plan_sources
from widthwise.evaluation.runner import quiet, run_lm_eval
from widthwise.evaluation.scoring import to_result_parts
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
    device: str
    backend: str
    devices: int
    scoring: str


@dataclass
class Outcome:
    result: dict[str, Any]
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
    device: str = "cpu",
    backend: str = backends.DEFAULT_BACKEND,
    devices: int | str = 1,
    scoring: str = backends.DEFAULT_SCORING,
) -> Inputs:
    """Refuse, before any model is loaded, what cannot run: an unknown suite or task, missing data, an
    impossible backend. Also switches the hub libraries offline unless hub access is allowed."""
    the_suite = suite if isinstance(suite, Suite) else get_suite(suite, tasks)
    n = backends.resolve_devices(backend, devices, device)
    if scoring not in backends.SCORING:
        raise WidthwiseError(f"unknown scoring {scoring!r}; choose from {', '.join(backends.SCORING)}")
    allow_hub = allow_hub or data.hub_allowed()
    data.setup_environment(allow_hub)  # offline switches first: they must precede any hub library import
    sources = plan_sources(the_suite, allow_hub)  # may fetch the data folder
    data.setup_environment(allow_hub)  # again, so that NLTK_DATA points at a folder fetched just now
    return Inputs(the_suite, tasks, sources, allow_hub, device, backend, n, scoring)


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
    refresh: bool = False,
    use_cache: bool = True,
    verbose: bool = False,
) -> Outcome:
    """Evaluate `model` (a widthwise.models.Loaded, already pruned when `pruning` is its PruneReport) on a
    suite; a cached Result when nothing that could change it changed. The device is the model's own."""
    import torch

    from widthwise import device as machine
    from widthwise.models import describe, weights_sha256
    from widthwise.results import code_provenance, new_result, read_result, write_result

    t0 = time.perf_counter()
    m = model.model
    device = str(next(m.parameters()).device)
    if isinstance(suite, Inputs):
        inputs = suite
    else:
        inputs = check_inputs(
            suite,
            tasks=tasks,
            allow_hub=allow_hub,
            device=device,
            backend=backend,
            devices=devices,
            scoring=scoring,
        )
    s = inputs.suite
    weights = weights_sha256(m) if pruning is not None else model.weights_sha256
    dtype = str(next(m.parameters()).dtype).removeprefix("torch.")
    with quiet(verbose):
        task_items, tm = load_tasks(s, inputs.sources)
    settings = build_settings(s, task_items, inputs.sources, model.tokenizer, dtype, inputs.backend)
    checksums = data_checksums(inputs.sources)
    # vLLM scores its own way: the scoring path applies to HFLM only.
    scoring_used = inputs.scoring if inputs.backend == "hf" else None
    runtime = {
        "device": device,
        "threads": torch.get_num_threads(),
        "devices": inputs.devices,
        "scoring": scoring_used,
    }
    key = cache_key(weights, settings, checksums, runtime)
    cfile = cache_path(key)
    if use_cache and not refresh and cfile.exists():
        try:
            cached = read_result(cfile)
        except WidthwiseError as e:
            raise WidthwiseError(f"{e}; delete it or pass --refresh") from None
        return Outcome(cached, True, cfile, time.perf_counter() - t0)

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
            "device": device,
            "machine": machine.device_facts(device),
            "threads": torch.get_num_threads(),
            "dtype": dtype,
            "backend": backends.describe(inputs.backend, inputs.devices),
            "seed": s.seed,
            "data": checksums,
            "sample_ids": {
                it.spec.name: {builtin_name(k): v for k, v in sorted(it.ids.items())} for it in task_items
            },
            "cache_key": key,
            "scoring": scoring_used,
        },
    )
    t_run = time.perf_counter()
    if backends.needs_folder(inputs.backend, inputs.devices):
        metrics, headline, samples = _evaluate_from_folder(
            model, pruning, inputs, task_items, tm, dtype, verbose
        )
    else:
        from widthwise.evaluation import hflm

        probe = profiling.gemm_probe(torch.get_num_threads()) if device == "cpu" else None
        with quiet(verbose):
            lm = hflm.make(
                m,
                model.tokenizer,
                batch_size=s.batch_size,
                device=device,
                scoring=inputs.scoring,
                generate_batch_size=s.generate_batch_size,
            )
            lm_out = run_lm_eval(lm, s, task_items, tm, model.tokenizer)
        assert lm_out is not None  # one process is always rank 0
        metrics, headline, samples = to_result_parts(task_items, lm_out)
        family_of = {leaf: it.spec.name for it in task_items for leaf in it.leaves}
        costs = profiling.by_family(hflm.profile_of(lm), family_of)
        result["provenance"]["profile"] = profiling.build(costs, probe, m)
    for task, why in s.substitutes.items():
        metrics[f"{task}/{family(task)['headline']}"] = {
            "value": None,
            "stderr": None,
            "n": None,
            "not_measurable": f"not in suite {s.name!r}; substitute: {why}",
        }
    result["metrics"], result["headline"], result["samples"] = metrics, headline, samples
    result["provenance"]["seconds"] = round(time.perf_counter() - t_run, 1)
    if use_cache:
        write_result(result, cfile, overwrite=True)
    return Outcome(result, False, cfile, time.perf_counter() - t0)


def _evaluate_from_folder(
    model: Any,
    pruning: Any,
    inputs: Inputs,
    task_items: list[LoadedTask],
    tm: Any,
    dtype: str,
    verbose: bool,
) -> tuple[dict, dict, dict]:
    """vllm, or hf over several devices: both load a folder, so the (pruned) model is saved to a
    temporary one beside the model cache and removed afterwards."""
    from widthwise.models import cache_dir, save_model

    scratch = cache_dir() / "scratch"
    scratch.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=scratch, prefix="eval-") as tmp:
        folder = Path(tmp) / "model"
        manifest = {"source": model.name, "pruning": pruning.as_dict() if pruning is not None else None}
        save_model(model.model, model.tokenizer, folder, manifest, force=False)
        if inputs.backend == "hf":
            parts = backends.run_data_parallel(
                folder,
                inputs.suite.name,
                inputs.tasks,
                scoring=inputs.scoring,
                dtype=dtype,
                nproc=inputs.devices,
                workdir=Path(tmp),
                allow_hub=inputs.allow_hub,
            )
            return parts["metrics"], parts["headline"], parts["samples"]
        with quiet(verbose):
            lm = backends.make_vllm(folder, dtype=dtype, devices=inputs.devices, seed=inputs.suite.seed)
            lm_out = run_lm_eval(lm, inputs.suite, task_items, tm, model.tokenizer)
        assert lm_out is not None
        return to_result_parts(task_items, lm_out)
