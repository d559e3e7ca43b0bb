"""The ``corrupt`` sweep's device path: clean images decoded once, corrupted in batches on the model's device.

For a cell whose corruption a batched backend produces (the ``torch`` backend's native ports), this rank's images
are taken ``batch_size`` at a time (one image size per batch), moved to the model's device, corrupted there with
:meth:`~corruptions.backends.base.CorruptionBackend.corrupt_batch` and normalised there, then predicted one image
per forward pass through :func:`repsep.engine.inference.evaluate_batch`, as
:func:`~repsep.engine.inference.evaluate_dataset` does (same rank sharding, same all-reduce). Where the backend
gives the same pixels as in the DataLoader workers (always on CPU) the confusion matrices are the same.

The eval transform's keep-ratio resize, when it changes an image's size, stays the CPU ``cv2`` resize: torch's
bilinear differs from it by one grey level on up to 13% (float, rounded) or 38% (uint8) of the pixels (measured on
random and smooth images, up- and downscaling), so it would change results.

The clean images and labels are decoded once per sweep (:class:`CleanShard`) into host memory (pinned for CUDA)
when they fit in a byte budget; otherwise every cell decodes them again.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import NamedTuple

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from corruptions.backends.base import CorruptionBackend
from corruptions.suite import image_seed
from repsep.data.transforms import EvalTransform, keep_ratio_size, normalize, resize
from repsep.engine import distributed as dist
from repsep.engine.inference import ShardSampler, evaluate_batch


class CleanSample(NamedTuple):
    """One decoded sample in host memory: ``image`` uint8 [H, W, 3] RGB, ``label`` [H, W] in the smallest integer
    dtype that holds its values (uint8 for train ids with ignore 255), ``id``."""

    image: torch.Tensor
    label: torch.Tensor
    id: str


def smallest_int_dtype(values: np.ndarray) -> np.dtype:
    """The smallest of uint8, int16, int32, int64 that holds every value of the integer array ``values``."""
    lo, hi = (int(values.min()), int(values.max())) if values.size else (0, 0)
    for dtype in (np.uint8, np.int16, np.int32):
        info = np.iinfo(dtype)
        if info.min <= lo and hi <= info.max:
            return np.dtype(dtype)
    return np.dtype(np.int64)


class _Samples(Dataset):
    """Untransformed samples of ``view`` as :class:`CleanSample` (decoded in DataLoader workers)."""

    def __init__(self, view) -> None:
        self.view = view

    def __len__(self) -> int:
        return len(self.view)

    def __getitem__(self, index: int) -> CleanSample:
        sample = self.view.load(index)
        label = sample["label"]
        return CleanSample(torch.from_numpy(np.require(sample["image"], requirements=("C", "W"))),
                           torch.from_numpy(label.astype(smallest_int_dtype(label), copy=False)), sample["id"])


def _host_bytes(nbytes: int, pinned: bool) -> int:
    """Host memory a tensor of ``nbytes`` takes: rounded up to a power of two when pinned (torch's allocator)."""
    return 1 << max(nbytes - 1, 0).bit_length() if pinned else nbytes


class CleanShard:
    """This rank's clean samples of ``view`` (``ShardSampler`` order), decoded by a DataLoader.

    The first full iteration also keeps the samples in host memory (pinned when ``device`` is CUDA) unless their
    bytes exceed ``max_bytes``; later iterations then replay them grouped by image size, without decoding. When
    they do not fit, every iteration decodes them again. Pinned bytes are counted as allocated: torch's pinned
    host allocator rounds each tensor up to a power of two (a 1024x2048 RGB image: 6 MiB of pixels, 8 MiB pinned).

    Args:
        view: a dataset following the contract (``load(index)`` gives the untransformed sample), e.g.
            :class:`corruptions.dataset.DatasetView`.
        device: the model's device (pinned host memory for CUDA).
        num_workers: DataLoader workers that decode.
        max_bytes: budget for the kept images and labels of this process (0: never keep them).
    """

    def __init__(self, view, device: torch.device, num_workers: int = 0, max_bytes: int = 0) -> None:
        self.view = view
        self.device = torch.device(device)
        self.num_workers = num_workers
        self.max_bytes = max_bytes
        self.sampler = ShardSampler(len(view), dist.rank(), dist.world_size())
        self.cache: list[CleanSample] | None = None
        self._tried = False

    def __len__(self) -> int:
        return len(self.sampler)

    def __iter__(self) -> Iterator[CleanSample]:
        if self.cache is not None:
            yield from self.cache
            return
        keep = not self._tried
        kept: list[CleanSample] = []
        total = 0
        pinned = self.device.type == "cuda"
        loader = DataLoader(_Samples(self.view), batch_size=None, sampler=self.sampler, num_workers=self.num_workers,
                            pin_memory=pinned, generator=torch.Generator())
        for sample in loader:
            if keep:
                total += sum(_host_bytes(t.nbytes, pinned) for t in (sample.image, sample.label))
                keep = total <= self.max_bytes
                if keep:
                    kept.append(sample)
                else:
                    kept.clear()
            yield sample
        self._tried = True
        if keep:  # grouped by size (stable), so that batches are full; the order does not change results
            self.cache = sorted(kept, key=lambda s: tuple(s.image.shape))


def size_batches(samples: Iterable[CleanSample], batch_size: int) -> Iterator[list[CleanSample]]:
    """Runs of consecutive samples with the same image size, at most ``batch_size`` long."""
    batch: list[CleanSample] = []
    for sample in samples:
        if batch and (len(batch) == batch_size or sample.image.shape != batch[0].image.shape):
            yield batch
            batch = []
        batch.append(sample)
    if batch:
        yield batch


def corrupted_batches(samples: Iterable[CleanSample], backend: CorruptionBackend | None, corruption: str,
                      severity: int, base_seed: int, device: torch.device, batch_size: int = 8,
                      threads: int | None = None) -> Iterator[tuple[list[CleanSample], torch.Tensor]]:
    """``(batch, images)``: each :func:`size_batches` batch with its images uint8 [B, H, W, 3] on ``device``,
    corrupted by ``backend`` with the per-image seeds ``image_seed(id, corruption, severity, base_seed)``
    (``backend`` None: the clean images), with ``threads`` torch/OpenCV threads while corrupting (None: as set;
    the model's steps keep theirs)."""
    from corruptions.threads import corruption_threads

    for batch in size_batches(samples, batch_size):
        images = torch.stack([s.image.to(device, non_blocking=True) for s in batch])
        if backend is not None:
            seeds = [image_seed(s.id, corruption, severity, base_seed) for s in batch]
            with corruption_threads(threads):
                images = backend.corrupt_batch(images, corruption, severity, seeds)
        yield batch, images


def model_inputs(images: torch.Tensor, transform: EvalTransform) -> torch.Tensor:
    """The eval transform of a batch: uint8 [B, H, W, 3] -> normalised float32 [B, 3, h, w] on the same device.

    The same numbers as ``transform`` gives image by image: normalisation on the device, and the keep-ratio resize
    (only when it changes the size) with the transform's own cv2 resize on the CPU.
    """
    h, w = images.shape[1:3]
    if transform.scale is not None and (size := keep_ratio_size(h, w, transform.scale)) != (h, w):
        resized = np.stack([resize(image, size) for image in images.cpu().numpy()])
        images = torch.from_numpy(resized).to(images.device)
    return normalize(images.permute(0, 3, 1, 2).contiguous(), transform.mean, transform.std)


@torch.no_grad()
def evaluate_cell(model: nn.Module, samples: Iterable[CleanSample], evaluator, transform: EvalTransform, *,
                  backend: CorruptionBackend | None = None, corruption: str = "clean", severity: int = 0,
                  base_seed: int = 0, device: torch.device | str = "cpu", batch_size: int = 8,
                  progress: bool | None = None, threads: int | None = None, **predict_kwargs):
    """Evaluate one cell on the device: corrupt ``samples`` in batches there, then predict one image at a time.

    Args:
        samples: this rank's clean samples (a :class:`CleanShard`, or any iterable of :class:`CleanSample`).
        evaluator: reset first, filled, then all-reduced across ranks (as ``evaluate_dataset`` does).
        backend: a batched backend producing ``corruption`` at ``severity``; None evaluates the clean images.
        batch_size: images corrupted together; the model still sees one image per forward pass.
        threads: torch/OpenCV threads while corrupting (:func:`corruptions.threads.plan`); None: unchanged.
        predict_kwargs: ``mode``, ``crop``, ``stride``, ``scales``, ``flip``, ``precision`` of
            :func:`~repsep.engine.inference.predict`.

    Returns ``evaluator``.
    """
    from repsep.progress import progress_bar

    device = torch.device(device)
    was_training = model.training
    model.eval()
    evaluator.reset()
    total = len(samples) if hasattr(samples, "__len__") else None
    bar = progress_bar(total=total, wanted=progress if dist.is_main() else False, desc="eval", unit="img",
                       leave=False)
    for batch, images in corrupted_batches(samples, backend, corruption, severity, base_seed, device, batch_size,
                                            threads):
        inputs = model_inputs(images, transform)
        for k, sample in enumerate(batch):
            label = sample.label[None].to(device, non_blocking=True)
            evaluate_batch(model, inputs[k:k + 1], label, [sample.id], evaluator, **predict_kwargs)
        bar.update(len(batch))
    bar.close()
    evaluator.all_reduce()
    model.train(was_training)
    return evaluator
