"""tools/fetch_data.py derives TruthfulQA's JSONL exactly and pins the same checksums as the data README."""

import hashlib
import importlib.util
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("fetch_data", ROOT / "tools" / "fetch_data.py")
fetch_data = importlib.util.module_from_spec(spec)
spec.loader.exec_module(fetch_data)


@pytest.fixture
def data_dir() -> Path:
    path = os.environ.get("WIDTHWISE_DATA_DIR")
    assert path, "WIDTHWISE_DATA_DIR must point at the offline data (see README, Data)"
    return Path(path)


def test_truthfulqa_jsonl_is_derived_exactly(data_dir):
    derived = fetch_data.mc_jsonl((data_dir / "truthfulqa" / "mc_task.json").read_bytes())
    assert hashlib.sha256(derived).hexdigest() == fetch_data.expected()["truthfulqa/mc_validation.jsonl"]
    assert derived.count(b"\n") == 817


def test_pinned_checksums_agree_with_the_data_folder(data_dir):
    sums = dict(
        reversed(line.split()) for line in (data_dir / "SHA256SUMS").read_text().splitlines() if line.strip()
    )
    for name, digest in fetch_data.expected().items():
        assert sums[name] == digest, name
        assert hashlib.sha256((data_dir / name).read_bytes()).hexdigest() == digest, name
