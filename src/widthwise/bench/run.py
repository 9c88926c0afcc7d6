"""The bench stage: bench(base, pruned, config) -> the base's and the pruned model's Results.

The base model and its pruned copy are measured in one run, alternating window by window (bench/timing.py
says what each figure means), so both Results share settings and a bench.run_id that `check` pairs them
by. Without a pruned copy only the base is measured. Energy needs a meter (NVML on a GPU, RAPL on a CPU);
without one every energy figure is null with the reason, never an estimate. With one, idle power is
measured before and after the cells and every window is kept in the Result with its flag (accounting.py);
an energy figure measured by fewer than MIN_REPEATS unflagged windows is null with the reason, so a claim
on it fails closed.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from widthwise import device as machine
from widthwise.bench import figures, timing
from widthwise.bench.accounting import EnergyAccount, describe_energy
from widthwise.bench.config import MIN_REPEATS, BenchConfig
from widthwise.bench.energy import Meter, open_meter
from widthwise.bench.models import Ideal, matmul_params_per_token
from widthwise.bench.workloads import Workload, max_prompt_tokens
from widthwise.results import code_provenance, new_result


@dataclass
class BenchOutcome:
    """Both Results (base first) and the figures behind them, for the tables a command prints."""

    results: dict[str, dict[str, Any]]  # role ("base", "pruned") -> Result
    figures: dict[str, dict[str, dict[str, list[float | None]]]]
    ideal: Ideal | None
    matmul_params: dict[str, int]
    energy_reason: str | None
    machine: dict[str, Any] = field(default_factory=dict)

    def tables(self, model_name: str, pruned_label: str | None) -> str:
        """The figures of each model, and the paired pruned/base ratios against the ideal."""
        out = []
        for role, figs in self.figures.items():
            head = f"{role}: {model_name}" + (f" {pruned_label}" if role == "pruned" and pruned_label else "")
            out += ["", head, figures.figures_table(figs, self.energy_reason)]
        if self.ideal is not None:
            m = self.matmul_params
            out += [
                "",
                f"pruned/base, paired by repeat. Ideal speed-up per generated token {self.ideal.decode:.3f} "
                f"(matmul params {m['base']:,} / {m['pruned']:,}), per prompt token {self.ideal.prefill:.3f} "
                "(decoder only); latency, throughput and J/token: the base's prefill and decode times each "
                "cut by its ideal",
                figures.ratio_table(self.results["pruned"]["bench"]["vs_base"]),
            ]
        out += describe_energy(self.results["base"]["bench"]["energy"])
        la = self.machine.get("load_average_1_5_15")
        out += [
            "",
            f"load average (1, 5, 15 min) at start {la}, at end {self.machine.get('load_average_end')}",
        ]
        return "\n".join(out)


def bench(
    base: Any,
    pruned: tuple[torch.nn.Module, Any] | None,
    config: BenchConfig,
    *,
    device: Any = None,
    tier: str | None = None,
    workloads: list[Workload] | None = None,
    log: Callable[[str], None] = lambda msg: None,
) -> BenchOutcome:
    """Bench `base` (a widthwise.models.Loaded) and, when given, `pruned` = (its pruned copy, the
    PruneReport) interleaved, on `device` (a widthwise.device.Device or its spec; default the base's own);
    the Results carry `tier` (default: the device's, gpu on CUDA and cpu otherwise)."""
    dev = machine.resolve(device if device is not None else (base.device or "cpu"))
    wls = workloads if workloads is not None else config.load_workloads()
    meter = open_meter(config.meter, device=dev.kind, gpu_uuid=dev.uuid())
    try:
        return _measure(base, pruned, config, wls, dev, tier or dev.tier, meter, log)
    finally:
        meter.close()


def _measure(
    base: Any,
    pruned: tuple[torch.nn.Module, Any] | None,
    config: BenchConfig,
    wls: list[Workload],
    dev: Any,
    tier: str,
    meter: Meter,
    log: Callable[[str], None],
) -> BenchOutcome:
    from widthwise.models import describe

    t_start = time.perf_counter()
    facts = dev.facts(meter)
    if (warning := dev.busy_warning(facts)) is not None:
        log(warning)
    models: list[tuple[str, torch.nn.Module]] = [("base", base.model)]
    report = None
    if pruned is not None:
        models.append(("pruned", pruned[0]))
        report = pruned[1]
    p_matmul = {role: matmul_params_per_token(m) for role, m in models}
    ideal = Ideal.of(base.model, pruned[0]) if pruned is not None else None

    account = EnergyAccount(meter, config.idle_s, log)
    min_window = config.window_s(account.window_meter is not None)

    cells = []
    for w in wls:
        for b in config.batch_sizes:
            log(
                f"{w.name} b{b}: {config.warmup} warm-up + {config.repeats} timed windows per model "
                f"(each at least {min_window:g}s), {w.new_tokens} new tokens"
            )
            cells.append(
                timing.run_cell(
                    models,
                    base.tokenizer,
                    w,
                    b,
                    repeats=config.repeats,
                    warmup=config.warmup,
                    device=dev,
                    max_prompt_tokens=max_prompt_tokens(),
                    meter=account.window_meter,
                    min_window_s=min_window,
                    progress=log,
                )
            )
    energy = account.settle(cells)
    energy_reason = energy["not_measurable"]
    facts = {
        **facts,
        "load_average_end": machine.load_average(),
        "bench_wall_s": time.perf_counter() - t_start,
    }
    dtype = str(next(base.model.parameters()).dtype).removeprefix("torch.")
    settings = {
        "workloads": [w.name for w in wls],
        "prompts": {w.name: len(w.prompts) for w in wls},
        "prompts_sha256": {w.name: w.prompts_sha256() for w in wls},
        "new_tokens": {w.name: w.new_tokens for w in wls},
        "batch_sizes": list(config.batch_sizes),
        "max_prompt_tokens": max_prompt_tokens(),
        "repeats": config.repeats,
        "warmup": config.warmup,
        "min_window_s": min_window,
        "decoding": "greedy, min_new_tokens = max_new_tokens",
        "dtype": dtype,
        "device_kind": dev.kind,
        "device_name": dev.hardware_name(),
        "threads": torch.get_num_threads(),
        "meter": meter.name,
    }
    figs = {role: figures.series(cells, role) for role, _ in models}
    flagged = {role: figures.flags(cells, role) for role, _ in models}
    shared = {
        # Both Results of one run carry the same id, so a checker can pair a pruned Result with its base.
        "run_id": uuid.uuid4().hex,
        "timing": timing.__doc__,
        "energy": energy,
        "workloads": {
            w.name: {"source": w.source, "row_ids": list(w.row_ids), "new_tokens": w.new_tokens} for w in wls
        },
        "cells": {
            c.key: {
                "batch_size": c.batch_size,
                "new_tokens": c.new_tokens,
                "batches": c.batches,
                "real_prompt_tokens": c.real_prompt_tokens,
                # a remainder smaller than a batch is left out, so every call has the same batch size
                "prompts_used": c.batches * c.batch_size,
            }
            for c in cells
        },
    }
    provenance = {
        **code_provenance(),
        "model_source": base.name,
        "model_path": base.path,
        "base_weights_sha256": base.weights_sha256,
        "device": dev.label,
        "machine": facts,
        "threads": torch.get_num_threads(),
        "dtype": dtype,
        "seconds": round(facts["bench_wall_s"], 1),
        "stand_in": "; ".join(x for x in (dev.fake, getattr(base, "standin", None)) if x) or None,
    }
    results = {}
    for role, m in models:
        r = new_result(
            stage="bench",
            tier=tier,
            model=describe(base.name, m, base.weights_sha256 if role == "base" else None),
            pruning=report if role == "pruned" else None,
            suite="bench",
            settings=settings,
            provenance=provenance,
        )
        r["metrics"] = figures.metrics(figs[role], energy_reason, flagged[role], MIN_REPEATS)
        r["bench"] = {
            **shared,
            "role": role,
            "matmul_params_per_token": p_matmul[role],
            "spread": figures.spreads(figs[role]),
            # every timed window, flagged or not, so a figure can be retraced to what the meter read
            "windows": {c.key: [w.record() for w in c.windows[role]] for c in cells},
        }
        if role == "pruned":
            assert ideal is not None
            r["bench"]["ideal_speedup"] = {"decode": ideal.decode, "prefill": ideal.prefill}
            r["bench"]["vs_base"] = figures.ratios(figs["base"], figs["pruned"], ideal)
        results[role] = r
    return BenchOutcome(results, figs, ideal, p_matmul, energy_reason, facts)
