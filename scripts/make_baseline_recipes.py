"""Write the bundled recipes of the recognisable baselines (repsep/configs/{synthcity_tiny,cityscapes,ade20k}_*).

Settings follow mmsegmentation 1.x's configs (configs/vit, configs/setr, configs/segmenter): crop, iterations,
batch, warmup, poly power, head lr multiplier, test mode. Deviations (said in each file): repsep's trainer has
AdamW only (SETR and Segmenter use SGD in mmseg) and ImageNet normalisation (Segmenter uses 127.5/127.5).
Usage: ``python scripts/make_baseline_recipes.py`` (overwrites those files).
"""

from __future__ import annotations

from pathlib import Path

import yaml

OUT = Path(__file__).resolve().parents[1] / "repsep" / "configs"
ARCHS = ("upernet_vit", "setr_naive", "setr_pup", "setr_mla", "segmenter_linear", "segmenter_mask")
DATA = {
    "cityscapes": dict(spec="cityscapes:data/cityscapes", crop=[768, 768], scale=[1024, 2048], classes=19, iters=80000,
                       batch=8, slide=([768, 768], [512, 512])),
    "ade20k": dict(spec="ade20k:data/ade20k", crop=[512, 512], scale=[512, 2048], classes=150, iters=160000,
                   batch=16, slide=([512, 512], [341, 341])),
}
SOURCE = {"upernet_vit": "configs/vit/vit_vit-b16-ln_mln_upernet_8xb2-160k_ade20k-512x512.py",
          "setr": "configs/setr/setr_vit-l_{head}_8xb1-80k_cityscapes-768x768.py / _8xb2-160k_ade20k-512x512.py",
          "segmenter": "configs/segmenter/segmenter_vit-{b,l}_mask_8xb1-160k_ade20k-512x512.py"}


def recipe(arch: str, dataset: str, size: str) -> tuple[dict, str]:
    d = DATA[dataset]
    family = "upernet_vit" if arch == "upernet_vit" else arch.split("_")[0]
    batch = 8 if family == "segmenter" else d["batch"]
    mode, crop, stride = "slide", *d["slide"]
    if family == "segmenter" and dataset == "ade20k":
        stride = [480, 480]
    optim = dict(lr=6.0e-5, weight_decay=0.01, betas=[0.9, 0.999], layer_decay=1.0,
                 head_lr_mult=1.0 if family == "upernet_vit" else 10.0, warmup_iters=1500, warmup_ratio=1.0e-6,
                 power=1.0 if family == "upernet_vit" else 0.9, clip_grad=None)
    cfg = dict(
        model=dict(name=arch, size=size, num_classes=d["classes"], img_size=list(d["crop"]),
                   drop_path=0.0 if family == "setr" else 0.1),
        pretrained=f"pretrain/vit_{'base' if size == 'B' else 'large'}_patch16_384.pth",
        data=dict(spec=d["spec"], crop=list(d["crop"]), scale=list(d["scale"]), ratio_range=[0.5, 2.0],
                  cat_max_ratio=0.75,
                  batch_size=batch // 8, num_workers=4),
        optim=optim,
        schedule=dict(iters=d["iters"], val_interval=d["iters"] // 10, ckpt_interval=4000, log_interval=50),
        eval=dict(mode=mode, crop=list(crop), stride=list(stride)),
        amp="bf16", seed=0)
    if family == "upernet_vit" and dataset == "ade20k":
        cfg["eval"] = dict(mode="whole")
    notes = [f"{arch} ViT-{size}, {dataset} {d['classes']} classes, {d['crop'][0]}x{d['crop'][1]} crops, "
             f"{d['iters'] // 1000}k iterations, batch {batch} = 8 GPUs x {batch // 8}.",
             f"Follows mmseg 1.x {SOURCE[family]} (crop, iterations, batch, warmup, poly power, head lr x"
             f"{optim['head_lr_mult']:g}, test mode).",
             "mmseg has no layer decay for these ViT recipes (layer_decay 1.0)."]
    if family != "upernet_vit":
        notes.append("DEVIATION: mmseg trains this with SGD (momentum 0.9, lr 0.01 Cityscapes / 0.001 ADE20K, wd 0); "
                     "repsep's trainer has AdamW only, so AdamW at UperNet-ViT's lr 6e-5.")
    if family == "segmenter":
        notes.append("DEVIATION: mmseg normalises Segmenter inputs with mean = std = 127.5; repsep's pipeline uses "
                     "ImageNet mean/std (imported mmseg Segmenter checkpoints fold their own normalisation in).")
    if dataset == "cityscapes" and family != "setr":
        notes.append("mmseg has no Cityscapes config of this model: the dataset settings are mmseg's SETR "
                     "Cityscapes ones (768 crops, 80k, slide 768/512).")
    notes.append(f"Run: torchrun --nproc-per-node 8 -m repsep.cli train {dataset}_vit_{size.lower()}_{arch} "
                 f"--set data.spec={dataset}:/data/{dataset}")
    return cfg, "".join(f"# {n}\n" for n in notes)


def tiny(arch: str) -> tuple[dict, str]:
    base = yaml.safe_load((OUT / "synthcity_tiny_baseline.yaml").read_text())
    base["model"]["name"] = arch
    note = (f"# {arch} at size tiny (4-block 96-wide ViT) on the default SynthCity, with the training settings of "
            "synthcity_tiny_baseline\n# (randomly initialised, higher lr, no layer decay), for the demo and tests.\n")
    return base, note


def main() -> None:
    for arch in ARCHS:
        cfg, note = tiny(arch)
        (OUT / f"synthcity_tiny_{arch}.yaml").write_text(note + yaml.safe_dump(cfg, sort_keys=False))
        for dataset in DATA:
            for size in ("B", "L"):
                cfg, note = recipe(arch, dataset, size)
                path = OUT / f"{dataset}_vit_{size.lower()}_{arch}.yaml"
                path.write_text(note + yaml.safe_dump(cfg, sort_keys=False, default_flow_style=None))


if __name__ == "__main__":
    main()
