"""A plug-in method is gated as PPM is: every claim stated on PPM gets a twin `<id>@<method>` on the
measured tiers, with the method's own reverse as its reverse control, and the report sets the methods
side by side. Shown on the stored CPU sweep (baselines/measured/cpu) with its PPM and ppm-reverse Results
relabelled as a plug-in's: a faithful plug-in is judged exactly as PPM, a broken one (its selection the
wrong way round) fails the gate."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from widthwise.claims import check
from widthwise.claims.subjects import subjects, twin, with_subjects
from widthwise.points import group_results
from widthwise.report.tables import check_text, method_rows
from widthwise.results import collect_results

ROOT = Path(__file__).resolve().parents[2]
CPU = ROOT / "baselines" / "measured" / "cpu"
PLUGIN = "acme"


def relabelled(result: dict, method: str) -> dict:
    r = copy.deepcopy(result)
    r["pruning"]["method"] = method
    return r


@pytest.fixture(scope="module")
def at_40():
    """The stored base, PPM 40% and ppm-reverse 40% (the main job's three configurations)."""
    by_slug = {}
    for r in collect_results([CPU]):
        pr = r["pruning"]
        slug = "base" if pr is None else f"{pr['method']}-{pr['pct']:g}"
        by_slug[slug] = r
    return by_slug["base"], by_slug["ppm-40"], by_slug["ppm-reverse-40"]


def _by_claim(verdicts):
    out = {}
    for v in verdicts:
        out.setdefault(v.claim, []).append(v.verdict)
    return out


def test_a_faithful_plugin_is_judged_exactly_as_ppm(claims, at_40):
    base, ppm, rev = at_40
    results = [base, ppm, rev, relabelled(ppm, PLUGIN), relabelled(rev, PLUGIN + "-reverse")]
    chk = check(results, claims)
    got = _by_claim(chk.verdicts)
    ppm_claims = [c for c in got if "@" not in c]
    twins = [c for c in got if c.endswith("@" + PLUGIN)]
    assert twins and {t.removesuffix("@" + PLUGIN) for t in twins} == set(ppm_claims)
    for c in ppm_claims:
        assert got[c + "@" + PLUGIN] == got[c], c
    # Among them the gating controls: the plug-in against its own reverse, paired per document.
    control = [v for v in chk.verdicts if v.claim == f"cpu-ppm-beats-ppm-reverse-lambada@{PLUGIN}"]
    assert [v.verdict for v in control] == ["holds"] and f"vs {PLUGIN}-reverse" in control[0].config
    assert chk.exit_code == 0
    headers, rows = method_rows(chk.verdicts)
    assert headers == ["claim", "model", "ppm", PLUGIN]
    assert all(r[2] == r[3] for r in rows), rows
    assert "methods side by side" in check_text(chk)


def test_a_plugin_that_keeps_the_wrong_neurons_fails_the_gate(claims, at_40):
    base, ppm, rev = at_40
    # The perturbation: the plug-in's selection is the reverse of what it should be.
    results = [base, ppm, rev, relabelled(rev, PLUGIN), relabelled(ppm, PLUGIN + "-reverse")]
    chk = check(results, claims)
    failed = {v.claim for v in chk.verdicts if v.verdict == "fails"}
    assert f"cpu-ppm-beats-ppm-reverse-lambada@{PLUGIN}" in failed
    assert f"cpu-lambada-perplexity-rises@{PLUGIN}" not in failed  # ppm-reverse also raises perplexity
    assert not {c for c in failed if "@" not in c}  # PPM itself still holds
    assert chk.exit_code == 1


def test_controls_are_not_subjects_and_the_paper_tier_gets_no_twins(claims, at_40):
    base, ppm, rev = at_40
    groups = group_results([base, ppm, rev, relabelled(rev, "random"), relabelled(ppm, "vow-reverse")])
    assert subjects(groups) == []
    groups = group_results([base, relabelled(ppm, PLUGIN)])
    assert subjects(groups) == [PLUGIN]
    paper_only = [c for c in claims if c.tiers == ("paper",)]
    assert paper_only and all(twin(c, PLUGIN) is None for c in paper_only)
    both = next(c for c in claims if "paper" in c.tiers and "gpu" in c.tiers)
    t = twin(both, PLUGIN)
    assert t.tiers == ("gpu",) and t.methods == (PLUGIN,) and t.id == f"{both.id}@{PLUGIN}"
    gated = [c for c in with_subjects(claims, groups) if c.id.endswith("@" + PLUGIN)]
    reported = [c for c in gated if c.reported("cpu")]
    assert reported and all(c.reported("cpu").startswith("as for PPM (") for c in reported)


def test_the_regression_gate_compares_a_plugin_with_its_own_stored_baseline(at_40):
    from widthwise.claims import regression
    from widthwise.errors import WidthwiseError

    _, ppm, rev = at_40
    stored = [relabelled(ppm, PLUGIN)]  # what `baseline update` stored for the plug-in at 40%
    held = regression.check([relabelled(ppm, PLUGIN)], stored)
    assert held and {v.verdict for v in held} == {"holds"}
    # A change to the plug-in that moves which neurons it keeps is caught document by document.
    changed = regression.check([relabelled(rev, PLUGIN)], stored)
    assert "fails" in {v.verdict for v in changed}
    # And it is never compared with PPM's baseline in its place.
    with pytest.raises(WidthwiseError, match="no stored baseline for .* acme"):
        regression.check([relabelled(ppm, PLUGIN)], [ppm])
