"""Issue 18 item 4: the report is a package of small modules and the project has no import circle (static: every
import statement, also those inside functions, of analysis/, corruptions/ and repsep/)."""

from __future__ import annotations

import ast
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")

from analysis.figures import line_segments, plot_similarity_depth  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("analysis", "corruptions", "repsep")


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, modules: set[str]) -> set[str]:
    """Project modules ``path`` imports (``from pkg import sub`` counts as ``pkg.sub`` when that is a module)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name in modules}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            subs = {f"{node.module}.{a.name}" for a in node.names} & modules
            found |= subs or ({node.module} & modules)
    return found


def _graph() -> dict[str, set[str]]:
    files = {_module(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}
    return {m: _imports(p, set(files)) - {m} for m, p in files.items()}


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_circles():
    graph = _graph()
    assert "analysis.report" not in graph["analysis.run"]  # model naming lives in analysis.naming
    assert not graph["corruptions.backends.base"] & {"corruptions.backends.reference",
                                                     "corruptions.backends.torch_backend"}
    assert _circles(graph) == []


def test_report_is_a_package_of_small_modules():
    files = sorted((ROOT / "analysis" / "report").glob("*.py"))
    assert {"reader.py", "build.py", "writers.py", "figures.py"} <= {f.name for f in files}
    assert all(len(f.read_text().splitlines()) < 400 for f in files)
    from analysis.report import build_report  # the public entry point stays
    from corruptions.backends import get_backend

    assert callable(build_report) and get_backend("reference").name == "reference"


def test_circle_finder_finds_a_circle():
    assert _circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


LAYERS = ["vit.block1", "vit.block2", "vit.block3", "pathway.stage1", "pathway.stage2", "decoder_input"]


def test_depth_lines_never_cross_a_layer_the_model_lacks_or_join_two_families():
    assert line_segments(LAYERS, ["vit.block1", "vit.block2", "vit.block3", "decoder_input"]) == [[0, 1, 2], [5]]
    assert line_segments(LAYERS, LAYERS) == [[0, 1, 2], [3, 4], [5]]
    stats = {m: 0.5 for m in ("same_cos", "diff_cos", "abs_cos", "residual_ratio")}
    similarity = {"vit": {lay: stats for lay in LAYERS if not lay.startswith("pathway")},
                  "rsseg": {lay: stats for lay in LAYERS}}
    fig = plot_similarity_depth(similarity, LAYERS)
    for ax in fig.axes:
        assert ax.get_ylabel()  # issue 18: unlabelled y axes
        for line in ax.get_lines():
            xs = [int(x) for x in line.get_xdata() if float(x).is_integer()] if len(line.get_xdata()) > 0 else []
            if line.get_linestyle() == ":" or len(xs) < 2:
                continue  # family separators, single points
            names = [LAYERS[i] for i in xs]
            assert xs == list(range(xs[0], xs[-1] + 1)), names
            assert len({n.rstrip("0123456789") for n in names}) == 1, names


@pytest.mark.parametrize("name, family", [("vit.block12", "vit.block"), ("sasm", "sasm")])
def test_layer_family(name, family):
    from analysis.figures import layer_family

    assert layer_family(name) == family
