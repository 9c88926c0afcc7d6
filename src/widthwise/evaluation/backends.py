"""The lm-eval backends widthwise hands evaluation to. Scaling past one device is lm-eval's job, not ours.

  hf, 1 device   lm-eval's HFLM wraps the in-memory (pruned) model: nothing is written to disk.
  hf, N devices  the pruned model is saved to a temporary folder and `torchrun --nproc_per_node N` runs
                 widthwise.evaluation.dataparallel. Each rank builds HFLM from the folder; accelerate (reads
                 torchrun's environment exactly as under `accelerate launch`, lm-eval's documented way)
                 gives every rank 1/N of the documents, and lm-eval gathers the outputs on rank 0.
  vllm           lm-eval's VLLM on the saved folder, with data_parallel_size = N (Llama-3.2-1B/3B fit on
                 one GPU, so replicas beat tensor parallelism). Needs CUDA and the vllm package.

The backend is a comparison setting (vLLM's kernels give other log-likelihoods than HF's); the device
count is provenance only, recorded beside it. A choice that cannot run here is refused before any model
is loaded, with the reason.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from widthwise.errors import WidthwiseError

BACKENDS = {
    "hf": "lm-eval's HFLM (transformers); N devices: data parallel through torchrun + accelerate",
    "vllm": "lm-eval's VLLM on a saved folder; N devices: vLLM data parallel replicas (CUDA only)",
}
DEFAULT_BACKEND = "hf"
# How HFLM computes log-likelihoods (widthwise.evaluation.hflm); both give lm-eval's numbers up to float
# summation order, so this is provenance and a cache-key input, not a comparison setting.
SCORING = {
    "prefix": "each shared context run once (prefix KV cache), logits only at scored positions",
    "plain": "lm-eval's HFLM._loglikelihood_tokens unchanged (batched, logits at every position)",
}
DEFAULT_SCORING = "prefix"


def add_arguments(p: Any, *, devices_default: str) -> None:
    """--device, --backend and --devices, the same for `widthwise eval` and `widthwise sweep`."""
    p.add_argument("--device", default="auto", help="torch device (default: cuda when available, else cpu)")
    p.add_argument(
        "--backend",
        default=DEFAULT_BACKEND,
        choices=list(BACKENDS),
        help="lm-eval backend: hf (transformers, default) or vllm (CUDA, needs vllm installed); recorded "
        "in each Result",
    )
    p.add_argument(
        "--scoring",
        default=DEFAULT_SCORING,
        choices=list(SCORING),
        help="how the hf backend scores log-likelihoods: prefix (default: each shared context once, "
        "logits only where scored) or plain (lm-eval's own path, the reference); recorded in each Result",
    )
    p.add_argument(
        "--devices",
        default=devices_default,
        help=f"GPUs one evaluation spreads over through the backend: a number, or auto for all visible "
        f"(default {devices_default})",
    )


def resolve_device(device: str) -> str:
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def cuda_devices() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def resolve_devices(backend: str, devices: int | str, device: str) -> int:
    """How many devices BACKEND spreads one evaluation over: "auto" is every visible GPU on cuda, 1 on cpu.

    Pure apart from counting GPUs, so the refusals are tested on CPU.
    """
    if backend not in BACKENDS:
        raise WidthwiseError(f"unknown backend {backend!r}; choose from {', '.join(BACKENDS)}")
    on_cuda = device.startswith("cuda")
    if str(devices) == "auto":
        n = max(1, cuda_devices()) if on_cuda else 1
    else:
        try:
            n = int(devices)
        except ValueError:
            raise WidthwiseError(f"--devices must be a number or auto, got {devices!r}") from None
        if n < 1:
            raise WidthwiseError(f"--devices must be at least 1, got {n}")
    if backend == "vllm" and not on_cuda:
        raise WidthwiseError(f"backend vllm needs a CUDA device; --device is {device!r}")
    if n > 1 and not on_cuda:
        # lm-eval shards documents across ranks only when it counts more than one GPU; on CPU every rank
        # would evaluate every document, which costs N times the work for the same numbers.
        raise WidthwiseError(f"--devices {n} needs --device cuda: lm-eval's data parallelism runs on GPUs")
    if on_cuda and n > (have := cuda_devices()):
        raise WidthwiseError(f"--devices {n} but only {have} CUDA device(s) are visible")
    if backend == "vllm" and importlib.util.find_spec("vllm") is None:
        raise WidthwiseError(
            "backend vllm: the vllm package is not installed here (pip install 'lm-eval[vllm]' on the runner)"
        )
    return n


def needs_folder(backend: str, devices: int) -> bool:
    """Only HFLM in one process can take a model object; every other path loads a saved folder."""
    return backend != "hf" or devices > 1


def describe(backend: str, devices: int) -> dict[str, Any]:
    """The provenance entry for how an evaluation was spread."""
    if backend == "hf" and devices == 1:
        how = "in-process HFLM on the in-memory model"
    elif backend == "hf":
        how = f"torchrun --nproc_per_node {devices}: HFLM per rank, documents sharded by accelerate"
    else:
        how = f"VLLM, data_parallel_size {devices}, tensor_parallel_size 1"
    return {"name": backend, "devices": devices, "how": how}


def vllm_args(folder: Path, *, dtype: str, devices: int, seed: int) -> dict[str, Any]:
    """batch_size auto: vLLM schedules its own batches; a fixed lm-eval chunk would only slow it."""
    return {
        "pretrained": str(folder),
        "dtype": dtype,
        "batch_size": "auto",
        "data_parallel_size": devices,
        "tensor_parallel_size": 1,
        "seed": seed,
    }


def make_vllm(folder: Path, *, dtype: str, devices: int, seed: int) -> Any:
    from lm_eval.models.vllm_causallms import VLLM

    return VLLM(**vllm_args(folder, dtype=dtype, devices=devices, seed=seed))


def launch_command(
    folder: Path,
    suite: str,
    tasks: list[str] | None,
    *,
    dtype: str,
    out: Path,
    nproc: int,
    allow_hub: bool = False,
    scoring: str = DEFAULT_SCORING,
) -> list[str]:
    """torchrun rather than `accelerate launch`: torch is always installed, and accelerate's Accelerator
    takes RANK/WORLD_SIZE/LOCAL_RANK from either launcher the same way."""
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={nproc}",
        "-m",
        "widthwise.evaluation.dataparallel",
        str(folder),
        "--suite",
        suite,
        "--dtype",
        dtype,
        "--scoring",
        scoring,
        "--out",
        str(out),
    ]
    if tasks:
        cmd += ["--tasks", ",".join(tasks)]
    if allow_hub:
        cmd.append("--allow-hub")
    return cmd


def run_data_parallel(
    folder: Path,
    suite: str,
    tasks: list[str] | None,
    *,
    dtype: str,
    nproc: int,
    workdir: Path,
    allow_hub: bool = False,
    scoring: str = DEFAULT_SCORING,
    env: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Run the dataparallel worker on NPROC ranks and return rank 0's metrics, headline and samples."""
    out = workdir / "parts.json"
    cmd = launch_command(
        folder, suite, tasks, dtype=dtype, out=out, nproc=nproc, allow_hub=allow_hub, scoring=scoring
    )
    proc = subprocess.run(cmd, env={**os.environ, **(env or {})}, capture_output=True, text=True)
    if proc.returncode != 0 or not out.exists():
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
        raise WidthwiseError(f"data-parallel evaluation failed (exit {proc.returncode}):\n{tail}")
    return json.loads(out.read_text())
