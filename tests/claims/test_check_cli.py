"""`widthwise check` and `widthwise report` on baselines/paper: exit codes, one-line errors, step summary."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest

from widthwise.claims import load_thresholds
from widthwise.cli import main
from widthwise.results import read_result, write_result

ROOT = Path(__file__).resolve().parents[2]
PAPER = ROOT / "baselines" / "paper"
THRESHOLDS = ROOT / "thresholds.toml"


def test_check_paper_exits_0_with_a_table(capsys, monkeypatch):
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    assert main(["check", str(PAPER), "--thresholds", str(THRESHOLDS)]) == 0
    out = capsys.readouterr().out
    head = out.splitlines()[0].split()
    assert head == ["claim", "model", "configuration", "observed", "bound", "n", "MDE", "verdict"]
    assert "mmlu-drops" in out and "FAILS" not in out
    # The summary counts only verdicts that occur, so the exact line is what says nothing failed.
    assert "85 checks of 23 claims: 62 holds, 5 skipped, 18 reported" in out.splitlines()


def test_check_json_and_step_summary_is_appended(tmp_path, capsys, monkeypatch):
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    assert main(["check", str(PAPER), "--thresholds", str(THRESHOLDS), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["exit_code"] == 0
    assert {v["verdict"] for v in data["verdicts"]} == {"holds", "skipped", "reported"}
    assert main(["check", str(PAPER), "--thresholds", str(THRESHOLDS)]) == 0
    text = summary.read_text()
    assert text.startswith("earlier step\n")
    assert text.count("### widthwise check") == 2
    assert "| claim" in text and "| mmlu-drops" in text


def test_check_fails_with_exit_1_on_a_perturbed_table(tmp_path, capsys):
    for f in PAPER.glob("llama-3.2-1b_*.json"):
        r = read_result(f)
        if (r["pruning"] or {}).get("pct") == 40:
            r["metrics"]["mmlu/acc"]["value"] = 0.35
        write_result(r, tmp_path / f.name)
    assert main(["check", str(tmp_path), "--thresholds", str(THRESHOLDS)]) == 1
    out = capsys.readouterr().out
    assert "mmlu-drops FAILS: meta-llama/Llama-3.2-1B at pct 40 (2.40x) [paper]" in out
    assert "0.35 vs base 0.3111" in out


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


@pytest.mark.parametrize(
    "toml, needle",
    [
        ("version = 1\n[claims.x\n", "not valid TOML"),
        ('[claims.x]\nkind = "rises"\n', "unknown kind 'rises'"),
        (
            '[claims.x]\nkind = "drop"\nstatement = "s"\nmetric = "mmlu/acc"\nmodels = ["m"]\n'
            'tiers = ["paper"]\nconfigs = "all_pruned"\nmargn = 0.1\n',
            "unknown key(s) margn",
        ),
        (
            '[claims.x]\nkind = "drop"\nstatement = "s"\nmetric = "mmlu/accuracy"\nmodels = ["m"]\n'
            'tiers = ["paper"]\nconfigs = "all_pruned"\n',
            "unknown metric 'mmlu/accuracy'",
        ),
    ],
)
def test_malformed_thresholds_exit_2_with_one_line(tmp_path, capsys, toml, needle):
    bad = tmp_path / "thresholds.toml"
    bad.write_text(toml)
    assert main(["check", str(PAPER), "--thresholds", str(bad)]) == 2
    err = _one_line_error(capsys)
    assert err.startswith("widthwise check: error:") and needle in err


@pytest.mark.parametrize(
    "mutate, needle",
    [
        (lambda r: r["metrics"].__setitem__("mmlu/acc", {"value": "high"}), "non-numeric value"),
        (lambda r: r.pop("settings"), "missing field(s) settings"),
    ],
)
def test_malformed_result_exits_2_with_one_line(tmp_path, capsys, mutate, needle):
    r = read_result(PAPER / "llama-3.2-1b_base_paper.json")
    mutate(r)
    (tmp_path / "bad.json").write_text(json.dumps(r))
    assert main(["check", str(tmp_path / "bad.json"), "--thresholds", str(THRESHOLDS)]) == 2
    assert needle in _one_line_error(capsys)


def test_results_under_different_settings_are_refused(tmp_path, capsys):
    for f in PAPER.glob("llama-3.2-3b_*.json"):
        r = read_result(f)
        if (r["pruning"] or {}).get("pct") == 10:
            r["settings"]["dtype"] = "float16"
        write_result(r, tmp_path / f.name)
    assert main(["check", str(tmp_path), "--thresholds", str(THRESHOLDS)]) == 2
    assert "different settings: dtype" in _one_line_error(capsys)


def test_report_writes_tables_and_plots(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    # The 3B tables alone keep this quick; the whole paper is `widthwise report baselines/paper`.
    src = tmp_path / "in"
    keep = {"mmlu/acc", "ifeval/prompt_level_strict_acc", "truthfulqa_mc2/acc", "bench:avg/j_per_token"}
    for f in PAPER.glob("llama-3.2-3b_*.json"):
        r = read_result(f)
        r["metrics"] = {k: v for k, v in r["metrics"].items() if k in keep}
        write_result(r, src / f.name)
    out = tmp_path / "report"
    assert main(["report", str(src), "--out", str(out), "--thresholds", str(THRESHOLDS)]) == 0
    md = (out / "report.md").read_text()
    assert "mmlu-truthfulqa-correlation-3b" in md and "| mmlu/acc" in md
    pngs = sorted(p.name for p in (out / "plots").glob("*.png"))
    assert pngs == [
        "bench-avg__j_per_token.png",
        "dichotomy_paper_llama-3.2-3b.png",
        "ifeval__prompt_level_strict_acc.png",
        "mmlu__acc.png",
        "truthfulqa_mc2__acc.png",
    ]
    for p in pngs:
        assert (out / "plots" / p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"(plots/{p})" in md
        # Drawn, not blank: a blank canvas is one colour (the curves' data are tested in test_report).
        pixels = plt.imread(out / "plots" / p)
        assert len(np.unique(pixels.reshape(-1, pixels.shape[-1]), axis=0)) > 10, p


def test_claims_that_match_nothing_are_listed_not_dropped(tmp_path, capsys):
    for f in PAPER.glob("llama-3.2-3b_*.json"):
        write_result(read_result(f), tmp_path / f.name)
    assert main(["check", str(tmp_path), "--thresholds", str(THRESHOLDS), "--json"]) == 0
    listed = set(json.loads(capsys.readouterr().out)["not_applicable"])
    other_tiers = {c.id for c in load_thresholds(THRESHOLDS) if "paper" not in c.tiers}
    assert (
        listed
        == {
            "instruct-ifeval-drops",
            "instruct-ifeval-drops-nondegenerate",
            "energy-per-token-mmlu-b1-1b",
        }
        | other_tiers
    )
    # The console counts them in one line; --json (above) and report.md name them.
    assert main(["check", str(tmp_path), "--thresholds", str(THRESHOLDS)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [x for x in lines if "not applicable" in x] == [
        f"{len(listed)} claims not applicable to these Results (no matching tier or model, or nothing "
        "planned that they select): see report.md or `widthwise check --json`"
    ]


def test_the_report_shows_chance_plan_waivers_and_pass_rates(tmp_path, capsys):
    out = tmp_path / "report"
    assert (
        main(["report", str(ROOT / "baselines" / "measured" / "cpu"), "--out", str(out), "--pass-rates"]) == 0
    )
    md = (out / "report.md").read_text()
    for section in (
        "**Distance above chance**",
        "**Planned versus present**",
        "**Waived, and reported only**",
        "**Expected pass rates**",
    ):
        assert section in md
    assert re.search(r"\| smollm2-135m-instruct \[cpu\] \| base \(2\.67x\)\s+\| 12/12\s+\|", md)
    assert "musr-holds [paper]: reported only: MuSR cannot be told from chance" in md
    # The GPU gate's design (claims/design.py): IFEval per model misses its Bonferroni share, the gate holds.
    assert re.search(r"ifeval-improves-2_4x\s+0\.4\d{3}\s+\S+\s+reported", md)
    assert re.search(r"whole gate \(10 gating claims\): (0\.99\d\d|1\.0000) at c=0\.5", md)


def test_check_power_prints_every_named_break_with_its_power_or_what_it_would_need(capsys, monkeypatch):
    """`check --power`: the pass rates, then one row per break of the GPU gate's rule; a break below 0.9
    says why, or at what n the paper's data would reach it (fewer reruns here: the text, not the rates)."""
    from widthwise import report
    from widthwise.claims import design

    rule = dataclasses.replace(design.load_rule(), runs=400)
    monkeypatch.setattr(design, "load_rule", lambda path=None: rule)
    monkeypatch.setattr(report, "cpu_baselines", lambda: None)  # the CPU tier's rate: test_rerun.py
    assert main(["check", str(PAPER), "--thresholds", str(THRESHOLDS), "--power"]) == 0
    out = capsys.readouterr().out
    table = out.split("power of the GPU gate against named breaks", 1)[1]
    for b in rule.breaks:
        row = next(x for x in table.splitlines() if x.startswith(b.id + " "))
        assert re.search(r"\s[01]\.\d{4}\s", row), row
        if " BELOW " in row:
            assert "x the paper's n" in row or "no gating claim" in row or "no candidate claim" in row, row
    assert re.search(r"knowledge-flat\s+1\.0000 .* ok ", table)
    assert re.search(r"whole gate \(\d+ gating claims\): (0\.9\d\d\d|1\.0000)", out)
