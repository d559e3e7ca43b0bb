"""mmsegmentation 1.x state-dict keys -> this project's keys (ViT backbone and the baseline heads).

mmseg's ``VisionTransformer`` layers map onto timm's blocks (``ln1``/``ln2`` -> ``norm1``/``norm2``,
``attn.attn.in_proj_*`` -> ``attn.qkv.*``, ``attn.attn.out_proj`` -> ``attn.proj``, ``ffn.layers.0.0`` /
``ffn.layers.1`` -> ``mlp.fc1`` / ``mlp.fc2``); ``ConvModule`` ``conv`` / ``bn`` become ``0`` / ``1``;
``conv_seg`` becomes ``cls.conv``; auxiliary heads go to ``aux_head.heads.<i>``.
"""

from __future__ import annotations

import re

_BLOCK = [
    (r"\.ln1\.", ".norm1."), (r"\.ln2\.", ".norm2."),
    (r"\.attn\.attn\.in_proj_weight$", ".attn.qkv.weight"), (r"\.attn\.attn\.in_proj_bias$", ".attn.qkv.bias"),
    (r"\.attn\.attn\.out_proj\.", ".attn.proj."),
    (r"\.ffn\.layers\.0\.0\.", ".mlp.fc1."), (r"\.ffn\.layers\.1\.", ".mlp.fc2."),
]


def _block(key: str) -> str:
    for pattern, repl in _BLOCK:
        key = re.sub(pattern, repl, key)
    return key


def backbone_key(key: str) -> str | None:
    """A key relative to mmseg's ``backbone.`` -> relative to the project's ``backbone.`` (None: no counterpart)."""
    if key in ("cls_token", "pos_embed"):
        return f"model.{key}"
    if key.startswith("patch_embed.projection."):
        return "model.patch_embed.proj." + key.split(".")[-1]
    if m := re.match(r"layers\.(\d+)\.(.*)$", key):
        return _block(f"model.blocks.{m.group(1)}.{m.group(2)}")
    if key.startswith("ln1."):
        return "final_ln." + key.split(".", 1)[1]
    return None


def _conv_module(key: str) -> str:
    key = re.sub(r"\.conv\.(weight|bias)$", r".0.\1", key)
    key = re.sub(r"\.bn\.", ".1.", key)
    return key.replace("conv_seg.", "cls.conv.")


def head_key(key: str, arch: str) -> str:
    """A neck / decode-head / auxiliary-head key (full mmseg name) -> the project's name."""
    if m := re.match(r"auxiliary_head\.(\d+)\.(.*)$", key):
        key = f"aux_head.heads.{m.group(1)}.{m.group(2)}"
    elif key.startswith("auxiliary_head."):
        key = "aux_head.heads.0." + key[len("auxiliary_head."):]
    if arch in ("setr_naive", "setr_pup"):
        key = re.sub(r"up_convs\.(\d+)\.0\.conv\.", r"up_convs.\1.0.", key)
        key = re.sub(r"up_convs\.(\d+)\.0\.bn\.", r"up_convs.\1.1.", key)
        key = re.sub(r"(decode_head|heads\.\d+)\.norm\.", r"\1.norm.norm.", key)
    if arch == "setr_mla":
        key = key.replace("neck.mla.", "neck.")
        key = re.sub(r"^neck\.norm\.(\d+)\.", r"neck.norm.\1.norm.", key)
    if arch == "segmenter_mask" and (m := re.match(r"decode_head\.layers\.(\d+)\.(.*)$", key)):
        return _block(f"decode_head.blocks.{m.group(1)}.{m.group(2)}")
    return _conv_module(key)


def convert_key(key: str, arch: str) -> str | None:
    """Full mmseg key -> full project key (None: the key has no counterpart)."""
    if key.startswith("backbone."):
        new = backbone_key(key[len("backbone."):])
        return None if new is None else "backbone." + new
    if key.startswith(("neck.", "decode_head.", "auxiliary_head.")):
        return head_key(key, arch)
    return None


def mmseg_backbone_to_timm(state: dict) -> tuple[dict, list[str]]:
    """An mmseg checkpoint's state dict (``backbone.`` prefix optional, mmseg ViT key names) -> timm ViT keys,
    and the keys dropped (heads, necks, the final ``ln1``, which timm calls ``norm``, is kept as ``norm``)."""
    import torch

    prefixed = any(k.startswith("backbone.") for k in state)
    out, dropped = {}, []
    for key, value in state.items():
        if prefixed and not key.startswith("backbone."):
            dropped.append(key)
            continue
        rel = key[len("backbone."):] if prefixed else key
        new = backbone_key(rel)
        if new is None:
            dropped.append(key)
        elif new.startswith("final_ln."):
            out["norm." + new.split(".", 1)[1]] = value
        else:
            out[new[len("model."):]] = value
    if "patch_embed.proj.weight" in out and "patch_embed.proj.bias" not in out:  # mmseg patch_bias=False
        out["patch_embed.proj.bias"] = torch.zeros(out["patch_embed.proj.weight"].shape[0])
    return out, dropped


def is_mmseg_vit(state: dict) -> bool:
    """Whether a state dict uses mmseg's ViT key names (``patch_embed.projection``, ``layers.N``)."""
    return any(k.endswith("patch_embed.projection.weight") for k in state)
