"""Feature names of the models and where they sit: depth order and the axis a depth plot puts them on."""

from __future__ import annotations

import re
from typing import Any

_HF_LAYER = r"(?:\w+\.)+(?:layer|block)\.(\d+)"
"""An imported transformers model's encoder layer, by its own module name (``beit.encoder.layer.0``,
``segformer.encoder.block.3``; 0-based)."""
_LAYER_GROUPS = (r"vit\.block(\d+)", r"backbone\.stage(\d+)", _HF_LAYER, r"pathway\.stage(\d+)", r"sasm", r"dca",
                 r"decoder_input")


def layer_sort_key(name: str) -> tuple[int, int, str]:
    """Depth order of feature names: ViT blocks or pyramid stages, pathway stages, sasm, dca, decoder_input, then
    any other name alphabetically."""
    for rank, pattern in enumerate(_LAYER_GROUPS):
        m = re.fullmatch(pattern, name)
        if m:
            return rank, int(m.group(1)) if m.groups() else 0, name
    return len(_LAYER_GROUPS), 0, name


def layer_info(name: str, stride: int | None = None) -> dict[str, Any]:
    """Where a feature sits, for plotting depth curves on separate axes: ``axis`` is ``backbone`` (``vit.block{i}``
    or ``backbone.stage{s}``, index = block / stage number; an imported model's ``<...>.layer.<i>`` /
    ``<...>.block.<i>``, kind ``encoder_layer``, index i + 1), ``pathway`` (``pathway.stage{k}``), ``decoder``
    (``sasm``, ``dca``, ``decoder_input``: one point each, in that order) or ``other``; ``kind`` names the family
    (``vit_block``, ``backbone_stage``, ``pathway_stage``, ``sasm``, ``dca``, ``decoder_input``, ``other``)."""
    for pattern, kind, axis in ((r"vit\.block(\d+)", "vit_block", "backbone"),
                                (r"backbone\.stage(\d+)", "backbone_stage", "backbone"),
                                (_HF_LAYER, "encoder_layer", "backbone"),
                                (r"pathway\.stage(\d+)", "pathway_stage", "pathway")):
        m = re.fullmatch(pattern, name)
        if m:
            index = int(m.group(1)) + (kind == "encoder_layer")  # 1-based like vit.block{i}
            return {"kind": kind, "axis": axis, "index": index, "stride": stride}
    if name in ("sasm", "dca", "decoder_input"):
        return {"kind": name, "axis": "decoder", "index": ("sasm", "dca", "decoder_input").index(name) + 1,
                "stride": stride}
    return {"kind": "other", "axis": "other", "index": None, "stride": stride}
