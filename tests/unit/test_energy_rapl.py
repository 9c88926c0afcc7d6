"""The RAPL meter against a fake powercap sysfs tree in a temporary folder (the hardware boundary)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from widthwise.bench.energy import RaplMeter, rapl_delta_uj

MAX = 262_143_328_850  # a real package's max_energy_range_uj


def fake_powercap(root: Path, packages: dict[int, int], max_range: int = MAX) -> Path:
    """intel-rapl:N package zones (plus a core subzone that must be ignored) with energy_uj = packages[N]."""
    for n, uj in packages.items():
        z = root / f"intel-rapl:{n}"
        z.mkdir(parents=True)
        (z / "name").write_text(f"package-{n}\n")
        (z / "energy_uj").write_text(f"{uj}\n")
        (z / "max_energy_range_uj").write_text(f"{max_range}\n")
        (z / "constraint_0_power_limit_uw").write_text("125000000\n")  # PL1 125 W
        (z / "constraint_1_power_limit_uw").write_text("150000000\n")  # PL2 150 W
        sub = root / f"intel-rapl:{n}:0"  # sysfs lists subzones beside packages too
        sub.mkdir()
        (sub / "name").write_text("core\n")
        (sub / "energy_uj").write_text("999999999\n")
        (sub / "max_energy_range_uj").write_text(f"{max_range}\n")
    return root


def set_energy(root: Path, n: int, uj: int) -> None:
    (root / f"intel-rapl:{n}" / "energy_uj").write_text(f"{uj}\n")


def test_delta_without_and_with_wraparound():
    assert rapl_delta_uj(100, 350, MAX) == 250
    assert rapl_delta_uj(MAX - 100, 50, MAX) == 150


def test_meter_sums_packages_in_joules(tmp_path):
    root = fake_powercap(tmp_path, {0: 1_000_000, 1: 5_000_000})
    m = RaplMeter(root)
    assert m.unavailable is None
    assert [z.name for z in m.zones] == ["intel-rapl:0", "intel-rapl:1"]  # the core subzone is not summed
    m.start()
    set_energy(root, 0, 3_500_000)  # +2.5 J
    set_energy(root, 1, 5_250_000)  # +0.25 J
    r = m.stop()
    assert r.joules == pytest.approx(2.75)
    assert r.method == "rapl" and r.seconds > 0


def test_meter_corrects_a_wraparound(tmp_path):
    root = fake_powercap(tmp_path, {0: MAX - 1_000_000, 1: 0})
    m = RaplMeter(root)
    m.start()
    set_energy(root, 0, 2_000_000)  # wrapped: 1 J to the top, 2 J after zero
    set_energy(root, 1, 500_000)
    assert m.stop().joules == pytest.approx(3.5)


def test_power_limit_is_the_highest_constraint_summed(tmp_path):
    m = RaplMeter(fake_powercap(tmp_path, {0: 0, 1: 0}))
    assert m.power_limit_w() == pytest.approx(300.0)
    assert m.facts()["zones"] == ["package-0", "package-1"]


def test_missing_tree_says_why(tmp_path):
    m = RaplMeter(tmp_path / "nope")
    assert m.unavailable and "does not exist" in m.unavailable
    (tmp_path / "empty").mkdir()
    assert "no RAPL package zones" in RaplMeter(tmp_path / "empty").unavailable


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_counter_says_why(tmp_path):
    root = fake_powercap(tmp_path, {0: 1})
    (root / "intel-rapl:0" / "energy_uj").chmod(0)
    m = RaplMeter(root)
    assert m.unavailable and "permission denied" in m.unavailable
