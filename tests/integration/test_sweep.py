"""`widthwise sweep` end to end through real lm-eval on a tiny Llama: resume, shards, check merging shards."""

import json
from functools import partial
from pathlib import Path

import pytest

from support import save_tiny_llama
from widthwise import sweep
from widthwise.cli import main

pytestmark = pytest.mark.slow

CLAIMS = """
version = 1

[claims.tiny-lambada-perplexity-rises]
statement = "LAMBADA perplexity of the tiny model rises as it is narrowed"
metric = "lambada_openai/perplexity"
kind = "monotone_increasing"
models = ["tiny-llama"]
tiers = ["cpu"]
tolerance = 0.0

[claims.tiny-arc-drops]
statement = "ARC-Challenge does not survive pruning a random model"
metric = "arc_challenge/acc_norm"
kind = "drop"
models = ["tiny-llama"]
tiers = ["cpu"]
configs = "all_pruned"
margin = 0.0
"""


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory, default_model) -> Path:
    return save_tiny_llama(tmp_path_factory.mktemp("models") / "tiny-llama", default_model.tokenizer)


@pytest.fixture(scope="module")
def thresholds(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("claims") / "thresholds.toml"
    path.write_text(CLAIMS)
    return path


def verdicts(dirs, thresholds, capsys) -> tuple[int, list]:
    capsys.readouterr()
    code = main(["check", *map(str, dirs), "--thresholds", str(thresholds), "--json"])
    out = json.loads(capsys.readouterr().out)
    return code, sorted(out["verdicts"], key=lambda v: json.dumps(v, sort_keys=True))


def test_interrupted_sweep_resumes_and_shards_check_like_one_run(tiny_llama, thresholds, tmp_path, capsys):
    configs = sweep.plan([0, 20, 50], "ppm")
    out = tmp_path / "whole"

    # Interrupt after the first configuration: its Result is kept, nothing half-written is left behind.
    real = partial(sweep.eval_stage, suite="smoke")
    calls = []

    def interrupted(model, config, path):
        if calls:
            raise KeyboardInterrupt
        calls.append(config)
        real(model, config, path)

    with pytest.raises(KeyboardInterrupt):
        sweep.run(str(tiny_llama), configs, out, suite="smoke", bench=None, eval_fn=interrupted)
    first = sweep.result_path(out, "eval", configs[0])
    assert first.is_file() and not sweep.result_path(out, "eval", configs[1]).exists()
    stamp = first.stat().st_mtime_ns

    ran = sweep.run(str(tiny_llama), configs, out, suite="smoke", bench=None)
    assert [s.config for s in ran] == configs[1:]  # the finished configuration is not redone
    assert first.stat().st_mtime_ns == stamp
    assert sweep.run(str(tiny_llama), configs, out, suite="smoke", bench=None) == []

    # Two shards in two folders, checked together, give the verdicts of the unsharded run.
    # (Each shard evaluates in two worker processes, as `--jobs 2` does on a 2-core machine.)
    for i in (1, 2):
        shard = sweep.shard(configs, (i, 2))
        ran = sweep.run(
            str(tiny_llama),
            shard,
            tmp_path / f"shard{i}",
            suite="smoke",
            bench=None,
            jobs=2,
            planned=configs,
            shard_label=f"{i}/2",
        )
        assert sorted(s.config.pct for s in ran) == sorted(c.pct for c in shard)
    # base and pct 50, plus sweep.json and the plan of the whole sweep
    assert len(list((tmp_path / "shard1").rglob("*.json"))) == 4
    plan = json.loads((tmp_path / "shard1" / "results" / "plans" / "shard-1-of-2.plan.json").read_text())
    assert [c["pct"] for c in plan["configs"]] == [0, 20, 50] and plan["shard_configs"] == [
        "base",
        "ppm-pct50",
    ]
    whole = verdicts([out], thresholds, capsys)
    sharded = verdicts([tmp_path / "shard1", tmp_path / "shard2"], thresholds, capsys)
    assert whole == sharded
    assert {v["claim"] for v in whole[1]} == {"tiny-lambada-perplexity-rises", "tiny-arc-drops"}
    # Without shard 2 its configuration is named as missing by shard 1's plan, not silently left out.
    code, lost = verdicts([tmp_path / "shard1"], thresholds, capsys)
    assert code == 1
    assert {(v["claim"], v["config"]) for v in lost if v["verdict"] == "missing"} >= {
        ("plan", "pct 20 (1.61x)"),
        ("tiny-arc-drops", "pct 20 (1.61x)"),
    }


def test_a_rerun_with_other_settings_is_refused(tiny_llama, tmp_path, capsys):
    out = tmp_path / "sweep"
    (out).mkdir()
    (out / "sweep.json").write_text(json.dumps({"model": "other", "suite": "smoke", "configs": []}))
    code = main(
        ["sweep", str(tiny_llama), "--suite", "smoke", "--pcts", "0", "--no-bench", "--out", str(out)]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "holds a sweep with other settings (" in err and "model" in err
    assert json.loads((out / "sweep.json").read_text())["model"] == "other"  # left as it was
