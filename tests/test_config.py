"""repsep.config: recipes load, round-trip through config.yaml, and bad keys/types/overrides name their source."""

from __future__ import annotations

import pytest

from repsep.config import DEFAULT_RECIPE, TrainConfig, list_recipes, load_config, save_config
from repsep.errors import UserError

RECIPES = ["synthcity_tiny_baseline", "synthcity_tiny_rsseg", "cityscapes_vit_b_baseline", "cityscapes_vit_b_rsseg",
           "cityscapes_vit_l_rsseg", "ade20k_vit_b_baseline", "ade20k_vit_b_rsseg", "ade20k_vit_l_rsseg",
           "cityscapes_pvt_v2_b2_rsseg"]
BASELINE_ARCHS = ("upernet_vit", "setr_naive", "setr_pup", "setr_mla", "segmenter_linear", "segmenter_mask")
RECIPES += [f"synthcity_tiny_{a}" for a in BASELINE_ARCHS]  # the recognisable baselines (issue 17)
RECIPES += [f"{d}_vit_{s}_{a}" for a in BASELINE_ARCHS for d in ("cityscapes", "ade20k") for s in ("b", "l")]
# RSSeg's other benchmarks (issue 20): the same set as ADE20K
RECIPES += [f"{d}_vit_{n}" for d in ("pascal_context59", "coco_stuff164k")
            for n in ("b_baseline", "b_rsseg", "l_rsseg", *(f"{s}_{a}" for a in BASELINE_ARCHS for s in ("b", "l")))]


def test_all_recipes_are_bundled_and_valid():
    assert sorted(RECIPES) == list_recipes()
    assert DEFAULT_RECIPE in RECIPES
    for name in RECIPES:
        assert isinstance(load_config(name), TrainConfig)


def test_tiny_recipes_are_cpu_sized_and_differ_only_in_the_model():
    base, rsseg = load_config("synthcity_tiny_baseline"), load_config("synthcity_tiny_rsseg")
    for cfg in (base, rsseg):
        assert (cfg.model.depth, cfg.model.embed_dim) == (4, 96)
        assert cfg.amp == "none" and cfg.data.spec == "synthcity"
    assert (base.model.pathway, base.model.sasm, base.model.dca) == (False, False, False)
    assert (rsseg.model.pathway, rsseg.model.sasm, rsseg.model.dca) == (True, True, True)
    assert base.optim == rsseg.optim and base.data == rsseg.data and base.schedule == rsseg.schedule


def test_real_recipes_follow_the_standard_recipe():
    cs, ade = load_config("cityscapes_vit_l_rsseg"), load_config("ade20k_vit_l_rsseg")
    assert cs.model.backbone == "vit_large_patch16_384" and cs.model.num_classes == 19
    assert (cs.data.crop, cs.schedule.iters, cs.eval.mode, cs.eval.stride) == ((768, 768), 80000, "slide", (512, 512))
    assert (ade.data.crop, ade.schedule.iters, ade.eval.stride, ade.model.num_classes) == ((640, 640), 160000,
                                                                                          (426, 426), 150)
    assert (cs.optim.lr, cs.optim.head_lr_mult, cs.optim.warmup_iters, cs.optim.power) == (2e-5, 10.0, 1500, 1.0)
    assert cs.pretrained.endswith("vit_large_patch16_384.pth")


def test_pascal_context_and_coco_stuff_recipes_follow_mmseg_dataset_configs():
    from repsep.data.tables import load_table

    for size in ("b", "l"):
        for arch in ("rsseg", *BASELINE_ARCHS):
            pc = load_config(f"pascal_context59_vit_{size}_{arch}")
            coco = load_config(f"coco_stuff164k_vit_{size}_{arch}")
            assert (pc.model.num_classes, pc.data.crop, pc.data.scale) == (59, (480, 480), (520, 520))
            assert (pc.eval.mode, pc.eval.crop, pc.eval.stride) == ("slide", (480, 480), (320, 320))
            assert (coco.model.num_classes, coco.data.crop, coco.eval.stride) == (171, (512, 512), (341, 341))
            for cfg in (pc, coco):
                assert (cfg.schedule.iters, cfg.data.batch_size) == (80000, 2)  # x 8 GPUs = batch 16
            assert pc.data.spec.startswith("pascal_context59:") and coco.data.spec.startswith("coco_stuff164k:")
            ade = load_config(f"ade20k_vit_{size}_{arch}")
            assert (pc.optim, pc.model.name, pc.model.backbone) == (ade.optim, ade.model.name, ade.model.backbone)
    assert load_table("pascal_context59").num_classes == 59 and load_table("coco_stuff171").num_classes == 171


@pytest.mark.parametrize("name", RECIPES)
def test_resolved_config_round_trips(tmp_path, name):
    cfg = load_config(name)
    save_config(cfg, tmp_path / "config.yaml")
    assert load_config(tmp_path / "config.yaml") == cfg
    save_config(load_config(tmp_path / "config.yaml"), tmp_path / "again.yaml")
    assert (tmp_path / "again.yaml").read_bytes() == (tmp_path / "config.yaml").read_bytes()


def write(tmp_path, text: str):
    path = tmp_path / "recipe.yaml"
    path.write_text("model: {name: rsseg_vit, size: tiny}\n" + text)
    return path


@pytest.mark.parametrize("text, key", [
    ("optim: {lrr: 0.1}\n", "unknown key 'optim.lrr'"),
    ("data: {batch_size: four}\n", "data.batch_size: expected int"),
    ("data: {batch_size: true}\n", "data.batch_size: expected int"),
    ("data: {crop: [64, 128, 3]}\n", "data.crop: expected list of 2 numbers"),
    ("amp: fp32\n", "amp: expected 'none' | 'bf16' | 'fp16'"),
    ("eval: {mode: slide}\n", "eval.crop/stride: slide mode needs both"),
    ("schedule: {iters: 0}\n", "schedule.iters: must be in [1, 1000000000], got 0"),
    ("optim: 3\n", "optim: expected mapping"),
    ("colour: red\n", "unknown key 'colour'"),
])
def test_bad_values_name_file_and_dotted_key(tmp_path, text, key):
    path = write(tmp_path, text)
    with pytest.raises(UserError) as e:
        load_config(path)
    assert str(e.value).startswith(f"{path}: ")
    assert key in str(e.value)


def test_bad_model_section(tmp_path):
    for text, key in [("model: {name: rsseg_vit, depht: 3}\n", "unknown key 'model.depht'"),
                      ("model: {name: rsseg_vit, depth: 2.5}\n", "model.depth: expected int | null"),
                      ("model: {name: unet}\n", "model.name: expected one of"),
                      ("data: {}\n", "missing key 'model'")]:
        path = tmp_path / "m.yaml"
        path.write_text(text)
        with pytest.raises(UserError, match=key):
            load_config(path)


def test_invalid_yaml_and_missing_recipe(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("model: {name: rsseg_vit\n  x: [\n")
    with pytest.raises(UserError, match="not valid YAML"):
        load_config(path)
    with pytest.raises(UserError, match="config file not found .*synthcity_tiny_rsseg"):
        load_config("no_such_recipe")


def test_overrides_are_yaml_parsed_and_validated(tmp_path):
    cfg = load_config("synthcity_tiny_rsseg", ["optim.lr=1e-4", "data.crop=[64, 128]", "model.depth=2",
                                               "eval.scales=[0.5, 1]", "optim.clip_grad=null", "seed=7"])
    assert cfg.optim.lr == 1e-4 and isinstance(cfg.optim.lr, float)
    assert cfg.data.crop == (64, 128) and cfg.model.depth == 2 and cfg.seed == 7
    assert cfg.eval.scales == (0.5, 1.0) and cfg.optim.clip_grad is None
    for item, match in [("optim.lrr=1", r"--set optim.lrr=1: unknown key 'optim.lrr'"),
                        ("model.depth=six", r"--set model.depth=six: model.depth: expected"),
                        ("seed.x=1", r"--set seed.x=1: 'seed' is not a section"),
                        ("nonsense", r"--set nonsense: expected KEY=VALUE")]:
        with pytest.raises(UserError, match=match):
            load_config("synthcity_tiny_rsseg", [item])


def test_every_numeric_field_has_declared_bounds():
    """A new int/float config field must come with its range in the schema (repsep.schema.Spec)."""
    import dataclasses

    from repsep import config
    from repsep.models import ModelConfig
    from repsep.models.config import MODEL_SPECS

    tables = [(config.DataConfig, config.DATA_SPECS), (config.OptimConfig, config.OPTIM_SPECS),
              (config.ScheduleConfig, config.SCHEDULE_SPECS), (config.EvalConfig, config.EVAL_SPECS),
              (config.TrainConfig, config.TRAIN_SPECS), (ModelConfig, MODEL_SPECS)]
    for cls, specs in tables:
        numeric = [f.name for f in dataclasses.fields(cls) if any(t in str(f.type) for t in ("int", "float"))]
        assert numeric and [n for n in numeric if n not in specs] == [], cls.__name__
        assert set(specs) <= {f.name for f in dataclasses.fields(cls)}, cls.__name__


@pytest.mark.parametrize("item, fragment", [
    ("optim.lr=.nan", "optim.lr: must be a finite number, got nan"),
    ("optim.betas=[0.9, 1]", "optim.betas: must be in [0, 1), got [0.9, 1.0]"),
    ("data.crop=[1, 1]", "data.crop: must be in [64, 16384], got [1, 1]"),
    ("seed=-1", "seed: must be in [0, 4294967295], got -1"),
    ("model.ignore_index=256", "model.ignore_index: must be in [0, 255], got 256"),
    ("model.taps=[3, 1]", "model.taps: must be strictly increasing, got [3, 1]"),
    ("model.name=[]", "model.name: expected one of"),
    ("data.spec=\"a\\nb\"", "data.spec: must not contain control characters"),
])
def test_schema_errors_name_the_set_item_and_key(item, fragment):
    with pytest.raises(UserError) as e:
        load_config("synthcity_tiny_rsseg", [item])
    assert str(e.value).startswith(f"--set {item}: ") and fragment in str(e.value)
    assert "\n" not in str(e.value)


def test_overrides_with_newlines_are_named_escaped():
    with pytest.raises(UserError, match=r"^--set 'optim.lr=1\\n2': "):
        load_config("synthcity_tiny_rsseg", ["optim.lr=1\n2"])
