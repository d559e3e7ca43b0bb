"""``ModelConfig``: every choice that defines a segmenter, as plain fields.

The paper (Hong et al., arXiv 2212.13764) gives no architecture details beyond its abstract, so most fields below
are reconstructions (see ``docs/models.md`` and the reference note section 3); their docstrings say RECONSTRUCTION.
``dataclasses.asdict(cfg)`` holds only ints, floats, bools, strings, None and tuples, so it round-trips through YAML
and a ``weights_only`` checkpoint: ``ModelConfig.from_dict(asdict(cfg)) == cfg`` (lists come back as tuples).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from repsep.errors import UserError
from repsep.schema import MAX_PIXELS, Rule, Spec, check

DISCREPANCY_MODES = ("avgpool", "laplacian", "none")
GATE_MODES = ("softmax", "sigmoid")
ADDED_FIELDS = frozenset({"stem", "low_level_skip", "aux_head", "final_norm", "with_cls_token", "pos_interp",
                          "neck_width", "aux_width", "mla_width", "decoder_layers", "decoder_heads"})
"""Fields added after run folders and exports were first written: a saved, complete config without them takes
their defaults, which are the behaviour it was made with."""
BASELINE_AUX = {"upernet_vit": ("aux_head",), "setr_naive": ("aux_head",), "setr_pup": ("aux_head",),
                "setr_mla": ("aux_head",), "segmenter_linear": (), "segmenter_mask": ()}
"""Training-only modules of the recognisable baselines (repsep.models.baselines), removed by ``deploy()``."""


@dataclass(frozen=True)
class ModelConfig:
    """A segmenter: backbone (timm) + decoder (baseline or RSSeg parts switched on).

    Build one with :func:`repsep.models.model_config` (named factory + size preset + overrides) rather than by
    hand; ``size`` is applied by that function and only recorded here. The defaults are the ``tiny`` RSSeg
    (``ModelConfig() == model_config("rsseg_vit")``).
    """

    name: str = "rsseg_vit"
    """Registry name the config was made from (``baseline_vit``, ``rsseg_vit``, ``baseline_pvt``, ``rsseg_pvt``)."""
    size: str = "tiny"
    """Size preset it was made from (see ``repsep.models.registry.SIZES``), or ``custom``."""
    backbone: str = "vit_tiny_patch16_384"
    """timm model name: a plain ViT (``vit_*``) or a pyramid ViT (``pvt_v2_*``); never downloaded."""
    num_classes: int = 19
    img_size: int | tuple[int, int] | None = None
    """ViT position-embedding grid size in pixels (None: timm default, 384 for ``*_384``); any input size works."""
    patch_size: int | None = None
    """ViT patch size (None: timm default)."""
    depth: int | None = 4
    """ViT blocks (None: timm default)."""
    embed_dim: int | None = 96
    """ViT width (None: timm default)."""
    num_heads: int | None = 3
    """ViT attention heads (None: timm default)."""
    stage_depths: tuple[int, ...] = ()
    """Pyramid ViT blocks per stage (empty: timm default)."""
    drop_path: float = 0.0
    """Stochastic depth rate of the backbone."""
    taps: tuple[int, ...] = ()
    """ViT blocks (1-based) feeding the K decoder stages. Empty: the end of each quarter of depth (3,6,9,12 for
    ViT-B; 6,12,18,24 for ViT-L), as ViT-Adapter splits ViTs. RECONSTRUCTION. Pyramid ViTs always tap their 4
    stages."""
    pathway: bool = True
    """Decoupled local pathway: conv stem (ViT-Adapter SpatialPriorModule to stride 8; for pyramid ViTs a stride-2
    conv on stage 1) + local-patch discrepancy enhancement. Off = the baseline decoder."""
    sasm: bool = True
    """Spatially adaptive separation module: per-pixel gate between local L and global G + auxiliary FCN head."""
    dca: bool = True
    """Discriminative cross-attention: OCR-style pixel->region attention + auxiliary region classification."""
    width: int = 32
    """Channels of the pathway stages, SASM, DCA and heads (C_l; 128-192 at real sizes). RECONSTRUCTION."""
    stem_width: int = 16
    """Channels of the conv stem before stride 8 (ViT-Adapter uses 64). RECONSTRUCTION."""
    low_level_width: int = 16
    """Channels the stride-4 feature is projected to before the final head (DeepLabV3+ uses 48). RECONSTRUCTION."""
    blocks_per_stage: int = 2
    """BasicBlocks (3x3-3x3, BN, ReLU) per decoder stage. RECONSTRUCTION."""
    discrepancy: str = "avgpool"
    """Local-patch discrepancy d(x) (pathway on): ``none`` = no d(x) (single-factor ablation); ``avgpool`` =
    x - AvgPool3x3(x); ``laplacian`` = learnable depthwise 3x3 conv
    initialised to the same high-pass kernel. RECONSTRUCTION."""
    sasm_gate: str = "softmax"
    """SASM gate: ``softmax`` over the two inputs per pixel, or ``sigmoid`` g*L + (1-g)*G. RECONSTRUCTION."""
    dca_key_channels: int = 32
    """Key/query/value channels of the DCA attention (OCR uses 256). RECONSTRUCTION."""
    dropout: float = 0.1
    """Dropout before the 1x1 classifiers (main and auxiliary)."""
    aux_weight: float = 0.4
    """Weight of the auxiliary (coarse) FCN head's cross-entropy (mmseg/DDRNet convention). RECONSTRUCTION."""
    sep_weight: float = 0.0
    """Weight of the optional pixel-to-centroid margin loss on the SASM feature (try 0.1). RECONSTRUCTION."""
    sep_margin: float = 0.5
    """Class means are pushed apart until their cosine similarity is at most this. RECONSTRUCTION."""
    dca_weight: float = 0.4
    """Total weight of DCA's region classification losses, (a) soft regions with an 'absent' class and (b)
    ground-truth regions, averaged (Region Rebalance's region loss). RECONSTRUCTION."""
    dca_label_smoothing: float = 0.0
    """Label smoothing of the region classification losses (Region Rebalance exposes one). RECONSTRUCTION."""
    ohem: bool = False
    """Online hard example mining for the main loss (mmseg OHEMPixelSampler; DDRNet used it on Cityscapes)."""
    ohem_thresh: float = 0.7
    """OHEM: keep pixels whose ground-truth probability is below this ..."""
    ohem_min_kept: int = 100000
    """... and at least this many of the hardest pixels per batch."""
    ignore_index: int = 255

    # ---- single-factor ablation switches (None = what ``pathway`` / ``sasm`` / ``dca`` imply) -------------------
    stem: bool | None = None
    """Conv stem of the local pathway (ViT-Adapter SpatialPriorModule to stride 8, or the pyramid's stride-2 conv)
    whose output starts the fusion stages. None: on when ``pathway`` is on."""
    low_level_skip: bool | None = None
    """Stride-4 feature (the stem's, or pyramid stage 1) into the final head. None: on whenever one exists."""
    aux_head: bool | None = None
    """Auxiliary FCN head on the fused stride-8 feature (deep supervision, ``aux_weight``). None: on with SASM or
    DCA; ``true`` gives the baseline the same deep supervision. DCA needs it (its coarse prediction)."""

    # ---- recognisable baselines (repsep.models.baselines: upernet_vit, setr_*, segmenter_*); others ignore them
    final_norm: bool = False
    """Baselines: LayerNorm after the last ViT block, applied to that block's tap only (mmseg ``final_norm``)."""
    with_cls_token: bool = True
    """Baselines: the class token goes through the blocks (mmseg ``with_cls_token``; SETR-MLA drops it after the
    position embedding)."""
    pos_interp: str = "bicubic"
    """Baselines: position-embedding resize mode, ``bicubic`` or ``bilinear`` (mmseg ``interpolate_mode``)."""
    neck_width: int | None = None
    """Baselines: MultiLevelNeck / MLANeck output channels (None: the ViT width)."""
    aux_width: int | None = None
    """Baselines: channels of the auxiliary heads (None: ``width``)."""
    mla_width: int = 128
    """SETR-MLA: channels of each of the four head branches (``width`` = 4 x this)."""
    decoder_layers: int = 2
    """Segmenter mask transformer: decoder blocks."""
    decoder_heads: int | None = None
    """Segmenter mask transformer: attention heads (None: width // 64)."""

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, list):
                value = tuple(value)
            object.__setattr__(self, f.name, _check_type(f.name, str(f.type), value))
        _check_vit_fields(self)
        try:
            check(self, MODEL_SPECS, MODEL_RULES, prefix="model.")
        except ValueError as e:
            raise UserError(str(e)) from None

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelConfig:
        """Rebuild from ``asdict`` output (e.g. read from YAML or a checkpoint); unknown keys are a UserError."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise UserError(f"model: unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return cls(**d)

    @property
    def is_pyramid(self) -> bool:
        return self.backbone.startswith("pvt_v2_")

    @property
    def has_stem(self) -> bool:
        return self.pathway if self.stem is None else self.stem

    @property
    def has_discrepancy(self) -> bool:
        return self.pathway and self.discrepancy != "none"

    @property
    def has_low_level_skip(self) -> bool:
        available = self.has_stem or self.is_pyramid
        return available if self.low_level_skip is None else self.low_level_skip

    @property
    def has_aux_head(self) -> bool:
        return (self.sasm or self.dca) if self.aux_head is None else self.aux_head

    @property
    def aux_modules(self) -> tuple[str, ...]:
        """Names of the training-only modules, which ``Segmentor.deploy()`` removes.

        The FCN head is auxiliary unless DCA uses it as its coarse prediction at inference.
        """
        if self.name in BASELINE_AUX:
            return BASELINE_AUX[self.name]
        names = []
        if self.has_aux_head and not self.dca:
            names.append("aux_head")
        if self.dca:
            names.append("region_classifier")
        return tuple(names)


# ---- validation: ranges and cross-field rules of every field, in one place (types: the annotations) ----------

_VIT_ONLY = ("img_size", "patch_size", "depth", "embed_dim", "num_heads", "taps")
_WIDTH = Spec(ge=1, le=16384)
_WEIGHT = Spec(ge=0, le=100)
MODEL_SPECS = {
    "num_classes": Spec(ge=1, le=255),  # 8-bit label maps, 255 = ignore
    "img_size": Spec(ge=1, le=MAX_PIXELS), "patch_size": Spec(ge=1, le=128), "depth": Spec(ge=1, le=256),
    "embed_dim": _WIDTH, "num_heads": Spec(ge=1, le=1024), "stage_depths": Spec(ge=1, le=256, max_len=4),
    "drop_path": Spec(ge=0, lt=1), "taps": Spec(ge=1, increasing=True),
    "width": _WIDTH, "stem_width": _WIDTH, "low_level_width": _WIDTH, "dca_key_channels": _WIDTH,
    "blocks_per_stage": Spec(ge=1, le=64),
    "discrepancy": Spec(choices=DISCREPANCY_MODES), "sasm_gate": Spec(choices=GATE_MODES),
    "dropout": Spec(ge=0, lt=1), "aux_weight": _WEIGHT, "sep_weight": _WEIGHT, "sep_margin": Spec(ge=-1, le=1),
    "dca_weight": _WEIGHT, "dca_label_smoothing": Spec(ge=0, lt=1), "ohem_thresh": Spec(gt=0, le=1),
    "ohem_min_kept": Spec(ge=1, le=2**31 - 1), "ignore_index": Spec(ge=0, le=255),
    "pos_interp": Spec(choices=("bicubic", "bilinear")), "neck_width": _WIDTH, "aux_width": _WIDTH,
    "mla_width": _WIDTH, "decoder_layers": Spec(ge=1, le=64), "decoder_heads": Spec(ge=1, le=1024),
}
MODEL_RULES = (
    Rule("backbone", lambda c: c.backbone.startswith(("vit_", "deit_", "pvt_v2_")),
         "expected a timm plain ViT (vit_*, deit_*) or pyramid ViT (pvt_v2_*) name"),
    Rule("taps", lambda c: not c.taps or c.depth is None or c.taps[-1] <= c.depth, "must not exceed depth"),
    Rule("embed_dim", lambda c: c.embed_dim is None or c.num_heads is None or c.embed_dim % c.num_heads == 0,
         "must be a multiple of num_heads"),
    Rule("stage_depths", lambda c: len(c.stage_depths) in (0, 4), "needs 4 values, one per pyramid stage"),
    Rule("low_level_skip", lambda c: not c.low_level_skip or c.has_stem or c.is_pyramid,
         "needs a stride-4 feature: the conv stem (stem: true) or a pyramid backbone"),
    Rule("aux_head", lambda c: c.aux_head is not False or not c.dca, "DCA needs the auxiliary head (its coarse "
         "prediction gives the soft regions)"),
    Rule("ignore_index", lambda c: c.ignore_index >= c.num_classes,
         "must not be a class index (at least num_classes); labels use 255"),
)


def _check_vit_fields(cfg: ModelConfig) -> None:
    """ViT-only and pyramid-only fields (one message naming them all)."""
    if cfg.is_pyramid and any(getattr(cfg, n) not in (None, ()) for n in _VIT_ONLY):
        set_here = [n for n in _VIT_ONLY if getattr(cfg, n) not in (None, ())]
        raise UserError(f"model: {', '.join(set_here)} apply to plain ViTs only, not {cfg.backbone} "
                        "(use stage_depths)")
    if cfg.stage_depths and not cfg.is_pyramid:
        raise UserError(f"model.stage_depths: applies to pyramid ViTs only, not {cfg.backbone}")


def _check_type(name: str, annotation: str, value: Any) -> Any:
    """Check ``value`` against the simple annotations used above; ints are accepted for floats."""
    options = {a.strip() for a in annotation.split("|")}
    ints = isinstance(value, tuple) and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    ok = {
        "None": value is None,
        "bool": isinstance(value, bool),
        "int": isinstance(value, int) and not isinstance(value, bool),
        "float": isinstance(value, (int, float)) and not isinstance(value, bool),
        "str": isinstance(value, str),
        "tuple[int, ...]": ints,
        "tuple[int, int]": ints and len(value) == 2,
    }
    matched = [o for o in options if ok.get(o)]
    if not matched:
        raise UserError(f"model.{name}: expected {annotation}, got {value!r}")
    return float(value) if matched == ["float"] else value
