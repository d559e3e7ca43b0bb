"""Recognisable ViT segmenters on the project's timm ViT, structured as mmsegmentation 1.x builds them.

``upernet_vit`` (:mod:`.upernet`), ``setr_naive`` / ``setr_pup`` / ``setr_mla`` (:mod:`.setr`),
``segmenter_linear`` / ``segmenter_mask`` (:mod:`.segmenter`), all run by :class:`BaselineSegmentor` on
:class:`MMSegViT` (mmseg's ViT forward on timm's modules).
"""

from repsep.models.baselines.segmentor import BASELINES, BaselineSegmentor
from repsep.models.baselines.vit import MMSegViT

__all__ = ["BASELINES", "BaselineSegmentor", "MMSegViT"]
