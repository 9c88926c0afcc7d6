"""A configuration cut into units of task families on two workers (widthwise.schedule) is assembled into
the Result an unsplit evaluation gives: the same cache key, the same metrics and per-document records.
The real default model (PPM 20%) through real lm-eval on the smoke suite."""

import pytest
import torch

from widthwise import sweep
from widthwise.evaluation.run import set_threads
from widthwise.results import CHECKPOINT_SUFFIX, read_result

pytestmark = pytest.mark.slow


def test_a_configuration_split_over_two_workers_equals_the_unsplit_evaluation(
    default_model, tmp_path, monkeypatch
):
    from widthwise.models import save_model

    # A cache of its own: a Result cached by an earlier run would return without running any unit.
    monkeypatch.setenv("WIDTHWISE_CACHE", str(tmp_path / "cache"))
    model = save_model(default_model.model, default_model.tokenizer, tmp_path / "model", {}, force=False)
    config = sweep.Config("ppm", 20.0)
    out = tmp_path / "sweep"
    lines: list[str] = []
    ran = sweep.run(str(model), [config], out, suite="smoke", jobs=2, log=lines.append)
    assert [st.config for st in ran] == [config]  # one configuration, however many units ran it
    parts = [line for line in lines if "] ppm-pct20 eval part " in line]
    assert len(parts) == 2 and any("part 1/2" in x for x in parts) and any("part 2/2" in x for x in parts)
    assert any("] ppm-pct20 eval done in" in line for line in lines)  # then assembled
    assert not list((out / sweep.CHECKPOINTS).rglob(f"*{CHECKPOINT_SUFFIX}"))  # merged, then removed
    split = read_result(sweep.result_path(out, "eval", config))

    # The unsplit evaluation, in this process, uncached, with the sweep's one thread.
    threads = torch.get_num_threads()
    try:
        from support import evaluate_at

        set_threads()
        whole = evaluate_at(str(model), "smoke", 20, checkpoints=tmp_path / "whole-checkpoints")
    finally:
        torch.set_num_threads(threads)
    assert split["provenance"]["cache_key"] == whole["provenance"]["cache_key"]
    assert split["settings"] == whole["settings"]
    assert sorted(split["samples"]) == sorted(whole["samples"]) and len(split["samples"]) == 11
    for task in whole["samples"]:
        assert split["samples"][task] == whole["samples"][task], task
    assert split["metrics"] == whole["metrics"] and split["headline"] == whole["headline"]
    assert set(split["provenance"]["profile"]["tasks"]) == set(whole["provenance"]["profile"]["tasks"])
