"""`repsep-bench analyze`: over-smoothness of the features, layer by layer."""

from __future__ import annotations

from pathlib import Path

import typer

from repsep.cli.options import PRECISION_HELP


def analyze_cmd(
    model: list[Path] = typer.Option(..., "--model", help="A model export (model_final.pt); repeat the option to "
                                     "compare models on the same images and token locations."),
    data: str | None = typer.Option(None, "--data", help="Dataset spec (default: the first model's)."),
    split: str = typer.Option("val", "--split", help="Dataset split."),
    num_images: int = typer.Option(100, "--num-images", help="Images analysed (N): a seeded subset spread over "
                                   "the split's cities / scenes in proportion (all of them when N is larger, said "
                                   "in one line)."),
    subset_seed: int = typer.Option(0, "--subset-seed", help="Seed of the --num-images subset."),
    regime: str | None = typer.Option(None, "--regime", help="slide: features from the evaluation's sliding "
                                      "windows at the training crop (each token from one window); whole: one pass "
                                      "per image. Default: the first model's recipe eval mode."),
    crop: str | None = typer.Option(None, "--crop", help="Slide window HEIGHTxWIDTH (default: the run's eval "
                                    "crop, else its training crop)."),
    stride: str | None = typer.Option(None, "--stride", help="Slide stride HEIGHTxWIDTH (default: the run's, "
                                      "else 2/3 of the crop)."),
    layers: str = typer.Option("all", "--layers", help="'all' or comma-separated feature names: vit.block{i}, "
                               "pathway.stage{k}, sasm, dca, decoder_input (a model lacking one skips it)."),
    tsne_layers: str = typer.Option("all", "--tsne-layers", help="'all' (every analysed layer) or a comma-separated "
                                    "subset that gets a t-SNE embedding and figure; t-SNE is the slow part."),
    purity: float = typer.Option(0.75, "--purity", help="A patch token is labelled with its majority class when "
                                 "that class covers at least this share of the pixels the token covers (void and "
                                 "padding never win). Boundary tokens are also reported on their own, without it."),
    per_class: int = typer.Option(200, "--per-class", help="Tokens sampled per class and layer for "
                                  "separation, CKA and t-SNE (seeded, identical locations for every model)."),
    hf_cutoff: float = typer.Option(0.5, "--hf-cutoff", help="High-frequency ratio: spectral energy above this "
                                    "fraction of the Nyquist radius over total (0 = everything but the mean token)."),
    batch_size: int = typer.Option(8, "--batch-size", help="Images per forward pass."),
    seed: int = typer.Option(0, "--seed", help="Seed of token sampling, silhouette subsample and t-SNE."),
    precision: str | None = typer.Option(None, "--precision", help=PRECISION_HELP),
    device: str | None = typer.Option(None, "--device", help="cpu, cuda, cuda:1 ... (default: cuda when "
                                      "available, else cpu)."),
    out: Path | None = typer.Option(None, "--out", help="Output folder (default: analyze/ beside the first "
                                    "model); only an analyze result of its own is ever replaced."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace the analyze result in --out (built beside "
                                   "it and swapped in only when the new one is complete)."),
) -> None:
    """Over-smoothness of the features, layer by layer: pairwise cosine (all, same-class, different-class, interior
    and boundary tokens), rank collapse, high-frequency energy, class separation (intra/inter variance,
    silhouette), CKA, t-SNE, figures."""
    from analysis.run import analyze, default_out, parse_layers
    from analysis.tables import to_markdown
    from repsep.cli.options import parse_size

    if device is None:
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    tables = analyze(model, out, data=data, split=split, num_images=num_images, subset_seed=subset_seed,
                     regime=regime, crop=parse_size(crop, "--crop") if crop else None,
                     stride=parse_size(stride, "--stride") if stride else None, layers=parse_layers(layers),
                     tsne_layers=parse_layers(tsne_layers),
                     purity=purity, per_class=per_class, seed=seed, batch_size=batch_size, hf_cutoff=hf_cutoff,
                     device=device, overwrite=overwrite, precision=precision)
    for table in tables:
        print(to_markdown(table))
    where = out if out is not None else default_out(model)
    print(f"results: {where}/summary.json, similarity.json|csv, separation.json|csv, cka.json, tsne/, figures/, "
          "summary.md")
