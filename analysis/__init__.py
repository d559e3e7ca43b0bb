"""Over-smoothness analysis: feature extraction, similarity, class separation, t-SNE, tables and figures."""
