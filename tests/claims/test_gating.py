"""The gating set is committed data (gating.toml), not what holds on the stored Results: a change that breaks
a gating claim is caught by `widthwise claims check` and refused by `baseline update` unless demoted by
name with a reason, and a demotion shows in gating.toml, the written Results, thresholds.toml and every
report. Real stored Results (baselines/measured/cpu) copied to tmp_path and perturbed there."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from widthwise.claims import gating, load_thresholds, rules
from widthwise.cli import main
from widthwise.results import read_result, write_result

ROOT = Path(__file__).resolve().parents[2]
CPU = ROOT / "baselines" / "measured" / "cpu"
CLAIM = "cpu-ppm-beats-ppm-reverse-lambada"  # frozen gating; fails when the control equals PPM
REVERSE = "smollm2-135m-instruct_ppm-reverse-pct20_cpu.json"


@pytest.fixture
def checkout(tmp_path):
    """A copy of the checkout's thresholds.toml and baselines/measured/{cpu,gpu} (gating files, rule,
    README, the stored CPU Results)."""
    shutil.copy(ROOT / "thresholds.toml", tmp_path / "thresholds.toml")
    measured = tmp_path / "baselines" / "measured"
    shutil.copytree(CPU, measured / "cpu")
    (measured / "gpu").mkdir()
    shutil.copy(ROOT / "baselines" / "measured" / "gpu" / gating.FILE, measured / "gpu" / gating.FILE)
    return tmp_path


def _broken_control(folder: Path) -> dict:
    """The stored ppm-reverse 20% Result with PPM 20%'s LAMBADA records and metrics: a control no worse than
    PPM, which breaks exactly the frozen claim that PPM beats ppm-reverse on LAMBADA."""
    ppm = read_result(folder / "smollm2-135m-instruct_ppm-pct20_cpu.json")
    r = read_result(folder / REVERSE)
    r["samples"]["lambada_openai"] = ppm["samples"]["lambada_openai"]
    r["metrics"].update({k: v for k, v in ppm["metrics"].items() if k.startswith("lambada_openai/")})
    return r


def _lay(checkout: Path, tier: str = "cpu") -> rules.Layout:
    return rules.layout(tier, checkout / "thresholds.toml")


def test_the_copy_checks_clean(checkout):
    assert rules.problems(_lay(checkout)) == []
    assert rules.problems(_lay(checkout, "gpu")) == []


def test_stored_results_that_break_a_gating_claim_fail_the_check(checkout, capsys):
    """Re-stored by hand (or by an update with --allow-mismatch): the claim fails, it is not demoted."""
    folder = checkout / "baselines" / "measured" / "cpu"
    write_result(_broken_control(folder), folder / REVERSE, overwrite=True)
    bad = rules.problems(_lay(checkout))
    assert any(b.startswith(f"{CLAIM}: frozen gating claim does not hold") and "FAILS" in b for b in bad), bad
    code = main(["claims", "check", "--tier", "cpu", "--thresholds", str(checkout / "thresholds.toml")])
    assert code == 1 and CLAIM in capsys.readouterr().out
    # Rewriting the block keeps the claim gating (gating.toml says so), so the check still fails.
    assert main(["claims", "write", "--thresholds", str(checkout / "thresholds.toml")]) == 1
    assert "reported_only" not in _claim_table(checkout, CLAIM)


def _claim_table(checkout: Path, cid: str) -> str:
    text = (checkout / "thresholds.toml").read_text()
    start = text.index(f"[claims.{cid}]")
    return text[start : text.index("\n[claims.", start + 1)]


def test_a_silent_demotion_in_thresholds_is_caught(checkout):
    """The old way: the block rewritten with the claim reported_only, no [[demoted]] entry."""
    th = checkout / "thresholds.toml"
    table = _claim_table(checkout, CLAIM)
    th.write_text(
        th.read_text().replace(table, table.replace("why = ", 'reported_only = "fails now"\nwhy = '))
    )
    bad = rules.problems(_lay(checkout))
    assert any(b.startswith(f"{CLAIM}: frozen gating claim of cpu is reported_only") for b in bad), bad


def test_a_hand_edit_of_a_gpu_claims_status_is_caught(checkout):
    th = checkout / "thresholds.toml"
    text = th.read_text()
    start = text.index("[claims.mmlu-drops]")
    th.write_text(text[:start] + text[start:].replace("why = ", 'reported_only = "by hand"\nwhy = ', 1))
    bad = rules.problems(_lay(checkout, "gpu"))
    assert bad == [
        f"mmlu-drops: frozen gating claim of gpu is reported_only or absent in thresholds.toml with no "
        f"[[demoted]] entry in {checkout / 'baselines' / 'measured' / 'gpu' / 'gating.toml'}"
    ]


def _update(checkout: Path, new: Path, *extra: str) -> int:
    return main(
        [
            "baseline",
            "update",
            str(new),
            "--name",
            "measured/cpu",
            "--root",
            str(checkout / "baselines"),
            "--thresholds",
            str(checkout / "thresholds.toml"),
            "--yes",
            *extra,
        ]
    )


def test_baseline_update_refuses_then_demotes(checkout, tmp_path_factory, capsys):
    folder = checkout / "baselines" / "measured" / "cpu"
    new = tmp_path_factory.mktemp("fresh") / REVERSE
    write_result(_broken_control(folder), new)
    before = {p.name: p.read_bytes() for p in [*folder.iterdir(), checkout / "thresholds.toml"]}

    assert _update(checkout, new) == 2
    err = capsys.readouterr().err
    assert (
        "1 gating claim(s) of tier cpu fail; nothing written" in err and f"\n  {CLAIM}: {CLAIM} FAILS" in err
    )
    assert {p.name: p.read_bytes() for p in [*folder.iterdir(), checkout / "thresholds.toml"]} == before

    # Demoting what is not gating, or what still holds, is refused too.
    other = "cpu-mmlu-margin-falls"  # reported only
    assert _update(checkout, new, "--demote", CLAIM, "--demote", other, "--reason", "x") == 2
    assert f"{other}: not a gating claim" in capsys.readouterr().err
    holding = "cpu-lambada-perplexity-rises"
    assert _update(checkout, new, "--demote", CLAIM, "--demote", holding, "--reason", "x") == 2
    assert f"{holding}: holds after this update" in capsys.readouterr().err
    assert _update(checkout, new, "--demote", CLAIM) == 2  # no reason
    assert (folder / REVERSE).read_bytes() == before[REVERSE]

    assert _update(checkout, new, "--demote", CLAIM, "--reason", "the control was re-run") == 0
    g = gating.read(folder / gating.FILE, "cpu")
    (d,) = g.demoted
    assert (d.claim, d.reason) == (CLAIM, "the control was re-run")
    assert d.update.startswith("widthwise baseline update --name measured/cpu: " + REVERSE)
    assert CLAIM in g.frozen and CLAIM not in g.gating
    assert read_result(folder / REVERSE)["provenance"]["demotions"] == [
        {"claim": CLAIM, "reason": "the control was re-run", "date": d.date}
    ]
    assert 'reported_only = """Demoted' in _claim_table(checkout, CLAIM)
    assert rules.problems(_lay(checkout)) == []  # consistent again, and says so

    # Every report lists it: the check's console and step summary, report.md.
    from widthwise import claims, report

    th = load_thresholds(checkout / "thresholds.toml")
    assert th.demotions == [d]
    line = f"demoted gating claims: {CLAIM} (cpu, {d.date}): the control was re-run"
    chk = claims.check(
        [read_result(folder / REVERSE), read_result(folder / "smollm2-135m-instruct_base_cpu.json")], th
    )
    assert line in report.check_text(chk).splitlines()
    assert line in report.check_markdown(chk)
    out = tmp_path_factory.mktemp("report")
    report.write_report([], out, demotions=th.demotions)
    assert line in (out / "report.md").read_text()
