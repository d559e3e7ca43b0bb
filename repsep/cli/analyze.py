"""`repsep-bench analyze`: over-smoothness of the features, layer by layer."""

from __future__ import annotations

from pathlib import Path

import typer


def analyze_cmd(
    model: list[Path] = typer.Option(..., "--model", help="A model export (model_final.pt); repeat the option to "
                                     "compare models on the same images and token locations."),
    data: str | None = typer.Option(None, "--data", help="Dataset spec (default: the first model's)."),
    split: str = typer.Option("val", "--split", help="Dataset split; its first N images are used."),
    num_images: int = typer.Option(100, "--num-images", min=1, help="Images analysed (N)."),
    layers: str = typer.Option("all", "--layers", help="'all' or comma-separated feature names: vit.block{i}, "
                               "pathway.stage{k}, sasm, dca, decoder_input (a model lacking one skips it)."),
    tsne_layers: str = typer.Option("all", "--tsne-layers", help="'all' (every analysed layer) or a comma-separated "
                                    "subset that gets a t-SNE embedding and figure; t-SNE is the slow part."),
    purity: float = typer.Option(0.75, "--purity", help="A patch token is labelled with its majority class when "
                                 "that class covers at least this share of the patch (void never wins); 1.0 keeps "
                                 "interior patches only, lower values add boundary patches."),
    per_class: int = typer.Option(200, "--per-class", min=1, help="Tokens sampled per class and layer for "
                                  "separation, CKA and t-SNE (seeded, identical locations for every model)."),
    hf_cutoff: float = typer.Option(0.5, "--hf-cutoff", help="High-frequency ratio: spectral energy above this "
                                    "fraction of the Nyquist radius over total (0 = everything but the mean token)."),
    batch_size: int = typer.Option(8, "--batch-size", min=1, help="Images per forward pass."),
    seed: int = typer.Option(0, "--seed", help="Seed of token sampling, silhouette subsample and t-SNE."),
    out: Path = typer.Option(Path("analyze_out"), "--out", help="Output folder."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace the results in an --out that already holds "
                                   "a finished analysis (refused otherwise)."),
) -> None:
    """Over-smoothness of the features, layer by layer: pairwise cosine (all, same-class, different-class), rank
    collapse, high-frequency energy, class separation (intra/inter variance, silhouette), CKA, t-SNE, figures."""
    from analysis.run import analyze, parse_layers
    from analysis.tables import to_markdown

    tables = analyze(model, out, data=data, split=split, num_images=num_images, layers=parse_layers(layers),
                     tsne_layers=parse_layers(tsne_layers), purity=purity, per_class=per_class, seed=seed,
                     batch_size=batch_size, hf_cutoff=hf_cutoff, overwrite=overwrite)
    for table in tables:
        print(to_markdown(table))
    print(f"results: {out}/similarity.json|csv, separation.json|csv, cka.json, tsne/, figures/, summary.md")
