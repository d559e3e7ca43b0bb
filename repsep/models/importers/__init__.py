"""Models from elsewhere, converted into this project's one export format (``repsep/engine/checkpoint.py``).

:mod:`.mmseg`: mmsegmentation 1.x checkpoints of the ViT segmenters in :mod:`repsep.models.baselines`.
"""
