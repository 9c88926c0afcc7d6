"""Sweep planning: configurations, shards and argument checks are pure functions."""

import pytest

from widthwise.errors import WidthwiseError
from widthwise.sweep import Config, parse_pcts, parse_shard, plan, shard


def test_plan_puts_the_base_first_then_the_method_then_the_controls():
    configs = plan([0, 10, 20], "maw", controls=True, control_pcts=[20])
    assert [c.label for c in configs] == [
        "base",
        "ppm-pct10",
        "ppm-pct20",
        "random-pct20",
        "ppm-reverse-pct20",
    ]
    assert plan([10], "ppm")[0] == Config("base", 0.0)  # the base is always measured: claims compare with it


def test_shards_partition_the_plan():
    configs = plan([0, 5, 10, 20, 30, 40, 50, 60], "ppm", controls=True, control_pcts=[40])
    for n in (1, 2, 3, 7, 12):
        parts = [shard(configs, (i, n)) for i in range(1, n + 1)]
        flat = [c for part in parts for c in part]
        assert sorted(flat, key=configs.index) == configs and len(flat) == len(configs)
    assert shard(configs, None) == configs


@pytest.mark.parametrize("text", ["", "a,b", "10,10", "100", "-5"])
def test_bad_pcts(text):
    with pytest.raises(WidthwiseError, match="--pct"):
        parse_pcts(text)


@pytest.mark.parametrize("text", ["3", "0/2", "3/2", "a/b", "1/0"])
def test_bad_shards(text):
    with pytest.raises(WidthwiseError, match="--shard"):
        parse_shard(text)


def test_good_arguments():
    assert parse_pcts("20, 0,10") == [0.0, 10.0, 20.0]
    assert parse_shard("2/7") == (2, 7)
