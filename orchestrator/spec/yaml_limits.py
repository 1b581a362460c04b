"""A YAML loader with a bound on what a document may expand to.

YAML aliases let a few hundred bytes stand for billions of values (`&a [x, x]`, `&b [*a, *a]`,
…): every later walk over the document (validation, storing it as JSON) pays for the
expansion. `BoundedLoader` is PyYAML's SafeLoader that, once a document is composed, counts
the nodes it stands for with every alias expanded (in time linear in the distinct nodes) and
refuses more than MAX_EXPANDED_NODES, or an alias that contains itself.
"""

from __future__ import annotations

import yaml

MAX_EXPANDED_NODES = 1_000_000
"""Values, keys and collections a spec document may hold once its aliases are expanded."""


class DocumentTooLarge(ValueError):
    """A YAML document expands (through aliases) beyond MAX_EXPANDED_NODES, or into itself."""


class BoundedLoader(yaml.SafeLoader):
    def compose_document(self) -> yaml.Node | None:
        node: yaml.Node | None = super().compose_document()
        if node is not None:
            expanded_size(node, MAX_EXPANDED_NODES)
        return node


def expanded_size(root: yaml.Node, limit: int) -> int:
    """The node count of `root` with aliases expanded; DocumentTooLarge past `limit`."""
    sizes: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if children_done:
            on_path.discard(key)
            size = 1 + sum(sizes[id(child)] for child in _children(node))
            if size > limit:
                raise DocumentTooLarge(
                    f"the document expands to more than {limit:,} values "
                    "(YAML aliases count each time they are used)"
                )
            sizes[key] = size
            continue
        if key in sizes:
            continue
        if key in on_path:
            raise DocumentTooLarge("a YAML alias refers to a collection that contains it")
        on_path.add(key)
        stack.append((node, True))
        stack += [(child, False) for child in _children(node) if id(child) not in sizes]
    return sizes[id(root)]


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []
