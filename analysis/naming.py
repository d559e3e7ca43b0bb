"""Model names from checkpoint paths, shared by ``analyze`` and ``report`` (imports nothing of either).

A model is named after its training run: the folder holding ``model_final.pt`` / ``checkpoint_last.pt``, else
the checkpoint file's stem. Names are labels for people; ``report`` identifies models by their weights' sha256.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

CHECKPOINT_STEMS = ("model_final", "checkpoint_last")


def model_name_of(checkpoint: Path) -> str:
    """A training run's name from its checkpoint path: ``runs/vit_b_rsseg/model_final.pt`` -> ``vit_b_rsseg``."""
    return checkpoint.parent.name if checkpoint.stem in CHECKPOINT_STEMS and checkpoint.parent.name else checkpoint.stem


def run_folder_of(checkpoint: Path) -> Path:
    """The training-run folder a checkpoint names (its parent for ``model_final.pt``), else the file without suffix."""
    return checkpoint.parent if checkpoint.stem in CHECKPOINT_STEMS and checkpoint.parent.name else \
        checkpoint.with_suffix("")


def distinct_names(folders: Sequence[Path]) -> list[str]:
    """Short distinct labels for different models: the folder name, lengthened with parent folders
    (``exp1/runs/vit``) where two share it, ``-2``, ``-3`` appended as a last resort. Order is kept."""
    parts = [Path(f).parts or (str(f),) for f in folders]
    labels = [p[-1] for p in parts]
    depth = {i: 1 for i in range(len(parts))}
    while True:
        clashes = [i for i, lab in enumerate(labels) if labels.count(lab) > 1 and depth[i] < len(parts[i])]
        if not clashes:
            break
        for i in clashes:
            depth[i] += 1
            labels[i] = "/".join(parts[i][-depth[i]:])
    out: list[str] = []
    for lab in labels:
        name, k = lab, 2
        while name in out:
            name, k = f"{lab}-{k}", k + 1
        out.append(name)
    return out
