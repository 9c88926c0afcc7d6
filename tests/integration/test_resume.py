"""A killed evaluation resumes where it stopped (evaluation/pertask.py).

At 604ca20 an evaluation kept nothing until its Result was written, so a GPU shard killed at hour 5 lost
five hours. Here a real `widthwise eval` process is killed (SIGKILL, as a runner's timeout does) right
after its first task family is checkpointed; the rerun reuses that family, runs only the rest, and gives
the same Result as an evaluation that was never interrupted.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from support import save_tiny_llama
from widthwise.results import CHECKPOINT_SUFFIX, read_result

pytestmark = pytest.mark.slow

TASKS = "lambada_openai,hellaswag"  # the first is quick; the kill lands while the second runs


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory, default_model):
    return save_tiny_llama(tmp_path_factory.mktemp("models") / "tiny-llama", default_model.tokenizer)


def _eval(tiny_llama, out, env):
    argv = [sys.executable, "-m", "widthwise", "eval", str(tiny_llama), "--suite", "cpu", "--tasks", TASKS]
    return argv + ["--limit", "40", "--pct", "25", "--out", str(out)], env


def test_a_killed_evaluation_resumes_at_its_first_unfinished_task(tiny_llama, tmp_path):
    env = {**os.environ, "WIDTHWISE_CACHE": str(tmp_path / "cache")}
    checkpoints = tmp_path / "cache" / "checkpoints"
    argv, env = _eval(tiny_llama, tmp_path / "killed.json", env)
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 600
    parts: list = []
    while not parts and proc.poll() is None and time.monotonic() < deadline:
        parts = list(checkpoints.rglob(f"*{CHECKPOINT_SUFFIX}"))
        time.sleep(0.01)
    assert proc.poll() is None, f"the evaluation ended before it could be killed: {proc.communicate()}"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert [p.name for p in parts] == [f"lambada_openai{CHECKPOINT_SUFFIX}"]
    assert not (tmp_path / "killed.json").exists()  # no Result: the run died half way

    argv, env = _eval(tiny_llama, tmp_path / "resumed.json", env)
    resumed = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming from 1 checkpointed task(s)" in resumed.stderr and "lambada_openai" in resumed.stderr
    assert "eval lambada_openai (hf) ..." not in resumed.stderr  # not run again
    assert "eval hellaswag (hf) ..." in resumed.stderr
    assert not list(checkpoints.rglob(f"*{CHECKPOINT_SUFFIX}"))  # removed once the Result is written

    env_fresh = {**env, "WIDTHWISE_CACHE": str(tmp_path / "fresh-cache")}
    argv, env_fresh = _eval(tiny_llama, tmp_path / "whole.json", env_fresh)
    whole = subprocess.run(argv, env=env_fresh, capture_output=True, text=True, timeout=600)
    assert whole.returncode == 0, whole.stderr
    a, b = read_result(tmp_path / "resumed.json"), read_result(tmp_path / "whole.json")
    assert a["samples"] == b["samples"]
    assert a["metrics"] == b["metrics"]
    assert a["settings"] == b["settings"]
