"""The real fetch (widthwise.fetch over urllib) against a local HTTP server holding real data files.

The source files come from the data folder the suite runs with ($WIDTHWISE_DATA_DIR); the server only
stands in for the upstream host. No test reads a checksum list from outside the repository: every file
is checked against src/widthwise/data.sha256.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from dataserver import build_tree, closed_port_url, serve
from widthwise import data, fetch
from widthwise.cli import main


@pytest.fixture(scope="module")
def source() -> Path:
    path = os.environ.get("WIDTHWISE_DATA_DIR")
    assert path, "WIDTHWISE_DATA_DIR must point at a data folder (nox sets it; see README, Data)"
    return Path(path)


@pytest.fixture
def upstream(source, tmp_path):
    with serve(build_tree(source, tmp_path / "upstream")) as (url, seen):
        yield url, seen


@pytest.fixture
def nothing_configured(tmp_path, monkeypatch):
    """No $WIDTHWISE_DATA_DIR, no ../shared/data beside the checkout, an empty cache."""
    monkeypatch.delenv("WIDTHWISE_DATA_DIR", raising=False)
    monkeypatch.setattr(data, "CHECKOUT", tmp_path / "clone")
    monkeypatch.setenv("WIDTHWISE_CACHE", str(tmp_path / "cache"))
    assert data.data_dir() is None
    return tmp_path / "cache" / "data"


def listing(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")) if folder.exists() else []


def test_fetch_lands_every_file_with_its_checksum(upstream, tmp_path):
    url, seen = upstream
    dest = fetch.fetch(tmp_path / "data", base=url, log=lambda m: None)
    for name, digest in fetch.expected().items():
        assert hashlib.sha256((dest / name).read_bytes()).hexdigest() == digest, name
    assert len(fetch.expected()) == 7 and fetch.missing(dest) == []
    assert len(seen) == 3  # IFEval, mc_task.json, the punkt_tab zip
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".data-fetch-")]  # staging removed
    # A second fetch finds everything in place and downloads nothing.
    fetch.fetch(dest, base=url, log=lambda m: None)
    assert len(seen) == 3


def test_a_damaged_file_is_repaired_alone(upstream, tmp_path):
    url, seen = upstream
    dest = fetch.fetch(tmp_path / "data", base=url, log=lambda m: None)
    (dest / "ifeval" / "input_data.jsonl").write_text("{}\n")
    seen.clear()
    fetch.fetch(dest, base=url, log=lambda m: None)
    assert seen == [f"/{fetch.DOWNLOADS['ifeval/input_data.jsonl']}"] and fetch.missing(dest) == []


def test_a_corrupted_download_is_refused_and_nothing_is_written(source, tmp_path):
    root = build_tree(source, tmp_path / "upstream", corrupt="truthfulqa/mc_task.json")
    refused = pytest.raises(fetch.FetchError, match="checksum mismatch, nothing written: truthfulqa/mc_task")
    with serve(root) as (url, _), refused:
        fetch.fetch(tmp_path / "data", base=url, log=lambda m: None)
    assert listing(tmp_path / "data") == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["upstream"]  # no staging folder left


def test_an_unreachable_host_is_one_clear_line(nothing_configured, monkeypatch, capsys):
    monkeypatch.setenv(fetch.URL_ENV, closed_port_url())
    assert main(["fetch-data"]) == 2
    progress, err = capsys.readouterr().err.strip().splitlines()  # the progress line, then one error line
    assert progress.startswith("widthwise: fetching") and err.startswith("widthwise fetch-data: error: ")
    assert "cannot download" in err and "WIDTHWISE_DATA_DIR" in err and "widthwise fetch-data" in err
    assert listing(nothing_configured) == []


def test_the_first_command_needing_data_fetches_it_into_the_cache(nothing_configured, upstream, monkeypatch):
    from widthwise.evaluation import check_inputs

    url, seen = upstream
    monkeypatch.setenv(fetch.URL_ENV, url)
    inputs = check_inputs("smoke", tasks=["ifeval", "truthfulqa_mc2"])
    assert data.data_dir() == nothing_configured.resolve() and fetch.missing(nothing_configured) == []
    assert inputs.sources["ifeval"].files["data:ifeval/input_data.jsonl"].is_relative_to(nothing_configured)
    assert str(nothing_configured / "nltk_data") in os.environ["NLTK_DATA"].split(os.pathsep)
    n = len(seen)
    check_inputs("smoke", tasks=["ifeval"])  # found in the cache now: no second fetch
    assert len(seen) == n


def test_fetch_into_a_named_folder_offline_says_what_provides_the_data(tmp_path, monkeypatch, capsys):
    # What the nox sessions run first (`widthwise fetch-data --dest DIR`) on a machine with no network.
    monkeypatch.setenv(fetch.URL_ENV, closed_port_url())
    assert main(["fetch-data", "--dest", str(tmp_path / "d")]) == 2
    progress, err = capsys.readouterr().err.strip().splitlines()
    assert err.startswith("widthwise fetch-data: error: ") and "set WIDTHWISE_DATA_DIR" in err
    assert not (tmp_path / "d").exists()


def test_offline_evaluation_stops_before_loading_anything(nothing_configured, monkeypatch, capsys):
    monkeypatch.setenv(fetch.URL_ENV, closed_port_url())
    code = main(["eval", "smollm2-135m-instruct", "--suite", "smoke", "--tasks", "ifeval"])
    progress, err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and progress.startswith("widthwise: fetching")
    assert err.startswith("widthwise eval: error:")
    assert "IFEval, TruthfulQA and punkt_tab data not found" in err and "widthwise fetch-data" in err


def test_an_explicit_data_dir_and_the_sibling_folder_still_win(source, tmp_path, monkeypatch):
    monkeypatch.setenv("WIDTHWISE_DATA_DIR", str(source))
    assert data.data_dir() == source.resolve()
    monkeypatch.delenv("WIDTHWISE_DATA_DIR")
    clone = tmp_path / "clone"
    clone.mkdir()
    (clone / "pyproject.toml").write_text("")
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "data").symlink_to(source)
    monkeypatch.setattr(data, "CHECKOUT", clone)
    assert data.data_dir() == source.resolve()
