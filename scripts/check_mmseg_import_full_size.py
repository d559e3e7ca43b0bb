"""One-off check at real sizes: mmseg's own ViT-B/L builds (bundled configs, random weights and BN statistics),
saved WITHOUT the config text (as many model-zoo files are), imported with the architecture defaults, compared on
a 64x96 input. Usage: ``PYTHONPATH=. python scripts/check_mmseg_import_full_size.py [arch:size ...]`` (CPU,
~5-20 s per model, ViT-L needs ~3 GB RAM).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "scripts")]

DEFAULT = ["upernet_vit:B", "setr_naive:L", "setr_pup:L", "setr_mla:B", "segmenter_linear:L", "segmenter_mask:B"]


def main(items: list[str]) -> None:
    from baseline_costs import _mmseg_cfg
    from mmseg_oracle import mmseg_logits, require_mmseg

    from repsep.engine.inference import predict
    from repsep.models.importers.mmseg import import_mmseg

    models = require_mmseg()
    for item in items or DEFAULT:
        arch, size = item.split(":")
        t = time.time()
        torch.manual_seed(0)
        ref = models.build(_mmseg_cfg(arch, size)).eval()
        with torch.no_grad():
            for m in ref.modules():
                if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                    m.running_mean.normal_(0, 0.2)
                    m.running_var.uniform_(0.5, 1.5)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "ckpt.pth"
            torch.save({"meta": {}, "state_dict": ref.state_dict()}, path)
            imported = import_mmseg(path, arch)
        model = imported.model
        x = torch.randn(1, 3, 64, 96)
        x_mm = x * model.input_scale.view(1, 3, 1, 1) + model.input_shift.view(1, 3, 1, 1)
        diff = (predict(model, x) - mmseg_logits(ref, x_mm)).abs().max().item()
        cfg = imported.config
        print(f"{arch} ViT-{size}: heads {cfg.num_heads}, taps {list(cfg.taps)}, max |diff| {diff:.2e} "
              f"({time.time() - t:.0f} s)", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
