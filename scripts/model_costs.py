"""Print the size and cost tables: the single-factor ladder of the README (tiny at 256x512, ViT-L at 640x640),
then the table of docs/models.md (deployed params and GMACs of the baseline and RSSeg rungs).

    python scripts/model_costs.py

Every row is `repsep-bench models info NAME --set size=S --size HxW` (meta device, eval mode, deployed, batch 1;
GMACs = 10^9 multiply-adds of matmuls, convolutions and attention, what mmseg / fvcore print as "GFLOPs").
"""

from __future__ import annotations

from repsep.models.profile import model_info
from repsep.models.registry import LADDER, ladder_configs, model_config

RUNGS = (("baseline", "baseline_vit", {}), ("+pathway", "rsseg_vit", {"sasm": False, "dca": False}),
         ("+SASM", "rsseg_vit", {"dca": False}), ("RSSeg (+DCA)", "rsseg_vit", {}))
PAIRS = (("ViT-T", "vit", "T", (512, 512)), ("ViT-S", "vit", "S", (512, 512)), ("ViT-B", "vit", "B", (512, 512)),
         ("ViT-L", "vit", "L", (512, 512)), ("PVTv2-b0", "pvt", "b0", (512, 512)),
         ("PVTv2-b1", "pvt", "b1", (512, 512)), ("PVTv2-b2", "pvt", "b2", (512, 512)),
         ("tiny", "vit", "tiny", (128, 256)))


def _row(name: str, size: str, image: tuple[int, int], **overrides) -> dict:
    return model_info(model_config(name, size=size, **overrides), image)


def ladder_table(size: str = "tiny", image: tuple[int, int] = (256, 512)) -> None:
    """The single-factor ladder: what each rung adds, its deployed decoder params and total GMACs."""
    print(f"| rung ({size}, {image[0]}x{image[1]}) | adds | decoder params (M, deployed) | total GMACs |")
    print("|---|---|---:|---:|")
    for (rung, cfg), (*_, adds) in zip(ladder_configs(size), LADDER, strict=True):
        info = model_info(cfg, image)
        print(f"| {rung} | {adds} | {info['params']['extra'] / 1e6:.3f} | {info['gmacs']['total']:.3f} |")


def main() -> None:
    ladder_table()
    print()
    ladder_table("L", (640, 640))
    print()
    print("| model (rung) | input | backbone params (M) | decoder params (M, deployed) | backbone GMACs | "
          "decoder GMACs | total GMACs |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for label, name, overrides in RUNGS:
        info = _row(name, "L", (640, 640), **overrides)
        p, m = info["params"], info["gmacs"]
        print(f"| ViT-L {label} | 640x640 | {p['backbone'] / 1e6:.2f} | {p['extra'] / 1e6:.2f} | "
              f"{m['backbone']:.2f} | {m['extra']:.2f} | {m['total']:.2f} |")
    for label, family, size, image in PAIRS:
        base = _row(f"baseline_{family}", size, image)
        rsseg = _row(f"rsseg_{family}", size, image)
        print(f"| {label} baseline / RSSeg | {image[0]}x{image[1]} | {base['params']['backbone'] / 1e6:.2f} | "
              f"{base['params']['extra'] / 1e6:.2f} / {rsseg['params']['extra'] / 1e6:.2f} | "
              f"{base['gmacs']['backbone']:.2f} | {base['gmacs']['extra']:.2f} / {rsseg['gmacs']['extra']:.2f} | "
              f"{base['gmacs']['total']:.2f} / {rsseg['gmacs']['total']:.2f} |")


if __name__ == "__main__":
    main()
