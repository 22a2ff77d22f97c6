"""YAML files with line numbers, for one-line errors such as ``FILE:LINE: key.path: problem``.

Shared by recipes (:mod:`curate.recipe`) and training configs (:mod:`train.config`).
"""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import ValidationError

from curate.errors import UserError


def line_index(node: yaml.Node, path: tuple = (), out: dict | None = None) -> dict[tuple, int]:
    """Map each key path of a composed YAML node to its 1-based line."""
    out = {} if out is None else out
    out.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            out[path + (k.value,)] = k.start_mark.line + 1
            line_index(v, path + (k.value,), out)
    elif isinstance(node, yaml.SequenceNode):
        for i, v in enumerate(node.value):
            line_index(v, path + (i,), out)
    return out


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
    text = path.read_text(encoding="utf-8")
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        raise UserError(f"{path}{line}: not valid YAML: {getattr(exc, 'problem', None) or exc}") from None
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
