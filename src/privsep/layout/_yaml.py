"""Reading a YAML node tree while collecting `file:line: message` problems.

The parser walks `yaml.compose` nodes rather than plain Python values so that
every problem can name the line it comes from. Accessors never raise on bad
input: they record a problem and return None, so one run reports every problem
of a layout instead of stopping at the first.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path

import yaml

from privsep._errors import LayoutError

_STR = "tag:yaml.org,2002:str"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_BOOL = "tag:yaml.org,2002:bool"
_NULL = "tag:yaml.org,2002:null"
_MERGE = "tag:yaml.org,2002:merge"

_TYPE_NAMES = {
    _STR: "a string",
    _INT: "an integer",
    _FLOAT: "a number",
    _BOOL: "a boolean",
    _NULL: "empty",
    "tag:yaml.org,2002:map": "a mapping",
    "tag:yaml.org,2002:seq": "a list",
}

_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_constructor = yaml.constructor.SafeConstructor()


class Problems:
    """Problems found so far in one file, each tied to a 1-based line."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._items: list[tuple[int, str]] = []

    def add(self, where: yaml.Node | int, message: str) -> None:
        line = where if isinstance(where, int) else where.start_mark.line + 1
        self._items.append((line, message))

    def __bool__(self) -> bool:
        return bool(self._items)

    def lines(self) -> list[str]:
        # Sorted by line (stable), so output follows the file whatever the check order.
        ordered = sorted(enumerate(self._items), key=lambda item: (item[1][0], item[0]))
        return [f"{self.path}:{line}: {message}" for _, (line, message) in ordered]

    def raise_if_any(self) -> None:
        if self._items:
            raise LayoutError(self.lines())


def compose(text: str, problems: Problems) -> yaml.Node | None:
    """The document's root node; None (with a problem) for a syntax error or an empty file."""
    try:
        node: yaml.Node | None = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        last = max(1, text.count("\n") + (not text.endswith("\n")))
        line = min(mark.line + 1, last) if mark is not None else 1  # end of file: its last line
        reason = exc.problem or exc.context or "invalid yaml"
        problems.add(line, f"yaml syntax error: {reason}")
        return None
    except yaml.YAMLError as exc:
        problems.add(1, f"yaml error: {str(exc).splitlines()[0].lower()}")
        return None
    except RecursionError:
        problems.add(1, "yaml error: nested too deeply")
        return None
    if node is None or (isinstance(node, yaml.ScalarNode) and node.tag == _NULL):
        problems.add(1, "empty layout: expected a mapping with 'service' and 'processes'")
        return None
    return node


def describe(node: yaml.Node) -> str:
    return _TYPE_NAMES.get(node.tag, f"tagged {node.tag}")


def suggest(name: str, choices: Iterable[str]) -> str:
    import difflib  # noqa: PLC0415 - only when there is a problem to report

    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.75)
    return f" (did you mean '{close[0]}'?)" if close else ""


class Mapping:
    """A checked YAML mapping: string keys, no duplicates, known keys only."""

    def __init__(self, node: yaml.MappingNode, pairs: list[tuple[yaml.ScalarNode, yaml.Node]]):
        self.node = node
        self._pairs = pairs
        self._by_key = {key.value: (key, value) for key, value in pairs}

    def __iter__(self) -> Iterator[tuple[yaml.ScalarNode, yaml.Node]]:
        return iter(self._pairs)

    def __contains__(self, key: str) -> bool:
        return key in self._by_key

    def get(self, key: str) -> yaml.Node | None:
        pair = self._by_key.get(key)
        return pair[1] if pair is not None else None

    def key_node(self, key: str) -> yaml.ScalarNode | None:
        pair = self._by_key.get(key)
        return pair[0] if pair is not None else None


def mapping(
    node: yaml.Node,
    problems: Problems,
    what: str,
    *,
    allowed: Iterable[str] | None = None,
    required: Iterable[str] = (),
    extensions: str | None = None,
) -> Mapping | None:
    """`node` as a Mapping; unknown, duplicate and missing keys are problems."""
    if not isinstance(node, yaml.MappingNode):
        problems.add(node, f"{what} must be a mapping, not {describe(node)}")
        return None
    allowed_set = set(allowed) if allowed is not None else None
    merged = any(key.tag == _MERGE for key, _ in node.value)
    if merged:  # `<<: *common`: merged keys first, the mapping's own keys override them
        try:
            _constructor.flatten_mapping(node)
        except yaml.MarkedYAMLError as exc:
            problems.add(node, f"{what}: bad merge key: {exc.problem}")
            return None
        last = {key.value: i for i, (key, _) in enumerate(node.value) if key.tag == _STR}
    pairs: list[tuple[yaml.ScalarNode, yaml.Node]] = []
    seen: set[str] = set()
    for index, (key, value) in enumerate(node.value):
        if not isinstance(key, yaml.ScalarNode) or key.tag != _STR:
            problems.add(key, f"{what}: keys must be strings, not {describe(key)}")
            continue
        if merged and last[key.value] != index:
            continue  # overridden by a later key
        if key.value in seen:
            problems.add(key, f"{what}: duplicate key '{key.value}'")
            continue
        seen.add(key.value)
        if extensions is not None and key.value.startswith(extensions):
            continue
        if allowed_set is not None and key.value not in allowed_set:
            hint = suggest(key.value, allowed_set)
            problems.add(key, f"{what}: unknown key '{key.value}'{hint}")
            continue
        pairs.append((key, value))
    for name in required:
        if name not in seen:
            problems.add(node, f"{what}: missing required key '{name}'")
    return Mapping(node, pairs)


def sequence(node: yaml.Node, problems: Problems, what: str) -> list[yaml.Node] | None:
    if not isinstance(node, yaml.SequenceNode):
        problems.add(node, f"{what} must be a list, not {describe(node)}")
        return None
    return list(node.value)


def scalar_text(node: yaml.Node, problems: Problems, what: str) -> str | None:
    """The raw text of any non-empty scalar (strings, numbers: `port: 53` and `"53"` alike)."""
    if not isinstance(node, yaml.ScalarNode) or node.tag not in (_STR, _INT, _FLOAT, _BOOL):
        problems.add(node, f"{what} must be a string, not {describe(node)}")
        return None
    return str(node.value)


def is_str(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag == _STR


def typed_scalar(node: yaml.Node) -> object:
    """The Python value of a scalar as YAML resolves it (int, float, bool, str, None)."""
    return _constructor.construct_object(node, deep=True)


def is_tag(node: yaml.Node, *tags: str) -> bool:
    names = {"str": _STR, "int": _INT, "float": _FLOAT, "bool": _BOOL, "null": _NULL}
    return isinstance(node, yaml.ScalarNode) and node.tag in {names[t] for t in tags}


MAX_LAYOUT_BYTES = 1 << 20  # a layout is a few KiB; /dev/zero is not a layout


def read_text(path: Path, problems: Problems) -> str | None:
    """The file's text; a problem instead for anything but a regular UTF-8 file of at
    most MAX_LAYOUT_BYTES (a FIFO would block, a device or a huge file eat memory)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        problems.add(1, "cannot read layout: no such file")
        return None
    except OSError as exc:
        problems.add(1, f"cannot read layout: {exc.strerror or exc}".lower())
        return None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = "is a directory" if stat.S_ISDIR(mode) else "not a regular file"
            problems.add(1, f"cannot read layout: {kind}")
            return None
        data = b""
        while len(data) <= MAX_LAYOUT_BYTES and (chunk := os.read(fd, 1 << 16)):
            data += chunk
    except OSError as exc:
        problems.add(1, f"cannot read layout: {exc.strerror or exc}".lower())
        return None
    finally:
        os.close(fd)
    if len(data) > MAX_LAYOUT_BYTES:
        problems.add(1, f"cannot read layout: larger than {MAX_LAYOUT_BYTES // 1024} KiB")
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        problems.add(1, f"cannot read layout: not utf-8 ({exc.reason})")
    return None
