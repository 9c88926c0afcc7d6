"""The efficiency bench: generation timed at a fixed output length, energy from a meter, base vs pruned.

    config     BenchConfig (what a bench measures) and its command-line options
    run        the stage: bench(base, pruned, config) -> BenchOutcome with both Results
    timing     one generate() call, windows, cells (what each figure means)
    figures    per-repeat series, summaries, paired ratios, Result metrics, tables
    models     random models with real shapes, matmul parameters and the ideal speed-up
    energy     meters: nvml, rapl, none; idle power, the flag of an implausible window
    accounting idle before and after the cells, every window judged, the Result's bench.energy
    fake_nvml  FakePynvml, the NVML stand-in for rehearsing the GPU job on a CPU (WIDTHWISE_FAKE_CUDA=1)
    workloads  workloads.toml -> prompts

The names below load on first use, so that building a command line does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "MIN_REPEATS": "config",
    "BenchConfig": "config",
    "add_arguments": "config",
    "base_result_path": "config",
    "config_from_args": "config",
    "parse_config": "config",
    "BenchOutcome": "run",
    "bench": "run",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
