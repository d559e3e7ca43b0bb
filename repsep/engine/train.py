"""Iteration-based training (mmseg style) with exact resume, DDP, AMP, gradient accumulation and validation.

Output folder (``--out``, a :class:`repsep.ownership.OwnedFolder` of kind ``train``: its ``.repsep-bench.json``
lists every file written, with its sha256): ``config.yaml`` (resolved), ``manifest.json``, ``metrics.jsonl`` (one
JSON object per logged iteration and per validation), ``checkpoint_last.pt`` (every ``schedule.ckpt_interval``
iterations), ``model_final.pt`` (deployed export) and ``DONE`` (written last). ``--overwrite`` trains in a hidden
sibling folder and swaps the result in only after it succeeded.

Exact resume: the data order is a pure function of (seed, sample position) (:mod:`repsep.engine.sampler`), the
checkpoint holds model, optimizer, scheduler, scaler and every rank's RNG states, and no RNG is drawn outside the
training step, so stopping at iteration k and resuming gives bit-identical weights to an uninterrupted run.
"""

from __future__ import annotations

import contextlib
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from repsep.config import TrainConfig, dump_config
from repsep.engine import distributed as dist
from repsep.engine.checkpoint import (
    check_train_state,
    export_model,
    load_state,
    rng_state,
    save_state,
    set_rng_state,
    writing,
)
from repsep.engine.optim import PolyWarmupLR, build_adamw
from repsep.engine.run_folder import MetricsLog, RunLock, check_same_config, claim_out_dir
from repsep.engine.sampler import TrainSampler
from repsep.errors import UserError
from repsep.io import dumps_json
from repsep.manifest import build_manifest, sha256_file
from repsep.ownership import OwnedFolder, refuse_protected, replace_result
from repsep.progress import progress_bar

AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


# ---- training -------------------------------------------------------------------------------------------------

def _seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _amp_context(device: torch.device, amp: str):
    if amp == "none":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=AMP_DTYPES[amp])


def _build_datasets(cfg: TrainConfig, progress: bool | None = None):
    """The train and val datasets, each checked whole by :func:`repsep.data.scan.scan_split` (headers, sizes and,
    with ``data.scan: full``, every label value) before any training."""
    from repsep.data import open_dataset
    from repsep.data.scan import scan_split
    from repsep.data.transforms import EvalTransform, TrainTransform

    d = cfg.data
    train_tf = TrainTransform(crop_size=d.crop, ratio_range=d.ratio_range, scale=d.scale,
                              cat_max_ratio=d.cat_max_ratio, flip_prob=d.flip_prob, photometric=d.photometric)
    train_ds = open_dataset(d.spec, d.train_split, transform=train_tf)
    val_ds = open_dataset(d.spec, d.val_split, transform=EvalTransform(scale=cfg.eval.scale))
    if train_ds.class_table.num_classes != cfg.model.num_classes:
        raise UserError(f"model.num_classes: {cfg.model.num_classes} but dataset {d.spec!r} has "
                        f"{train_ds.class_table.num_classes} classes")
    full = getattr(d, "scan", "full") != "headers"
    for ds in (train_ds, val_ds):
        scan_split(ds, full=full, progress=progress)
    return train_ds, val_ds


def _dataset_root(spec: str) -> list[str]:
    from repsep.data import spec_root

    root = spec_root(spec)
    return [root] if root else []


def _summary(device: torch.device, world: int, cfg: TrainConfig, train_ds, val_ds, weights: str) -> str:
    """The one line a log starts with: what runs, on what, from which weights."""
    d = cfg.data
    batch = d.batch_size * cfg.accum_steps * world
    return (f"train: device {device}{f' x {world} processes' if world > 1 else ''}, {cfg.model.name} "
            f"({cfg.schedule.iters} iterations), {len(train_ds)} train / {len(val_ds)} val images ({d.spec}), "
            f"batch {batch} ({d.batch_size} x {cfg.accum_steps} accum x {world}), weights: {weights}")


def validate(model: torch.nn.Module, dataset, cfg: TrainConfig, device: torch.device,
             progress: bool | None = None) -> dict[str, Any]:
    """mIoU / aAcc / mAcc of ``model`` on ``dataset`` with the config's eval settings (sharded across ranks)."""
    from repsep.engine.inference import evaluate_dataset
    from repsep.metrics import SegEvaluator

    table = dataset.class_table
    evaluator = SegEvaluator(table.num_classes, table.ignore_index, list(table.classes))
    e = cfg.eval
    evaluate_dataset(model, dataset, evaluator, mode=e.mode, crop=e.crop, stride=e.stride, scales=e.scales,
                     flip=e.flip, device=device, num_workers=cfg.data.num_workers, progress=progress)
    return evaluator.evaluate()


def train(cfg: TrainConfig, out: str | Path, *, resume: bool = False, overwrite: bool = False,
          stop_at: int | None = None, progress: bool | None = None) -> dict[str, Any]:
    """Train ``cfg`` into ``out``; returns ``{"status", "iter", "val"}`` (the last validation, if any).

    ``stop_at``: stop after that iteration with a checkpoint but no export/DONE (a time-limited job slot);
    ``--resume`` continues it. Works the same in one process and under ``torchrun`` (only rank 0 writes).
    Every input (folder, checkpoint, config, whole train/val splits, pretrained weights) is checked before the
    folder is touched; ``--overwrite`` trains in a hidden sibling folder and replaces the old run only on success.
    """
    out = Path(out)
    device = dist.init_from_env()
    world, main = dist.world_size(), dist.is_main()
    with RunLock(out, active=main) as lock:  # rank 0 holds the run folder from here (or from its creation)
        return _train(cfg, out, lock, device, world, main, resume=resume, overwrite=overwrite, stop_at=stop_at,
                      progress=progress)


def _train(cfg: TrainConfig, out: Path, lock: RunLock, device: torch.device, world: int, main: bool, *,
           resume: bool, overwrite: bool, stop_at: int | None, progress: bool | None) -> dict[str, Any]:
    inputs = tuple(_dataset_root(cfg.data.spec)) + ((cfg.pretrained,) if cfg.pretrained else ())
    action, owned = claim_out_dir(out, resume, overwrite, inputs)
    if action == "done":
        return {"status": "done", "iter": cfg.schedule.iters, "val": None}
    state = None
    ckpt_path = out / "checkpoint_last.pt"
    if action == "resume":
        if sha256_file(ckpt_path) != owned.files["checkpoint_last.pt"]:
            raise UserError(f"{ckpt_path}: content differs from what repsep-bench train wrote (sha256 mismatch with "
                            f"{out / '.repsep-bench.json'}); it was edited or damaged")
        state = check_train_state(load_state(ckpt_path), ckpt_path)
        check_same_config(state["config"], cfg, ckpt_path)
        saved_world = state["data"]["world_size"]
        if saved_world != world:
            raise UserError(f"{ckpt_path}: the run was started with {saved_world} process(es) and is resumed with "
                            f"{world}; the data order depends on it: resume with torchrun --nproc-per-node "
                            f"{saved_world}")
    train_ds, val_ds = _build_datasets(cfg, progress)
    refuse_protected(out, inputs=inputs)
    _seed_all(cfg.seed)
    from repsep.models import build_model

    model = build_model(cfg.model)
    if state is not None:
        weights = f"resumed from {ckpt_path} (iteration {state['iter']})"
    elif cfg.pretrained:
        from repsep.models import load_pretrained

        load_pretrained(model.backbone, cfg.pretrained)
        weights = f"pretrained {cfg.pretrained}"
    else:
        weights = "none (random init)"
    dist.barrier()  # every rank has checked its inputs before rank 0 touches the folder
    if main:
        print(_summary(device, world, cfg, train_ds, val_ds, weights), flush=True)
    with contextlib.ExitStack() as stack:
        folder: OwnedFolder | None = None
        if main and action == "replace":
            folder = stack.enter_context(replace_result(out, "train", overwrite=True, inputs=inputs))
        elif main:
            folder = OwnedFolder.claim(out, "train", resume=resume, inputs=inputs, create=True)
            lock.take()  # made just now: locked before anything is written (another train may have made it too)
            if action == "fresh":
                folder.remove_all()
        result = _run(cfg, model, folder, state, train_ds, val_ds, device, stop_at, progress)
    if main and result["status"] == "stopped" and action == "replace":
        OwnedFolder.claim(out, "train", resume=True, create=False).unfinish()  # swapped in, but not finished
    dist.barrier()
    return result


def _check_finite(bad: torch.Tensor, it: int, what: str) -> None:
    """UserError when any rank saw a non-finite loss since the last check (``bad`` counts them)."""
    if float(dist.all_reduce_sum(bad.detach().float().cpu().clone())) > 0:
        raise UserError(f"training diverged at or before iteration {it} (non-finite loss); {what}lower optim.lr "
                        "or enable optim.clip_grad")


def _run(cfg: TrainConfig, model: torch.nn.Module, folder: OwnedFolder | None, state: dict[str, Any] | None,
         train_ds, val_ds, device: torch.device, stop_at: int | None, progress: bool | None) -> dict[str, Any]:
    """The training loop; writes go to ``folder`` (main rank) and each is one error line when it fails."""
    rank, world, main = dist.rank(), dist.world_size(), dist.is_main()
    if folder is not None:
        with writing(folder.path / "config.yaml"):
            folder.write_text("config.yaml", dump_config(cfg))
        with writing(folder.path / "manifest.json"):
            folder.write_text("manifest.json", dumps_json(build_manifest(
                "train", seeds={"seed": cfg.seed}, config=cfg.to_dict(),
                inputs={"dataset": cfg.data.spec, "pretrained": cfg.pretrained, "world_size": world})))
    model.to(device)
    if world > 1 and device.type == "cuda":
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    o, s = cfg.optim, cfg.schedule
    optimizer = build_adamw(model, o.lr, o.weight_decay, o.betas, o.layer_decay, o.head_lr_mult)
    scheduler = PolyWarmupLR(optimizer, s.iters, o.power, o.warmup_iters, o.warmup_ratio)
    scaler = torch.amp.GradScaler(device.type, enabled=cfg.amp == "fp16")
    start = 0
    if state is not None:
        try:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            scaler.load_state_dict(state["scaler"])
        except (RuntimeError, KeyError, ValueError, TypeError) as e:
            raise UserError(f"checkpoint_last.pt: the saved state does not fit this model/optimizer "
                            f"({(str(e).strip().splitlines() or [''])[0][:200]})") from None
        start = int(state["iter"])
    ddp = model if world == 1 else torch.nn.parallel.DistributedDataParallel(
        model, device_ids=[device.index] if device.type == "cuda" else None)

    stop = s.iters if stop_at is None else max(start, min(stop_at, s.iters))
    d = cfg.data
    sampler = TrainSampler(len(train_ds), cfg.seed, d.batch_size, start, stop, accum_steps=cfg.accum_steps,
                           rank=rank, world=world)
    loader = DataLoader(train_ds, batch_size=d.batch_size, sampler=sampler, num_workers=d.num_workers,
                        pin_memory=device.type == "cuda", generator=torch.Generator(),
                        persistent_workers=False)
    if state is not None and len(state["rng"]) == world:
        set_rng_state(state["rng"][rank])
    else:
        _seed_all(cfg.seed + 1000 * rank + start)
    log = MetricsLog(folder, keep_until=start if state is not None else None)
    if state is None:
        log.append({"iter": 0, "event": "start", "world_size": world})

    batches = iter(loader)
    last_val: dict[str, Any] | None = None
    bar = progress_bar(total=s.iters, initial=start, desc="train", unit="it", wanted=progress)
    bad = torch.zeros((), device=device)  # non-finite losses since the last check
    model.train()
    for it in range(start + 1, stop + 1):
        sums: dict[str, torch.Tensor] = {}
        for m in range(cfg.accum_steps):
            batch = next(batches)
            images = batch["image"].to(device, non_blocking=True)
            labels = batch["label"].to(device, non_blocking=True)
            sync = ddp.no_sync() if world > 1 and m < cfg.accum_steps - 1 else contextlib.nullcontext()
            with sync:
                with _amp_context(device, cfg.amp):
                    losses = model.losses(ddp(images), labels)
                scaler.scale(losses["loss"] / cfg.accum_steps).backward()
            for k, v in losses.items():
                sums[k] = sums.get(k, 0.0) + v.detach().float() / cfg.accum_steps
        bad += (~torch.isfinite(sums["loss"])).float()
        if o.clip_grad is not None:
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), o.clip_grad)
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)
        lr = max(g["lr"] / g["lr_scale"] for g in optimizer.param_groups)
        scheduler.step()
        bar.update(1)

        if it % s.log_interval == 0 or it == s.iters:
            names = sorted(sums)
            vals = dist.all_reduce_sum(torch.stack([sums[k] for k in names]).cpu()) / world
            record = {"iter": it, "lr": lr, **{k: float(v) for k, v in zip(names, vals, strict=True)}}
            log.append(record)
            bar.set_postfix(loss=f"{record['loss']:.4f}", lr=f"{lr:.2e}")
            _check_finite(bad, it, "")
        if (s.val_interval and it % s.val_interval == 0) or it == s.iters:
            result = validate(model, val_ds, cfg, device, progress)
            last_val = {"iter": it, "event": "val", **{k: result[k] for k in ("mIoU", "aAcc", "mAcc")}}
            log.append(last_val)
            if main:
                bar.write(f"iter {it}: val mIoU {result['mIoU']:.2f}  aAcc {result['aAcc']:.2f}")
        if it % s.ckpt_interval == 0 or it == stop:
            _check_finite(bad, it, "no checkpoint written (the previous one is kept); ")
            rngs = dist.all_gather_object(rng_state())
            if folder is not None:
                save_state("checkpoint_last.pt", {
                    "iter": it, "config": cfg.to_dict(), "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                    "scaler": scaler.state_dict(), "rng": rngs,
                    "data": {"seed": cfg.seed, "world_size": world, "batch_size": d.batch_size,
                             "accum_steps": cfg.accum_steps,
                             "samples_seen": it * d.batch_size * cfg.accum_steps * world}}, folder=folder)
    bar.close()
    if stop < s.iters:
        return {"status": "stopped", "iter": stop, "val": last_val}
    _check_finite(bad, s.iters, "no model written; ")
    if folder is not None:
        export_model("model_final.pt", model, cfg.model, train_ds.class_table, cfg.data.spec, cfg.to_dict(),
                     folder=folder)
        with writing(folder.path / "DONE"):
            folder.write_text("DONE", f"iter {s.iters}\n")
            folder.finish()
    return {"status": "finished", "iter": s.iters, "val": last_val}
