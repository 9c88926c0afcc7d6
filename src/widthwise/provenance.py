"""Facts about the code and libraries that produced a file, recorded so results can be traced and compared."""

from __future__ import annotations

import functools
import importlib.metadata
import subprocess
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


def versions() -> dict[str, str | None]:
    return {
        "widthwise": widthwise.__version__,
        "widthwise_git_sha": git_sha(),
        "torch": version("torch"),
        "transformers": version("transformers"),
        "lm_eval": version("lm_eval"),
    }
