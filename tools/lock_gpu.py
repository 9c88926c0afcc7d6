"""Write constraints/gpu.txt: the GPU runners' environment (torch, vLLM, transformers, lm-eval and every
transitive package) resolved together, so a runner installs what the GPU baselines were made with, not
whatever PyPI serves that night.

    python tools/lock_gpu.py            resolve (pip --dry-run --report: metadata only, no wheels) and write
    python tools/lock_gpu.py --check    resolve again and fail if constraints/gpu.txt differs

Resolved for CPython 3.11 on Linux x86_64 (the runners' setup-python), against PyPI. The packages that
belong to one CUDA build of torch (its CUDA runtime wheels: cuda-toolkit, nvidia-*, the cu12/cu13 NCCL and
cuDNN builds, and flashinfer's CUDA bindings) are left out: torch pins its own runtime exactly, and the
workflow picks torch's build by the driver (tools/torch_index.py), so one file serves both builds.
Run it with a recent pip (>= 23.1, `--use-feature=fast-deps` reads metadata by HTTP range requests).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "constraints" / "gpu.txt"
# What the lock is for; everything else follows from these and from pyproject's dependencies.
TOP = ["vllm==0.33.0", "lm-eval[ifeval]==0.4.13"]
# Chosen by the torch build (CUDA 12.9 or 13.0), never by the lock.
CUDA_BUILD = re.compile(r"^(cuda-|nvidia-(?!ml-py$)|nccl)", re.I)

HEADER = """\
# The GPU runners' environment, resolved together (tools/lock_gpu.py writes it; do not edit by hand).
# Resolved for CPython 3.11 on Linux x86_64 against PyPI, from: {top} and pyproject's
# dependencies with the gpu and test extras.
#
# Why these versions: vLLM {vllm} is the newest vLLM that installs from PyPI today (0.34.0 pins
# flashinfer-python==0.7.3, which PyPI does not carry); it pins torch {torch}, and the newest
# transformers it accepts is {transformers}. lm-eval is the CPU lock's.
#
# torch's CUDA build is NOT in this file: torch pins its own CUDA runtime wheels, and the workflow picks
# the build by the driver, before installing with -c constraints/gpu.txt:
#   python tools/torch_index.py  ->  the index of torch {torch}'s build for this driver (docs/gpu.md)
#   pip install torch=={torch} --index-url "$INDEX"
#   pip install -e '.[gpu,test]' -c constraints/gpu.txt
# `nox -s gpu-lock` resolves this file on both builds' indexes with pip --dry-run (no wheel downloads).
"""


def resolve(extra_args: list[str]) -> dict[str, str]:
    """{name: version} pip would install for TOP plus this project with [gpu,test], from metadata only."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--dry-run",
            "--ignore-installed",
            "--use-feature=fast-deps",
            "--quiet",
            "--report",
            str(report),
            *TOP,
            f"{ROOT}[gpu,test]",
            *extra_args,
        ]
        subprocess.run(cmd, check=True)
        items = json.loads(report.read_text())["install"]
    return {
        i["metadata"]["name"]: i["metadata"]["version"]
        for i in items
        if i["metadata"]["name"].lower() != "widthwise"
    }


def render(pins: dict[str, str]) -> str:
    kept = {n: v for n, v in pins.items() if not CUDA_BUILD.match(n)}
    low = {n.lower(): v for n, v in kept.items()}
    head = HEADER.format(
        top=", ".join(TOP), vllm=low["vllm"], torch=low["torch"], transformers=low["transformers"]
    )
    return head + "".join(f"{n}=={v}\n" for n, v in sorted(kept.items(), key=lambda kv: kv[0].lower()))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="fail if constraints/gpu.txt is not what resolves")
    args, extra = p.parse_known_args(argv)
    text = render(resolve(extra))
    if args.check:
        if LOCK.read_text() != text:
            print(f"{LOCK} is not what resolves today; run python tools/lock_gpu.py", file=sys.stderr)
            return 1
        print(f"{LOCK}: resolves as written")
        return 0
    LOCK.write_text(text)
    print(f"wrote {LOCK} ({text.count(chr(10)) - HEADER.count(chr(10))} pins)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
