"""baselines/paper is a faithful, regenerable transcription of the paper's results files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from widthwise.paper import transcribe, write_baselines
from widthwise.results import collect_results

ROOT = Path(__file__).resolve().parents[2]
PAPER = ROOT / "baselines" / "paper"
SOURCE = ROOT.parent / "shared" / "reference" / "paper"
needs_source = pytest.mark.skipif(
    not (SOURCE / "expansion_rates.json").is_file(), reason=f"the paper's results files are not at {SOURCE}"
)


@needs_source
def test_baselines_regenerate_byte_for_byte(tmp_path):
    written = write_baselines(SOURCE, tmp_path)
    committed = sorted(p.name for p in PAPER.glob("*.json"))
    assert sorted(p.name for p in written) == committed
    for name in committed:
        assert (tmp_path / name).read_bytes() == (PAPER / name).read_bytes(), name


@needs_source
def test_transcription_matches_the_notes_tables():
    rs = transcribe(SOURCE)
    one = rs["llama-3.2-1b_ppm-pct40_paper.json"]["metrics"]
    # NOTES §3: 1B at 2.4x, and the efficiency summary at 1.6x.
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
