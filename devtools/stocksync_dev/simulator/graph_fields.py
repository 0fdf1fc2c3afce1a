"""The Graph ``fields`` parameter: parsing its nested syntax and checking it against each node type.

``fields=id,items{retailer_id,quantity},cancellations{items{quantity}}`` asks for scalar fields and for edges
expanded in place (returned as ``{"items": {"data": [...]}}``). An edge named without braces returns its node
type's default fields; an unknown field is Graph's error 100, as a client with a typo would see in production.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from stocksync_dev.simulator.errors import GraphError, invalid_parameter

# Field name -> nested request for an edge (None for a scalar field).
FieldSpec = dict[str, "FieldSpec | None"]

_TOKEN = re.compile(r"\s*([A-Za-z0-9_]+|[{},])")


@dataclass(frozen=True)
class NodeType:
    name: str
    fields: frozenset[str]
    default_fields: tuple[str, ...]
    edges: dict[str, NodeType] = field(default_factory=dict)


def parse_fields(text: str) -> FieldSpec:
    """Parse the nested field list; a ValueError says where the syntax is wrong."""
    tokens = _tokenize(text)
    spec, position = _parse_list(tokens, 0)
    if position != len(tokens):
        raise ValueError(f"unexpected {tokens[position]!r} in fields")
    return spec


def resolve_fields(node_type: NodeType, text: str | None) -> FieldSpec:
    """The field request to render for ``node_type``: parsed, checked, and with defaults filled in."""
    if text is None or not text.strip():
        return dict.fromkeys(node_type.default_fields)
    try:
        spec = parse_fields(text)
    except ValueError as error:
        raise invalid_parameter(f"Syntax error in fields: {error}") from error
    return _checked(node_type, spec)


def _checked(node_type: NodeType, spec: FieldSpec) -> FieldSpec:
    checked: FieldSpec = {}
    for name, nested in spec.items():
        edge = node_type.edges.get(name)
        if edge is not None:
            checked[name] = _checked(edge, nested) if nested else dict.fromkeys(edge.default_fields)
        elif name in node_type.fields and nested is None:
            checked[name] = None
        else:
            raise nonexisting_field(name, node_type)
    return checked


def nonexisting_field(name: str, node_type: NodeType) -> GraphError:
    return invalid_parameter(f"Tried accessing nonexisting field ({name}) on node type ({node_type.name})")


def _tokenize(text: str) -> list[str]:
    tokens: list[str] = []
    position = 0
    stripped = text.rstrip()
    while position < len(stripped):
        match = _TOKEN.match(stripped, position)
        if match is None:
            raise ValueError(f"unexpected character {stripped[position:].lstrip()[:1]!r}")
        tokens.append(match.group(1))
        position = match.end()
    return tokens


def _parse_list(tokens: list[str], position: int) -> tuple[FieldSpec, int]:
    spec: FieldSpec = {}
    while True:
        if position >= len(tokens) or not _is_name(tokens[position]):
            raise ValueError("expected a field name")
        name = tokens[position]
        position += 1
        nested: FieldSpec | None = None
        if position < len(tokens) and tokens[position] == "{":
            nested, position = _parse_list(tokens, position + 1)
            if position >= len(tokens) or tokens[position] != "}":
                raise ValueError(f"missing '}}' after the fields of {name}")
            position += 1
        spec[name] = nested
        if position < len(tokens) and tokens[position] == ",":
            position += 1
            continue
        return spec, position


def _is_name(token: str) -> bool:
    return token not in ("{", "}", ",")
