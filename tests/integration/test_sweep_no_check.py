"""`widthwise sweep --no-check`: the Results and the plan are written, nothing is checked or reported, and
the exit code says the sweep ran (nox -s claims-gpu sweeps each model so, then checks them together)."""

import json

import pytest

from support import run_cli, save_tiny_llama

pytestmark = pytest.mark.slow

CLAIM = """
version = 1

[claims.tiny-lambada-perplexity-rises]
statement = "LAMBADA perplexity of the tiny model rises as it is narrowed"
metric = "lambada_openai/perplexity"
kind = "monotone_increasing"
models = ["tiny-llama"]
tiers = ["cpu"]
tolerance = 0.0
"""


def test_no_check_writes_results_and_plans_and_leaves_the_check_for_later(tmp_path, default_model, capsys):
    model = save_tiny_llama(tmp_path / "tiny-llama", default_model.tokenizer)
    out = tmp_path / "sweep"
    argv = ["sweep", str(model), "--suite", "smoke", "--pcts", "0,50", "--no-bench", "--limit", "1"]
    code, stdout, _ = run_cli([*argv, "--no-check", "--out", str(out)], capsys)
    assert code == 0 and "not checked (--no-check)" in stdout
    assert {p.name for p in (out / "results" / "eval").glob("*.json")} == {"base.json", "ppm-pct50.json"}
    plan = json.loads((out / "results" / "plans" / "all.plan.json").read_text())
    assert [c["pct"] for c in plan["configs"]] == [0, 50]
    assert not (out / "report").exists()
    # The check that was left for later runs on what the sweep wrote.
    thresholds = tmp_path / "thresholds.toml"
    thresholds.write_text(CLAIM)
    code, stdout, _ = run_cli(["check", str(out / "results"), "--thresholds", str(thresholds)], capsys)
    assert code in (0, 1) and "tiny-lambada-perplexity-rises" in stdout
