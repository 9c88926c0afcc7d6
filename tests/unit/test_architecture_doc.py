"""docs/architecture.md names files and functions as the places to change; each one must exist.

The recipes are only useful while they are true: a rename that forgets the page fails here.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "architecture.md").read_text()
SPANS = re.findall(r"`([^`\n]+)`", DOC)
PATHS = sorted({s for s in SPANS if re.fullmatch(r"(src|tests|docs|reference|baselines)/[\w./-]+", s)})
DOTTED = sorted({s for s in SPANS if re.fullmatch(r"widthwise(\.\w+)+", s)})
UPPER = sorted({(m.group(1), m.group(2)) for m in re.finditer(r"`([A-Z_]+)`\s+in\s+`(src/[\w/]+\.py)`", DOC)})


def test_the_page_names_enough_to_be_checked():
    assert len(PATHS) >= 20 and len(DOTTED) >= 15 and len(UPPER) >= 4


@pytest.mark.parametrize("path", PATHS)
def test_named_path_exists(path):
    assert (ROOT / path).exists(), f"docs/architecture.md names {path}, which does not exist"


def _resolve(dotted: str):
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        return obj
    raise ModuleNotFoundError(dotted)


@pytest.mark.parametrize("dotted", DOTTED)
def test_named_module_or_function_exists(dotted):
    assert _resolve(dotted) is not None


@pytest.mark.parametrize(("name", "path"), UPPER)
def test_named_registry_is_defined_in_that_file(name, path):
    assert re.search(rf"^{name}\b.*=", (ROOT / path).read_text(), re.M), f"{name} not defined in {path}"


def test_no_module_under_src_imports_the_command_line():
    for f in (ROOT / "src" / "widthwise").rglob("*.py"):
        if f.parent.name == "commands" or f.name in ("cli.py", "__main__.py"):
            continue
        text = f.read_text()
        assert not re.search(
            r"^\s*(from|import) widthwise(\.cli|\.commands|\s+import\s+(cli|commands))", text, re.M
        ), f
