"""Strict, safe YAML reading that remembers line numbers.

Mappings come back as ``LineDict`` and lists as ``LineList``: ordinary containers
that also know the line of each key or item, so validation errors can point at
it. Duplicate keys, recursive aliases and alias bombs (a small file that expands
into millions of nodes) are rejected before anything is built.
"""
from __future__ import annotations

from pathlib import Path

import yaml

MAX_NODES = 100_000  # far above any real suite; an alias bomb expands well past it


class YamlError(Exception):
    def __init__(self, message: str, line: int | None = None):
        super().__init__(message)
        self.line = line


class LineDict(dict):
    lines: dict


class LineList(list):
    lines: list


class _Loader(yaml.SafeLoader):
    pass


MERGE_TAG = "tag:yaml.org,2002:merge"


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> LineDict:
    loader.flatten_mapping(node)  # resolves merge keys (<<), explicit keys win
    result = LineDict()
    result.lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        result[key] = loader.construct_object(value_node, deep=True)
        result.lines[key] = key_node.start_mark.line + 1
    return result


def _construct_sequence(loader: _Loader, node: yaml.SequenceNode) -> LineList:
    result = LineList(loader.construct_object(item, deep=True) for item in node.value)
    result.lines = [item.start_mark.line + 1 for item in node.value]
    return result


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


def _check_keys(node: yaml.MappingNode, path: str) -> None:
    """Keys are plain scalars and none is written twice (merged-in keys may be overridden)."""
    seen: dict = {}
    for key_node, _ in node.value:
        if key_node.tag == MERGE_TAG:
            continue
        line = key_node.start_mark.line + 1
        if not isinstance(key_node, yaml.ScalarNode):
            raise YamlError(f"{path or 'top level'}: a key must be a plain value (text or number)", line)
        key = key_node.value
        if key in seen:
            raise YamlError(f"{_join(path, key)}: duplicate key (first on line {seen[key]})", line)
        seen[key] = line


def _join(path: str, key) -> str:
    return f"{path}.{key}" if path else str(key)


def _walk(node: yaml.Node, path: str, sizes: dict, active: set) -> int:
    """Check keys and return the node's size once every alias is expanded.

    Memoised on node identity, so sizing an alias bomb costs only its few distinct nodes.
    """
    if id(node) in sizes:
        return sizes[id(node)]
    if id(node) in active:
        raise YamlError(f"{path or 'top level'}: recursive alias", node.start_mark.line + 1)
    active.add(id(node))
    size = 1
    if isinstance(node, yaml.MappingNode):
        _check_keys(node, path)
        size += sum(_walk(k, path, sizes, active) + _walk(v, _join(path, k.value), sizes, active)
                    for k, v in node.value)
    elif isinstance(node, yaml.SequenceNode):
        size += sum(_walk(item, f"{path}[{i}]", sizes, active) for i, item in enumerate(node.value))
    active.discard(id(node))
    sizes[id(node)] = size
    if size > MAX_NODES:
        raise YamlError(f"document expands to more than {MAX_NODES} nodes (alias bomb?)", node.start_mark.line + 1)
    return size


def load(path: Path):
    """Read one YAML document; raise YamlError (with a line when known) on any problem."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise YamlError("no such file") from None
    except IsADirectoryError:
        raise YamlError("is a directory, not a YAML file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise YamlError(f"cannot read: {getattr(error, 'strerror', None) or error}") from None
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise YamlError("empty file")
        _walk(node, "", {}, set())
        return loader.construct_document(node)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        problem = error.problem or error.context or "malformed YAML"
        raise YamlError(f"malformed YAML: {problem}", mark.line + 1 if mark else None) from None
    except yaml.YAMLError as error:
        raise YamlError(f"malformed YAML: {error}") from None
    finally:
        loader.dispose()
