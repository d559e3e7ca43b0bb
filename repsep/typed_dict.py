"""Typed dicts -> frozen dataclasses: every key and type checked, errors naming the source file and dotted key.

:func:`from_dict` builds a dataclass from a plain mapping (YAML or JSON), recursing into dataclass fields, turning
lists into tuples and ints into floats where the annotation asks; unknown, missing and mistyped keys are
:class:`UserError` (``<source>: <key>: expected <type>, got <value>``). :func:`plain` is the way back (tuples as
lists), the content a config file is written from.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from typing import Any, Literal, Union

from repsep.errors import UserError

_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def plain(v: Any) -> Any:
    """``v`` with every tuple (at any depth) as a list: what YAML / JSON write."""
    if isinstance(v, dict):
        return {k: plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [plain(x) for x in v]
    return v


def type_name(tp: Any) -> str:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in args)
    if origin in (Union, types.UnionType):
        return " | ".join("null" if a is type(None) else type_name(a) for a in args)
    if origin is tuple:
        return f"list of {type_name(args[0])}" if args[-1] is Ellipsis else f"list of {len(args)} numbers"
    if dataclasses.is_dataclass(tp):
        return "mapping"
    return getattr(tp, "__name__", str(tp))


def coerce(value: Any, tp: Any, key: str, source: str) -> Any:
    """``value`` checked against type ``tp`` (lists become tuples, ints become floats where a float is due)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    bad = UserError(f"{source}: {key}: expected {type_name(tp)}, got {value!r}")
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        if value is None:
            if type(None) in args:
                return None
            raise bad
        for arg in (a for a in args if a is not type(None)):
            try:
                return coerce(value, arg, key, source)
            except UserError:
                continue
        raise bad
    if origin is Literal:
        if value in args and not isinstance(value, bool):
            return value
        raise bad
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise bad
        return from_dict(tp, value, source, prefix=f"{key}.")
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise bad
        if args[-1] is Ellipsis:
            return tuple(coerce(v, args[0], f"{key}[{i}]", source) for i, v in enumerate(value))
        if len(value) != len(args):
            raise bad
        return tuple(coerce(v, a, f"{key}[{i}]", source) for i, (v, a) in enumerate(zip(value, args, strict=True)))
    if origin in (list, dict) or tp in (list, dict):
        if not isinstance(value, origin or tp):
            raise bad
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise bad
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise bad
    if tp is float:
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not (number or (isinstance(value, str) and _NUMBER.match(value))):  # YAML 1.1 reads 1e-4 as a string
            raise bad
        try:
            return float(value)
        except OverflowError:  # an int beyond float range
            raise UserError(f"{source}: {key}: must be a finite number, got {value}") from None
    if tp is str:
        if isinstance(value, str):
            return value
        raise bad
    raise TypeError(f"config type {tp!r} of {key} is not supported")


def from_dict(cls: type, data: dict[str, Any], source: str, prefix: str = "",
              localns: dict[str, Any] | None = None) -> Any:
    """Build dataclass ``cls`` from ``data``, validating keys and types; errors name ``source`` and the key.

    ``localns`` resolves annotations that name classes imported only for type checking.
    """
    hints = typing.get_type_hints(cls, localns=localns)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    for k in data:
        if k not in fields:
            raise UserError(f"{source}: unknown key '{prefix}{k}' (known: {', '.join(fields)})")
    kwargs = {}
    for name, f in fields.items():
        if name in data:
            kwargs[name] = coerce(data[name], hints[name], prefix + name, source)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise UserError(f"{source}: missing key '{prefix}{name}'")
    try:
        return cls(**kwargs)
    except (ValueError, TypeError, UserError) as e:  # __post_init__ checks (ModelConfig's name their key)
        msg = str(e)
        raise UserError(f"{source}: {msg if msg.startswith(prefix) else prefix + msg}") from None
