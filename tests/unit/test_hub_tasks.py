"""Faithful to the paper: which source each task runs from, what a Result records about it, the paper's
suites, and the pinned hub datasets (WikiText, MuSR) from the hub or from a local mirror.

Nothing here reaches a hub: the hub's side is lm-eval's own task configs (read, not downloaded) and, where
a download would happen, FakeHub, which serves datasets.load_dataset from the local stand-ins.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import re
import shutil
from pathlib import Path

import pytest

from hub_standins import MUSR_SPLITS, write_mirror
from support import word_tokenizer
from widthwise import data
from widthwise.errors import WidthwiseError
from widthwise.evaluation import cache, loading
from widthwise.evaluation.settings import build_settings
from widthwise.evaluation.suites import family, get_suite, pinned_dataset

ROOT = Path(__file__).resolve().parents[2]
INSTRUCT = ROOT / "reference" / "paper" / "llama_1b_I_complete_results_latest.json"
GSM8K_DEVIATION = "few-shot examples from the test split: the train split is not offline"
REVISIONS = {  # the commits suites.toml pins, as found in public code pinning the same repositories
    "wikitext": ("EleutherAI/wikitext_document_level", "647234772b9554e208af6c826f23b99e3cac88c8"),
    "leaderboard_musr": ("TAUR-Lab/MuSR", "7c365b439a222150f317764d4f16ae6c96d7d94a"),
}


def _builtin(rel: str) -> dict:
    """One of lm-eval's own task configs, read (with its includes) and not built: nothing is downloaded."""
    from lm_eval.tasks._yaml_loader import load_yaml

    return load_yaml(Path(data.template_vars()["LM_EVAL_TASKS"]) / rel, resolve_func=False)


@pytest.fixture
def no_mirror(monkeypatch):
    monkeypatch.delenv(data.MIRROR_ENV, raising=False)


@pytest.fixture
def mirror(tmp_path, monkeypatch) -> Path:
    """The stand-ins as a hub mirror in $WIDTHWISE_HUB_MIRROR; datasets' cache kept under tmp_path."""
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-datasets")
    root = write_mirror(tmp_path / "mirror")
    monkeypatch.setenv(data.MIRROR_ENV, str(root))
    return root


# ---- the paper's suites ---------------------------------------------------------------------------


def test_the_paper_suites_use_no_chat_template():
    """docs/paper.md §2: HFLM over the model object, no chat template, for the Instruct model too."""
    for name in ("paper", "paper-instruct"):
        suite = get_suite(name)
        assert suite.chat_template == "none", name
        # Log-likelihoods batched (docs/gpu.md), generation at the paper's batch 1.
        assert suite.tier == "gpu" and suite.batch_size == 8 and suite.generate_batch_size == 1
        assert all(t.n is None and t.per_subject is None for t in suite.tasks)  # full splits


def test_paper_instruct_is_the_papers_instruct_benchmarks():
    benchmarks = json.loads(INSTRUCT.read_text())["benchmarks"]
    expected = {b["name"]: b["num_fewshot"] for b in benchmarks}
    assert len(expected) == 7
    assert {t.name: t.shots for t in get_suite("paper-instruct").tasks} == expected
    paper = {t.name: t for t in get_suite("paper").tasks}
    for t in get_suite("paper-instruct").tasks:  # the same families, metrics and shots as the base suite
        assert (t.kind, t.headline, t.shots) == (
            paper[t.name].kind,
            paper[t.name].headline,
            paper[t.name].shots,
        )


# ---- GSM8K: the train split's shots with hub access, a recorded deviation without ---------------------


def test_gsm8k_runs_lm_evals_own_task_with_train_shots_when_the_hub_is_allowed(no_mirror):
    for suite in ("paper", "paper-instruct"):
        src = loading.plan_sources(
            get_suite(suite, ["gsm8k", "piqa"] if suite != "paper-instruct" else ["gsm8k"]), True
        )
        gsm = src["gsm8k"]
        assert (gsm.kind, gsm.template, gsm.deviation) == ("hub", None, None), suite
        if "piqa" in src:  # an offline copy that does not depart from the paper is still preferred
            assert src["piqa"].kind == "local" and src["piqa"].deviation is None
    # The CPU suites keep the offline copy their stored baselines were made on, hub or not.
    cpu = loading.plan_sources(get_suite("cpu", ["gsm8k"]), True)["gsm8k"]
    assert cpu.kind == "local" and cpu.deviation == GSM8K_DEVIATION
    # What the hub source runs: lm-eval's built-in gsm8k, whose shots come from the train split.
    builtin = _builtin("gsm8k/gsm8k.yaml")
    assert (builtin["task"], builtin["fewshot_split"], builtin["training_split"]) == (
        "gsm8k",
        "train",
        "train",
    )
    # The offline copy departs from exactly that, and says so.
    ours = json.dumps(loading.render_templates(["gsm8k"]))
    assert "fewshot_split: test" in ours


def test_offline_gsm8k_records_its_deviation_in_the_settings(no_mirror):
    family_text = family("gsm8k")["offline_deviation"]
    assert family_text == GSM8K_DEVIATION
    suite = get_suite("smoke", ["gsm8k", "piqa"])
    sources = loading.plan_sources(suite, allow_hub=False)
    assert sources["gsm8k"].kind == "local" and sources["gsm8k"].deviation == GSM8K_DEVIATION
    items, _tm = loading.load_tasks(suite, sources)
    settings = build_settings(suite, items, sources, word_tokenizer(), "float32")
    gsm, piqa = settings["tasks"]["gsm8k"], settings["tasks"]["piqa"]
    assert gsm["deviation"] == GSM8K_DEVIATION
    assert (gsm["source"], gsm["fewshot_split"], gsm["split"]) == ("local", "test", "test")
    # Recorded only where there is one (so Results made before the key existed still compare).
    assert "deviation" not in piqa and "revision" not in piqa


# ---- WikiText and MuSR: pinned revisions ----------------------------------------------------------


def test_the_pins_name_the_datasets_lm_evals_tasks_read():
    for task, pin in REVISIONS.items():
        assert pinned_dataset(task) == pin
        assert re.fullmatch(r"[0-9a-f]{40}", pin[1])
    assert _builtin("wikitext/wikitext.yaml")["dataset_path"] == REVISIONS["wikitext"][0]
    for split in MUSR_SPLITS:
        assert (
            _builtin(f"leaderboard/musr/musr_{split}.yaml")["dataset_path"]
            == REVISIONS["leaderboard_musr"][0]
        )


def test_a_pinned_hub_task_is_the_built_in_task_on_its_pinned_revision(tmp_path, no_mirror):
    from lm_eval.tasks._yaml_loader import load_yaml

    suite = get_suite("paper", ["wikitext", "leaderboard_musr"])
    with pytest.raises(
        WidthwiseError, match=r"task wikitext: no offline copy.*--allow-hub.*WIDTHWISE_HUB_MIRROR"
    ):
        loading.plan_sources(suite, allow_hub=False)
    sources = loading.plan_sources(suite, allow_hub=True)
    for task, (path, revision) in REVISIONS.items():
        assert (sources[task].kind, sources[task].dataset, sources[task].revision) == ("hub", path, revision)
        assert sources[task].mirror is None and not sources[task].files
    files = loading.render_templates(list(REVISIONS), sources)
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    wikitext = load_yaml(tmp_path / "wikitext.yaml", resolve_func=False)
    builtin = _builtin("wikitext/wikitext.yaml")
    assert wikitext.pop("dataset_kwargs") == {"revision": REVISIONS["wikitext"][1]}
    assert wikitext.pop("task") == "widthwise_wikitext"
    assert wikitext == {k: v for k, v in builtin.items() if k != "task"}  # the built-in task otherwise
    musr = load_yaml(tmp_path / "leaderboard_musr.yaml", resolve_func=False)
    group = _builtin("leaderboard/musr/_musr.yaml")
    assert (musr["task"], musr["aggregate_metric_list"]) == (group["task"], group["aggregate_metric_list"])
    assert (musr["dataset_path"], musr["dataset_kwargs"]) == (
        REVISIONS["leaderboard_musr"][0],
        {"revision": REVISIONS["leaderboard_musr"][1]},
    )
    # builtin_dir is where lm-eval keeps the tasks the group names.
    assert (
        Path(data.template_vars()["LM_EVAL_TASKS"]) / family("leaderboard_musr")["builtin_dir"] / "_musr.yaml"
    ).is_file()


class FakeHub:
    """datasets.load_dataset at the hub boundary (unreachable from tests): records what lm-eval asks for
    and serves the stand-in repository at the revision asked, from the mirror folder."""

    def __init__(self, real, root: Path) -> None:
        self.real, self.root, self.calls = real, root, []

    def __call__(self, path, name=None, revision=None, **kw):
        self.calls.append((path, name, revision))
        return self.real(str(self.root.joinpath(*path.split("/"), revision)), name, **kw)


def test_with_hub_access_the_tasks_ask_for_the_pinned_revision(mirror, monkeypatch):
    import datasets

    monkeypatch.delenv(data.MIRROR_ENV)
    hub = FakeHub(datasets.load_dataset, mirror)
    monkeypatch.setattr(datasets, "load_dataset", hub)
    suite = get_suite("paper", ["wikitext", "leaderboard_musr"])
    sources = loading.plan_sources(suite, allow_hub=True)
    items, _tm = loading.load_tasks(suite, sources)
    wikitext, musr = {it.spec.name: it for it in items}.values()
    assert sorted(set(hub.calls)) == [
        ("EleutherAI/wikitext_document_level", "wikitext-2-raw-v1", REVISIONS["wikitext"][1]),
        ("TAUR-Lab/MuSR", None, REVISIONS["leaderboard_musr"][1]),
    ]
    assert set(musr.leaves) == {f"leaderboard_musr_{s}" for s in MUSR_SPLITS}  # the built-in tasks
    assert wikitext.sizes == {"widthwise_wikitext": 3} and set(musr.sizes.values()) == {2}
    settings = build_settings(suite, items, sources, word_tokenizer(), "float32")
    for task, (_path, revision) in REVISIONS.items():
        assert settings["tasks"][task]["revision"] == revision and settings["tasks"][task]["source"] == "hub"


# ---- the mirror ----------------------------------------------------------------------------------


def test_a_mirror_serves_the_pinned_revision_and_its_files_are_hashed(mirror):
    suite = get_suite("paper", ["wikitext", "leaderboard_musr", "piqa"])
    sources = loading.plan_sources(suite, allow_hub=False)  # no hub access needed
    wikitext = sources["wikitext"]
    assert wikitext.mirror == mirror / "EleutherAI" / "wikitext_document_level" / REVISIONS["wikitext"][1]
    assert "wikitext-2-raw-v1/wikitext-2-raw-v1-test.parquet" in wikitext.files
    assert set(sources["leaderboard_musr"].files) == {"README.md", *MUSR_SPLITS.values()}
    assert sources["piqa"].kind == "local"  # tasks with an offline copy are untouched
    sums = cache.data_checksums(sources)
    assert sums["wikitext"]["revision"] == REVISIONS["wikitext"][1]
    assert sums["wikitext"]["mirror"] == str(wikitext.mirror)
    assert len(sums["leaderboard_musr"]["files"]) == 4
    rt, weights = {"device": "cpu", "threads": 1}, "w"
    key = cache.cache_key(weights, {}, sums, rt)
    # The same bytes elsewhere are the same data; one more byte is not.
    moved = mirror.parent / "moved"
    shutil.copytree(mirror, moved)
    assert cache.cache_key(weights, {}, cache.data_checksums(_moved(sources, mirror, moved)), rt) == key
    csv = moved / "TAUR-Lab" / "MuSR" / REVISIONS["leaderboard_musr"][1] / "team_allocation.csv"
    csv.write_text(csv.read_text() + "\n")
    assert cache.cache_key(weights, {}, cache.data_checksums(_moved(sources, mirror, moved)), rt) != key


def _moved(sources: dict, old: Path, new: Path) -> dict:
    """The sources as plan_sources gives them with the mirror at `new` instead of `old`."""
    out = {}
    for task, src in sources.items():
        if src.mirror is not None:
            folder = new / src.mirror.relative_to(old)
            src = dataclasses.replace(src, mirror=folder, files=data.mirror_files(folder))
        out[task] = src
    return out


def test_a_copy_of_another_revision_is_never_used(mirror):
    path, revision = REVISIONS["leaderboard_musr"]
    held = mirror / path / revision
    held.rename(held.with_name("0" * 40))
    suite = get_suite("paper", ["leaderboard_musr"])
    with pytest.raises(WidthwiseError, match=rf"no copy of TAUR-Lab/MuSR at revision {revision}.*{'0' * 40}"):
        loading.plan_sources(suite, allow_hub=True)  # not the hub either: the mirror is what was asked for
    (held.with_name("0" * 40)).rename(held)
    for f in held.iterdir():
        f.unlink()
    with pytest.raises(WidthwiseError, match=rf"looked for {re.escape(str(held))}"):
        loading.plan_sources(suite, allow_hub=False)  # an empty folder is no copy


def test_the_report_lists_how_a_run_departed_from_the_paper(tmp_path):
    from widthwise.report import write_report
    from widthwise.results import collect_results

    stored = [r for r in collect_results([ROOT / "baselines" / "measured" / "cpu"]) if not r["pruning"]]
    fresh = copy.deepcopy(stored[0])
    fresh["settings"]["tasks"]["gsm8k"]["deviation"] = GSM8K_DEVIATION
    (report,) = [p for p in write_report([fresh], tmp_path) if p.name == "report.md"]
    text = report.read_text()
    section = text.split("Not as the paper ran it:", 1)[1].split("###", 1)[0]
    assert f"- gsm8k: {GSM8K_DEVIATION}" in section
    assert "- wikitext: not run; substitute: lambada_openai/perplexity" in section
    assert "leaderboard_musr" in section and "piqa" not in section


def test_a_recorded_deviation_does_not_keep_results_apart_but_what_it_describes_does():
    """The stored CPU baselines (made before the note existed) compare with fresh Results that carry it;
    hub and offline GSM8K never compare (fewshot_split), nor two revisions of a hub dataset."""
    from widthwise.results import collect_results, settings_mismatch

    (stored,) = collect_results([ROOT / "baselines" / "measured" / "smoke"])
    fresh = copy.deepcopy(stored)
    fresh["settings"]["tasks"]["gsm8k"]["deviation"] = GSM8K_DEVIATION
    assert settings_mismatch(fresh, stored) == []
    hub = copy.deepcopy(fresh)
    hub["settings"]["tasks"]["gsm8k"].update(source="hub", fewshot_split="train")
    del hub["settings"]["tasks"]["gsm8k"]["deviation"]
    assert [d.split(":")[0] for d in settings_mismatch(hub, stored)] == ["tasks"]
    other = copy.deepcopy(fresh)
    other["settings"]["tasks"]["gsm8k"]["revision"] = "0" * 40
    assert settings_mismatch(other, fresh)
