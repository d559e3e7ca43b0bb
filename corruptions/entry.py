"""Any ``torch.nn.Module`` through the robustness sweep: :func:`evaluate_model` (Python entry point).

The module maps a normalised float batch ``[B, 3, H, W]`` (``(pixel - mean) / std`` with ``mean``/``std`` in
0-255 RGB units) to logits ``[B, K, h, w]`` (a tensor, or an object with a ``logits`` tensor such as a
HuggingFace output). Logits at another size than the input are resized (bilinear, align_corners=False) to the
input size, then to the label size as for every model here. ``K`` must be the dataset's class count and the
class names (a :class:`~repsep.data.labels.ClassTable` or a list of names) must be the dataset's, in order.

:func:`evaluate_model` writes the same owned ``corrupt`` folder as ``repsep-bench corrupt --model`` (cells,
``robustness.json`` with its ``settings`` block, ``per_image.npz``, ``robustness.md``/``.csv``), so ``report``
reads it beside other models. The module's identity (``model_sha256``) is :func:`module_sha256`.

Example::

    import corruptions
    result = corruptions.evaluate_model(net, data="cityscapes:/data/cityscapes", out="runs/mine/corrupt",
                                        name="my-segformer", classes=CITYSCAPES.classes,
                                        mean=(123.675, 116.28, 103.53), std=(58.395, 57.12, 57.375),
                                        suite="cityscapes-c", severities="1-5", num_images=100)
    print(result["mPC"], result["rPC"])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from torch import nn

from corruptions.module_model import ModuleModel, module_model, module_sha256
from repsep.data.labels import ClassTable
from repsep.data.transforms import IMAGENET_MEAN, IMAGENET_STD

__all__ = ["ModuleModel", "evaluate_model", "module_model", "module_sha256"]


def evaluate_model(model: nn.Module, *, data: str, out: str | Path, name: str,
                   classes: ClassTable | Sequence[str], mean: Sequence[float] = IMAGENET_MEAN,
                   std: Sequence[float] = IMAGENET_STD, split: str = "val", suite: str = "cityscapes-c",
                   corruptions: str | Sequence[str] | None = None, severities: str | Sequence[int] = "1-5",
                   backend: str = "reference", from_disk: str | Path | None = None,
                   reference_results: str | Path | None = None, allow_mismatch: bool = False,
                   num_images: int | None = None, subset_seed: int = 0, base_seed: int = 0,
                   mode: str | None = None, crop: tuple[int, int] | None = None,
                   stride: tuple[int, int] | None = None, scales: Sequence[float] | None = None,
                   flip: bool | None = None, workers: int = 0, corrupt_on: str = "auto", corrupt_batch: int = 8,
                   cache_gb: float = 8.0, scan: str = "full", precision: str | None = None,
                   overwrite: bool = False, progress: bool | None = None,
                   log: Callable[[str], None] = print) -> dict[str, Any] | None:
    """The ``corrupt`` sweep of any module: clean + every (corruption, severity) cell, written into ``out``.

    Args:
        model: ``[B, 3, H, W]`` normalised float -> ``[B, K, h, w]`` logits (moved to the sweep's device, put in
            eval mode).
        data: dataset spec (``synthcity``, ``cityscapes:PATH``, ``ade20k:PATH``).
        name: the model's label (recorded as ``module:<name>``; ``report`` names a model after its folder).
        classes: the model's class table or names (must equal the dataset's, in order; else a one-line error).
        mean, std: the normalisation the model expects, 0-255 RGB (default ImageNet's).
        corruptions: names (list or comma-separated) instead of the whole ``suite``; ``severities`` like
            ``--severities`` ("1-5", "1,3") or a list of ints. The other options are those of
            ``repsep-bench corrupt`` (inference defaults: whole image, one scale, no flip).

    Returns the ``robustness.json`` dict (None on non-zero ranks under torchrun).
    """
    from corruptions.evaluate import SweepConfig, check_options, run_sweep
    from corruptions.suite import parse_severities, resolve_corruptions

    wrapped = module_model(model, classes, name=name, mean=mean, std=std)
    names = corruptions if corruptions is None or isinstance(corruptions, str) else ",".join(corruptions)
    levels = parse_severities(severities if isinstance(severities, str) else ",".join(str(int(s)) for s in severities))
    cfg = SweepConfig(model=f"module:{name}", data=data, split=split, corruptions=resolve_corruptions(suite, names),
                      severities=levels, backend=backend, from_disk=None if from_disk is None else str(from_disk),
                      reference_results=None if reference_results is None else str(reference_results),
                      allow_mismatch=allow_mismatch, num_images=num_images, subset_seed=subset_seed,
                      base_seed=base_seed, mode=mode, crop=crop, stride=stride,
                      scales=None if scales is None else tuple(float(s) for s in scales), flip=flip,
                      workers=workers, corrupt_on=corrupt_on, corrupt_batch=corrupt_batch, cache_gb=cache_gb,
                      scan=scan, precision=precision)
    check_options(cfg)
    return run_sweep(cfg, out, overwrite=overwrite, progress=progress, log=log, module=wrapped)
