"""scripts/compare_reports.py prints every number that differs between two report folders."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "compare_reports.py"
spec = importlib.util.spec_from_file_location("compare_reports", SCRIPT)
compare = importlib.util.module_from_spec(spec)
spec.loader.exec_module(compare)


def _report(folder: Path, miou: float, cell: str) -> Path:
    (folder / "tables").mkdir(parents=True)
    (folder / "report.json").write_text(json.dumps({"tables": {"main": {"rows": [["rsseg", miou]]}}, "seed": 0}))
    (folder / "tables" / "main.csv").write_text(f"model,mIoU\nbaseline,34.67\nrsseg,{cell}\n")
    return folder


def test_identical_reports_match(tmp_path, capsys):
    a, b = _report(tmp_path / "a", 50.25, "50.25"), _report(tmp_path / "b", 50.25, "50.25")
    assert compare.main([str(a), str(b)]) == 0
    assert "0 of " in capsys.readouterr().out


def test_every_differing_number_is_printed(tmp_path, capsys):
    a, b = _report(tmp_path / "a", 50.25, "50.25"), _report(tmp_path / "b", 49.78, "49.78")
    assert compare.main([str(a), str(b)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert "report.json: tables.main.rows[0][1]: 50.25 -> 49.78  (diff -0.47)" in out
    assert "tables/main.csv: row 2 (rsseg) / mIoU: '50.25' -> '49.78'  (diff -0.47)" in out
    assert out[-1].startswith("2 of ")
    assert compare.main([str(a), str(b), "--tol", "0.5"]) == 0


def test_not_a_report_is_exit_2(tmp_path, capsys):
    assert compare.main([str(tmp_path), str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith("error: ")
