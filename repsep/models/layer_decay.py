"""What the optimiser needs of every segmenter: layer ids for layer-wise lr decay and the no-decay parameter names."""

from __future__ import annotations

from torch import nn


class LayerDecayMixin(nn.Module):
    """For modules with a ``backbone`` attribute (a ViT wrapper with ``num_layers``, ``layer_id`` and
    ``no_weight_decay``, its timm model under ``backbone.model``). ``NO_DECAY_EXTRA`` names more parameters to
    exempt from weight decay (e.g. Segmenter's class embeddings)."""

    NO_DECAY_EXTRA: frozenset[str] = frozenset()

    @property
    def num_layers(self) -> int:
        """Transformer blocks of the backbone (L); :meth:`layer_id` returns 0..L+1."""
        return self.backbone.num_layers

    def layer_id(self, param_name: str) -> int:
        """Layer for layer-wise lr decay (mmseg ``get_layer_id_for_vit``): 0 = embeddings, 1..L = blocks,
        L+1 = everything after the backbone."""
        prefix = "backbone.model."
        if param_name.startswith(prefix):
            return self.backbone.layer_id(param_name[len(prefix):])
        return self.num_layers + 1

    def no_weight_decay(self) -> set[str]:
        """Parameter names exempt from weight decay: the backbone's tokens / position embedding (timm
        ``no_weight_decay``), every bias and norm parameter (ndim <= 1, as mmseg's layer-decay constructor) and
        ``NO_DECAY_EXTRA``."""
        tokens = {f"backbone.model.{n}" for n in self.backbone.no_weight_decay()}
        names = {n for n, p in self.named_parameters() if p.ndim <= 1}
        return names | {n for n, _ in self.named_parameters() if n in tokens} | set(self.NO_DECAY_EXTRA)
