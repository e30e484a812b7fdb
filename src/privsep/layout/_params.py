"""Layout parameters: declaration, `--set KEY=VALUE` overrides and `${name}` substitution.

Substitution is textual and happens once, when the parser reads a string
value: `${name}` becomes the parameter's value, `$${` stands for a literal
`${`. Parameter values are never substituted again, so a value cannot smuggle
in a reference to another parameter.
"""

from __future__ import annotations

import re
from collections.abc import Mapping as MappingABC

import yaml

from privsep._errors import LayoutError
from privsep.layout import _yaml
from privsep.layout._model import Parameter

_NAME = re.compile(r"[a-z_][a-z0-9_]*\Z")
_REFERENCE = re.compile(r"\$\$\{|\$\{([^}]*)\}")


def parse_set(items: list[str]) -> dict[str, str]:
    """`["k=v", ...]` from `--set` options as a dict; a malformed item raises LayoutError."""
    values: dict[str, str] = {}
    problems = []
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not _NAME.match(name):
            problems.append(f"--set {item}: expected KEY=VALUE with KEY like [a-z_][a-z0-9_]*")
            continue
        values[name] = value
    if problems:
        raise LayoutError(problems)
    return values


def parse_parameters(node: yaml.Node, problems: _yaml.Problems) -> list[Parameter]:
    """The `parameters:` mapping: `name: {default, description}` or the short form `name: value`."""
    params = _yaml.mapping(node, problems, "parameters")
    if params is None:
        return []
    result = []
    for key, value in params:
        name = key.value
        if not _NAME.match(name):
            problems.add(key, f"parameter name '{name}' must match [a-z_][a-z0-9_]*")
            continue
        if isinstance(value, yaml.MappingNode):
            spec = _yaml.mapping(
                value, problems, f"parameter '{name}'", allowed=("default", "description")
            )
            if spec is None:
                continue
            default = _text_or_empty(spec.get("default"), problems, f"parameter '{name}' default")
            description = _text_or_empty(
                spec.get("description"), problems, f"parameter '{name}' description"
            )
        else:
            default = _text_or_empty(value, problems, f"parameter '{name}' default")
            description = ""
        result.append(Parameter(name=name, default=default, description=description))
    return result


def _text_or_empty(node: yaml.Node | None, problems: _yaml.Problems, what: str) -> str:
    if node is None or _yaml.is_tag(node, "null"):
        return ""
    return _yaml.scalar_text(node, problems, what) or ""


def resolve_values(
    parameters: list[Parameter],
    overrides: MappingABC[str, str],
    problems: _yaml.Problems,
    line: int,
) -> dict[str, str]:
    """Defaults with `--set` overrides applied; an override of an undeclared name is a problem."""
    values = {p.name: p.default for p in parameters}
    for name, value in overrides.items():
        if name not in values:
            hint = _yaml.suggest(name, values)
            problems.add(line, f"--set {name}={value}: unknown parameter '{name}'{hint}")
            continue
        values[name] = value
    return values


class Substituter:
    """Replaces `${name}` in string values, reporting unknown names at the node's line."""

    def __init__(self, values: dict[str, str], problems: _yaml.Problems) -> None:
        self.values = values
        self.problems = problems

    def __call__(self, text: str, node: yaml.Node) -> str | None:
        if "$" not in text:
            return text
        unknown: list[str] = []

        def replace(match: re.Match[str]) -> str:
            if match.group(0) == "$${":
                return "${"
            name = match.group(1)
            if name not in self.values:
                unknown.append(name)
                return ""
            return self.values[name]

        result = _REFERENCE.sub(replace, text)
        for name in unknown:
            hint = _yaml.suggest(name, self.values)
            self.problems.add(node, f"unknown parameter '${{{name}}}' in {text!r}{hint}")
        return None if unknown else result
