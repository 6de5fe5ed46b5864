"""YAML reading that remembers the line of every key, so problems can point at it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

__all__ = ["LineMap", "YamlDocument", "read_yaml_documents"]

Path = tuple[str | int, ...]


@dataclass
class LineMap:
    """Path inside a document -> 1-based line number of that key or item."""

    lines: dict[Path, int] = field(default_factory=dict)

    def line_of(self, path: Path) -> int | None:
        """The line of ``path``, or of its nearest ancestor that has one."""
        for end in range(len(path), -1, -1):
            line = self.lines.get(path[:end])
            if line is not None:
                return line
        return None


@dataclass
class YamlDocument:
    data: Any
    lines: LineMap
    index: int


class _Constructor(yaml.constructor.SafeConstructor):
    pass


#: libyaml's parser when PyYAML has it (several times faster); nodes carry the same marks
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_yaml_documents(text: str, source: str) -> list[YamlDocument]:
    """Parse every document of a YAML stream. Raises ``yaml.YAMLError`` with a position."""
    loader = _Loader(text)
    docs: list[YamlDocument] = []
    try:
        index = 0
        while loader.check_node():
            node = loader.get_node()
            if node is None:  # pragma: no cover - check_node said there is one
                break
            lines = LineMap()
            data = _construct(node, (), lines, _Constructor())
            if data is not None:
                docs.append(YamlDocument(data, lines, index))
            index += 1
    finally:
        loader.dispose()
    return docs


def _construct(node: yaml.Node, path: Path, lines: LineMap, ctor: _Constructor) -> Any:
    lines.lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        ctor.flatten_mapping(node)
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = ctor.construct_object(key_node, deep=True)
            if not isinstance(key, (str, int, float, bool)) or key is None:
                key = str(key)
            if isinstance(key, str) and key in out:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            child = (*path, key if isinstance(key, (str, int)) else str(key))
            lines.lines[child] = key_node.start_mark.line + 1
            out[key] = _construct(value_node, child, lines, ctor)
        return out
    if isinstance(node, yaml.SequenceNode):
        items = []
        for index, item in enumerate(node.value):
            child = (*path, index)
            lines.lines[child] = item.start_mark.line + 1
            items.append(_construct(item, child, lines, ctor))
        return items
    return ctor.construct_object(node, deep=True)
