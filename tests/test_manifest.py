"""The device line of every manifest: the CPU's model name, its torch kernels and the thread count."""

from __future__ import annotations

import platform

import pytest
import torch

from repsep.manifest import cpu_name, device_description


def test_cpu_name_reads_the_model_name_line(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 9554 64-Core Processor\n"
                    "processor\t: 1\nmodel name\t: AMD EPYC 9554 64-Core Processor\n")
    assert cpu_name(info) == "AMD EPYC 9554 64-Core Processor"


@pytest.mark.parametrize("content", [None, "processor\t: 0\nmodel name\t:\n", b"\xff\xfe"])
def test_cpu_name_without_a_model_name_falls_back_to_platform(tmp_path, content):
    info = tmp_path / "cpuinfo"
    if isinstance(content, bytes):
        info.write_bytes(content)
    elif content is not None:
        info.write_text(content)
    assert cpu_name(info) == (platform.processor() or platform.machine())


@pytest.mark.skipif(torch.cuda.is_available(), reason="the CPU line")
def test_device_line_names_kernels_and_threads():
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        line = device_description()
    finally:
        torch.set_num_threads(before)
    assert line.startswith(f"cpu: {cpu_name()} (") and line.endswith(", 1 threads")
    assert f"{torch.backends.cpu.get_cpu_capability()} kernels" in line, line
