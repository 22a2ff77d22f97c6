"""YAML files with line numbers, for one-line errors such as ``FILE:LINE: key.path: problem``.

Shared by recipes (:mod:`curate.recipe`) and training configs (:mod:`train.config`).
"""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import ValidationError

from curate.errors import UserError


def line_index(node: yaml.Node, path: tuple = (), out: dict | None = None) -> dict[tuple, int]:
    """Map each key path of a composed YAML node to its 1-based line.

    Each node is walked once: a node reached again through an alias (``*name``) keeps the lines of its
    first path, so anchors that refer to each other cannot make the walk exponential.
    """
    out = {} if out is None else out
    seen: set[int] = set()
    stack = [(node, path)]
    while stack:
        node, path = stack.pop()
        out.setdefault(path, node.start_mark.line + 1)
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                out.setdefault(path + (k.value,), k.start_mark.line + 1)
                stack.append((v, path + (k.value,)))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((v, path + (i,)) for i, v in enumerate(node.value))
    return out


def duplicate_key(node: yaml.Node | None) -> tuple[tuple, int, int] | None:
    """(key path, line of the repeat, line of the first) of the first key that a mapping repeats, else None.

    YAML loaders silently keep the last value of a repeated key; a repeat in a hand-written file is a mistake.
    """
    seen: set[int] = set()
    stack = [(node, ())] if node is not None else []
    found = []
    while stack:
        node, path = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            first: dict = {}
            for k, v in node.value:
                if isinstance(k, yaml.ScalarNode) and k.tag != "tag:yaml.org,2002:merge":
                    line = k.start_mark.line + 1
                    if k.value in first:
                        found.append((line, path + (k.value,), first[k.value]))
                    else:
                        first[k.value] = line
                stack.append((v, path + (getattr(k, "value", "?"),)))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((v, path + (i,)) for i, v in enumerate(node.value))
    if not found:
        return None
    line, loc, first_line = min(found)
    return loc, line, first_line


def line_of(lines: dict[tuple, int], loc: tuple) -> int | None:
    """The line of ``loc`` or of its closest parent that has one."""
    loc = tuple(loc)
    while loc:
        if loc in lines:
            return lines[loc]
        loc = loc[:-1]
    return lines.get(())


def dotted(loc: tuple) -> str:
    return ".".join(str(p) for p in loc) or "(top level)"


def load_mapping(path: Path, what: str) -> tuple[dict, dict[tuple, int]]:
    """Read a YAML file that must hold a mapping; return (data, key path -> line).

    ``what`` names the kind of file in errors ("recipe", "training config").
    """
    if not path.is_file():
        raise UserError(f"{what} not found: {path}")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start})") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        raise UserError(f"{path}{line}: not valid YAML: {getattr(exc, 'problem', None) or exc}") from None
    repeat = duplicate_key(node)
    if repeat is not None:
        loc, line, first_line = repeat
        raise UserError(f"{path}:{line}: {dotted(loc)}: duplicate key (first set on line {first_line})")
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise UserError(f"{path}: a {what} must be a YAML mapping at the top level")
    return data, (line_index(node) if node is not None else {})


def first_problem(exc: ValidationError, fix_loc=lambda loc: loc) -> tuple[tuple, str]:
    """(key path, message) of a pydantic error's first problem, worded for users."""
    errors = exc.errors()
    err = errors[0]
    loc = fix_loc(tuple(err["loc"]))
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        msg = "unknown key"
    elif err["type"] == "missing":
        msg = "required key is missing"
    if len(errors) > 1:
        msg += f" (and {len(errors) - 1} more problem(s))"
    return loc, msg
