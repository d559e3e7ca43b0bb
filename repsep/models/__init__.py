"""Segmenters: timm backbones + the baseline decoder or RSSeg (Hong et al., arXiv 2212.13764, reconstructed).

``model_config(name, **overrides) -> ModelConfig`` picks a named factory (``MODELS``); ``build_model(cfg)``
builds the :class:`Segmentor`; ``load_pretrained(model.backbone, path)`` loads local backbone weights.
"""

from repsep.models.backbones import load_pretrained
from repsep.models.config import ModelConfig
from repsep.models.registry import MODELS, SIZES, model_config
from repsep.models.segmentor import Segmentor, build_model

__all__ = ["MODELS", "SIZES", "ModelConfig", "Segmentor", "build_model", "load_pretrained", "model_config"]
