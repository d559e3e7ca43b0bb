"""Option parsers and help texts shared by several command modules."""

from __future__ import annotations

from repsep.errors import UserError


def parse_size(text: str, option: str) -> tuple[int, int]:
    height, sep, width = text.lower().partition("x")
    if not sep or not height.isdigit() or not width.isdigit():
        raise UserError(f"{option} {text}: expected HEIGHTxWIDTH, e.g. 256x512")
    return int(height), int(width)


def parse_scales(text: str) -> tuple[float, ...]:
    try:
        scales = tuple(float(x) for x in text.split(","))
    except ValueError:
        raise UserError(f"--scales {text}: expected comma-separated factors, e.g. 0.5,0.75,1.0,1.25,1.5,1.75") from None
    if not scales or min(scales) <= 0:
        raise UserError(f"--scales {text}: factors must be positive")
    return scales



SEVERITIES_HELP = "Severities: a range 1-5, one value 3, or a list 1,3,5 (1 = mild ... 5 = strong)."
CORRUPTIONS_HELP = ("Comma-separated corruption names instead of the whole suite, e.g. fog,snow "
                     "(`repsep-bench corruptions list` shows them).")
BACKEND_HELP = ("reference: the imagecorruptions package on CPU, seeded per image (the published protocol). "
                 "torch: batched torch ports (faster; falls back to reference for corruptions it lacks).")
CORRUPT_ON_HELP = ("Where corruption runs. auto: model whenever the backend is batched (torch) and no --from-disk "
                    "is given, else workers. model: the clean images are decoded once per sweep (see --cache-gb), "
                    "then corrupted --corrupt-batch at a time on the model's device (GPU or CPU); glass_blur and "
                    "spatter, which torch lacks, still run in workers. workers: image by image in the DataLoader "
                    "workers, beside the model. The results do not depend on it on CPU; on a GPU the torch ports "
                    "draw other random pixels, so those cells are recorded as torch:cuda.")


MODEL_SET_HELP = ("Override a ModelConfig field, repeatable: --set size=L, --set backbone=vit_base_patch16_384, "
                   "--set width=192, --set taps=[6,12,18,24], --set dca=false, --set discrepancy=laplacian. "
                   "`models list` shows the sizes; docs/models.md lists every field.")
