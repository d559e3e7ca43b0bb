"""`models import hf`: a transformers save_pretrained folder -> a project export equal to the library's own
forward + semantic post-processing (fp32, CPU, eval mode), with features for analyze."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

pytest.importorskip("transformers")

from cli_helpers import run_cli  # noqa: E402
from hf_fixtures import MEAN, STD, build, save_folder  # noqa: E402

from repsep.data.transforms import IMAGENET_MEAN, IMAGENET_STD  # noqa: E402
from repsep.engine.checkpoint import load_model  # noqa: E402

ARCHS = ("segformer", "beit", "dpt", "upernet_convnext", "upernet_swin", "mask2former", "maskformer", "oneformer")
PROCESSOR = {"segformer": "SegformerImageProcessor", "beit": "BeitImageProcessor", "dpt": "DPTImageProcessor",
             "upernet_convnext": "SegformerImageProcessor", "upernet_swin": "SegformerImageProcessor",
             "mask2former": "Mask2FormerImageProcessor", "maskformer": "MaskFormerImageProcessor",
             "oneformer": "OneFormerImageProcessor"}
TOL = 1e-5


def imported(arch: str, tmp_path, **kw):
    folder = save_folder(build(arch), tmp_path / arch, **kw)
    out = tmp_path / f"{arch}.pt"
    assert run_cli(["models", "import", "hf", str(folder), "--dataset", "cityscapes", "--out", str(out)]) == 0
    return folder, out


def batches(size=(64, 64)):
    raw = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (2, 3, *size)).astype(np.float32))
    ours = (raw - torch.tensor(IMAGENET_MEAN).view(3, 1, 1)) / torch.tensor(IMAGENET_STD).view(3, 1, 1)
    theirs = (raw / 255 - torch.tensor(MEAN).view(3, 1, 1)) / torch.tensor(STD).view(3, 1, 1)
    return ours, theirs


def library_scores(arch: str, folder, pixel_values, size) -> torch.Tensor:
    """The library's forward from the folder + its processor's post_process_semantic_segmentation scores."""
    import transformers as T

    model = getattr(T, build(arch).__class__.__name__).from_pretrained(folder).eval()
    kwargs = {}
    if arch == "oneformer":
        tok = T.CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"))
        proc = T.OneFormerProcessor(image_processor=T.OneFormerImageProcessor(), tokenizer=tok, task_seq_length=8)
        img = np.zeros((64, 64, 3), np.uint8)
        kwargs["task_inputs"] = proc(images=[img], task_inputs=["semantic"], return_tensors="pt")["task_inputs"] \
            .expand(pixel_values.shape[0], -1)
    if arch == "beit":
        kwargs["interpolate_pos_encoding"] = True
    if arch == "mask2former":  # its forward needs the hidden states when use_auxiliary_loss is off
        kwargs["output_hidden_states"] = True
    with torch.no_grad():
        outputs = model(pixel_values=pixel_values, **kwargs)
    post = getattr(T, PROCESSOR[arch])().post_process_semantic_segmentation(
        outputs, target_sizes=[size] * pixel_values.shape[0], return_segmentation_scores=True)
    return torch.stack([p["segmentation_scores"] for p in post])


@pytest.mark.parametrize("arch", ARCHS)
def test_imported_equals_library(arch, tmp_path):
    folder, out = imported(arch, tmp_path)
    loaded = load_model(out)
    saved = json.loads((folder / "config.json").read_text())["architectures"][0]
    assert loaded.class_table.name == "cityscapes" and loaded.model_config.architecture == saved
    ours, theirs = batches()
    with torch.no_grad():
        got = loaded.model(ours)
    want = library_scores(arch, folder, theirs, (64, 64))
    assert got.shape == (2, 19, 64, 64)
    diff = float((got - want).abs().max())
    print(f"{arch}: max |logit difference| {diff:.3g}")
    assert diff <= TOL
    feats = loaded.model.forward_features(ours)
    assert "decoder_input" in feats and all(f.dim() == 4 and f.shape[0] == 2 for f in feats.values())


def test_features_named_by_the_model(tmp_path):
    """BEiT: its 4 encoder layers as 4x4 maps (CLS dropped), named beit.encoder.layer.<i>; SegFormer: the 4
    stages; UperNet: the backbone's stage1..4; the auxiliary heads are not in the export."""
    from analysis.features import layer_strides

    _, out = imported("beit", tmp_path)
    beit = load_model(out)
    assert layer_strides(beit.model) == {**{f"beit.encoder.layer.{i}": 16 for i in range(4)}, "decoder_input": 4}
    assert not any(k.startswith("auxiliary_head") for k in torch.load(out, weights_only=True)["state_dict"])
    hidden = beit.model.run(beit.model.hf_inputs(torch.zeros(1, 3, 64, 64)), hidden=True).hidden_states
    feats = beit.model.forward_features(torch.zeros(1, 3, 64, 64))
    assert torch.equal(feats["beit.encoder.layer.3"][0, :, 1, 2], hidden[4][0, 1 + 1 * 4 + 2])
    _, out = imported("segformer", tmp_path)
    assert layer_strides(load_model(out).model) == {"segformer.encoder.block.0": 4, "segformer.encoder.block.1": 8,
                                                     "segformer.encoder.block.2": 16, "segformer.encoder.block.3": 32,
                                                     "decoder_input": 4}
    _, out = imported("upernet_convnext", tmp_path)
    assert list(layer_strides(load_model(out).model)) == ["backbone.stage1", "backbone.stage2", "backbone.stage3",
                                                          "backbone.stage4", "decoder_input"]


def test_other_input_size_and_default_normalisation(tmp_path):
    """Logits at any input size (BEiT interpolates its position bias); no preprocessor_config.json: the
    processor's defaults (BEiT: mean = std = 127.5)."""
    folder, out = imported("beit", tmp_path, preprocessor=False)
    loaded = load_model(out)
    assert loaded.source["mean"] == [127.5] * 3 and loaded.source["std"] == [127.5] * 3
    with torch.no_grad():
        assert loaded.model(torch.zeros(1, 3, 48, 80)).shape == (1, 19, 48, 80)


def test_label_map(tmp_path):
    """id2label with other names: refused (first differing label named), accepted with --map."""
    import json

    model = build("segformer")
    model.config.id2label = {**model.config.id2label, 0: "Street"}
    folder = save_folder(model, tmp_path / "renamed")
    out = tmp_path / "m.pt"
    assert run_cli(["models", "import", "hf", str(folder), "--out", str(out)]) == 2
    mapping = tmp_path / "map.json"
    mapping.write_text(json.dumps({"Street": "road"}))
    assert run_cli(["models", "import", "hf", str(folder), "--map", str(mapping), "--out", str(out)]) == 0
    assert load_model(out).source["label_map"] == {"Street": "road"}


def test_hf_layer_names_in_depth_order():
    """Imported models' own layer names sort by depth (not alphabetically) before decoder_input, on the backbone
    axis, 1-based like vit.block<i>."""
    from analysis.layers import layer_info, layer_sort_key

    names = ["decoder_input", "beit.encoder.layer.10", "beit.encoder.layer.2", "backbone.stage1"]
    assert sorted(names, key=layer_sort_key) == ["backbone.stage1", "beit.encoder.layer.2", "beit.encoder.layer.10",
                                                 "decoder_input"]
    assert layer_info("segformer.encoder.block.0", 4) == {"kind": "encoder_layer", "axis": "backbone", "index": 1,
                                                          "stride": 4}


def test_imported_models_stay_out_of_the_ablation_ladder():
    """An imported model is on no rung of the single-factor ladder: the report's ablation table does not call it
    the 'baseline' rung (its config has none of the ladder's switches), while the matched control is."""
    import dataclasses

    from analysis.report.tables_main import rung_of
    from repsep.models.importers.hf_load import HFModelConfig
    from repsep.models.registry import model_config

    cfg = HFModelConfig(name="hf_segformer", architecture="SegformerForSemanticSegmentation", backbone="hf:segformer",
                        num_classes=19)
    assert rung_of(dataclasses.asdict(cfg)) is None
    assert rung_of(dataclasses.asdict(model_config("baseline_vit", size="tiny"))) == "baseline"
