"""The lm-eval backends widthwise hands evaluation to. Scaling past one device is lm-eval's job, not ours.

  hf, 1 device   lm-eval's HFLM wraps the in-memory (pruned) model: nothing is written to disk.
  hf, N devices  the pruned model is saved to a temporary folder and `torchrun --nproc_per_node N` runs
                 widthwise.evaluation.worker. Each rank builds HFLM from the folder; accelerate (reads
                 torchrun's environment exactly as under `accelerate launch`, lm-eval's documented way)
                 gives every rank 1/N of the documents, and lm-eval gathers the outputs on rank 0.
  vllm           lm-eval's VLLM on the saved folder, in a worker process of its own (so its GPU memory is
                 freed when it ends), with data_parallel_size = N (Llama-3.2-1B/3B fit on one GPU, so
                 replicas beat tensor parallelism). Needs CUDA and the vllm package.
  auto           (the default) on a GPU: generation on vLLM, log-likelihood on HF. Greedy generation is
                 where HF eager spends most of a paper sweep (IFEval, GSM8K), and vLLM's continuous
                 batching is many times faster there; log-likelihoods stay on HF, the paper's own path.
                 On a CPU: hf.

Which backend ran each task is a comparison setting (vLLM's kernels give other log-likelihoods and, on
near-ties, other greedy tokens than HF's), recorded per task in the Result's settings; the device count is
provenance only. A choice that cannot run here is refused before any model is loaded, with the reason.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from widthwise.errors import WidthwiseError

BACKENDS = {
    "auto": "on a GPU: generation on vLLM, log-likelihood on HF; on a CPU: hf",
    "hf": "lm-eval's HFLM (transformers); N devices: data parallel through torchrun + accelerate",
    "vllm": "lm-eval's VLLM on a saved folder; N devices: vLLM data parallel replicas (CUDA only)",
}
DEFAULT_BACKEND = "auto"
KINDS = ("loglikelihood", "generate")
# How HFLM computes log-likelihoods (widthwise.evaluation.hflm); both give lm-eval's numbers up to float
# summation order, so this is provenance and a cache-key input, not a comparison setting.
SCORING = {
    "prefix": "each shared context run once (prefix KV cache), logits only at scored positions",
    "plain": "lm-eval's HFLM._loglikelihood_tokens unchanged (batched, logits at every position)",
}
DEFAULT_SCORING = "prefix"
GPU_LOCK_HINT = "install the GPU lock: pip install -e '.[gpu]' -c constraints/gpu.txt (docs/gpu.md)"


def add_arguments(p: Any, *, devices_default: str) -> None:
    """--device, --backend and --devices, the same for `widthwise eval` and `widthwise sweep`."""
    p.add_argument("--device", default="auto", help="torch device (default: cuda when available, else cpu)")
    p.add_argument(
        "--backend",
        default=DEFAULT_BACKEND,
        choices=list(BACKENDS),
        help="lm-eval backend: auto (default: on a GPU generation on vLLM and log-likelihood on HF; hf on a "
        "CPU), hf (transformers, eager) or vllm (CUDA, needs vllm installed); recorded per task in each "
        "Result",
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
        help=f"GPUs one evaluation spreads over through the backend: a number, or auto for the GPUs "
        f"CUDA_VISIBLE_DEVICES names (1 when it is unset) (default {devices_default})",
    )


def per_kind(backend: str, device: Any) -> dict[str, str]:
    """Which backend runs each request kind ("loglikelihood", "generate") for `--backend` on `device`."""
    if backend not in BACKENDS:
        raise WidthwiseError(f"unknown backend {backend!r}; choose from {', '.join(BACKENDS)}")
    if backend == "auto":
        return {"loglikelihood": "hf", "generate": "vllm" if device.kind == "cuda" else "hf"}
    return dict.fromkeys(KINDS, backend)


def mix_label(kinds: Mapping[str, str]) -> str:
    """settings.backend: "hf", "vllm", or "hf+vllm" when log-likelihood and generation differ."""
    used = sorted(set(kinds.values()))
    return used[0] if len(used) == 1 else "+".join(used)


def visible_cuda_devices(env: Mapping[str, str] | None = None) -> int | None:
    """How many GPUs CUDA_VISIBLE_DEVICES hands this process, or None when it is unset."""
    value = (os.environ if env is None else env).get("CUDA_VISIBLE_DEVICES")
    if value is None:
        return None
    return len([d for d in value.split(",") if d.strip() and d.strip() != "-1"])


def resolve_devices(backend: str, devices: int | str, device: Any) -> int:
    """How many devices one evaluation spreads over. `auto` is the GPUs CUDA_VISIBLE_DEVICES hands us
    (the runner's allocation), else 1: on a shared host, every visible GPU is not ours to take.

    `device` is a widthwise.device.Device. Pure apart from what the Device counts, so the refusals are
    tested on CPU (with FakeCudaDevice for the CUDA cases)."""
    kinds = per_kind(backend, device)
    on_cuda = device.kind == "cuda"
    if str(devices) == "auto":
        n = (visible_cuda_devices() or 1) if on_cuda else 1
    else:
        try:
            n = int(devices)
        except ValueError:
            raise WidthwiseError(f"--devices must be a number or auto, got {devices!r}") from None
        if n < 1:
            raise WidthwiseError(f"--devices must be at least 1, got {n}")
    uses_vllm = "vllm" in kinds.values()
    if uses_vllm and not on_cuda:
        raise WidthwiseError(f"backend vllm needs a CUDA device; --device is {device.label!r}")
    if n > 1 and not on_cuda:
        # lm-eval shards documents across ranks only when it counts more than one GPU; on CPU every rank
        # would evaluate every document, which costs N times the work for the same numbers.
        raise WidthwiseError(f"--devices {n} needs --device cuda: lm-eval's data parallelism runs on GPUs")
    if on_cuda and n > (have := device.visible_count()):
        raise WidthwiseError(f"--devices {n} but only {have} CUDA device(s) are visible")
    if uses_vllm and device.fake:
        raise WidthwiseError(
            f"backend {backend} runs {'generation' if backend == 'auto' else 'every task'} on vLLM, which "
            f"needs a real GPU ({device.fake.split(':')[0]} is a fake); pass --backend hf"
        )
    if uses_vllm and importlib.util.find_spec("vllm") is None:
        what = "generation" if backend == "auto" else "every task"
        raise WidthwiseError(
            f"backend {backend} runs {what} on vLLM, which is not installed here: {GPU_LOCK_HINT}, "
            "or pass --backend hf"
        )
    return n


def needs_folder(backend: str, devices: int) -> bool:
    """Only HFLM in one process can take a model object; every other path loads a saved folder."""
    return backend != "hf" or devices > 1


def describe(backend: str, devices: int, tasks: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The provenance entry for how an evaluation was spread (`tasks`: each family's backend)."""
    ways = {
        "hf": "in-process HFLM on the in-memory model"
        if devices == 1
        else f"torchrun --nproc_per_node {devices}: HFLM per rank, documents sharded by accelerate",
        "vllm": f"VLLM in a worker process, data_parallel_size {devices}, tensor_parallel_size 1",
    }
    used = sorted(set((tasks or {}).values())) or [b for b in backend.split("+") if b in ways]
    how = "; ".join(f"{b}: {ways[b]}" for b in used) if len(used) > 1 else ways[used[0]]
    entry: dict[str, Any] = {"name": backend, "devices": devices, "how": how}
    if tasks is not None:
        entry["tasks"] = dict(sorted(tasks.items()))
    return entry


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


def worker_command(
    folder: Path,
    suite: str,
    tasks: list[str],
    *,
    backend: str,
    dtype: str,
    checkpoints: Path,
    key: str,
    devices: int = 1,
    limit: int | None = None,
    allow_hub: bool = False,
    scoring: str = DEFAULT_SCORING,
) -> list[str]:
    """The worker (widthwise.evaluation.worker) for `tasks` on `backend`. hf over N devices runs under
    torchrun rather than `accelerate launch`: torch is always installed, and accelerate's Accelerator
    takes RANK/WORLD_SIZE/LOCAL_RANK from either launcher the same way. vLLM spreads itself."""
    if backend == "hf":
        launcher = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            f"--nproc_per_node={devices}",
        ]
    else:
        launcher = [sys.executable]
    cmd = [
        *launcher,
        "-m",
        "widthwise.evaluation.worker",
        str(folder),
        "--suite",
        suite,
        "--tasks",
        ",".join(tasks),
        "--backend",
        backend,
        "--devices",
        str(devices),
        "--dtype",
        dtype,
        "--scoring",
        scoring,
        "--checkpoints",
        str(checkpoints),
        "--key",
        key,
    ]
    if limit is not None:
        cmd += ["--limit", str(limit)]
    if allow_hub:
        cmd.append("--allow-hub")
    return cmd


def run_worker(cmd: list[str], *, env: Mapping[str, str] | None = None) -> None:
    """Run a worker to the end; its parts are in its checkpoint folder. A failure names the worker's last
    lines (its finished families stay checkpointed)."""
    proc = subprocess.run(cmd, env={**os.environ, **(env or {})}, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
        backend = cmd[cmd.index("--backend") + 1]
        raise WidthwiseError(f"{backend} evaluation worker failed (exit {proc.returncode}):\n{tail}")
