"""Rehearse the whole GPU job (.github/workflows/gpu.yml) on CPU: its plan, every shard's exact command,
then the aggregate job's report and check. `nox -s gpu-rehearsal` runs it; ci.yml runs that session.

    python tools/gpu_rehearsal.py [--out runs/gpu-rehearsal] [--limit 2] [--jobs N]

What stands in for what a GPU runner has (each at the boundary this machine lacks, nothing else):
  * the GPU and its energy counter: WIDTHWISE_FAKE_CUDA=1 (widthwise.device's FakeCudaDevice, and
    widthwise.fakes.FakePynvml for NVML), so `--device cuda` resolves and the CUDA branch of every stage runs;
  * the gated weights: tiny random models of the real architecture class (LlamaForCausalLM), each keeping
    its real model's MLP expansion ratio, with the embedded default model's tokenizer, in folders
    WIDTHWISE_MODEL_STANDINS/<org>--<name> that the hub ids resolve to;
  * the dataset hub (WikiText, MuSR): tests/hub_standins.write_mirror, read through WIDTHWISE_HUB_MIRROR;
    the hub itself is not allowed (gpu.yml sets WIDTHWISE_ALLOW_HUB=1), so GSM8K runs from its offline
    copy, with its few-shot deviation recorded, instead of lm-eval's hub task.

The plan is gpu.yml's own call (`widthwise sweep --dry-run --json --gpu h100`) and every shard runs the
matrix's command word for word, with this suffix appended (argparse takes the last of a repeated option):

    --limit N              a few documents per task family, not the full splits
    --backend hf           vLLM does not run on CPU; `auto` would put generation on it
    --bench-args ARGS      a short bench (BENCH_ARGS below) instead of the paper's workloads

and `widthwise` replaced by this interpreter's `python -m widthwise`. It exits non-zero, with one line
saying which, when a shard crashes, when a planned shard's Results are missing, when the plan or the
Results lack the Instruct model, or when check exits 2 (bad input). Check exiting 1 is expected and
printed: tiny random models do not show the paper's dichotomy.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PLAN_COMMAND = ("widthwise", "sweep", "--dry-run", "--json", "--gpu", "h100")
# Short enough for 18 shards on 2 cores in minutes; repeats stay at the bench's floor of 5.
# Batch sizes 1 and 8, as the claims read them (bench:b8/throughput_tok_s): a rehearsal with other cells
# would leave those claims without evidence.
BENCH_ARGS = (
    "--workloads mmlu --prompts 8 --new-tokens 3 --batch-sizes 1,8 --repeats 5 --warmup 0 "
    "--idle-s 0.2 --min-window-s 0"
)
INSTRUCT = "Instruct"
# The real models' shapes that matter here: the MLP expansion ratio (intermediate / hidden) and the
# architecture class; everything else is made small. Llama-3.2-1B: 8192 / 2048 = 4.0; -3B: 8192 / 3072.
STANDIN_SHAPES = {
    "meta-llama/Llama-3.2-1B": {"hidden_size": 64, "intermediate_size": 256},
    "meta-llama/Llama-3.2-1B-Instruct": {"hidden_size": 64, "intermediate_size": 256},
    "meta-llama/Llama-3.2-3B": {"hidden_size": 96, "intermediate_size": 256},
    "meta-llama/Llama-3.2-3B-Instruct": {"hidden_size": 96, "intermediate_size": 256},
}
REAL_RATIO = {"1B": 8192 / 2048, "3B": 8192 / 3072}


class RehearsalFailed(Exception):
    """One line: what failed."""


# -- pure parts (tests/unit/test_gpu_rehearsal.py) -----------------------------------------------------


def rehearsal_command(command: str, *, limit: int, bench_args: str, python: str) -> list[str]:
    """A matrix command as the rehearsal runs it: word for word, `widthwise` as `python -m widthwise`,
    and the documented suffix appended."""
    words = shlex.split(command)
    if words[:1] != ["widthwise"]:
        raise RehearsalFailed(f"the plan's command does not start with `widthwise`: {command!r}")
    suffix = ["--limit", str(limit), "--backend", "hf"]
    if "--no-bench" not in words:
        suffix += ["--bench-args", bench_args]
    return [python, "-m", "widthwise", *words[1:], *suffix]


def check_matrix(matrix: Mapping) -> list[dict]:
    """The plan's entries; refuses an empty plan or one without the Instruct model."""
    include = list(matrix.get("include") or [])
    if not include:
        raise RehearsalFailed("the plan job's matrix has no shards")
    if not any(INSTRUCT in e["model"] for e in include):
        raise RehearsalFailed("the plan has no Instruct-model shard (gpujob.toml must sweep 1B-Instruct)")
    return include


def expected_results(entry: Mapping, bench: bool = True) -> list[str]:
    """The Result files a finished shard leaves under its out folder (widthwise.sweep.result_path)."""
    out = [f"{entry['out']}/results/eval/{entry['config']}.json"]
    # The plan says which shards are benched (gpujob.toml's bench widths; the base never is).
    if (
        bench
        and entry.get("bench", entry["config"] != "base")
        and "--no-bench" not in shlex.split(entry["command"])
    ):
        out += [
            f"{entry['out']}/results/bench/{entry['config']}.json",
            f"{entry['out']}/results/bench/{entry['config']}.base.json",
        ]
    return out


def missing_results(workdir: Path, include: Sequence[Mapping]) -> list[str]:
    return [p for e in include for p in expected_results(e) if not (workdir / p).is_file()]


def instruct_present(workdir: Path, include: Sequence[Mapping]) -> bool:
    return any(INSTRUCT in e["model"] and (workdir / expected_results(e)[0]).is_file() for e in include)


def missing_verdicts(claims: Mapping) -> list[str]:
    """check's `missing` verdicts (--json): evidence a claim or the plan needs that no Result holds. On
    tiny random models a claim may fail; none may lack its evidence, or the real job would too."""
    return [v["message"] for v in claims.get("verdicts", []) if v.get("verdict") == "missing"]


def check_verdict(rc: int) -> str:
    """What check's exit code means for the rehearsal: 0 and 1 (a claim fails on tiny random models)
    pass, 2 (bad input: unreadable or incomparable Results, a broken plan) and anything else fail."""
    if rc == 0:
        return "check: every claim holds (unexpected on tiny random models, but not a failure)"
    if rc == 1:
        return "check: exit 1 as expected (tiny random models do not show the dichotomy)"
    raise RehearsalFailed(f"check exited {rc}: the merged Results are not checkable (bad input)")


# -- the stand-ins -------------------------------------------------------------------------------------


def write_standins(dest: Path, models: Sequence[str], log=print) -> Path:
    """A tiny random LlamaForCausalLM per model in dest/<org>--<name>, with the default model's tokenizer."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from widthwise.models import DEFAULT_MODEL, resolve

    tokenizer = AutoTokenizer.from_pretrained(str(resolve(DEFAULT_MODEL)))
    for i, model in enumerate(sorted(set(models))):
        if model not in STANDIN_SHAPES:
            raise RehearsalFailed(f"no stand-in shape for {model} (add it to STANDIN_SHAPES)")
        shape = STANDIN_SHAPES[model]
        size = "3B" if "3B" in model else "1B"
        ratio = shape["intermediate_size"] / shape["hidden_size"]
        assert abs(ratio - REAL_RATIO[size]) < 1e-9, (model, ratio)
        torch.manual_seed(1234 + i)
        config = LlamaConfig(
            vocab_size=len(tokenizer),
            num_hidden_layers=2,
            num_attention_heads=4 if size == "1B" else 6,
            num_key_value_heads=2,
            max_position_embeddings=4096,
            rope_theta=500000.0,
            tie_word_embeddings=True,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            **shape,
        )
        folder = dest / model.replace("/", "--")
        LlamaForCausalLM(config).save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        log(f"rehearsal: stand-in {model} -> {folder} (hidden {shape['hidden_size']}, ratio {ratio:.2f})")
    return dest


def write_hub_mirror(dest: Path) -> Path:
    sys.path.insert(0, str(ROOT / "tests"))
    try:
        from hub_standins import write_mirror
    except ImportError:
        raise RehearsalFailed(
            "tests/hub_standins.py (write_mirror) is not here: the WikiText and MuSR stand-ins are needed"
        ) from None
    finally:
        sys.path.pop(0)
    write_mirror(dest)
    return dest


# -- the run ---------------------------------------------------------------------------------------------


@dataclass
class Ran:
    entry: dict
    rc: int
    seconds: float
    log: Path


def run_shard(entry: dict, argv: list[str], workdir: Path, env: Mapping[str, str]) -> Ran:
    log = workdir / "logs" / f"{entry['artifact']}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with log.open("w") as f:
        f.write("$ " + shlex.join(argv) + "\n")
        f.flush()
        rc = subprocess.run(argv, cwd=workdir, env=dict(env), stdout=f, stderr=subprocess.STDOUT).returncode
    return Ran(entry, rc, time.perf_counter() - t0, log)


def tail(path: Path, n: int = 15) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-n:])


MARKER = ".gpu-rehearsal"  # marks a folder as the rehearsal's own, so that a rerun may replace it


def fresh_workdir(path: Path, log=print) -> Path:
    """An empty work folder: a stale shard would resume instead of running. Only a folder this tool
    made (it holds MARKER) is replaced; any other non-empty folder is refused."""
    if path.exists() and any(path.iterdir()):
        if not (path / MARKER).is_file():
            raise RehearsalFailed(
                f"{path} is not empty and is not a rehearsal's folder; choose another --out"
            )
        log(f"rehearsal: replacing the previous rehearsal in {path}")
        shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)
    (path / MARKER).write_text("made by tools/gpu_rehearsal.py\n")
    return path


def rehearse(workdir: Path, limit: int, jobs: int, log=print) -> str:
    fresh_workdir(workdir, log)
    env = {
        **os.environ,
        "WIDTHWISE_FAKE_CUDA": "1",
        "WIDTHWISE_MODEL_STANDINS": str(write_standins(workdir / "standins", list(STANDIN_SHAPES), log)),
        "WIDTHWISE_HUB_MIRROR": str(write_hub_mirror(workdir / "hub")),
        "WIDTHWISE_CACHE": str(workdir / "cache"),  # no cached Result may stand in for a run
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "WIDTHWISE_THREADS": "1",
    }
    # gpu.yml allows the hub (WIDTHWISE_ALLOW_HUB=1); here nothing may be fetched: the pinned hub tasks
    # read the mirror, and GSM8K its offline copy (its few-shot deviation recorded in the Result).
    for var in ("HF_TOKEN", "WIDTHWISE_ALLOW_HUB"):
        env.pop(var, None)
    python = sys.executable

    t0 = time.perf_counter()
    plan = subprocess.run(
        [python, "-m", "widthwise", *PLAN_COMMAND[1:]], cwd=workdir, env=env, capture_output=True, text=True
    )
    if plan.returncode != 0:
        raise RehearsalFailed(f"the plan step exited {plan.returncode}: {plan.stderr.strip()[-300:]}")
    include = check_matrix(json.loads(plan.stdout))
    log(f"rehearsal: plan: {len(include)} shards ({time.perf_counter() - t0:.0f} s)")

    argvs = {
        e["artifact"]: rehearsal_command(e["command"], limit=limit, bench_args=BENCH_ARGS, python=python)
        for e in include
    }
    crashed: list[Ran] = []
    with cf.ThreadPoolExecutor(max_workers=jobs) as pool:
        running = {pool.submit(run_shard, e, argvs[e["artifact"]], workdir, env): e for e in include}
        for fut in cf.as_completed(running):
            if fut.cancelled():
                continue
            ran = fut.result()
            state = "ok" if ran.rc == 0 else f"EXIT {ran.rc}"
            log(
                f"rehearsal: {ran.entry['slug']} {ran.entry['shard']} ({ran.entry['config']}): {state} in "
                f"{ran.seconds:.0f} s (planned {ran.entry['estimated_hours']} h on h100)"
            )
            if ran.rc != 0:
                crashed.append(ran)
                # A crash fails the rehearsal: the shards not yet started would only delay saying so.
                for other in running:
                    other.cancel()
    if crashed:
        first = crashed[0]
        log(tail(first.log))
        raise RehearsalFailed(
            f"shard {first.entry['slug']} {first.entry['shard']} ({first.entry['config']}) crashed with "
            f"exit {first.rc} ({len(crashed)} crashed; shards not yet started were not run): see {first.log}"
        )
    gone = missing_results(workdir, include)
    if gone:
        raise RehearsalFailed(
            f"{len(gone)} planned Result(s) missing after every shard succeeded, e.g. {gone[0]}"
        )
    if not instruct_present(workdir, include):
        raise RehearsalFailed("no Instruct-model Result among the shards")

    # The aggregate job: one tree of every shard's folder (the artifacts merged), report, check.
    roots = sorted({e["root"] for e in include})
    report = subprocess.run(
        [python, "-m", "widthwise", "report", *roots, "--out", "report"],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
    )
    if report.returncode != 0:
        raise RehearsalFailed(f"report exited {report.returncode}: {report.stderr.strip()[-300:]}")
    (workdir / "report").mkdir(exist_ok=True)
    check = subprocess.run(
        [python, "-m", "widthwise", "check", *roots, "--json"],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
    )
    (workdir / "report" / "claims.json").write_text(check.stdout)
    if check.returncode not in (0, 1):
        log(check.stderr.strip()[-2000:])
    verdict = check_verdict(check.returncode)
    absent = missing_verdicts(json.loads(check.stdout))
    if absent:
        raise RehearsalFailed(f"check found {len(absent)} missing verdict(s), e.g. {absent[0]}")
    return (
        f"rehearsal: {len(include)} shards, report and check in {time.perf_counter() - t0:.0f} s; {verdict}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path("runs/gpu-rehearsal"), help="work folder (replaced)")
    p.add_argument("--limit", type=int, default=2, help="documents per task family (default 2)")
    jobs = max(1, min(4, os.cpu_count() or 1))
    p.add_argument(
        "--jobs", type=int, default=jobs, help=f"shards run at once (default one per core: {jobs})"
    )
    args = p.parse_args(argv)
    sys.path.insert(0, str(ROOT / "src"))
    try:
        print(rehearse(args.out.resolve(), args.limit, args.jobs), flush=True)
    except RehearsalFailed as e:
        print(f"rehearsal FAILED: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
