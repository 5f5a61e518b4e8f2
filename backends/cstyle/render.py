"""Render checked model-language trees as C-style source.

One renderer serves C, CUDA and HLS C++: a :class:`Dialect` is a table of
spellings (types, qualifiers, math functions), and each backend subclasses it
to change a few entries. The rendering mirrors ``spikeforge.lang.evaluate``
operation by operation, so generated code computes what the NumPy reference
computes:

* every user name is mangled to ``u_<name>`` (so ``double`` or ``threadIdx``
  are harmless); the kernel skeleton declares them as locals;
* float literals are the network format's value as an exact hex literal;
* int ``+ - *`` and negation go through uint32_t, so overflow wraps as in
  NumPy and never invokes C's undefined signed overflow; ``%`` of ints is C's
  remainder (0 for a zero divisor, like NumPy's fmod warning case);
* random draws and deliveries are spelled by callbacks of the kernel skeleton,
  which knows the element's Philox counter and targets.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spikeforge.lang import tree as T

PREFIX = "u_"


def mangle(name: str) -> str:
    return PREFIX + name


@dataclass(frozen=True)
class Dialect:
    """Spellings of one C-like language; subclasses override class attributes."""

    name = "c"
    prelude = "#include <stdint.h>\n#include <math.h>\n#include <string.h>"
    int_type = "int32_t"
    uint_type = "uint32_t"
    fn_qualifier = "static inline"
    restrict = "restrict"
    float_types = {"float32": "float", "float64": "double"}
    math_suffix = {"float32": "f", "float64": ""}
    literal_suffix = {"float32": "f", "float64": ""}
    math_functions = ("exp", "log", "sqrt", "tanh", "floor", "fmod", "fabs")
    # Read float params and synapse counts from buffers at run time (not baked),
    # so networks differing only in those values share one compiled library.
    runtime_params = False
    # Let a thread update its neurons right after delivering to them (no barrier
    # between the synapse phases and the neuron phase) when the network allows it
    # (see Program.phases_fuse); the dialect's step loop must be a thread team.
    fuse_phases = False
    # Split input rings whose delays allow it into a small near ring and a far
    # ring handed on by the neuron phase (see layout.near_slots).
    split_rings = False
    # Let each thread of a team deliver only the part of a row that targets its own
    # neurons, found by binary search, when the row's targets are ascending
    # (layout.rows_ascending), instead of scanning the whole row.
    split_sorted_rows = False
    # Synapses ahead at which a row loop prefetches the input-ring entry it will add
    # to, when the rings are large (GCC/Clang __builtin_prefetch; 0: never; see
    # kernels.ring_prefetch and layout.PREFETCH_FROM).
    prefetch_distance = 0
    # Store each synapse's input-ring offset (delay x targets + target) where its
    # delay var allows (layout.offset_delay), so a delayed delivery costs one load
    # and a wrap instead of two loads, a clip, a wrap and a multiply.
    ring_offsets = False
    # Run the synapse-dynamics statements that only update synapse state once per
    # block of this many steps, synapse by synapse (see defer.py); 0: every step.
    defer_block = 0

    def float_type(self, precision: str) -> str:
        return self.float_types[precision]

    def math(self, func: str, precision: str) -> str:
        return func + self.math_suffix[precision]

    def float_literal(self, value: float, precision: str) -> str:
        dtype = np.float32 if precision == "float32" else np.float64
        exact = float(dtype(value))
        if not np.isfinite(exact):
            raise ValueError(f"constant {value!r} does not fit {precision}")
        return f"{exact.hex()}{self.literal_suffix[precision]}"


class Renderer:
    """Renders expressions and statements of one code field.

    ``types`` maps every visible name (mangled later) to 'float'/'int'/'bool';
    ``draw(call, args)`` returns the C expression of a random call (typed as the
    function's result), ``deliver(call, args)`` the C statement of a delivery."""

    def __init__(self, dialect: Dialect, precision: str, types: dict, draw=None, deliver=None):
        self.d, self.precision, self.types = dialect, precision, dict(types)
        self.draw_hook, self.deliver_hook = draw, deliver
        self.float = dialect.float_type(precision)

    # statements ---------------------------------------------------------------
    def block(self, stmts, indent: int = 1) -> list[str]:
        lines = []
        pad = "    " * indent
        for stmt in stmts:
            if isinstance(stmt, T.Assign):
                lines.append(pad + self.assign(stmt))
            elif isinstance(stmt, T.If):
                lines.append(f"{pad}if ({self.expr(stmt.test)[0]}) {{")
                lines += self.block(stmt.body, indent + 1)
                if stmt.orelse:
                    lines.append(f"{pad}}} else {{")
                    lines += self.block(stmt.orelse, indent + 1)
                lines.append(pad + "}")
            elif isinstance(stmt, T.ExprStmt):
                args = [self.expr(a) for a in stmt.call.args]
                lines.append(pad + self.deliver_hook(stmt.call, args))
        return lines

    def assign(self, stmt: T.Assign) -> str:
        value = self.expr(stmt.value)
        name = stmt.target
        declare = name not in self.types
        if stmt.op is not None:
            value = self.binary(stmt.op, (mangle(name), self.types[name]), value)
        kind = value[1] if declare else self.types[name]
        text = self.cast(value, kind)
        if declare:
            self.types[name] = kind
            return f"{self.ctype(kind)} {mangle(name)} = {text};"
        return f"{mangle(name)} = {text};"

    # types --------------------------------------------------------------------
    def ctype(self, kind: str) -> str:
        return {"float": self.float, "int": self.d.int_type, "bool": "int"}[kind]

    def cast(self, value, kind: str) -> str:
        text, have = value
        if have == kind or (kind == "bool" and have == "bool"):
            return text
        return f"(({self.ctype(kind)}){text})"

    def promote(self, a, b):
        if a[1] == b[1] == "int" or "bool" in (a[1], b[1]):
            return a, b, a[1] if a[1] == b[1] else "bool"
        return (self.cast(a, "float"), "float"), (self.cast(b, "float"), "float"), "float"

    # expressions ----------------------------------------------------------------
    def expr(self, node) -> tuple[str, str]:
        """(C text, type) of an expression."""
        if isinstance(node, T.Num):
            if node.is_int:
                return f"{int(node.value)}", "int"
            return self.d.float_literal(node.value, self.precision), "float"
        if isinstance(node, T.Name):
            return mangle(node.id), self.types[node.id]
        if isinstance(node, T.BinOp):
            return self.binary(node.op, self.expr(node.left), self.expr(node.right))
        if isinstance(node, T.UnaryOp):
            return self.unary(node.op, self.expr(node.operand))
        if isinstance(node, T.Compare):
            a, b, _ = self.promote(self.expr(node.left), self.expr(node.right))
            return f"({a[0]} {node.op} {b[0]})", "bool"
        if isinstance(node, T.BoolOp):  # operands are pure: no short circuit, no branches
            joiner = " & " if node.op == "and" else " | "
            return "(" + joiner.join(self.expr(v)[0] for v in node.values) + ")", "bool"
        if isinstance(node, T.IfExp):
            a, b, kind = self.promote(self.expr(node.body), self.expr(node.orelse))
            return f"({self.expr(node.test)[0]} ? {a[0]} : {b[0]})", kind
        if isinstance(node, T.Call):
            return self.call(node)
        raise TypeError(f"cannot render {type(node).__name__}")

    def binary(self, op: str, a, b) -> tuple[str, str]:
        if op == "/":
            return f"({self.cast(a, 'float')} / {self.cast(b, 'float')})", "float"
        a, b, kind = self.promote(a, b)
        if kind == "int":
            if op == "%":
                return f"({b[0]} == 0 ? 0 : {a[0]} % {b[0]})", "int"
            u = self.d.uint_type
            return f"(({self.d.int_type})(({u}){a[0]} {op} ({u}){b[0]}))", "int"
        if op == "%":
            return f"{self.d.math('fmod', self.precision)}({a[0]}, {b[0]})", "float"
        return f"({a[0]} {op} {b[0]})", "float"

    def unary(self, op: str, a) -> tuple[str, str]:
        if op == "not":
            return f"(!{a[0]})", "bool"
        if op == "+":
            return a
        if a[1] == "int":
            return f"(({self.d.int_type})(0u - ({self.d.uint_type}){a[0]}))", "int"
        return f"(-{a[0]})", "float"

    def call(self, node: T.Call) -> tuple[str, str]:
        args = [self.expr(a) for a in node.args]
        func = node.func
        if func in ("exp", "log", "sqrt", "tanh", "floor"):
            return f"{self.d.math(func, self.precision)}({self.cast(args[0], 'float')})", "float"
        if func == "abs":
            if args[0][1] == "int":
                return f"sf_abs_i({args[0][0]})", "int"
            return f"{self.d.math('fabs', self.precision)}({args[0][0]})", "float"
        if func in ("min", "max"):
            return self.minmax(func, args[0], args[1])
        if func == "clip":
            return self.minmax("min", self.minmax("max", args[0], args[1]), args[2])
        return self.draw_hook(node, args)

    def minmax(self, func: str, a, b) -> tuple[str, str]:
        a, b, kind = self.promote(a, b)
        suffix = "i" if kind == "int" else ("f" if self.precision == "float32" else "d")
        return f"sf_{func}_{suffix}({a[0]}, {b[0]})", kind


HELPERS = """\
{q} int32_t sf_abs_i(int32_t a) {{ return a < 0 ? (int32_t)(0u - (uint32_t)a) : a; }}
{q} int32_t sf_min_i(int32_t a, int32_t b) {{ return a < b ? a : b; }}
{q} int32_t sf_max_i(int32_t a, int32_t b) {{ return a > b ? a : b; }}
{q} float sf_min_f(float a, float b) {{ return a < b ? a : b; }}
{q} float sf_max_f(float a, float b) {{ return a > b ? a : b; }}
{q} double sf_min_d(double a, double b) {{ return a < b ? a : b; }}
{q} double sf_max_d(double a, double b) {{ return a > b ? a : b; }}
"""
