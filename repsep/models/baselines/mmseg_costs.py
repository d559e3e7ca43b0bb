"""Params (M, without auxiliary heads) and GMACs of mmsegmentation 1.2.2's own builds of the baselines.

Measured by ``scripts/baseline_costs.py``: mmseg's bundled configs (ViT-B/L by width/depth overrides where mmseg
ships only the other size), ADE20K heads (150 classes), 512x512 input and position grid, meta device,
``torch.utils.flop_counter.FlopCounterMode`` (GMACs = FLOPs / 2). ``models info`` prints them next to ours.
"""

MMSEG_COSTS: dict[tuple[str, str], tuple[float, float]] = {
    ("upernet_vit", "B"): (142.36, 443.4),
    ("upernet_vit", "L"): (380.53, 793.2),
    ("setr_naive", "B"): (86.67, 107.9),
    ("setr_naive", "L"): (304.45, 362.9),
    ("setr_pup", "B"): (90.01, 169.6),
    ("setr_pup", "L"): (308.32, 425.2),
    ("setr_mla", "B"): (91.44, 113.2),
    ("setr_mla", "L"): (309.42, 368.1),
    ("segmenter_linear", "B"): (86.55, 107.1),
    ("segmenter_linear", "L"): (304.30, 362.1),
    ("segmenter_mask", "B"): (102.50, 129.3),
    ("segmenter_mask", "L"): (333.23, 399.6),
}
"""(name, size) -> (params M, GMACs at 512x512) of mmseg's build."""
