"""DSPy's string signature syntax: ``"question, context: list[str] -> answer: int"``.

Each side of the single ``->`` is a Python-like argument list: names, optionally annotated with a type in
the syntax of :func:`~dspy_grpc_server.core.types.parse_type`. Errors name the offending token and its
(1-based) column in the whole string.
"""

from __future__ import annotations

from typing import Mapping

from .errors import invalid
from .signature import Field, Role, Signature
from .types import STR, TypeSpec, parse_type


def _split_top_level(text: str, offset: int, field_path: str) -> list[tuple[str, int]]:
    """Split on commas not nested in brackets or quotes; returns (piece, column of piece start)."""
    pieces: list[tuple[str, int]] = []
    depth = 0
    quote: str | None = None
    start = 0
    for i, ch in enumerate(text):
        if quote:
            if ch == quote:
                quote = None
            continue
        if ch in "'\"":
            quote = ch
        elif ch in "[(":
            depth += 1
        elif ch in "])":
            depth -= 1
            if depth < 0:
                raise invalid(field_path, f"unbalanced {ch!r} at column {offset + i + 1}")
        elif ch == "," and depth == 0:
            pieces.append((text[start:i], offset + start))
            start = i + 1
    if quote:
        raise invalid(field_path, f"unterminated string starting in {text.strip()!r}")
    if depth != 0:
        raise invalid(field_path, f"unbalanced brackets in {text.strip()!r}")
    pieces.append((text[start:], offset + start))
    return pieces


def _parse_side(text: str, offset: int, role: Role, field_path: str,
                names: Mapping[str, TypeSpec] | None) -> list[Field]:
    fields: list[Field] = []
    if not text.strip():
        return fields
    pieces = _split_top_level(text, offset, field_path)
    for n, (piece, col) in enumerate(pieces):
        if not piece.strip():
            if n == len(pieces) - 1 and n > 0:  # a trailing comma is allowed, as in Python
                continue
            raise invalid(field_path, f"empty field name at column {col + 1}")
        lead = len(piece) - len(piece.lstrip())
        name_part, sep, type_part = piece.partition(":")
        name = name_part.strip()
        name_col = col + lead + 1
        if not name.isidentifier():
            raise invalid(field_path, f"invalid field name {name!r} at column {name_col}")
        if sep:
            type_col = col + len(name_part) + 1
            if not type_part.strip():
                raise invalid(field_path, f"missing type after {name!r}: at column {type_col}")
            type_lead = len(type_part) - len(type_part.lstrip())
            spec = parse_type(type_part, field_path=field_path, names=names, _col_offset=type_col + type_lead)
        else:
            spec = STR
        fields.append(Field(name=name, role=role, type=spec))
    return fields


def parse_signature_text(text: str, instructions: str | None = None, *, field_path: str = "signature",
                         names: Mapping[str, TypeSpec] | None = None) -> Signature:
    """Parse a string signature into a :class:`Signature` (validated)."""
    if not isinstance(text, str) or not text.strip():
        raise invalid(field_path, "signature string is empty; expected e.g. 'question -> answer'")
    count = text.count("->")
    if count != 1:
        raise invalid(field_path, f"signature must contain exactly one '->', found {count} in {text!r}")
    arrow = text.index("->")
    inputs = _parse_side(text[:arrow], 0, Role.INPUT, field_path, names)
    outputs = _parse_side(text[arrow + 2:], arrow + 2, Role.OUTPUT, field_path, names)
    if not outputs:
        raise invalid(field_path, f"no output fields after '->' at column {arrow + 1}")
    in_names = {f.name for f in inputs}
    both = sorted(in_names.intersection(f.name for f in outputs))
    if both:
        raise invalid(field_path, "input and output fields must have distinct names, but found duplicates: "
                      + ", ".join(repr(b) for b in both))
    seen: set[str] = set()
    for f in inputs + outputs:
        if f.name in seen:
            raise invalid(field_path, f"duplicate field name {f.name!r}")
        seen.add(f.name)
    return Signature(tuple(inputs + outputs), instructions).validate(field_path)
