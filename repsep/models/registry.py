"""Named model factories: ``MODELS[name](**overrides) -> ModelConfig`` and :func:`model_config`.

Four names, two families (plain ViT, pyramid ViT) x (baseline, RSSeg). A size comes from ``size=`` (a preset
below) or from ``backbone=`` (a timm name; the matching preset if there is one, else ``custom`` with timm's
backbone defaults and the real-size decoder). The switches (``aux_head``, ``stem``, ``low_level_skip``,
``discrepancy``, ``sasm``, ``dca``) make the single-factor ladder :data:`LADDER` (baseline -> +aux -> +stem ->
+skip -> +discrepancy -> +SASM -> +DCA), e.g.::

    model_config("baseline_vit", size="L", aux_head=True)                  # +aux
    model_config("rsseg_vit", size="L", dca=False)                          # +SASM
    model_config("rsseg_vit", size="L")                                     # +DCA = RSSeg
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from repsep.errors import UserError
from repsep.models.backbones import default_taps
from repsep.models.config import ModelConfig

# Decoder of the real sizes: pathway width 128 (192 for ViT-B/L), ViT-Adapter stem 64, DeepLabV3+ low-level 48,
# OCR key channels 256 (128 for the smallest backbones). RECONSTRUCTION: the paper gives no widths.
_DECODER = dict(width=128, stem_width=64, low_level_width=48, dca_key_channels=256, drop_path=0.1, depth=None,
                embed_dim=None, num_heads=None, stage_depths=())
_TINY_DECODER = dict(width=32, stem_width=16, low_level_width=16, dca_key_channels=32, drop_path=0.0)

SIZES: dict[str, dict[str, dict[str, Any]]] = {
    "vit": {
        "tiny": dict(_TINY_DECODER, backbone="vit_tiny_patch16_384", depth=4, embed_dim=96, num_heads=3),
        "T": dict(_DECODER, backbone="vit_tiny_patch16_384", dca_key_channels=128),
        "S": dict(_DECODER, backbone="vit_small_patch16_384", dca_key_channels=128),
        "B": dict(_DECODER, backbone="vit_base_patch16_384", width=192),
        "L": dict(_DECODER, backbone="vit_large_patch16_384", width=192, drop_path=0.3),
    },
    "pvt": {
        "tiny": dict(_TINY_DECODER, backbone="pvt_v2_b0", stage_depths=(1, 1, 1, 1), depth=None, embed_dim=None,
                     num_heads=None),
        "b0": dict(_DECODER, backbone="pvt_v2_b0", dca_key_channels=128),
        "b1": dict(_DECODER, backbone="pvt_v2_b1"),
        "b2": dict(_DECODER, backbone="pvt_v2_b2"),
    },
}
"""Size presets per family. ``tiny`` (4 blocks of width 96 / PVTv2-b0 with one block per stage, decoder width 32)
is for tests and SynthCity on a laptop CPU."""

_SWITCHES = ("pathway", "sasm", "dca")
_PREFIX = {"vit": "vit_", "pvt": "pvt_v2_"}


def _make(name: str, family: str, size: str | None, overrides: dict[str, Any]) -> ModelConfig:
    sizes = SIZES[family]
    backbone = overrides.get("backbone")
    deit = family == "vit" and str(backbone).startswith("deit_")  # timm DeiT models are plain ViTs
    if backbone is not None and not str(backbone).startswith(_PREFIX[family]) and not deit:
        raise UserError(f"model.backbone: {name} needs a {_PREFIX[family]}* backbone, got {backbone!r}")
    if size is None:
        matches = [k for k, v in sizes.items() if k != "tiny" and v["backbone"] == backbone]
        size = "tiny" if backbone is None else (matches[0] if matches else "custom")
    if size == "custom":
        if backbone is None:
            raise UserError(f"model.size: size 'custom' needs a backbone= for {name}")
        preset = dict(_DECODER)
    elif size in sizes:
        preset = dict(sizes[size])
        if backbone is not None and backbone != preset["backbone"]:
            raise UserError(f"model.size: size {size!r} means backbone {preset['backbone']}, not {backbone}; "
                            "give one of size or backbone")
    else:
        raise UserError(f"model.size: {size!r} is not one of {', '.join([*sizes, 'custom'])} for {name}")
    fields = {f.name for f in dataclasses.fields(ModelConfig)}
    unknown = sorted(set(overrides) - fields)
    if unknown or "name" in overrides:
        raise UserError(f"model: unknown or fixed field(s) {', '.join(unknown or ['name'])} for {name}; "
                        f"settable: {', '.join(sorted(fields - {'name', 'size'}))}")
    return ModelConfig(**{**preset, **overrides, "name": name, "size": size})


def baseline_vit(size: str | None = None, **overrides: Any) -> ModelConfig:
    """Plain ViT + the baseline decoder (RSSeg's decoder without stem, discrepancy, SASM and DCA)."""
    _no_switches("baseline_vit", overrides)
    return _make("baseline_vit", "vit", size, {**overrides, "pathway": False, "sasm": False, "dca": False})


def rsseg_vit(size: str | None = None, pathway: bool = True, sasm: bool = True, dca: bool = True,
              **overrides: Any) -> ModelConfig:
    """Plain ViT + RSSeg: decoupled two-pathway network, SASM, DCA (each switchable)."""
    return _make("rsseg_vit", "vit", size, {**overrides, "pathway": pathway, "sasm": sasm, "dca": dca})


def baseline_pvt(size: str | None = None, **overrides: Any) -> ModelConfig:
    """Pyramid ViT (PVTv2) + the baseline decoder."""
    _no_switches("baseline_pvt", overrides)
    return _make("baseline_pvt", "pvt", size, {**overrides, "pathway": False, "sasm": False, "dca": False})


def rsseg_pvt(size: str | None = None, pathway: bool = True, sasm: bool = True, dca: bool = True,
              **overrides: Any) -> ModelConfig:
    """Pyramid ViT (PVTv2) + RSSeg; the local pathway starts from stage 1 instead of a conv stem."""
    return _make("rsseg_pvt", "pvt", size, {**overrides, "pathway": pathway, "sasm": sasm, "dca": dca})


def _no_switches(name: str, overrides: dict[str, Any]) -> None:
    given = [s for s in _SWITCHES if s in overrides]
    if given:
        raise UserError(f"model: {name} has no RSSeg parts to switch ({', '.join(given)}); use rsseg_"
                        f"{name.split('_')[1]} with pathway/sasm/dca switches")


# ---- recognisable baselines (repsep.models.baselines), structured as mmsegmentation 1.x builds them ----------

_HEAD_WIDTH = {"tiny": 32, "T": 256, "S": 256, "B": 512, "L": 512}
"""UPerHead / SETR head channels per size (mmseg: UPerHead 512 at ViT-B/DeiT-S, SETR 256 at ViT-L)."""


def _depth_of(cfg: ModelConfig) -> int:
    return cfg.depth or (24 if "large" in cfg.backbone else 32 if "huge" in cfg.backbone else 12)


def _setr_taps(depth: int) -> tuple[int, ...]:
    """SETR naive/PUP taps: mmseg's out_indices (9, 14, 19, 23) at 24 blocks (1-based 10, 15, 20, 24), else the
    quarters of depth."""
    return (10, 15, 20, 24) if depth == 24 else default_taps(depth)


def _baseline(name: str, size: str | None, overrides: dict[str, Any], defaults: Callable[[ModelConfig], dict]
              ) -> ModelConfig:
    """A baseline config: the ViT size preset, then the architecture's defaults, then ``overrides``."""
    _no_switches(name, overrides)
    base = _make(name, "vit", size, {k: v for k, v in overrides.items() if k in ("backbone", "depth", "embed_dim")})
    d = {**defaults(base), "pathway": False, "sasm": False, "dca": False}
    keep = {f.name: getattr(base, f.name) for f in dataclasses.fields(ModelConfig)}
    return _make(name, "vit", base.size if base.size != "custom" else None,
                 {**{k: v for k, v in keep.items() if k not in ("name", "size")}, **d, **overrides})


def upernet_vit(size: str | None = None, **overrides: Any) -> ModelConfig:
    """UperNet on a plain ViT (mmseg configs/vit): taps 3/6/9/12 -> MultiLevelNeck -> UPerHead, FCN aux 0.4."""
    return _baseline("upernet_vit", size, overrides, lambda c: dict(
        taps=default_taps(_depth_of(c)), width=_HEAD_WIDTH.get(c.size, 512),
        aux_width=16 if c.size == "tiny" else 256, dropout=0.1, pos_interp="bicubic",
        drop_path=0.0 if c.size == "tiny" else 0.1))


def setr_naive(size: str | None = None, **overrides: Any) -> ModelConfig:
    """SETR-Naive (mmseg configs/setr): LN, Conv1x1-BN-ReLU, x4, classify; 3 aux heads on earlier taps."""
    return _baseline("setr_naive", size, overrides, lambda c: dict(
        taps=_setr_taps(_depth_of(c)), width=32 if c.size == "tiny" else 256, dropout=0.0, pos_interp="bilinear"))


def setr_pup(size: str | None = None, **overrides: Any) -> ModelConfig:
    """SETR-PUP (mmseg configs/setr): LN, 4 x (Conv3x3-BN-ReLU, x2), classify; 3 aux heads on earlier taps."""
    return _baseline("setr_pup", size, overrides, lambda c: dict(
        taps=_setr_taps(_depth_of(c)), width=32 if c.size == "tiny" else 256, dropout=0.0, pos_interp="bilinear"))


def setr_mla(size: str | None = None, **overrides: Any) -> ModelConfig:
    """SETR-MLA (mmseg configs/setr): MLANeck -> 4 branches (2 convs, x4) concatenated; 4 FCN aux classifiers."""
    return _baseline("setr_mla", size, overrides, lambda c: dict(
        taps=default_taps(_depth_of(c)), neck_width=32 if c.size == "tiny" else 256,
        mla_width=16 if c.size == "tiny" else 128, width=64 if c.size == "tiny" else 512, dropout=0.0,
        with_cls_token=False, pos_interp="bilinear"))


def segmenter_linear(size: str | None = None, **overrides: Any) -> ModelConfig:
    """Segmenter, linear decoder (mmseg configs/segmenter): final-normed last block -> 1x1 classifier."""
    return _baseline("segmenter_linear", size, overrides, lambda c: dict(
        taps=(_depth_of(c),), final_norm=True, width=_VIT_WIDTH.get(c.size, c.embed_dim or 768), dropout=0.0,
        pos_interp="bicubic", drop_path=0.0 if c.size == "tiny" else 0.1))


def segmenter_mask(size: str | None = None, **overrides: Any) -> ModelConfig:
    """Segmenter, mask transformer decoder (mmseg configs/segmenter): 2 blocks, class embeddings, masks."""
    return _baseline("segmenter_mask", size, overrides, lambda c: dict(
        taps=(_depth_of(c),), final_norm=True, width=_VIT_WIDTH.get(c.size, c.embed_dim or 768), decoder_layers=2,
        decoder_heads=None, dropout=0.0, pos_interp="bicubic", drop_path=0.0 if c.size == "tiny" else 0.1))


_VIT_WIDTH = {"tiny": 96, "T": 192, "S": 384, "B": 768, "L": 1024}

MODELS: dict[str, Callable[..., ModelConfig]] = {
    "baseline_vit": baseline_vit,
    "rsseg_vit": rsseg_vit,
    "baseline_pvt": baseline_pvt,
    "rsseg_pvt": rsseg_pvt,
    "upernet_vit": upernet_vit,
    "setr_naive": setr_naive,
    "setr_pup": setr_pup,
    "setr_mla": setr_mla,
    "segmenter_linear": segmenter_linear,
    "segmenter_mask": segmenter_mask,
}


def model_config(name: str, **overrides: Any) -> ModelConfig:
    """``MODELS[name](**overrides)``; an unknown name or field is a UserError listing the options."""
    if name not in MODELS:
        raise UserError(f"model: unknown model {name!r}; choose one of {', '.join(MODELS)}")
    return MODELS[name](**overrides)


def parse_overrides(items: list[str], option: str = "--set") -> dict[str, Any]:
    """``["width=192", "taps=[6,12,18,24]", "dca=false"]`` -> dict; values are parsed as YAML scalars/lists."""
    import yaml

    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"{option} {item!r}: expected key=value")
        try:
            out[key.strip()] = yaml.safe_load(value) if value.strip() else None
        except yaml.YAMLError:
            raise UserError(f"{option} {item!r}: cannot parse the value") from None
    return out


# ---- the single-factor ablation ladder ------------------------------------------------------------------------

LADDER: tuple[tuple[str, str, dict[str, Any], str], ...] = (
    ("baseline", "baseline_vit", {}, "the matched control: RSSeg's decoder without its separation parts"),
    ("+aux", "baseline_vit", {"aux_head": True}, "deep supervision: the auxiliary FCN head (aux_weight 0.4) "
     "that SASM and DCA bring, on the baseline"),
    ("+stem", "rsseg_vit", {"sasm": False, "dca": False, "aux_head": True, "low_level_skip": False,
                            "discrepancy": "none"}, "the local pathway's conv stem starts the fusion stages"),
    ("+skip", "rsseg_vit", {"sasm": False, "dca": False, "aux_head": True, "discrepancy": "none"},
     "the stem's stride-4 feature into the final head"),
    ("+discrepancy", "rsseg_vit", {"sasm": False, "dca": False, "aux_head": True},
     "the local-patch discrepancy d(x) = x - AvgPool3x3(x) in every fusion stage (the full pathway)"),
    ("+SASM", "rsseg_vit", {"dca": False}, "the spatially adaptive separation module (gate of local and global)"),
    ("+DCA", "rsseg_vit", {}, "discriminative cross-attention with its region classification (RSSeg)"),
)
"""(rung, model, overrides, what it adds) in order; each rung changes exactly one thing from the one before.
Deep supervision comes first so that SASM's rung measures the module, not the auxiliary loss it brings; then
the pathway's parts from the input side (stem), to the head (skip), to the feature itself (discrepancy)."""


def ladder_configs(size: str | None = None, **overrides: Any) -> list[tuple[str, ModelConfig]]:
    """The :data:`LADDER` as (rung, ModelConfig) at ``size`` with shared ``overrides`` (e.g. num_classes)."""
    return [(rung, model_config(name, size=size, **{**overrides, **switches})) for rung, name, switches, _ in LADDER]
