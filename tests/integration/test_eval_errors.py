"""`widthwise eval` refuses bad input with one clear line and exit code 2, before doing any work."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import pytest

MODEL = "smollm2-135m-instruct"


def widthwise(*args: str, env: dict[str, str] | None = None) -> tuple[subprocess.CompletedProcess, float]:
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "widthwise", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=600,
    )
    return proc, time.perf_counter() - t0


def _one_line_error(proc) -> str:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = [x for x in proc.stderr.splitlines() if x.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("widthwise eval: error: ")
    return lines[0]


def test_unknown_suite():
    proc, _ = widthwise("eval", MODEL, "--suite", "nightly")
    assert "unknown suite 'nightly'; known: cpu, paper, paper-instruct, smoke" in _one_line_error(proc)


def test_unknown_task():
    proc, _ = widthwise("eval", MODEL, "--suite", "smoke", "--tasks", "piqa,squad")
    assert "unknown task(s) squad for suite 'smoke'" in _one_line_error(proc)


def test_missing_data_names_task_and_place(tmp_path):
    proc, seconds = widthwise(
        "eval", MODEL, "--suite", "smoke", "--tasks", "ifeval", env={"WIDTHWISE_DATA_DIR": str(tmp_path)}
    )
    line = _one_line_error(proc)
    assert f"task ifeval: data not found: looked for {tmp_path}/ifeval/input_data.jsonl" in line
    assert seconds < 60  # refused before the model is loaded


def test_task_without_offline_data_needs_hub():
    proc, _ = widthwise("eval", MODEL, "--suite", "paper", "--tasks", "wikitext")
    assert re.search(r"task wikitext: no offline copy .*--allow-hub", _one_line_error(proc))


@pytest.mark.slow
def test_corrupt_cached_result(tmp_path):
    # A real (tiny) evaluation fills the cache; corrupting that Result file must not be papered over.
    args = ("eval", MODEL, "--suite", "smoke", "--tasks", "winogrande")
    proc, _ = widthwise(*args, "--refresh")
    assert proc.returncode == 0, proc.stderr[-3000:]
    cached = re.search(r"Result kept at (\S+)", proc.stdout).group(1)
    with open(cached, "w") as f:
        f.write('{"schema": "widthwise.result/1", "metrics": ')
    proc, _ = widthwise(*args)
    line = _one_line_error(proc)
    assert f"{cached}: corrupt Result file" in line and "--refresh" in line
