"""Facts about the code and libraries that produced a file, recorded so results can be traced and compared."""

from __future__ import annotations

import functools
import importlib.metadata
import subprocess
import sys
from pathlib import Path

import widthwise


@functools.cache
def git_sha() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(widthwise.__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def cpu_capability() -> str | None:
    """torch's CPU kernel level (DEFAULT, AVX2, AVX512, ...): with torch's version it decides the fp32
    summation order, so per-document scores reproduce only where both match. None when torch is not
    loaded (the paper's transcription never loads it)."""
    torch = sys.modules.get("torch")
    try:
        return str(torch.backends.cpu.get_cpu_capability()) if torch is not None else None
    except (AttributeError, RuntimeError):
        return None


def versions() -> dict[str, str | None]:
    return {
        "widthwise": widthwise.__version__,
        "widthwise_git_sha": git_sha(),
        "torch": version("torch"),
        "torch_cpu_capability": cpu_capability(),
        "transformers": version("transformers"),
        "lm_eval": version("lm_eval"),
    }
