"""The data folder the suite runs with matches data.sha256, TruthfulQA's JSONL is derived exactly, and
tools/fetch_data.py (CI's step before widthwise is installed) runs the same fetch."""

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dataserver import build_tree, serve
from widthwise import fetch

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def data_dir() -> Path:
    path = os.environ.get("WIDTHWISE_DATA_DIR")
    assert path, "WIDTHWISE_DATA_DIR must point at the offline data (see README, Data)"
    return Path(path)


def test_truthfulqa_jsonl_is_derived_exactly(data_dir):
    derived = fetch.mc_jsonl((data_dir / "truthfulqa" / "mc_task.json").read_bytes())
    assert hashlib.sha256(derived).hexdigest() == fetch.expected()["truthfulqa/mc_validation.jsonl"]
    assert derived.count(b"\n") == 817


def test_the_data_folder_matches_the_pinned_checksums(data_dir):
    assert fetch.missing(data_dir) == []


def test_the_tool_script_fetches_into_dest(data_dir, tmp_path):
    with serve(build_tree(data_dir, tmp_path / "upstream")) as (url, _):
        proc = subprocess.run(
            [sys.executable, str(ROOT / "tools" / "fetch_data.py"), "--dest", str(tmp_path / "d")],
            env={**os.environ, fetch.URL_ENV: url},
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert fetch.missing(tmp_path / "d") == []
