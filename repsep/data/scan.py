"""Check a whole split cheaply before any work starts, so a bad file is found in seconds, not at image 445.

:func:`scan_split` opens every image and label header (existence, readability, mode, size; no pixel decode) and,
unless ``full=False``, decodes every label to check its values against the class table. It raises the
:class:`~repsep.errors.UserError` naming the first bad file. Truncated pixel data past a valid header is found
only when the image is decoded; long evaluations keep per-image results, so a rerun continues after it.
"""

from __future__ import annotations

from collections.abc import Sequence

from PIL import Image, UnidentifiedImageError

from repsep.data.base import SegmentationDataset, read_label_png
from repsep.errors import UserError
from repsep.progress import progress_bar

LABEL_MODES = ("L", "P")


def _header(path, what: str) -> tuple[str, tuple[int, int]]:
    """(mode, (width, height)) of an image file without decoding its pixels."""
    try:
        if path.stat().st_size == 0:
            raise UserError(f"{path}: empty file (0 bytes), expected a {what}")
        with Image.open(path) as img:
            return img.mode, img.size
    except FileNotFoundError:
        raise UserError(f"{path}: file not found") from None
    except UnidentifiedImageError:
        raise UserError(f"{path}: not a readable image, expected a {what}") from None
    except OSError as e:
        raise UserError(f"{path}: unreadable {what} ({e.strerror or e})") from None


def scan_split(dataset: SegmentationDataset, *, indices: Sequence[int] | None = None, full: bool = True,
               min_size: tuple[int, int] | None = None, progress: bool | None = None) -> None:
    """Check the image/label pairs ``indices`` (default: all) of ``dataset``; UserError on the first bad one.

    Checks: both files exist and open, the image is 8-bit (not 16-bit/float), the label is 8-bit single-channel,
    both have the same size, the image is at least ``min_size`` (H, W) when given, and (``full``) every label
    value is in the class table. Also refuses a split in which no pixel is labelled (mIoU would be undefined).
    """
    indices = range(len(dataset)) if indices is None else indices
    any_labelled = not full
    for i in progress_bar(indices, wanted=progress, desc="scan", unit="img", leave=False):
        image_path, label_path = dataset.images[i], dataset.labels[i]
        mode, (width, height) = _header(image_path, "8-bit image")
        if mode in ("I", "I;16", "I;16B", "I;16L", "F"):
            raise UserError(f"{image_path}: {mode} (16-bit/float) image, expected 8-bit RGB")
        label_mode, label_size = _header(label_path, "8-bit single-channel label PNG")
        if label_mode not in LABEL_MODES:
            raise UserError(f"{label_path}: label image has mode {label_mode}, expected an 8-bit single-channel "
                            "PNG (mode L)")
        if label_size != (width, height):
            raise UserError(f"{label_path}: label is {label_size[0]}x{label_size[1]} (WxH) but its image "
                            f"{image_path.name} is {width}x{height}")
        if min_size is not None and (height < min_size[0] or width < min_size[1]):
            raise UserError(f"{image_path}: image is {height}x{width} (HxW), smaller than the {min_size[0]}x"
                            f"{min_size[1]} this run needs")
        if full:
            label = dataset.decode_label(read_label_png(label_path), label_path)
            any_labelled = any_labelled or bool((label != dataset.class_table.ignore_index).any())
    if not any_labelled and len(indices):
        raise UserError(f"{dataset.spec} [{dataset.split}]: no labelled pixel in the {len(indices)} images checked "
                        "(every label is ignore); mIoU would be undefined")
