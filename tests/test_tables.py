"""Table writers: exact Markdown, CSV and LaTeX (booktabs) output for small tables."""

from __future__ import annotations

import pytest

from analysis.tables import Column, Table, format_value, latex_escape, to_csv, to_latex, to_markdown

TABLE = Table("robustness", "Robustness 100%", (
    Column("model"), Column("clean", ".1f"), Column("gaussian_noise", ".1f", "noise"),
    Column("shot_noise", ".1f", "noise"), Column("fog", ".1f", "weather"), Column("Δ", "+.2f")), (
    ("vit_b", 80.04, 50.25, None, 70.0, 0.5),
    ("rsseg", 81.0, float("nan"), 52.0, 71.123456789, -1.0),
), note="A note.")


def test_markdown_is_exact():
    assert to_markdown(TABLE) == (
        "### Robustness 100%\n\n"
        "Column groups: **noise**: gaussian_noise, shot_noise; **weather**: fog\n\n"
        "| model | clean | gaussian_noise | shot_noise | fog | Δ |\n"
        "|:---|---:|---:|---:|---:|---:|\n"
        "| vit_b | 80.0 | 50.2 | – | 70.0 | +0.50 |\n"
        "| rsseg | 81.0 | – | 52.0 | 71.1 | -1.00 |\n\n"
        "A note.\n")


def test_csv_keeps_full_precision_and_leaves_missing_empty():
    assert to_csv(TABLE) == (
        "model,clean,noise/gaussian_noise,noise/shot_noise,weather/fog,Δ\n"
        "vit_b,80.04,50.25,,70.0,0.5\n"
        "rsseg,81.0,,52.0,71.123456789,-1.0\n")


def test_latex_booktabs_with_spanned_groups_and_escapes():
    assert to_latex(TABLE) == (
        "% Robustness 100\\%\n"
        "\\begin{tabular}{lrrrrr}\n"
        "\\toprule\n"
        " &  & \\multicolumn{2}{c}{noise} & \\multicolumn{1}{c}{weather} &  \\\\\n"
        "\\cmidrule(lr){3-4} \\cmidrule(lr){5-5}\n"
        "model & clean & gaussian\\_noise & shot\\_noise & fog & $\\Delta$ \\\\\n"
        "\\midrule\n"
        "vit\\_b & 80.0 & 50.2 & -- & 70.0 & +0.50 \\\\\n"
        "rsseg & 81.0 & -- & 52.0 & 71.1 & -1.00 \\\\\n"
        "\\bottomrule\n"
        "\\end{tabular}\n")


def test_ungrouped_latex_has_no_group_row():
    table = Table("t", "T", (Column("a"), Column("b", ".0f")), (("x", 1.0),))
    assert to_latex(table).splitlines()[2:5] == ["\\toprule", "a & b \\\\", "\\midrule"]


def test_format_value_and_escape():
    assert format_value(None) == format_value(float("nan")) == "–"
    assert format_value(3, ".1f") == "3.0" and format_value("x", ".1f") == "x"
    assert latex_escape("a_b & 5% #1 {x}") == "a\\_b \\& 5\\% \\#1 \\{x\\}"


def test_row_of_wrong_length_is_rejected():
    with pytest.raises(ValueError, match="2 values for 3 columns"):
        Table("t", "T", (Column("a"), Column("b"), Column("c")), (("x", 1),))


def test_undefined_is_a_word_in_a_numeric_column():
    from analysis.tables import UNDEFINED

    table = Table("t", "T", (Column("model"), Column("mIoU", ".1f")), (("a", 50.0), ("b", UNDEFINED)))
    assert to_markdown(table).splitlines()[3:6] == ["|:---|---:|", "| a | 50.0 |", "| b | undefined |"]
    assert to_csv(table) == "model,mIoU\na,50.0\nb,undefined\n"
    assert "b & undefined" in to_latex(table) and "{lr}" in to_latex(table)
