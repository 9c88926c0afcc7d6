"""baselines.py and `widthwise baseline update`: diff first, refuse other settings, write only with --yes."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from widthwise.baselines import diff_metrics, filename_for, plan_update, refuse_mismatch
from widthwise.cli import main
from widthwise.errors import WidthwiseError
from widthwise.results import new_provenance, read_result, write_result

PAPER = Path(__file__).resolve().parents[2] / "baselines" / "paper"


@pytest.fixture
def stored(tmp_path):
    root = tmp_path / "baselines"
    (root / "measured").mkdir(parents=True)
    for f in sorted(PAPER.glob("llama-3.2-1b_*.json"))[:2]:
        r = read_result(f)
        r["stage"], r["tier"] = "eval", "gpu"
        r["provenance"] = new_provenance(stage="eval", model_source="/models/llama-1b")
        write_result(r, root / "measured" / filename_for(r))
    return root


def _new_results(stored, tmp_path, **settings):
    out = tmp_path / "new"
    for f in sorted((stored / "measured").glob("*.json")):
        r = read_result(f)
        r["metrics"]["mmlu/acc"]["value"] += 0.01
        r["settings"].update(settings)
        write_result(r, out / f.name)
    return out


def test_filenames_are_stable():
    r = read_result(PAPER / "llama-3.2-1b_ppm-pct40_paper.json")
    assert filename_for(r) == "llama-3.2-1b_ppm-pct40_paper.json"


def test_diff_reports_change_in_standard_errors():
    a = {"metrics": {"mmlu/acc": {"value": 0.30, "n": 10000}, "x/y": {"value": 1.0}}}
    b = {"metrics": {"mmlu/acc": {"value": 0.31, "n": 10000}, "z/w": {"value": 2.0}}}
    rows = {r.metric: r for r in diff_metrics(a, b)}
    assert rows["mmlu/acc"].delta == pytest.approx(0.01)
    se = ((0.30 * 0.70 + 0.31 * 0.69) / 10000) ** 0.5  # each side's binomial stderr, combined
    assert rows["mmlu/acc"].delta_se == pytest.approx(0.01 / se)
    assert rows["x/y"].new is None and rows["z/w"].stored is None


def test_plan_and_mismatch(stored, tmp_path):
    new = [read_result(f) for f in sorted(_new_results(stored, tmp_path, dtype="float16").glob("*.json"))]
    plan = plan_update(new, stored / "measured")
    assert [c.status for c in plan] == ["changed", "changed"]
    assert plan[0].mismatch == ["dtype: 'bfloat16' != 'float16'"]
    with pytest.raises(WidthwiseError, match="different settings"):
        refuse_mismatch(plan)


def test_update_is_a_dry_run_without_yes(stored, tmp_path, capsys):
    new = _new_results(stored, tmp_path)
    before = {p.name: p.read_bytes() for p in (stored / "measured").glob("*.json")}
    args = ["baseline", "update", str(new), "--name", "measured", "--root", str(stored)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "mmlu/acc" in out and "+0.01" in out and "dry run: 2 file(s) would be written" in out
    assert {p.name: p.read_bytes() for p in (stored / "measured").glob("*.json")} == before
    assert main([*args, "--yes"]) == 0
    assert "wrote 2 file(s)" in capsys.readouterr().out
    for name, old in before.items():
        assert (stored / "measured" / name).read_bytes() != old
    assert main([*args, "--yes"]) == 0
    assert "already up to date" in capsys.readouterr().out


def test_update_refuses_other_settings_unless_allowed(stored, tmp_path, capsys):
    new = _new_results(stored, tmp_path, bootstrap_iters=100)
    args = ["baseline", "update", str(new), "--name", "measured", "--root", str(stored), "--yes"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--allow-mismatch" in err and "bootstrap_iters: None != 100" in err
    assert main([*args, "--allow-mismatch"]) == 0


def test_measured_results_never_go_into_the_paper_baselines(stored, tmp_path, capsys):
    shutil.copytree(stored / "measured", tmp_path / "m")
    assert main(["baseline", "update", str(tmp_path / "m"), "--name", "paper", "--root", str(stored)]) == 2
    assert "paper's own results" in capsys.readouterr().err


@pytest.mark.parametrize(
    "stand_in, limit, why",
    [
        ("FakeCudaDevice: this CPU stands in for a CUDA device", None, "made with FakeCudaDevice"),
        ("stand-in model folder /tmp/s/meta-llama--Llama-3.2-1B", None, "made with stand-in model folder"),
        (None, 3, "made with --limit 3"),
    ],
)
def test_a_rehearsal_is_never_stored_as_a_baseline(stored, tmp_path, capsys, stand_in, limit, why):
    out = tmp_path / "rehearsed"
    for f in sorted((stored / "measured").glob("*.json")):
        r = read_result(f)
        r["provenance"]["stand_in"] = stand_in
        r["settings"]["limit"] = limit
        write_result(r, out / f.name)
    argv = ["baseline", "update", str(out), "--name", "measured", "--root", str(stored), "--yes"]
    before = {f.name: f.read_bytes() for f in (stored / "measured").glob("*.json")}
    assert main([*argv, "--allow-mismatch"]) == 2
    err = capsys.readouterr().err
    assert why in err and "a rehearsal is never a baseline" in err
    assert {f.name: f.read_bytes() for f in (stored / "measured").glob("*.json")} == before
