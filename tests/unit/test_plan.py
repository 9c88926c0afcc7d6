"""Plan files: written once per shard, grown by union on a rerun, refused when they disagree, merged."""

from __future__ import annotations

import json

import pytest

from widthwise.errors import WidthwiseError
from widthwise.plan import Planned, plan_dict, plan_path, read_plans, write_plan
from widthwise.results import result_files


def _plan(**kw):
    base = dict(
        tier="gpu",
        suite="paper",
        model="meta-llama/Llama-3.2-1B",
        tasks=["mmlu", "ifeval"],
        configs=[(None, 0.0), ("ppm", 10.0), ("ppm", 40.0)],
        bench={"workloads": ["mmlu"], "batch_sizes": [1, 8]},
        shard="1/2",
        shard_configs=["base", "ppm-pct40"],
    )
    return plan_dict(**{**base, **kw})


def test_each_shard_names_the_whole_sweep_and_plans_merge_by_union(tmp_path):
    write_plan(tmp_path / "a" / "results", _plan())
    write_plan(tmp_path / "b" / "results", _plan(shard="2/2", shard_configs=["ppm-pct10"]))
    write_plan(tmp_path / "c" / "results", _plan(model="meta-llama/Llama-3.2-3B", configs=[(None, 0)]))
    assert plan_path(tmp_path, "2/2").name == "shard-2-of-2.plan.json"
    one_b, three_b = read_plans([tmp_path])
    assert one_b.configs == (Planned(None, 0.0), Planned("ppm", 10.0), Planned("ppm", 40.0))
    assert one_b.bench_cells == ("mmlu_b1", "mmlu_b8") and one_b.tasks == ("ifeval", "mmlu")
    assert "a/results/plans/shard-1-of-2.plan.json" in one_b.source and "b/results" in one_b.source
    assert three_b.configs == (Planned(None, 0.0),)


def test_a_plan_file_is_not_a_result(tmp_path):
    write_plan(tmp_path, _plan())
    (tmp_path / "r.json").write_text("{}")
    assert [f.name for f in result_files(tmp_path)] == ["r.json"]


def test_a_rerun_may_add_configurations_but_not_change_what_is_measured(tmp_path):
    path = write_plan(tmp_path, _plan(configs=[(None, 0.0)], shard_configs=["base"]))
    write_plan(tmp_path, _plan(configs=[("ppm", 10.0)], shard_configs=["ppm-pct10"]))
    data = json.loads(path.read_text())
    assert [c["pct"] for c in data["configs"]] == [0.0, 10.0] and data["shard_configs"] == [
        "base",
        "ppm-pct10",
    ]
    before = path.read_text()
    with pytest.raises(WidthwiseError, match="suite differ"):
        write_plan(tmp_path, _plan(suite="cpu"))
    assert path.read_text() == before


def test_plans_of_one_model_with_two_suites_are_refused(tmp_path):
    write_plan(tmp_path / "a", _plan())
    write_plan(tmp_path / "b", _plan(suite="cpu", tier="gpu"))
    with pytest.raises(WidthwiseError, match="different suites"):
        read_plans([tmp_path])


@pytest.mark.parametrize(
    "data, match",
    [({"schema": "x"}, "not a widthwise plan"), ({"schema": "widthwise.plan/1", "tier": "gpu"}, "malformed")],
)
def test_a_bad_plan_file_is_one_clear_error(tmp_path, data, match):
    (tmp_path / "plans").mkdir()
    (tmp_path / "plans" / "all.plan.json").write_text(json.dumps(data))
    with pytest.raises(WidthwiseError, match=match):
        read_plans([tmp_path])
