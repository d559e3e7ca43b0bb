"""Materialising corrupted images: layout, determinism, resuming an interrupted run, the owned tree (settings,
other settings refused, only its own temporaries removed)."""

from __future__ import annotations

import numpy as np
import pytest
from corruption_fixtures import IDS, make_cityscapes

import corruptions.materialize as mat
from corruptions.backends import get_backend
from corruptions.dataset import CorruptedDataset
from repsep.data.base import read_image
from repsep.data.cityscapes import CityscapesDataset
from repsep.errors import UserError
from repsep.io import read_json
from repsep.ownership import MARKER

CORRUPTIONS, SEVERITIES = ("impulse_noise", "contrast"), (1, 4)


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return CityscapesDataset(make_cityscapes(tmp_path_factory.mktemp("cs")), "val")


def _tree(root) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_layout_pixels_and_manifest(base, tmp_path):
    counts = mat.materialize(base, CORRUPTIONS, SEVERITIES, tmp_path, get_backend("reference"), progress=False)
    assert counts == {"written": 12, "skipped": 0}
    files = [k for k in _tree(tmp_path) if k not in ("manifest.json", "settings.json", MARKER)]
    assert len(files) == 12
    assert "impulse_noise/4/leftImg8bit/val/bremen/bremen_000000_000019_leftImg8bit.png" in files
    ds = CorruptedDataset(base, "impulse_noise", 4, get_backend("reference"))
    on_disk = read_image(tmp_path / "impulse_noise/4/leftImg8bit/val/bremen" / f"{IDS[2]}_leftImg8bit.png")
    assert np.array_equal(on_disk, ds.load(2)["image"])
    manifest = read_json(tmp_path / "manifest.json")
    assert manifest["kind"] == "materialize"
    settings = read_json(tmp_path / "settings.json")
    assert settings["cells"] == {"contrast": [1, 4], "impulse_noise": [1, 4]} and settings["base_seed"] == 0
    assert settings["dataset_fingerprint"] == base.fingerprint() and settings["image_ids"] == list(IDS)
    assert settings["backend"] == "reference" and settings["split"] == "val"
    assert settings["corruptions"] == ["contrast", "impulse_noise"] and settings["severities"] == [1, 4]
    marker = read_json(tmp_path / MARKER)
    assert marker["kind"] == "materialize" and marker["finished"] and set(marker["files"]) == {
        *files, "manifest.json", "settings.json"}


def test_interrupted_run_resumes_to_identical_tree(base, tmp_path, monkeypatch):
    reference = tmp_path / "uninterrupted"
    mat.materialize(base, CORRUPTIONS, SEVERITIES, reference, get_backend("reference"), workers=2, progress=False)

    out = tmp_path / "resumed"
    real_write, calls = mat.write_png, []

    def dying_write(path, image):
        if len(calls) == 5:
            raise KeyboardInterrupt  # like Ctrl-C in the middle of the sixth file
        calls.append(path)
        return real_write(path, image)

    monkeypatch.setattr(mat, "write_png", dying_write)
    with pytest.raises(KeyboardInterrupt):
        mat.materialize(base, CORRUPTIONS, SEVERITIES, out, get_backend("reference"), progress=False)
    monkeypatch.setattr(mat, "write_png", real_write)
    partial = [k for k in _tree(out) if k.endswith(".png")]
    assert len(partial) == 5 and not any(".tmp" in k for k in _tree(out))
    stats = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in calls}

    counts = mat.materialize(base, CORRUPTIONS, SEVERITIES, out, get_backend("reference"), workers=2, progress=False)
    assert counts == {"written": 7, "skipped": 5}
    assert all((p.stat().st_mtime_ns, p.read_bytes()) == before for p, before in stats.items())
    assert _tree(out) == _tree(reference)  # byte-identical, manifest included


def _stale(folder, name: str) -> object:
    """A temporary named as ``repsep.io.atomic_open`` names them (``.<name>.<8 random>.tmp``)."""
    path = folder / f".{name}.k3j9x0q2.tmp"
    path.write_bytes(b"half a file")
    return path


def test_only_its_own_temporaries_are_deleted(base, tmp_path):
    mat.materialize(base, CORRUPTIONS, SEVERITIES, tmp_path, get_backend("reference"), progress=False)
    folder = tmp_path / "contrast" / "1" / "leftImg8bit" / "val" / "aachen"
    own = _stale(folder, f"{IDS[0]}_leftImg8bit.png")  # what a killed run of this command leaves
    foreign = folder / ".x.tmp"  # another program's temporary
    foreign.write_bytes(b"not ours")
    with pytest.raises(UserError, match=r"aachen/\.x\.tmp, which repsep-bench materialize did not write"):
        mat.materialize(base, CORRUPTIONS, SEVERITIES, tmp_path, get_backend("reference"), progress=False)
    assert foreign.read_bytes() == b"not ours" and not own.exists()
    foreign.unlink()
    own = _stale(folder, f"{IDS[0]}_leftImg8bit.png")
    counts = mat.materialize(base, CORRUPTIONS, SEVERITIES, tmp_path, get_backend("reference"), progress=False)
    assert counts == {"written": 0, "skipped": 12} and not own.exists()


def test_rerun_with_another_seed_or_backend_is_refused_unless_overwrite(base, tmp_path):
    mat.materialize(base, CORRUPTIONS, SEVERITIES, tmp_path, get_backend("reference"), progress=False)
    before = _tree(tmp_path)
    with pytest.raises(UserError, match="made with other settings \\(base_seed: 0 vs 1\\); pass --overwrite"):
        mat.materialize(base, CORRUPTIONS, SEVERITIES, tmp_path, get_backend("reference"), base_seed=1,
                        progress=False)
    with pytest.raises(UserError, match="backend: reference vs torch"):
        mat.materialize(base, CORRUPTIONS, SEVERITIES, tmp_path, get_backend("torch"), progress=False)
    assert _tree(tmp_path) == before
    counts = mat.materialize(base, CORRUPTIONS, SEVERITIES, tmp_path, get_backend("reference"), base_seed=1,
                             overwrite=True, progress=False)
    assert counts == {"written": 12, "skipped": 0} and read_json(tmp_path / "settings.json")["base_seed"] == 1
    rel = f"impulse_noise/4/leftImg8bit/val/bremen/{IDS[2]}_leftImg8bit.png"
    expected = CorruptedDataset(base, "impulse_noise", 4, get_backend("reference"), base_seed=1).load(2)["image"]
    assert np.array_equal(read_image(tmp_path / rel), expected) and _tree(tmp_path)[rel] != before[rel]
    assert not [p for p in tmp_path.parent.iterdir() if p.name.startswith(f".{tmp_path.name}.")]  # no staging left


def test_more_corruptions_extend_the_tree(base, tmp_path):
    mat.materialize(base, ("contrast",), (1,), tmp_path, get_backend("reference"), progress=False)
    counts = mat.materialize(base, ("contrast", "fog"), (1,), tmp_path, get_backend("reference"), progress=False)
    assert counts == {"written": 3, "skipped": 3}
    assert read_json(tmp_path / "settings.json")["cells"] == {"contrast": [1], "fog": [1]}


def test_foreign_files_and_protected_folders_are_refused(base, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="notes.txt, which repsep-bench materialize did not write"):
        mat.materialize(base, ("contrast",), (1,), tmp_path, get_backend("reference"), progress=False)
    with pytest.raises(UserError, match="is a dataset root"):
        mat.materialize(base, ("contrast",), (1,), base.images[0].parents[3], get_backend("reference"),
                        progress=False)
    assert (tmp_path / "notes.txt").read_text() == "mine"
