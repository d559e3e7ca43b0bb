"""Checkpoint safety: every torch.load in the code base is weights-only (an AST scan), and the scan and the payload
used by the bad-input rows can fail."""

from __future__ import annotations

import pickle
from pathlib import Path

from evil_payload import Evil


def _unsafe_loads(path: Path, torch_only: bool = False) -> list[str]:
    """Calls in ``path`` that could unpickle code: torch.load without weights_only=True and, unless ``torch_only``,
    pickle.load(s) and np.load with allow_pickle=True."""
    import ast

    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name)):
            continue
        call = f"{node.func.value.id}.{node.func.attr}"
        kw = {k.arg: k.value for k in node.keywords}
        true = {name: isinstance(v, ast.Constant) and v.value is True for name, v in kw.items()}
        unsafe_torch = call == "torch.load" and not true.get("weights_only")
        unsafe_other = call in ("pickle.load", "pickle.loads") or (call == "np.load" and true.get("allow_pickle"))
        if unsafe_torch or (unsafe_other and not torch_only):
            found.append(f"{path}:{node.lineno}: {call}")
    return found


def test_every_torch_load_is_weights_only():
    root = Path(__file__).resolve().parents[1]
    library = [p for d in ("repsep", "corruptions", "analysis", "scripts") for p in (root / d).rglob("*.py")]
    tests = list((root / "tests").rglob("*.py"))  # tests may unpickle their own payloads, but load weights-only
    assert len(library) > 40 and root / "repsep" / "engine" / "checkpoint.py" in library
    assert [hit for p in library for hit in _unsafe_loads(p)] + [h for p in tests for h in _unsafe_loads(p, True)] == []


def test_unsafe_load_detector_flags_what_it_should(tmp_path):
    src = tmp_path / "x.py"
    src.write_text("torch.load(p)\ntorch.load(p, weights_only=False)\ntorch.load(p, weights_only=True)\n"
                   "pickle.loads(b)\nnp.load(p, allow_pickle=True)\nnp.load(p)\n")
    assert [h.split(": ")[1] for h in _unsafe_loads(src)] == ["torch.load", "torch.load", "pickle.loads", "np.load"]
    assert [h.split(": ")[1] for h in _unsafe_loads(src, torch_only=True)] == ["torch.load", "torch.load"]


def test_evil_payload_does_run_code_when_unpickled_unsafely(tmp_path):
    """The bad-input rows' MARKER checks (tests/test_bad_inputs.py) can fail: plain unpickling of the same payload
    does create the file."""
    marker = tmp_path / "MARKER"
    pickle.loads(pickle.dumps(Evil(marker)))  # noqa: S301 (deliberately unsafe, on our own payload)
    assert marker.exists()
