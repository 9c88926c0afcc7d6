"""Fixtures for the claims suite: the committed thresholds.toml and baselines/paper, read once."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from widthwise.claims import load_thresholds
from widthwise.results import collect_results

ROOT = Path(__file__).resolve().parents[2]
THRESHOLDS = ROOT / "thresholds.toml"
PAPER = ROOT / "baselines" / "paper"


@pytest.fixture(scope="session")
def claims():
    return load_thresholds(THRESHOLDS)


@pytest.fixture(scope="session")
def _paper_results():
    return collect_results([PAPER])


@pytest.fixture
def paper_results(_paper_results):
    """A private deep copy, so a test may perturb it."""
    return copy.deepcopy(_paper_results)


@pytest.fixture(autouse=True)
def _no_step_summary(monkeypatch):
    """Under GitHub Actions the CLI would append these tests' tables to the real job summary."""
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
