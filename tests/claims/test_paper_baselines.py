"""baselines/paper is a faithful, regenerable transcription of the paper's results files."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from widthwise.paper import transcribe, write_baselines
from widthwise.results import collect_results, read_result

ROOT = Path(__file__).resolve().parents[2]
PAPER = ROOT / "baselines" / "paper"
SOURCE = ROOT / "reference" / "paper"  # the authors' results files with their checksums (README there)


def test_the_source_files_are_the_authors_copies():
    sums = dict(line.split()[::-1] for line in (SOURCE / "SHA256SUMS").read_text().splitlines())
    assert sorted(sums) == sorted(p.name for p in SOURCE.glob("*.json"))
    for name, digest in sums.items():
        assert hashlib.sha256((SOURCE / name).read_bytes()).hexdigest() == digest, name


def test_baselines_regenerate_from_the_source(tmp_path):
    """The stored files are schema 1 (written before the Result builder); read, they upgrade to exactly
    what the transcriber writes today, so both the transcription and the upgrade step are pinned."""
    written = write_baselines(SOURCE, tmp_path)
    committed = sorted(p.name for p in PAPER.glob("*.json"))
    assert sorted(p.name for p in written) == committed
    for name in committed:
        fresh, stored = read_result(tmp_path / name), read_result(PAPER / name)
        assert fresh["provenance"].pop("git_sha", None) is None  # transcription runs no code of ours
        stored["provenance"].pop("git_sha", None)
        assert fresh == stored, name


def test_a_changed_source_figure_changes_the_transcription(tmp_path):
    src = tmp_path / "src"
    shutil.copytree(SOURCE, src)
    acc = json.loads((src / "llama_1b_complete_results_latest.json").read_text())
    entry = next(e for e in acc["models_evaluated"].values() if int(e["pruning_pct"]) == 40)
    entry["results"]["mmlu"]["accuracy"] = 0.5
    (src / "llama_1b_complete_results_latest.json").write_text(json.dumps(acc))
    one = transcribe(src)["llama-3.2-1b_ppm-pct40_paper.json"]["metrics"]["mmlu/acc"]
    stored = read_result(PAPER / "llama-3.2-1b_ppm-pct40_paper.json")["metrics"]["mmlu/acc"]
    assert one["value"] == 0.5 != stored["value"]


def test_transcription_matches_the_papers_tables():
    rs = transcribe(SOURCE)
    one = rs["llama-3.2-1b_ppm-pct40_paper.json"]["metrics"]
    # docs/paper.md: 1B at 2.4x, and the efficiency summary at 1.6x.
    assert one["ifeval/prompt_level_strict_acc"] == {"value": 0.1516, "stderr": 0.0154, "n": 541}
    assert one["leaderboard_musr/acc_norm"]["value"] == 0.4286
    assert (
        round(rs["llama-3.2-1b_ppm-pct60_paper.json"]["metrics"]["bench:avg/j_per_token"]["value"], 4)
        == 0.1352
    )
    b8 = rs["llama-3.2-3b_base_paper.json"]["metrics"]["bench:b8/throughput_tok_s"]["value"]
    assert round(b8, 1) == 153.6
    assert "lambada_openai/word_perplexity" not in one  # the notebook's 0.0 placeholders are dropped


def test_every_model_and_configuration_is_present():
    rs = collect_results([PAPER])
    by_model = {}
    for r in rs:
        by_model.setdefault(r["model"]["name"], set()).add((r["pruning"] or {}).get("pct", 0))
    assert by_model == {
        "meta-llama/Llama-3.2-1B": {0, 10, 20, 30, 40, 50, 60},
        "meta-llama/Llama-3.2-3B": {0, 10, 20, 30, 40, 50, 60},
        "meta-llama/Llama-3.2-1B-Instruct": {0, 10, 40, 60},
    }
    for r in rs:
        k = r["model"]["intermediate_size"]
        assert r["expansion_ratio"] == round(k / r["model"]["hidden_size"], 6)
        if r["pruning"]:
            assert r["pruning"]["intermediate_size"] == k == 8192 - int(r["pruning"]["pct"] * 8192 / 100)


def test_provenance_names_the_source_and_the_energy_flaw():
    for f in sorted(PAPER.glob("*.json")):
        r = json.loads(f.read_text())
        prov = r["provenance"]
        assert prov["source"] == "paper" and "2512.22671" in prov["paper"] and "97f9190" in prov["data"]
        has_energy = any(k.endswith("/j_per_token") for k in r["metrics"])
        assert has_energy == ("Instruct" not in r["model"]["name"])
        if has_energy:
            assert "only ratios" in prov["energy_unit_flaw"]
            assert "bench:b1/ttlt_ms" in r["metrics"] and "bench:b1/ttft_ms" not in r["metrics"]
    assert "carbon intensity" in (PAPER / "README.md").read_text()
