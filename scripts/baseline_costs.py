"""Params (M, deployed) and GMACs of the recognisable baselines at ViT-B/L: this project's builds next to
mmsegmentation's own builds of the corresponding configs.

Both are built on the ``meta`` device (no weights) and run once in eval mode, batch 1, under
``torch.utils.flop_counter.FlopCounterMode`` (GMACs = counted FLOPs / 2; matmuls, convs and attention only);
mmseg's parameters exclude ``auxiliary_head``. mmseg is imported with the stand-in ``mmcv.ops`` of
``tests/mmseg_oracle.py``. Usage: ``python scripts/baseline_costs.py [--size 512x512] [--json out.json]``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

CONFIGS = {  # mmseg config per (arch, size); None = the B/L variant is made from the other by overrides
    ("upernet_vit", "B"): "vit/vit_vit-b16_mln_upernet_8xb2-80k_ade20k-512x512.py",
    ("upernet_vit", "L"): None,
    ("setr_naive", "L"): "setr/setr_vit-l_naive_8xb2-160k_ade20k-512x512.py",
    ("setr_pup", "L"): "setr/setr_vit-l_pup_8xb2-160k_ade20k-512x512.py",
    ("setr_mla", "L"): "setr/setr_vit-l_mla_8xb2-160k_ade20k-512x512.py",
    ("segmenter_linear", "B"): None,
    ("segmenter_mask", "B"): "segmenter/segmenter_vit-b_mask_8xb1-160k_ade20k-512x512.py",
    ("segmenter_mask", "L"): "segmenter/segmenter_vit-l_mask_8xb1-160k_ade20k-512x512.py",
}
VIT = {"B": dict(embed_dims=768, num_layers=12, num_heads=12), "L": dict(embed_dims=1024, num_layers=24, num_heads=16)}


def _mmseg_cfg(arch: str, size: str) -> dict:
    import mmseg
    from mmengine.config import Config

    base = Path(mmseg.__file__).parent / ".mim" / "configs"
    name = CONFIGS.get((arch, size))
    if name is not None:
        cfg = Config.fromfile(base / name).model
    elif arch == "upernet_vit":  # ViT-L UperNet: the ViT-B config at L width / depth
        cfg = Config.fromfile(base / CONFIGS[(arch, "B")]).model
        cfg.backbone.update(VIT["L"], out_indices=(5, 11, 17, 23))
        cfg.neck.update(in_channels=[1024] * 4, out_channels=1024)
        cfg.decode_head.in_channels = [1024] * 4
        cfg.auxiliary_head.in_channels = 1024
    elif arch == "segmenter_linear":  # mmseg ships ViT-S linear; the B/L variant widens it
        cfg = Config.fromfile(base / "segmenter/segmenter_vit-s_fcn_8xb1-160k_ade20k-512x512.py").model
        d = VIT[size]["embed_dims"]
        cfg.backbone.update(VIT[size])
        cfg.decode_head.update(in_channels=d, channels=d)
    else:  # SETR at ViT-B: the ViT-L config at B width / depth, taps at the quarters
        cfg = Config.fromfile(base / CONFIGS[(arch, "L")]).model
        cfg.backbone.update(VIT["B"], out_indices=(2, 5, 8, 11))
        if cfg.get("neck"):
            cfg.neck.in_channels = [768] * 4
        else:
            cfg.decode_head.in_channels = 768
            for h in cfg.auxiliary_head:
                h.in_channels = 768
    cfg.pop("data_preprocessor", None)
    cfg.pop("pretrained", None)
    cfg.backbone.pop("init_cfg", None)
    for bn in ("decode_head", "neck"):
        if cfg.get(bn) and cfg[bn].get("norm_cfg"):
            cfg[bn].norm_cfg = dict(type="BN", requires_grad=True)
    aux = cfg.get("auxiliary_head")
    for h in (aux if isinstance(aux, list) else [aux] if aux else []):
        if h.get("norm_cfg"):
            h.norm_cfg = dict(type="BN", requires_grad=True)
    cfg.decode_head.num_classes = 150
    return cfg


def mmseg_cost(arch: str, size: str, image: tuple[int, int]) -> tuple[float, float]:
    from mmseg_oracle import require_mmseg

    models = require_mmseg()
    linspace = torch.linspace  # mmseg reads drop-path rates with .item(): keep that one tensor on the CPU
    torch.linspace = lambda *a, **k: linspace(*a, **{**k, "device": "cpu"})
    try:
        with torch.device("meta"):
            model = models.build(_mmseg_cfg(arch, size)).eval()
    finally:
        torch.linspace = linspace
    params = sum(p.numel() for n, p in model.named_parameters() if not n.startswith("auxiliary_head."))
    counter = FlopCounterMode(display=False)
    metas = [dict(img_shape=image, ori_shape=image, pad_shape=image)]
    with counter, torch.no_grad():
        model.encode_decode(torch.empty(1, 3, *image, device="meta"), metas)
    return params / 1e6, counter.get_total_flops() / 2e9


def ours_cost(arch: str, size: str, image: tuple[int, int]) -> tuple[float, float]:
    from repsep.models.profile import model_info
    from repsep.models.registry import model_config

    info = model_info(model_config(arch, size=size, num_classes=150, img_size=image), image)  # grid = crop, as mmseg
    return info["params"]["inference"] / 1e6, info["gmacs"]["total"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="512x512")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    image = tuple(int(v) for v in args.size.split("x"))
    rows = []
    print(f"| model | ViT | params (M, deployed) | GMACs {args.size} | mmseg params (M) | mmseg GMACs |")
    print("|---|---|---|---|---|---|")
    for arch in ("upernet_vit", "setr_naive", "setr_pup", "setr_mla", "segmenter_linear", "segmenter_mask"):
        for size in ("B", "L"):
            p, g = ours_cost(arch, size, image)
            mp, mg = mmseg_cost(arch, size, image)
            rows.append(dict(model=arch, size=size, params_m=p, gmacs=g, mmseg_params_m=mp, mmseg_gmacs=mg))
            print(f"| {arch} | {size} | {p:.2f} | {g:.1f} | {mp:.2f} | {mg:.1f} |", flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
