"""Fixed-point rendering (rules in spikeforge.fixed; reference in
backends/numpy/fixed.py). Float-typed values are ``int64_t`` locals holding
wrapped compute-format integers; all arithmetic goes through helpers that never
rely on signed overflow or on the sign behaviour of ``>>``."""

from __future__ import annotations

from spikeforge import fixed as F
from spikeforge.lang import tree as T

from .render import Renderer


def helpers(q: str, fmt) -> str:
    """C helpers for the network format ``fmt`` (BITS/FRAC baked in)."""
    return f"""\
{q} int64_t sf_wrapb(int64_t x, int bits) {{
    const uint64_t half = (uint64_t)1 << (bits - 1);
    return (int64_t)((((uint64_t)x + half) & ((half << 1) - 1u))) - (int64_t)half;
}}
{q} int64_t sf_shr(int64_t x, int n) {{ return x >= 0 ? x >> n : -((-x - 1) >> n) - 1; }}
{q} int64_t sf_shl(int64_t x, int n) {{ return (int64_t)((uint64_t)x << n); }}
{q} int64_t sf_wrap(int64_t x) {{ return sf_wrapb(x, {fmt.bits}); }}
{q} int64_t sf_fx_mul(int64_t a, int64_t b) {{ return sf_wrap(sf_shr(a * b, {fmt.frac})); }}
{q} int64_t sf_fx_from_int(int32_t i) {{ return sf_wrap(sf_shl(i, {fmt.frac})); }}
{q} int64_t sf_fx_floor(int64_t x) {{ return sf_shl(sf_shr(x, {fmt.frac}), {fmt.frac}); }}
{q} int64_t sf_fx_abs(int64_t x) {{ return sf_wrap(x < 0 ? -x : x); }}
{q} int64_t sf_fx_rem(int64_t a, int64_t b) {{ return b == 0 ? 0 : a % b; }}
{q} int64_t sf_min_l(int64_t a, int64_t b) {{ return a < b ? a : b; }}
{q} int64_t sf_max_l(int64_t a, int64_t b) {{ return a > b ? a : b; }}
{q} int64_t sf_fx_load(int64_t raw, int shift) {{
    return sf_wrap(shift >= 0 ? sf_shl(raw, shift) : sf_shr(raw, -shift));
}}
{q} int64_t sf_fx_store(int64_t x, int shift, int bits, int saturate) {{
    const int64_t moved = shift >= 0 ? sf_shl(x, shift) : sf_shr(x, -shift);
    const int64_t half = (int64_t)1 << (bits - 1);
    if (saturate) return moved < -half ? -half : (moved > half - 1 ? half - 1 : moved);
    return sf_wrapb(moved, bits);
}}
{q} int32_t sf_fx_count(uint32_t w, const uint64_t *thresholds, int32_t n) {{
    int32_t k = 0;
    while (k < n && (uint64_t)w >= thresholds[k]) k++;
    return k;
}}
"""


def tables(fmt) -> str:
    """Inverse-CDF tables for normal() and exponential() (used only when referenced)."""
    out = []
    for name, values in (("normal", F.normal_table(fmt)), ("exponential", F.exponential_table(fmt))):
        body = ",".join(str(v) for v in values)
        out.append(f"static const int64_t sf_{name}_table[{len(values)}] = {{{body}}};")
    return "\n".join(out)


class FixedRenderer(Renderer):
    """Renders code in the network's fixed-point format. ``constants`` maps
    params/derived params/dt to their real values (divisors and Poisson means
    fold into constants); ``poisson`` registers a threshold table and returns
    its C name."""

    def __init__(self, dialect, fmt, types, draw=None, deliver=None, constants=None):
        super().__init__(dialect, "float64", types, draw, deliver)
        self.fmt, self.constants = fmt, constants or {}
        self.float = "int64_t"

    def ctype(self, kind: str) -> str:
        return {"float": "int64_t", "int": self.d.int_type, "bool": "int"}[kind]

    def cast(self, value, kind: str) -> str:
        text, have = value
        if kind == "float" and have == "int":
            return f"sf_fx_from_int({text})"
        if kind == "int" and have == "float":
            return f"((int32_t)sf_shr({text}, {self.fmt.frac}))"
        return super().cast(value, kind)

    def constant(self, node) -> float:
        if isinstance(node, T.UnaryOp) and node.op in "+-":
            return self.constant(node.operand) * (-1 if node.op == "-" else 1)
        if isinstance(node, T.Num):
            return node.value
        return self.constants[node.id]

    def expr(self, node):
        if isinstance(node, T.Num) and not node.is_int:
            return f"INT64_C({int(F.to_fixed(node.value, self.fmt, 'constant'))})", "float"
        if isinstance(node, T.BinOp) and node.op == "/":
            r = F.reciprocal(self.constant(node.right), self.fmt)
            return self.binary("*", self.expr(node.left), (f"INT64_C({r})", "float"))
        return super().expr(node)

    def assign(self, stmt):
        if stmt.op == "/":
            stmt = T.Assign(stmt.target, T.BinOp("/", T.Name(stmt.target), stmt.value),
                            line=stmt.line, col=stmt.col)
        return super().assign(stmt)

    def binary(self, op, a, b):
        a, b, kind = self.promote(a, b)
        if kind != "float":
            return super().binary(op, a, b)
        if op == "*":
            return f"sf_fx_mul({a[0]}, {b[0]})", "float"
        if op == "%":
            return f"sf_fx_rem({a[0]}, {b[0]})", "float"
        return f"sf_wrap({a[0]} {op} {b[0]})", "float"

    def unary(self, op, a):
        if op == "-" and a[1] == "float":
            return f"sf_wrap(-{a[0]})", "float"
        return super().unary(op, a)

    def call(self, node):
        if node.func == "poisson":
            return self.draw_hook(node, [(self.constant(node.args[0]), "const")])
        if node.func == "floor":
            return f"sf_fx_floor({self.cast(self.expr(node.args[0]), 'float')})", "float"
        if node.func == "abs":
            arg = self.expr(node.args[0])
            if arg[1] == "float":
                return f"sf_fx_abs({arg[0]})", "float"
        return super().call(node)

    def minmax(self, func, a, b):
        a, b, kind = self.promote(a, b)
        suffix = "i" if kind == "int" else "l"
        return f"sf_{func}_{suffix}({a[0]}, {b[0]})", kind
