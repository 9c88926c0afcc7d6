"""The device boundary (widthwise.device): how a device is chosen, refused and described, and the fake
that lets every stage's CUDA path run here.

The fake is a fake at the hardware boundary only: FakeCudaDevice says "cuda" to the stages while its
tensors live on this CPU, so the code a GPU runner executes (bf16, the gpu tier, the NVML meter, the
device's GEMM probe, the profile) runs in CPU CI; what only a GPU proves is named in docs/gpu.md.
"""

from __future__ import annotations

from collections import namedtuple

import pytest
import torch

from widthwise import device
from widthwise.device import CudaDevice, Device, FakeCudaDevice
from widthwise.errors import WidthwiseError

Proc = namedtuple("Proc", "pid usedGpuMemory")


@pytest.fixture
def fake_cuda(monkeypatch):
    monkeypatch.setenv(device.FAKE_ENV, "1")
    return device.resolve("cuda")


def test_specs_resolve_to_devices_or_one_line_refusals(monkeypatch):
    monkeypatch.delenv(device.FAKE_ENV, raising=False)
    assert device.resolve("cpu") == Device()
    assert device.resolve(Device()) is not None
    if not torch.cuda.is_available():
        assert device.resolve("auto") == Device()
        with pytest.raises(WidthwiseError, match="sees no CUDA device.*widthwise doctor"):
            device.resolve("cuda")
    for bad in ("tpu", "cuda:x", "cuda:1:2"):
        with pytest.raises(WidthwiseError, match="unknown device"):
            device.resolve(bad)


def test_the_fake_is_a_cuda_device_whose_tensors_live_on_this_cpu(fake_cuda, monkeypatch):
    assert isinstance(fake_cuda, FakeCudaDevice)
    assert device.resolve("auto") == fake_cuda  # auto picks the (fake) GPU, as on a runner
    assert (fake_cuda.kind, fake_cuda.label, fake_cuda.torch_device) == ("cuda", "cuda:0", "cpu")
    assert (fake_cuda.dtype, fake_cuda.tier, fake_cuda.meter) == (torch.bfloat16, "gpu", "nvml")
    assert fake_cuda.parallel_evaluations() == 1 and fake_cuda.visible_count() == 1
    assert "FakeCudaDevice" in fake_cuda.fake and "CPU" in fake_cuda.fake
    with pytest.raises(WidthwiseError, match="cuda:0 only"):
        device.resolve("cuda:1")
    facts = fake_cuda.facts()
    assert facts["fake"] == fake_cuda.fake and facts["device"] == "cuda:0"
    assert facts["cuda_device_name"].startswith("FakeCudaDevice on ")


def test_every_device_has_a_gemm_probe_with_the_same_keys(fake_cuda):
    cpu = Device().gemm_probe(1)
    fake = fake_cuda.gemm_probe(1, n=256, repeats=2)
    assert {"n", "dtype", "threads", "gflops"} <= set(cpu) and cpu["gflops"] > 0
    assert {"n", "dtype", "threads", "gflops", "device", "fake"} <= set(fake) and fake["gflops"] > 0


def test_a_cpu_device_warns_when_other_work_shares_its_cores():
    cpu = Device()
    assert cpu.busy_warning({"load_average_1_5_15": [0.1, 0.1, 0.1]}) is None
    warning = cpu.busy_warning({"load_average_1_5_15": [1.7, 1.0, 1.0], "usable_cores": 2})
    assert warning is not None and "load average 1.7 on 2 cores" in warning
    gpu = CudaDevice()
    assert gpu.busy_warning({"other_process_count": 0}) is None
    assert "2 other process(es)" in gpu.busy_warning({"other_process_count": 2, "gpu_name": "H100"})


def test_own_pids_include_every_pid_namespace_level(tmp_path):
    status = tmp_path / "status"
    status.write_text("Name:\tpython\nNSpid:\t48213\t17\nPPid:\t1\n")
    pids = device.own_pids(str(status))
    assert {48213, 17} <= pids and len(pids) in (2, 3)  # os.getpid() may be one of them


def test_nvml_host_pids_do_not_count_this_process_as_other():
    own = {4242}
    # On the host NVML lists our own PID: it is not "other".
    host = device.other_gpu_processes([Proc(4242, 900), Proc(77, 5000)], own, holds_context=True)
    assert host["count"] == 1 and [p["pid"] for p in host["processes"]] == [77] and host["note"] is None
    # In a container NVML lists the host PID of our process, which we cannot see: one entry is ours.
    boxed = device.other_gpu_processes([Proc(991234, 900)], own, holds_context=True)
    assert boxed["count"] == 0 and "PID namespace" in boxed["note"]
    boxed2 = device.other_gpu_processes([Proc(991234, 900), Proc(991300, 7000)], own, holds_context=True)
    assert boxed2["count"] == 1
    # Before we hold a CUDA context (doctor's check), every listed process is someone else's.
    before = device.other_gpu_processes([Proc(991234, 900)], own, holds_context=False)
    assert before["count"] == 1 and before["note"] is None
    assert device.other_gpu_processes([], own, holds_context=True)["count"] == 0


def test_the_cpu_offload_for_vllm_leaves_a_cpu_model_where_it_is(fake_cuda):
    lin = torch.nn.Linear(2, 2)
    for dev in (Device(), fake_cuda):
        with dev.offloaded(lin):
            assert lin.weight.device.type == "cpu"
        assert lin.weight.device.type == "cpu"
