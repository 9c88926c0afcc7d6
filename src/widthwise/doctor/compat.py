"""Which torch CUDA build an NVIDIA driver runs, and the PyTorch wheel index to install for it.

    python tools/torch_index.py [--driver VERSION]    (before widthwise is installed; gpu.yml uses it)

Standard library only (and widthwise.errors), so the tool can run in a bare interpreter.

The driver floors are NVIDIA's "CUDA Minor Version Compatibility", Table 1 (CUDA Toolkit 11.x, 12.x and
13.x driver version ranges, https://docs.nvidia.com/deploy/cuda-compatibility/minor-version-compatibility.html):
CUDA 13.x needs driver >= 580; CUDA 12.x runs on >= 525 (below 580 through minor-version compatibility,
on newer drivers through backward compatibility); CUDA 11.x on >= 450. So a CUDA 13 torch, what PyPI
serves by default today, does not initialise on the 550-575 drivers many runners have, and a CUDA 12
build does. The CUDA 12 build is cu129 because vLLM's own install instructions use it ("Install vLLM with
CUDA 12.9: pip install vllm --extra-index-url https://download.pytorch.org/whl/cu129",
vllm-project/vllm docs/getting_started/installation/gpu.cuda.inc.md). PyTorch publishes each build on its
own index named by the CUDA version, +cu130 builds on https://download.pytorch.org/whl/cu130 (uv's
PyTorch guide, docs.astral.sh/uv/guides/integration/pytorch).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys

from widthwise.errors import WidthwiseError

INDEX_URL = "https://download.pytorch.org/whl/{tag}"
# CUDA major version -> the lowest driver (major) that runs any toolkit of that family (see above).
MIN_DRIVER = {13: 580, 12: 525, 11: 450}
# The build to install, newest first: (CUDA major, wheel tag).
BUILDS = ((13, "cu130"), (12, "cu129"))


def parse_driver(text: str) -> tuple[int, ...]:
    """'550.54.15' -> (550, 54, 15); WidthwiseError for anything that is not a dotted version."""
    parts = text.strip().split(".")
    try:
        numbers = tuple(int(p) for p in parts)
    except ValueError:
        numbers = ()
    if not numbers or any(n < 0 for n in numbers):
        raise WidthwiseError(f"not an NVIDIA driver version: {text.strip()!r} (expected e.g. 550.54.15)")
    return numbers


def cuda_major(cuda: str) -> int:
    """'12.9' -> 12 (torch.version.cuda's spelling)."""
    try:
        return int(cuda.strip().split(".")[0])
    except ValueError:
        raise WidthwiseError(f"not a CUDA version: {cuda!r} (expected e.g. 12.9)") from None


def min_driver(cuda: str) -> int | None:
    """The lowest driver major that runs a build for CUDA `cuda`; None for a family not in the table."""
    return MIN_DRIVER.get(cuda_major(cuda))


def driver_runs(driver: str, cuda: str) -> bool | None:
    """Whether a build for CUDA `cuda` runs on `driver`; None when the family is unknown here."""
    floor = min_driver(cuda)
    return None if floor is None else parse_driver(driver)[0] >= floor


def torch_build(driver: str) -> tuple[int, str]:
    """(CUDA major, wheel tag) of the newest build `driver` runs; WidthwiseError when it runs none."""
    major = parse_driver(driver)[0]
    for cuda, tag in BUILDS:
        if major >= MIN_DRIVER[cuda]:
            return cuda, tag
    oldest = BUILDS[-1][0]
    raise WidthwiseError(
        f"NVIDIA driver {driver.strip()} is older than any torch build here needs (CUDA {oldest}.x needs "
        f">= {MIN_DRIVER[oldest]}): upgrade the driver to >= {MIN_DRIVER[oldest]} "
        f"(>= {MIN_DRIVER[BUILDS[0][0]]} for CUDA {BUILDS[0][0]})"
    )


def torch_index(driver: str) -> str:
    """The PyTorch wheel index for `driver`: CUDA 13 where the driver allows it, else CUDA 12.9."""
    return INDEX_URL.format(tag=torch_build(driver)[1])


def smi_driver() -> str:
    """The driver version as nvidia-smi reports it (every board shares one driver: the first line)."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        raise WidthwiseError("nvidia-smi not found: no NVIDIA driver on this machine (or not on PATH)")
    try:
        out = subprocess.run(
            [exe, "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    except subprocess.TimeoutExpired:
        raise WidthwiseError("nvidia-smi did not answer within 60 s") from None
    lines = [line.strip() for line in out.stdout.splitlines() if line.strip()]
    if out.returncode != 0 or not lines:
        said = (out.stderr or out.stdout).strip().splitlines()
        raise WidthwiseError(f"nvidia-smi failed: {said[-1] if said else f'exit {out.returncode}'}")
    return lines[0]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="torch_index.py",
        description="Print the PyTorch wheel index for this machine's NVIDIA driver (cu130 for a "
        "driver >= 580, cu129 for >= 525).",
    )
    p.add_argument("--driver", help="a driver version instead of asking nvidia-smi (e.g. 550.54.15)")
    args = p.parse_args(argv)
    try:
        print(torch_index(args.driver if args.driver is not None else smi_driver()))
    except WidthwiseError as e:
        print(f"torch_index.py: error: {e}", file=sys.stderr)
        return 2
    return 0
