"""Provenance written beside every output: commit, config hash, seeds, package versions, device, command."""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

PACKAGES = ("repsep-bench", "torch", "torchvision", "timm", "numpy", "imagecorruptions-imaug", "scikit-image",
            "opentsne", "scikit-learn")


def git_commit(cwd: str | Path | None = None) -> str | None:
    """The commit of the source tree (with ``-dirty`` when it has uncommitted changes), or None outside git."""
    cwd = cwd or Path(__file__).resolve().parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5)
        if sha.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                               capture_output=True, text=True, timeout=5)
        return sha.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions[name] = importlib.metadata.version(name)
    return versions


def cpu_name(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The CPU's model name (Linux ``/proc/cpuinfo``), else what :mod:`platform` knows (e.g. ``x86_64``)."""
    with contextlib.suppress(OSError, UnicodeDecodeError):
        for line in cpuinfo.read_text(encoding="utf-8").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and value.strip():
                return value.strip()
    return platform.processor() or platform.machine()


def device_description() -> str:
    """``cuda: <GPU name> xN`` or ``cpu: <model name> (<machine>, <torch's CPU kernels>), N threads``: the CPU
    kernels (AVX2, AVX512 ...) and the thread count change the order of float sums, so a CPU run is repeatable bit
    for bit only where both are the same."""
    import torch

    if torch.cuda.is_available():
        return f"cuda: {torch.cuda.get_device_name(0)} x{torch.cuda.device_count()}"
    kernels = torch.backends.cpu.get_cpu_capability()
    return f"cpu: {cpu_name()} ({platform.machine()}, {kernels} kernels), {torch.get_num_threads()} threads"


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def config_hash(resolved: dict[str, Any]) -> str:
    """sha256 (first 16 hex) of the canonical JSON of a resolved config."""
    from repsep.io import dumps_json

    return sha256_bytes(dumps_json(resolved).encode())[:16]


def build_manifest(kind: str, *, seeds: dict[str, int] | None = None, config: dict[str, Any] | None = None,
                   inputs: dict[str, Any] | None = None) -> dict[str, Any]:
    """A manifest dict for an output folder of ``kind`` (train, eval, corrupt, analyze, report, ...).

    Wall-clock times are deliberately absent so that regenerated outputs are byte-identical.
    """
    manifest: dict[str, Any] = {
        "kind": kind,
        "command": " ".join(["repsep-bench", *sys.argv[1:]]),
        "git_commit": git_commit(),
        "packages": package_versions(),
        "device": device_description(),
        "seeds": seeds or {},
        "inputs": inputs or {},
    }
    if config is not None:
        manifest["config_hash"] = config_hash(config)
    return manifest
