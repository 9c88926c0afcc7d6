"""Suites as data: names, shots and headline metrics, fixed sample ids, task YAMLs, offline data lookup."""

from __future__ import annotations

import os
import re

import pytest

from dataserver import closed_port_url
from widthwise import data, fetch
from widthwise.errors import WidthwiseError
from widthwise.evaluation import cache, loading, scoring
from widthwise.evaluation.loading import choose_ids
from widthwise.evaluation.suites import TaskSpec, get_suite

# The paper's base-model suite (docs/paper.md §2): task -> (shots, headline).
PAPER = {
    "wikitext": (0, "word_perplexity"),
    "lambada_openai": (0, "perplexity"),
    "mmlu": (5, "acc"),
    "gsm8k": (5, "exact_match,flexible-extract"),
    "arc_challenge": (0, "acc_norm"),
    "hellaswag": (0, "acc_norm"),
    "boolq": (0, "acc"),
    "piqa": (0, "acc"),
    "winogrande": (0, "acc"),
    "truthfulqa_mc1": (0, "acc"),
    "truthfulqa_mc2": (0, "acc"),
    "ifeval": (0, "prompt_level_strict_acc"),
    "leaderboard_musr": (0, "acc_norm"),
}
OFFLINE = set(PAPER) - {"wikitext", "leaderboard_musr"}
# Families of the CPU suites that are not the paper's: GSM8K's gold solutions, teacher-forced (issue 25).
EXTRA = {"cpu": {"gsm8k_gold": (0, "gold_logprob")}, "smoke": {}}


def test_paper_suite_is_the_papers_13_tasks():
    suite = get_suite("paper")
    assert {t.name: (t.shots, t.headline) for t in suite.tasks} == PAPER
    assert all(t.n is None and t.per_subject is None for t in suite.tasks)  # full splits
    assert suite.tier == "gpu"  # the paper's claims, on full benchmarks


def test_ci_sized_suites_are_the_cpu_tier():
    assert get_suite("cpu").tier == get_suite("smoke").tier == "cpu"


@pytest.mark.parametrize("name", ["cpu", "smoke"])
def test_small_suites_cover_every_offline_family_and_name_substitutes(name):
    suite = get_suite(name)
    assert {t.name for t in suite.tasks} == OFFLINE | set(EXTRA[name])
    own = {k: v for k, v in PAPER.items() if k in OFFLINE} | EXTRA[name]
    assert {t.name: (t.shots, t.headline) for t in suite.tasks} == own
    assert set(suite.substitutes) == {"wikitext", "leaderboard_musr"}
    assert "lambada_openai" in suite.substitutes["wikitext"]
    for t in suite.tasks:
        assert (t.n is None) != (t.per_subject is None) or t.name == "mmlu"
        assert t.n is not None or t.per_subject is not None, f"{name}.{t.name} would run the whole split"
        if t.kind == "generate":
            assert t.max_gen_toks, f"{name}.{t.name} needs a generation cap on CPU"


def test_unknown_suite_and_task_are_clear_errors():
    with pytest.raises(WidthwiseError, match=r"unknown suite 'nope'.*cpu.*paper.*smoke"):
        get_suite("nope")
    with pytest.raises(WidthwiseError, match=r"unknown task\(s\) squad for suite 'smoke'"):
        get_suite("smoke", ["boolq", "squad"])
    assert [t.name for t in get_suite("smoke", ["piqa", "boolq"]).tasks] == ["boolq", "piqa"]


def test_sample_ids_are_fixed_sorted_and_in_range():
    spec = TaskSpec("piqa", "loglikelihood", "acc", "piqa.yaml", 0, n=50)
    a = choose_ids(spec, 1234, {"widthwise_piqa": 1838})
    assert a == choose_ids(spec, 1234, {"widthwise_piqa": 1838})
    ids = a["widthwise_piqa"]
    assert ids == sorted(ids) and len(set(ids)) == 50 and ids[0] >= 0 and ids[-1] < 1838
    assert choose_ids(spec, 1, {"widthwise_piqa": 1838}) != a  # the seed matters
    # The local and the hub task of a family choose the same documents.
    assert choose_ids(spec, 1234, {"piqa": 1838})["piqa"] == ids
    # n at or above the split size means the whole split.
    assert choose_ids(spec, 1234, {"widthwise_piqa": 40}) == {"widthwise_piqa": None}


def test_mmlu_ids_per_subject_and_across_subjects():
    sizes = {f"widthwise_mmlu_{s}": 100 + i for i, s in enumerate(["anatomy", "astronomy", "virology"])}
    per = choose_ids(TaskSpec("mmlu", "loglikelihood", "acc", "mmlu.yaml", 5, per_subject=3), 7, sizes)
    assert set(per) == set(sizes) and all(len(v) == 3 for v in per.values())
    few = choose_ids(TaskSpec("mmlu", "loglikelihood", "acc", "mmlu.yaml", 5, n=2), 7, sizes)
    assert sum(len(v) for v in few.values()) == 2  # subjects without a document are left out
    assert set(few) <= set(sizes)


def test_templates_read_exactly_the_located_files():
    """Every data path a rendered YAML names is one data.locate() checks and checksums, and vice versa."""
    names = sorted(OFFLINE)
    files = loading.render_templates(names)
    assert len(files) == len(names) - 1 + len(data.mmlu_subjects())
    assert len(data.mmlu_subjects()) == 57
    located = {str(p) for n in names for p in data.locate(n).values()}
    named = set()
    for text in files.values():
        assert "${" not in text
        named |= set(re.findall(r'"(/[^"]+\.(?:arrow|jsonl|gz))"', text))
    punkt = {p for p in located if "nltk_data" in p}
    assert named == located - punkt
    assert all(p.startswith("/") for p in named)


def test_missing_data_names_the_task_and_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.setenv(data.DATA_ENV, str(tmp_path))
    with pytest.raises(
        WidthwiseError, match=rf"task ifeval: data not found: looked for {tmp_path}/ifeval/input_data"
    ):
        data.locate("ifeval")
    # With nothing configured, locate fetches; unreachable, the error says what provides the data.
    monkeypatch.delenv(data.DATA_ENV)
    monkeypatch.setattr(data, "CHECKOUT", tmp_path / "clone")
    monkeypatch.setenv("WIDTHWISE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv(fetch.URL_ENV, closed_port_url())
    with pytest.raises(WidthwiseError, match=r"data not found and not fetched .* set WIDTHWISE_DATA_DIR"):
        data.locate("truthfulqa_mc1")


def test_tasks_without_offline_data_need_the_hub():
    suite = get_suite("paper", ["wikitext", "piqa"])
    with pytest.raises(WidthwiseError, match=r"task wikitext: no offline copy.*--allow-hub"):
        loading.plan_sources(suite, allow_hub=False)
    sources = loading.plan_sources(suite, allow_hub=True)
    assert sources["wikitext"].kind == "hub" and sources["piqa"].kind == "local"


def test_metric_entries_follow_the_naming_convention():
    lm = {
        "alias": "gsm8k",
        "exact_match,strict-match": 0.25,
        "exact_match_stderr,strict-match": 0.1,
        "exact_match,flexible-extract": 0.5,
        "exact_match_stderr,flexible-extract": "N/A",
        "acc,none": float("nan"),
    }
    out = scoring.metric_entries(lm, "gsm8k", 4)
    assert out["exact_match,strict-match"] == {"value": 0.25, "stderr": 0.1, "n": 4}
    assert out["exact_match,flexible-extract"] == {"value": 0.5, "stderr": None, "n": 4}
    assert out["acc"]["value"] is None and "nan" in out["acc"]["not_measurable"]


def test_offline_unless_hub_is_explicitly_allowed(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    data.setup_environment(allow_hub=True)
    assert (os.environ["HF_HUB_OFFLINE"], os.environ["HF_DATASETS_OFFLINE"]) == ("0", "0")
    data.setup_environment(allow_hub=False)
    assert (os.environ["HF_HUB_OFFLINE"], os.environ["HF_DATASETS_OFFLINE"]) == ("1", "1")
    monkeypatch.setenv(data.HUB_ENV, "1")
    assert data.hub_allowed()
    monkeypatch.setenv(data.HUB_ENV, "0")
    assert not data.hub_allowed()


def test_cache_key_changes_with_everything_that_changes_a_score():
    settings = {"suite": "smoke", "tasks": {"piqa": {"shots": 0, "n": 4, "sample_ids_sha256": "a"}}}
    sums = {"piqa": {"source": "local", "files": {"olmo:x": {"path": "/x", "sha256": "1"}}}}
    rt = {"device": "cpu", "threads": 1}
    key = cache.cache_key("w", settings, sums, rt)
    assert key == cache.cache_key("w", settings, sums, rt)
    moved = {"piqa": {"source": "local", "files": {"olmo:x": {"path": "/elsewhere/x", "sha256": "1"}}}}
    assert key == cache.cache_key("w", settings, moved, rt)  # same bytes in another place
    other_ids = {"suite": "smoke", "tasks": {"piqa": {"shots": 0, "n": 4, "sample_ids_sha256": "b"}}}
    changed = {"piqa": {"source": "local", "files": {"olmo:x": {"path": "/x", "sha256": "2"}}}}
    for variant in [
        ("v", settings, sums, rt),
        ("w", other_ids, sums, rt),
        ("w", settings, changed, rt),
        ("w", settings, sums, {"device": "cuda", "threads": 1}),
    ]:
        assert cache.cache_key(*variant) != key


def test_the_cache_key_covers_every_file_of_the_package(tmp_path, monkeypatch):
    """A module split out of evaluation/ (or any other) must not serve stale cached Results."""
    import shutil

    copy = tmp_path / "widthwise"
    shutil.copytree(cache.PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(cache, "PACKAGE", copy)

    def digest() -> str:
        cache.code_sha256.cache_clear()
        return cache.code_sha256()

    try:
        before = digest()
        assert digest() == before
        verdict = copy / "claims" / "verdict.py"
        verdict.write_text(verdict.read_text() + "\n# a change far from evaluation/\n")
        after_edit = digest()
        assert after_edit != before
        (copy / "bench" / "new_module.py").write_text("X = 1\n")
        assert digest() != after_edit
        (copy / "bench" / "new_module.py").rename(copy / "bench" / "renamed.py")
        assert digest() not in (before, after_edit)
    finally:
        cache.code_sha256.cache_clear()


def test_a_suite_may_set_a_generation_batch_size_of_its_own(monkeypatch):
    import copy

    from widthwise.evaluation import suites

    assert suites.get_suite("cpu").generate_batch_size == 32  # IFEval's 32 prompts in one batch
    assert suites.get_suite("smoke").generate_batch_size is None  # its batch size, 8
    doc = copy.deepcopy(suites.suites_toml())
    doc["suites"]["smoke"]["generate_batch_size"] = 4
    monkeypatch.setattr(suites, "suites_toml", lambda path=None: doc)
    assert suites.get_suite("smoke").generate_batch_size == 4
