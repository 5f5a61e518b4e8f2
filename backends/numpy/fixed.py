"""Fixed-point evaluation for the NumPy reference (rules in spikeforge.fixed).

Float-typed values are int64 arrays holding compute-format integers, already
wrapped to the format's width; int values stay int32 and bools bool, so the
kind of a value is its dtype.
"""

from __future__ import annotations

import numpy as np

from spikeforge import fixed as F
from spikeforge.lang import tree as T
from spikeforge.lang.evaluate import INT

from .kernels import KernelEvaluator

FIXED = np.int64


class FixedKernelEvaluator(KernelEvaluator):
    """``constants`` maps params, derived params and ``dt`` to their real values
    (divisors and Poisson means fold into constants from them)."""

    def __init__(self, env, fmt, types, counters, on_deliver, constants: dict):
        super().__init__(env, np.float64, types, counters, on_deliver)
        self.fmt, self.constants = fmt, constants
        self.bits, self.frac = fmt.bits, fmt.frac

    def kind_of(self, value) -> str:
        dtype = np.asarray(value).dtype
        if dtype == bool:
            return "bool"
        return "float" if dtype == FIXED else "int"

    def wrap(self, x):
        return F.wrap(x, self.bits)

    def _cast(self, value, kind: str):
        have = self.kind_of(value)
        if kind == "float":
            if have == "int":
                return self.wrap(np.asarray(value, dtype=FIXED) << FIXED(self.frac))
            return np.asarray(value, dtype=FIXED)
        if kind == "int" and have == "float":
            return (np.asarray(value, dtype=FIXED) >> FIXED(self.frac)).astype(INT)
        return super()._cast(value, kind)

    def constant(self, node) -> float:
        """Real value of a constant expression (literal, param, derived param, dt)."""
        if isinstance(node, T.Num):
            return node.value
        if isinstance(node, T.UnaryOp) and node.op in "+-":
            return self.constant(node.operand) * (-1 if node.op == "-" else 1)
        if isinstance(node, T.Name) and node.id in self.constants:
            return self.constants[node.id]
        raise ValueError("fixed point: only a param or constant may be used here")

    # expressions ------------------------------------------------------------------
    def value(self, node):
        if isinstance(node, T.Num) and not node.is_int:
            return FIXED(F.to_fixed(node.value, self.fmt, "constant"))
        if isinstance(node, T.BinOp) and node.op == "/":
            return self.divide(self.value(node.left), node.right)
        if isinstance(node, T.UnaryOp) and node.op == "-":
            operand = self.value(node.operand)
            if self.kind_of(operand) == "float":
                return self.wrap(-operand)
        return super().value(node)

    def divide(self, numerator, divisor_node):
        r = F.reciprocal(self.constant(divisor_node), self.fmt)
        return self._binary("*", self._cast(numerator, "float"), FIXED(r))

    def _assign(self, stmt, mask):
        if stmt.op == "/":
            stmt = T.Assign(stmt.target, T.BinOp("/", T.Name(stmt.target), stmt.value))
        super()._assign(stmt, mask)

    def _binary(self, op, a, b):
        a, b = self._promote(a, b)
        if self.kind_of(a) != "float":
            return super()._binary(op, a, b)
        if op == "*":
            return self.wrap((a * b) >> FIXED(self.frac))
        if op == "%":
            return np.fmod(a, b)
        return self.wrap(a + b if op == "+" else a - b)

    def _promote(self, a, b):
        kinds = {self.kind_of(a), self.kind_of(b)}
        if kinds == {"int", "float"}:
            return self._cast(a, "float"), self._cast(b, "float")
        return a, b

    def _call(self, node):
        if node.func in ("exp", "log", "sqrt", "tanh"):
            raise ValueError(f"fixed point: '{node.func}' is allowed only in derived params")
        if node.func == "floor":
            x = self._cast(self.value(node.args[0]), "float")
            return x & ~FIXED((1 << self.frac) - 1)
        if node.func == "abs" and self.kind_of(value := self.value(node.args[0])) == "float":
            return self.wrap(np.abs(value))
        return super()._call(node)

    def draw(self, call, args):
        w = self.counters.words(call.site)
        if call.func == "uniform":
            return (w[0] >> np.uint32(F.uniform_shift(self.fmt))).astype(FIXED)
        if call.func in ("normal", "exponential"):
            table = F.normal_table(self.fmt) if call.func == "normal" else F.exponential_table(
                self.fmt)
            return np.asarray(table, dtype=FIXED)[w[0] >> np.uint32(32 - F.TABLE_BITS)]
        thresholds = np.asarray(F.poisson_thresholds(self.constant(call.args[0])), np.uint64)
        return (w[0].astype(np.uint64)[..., None] >= thresholds).sum(axis=-1).astype(INT)
