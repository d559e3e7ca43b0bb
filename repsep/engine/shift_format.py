"""How a ``shift`` result looks: the ``shift.json`` dict, its CSV and Markdown tables, the combined per-image file."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from repsep.ownership import OwnedFolder


def _finite(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def ratio(value: Any, clean: Any) -> float | None:
    """100 * value / clean (percent of the clean mIoU); None when either is undefined or clean is 0."""
    v, c = _finite(value), _finite(clean)
    return None if v is None or not c else 100.0 * v / c


def shift_result(results: list[tuple[Any, dict, dict]], groups: dict[str, tuple[dict, np.ndarray]], *,
                 model_path, model_name: str, model_sha: str, split: str) -> dict[str, Any]:
    """The ``shift.json`` dict from ``[(entry, metrics.json dict, arrays), ...]`` (the clean entry first).

    ``mean`` is the plain mean of the ``--data`` entries' mIoU (None if one is undefined), ``ratio`` and
    ``mean_ratio`` are percent of the clean mIoU."""
    clean = results[0][1].get("mIoU")

    def record(entry, metrics: dict) -> dict[str, Any]:
        rec = {"name": entry.name, "dataset": entry.spec, "split": entry.settings["split"], "folder": entry.name,
               "mIoU": metrics.get("mIoU"), "aAcc": metrics.get("aAcc"), "mAcc": metrics.get("mAcc"),
               "num_images": int(metrics.get("num_images", len(entry.indices))),
               "ratio": ratio(metrics.get("mIoU"), clean), "settings": entry.settings}
        if groups:
            rec["groups"] = groups[entry.name][0]
        return rec

    entries = [record(e, m) for e, m, _ in results[1:]]
    values = [_finite(x["mIoU"]) for x in entries]
    mean = float(np.mean(values)) if values and None not in values else None
    return {"model": str(model_path), "model_name": model_name, "model_sha256": model_sha, "split": split,
            "clean": record(results[0][0], results[0][1]), "entries": entries, "mean": mean,
            "mean_ratio": ratio(mean, clean), "by_group": bool(groups), "settings": results[0][0].settings}


def _fmt(value: Any, spec: str = ".2f") -> str:
    v = _finite(value)
    return "–" if v is None else format(v, spec)


def _csv(value: Any) -> str:
    v = _finite(value)
    return "" if v is None else repr(v)


def table_rows(result: dict[str, Any]) -> list[tuple[str, str, str, str, int | None, Any, Any]]:
    """(name, group, dataset spec, split, images, mIoU, % of clean) rows: clean, each entry (with its groups
    after it when recorded), then the mean."""
    rows = []
    for rec in (result["clean"], *result["entries"]):
        rows.append((rec["name"], "", rec["dataset"], rec["split"], rec["num_images"], rec["mIoU"],
                     100.0 if rec is result["clean"] and _finite(rec["mIoU"]) else rec["ratio"]))
        for g, v in (rec.get("groups") or {}).items():
            rows.append((rec["name"], g, rec["dataset"], rec["split"], v["num_images"], v["mIoU"], v["ratio"]))
    rows.append(("mean", "", f"{len(result['entries'])} datasets", result["split"], None, result["mean"],
                 result["mean_ratio"]))
    return rows


def shift_csv(result: dict[str, Any]) -> str:
    lines = ["name,group,dataset,split,num_images,mIoU,pct_of_clean"]
    for name, group, spec, split, n, miou, pct in table_rows(result):
        spec = f'"{spec}"' if "," in spec or '"' in spec else spec
        lines.append(f"{name},{group},{spec},{split},{'' if n is None else n},{_csv(miou)},{_csv(pct)}")
    return "\n".join(lines) + "\n"


def shift_table(result: dict[str, Any]) -> str:
    """Markdown: a summary line and one row per dataset entry (groups indented), the mean last."""
    inf = result["settings"]["inference"]
    how = inf["mode"] + (f", scales {inf['scales']}" if inf["scales"] != [1.0] else "") + (
        ", flip" if inf["flip"] else "")
    lines = [f"**natural shift** | model {result['model_name']} | clean mIoU {_fmt(result['clean']['mIoU'])} | "
             f"mean over {len(result['entries'])} datasets {_fmt(result['mean'])} "
             f"({_fmt(result['mean_ratio'], '.1f')}% of clean) | {how}", "",
             "| dataset | spec | images | mIoU | % of clean |", "|:---|:---|---:|---:|---:|"]
    for name, group, spec, _split, n, miou, pct in table_rows(result):
        label = f"&nbsp;&nbsp;{name} / {group}" if group else (f"**{name}**" if name == "mean" else name)
        lines.append(f"| {label} | {spec} | {'' if n is None else n} | {_fmt(miou)} | {_fmt(pct, '.1f')} |")
    return "\n".join(lines) + "\n"


def per_image_arrays(results: list[tuple[Any, dict, dict]], groups: dict[str, tuple[dict, np.ndarray]]
                     ) -> dict[str, np.ndarray]:
    """``<entry>/ids`` and ``<entry>/{intersect,union,pred_area,label_area}`` (the eval arrays, sorted by id) and,
    with groups, ``<entry>/groups`` (str [N], the ``group_of`` stratum of each image)."""
    out = {}
    for entry, _, arrays in results:
        for key, value in arrays.items():
            out[f"{entry.name}/{key}"] = value
        if entry.name in groups:
            out[f"{entry.name}/groups"] = groups[entry.name][1]
    return out


def write_shift(folder: OwnedFolder, result: dict[str, Any], results: list[tuple[Any, dict, dict]],
                groups: dict[str, tuple[dict, np.ndarray]], *, inputs: dict[str, Any]) -> None:
    """Write shift.json, shift.csv, shift.md, per_image.npz and manifest.json into ``folder`` (recorded)."""
    from repsep.engine.eval_store import write_owned
    from repsep.io import dumps_json, npz_bytes
    from repsep.manifest import build_manifest

    clean = result["settings"]
    config = {"split": result["split"], "inference": clean["inference"], "subset_seed": clean["subset_seed"],
              "by_group": result["by_group"],
              "entries": {r["name"]: r["dataset"] for r in (result["clean"], *result["entries"])}}
    manifest = build_manifest("shift", config=config, inputs=inputs)
    manifest["settings"] = clean
    write_owned(folder, "shift.json", dumps_json(result).encode())
    write_owned(folder, "shift.csv", shift_csv(result).encode())
    write_owned(folder, "shift.md", shift_table(result).encode())
    write_owned(folder, "per_image.npz", npz_bytes(per_image_arrays(results, groups)))
    write_owned(folder, "manifest.json", dumps_json(manifest).encode())
