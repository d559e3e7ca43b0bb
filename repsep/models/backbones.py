"""timm backbones by name (never downloaded) and loading their weights from a local file.

* :class:`ViTBackbone`: a plain ViT (``vit_*``); patch tokens of chosen blocks as ``[B, D, H/p, W/p]`` maps.
* :class:`PyramidBackbone`: a pyramid ViT (``pvt_v2_*``); its four stage maps at strides 4, 8, 16, 32.

Both pad inputs on the right/bottom to a multiple of ``size_divisor`` (zeros, i.e. the mean pixel after
normalisation) and return maps of the padded grid; :class:`repsep.models.Segmentor` crops its logits back.
Both keep timm's parameter names under ``.model`` so timm checkpoints load with :func:`load_pretrained`.
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import timm
import torch
import torch.nn.functional as F
from torch import nn

from repsep.errors import UserError

_HEAD_KEYS = re.compile(r"^(head|head_dist|fc_norm|attn_pool|pre_logits)\.|^norm\.")


def pad_to_multiple(x: torch.Tensor, multiple: int, value: float = 0.0) -> torch.Tensor:
    """Pad ``[..., H, W]`` on the right/bottom so that H and W are multiples of ``multiple``."""
    h, w = x.shape[-2:]
    ph, pw = -h % multiple, -w % multiple
    return F.pad(x, (0, pw, 0, ph), value=value) if ph or pw else x


def default_taps(depth: int) -> tuple[int, ...]:
    """The end of each quarter of depth (1-based): 12 -> (3, 6, 9, 12), 24 -> (6, 12, 18, 24), 4 -> (1, 2, 3, 4)."""
    if depth < 4:
        raise UserError(f"model.depth: need at least 4 blocks for 4 taps, got {depth}")
    return tuple(round(depth * q / 4) for q in range(1, 5))


def check_backbone_name(name: str) -> None:
    """UserError unless ``name`` is a timm ``vit_*`` or ``pvt_v2_*`` model."""
    if not (name.startswith(("vit_", "pvt_v2_", "deit_")) and "distilled" not in name and timm.is_model(name)):
        raise UserError(f"model.backbone: {name!r} is not a timm plain ViT (vit_*, deit_* without distillation "
                        "token) or pyramid ViT (pvt_v2_*); "
                        "e.g. vit_tiny_patch16_384, vit_small_patch16_384, vit_base_patch16_384, "
                        "vit_large_patch16_384, pvt_v2_b0, pvt_v2_b1, pvt_v2_b2")


class ViTBackbone(nn.Module):
    """A plain timm ViT returning patch-token maps at chosen blocks (no final norm, no class token).

    Blocks after the last tap are pruned (they would receive no gradient). The position embedding is resized to
    the input's grid on every call (``dynamic_img_size``), so any input size works.

    Args:
        name: timm model name, e.g. ``vit_large_patch16_384``.
        taps: 1-based block numbers whose outputs :meth:`forward` returns (empty: :func:`default_taps`).
        img_size, patch_size, depth, embed_dim, num_heads: overrides of the timm defaults (None keeps them).
        drop_path_rate: stochastic depth rate.
    """

    is_pyramid = False

    def __init__(
            self,
            name: str,
            taps: tuple[int, ...],
            *,
            img_size: int | tuple[int, int] | None = None,
            patch_size: int | None = None,
            depth: int | None = None,
            embed_dim: int | None = None,
            num_heads: int | None = None,
            drop_path_rate: float = 0.0,
    ) -> None:
        super().__init__()
        check_backbone_name(name)
        overrides = dict(img_size=img_size, patch_size=patch_size, depth=depth, embed_dim=embed_dim,
                         num_heads=num_heads)
        overrides = {k: v for k, v in overrides.items() if v is not None}
        self.model = timm.create_model(name, pretrained=False, num_classes=0, dynamic_img_size=True,
                                       drop_path_rate=drop_path_rate, **overrides)
        n = len(self.model.blocks)
        taps = tuple(taps) or default_taps(n)
        if max(taps) > n:
            raise UserError(f"model.taps: {list(taps)} must name blocks 1..{n} of {name}")
        self.model.prune_intermediate_layers([t - 1 for t in taps], prune_norm=True, prune_head=True)
        self.taps = taps
        self.embed_dim: int = self.model.embed_dim
        self.patch_size: int = self.model.patch_embed.patch_size[0]
        self.size_divisor = self.patch_size
        self.out_dims = [self.embed_dim] * len(taps)

    @property
    def num_layers(self) -> int:
        """Number of transformer blocks kept."""
        return len(self.model.blocks)

    def forward(self, x: torch.Tensor, all_blocks: bool = False) -> list[torch.Tensor]:
        """``[B, 3, H, W]`` -> maps ``[B, D, ceil(H/p), ceil(W/p)]`` of the taps, or of every block if asked."""
        indices = list(range(self.num_layers)) if all_blocks else [t - 1 for t in self.taps]
        return self.model.forward_intermediates(pad_to_multiple(x, self.size_divisor), indices=indices, norm=False,
                                                output_fmt="NCHW", intermediates_only=True)

    def layer_id(self, name: str) -> int:
        """0 for embeddings, i for block i (1-based); ``name`` is relative to :attr:`model`."""
        m = re.match(r"blocks\.(\d+)\.", name)
        return int(m.group(1)) + 1 if m else 0

    def no_weight_decay(self) -> set[str]:
        return set(self.model.no_weight_decay())


class PyramidBackbone(nn.Module):
    """A timm pyramid ViT (PVTv2) returning its four stage maps (the same maps as timm ``features_only``).

    Args:
        name: timm model name, e.g. ``pvt_v2_b2``.
        depths: blocks per stage (empty keeps the timm default).
        drop_path_rate: stochastic depth rate.
    """

    is_pyramid = True
    size_divisor = 32

    def __init__(self, name: str, depths: tuple[int, ...] = (), *, drop_path_rate: float = 0.0) -> None:
        super().__init__()
        check_backbone_name(name)
        extra = {"depths": tuple(depths)} if depths else {}
        if depths and len(depths) != 4:
            raise UserError(f"model.stage_depths: {name} has 4 stages, got {list(depths)}")
        self.model = timm.create_model(name, pretrained=False, num_classes=0, drop_path_rate=drop_path_rate,
                                       **extra)
        self.model.prune_intermediate_layers(4, prune_norm=True, prune_head=True)
        self.out_dims = [info["num_chs"] for info in self.model.feature_info]
        self.taps = (1, 2, 3, 4)
        self._stage_first = []  # global block number (0-based) of each stage's first block
        count = 0
        for stage in self.model.stages:
            self._stage_first.append(count)
            count += len(stage.blocks)
        self._num_layers = count

    @property
    def num_layers(self) -> int:
        """Number of transformer blocks over all stages."""
        return self._num_layers

    def forward(self, x: torch.Tensor, all_blocks: bool = False) -> list[torch.Tensor]:
        """``[B, 3, H, W]`` -> four maps ``[B, C_s, ceil(H/s), ceil(W/s)]``, s = 4, 8, 16, 32."""
        del all_blocks  # stage maps are the only intermediates of a pyramid backbone
        return self.model.forward_intermediates(pad_to_multiple(x, self.size_divisor), indices=4,
                                                intermediates_only=True)

    def layer_id(self, name: str) -> int:
        """0 for the patch embedding, then blocks numbered through the stages (1-based); downsampling layers
        count with their stage's first block, stage norms with its last."""
        m = re.match(r"stages\.(\d+)\.(blocks\.(\d+)|downsample|norm)", name)
        if not m:
            return 0
        s = int(m.group(1))
        if m.group(3) is not None:
            return self._stage_first[s] + int(m.group(3)) + 1
        if m.group(2) == "downsample":
            return self._stage_first[s] + 1
        return self._stage_first[s] + len(self.model.stages[s].blocks)

    def no_weight_decay(self) -> set[str]:
        return set()


Backbone = ViTBackbone | PyramidBackbone


def _looks_like_torch_file(path: Path) -> bool:
    """A torch zip archive (``PK``) or a pickle (protocol opcode 0x80): torch's refusal then means pickled objects;
    anything else is simply not a weight file."""
    try:
        with path.open("rb") as f:
            head = f.read(2)
    except OSError:
        return False
    return head == b"PK" or head[:1] == b"\x80"


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Tensors of a .pth/.pt/.bin (optionally wrapped in state_dict/model/module) or .safetensors file."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        if suffix not in (".pth", ".pt", ".bin"):
            raise UserError(f"{path}: unknown weight format (use .pth, .pt, .bin, .npz or .safetensors)")
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except UserError:
        raise
    except FileNotFoundError:
        raise UserError(f"{path}: file not found") from None
    except Exception as e:  # noqa: BLE001 - torch/safetensors raise many types for a foreign file
        text = str(e)
        if isinstance(e, pickle.UnpicklingError) and ("weights_only" in text or "Unsupported global" in text) \
                and _looks_like_torch_file(path):
            raise UserError(f"{path}: refused, the file contains Python objects/code beyond tensors and plain "
                            "values; it was not loaded") from None
        first = (text.strip().splitlines() or [""])[0][:200]
        raise UserError(f"{path}: cannot read weights ({type(e).__name__}: {first})") from None
    while isinstance(obj, dict) and any(k in obj for k in ("state_dict", "model", "module")):
        obj = next(obj[k] for k in ("state_dict", "model", "module") if k in obj)
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise UserError(f"{path}: not a state dict of tensors")
    if obj and all(k.startswith("module.") for k in obj):
        obj = {k[len("module."):]: v for k, v in obj.items()}
    return obj


def _keys_summary(keys: list[str], limit: int = 8) -> str:
    shown = ", ".join(keys[:limit])
    return f"[{shown}{', ...' if len(keys) > limit else ''}] ({len(keys)})"


def load_pretrained(backbone: Backbone, path: str | Path) -> None:
    """Load local weights into ``backbone`` (in place); no network.

    Accepts timm-style ``.pth``/``.pt``/``.bin`` (``torch.load(weights_only=True)``; ``state_dict``/``model``/
    ``module`` wrappers and a DDP ``module.`` prefix are unwrapped), ``.safetensors``, and big_vision ``.npz``
    (plain ViTs, via timm's loader). Classifier-head and final-norm keys and blocks pruned after the last tap are
    dropped; the position embedding is resampled to the model's grid (timm ``resample_abs_pos_embed``). A file
    that does not fit raises :class:`UserError` listing the missing/unexpected/mismatched keys.
    """
    path = Path(path)
    model = backbone.model
    name = type(model).__name__
    if path.suffix.lower() == ".npz":
        if backbone.is_pyramid:
            raise UserError(f"{path}: .npz weights are only supported for plain ViTs")
        from timm.models.vision_transformer import _load_weights

        try:
            _load_weights(model, str(path))
        except FileNotFoundError:
            raise UserError(f"{path}: file not found") from None
        except Exception as e:  # noqa: BLE001 - timm's npz loader raises KeyError/ValueError/RuntimeError
            raise UserError(f"{path}: does not fit {name} ({type(e).__name__}: {str(e)[:200]})") from None
        return
    state = _read_state_dict(path)
    source_dropped: list[str] = []
    if not backbone.is_pyramid:
        from repsep.models.importers.mmseg_keys import is_mmseg_vit, mmseg_backbone_to_timm

        if is_mmseg_vit(state):  # mmseg {"state_dict": {"backbone.…"}} or a bare mmseg ViT
            state, source_dropped = mmseg_backbone_to_timm(state)
        elif any(k.startswith("backbone.") for k in state):
            source_dropped = [k for k in state if not k.startswith("backbone.")]
            state = {k[len("backbone."):]: v for k, v in state.items() if k.startswith("backbone.")}
    old_pos = tuple(state["pos_embed"].shape) if "pos_embed" in state else None
    final_ln = getattr(backbone, "final_ln", None)  # baselines with mmseg's final_norm take the file's final norm
    if final_ln is not None and "norm.weight" in state and state["norm.weight"].shape == final_ln.weight.shape:
        final_ln.load_state_dict({"weight": state["norm.weight"], "bias": state["norm.bias"]})
    if backbone.is_pyramid:
        from timm.models.pvt_v2 import checkpoint_filter_fn
    else:
        from timm.models.vision_transformer import checkpoint_filter_fn
    state = checkpoint_filter_fn(state, model)
    expected = model.state_dict()
    kept_blocks = re.compile(r"^blocks\.(\d+)\.")
    dropped = {k for k in state if _HEAD_KEYS.match(k) and k not in expected}
    dropped |= {k for k in state if (m := kept_blocks.match(k)) and int(m.group(1)) >= backbone.num_layers
                and not backbone.is_pyramid}
    state = {k: v for k, v in state.items() if k not in dropped}
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    mismatched = sorted(f"{k} {tuple(v.shape)} vs {tuple(expected[k].shape)}" for k, v in state.items()
                        if k in expected and v.shape != expected[k].shape)
    if missing or unexpected or mismatched:
        parts = [f"missing keys {_keys_summary(missing)}" if missing else "",
                 f"unexpected keys {_keys_summary(unexpected)}" if unexpected else "",
                 f"shape mismatches {_keys_summary(mismatched)}" if mismatched else ""]
        raise UserError(f"{path}: does not fit backbone {name}: " + "; ".join(p for p in parts if p))
    model.load_state_dict(state, strict=True)
    print(pretrained_summary(path, state, sorted(dropped) + sorted(source_dropped), old_pos, model))


def pretrained_summary(path: Path, state: dict, dropped: list[str], old_pos: tuple | None, model: nn.Module) -> str:
    """One line: what a backbone load took (loaded / resized position grid / dropped / missing)."""
    resized = ""
    new_pos = tuple(model.pos_embed.shape) if hasattr(model, "pos_embed") else None
    if old_pos and new_pos and old_pos != new_pos:
        prefix = getattr(model, "num_prefix_tokens", 1)
        old_n, new_n = old_pos[1] - prefix, new_pos[1] - prefix
        grid = tuple(getattr(model.patch_embed, "grid_size", ()))
        old = f"{int(old_n ** 0.5)}x{int(old_n ** 0.5)}" if int(old_n ** 0.5) ** 2 == old_n else f"{old_n} tokens"
        resized = f"; resized pos_embed {old} -> {'x'.join(map(str, grid)) or new_n}"
    shown = ", ".join(dropped[:4]) + (" ..." if len(dropped) > 4 else "")
    return (f"pretrained {path.name}: loaded {len(state)} tensors{resized}; dropped {len(dropped)}"
            f"{' (' + shown + ')' if dropped else ''}; missing 0")
