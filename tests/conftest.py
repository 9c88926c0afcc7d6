"""Shared fixtures: tiny random models of every supported architecture, and the embedded default model."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from support import ARCHS, TINY

# Nothing in the test suite may reach a hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# As the noxfile does: the project's shared data folder beside the checkout, unless the user set one.
_SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
if _SHARED.is_dir():
    os.environ.setdefault("WIDTHWISE_DATA_DIR", str(_SHARED))


@pytest.fixture(params=ARCHS)
def arch(request) -> str:
    return request.param


@pytest.fixture
def input_ids() -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    return torch.randint(3, TINY["vocab_size"], (2, 12), generator=g)


@pytest.fixture(scope="session")
def default_model():
    """The embedded default model (converted once into the widthwise cache)."""
    from widthwise.models import DEFAULT_MODEL, load_model

    return load_model(DEFAULT_MODEL)
