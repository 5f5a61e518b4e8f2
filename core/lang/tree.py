"""The model language's own syntax tree: small frozen dataclasses.

Only this tree is ever rendered into C/CUDA/HLS or evaluated by NumPy; the
user's text is parsed (``ast``), checked, and then forgotten, so no model code
reaches a compiler verbatim.

Every node carries ``line``/``col`` (1-based line, 0-based column into the
field's source) so later passes can report errors at the right place.
"""

from __future__ import annotations

from dataclasses import dataclass, field

BINARY_OPS = ("+", "-", "*", "/", "%")
COMPARE_OPS = ("<", "<=", ">", ">=", "==", "!=")
BOOL_OPS = ("and", "or")
UNARY_OPS = ("-", "+", "not")


@dataclass(frozen=True)
class Node:
    line: int = field(default=0, kw_only=True, compare=False)
    col: int = field(default=0, kw_only=True, compare=False)


@dataclass(frozen=True)
class Num(Node):
    """A numeric literal; ``is_int`` for integer literals."""

    value: float
    is_int: bool


@dataclass(frozen=True)
class Name(Node):
    id: str


@dataclass(frozen=True)
class BinOp(Node):
    op: str
    left: Node
    right: Node


@dataclass(frozen=True)
class UnaryOp(Node):
    op: str
    operand: Node


@dataclass(frozen=True)
class Compare(Node):
    """A single comparison; chains are split into ``and`` of pairs by the parser."""

    op: str
    left: Node
    right: Node


@dataclass(frozen=True)
class BoolOp(Node):
    op: str
    values: tuple[Node, ...]


@dataclass(frozen=True)
class IfExp(Node):
    test: Node
    body: Node
    orelse: Node


@dataclass(frozen=True)
class Call(Node):
    """A call of a whitelisted function. ``site`` numbers random draws within one
    code field (0, 1, ...) so every backend uses the same Philox counter for it;
    -1 for deterministic functions."""

    func: str
    args: tuple[Node, ...]
    site: int = -1


@dataclass(frozen=True)
class Assign(Node):
    """``target = value`` or, with ``op``, ``target op= value``."""

    target: str
    value: Node
    op: str | None = None


@dataclass(frozen=True)
class If(Node):
    test: Node
    body: tuple[Node, ...]
    orelse: tuple[Node, ...]


@dataclass(frozen=True)
class ExprStmt(Node):
    """A call used as a statement (``deliver(w)``)."""

    call: Call


def walk(nodes):
    """Yield every node of a statement list or expression, depth first."""
    stack = list(nodes) if isinstance(nodes, (tuple, list)) else [nodes]
    while stack:
        node = stack.pop()
        yield node
        for child in _children(node):
            stack.append(child)


def _children(node):
    if isinstance(node, (BinOp, Compare)):
        return (node.left, node.right)
    if isinstance(node, UnaryOp):
        return (node.operand,)
    if isinstance(node, BoolOp):
        return node.values
    if isinstance(node, IfExp):
        return (node.test, node.body, node.orelse)
    if isinstance(node, Call):
        return node.args
    if isinstance(node, Assign):
        return (node.value,)
    if isinstance(node, If):
        return (node.test, *node.body, *node.orelse)
    if isinstance(node, ExprStmt):
        return (node.call,)
    return ()


def names_read(nodes) -> set[str]:
    """Names read anywhere in ``nodes`` (targets of assignments excluded)."""
    return {n.id for n in walk(nodes) if isinstance(n, Name)}


def names_assigned(nodes) -> set[str]:
    return {n.target for n in walk(nodes) if isinstance(n, Assign)}


def calls(nodes, func: str | None = None) -> list[Call]:
    return [n for n in walk(nodes) if isinstance(n, Call) and func in (None, n.func)]
