"""The ``shift`` command's library side: one model on its clean validation set and on natural-shift datasets.

Each dataset entry (``clean`` first, then every ``--data``) is an ordinary ``eval`` of the model, run by
:func:`repsep.engine.eval_run.run_evaluation` into a sub-folder of the shift folder (``<out>/<entry>/``, an
owned folder of kind ``eval`` with ``metrics.json``, ``per_image.npz`` ... exactly what ``eval --data`` writes), so
the numbers are those of ``eval`` and an interrupted entry continues from its saved chunks. A finished entry is
reused on a rerun when its recorded ``settings`` block equals the new one (its files are sha256-checked, so a
hand-edited entry is refused); other settings need ``overwrite``.

The shift folder (kind ``shift``) then holds ``shift.json`` (clean mIoU, mIoU per entry, their mean, each ratio to
clean in percent, every entry's settings block; the top-level ``settings`` is the clean entry's),
``shift.csv``, ``shift.md``, ``per_image.npz`` (per entry ``<entry>/ids``, ``<entry>/intersect``, ``<entry>/union``,
``<entry>/pred_area``, ``<entry>/label_area``; ``<entry>/groups`` with ``by_group``) and ``manifest.json``.
"""

from __future__ import annotations

import io
import re
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from repsep.data.base import dataset_root
from repsep.engine import distributed as dist
from repsep.errors import UserError

KIND = "shift"
CLEAN = "clean"
AREAS = ("intersect", "union", "pred_area", "label_area")
RESERVED = (CLEAN, "partial")


@dataclass
class Entry:
    """One dataset of the table: its folder name, spec, opened dataset, evaluated indices and settings block."""

    name: str
    spec: str
    option: str
    dataset: Any
    indices: list[int]
    settings: dict[str, Any]
    note: str | None


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=-]+", "_", text).strip("._") or "data"


def _split_spec(spec: str) -> tuple[str, str, str | None]:
    """(kind, path, condition) of ``kind:PATH[:condition]`` (a last part without ``/`` after a path is a
    condition: ``acdc:/data/acdc:fog``, ``foggy_cityscapes:/data/fc:0.02``)."""
    kind, _, rest = spec.partition(":")
    head, sep, last = rest.rpartition(":")
    if sep and head and "/" not in last and "\\" not in last:
        return kind, head, last
    return kind, rest, None


def entry_names(specs: list[str]) -> list[str]:
    """Folder names of the ``--data`` entries: ``<kind>[-<condition>]`` (``acdc-fog``, ``darkzurich``), with the
    dataset folder's name added where two entries would share one (``synthcity-fogged``, ``synthcity-night``)."""
    parts = [_split_spec(s) for s in specs]
    short = [_slug(k + (f"-{c}" if c else "")) for k, _, c in parts]
    names = [name if short.count(name) == 1 and name not in RESERVED else
             _slug("-".join(x for x in (kind, Path(path).name if path else "", cond) if x))
             for name, (kind, path, cond) in zip(short, parts, strict=True)]
    for k, name in enumerate(list(names)):
        if names[:k].count(name) or name in RESERVED:
            names[k] = f"{name}-{k + 1}"
    return names


def check_classes(dataset, table, spec: str, option: str, model_path: Path) -> None:
    """UserError unless ``dataset`` uses the model's class table (same classes in the same order, same ignore)."""
    mine = dataset.class_table
    if tuple(mine.classes) == tuple(table.classes) and mine.ignore_index == table.ignore_index:
        return
    detail = next((f"; class {i} is {a!r} vs the model's {b!r}" for i, (a, b) in
                   enumerate(zip(mine.classes, table.classes, strict=False)) if a != b), "")
    if not detail and mine.ignore_index != table.ignore_index:
        detail = f"; ignore index {mine.ignore_index} vs the model's {table.ignore_index}"
    raise UserError(f"{option} {spec}: class table {mine.name} ({mine.num_classes} classes) differs from the one "
                    f"of the model {model_path} ({table.name}, {table.num_classes} classes){detail}")


def prepare_entries(loaded, model_path: Path, model_sha: str, clean_spec: str, specs: list[str], *, split: str,
                    inference: dict[str, Any], num_images: int | None, subset_seed: int, scan: str,
                    progress: bool | None) -> list[Entry]:
    """Open every dataset, check its class table, choose its images and scan them (all before any work)."""
    from repsep.data import open_dataset
    from repsep.data.scan import scan_split
    from repsep.data.transforms import EvalTransform
    from repsep.engine.evaluate import choose_images, settings_block

    seen: dict[str, str] = {}
    for spec in specs:
        if spec in seen:
            raise UserError(f"--data {spec}: given twice")
        seen[spec] = spec
    named = [(CLEAN, clean_spec, "--clean-data"), *zip(entry_names(specs), specs, ["--data"] * len(specs),
                                                       strict=True)]
    entries = []
    for name, spec, option in named:
        dataset = open_dataset(spec, split, transform=EvalTransform(scale=inference["scale"]))
        check_classes(dataset, loaded.class_table, spec, option, model_path)
        indices, seed, note = choose_images(dataset, num_images, subset_seed)
        settings = settings_block(model_sha256=model_sha, dataset=dataset, indices=indices, subset_seed=seed,
                                  inference=inference)
        entries.append(Entry(name, spec, option, dataset, indices, settings, note))
    for e in entries:
        scan_split(e.dataset, indices=e.indices, full=scan == "full", progress=progress if dist.is_main() else False)
    return entries


def _settings_difference(old: Any, new: dict[str, Any]) -> str | None:
    from repsep.comparability import first_difference

    if not isinstance(old, dict):
        return "settings: missing"
    return first_difference(old, new, sorted(set(old) | set(new)))


def _read_entry(target, main: bool) -> tuple[dict, dict[str, np.ndarray]]:
    """(metrics.json, per-image arrays) of a finished entry folder, digests checked; arrays on the main rank."""
    metrics = target.read_json("metrics.json")
    arrays = {}
    if main:
        try:
            with np.load(io.BytesIO(target.read_bytes("per_image.npz")), allow_pickle=False) as z:
                arrays = {k: z[k] for k in ("ids", *AREAS)}
        except (OSError, ValueError, KeyError) as e:
            raise UserError(f"{target.path / 'per_image.npz'}: unreadable per-image result ({e})") from None
    return metrics, arrays


def claim_entry(entry: Entry, folder: Path, *, model_path: Path, overwrite: bool):
    """Check ``entry``'s folder (kind ``eval``) before any work: (claimed folder, finished result to reuse or None).

    A finished entry is reused when its settings block equals ``entry.settings`` (its files' digests checked: a
    hand-edited one is refused); one made with other settings is refused unless ``overwrite``."""
    from repsep.ownership import OwnedFolder, remove_stale_temporaries

    inputs = [model_path, dataset_root(entry.dataset)]
    if dist.is_main():
        remove_stale_temporaries(folder, "eval")
    dist.barrier()
    try:
        target = OwnedFolder.claim(folder, "eval", overwrite=overwrite, resume=True, inputs=inputs,
                                   what="--out entry", create=False)
    except OSError as e:
        raise UserError(f"{folder}: cannot use this path ({e.strerror or e})") from None
    if not target.finished or overwrite:
        return target, None
    saved = _read_entry(target, dist.is_main())
    diff = _settings_difference(saved[0].get("settings"), entry.settings)
    if diff:
        raise UserError(f"{folder}: holds a finished {entry.option} {entry.spec} entry made with other settings "
                        f"({diff}); rerun with the same options to reuse it, or pass --overwrite")
    return target, saved


def evaluate_entry(entry: Entry, target, loaded, inference: dict[str, Any], *, model_path: Path, overwrite: bool,
                   device, num_workers: int, progress: bool | None) -> tuple[dict, dict[str, np.ndarray]]:
    """Evaluate ``entry`` into its claimed folder ``target`` as ``eval`` does (continuing saved chunks); returns
    (metrics.json dict, per-image arrays; arrays only on the main rank)."""
    from repsep.engine.eval_run import run_evaluation
    from repsep.engine.evaluate import CHUNK_IMAGES
    from repsep.ownership import OwnedFolder

    run_evaluation(loaded, entry.dataset, entry.indices, entry.settings, inference, target=target, preds=None,
                   overwrite=overwrite, device=device, num_workers=num_workers, progress=progress,
                   note=entry.note, model_path=model_path, chunk_images=CHUNK_IMAGES)
    dist.barrier()
    return _read_entry(OwnedFolder.claim(target.path, "eval", resume=True, create=False), dist.is_main())


def _group_scores(entry: Entry, arrays: dict[str, np.ndarray], clean: float | None) -> tuple[dict, np.ndarray]:
    """Per ``group_of`` stratum: mIoU (summed areas, mmseg convention), images, ratio; and the group per image."""
    from repsep.engine.shift_format import ratio

    by_id = {entry.dataset.ids[i]: entry.dataset.group_of(i) for i in entry.indices}
    groups = np.asarray([by_id[str(i)] for i in arrays["ids"]], dtype=str)
    out = {}
    for g in sorted(set(groups.tolist())):
        rows = groups == g
        inter, union = arrays["intersect"][rows].sum(0), arrays["union"][rows].sum(0)
        with np.errstate(invalid="ignore", divide="ignore"):
            iou = np.where(union > 0, inter / np.where(union > 0, union, 1), np.nan)
        miou = float(100.0 * np.nanmean(iou)) if np.isfinite(iou).any() else None
        out[g] = {"mIoU": miou, "num_images": int(rows.sum()), "ratio": ratio(miou, clean)}
    return out, groups


def run_shift(model_path: str | Path, out: str | Path, *, data: list[str], clean_data: str | None = None,
              split: str = "val", mode: str | None = None, crop: tuple[int, int] | None = None,
              stride: tuple[int, int] | None = None, scales: tuple[float, ...] | None = None,
              flip: bool | None = None, num_images: int | None = None, subset_seed: int = 0, scan: str = "full",
              by_group: bool = False, num_workers: int = 2, overwrite: bool = False,
              progress: bool | None = None, precision: str | None = None) -> dict[str, Any] | None:
    """Evaluate ``model_path`` on ``clean_data`` (default: its training dataset) and every spec of ``data``;
    write the shift folder ``out``. Returns the ``shift.json`` dict (None on non-main ranks)."""
    from repsep.engine.checkpoint import load_model
    from repsep.engine.evaluate import SCAN_MODES
    from repsep.engine.inference import resolve_settings
    from repsep.engine.shift_format import shift_result, write_shift
    from repsep.manifest import sha256_file
    from repsep.ownership import OwnedFolder, remove_stale_temporaries
    from repsep.progress import progress_bar

    if not data:
        raise UserError("--data: give at least one natural-shift dataset spec, e.g. --data acdc:PATH:fog")
    if scan not in SCAN_MODES:
        raise UserError(f"--scan {scan}: choose one of {', '.join(SCAN_MODES)}")
    model_path, out = Path(model_path), Path(out)
    device = dist.init_from_env()
    loaded = load_model(model_path, map_location=device)
    inference = resolve_settings(loaded.train_config, mode=mode, crop=crop, stride=stride, scales=scales, flip=flip,
                                 precision=precision, device=device)
    model_sha = sha256_file(model_path)
    entries = prepare_entries(loaded, model_path, model_sha, clean_data or loaded.dataset_spec, list(data),
                              split=split, inference=inference, num_images=num_images, subset_seed=subset_seed,
                              scan=scan, progress=progress)
    inputs = [model_path, *(dataset_root(e.dataset) for e in entries)]
    main = dist.is_main()
    if main:
        remove_stale_temporaries(out, KIND)
    folder = OwnedFolder.claim(out, KIND, overwrite=overwrite, resume=True, inputs=inputs, create=False)
    fresh = not out.exists()
    claimed = [claim_entry(e, out / e.name, model_path=model_path, overwrite=overwrite) for e in entries]
    dist.barrier()
    if main:
        folder.create()
        folder.unfinish()
    results = []
    reused = [e.name for e, (_, saved) in zip(entries, claimed, strict=True) if saved is not None]
    try:
        for e, (target, saved) in progress_bar(list(zip(entries, claimed, strict=True)),
                                               wanted=progress if main else False, desc="shift", unit="dataset"):
            metrics, arrays = saved or evaluate_entry(e, target, loaded, inference, model_path=model_path,
                                                      overwrite=overwrite, device=device, num_workers=num_workers,
                                                      progress=progress)
            results.append((e, metrics, arrays))
    except BaseException:
        if fresh and main and not any(p.is_dir() for p in out.iterdir()):  # nothing kept: leave no folder behind
            with suppress(OSError):
                (out / ".repsep-bench.json").unlink()
                out.rmdir()
        raise
    if not main:
        return None
    if reused:
        print(f"shift: reused the finished entries {', '.join(reused)} in {out} (same settings)", flush=True)
    groups = {}
    if by_group:
        clean = results[0][1].get("mIoU")
        groups = {e.name: _group_scores(e, arrays, clean) for e, _, arrays in results}
    result = shift_result(results, groups, model_path=model_path, model_name=loaded.model_config.name,
                          model_sha=model_sha, split=split)
    write_shift(folder, result, results, groups, inputs={"model": str(model_path), "model_sha256": model_sha,
                                                         "clean_data": entries[0].spec,
                                                         "data": [e.spec for e in entries[1:]]})
    folder.finish()
    return result
