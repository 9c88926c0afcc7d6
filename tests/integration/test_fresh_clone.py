"""A fresh clone with nothing beside it: no ../shared, no $WIDTHWISE_DATA_DIR, an empty cache.

The committed tree is cloned into a temporary folder and widthwise is run from the clone's own sources
(PYTHONPATH=clone/src), as the quick start's `nox --session sweep` runs it after installing: the first
command that needs IFEval fetches the data (from a local server standing in for the upstream host),
verifies it, converts the embedded default model and evaluates one smoke task.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dataserver import build_tree, closed_port_url, serve
from widthwise import fetch

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def clone(tmp_path_factory) -> Path:
    where = tmp_path_factory.mktemp("fresh") / "widthwise"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(where)], check=True, timeout=120)
    assert not (where.parent / "shared").exists()
    return where


def run_from(clone: Path, cache: Path, url: str, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("WIDTHWISE_DATA_DIR", "NLTK_DATA")}
    env |= {"PYTHONPATH": str(clone / "src"), "WIDTHWISE_CACHE": str(cache), fetch.URL_ENV: url}
    return subprocess.run(
        [sys.executable, "-m", "widthwise", *args], cwd=clone, env=env, capture_output=True, text=True,
        timeout=900,
    )  # fmt: skip


def test_first_run_fetches_the_data_and_evaluates(clone, tmp_path):
    source = Path(os.environ["WIDTHWISE_DATA_DIR"])
    cache = tmp_path / "cache"
    out = tmp_path / "ifeval.json"
    with serve(build_tree(source, tmp_path / "upstream")) as (url, seen):
        proc = run_from(clone, cache, url, "eval", "smollm2-135m-instruct", "--suite", "smoke",
                        "--tasks", "ifeval", "--out", str(out))  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "fetching IFEval, TruthfulQA and punkt_tab" in proc.stderr and len(seen) == 3
    assert fetch.missing(cache / "data") == []
    result = json.loads(out.read_text())
    files = result["provenance"]["data"]["ifeval"]["files"]
    assert Path(files["data:ifeval/input_data.jsonl"]["path"]).is_relative_to((cache / "data").resolve())
    assert result["metrics"]["ifeval/prompt_level_strict_acc"]["n"] > 0


def test_first_run_offline_is_one_line_and_writes_nothing(clone, tmp_path):
    cache = tmp_path / "cache"
    proc = run_from(clone, cache, closed_port_url(), "eval", "smollm2-135m-instruct", "--suite", "smoke",
                    "--tasks", "ifeval", "--out", str(tmp_path / "r.json"))  # fmt: skip
    assert proc.returncode == 2
    errors = [line for line in proc.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and "set WIDTHWISE_DATA_DIR" in errors[0] and "widthwise fetch-data" in errors[0]
    assert not (tmp_path / "r.json").exists() and not (cache / "data").exists()
