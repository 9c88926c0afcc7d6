"""constraints/cpu.txt pins the environment the CPU baselines were measured in; constraints/gpu.txt the GPU
runners' (torch, vLLM, transformers and lm-eval resolved together by tools/lock_gpu.py).

The regression gate refuses a fresh Result made under another torch, transformers or lm-eval than its
stored baseline. Unpinned, a clean clone installs whatever was released last, and CI goes red for a
reason no change in the repository made (transformers 5.25.0 did exactly that to 5.24.0 baselines).
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "constraints" / "cpu.txt"
GPU_LOCK = ROOT / "constraints" / "gpu.txt"
STORED = ROOT / "baselines" / "measured" / "cpu"


def _name(requirement: str) -> str:
    return re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def _pins(lock: Path = LOCK) -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in lock.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name, sep, version = line.partition("==")
        assert sep, f"{lock.name}: {line!r} is not an exact pin"
        assert _name(name) not in pins, f"{lock.name} pins {name} twice"
        pins[_name(name)] = version
    return pins


def _wanted(*extras: str) -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return project["dependencies"] + [r for e in extras for r in project["optional-dependencies"][e]]


def test_every_dependency_is_pinned_exactly():
    missing = sorted({_name(r) for r in _wanted("test", "lint")} - set(_pins()))
    assert not missing, f"constraints/cpu.txt does not pin {missing}"


def test_the_gpu_lock_pins_every_dependency_and_satisfies_it():
    from packaging.requirements import Requirement

    pins = _pins(GPU_LOCK)
    for r in map(Requirement, _wanted("gpu", "test")):
        name = _name(r.name)
        assert name in pins, f"constraints/gpu.txt does not pin {r.name}"
        assert r.specifier.contains(pins[name], prereleases=True), f"{r} is not met by {name}=={pins[name]}"
    # torch, vLLM, transformers and lm-eval resolved together; lm-eval is the CPU lock's (one harness).
    assert pins["torch"] == "2.14.0" and pins["vllm"] == "0.33.0"
    assert pins["lm-eval"] == _pins()["lm-eval"]


def test_the_gpu_lock_leaves_torchs_cuda_runtime_to_the_build_the_driver_needs():
    # A pinned CUDA 13 runtime (cuda-toolkit, nvidia-cublas, ...) would refuse torch's CUDA 12.9 build on a
    # 550-575 driver; torch pins its own runtime exactly, so the lock names none of it.
    pins = _pins(GPU_LOCK)
    runtime = sorted(n for n in pins if re.match(r"(cuda-|nvidia-(?!ml-py$)|nccl)", n))
    assert runtime == [], f"constraints/gpu.txt pins CUDA runtime packages {runtime}"


def test_pins_match_the_environment_of_every_stored_cpu_baseline():
    pins = _pins()
    results = sorted(STORED.glob("*.json"))
    assert results, "no stored CPU baseline to compare the pins with"
    for path in results:
        recorded = json.loads(path.read_text())["provenance"]["versions"]
        for package in ("torch", "transformers", "lm_eval"):
            stored = recorded[package].split("+", 1)[0]
            pinned = pins[_name(package)]
            assert stored == pinned, (
                f"{path.name} was measured with {package} {stored}, constraints/cpu.txt pins {pinned}: "
                "move both together (re-store with `widthwise baseline update`)"
            )


def test_every_session_installs_with_a_lock():
    nox_file = (ROOT / "noxfile.py").read_text()
    assert '"constraints" / "cpu.txt"' in nox_file and '"constraints" / "gpu.txt"' in nox_file
    installs = re.findall(r"session\.install\(([^)]*)\)", nox_file)
    # Every install of the project or a linter carries a lock: the CPU one, or on a GPU machine the GPU
    # one (after torch's CUDA build for the driver, which the GPU lock leaves to the workflow).
    project_installs = [args for args in installs if '".[' in args or 'f".[' in args or "ruff" in args]
    assert project_installs
    for args in project_installs:
        locks = [c for c in ("CPU_CONSTRAINTS", "GPU_CONSTRAINTS") if c in args]
        assert len(locks) == 1, f"session.install({args}) installs without constraints/cpu.txt or gpu.txt"
        if "gpu" in args:
            assert locks == ["GPU_CONSTRAINTS"], f"session.install({args}): the gpu extra needs the GPU lock"
