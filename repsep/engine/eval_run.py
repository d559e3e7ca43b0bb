"""The ``eval`` loop: evaluate chunk by chunk, save each chunk's per-image results, continue after a failure, and
write the final result folder (rank 0 writes; under torchrun each chunk's images are sharded across ranks)."""

from __future__ import annotations

import math
from contextlib import ExitStack, suppress
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from repsep.engine import distributed as dist
from repsep.engine.eval_store import PartialResults, files_digest, write_owned
from repsep.errors import UserError
from repsep.ownership import OwnedFolder, replace_result


def _start_predictions(preds: OwnedFolder, fresh: bool) -> None:
    """Make the predictions folder (unfinished while the eval runs); a fresh eval drops the old predictions."""
    if fresh and preds.files:
        preds.remove_all()
    try:
        preds.create()
        preds.unfinish()
    except OSError as e:
        raise UserError(f"{preds.path}: cannot write ({e.strerror or e})") from None


def _write_prediction(folder: Path, name: str, data: bytes) -> tuple[str, str]:
    from repsep.io import atomic_open
    from repsep.manifest import sha256_bytes

    try:
        with atomic_open(folder / name, "wb") as f:
            f.write(data)
    except OSError as e:
        raise UserError(f"{folder / name}: cannot write ({e.strerror or e})") from None
    return name, sha256_bytes(data)


def _summary(loaded, settings: dict[str, Any], model_path: Path, device: torch.device, done: int,
             out: Path) -> str:
    inf = settings["inference"]
    how = inf["mode"] + (f" {inf['crop'][0]}x{inf['crop'][1]} stride {inf['stride'][0]}x{inf['stride'][1]}"
                         if inf["mode"] == "slide" else "")
    how += f", scales {','.join(map(str, inf['scales']))}" if inf["scales"] != [1.0] else ""
    how += ", flip" if inf["flip"] else ""
    how += f", precision {settings['precision']}"
    subset = f" (subset, seed {settings['subset_seed']})" if settings["subset_seed"] is not None else ""
    world = f" x {dist.world_size()} processes" if dist.world_size() > 1 else ""
    line = (f"eval: {model_path} ({loaded.model_config.name}, sha256 {settings['model_sha256'][:12]}) on "
            f"{settings['dataset']} [{settings['split']}]: {settings['num_images']} images{subset}, batch 1, "
            f"{how}, device {device}{world}")
    if done:
        line += f"; continuing: {done} of {settings['num_images']} images already evaluated in {out}"
    return line


def run_evaluation(loaded, dataset, indices: list[int], settings: dict[str, Any], inference: dict[str, Any], *,
                   target: OwnedFolder, preds: OwnedFolder | None, overwrite: bool, device: torch.device,
                   num_workers: int, progress: bool | None, note: str | None, model_path: Path,
                   chunk_images: int) -> dict[str, Any]:
    """Evaluate ``indices`` of ``dataset`` into ``target`` (claimed, not yet created); returns the metrics dict.

    A finished ``target`` (``overwrite`` given) is rebuilt in a staging folder and swapped in at the end; a new
    or unfinished one is written in place, chunk by chunk, and continued on a rerun with the same settings.
    """
    staged = target.finished
    existed = target.path.exists()
    try:
        return _run(loaded, dataset, indices, settings, inference, target=target, preds=preds, overwrite=overwrite,
                    device=device, num_workers=num_workers, progress=progress, note=note, model_path=model_path,
                    chunk_images=chunk_images, staged=staged)
    except BaseException:
        if not existed and dist.is_main():  # a failure before anything was kept leaves no empty folders behind
            for folder in (target.path / "partial", target.path):
                with suppress(OSError):
                    folder.rmdir()
        raise


def _run(loaded, dataset, indices: list[int], settings: dict[str, Any], inference: dict[str, Any], *,
         target: OwnedFolder, preds: OwnedFolder | None, overwrite: bool, device: torch.device, num_workers: int,
         progress: bool | None, note: str | None, model_path: Path, chunk_images: int,
         staged: bool) -> dict[str, Any]:
    from repsep.metrics import SegEvaluator

    state = {k: v for k, v in settings.items() if k != "dataset_fingerprint"}  # chunks check their own files
    state.update(save_pred=str(preds.path) if preds is not None else None, chunk_images=chunk_images)
    with ExitStack() as stack:
        folder = target
        if staged and dist.is_main():
            folder = stack.enter_context(replace_result(target.path, "eval", overwrite=True,
                                                        inputs=[model_path]))
            folder.shown = target.path  # error messages name the result folder, not the staging folder
        partial = (PartialResults(folder, state) if staged or overwrite
                   else PartialResults.open(folder, state))
        if overwrite and not staged and dist.is_main() and folder.files:
            folder.remove_all()
        total = len(indices)
        evaluator = SegEvaluator(dataset.class_table.num_classes, dataset.class_table.ignore_index,
                                 list(dataset.class_table.classes))
        todo = []
        for k in range(partial.num_chunks(total)):
            positions = partial.positions(k, total)
            chunk = None if staged or overwrite else partial.load(
                k, [dataset.ids[indices[p]] for p in positions], files_digest(dataset, [indices[p] for p in positions]))
            if chunk is None:
                todo.append(k)
            else:
                evaluator.add_results(chunk["conf"], [str(i) for i in chunk["ids"]], chunk["areas"])
        done = total - sum(len(partial.positions(k, total)) for k in todo)
        if preds is not None:
            if done and preds.finished:
                raise UserError(f"--save-pred {preds.path}: holds finished predictions, but this eval continues "
                                "from saved chunks; pass --overwrite to start over")
            if dist.is_main():
                _start_predictions(preds, fresh=not done)
            dist.barrier()
        if dist.is_main():
            if note:
                print(note, flush=True)
            print(_summary(loaded, settings, model_path, device, done, target.path), flush=True)
        _evaluate_chunks(loaded.model, dataset, indices, partial, todo, evaluator, inference, preds=preds,
                         device=device, num_workers=num_workers, progress=progress)
        scores = evaluator.evaluate()
        if int(evaluator.conf.sum()) == 0:
            raise UserError(f"{dataset.spec} [{dataset.split}]: no labelled pixel in the {total} images evaluated "
                            "(every label is ignore); mIoU would be undefined")
        result = {"mIoU": scores["mIoU"], "aAcc": scores["aAcc"], "mAcc": scores["mAcc"],
                  "per_class": scores["per_class"], "num_images": scores["num_images"], "model": str(model_path),
                  "model_name": loaded.model_config.name, "dataset": settings["dataset"],
                  "split": settings["split"], "mode": inference["mode"], "crop": inference["crop"],
                  "stride": inference["stride"], "scales": list(inference["scales"]), "flip": inference["flip"],
                  "settings": settings}
        if dist.is_main():
            _write_result(folder, result, evaluator, settings, model_path, preds)
            partial.clear()
            if not staged:
                _finish(folder)
            if preds is not None:
                _finish(preds)
    return result


def _csv(v: float | None) -> str:
    return "" if v is None or math.isnan(v) else repr(float(v))


def _finish(folder: OwnedFolder) -> None:
    try:
        folder.finish()
    except OSError as e:
        raise UserError(f"{folder.path}: cannot write ({e.strerror or e})") from None


def _write_result(folder: OwnedFolder, result: dict[str, Any], evaluator, settings: dict[str, Any],
                  model_path: Path, preds: OwnedFolder | None) -> None:
    from repsep.engine.eval_format import metrics_table
    from repsep.io import dumps_json, npz_bytes
    from repsep.manifest import build_manifest

    npz = npz_bytes(evaluator.per_image())
    rows = ["class,IoU,Acc"] + [f"{name},{_csv(v['IoU'])},{_csv(v['Acc'])}" for name, v in result["per_class"].items()]
    manifest = build_manifest("eval", config={k: result[k] for k in ("dataset", "split", "mode", "crop", "stride",
                                                                       "scales", "flip")},
                              inputs={"model": str(model_path), "model_sha256": settings["model_sha256"],
                                      "dataset": settings["dataset"],
                                      "save_pred": str(preds.path) if preds is not None else None})
    manifest["settings"] = settings
    write_owned(folder, "metrics.json", dumps_json(result).encode())
    write_owned(folder, "per_class.csv", ("\n".join(rows) + "\n").encode())
    write_owned(folder, "metrics.md", metrics_table(result).encode())
    write_owned(folder, "per_image.npz", npz)
    write_owned(folder, "manifest.json", dumps_json(manifest).encode())


@torch.no_grad()
def _evaluate_chunks(model, dataset, indices: list[int], partial: PartialResults, todo: list[int], evaluator,
                     inference: dict[str, Any], *, preds: OwnedFolder | None, device: torch.device,
                     num_workers: int, progress: bool | None) -> None:
    """Evaluate the chunks ``todo`` (one image per batch; rank r takes the positions p with p % W == r), add
    them to ``evaluator`` and save each chunk on rank 0 as soon as every rank finished it."""
    from repsep.engine import inference as inf
    from repsep.engine.eval_format import colourise, error_map, png_bytes
    from repsep.metrics import SegEvaluator
    from repsep.progress import progress_bar

    total, rank, world = len(indices), dist.rank(), dist.world_size()
    mine = {k: [p for p in partial.positions(k, total) if p % world == rank] for k in todo}
    order = [indices[p] for k in todo for p in mine[k]]
    loader = DataLoader(dataset, batch_size=1, sampler=order, num_workers=num_workers,
                        pin_memory=device.type == "cuda", collate_fn=inf._collate, persistent_workers=False)
    table = dataset.class_table
    model.eval()
    batches = iter(loader)
    bar = progress_bar(total=len(order), wanted=progress if dist.is_main() else False, desc="eval", unit="img",
                       leave=False)
    written: list[tuple[str, str]] = []
    try:
        for k in todo:
            part = SegEvaluator(table.num_classes, table.ignore_index, list(table.classes))
            written = []
            for _ in mine[k]:
                batch = next(batches)
                images = batch["image"].to(device, non_blocking=True)
                label = batch["label"].to(device, non_blocking=True)
                pred = inf.evaluate_batch(model, images, label, batch["id"], part, mode=inference["mode"],
                                          crop=inference["crop"], stride=inference["stride"],
                                          scales=inference["scales"], flip=inference["flip"],
                                          precision=inference["precision"])
                if preds is not None:
                    p, lab = pred[0].cpu().numpy(), label[0].cpu().numpy()
                    image_id = batch["id"][0]
                    written.append(_write_prediction(preds.path, f"{image_id}.png",
                                                     png_bytes(colourise(p, table.palette))))
                    written.append(_write_prediction(preds.path, f"{image_id}_error.png",
                                                     png_bytes(error_map(p, lab, table.ignore_index))))
                bar.update(1)
            conf, ids, areas = part.results()
            gathered = dist.all_gather_object((mine[k], ids, areas, conf.numpy(), written))
            positions = [p for g in gathered for p in g[0]]
            order_k = np.argsort(positions, kind="stable")
            all_ids = [i for g in gathered for i in g[1]]
            all_areas = np.concatenate([g[2] for g in gathered]) if positions else np.zeros((0, 4, table.num_classes))
            conf_k = sum(g[3] for g in gathered)
            ids_k = [all_ids[j] for j in order_k]
            areas_k = all_areas[order_k].astype(np.int64)
            evaluator.add_results(conf_k, ids_k, areas_k)
            if dist.is_main():
                if preds is not None:
                    preds.files.update(dict(w for g in gathered for w in g[4]))
                    try:
                        preds.unfinish()  # saves the marker with the new files
                    except OSError as e:
                        raise UserError(f"{preds.path}: cannot write ({e.strerror or e})") from None
                partial.save(k, sorted(positions), ids_k, areas_k, conf_k,
                             files_digest(dataset, [indices[p] for p in sorted(positions)]))
    except BaseException:
        if dist.is_main() and preds is not None and written:  # record what was written, so it stays ours
            preds.files.update(dict(written))
            preds.unfinish()
        raise
    finally:
        bar.close()
