"""repsep-bench: baseline ViT vs RSSeg segmenters, corruption robustness and over-smoothness analysis."""

__version__ = "0.1.0"
