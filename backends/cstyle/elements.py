"""Per-element code blocks: bind names to loads/stores, render fields, store back.

An element is one neuron, synapse, or custom-update entry of one batch element.
Its block declares a local ``u_<name>`` for every name its code uses (loaded
from state, or a constant), runs the fields, then stores the writable names
that the code assigned. Random draws use the element's Philox counter
``(rng_step, c1, c2, (batch << 8) | site)`` and the field's stream id.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from spikeforge.lang import tree as T
from spikeforge.philox import stream_id

from .render import Renderer, mangle


@dataclass(frozen=True)
class Binding:
    kind: str  # 'float' | 'int' | 'bool'
    load: str  # C expression (an lvalue for stored names)
    store: bool = False  # written back after the code
    mutable: bool = False  # assignable local that is not written back
    fmt: tuple | None = None  # fixed point: (storage Fixed, saturate) of the stored value
    lazy: bool = False  # not declared: every read is rendered by a deliver callback


@dataclass
class Element:
    """Names visible to the code of one element and how its draws are counted."""

    program: object  # the Program: dialect, precision, seed field
    node: str
    names: dict[str, Binding]
    c1: str = "0u"
    c2: str = "0u"
    batch: str = "b"
    deliver: object = None
    written: set = field(default_factory=set)
    declared: set = field(default_factory=set)

    def renderer(self, field_name: str) -> Renderer:
        types = {n: b.kind for n, b in self.names.items()}
        stream = stream_id(f"{self.node}.{field_name}")

        def draw(call, args):
            return self.program.draw(call, args, self.counter(call.site, stream))

        return self.program.renderer(self.node, types, draw, self.deliver)

    def counter(self, site: int, stream: int) -> str:
        c3 = f"(((uint32_t){self.batch} << 8) | {site}u)"
        return (f"sf_philox(S->rng_step, (uint32_t)({self.c1}), (uint32_t)({self.c2}), {c3}, "
                f"S->seed, 0x{stream:08x}u)")

    def declare(self, trees) -> list[str]:
        """Declarations of the names the trees use and have not been declared yet."""
        used = set()
        for tree in trees:
            if tree is not None:
                used |= T.names_read(tree if isinstance(tree, tuple) else (tree,))
                used |= T.names_assigned(tree if isinstance(tree, tuple) else (tree,))
        lines = []
        for name in sorted(used & set(self.names) - self.declared):
            bind = self.names[name]
            self.declared.add(name)
            if bind.lazy:
                continue
            ctype = self.program.ctype(bind.kind)
            const = "" if bind.store or bind.mutable else "const "
            lines.append(f"{const}{ctype} {mangle(name)} = {self.program.load(bind)};")
            if const and self.program.fixed is not None:  # poisson(lam) folds lam into a table
                lines.append(f"(void){mangle(name)};")
        return lines

    def code(self, field_name: str, stmts) -> list[str]:
        if not stmts:
            return []
        self.written |= T.names_assigned(stmts)
        body = self.renderer(field_name).block(stmts, 1)
        return ["{", *body, "}"]

    def expr(self, field_name: str, tree, kind: str) -> str:
        renderer = self.renderer(field_name)
        return renderer.cast(renderer.expr(tree), kind)

    def stores(self) -> list[str]:
        return [self.program.store(self.names[n], mangle(n)) for n in sorted(self.written)
                if n in self.names and self.names[n].store]


def indent(lines: list[str], level: int = 1) -> list[str]:
    pad = "    " * level
    return [pad + line if line else line for line in lines]
