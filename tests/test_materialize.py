"""Materialising corrupted images: layout, determinism, and resuming an interrupted run."""

from __future__ import annotations

import numpy as np
import pytest
from corruption_fixtures import IDS, make_cityscapes

import corruptions.materialize as mat
from corruptions.backends import get_backend
from corruptions.dataset import CorruptedDataset
from repsep.data.base import read_image
from repsep.data.cityscapes import CityscapesDataset
from repsep.io import read_json

CORRUPTIONS, SEVERITIES = ("impulse_noise", "contrast"), (1, 4)


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return CityscapesDataset(make_cityscapes(tmp_path_factory.mktemp("cs")), "val")


def _tree(root) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_layout_pixels_and_manifest(base, tmp_path):
    counts = mat.materialize(base, CORRUPTIONS, SEVERITIES, tmp_path, get_backend("reference"), progress=False)
    assert counts == {"written": 12, "skipped": 0}
    files = [k for k in _tree(tmp_path) if k != "manifest.json"]
    assert len(files) == 12
    assert "impulse_noise/4/leftImg8bit/val/bremen/bremen_000000_000019_leftImg8bit.png" in files
    ds = CorruptedDataset(base, "impulse_noise", 4, get_backend("reference"))
    on_disk = read_image(tmp_path / "impulse_noise/4/leftImg8bit/val/bremen" / f"{IDS[2]}_leftImg8bit.png")
    assert np.array_equal(on_disk, ds.load(2)["image"])
    manifest = read_json(tmp_path / "manifest.json")
    assert manifest["kind"] == "materialize" and manifest["inputs"]["config"]["severities"] == [1, 4]


def test_interrupted_run_resumes_to_identical_tree(base, tmp_path, monkeypatch):
    reference = tmp_path / "uninterrupted"
    mat.materialize(base, CORRUPTIONS, SEVERITIES, reference, get_backend("reference"), workers=2, progress=False)

    out = tmp_path / "resumed"
    real_write, calls = mat.write_png, []

    def dying_write(path, image):
        if len(calls) == 5:
            raise KeyboardInterrupt  # like Ctrl-C in the middle of the sixth file
        calls.append(path)
        real_write(path, image)

    monkeypatch.setattr(mat, "write_png", dying_write)
    with pytest.raises(KeyboardInterrupt):
        mat.materialize(base, CORRUPTIONS, SEVERITIES, out, get_backend("reference"), progress=False)
    monkeypatch.setattr(mat, "write_png", real_write)
    partial = _tree(out)
    assert len(partial) == 5 and not any(".tmp" in k or k.startswith(".") for k in partial)
    stats = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in calls}

    counts = mat.materialize(base, CORRUPTIONS, SEVERITIES, out, get_backend("reference"), workers=2, progress=False)
    assert counts == {"written": 7, "skipped": 5}
    assert all((p.stat().st_mtime_ns, p.read_bytes()) == before for p, before in stats.items())
    assert _tree(out) == _tree(reference)  # byte-identical, manifest included
