"""tools/gpu_rehearsal.py's pure parts: the documented substitutions on each matrix command, the plan's
refusals, which Results a finished shard leaves, and what check's exit code means. The rehearsal itself
is `nox -s gpu-rehearsal` (ci.yml)."""

from __future__ import annotations

import importlib.util
import json
import shlex
import sys
from pathlib import Path

import pytest
import yaml

from widthwise.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("gpu_rehearsal", ROOT / "tools" / "gpu_rehearsal.py")
rh = importlib.util.module_from_spec(spec)
sys.modules["gpu_rehearsal"] = rh  # dataclasses look their module up there
spec.loader.exec_module(rh)


@pytest.fixture(scope="module")
def matrix():
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(list(rh.PLAN_COMMAND[1:])) == 0
    return json.loads(buf.getvalue())


def test_the_plan_step_is_gpu_ymls_own():
    wf = yaml.safe_load((ROOT / ".github" / "workflows" / "gpu.yml").read_text())
    plan = next(s for s in wf["jobs"]["plan"]["steps"] if s.get("id") == "plan")["run"]
    assert "widthwise sweep --dry-run --json" in plan and '--gpu "$GPU"' in plan
    assert wf["env"]["GPU"].endswith("'h100' }}") and rh.PLAN_COMMAND[-2:] == ("--gpu", "h100")


def test_each_command_runs_word_for_word_with_the_suffix(matrix):
    parser = build_parser()
    for e in rh.check_matrix(matrix):
        argv = rh.rehearsal_command(e["command"], limit=3, bench_args=rh.BENCH_ARGS, python="/py")
        words = shlex.split(e["command"])
        assert argv[:3] == ["/py", "-m", "widthwise"]
        assert argv[3 : 3 + len(words) - 1] == words[1:]  # the plan's command, unchanged
        suffix = argv[3 + len(words) - 1 :]
        bench = [] if "--no-bench" in words else ["--bench-args", rh.BENCH_ARGS]
        assert suffix == ["--limit", "3", "--backend", "hf", *bench]
        args = parser.parse_args(argv[3:])
        # argparse takes the last of a repeated option: the suffix wins, everything else is the plan's
        assert args.backend == "hf" and args.bench_args == (rh.BENCH_ARGS if bench else None)
        assert (args.model, args.shard, args.suite, str(args.out)) == (
            e["model"],
            e["shard"],
            e["suite"],
            e["out"],
        )
        assert args.device == "cuda"


def test_no_bench_commands_get_no_bench_args():
    argv = rh.rehearsal_command("widthwise sweep m --no-bench --out x", limit=1, bench_args="B", python="p")
    assert argv[-4:] == ["--limit", "1", "--backend", "hf"]
    with pytest.raises(rh.RehearsalFailed, match="does not start with `widthwise`"):
        rh.rehearsal_command("rm -rf /", limit=1, bench_args="B", python="p")


def test_the_plan_must_have_shards_and_the_instruct_model(matrix):
    assert len(rh.check_matrix(matrix)) == 18
    without = {"include": [e for e in matrix["include"] if "Instruct" not in e["model"]]}
    with pytest.raises(rh.RehearsalFailed, match="no Instruct-model shard"):
        rh.check_matrix(without)
    with pytest.raises(rh.RehearsalFailed, match="no shards"):
        rh.check_matrix({"include": []})


def test_missing_results_and_the_instruct_model(tmp_path, matrix):
    include = rh.check_matrix(matrix)
    every = [p for e in include for p in rh.expected_results(e)]
    # 18 evaluations, and a pruned Result and its interleaved base for each of the 2 benches (the base
    # models at 60%, where the efficiency claims read; the Instruct model has none)
    assert len(every) == 18 + 2 * 2
    assert sorted(e["slug"] for e in include if e["bench"]) == ["llama-3.2-1b", "llama-3.2-3b"]
    assert rh.missing_results(tmp_path, include) == every
    for p in every:
        (tmp_path / p).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / p).write_text("{}")
    assert rh.missing_results(tmp_path, include) == []
    assert rh.instruct_present(tmp_path, include)
    lost = next(e for e in include if e["slug"] == "llama-3.2-3b" and e["config"] == "ppm-pct60")
    (tmp_path / rh.expected_results(lost)[1]).unlink()
    assert rh.missing_results(tmp_path, include) == [rh.expected_results(lost)[1]]
    for e in include:
        if "Instruct" in e["model"]:
            (tmp_path / rh.expected_results(e)[0]).unlink()
    assert not rh.instruct_present(tmp_path, include)


def test_check_exit_codes():
    assert "as expected" in rh.check_verdict(1)
    assert "holds" in rh.check_verdict(0)
    for rc in (2, -9, 3):
        with pytest.raises(rh.RehearsalFailed, match=f"check exited {rc}"):
            rh.check_verdict(rc)


def test_stand_in_shapes_keep_the_real_expansion_ratios():
    for model, shape in rh.STANDIN_SHAPES.items():
        size = "3B" if "3B" in model else "1B"
        assert shape["intermediate_size"] / shape["hidden_size"] == pytest.approx(rh.REAL_RATIO[size])
    assert rh.REAL_RATIO["1B"] == 4.0 and rh.REAL_RATIO["3B"] == pytest.approx(2.6667, abs=1e-4)


def test_only_a_rehearsal_folder_is_replaced(tmp_path):
    mine = rh.fresh_workdir(tmp_path / "r", log=lambda s: None)
    (mine / "shards").mkdir()
    rh.fresh_workdir(mine, log=lambda s: None)
    assert not (mine / "shards").exists() and (mine / rh.MARKER).is_file()
    other = tmp_path / "other"
    other.mkdir()
    (other / "keep.txt").write_text("x")
    with pytest.raises(rh.RehearsalFailed, match="not a rehearsal's folder"):
        rh.fresh_workdir(other, log=lambda s: None)
    assert (other / "keep.txt").is_file()


def test_a_claim_without_its_evidence_fails_the_rehearsal():
    ok = {"verdicts": [{"verdict": "fails", "message": "a"}, {"verdict": "holds", "message": "b"}]}
    assert rh.missing_verdicts(ok) == []
    lacking = {"verdicts": [*ok["verdicts"], {"verdict": "missing", "message": "no bench:b8"}]}
    assert rh.missing_verdicts(lacking) == ["no bench:b8"]
