"""Vectorised evaluation of checked model code over NumPy arrays.

This is the executable meaning of the language (the numpy backend builds on
it; derived params use it with float64 scalars):

* ``float`` values are computed in the evaluator's dtype (float32 or float64),
  ``int`` values in int32, conditions as bool arrays;
* ``/`` always divides as float; ``%`` is C's truncated remainder (fmod);
* ``if`` evaluates both branches for every element under complementary masks,
  and an assignment under a mask keeps the old value where the mask is false;
* random draws and deliveries are delegated to hooks (``draw``, ``deliver``)
  that know the element's Philox counter and targets.
"""

from __future__ import annotations

import numpy as np

from . import tree as T

INT = np.int32


class Evaluator:
    """Evaluate statements/expressions with names looked up in ``env`` (a dict of
    scalars or arrays broadcastable to the element shape)."""

    def __init__(self, env: dict, dtype=np.float64, types: dict | None = None):
        self.env = env
        self.dtype = np.dtype(dtype)
        self.types = types or {}

    def kind_of(self, value) -> str:
        return _kind_of(value)

    # hooks ------------------------------------------------------------------
    def draw(self, call: T.Call, args):
        raise ValueError(f"random function '{call.func}' is not available here")

    def deliver(self, call: T.Call, args, mask):
        raise ValueError(f"'{call.func}' is not available here")

    # statements -------------------------------------------------------------
    def run(self, stmts, mask=None):
        with np.errstate(all="ignore"):
            self._block(stmts, mask)

    def _block(self, stmts, mask):
        for stmt in stmts:
            if isinstance(stmt, T.Assign):
                self._assign(stmt, mask)
            elif isinstance(stmt, T.If):
                test = self.value(stmt.test)
                self._block(stmt.body, test if mask is None else mask & test)
                if stmt.orelse:
                    self._block(stmt.orelse, ~test if mask is None else mask & ~test)
            elif isinstance(stmt, T.ExprStmt):
                self.deliver(stmt.call, [self.value(a) for a in stmt.call.args], mask)

    def _assign(self, stmt: T.Assign, mask):
        value = self.value(stmt.value)
        name = stmt.target
        if stmt.op is not None:
            value = self._binary(stmt.op, self.env[name], value)
        kind = self.types.get(name)
        value = self._cast(value, kind if kind else self.kind_of(value))
        if name not in self.types:
            self.types[name] = self.kind_of(value)
        if mask is not None and name in self.env:
            value = np.where(mask, value, self.env[name])
        self.env[name] = value

    def _cast(self, value, kind: str):
        if kind == "int":
            return np.asarray(value).astype(INT)
        if kind == "bool":
            return np.asarray(value, dtype=bool)
        return np.asarray(value).astype(self.dtype)

    # expressions ------------------------------------------------------------
    def evaluate(self, node):
        with np.errstate(all="ignore"):
            return self.value(node)

    def value(self, node):
        if isinstance(node, T.Num):
            return INT(node.value) if node.is_int else self.dtype.type(node.value)
        if isinstance(node, T.Name):
            return self.env[node.id]
        if isinstance(node, T.BinOp):
            return self._binary(node.op, self.value(node.left), self.value(node.right))
        if isinstance(node, T.UnaryOp):
            operand = self.value(node.operand)
            return {"-": np.negative, "+": np.positive, "not": np.logical_not}[node.op](operand)
        if isinstance(node, T.Compare):
            left, right = self._promote(self.value(node.left), self.value(node.right))
            return _COMPARE[node.op](left, right)
        if isinstance(node, T.BoolOp):
            values = [self.value(v) for v in node.values]
            combine = np.logical_and if node.op == "and" else np.logical_or
            result = values[0]
            for v in values[1:]:
                result = combine(result, v)
            return result
        if isinstance(node, T.IfExp):
            body, orelse = self._promote(self.value(node.body), self.value(node.orelse))
            return np.where(self.value(node.test), body, orelse)
        if isinstance(node, T.Call):
            return self._call(node)
        raise TypeError(f"cannot evaluate {type(node).__name__}")

    def _promote(self, a, b):
        if self.kind_of(a) == "int" and self.kind_of(b) == "int":
            return a, b
        if self.kind_of(a) == "bool" or self.kind_of(b) == "bool":
            return a, b
        return self._cast(a, "float"), self._cast(b, "float")

    def _binary(self, op, a, b):
        if op == "/":
            return self._cast(a, "float") / self._cast(b, "float")
        a, b = self._promote(a, b)
        if op == "%":
            return np.fmod(a, b)
        return _ARITH[op](a, b)

    def _call(self, node: T.Call):
        args = [self.value(a) for a in node.args]
        name = node.func
        if name in ("exp", "log", "sqrt", "tanh", "floor"):
            return getattr(np, name)(self._cast(args[0], "float"))
        if name == "abs":
            return np.abs(args[0])
        if name in ("min", "max"):
            a, b = self._promote(*args)
            return (np.minimum if name == "min" else np.maximum)(a, b)
        if name == "clip":
            x, lo = self._promote(args[0], args[1])
            x, hi = self._promote(np.maximum(x, lo), args[2])
            return np.minimum(x, hi)
        return self.draw(node, args)


def _kind_of(value) -> str:
    dtype = np.asarray(value).dtype
    if dtype == bool:
        return "bool"
    if np.issubdtype(dtype, np.integer):
        return "int"
    return "float"


_ARITH = {"+": np.add, "-": np.subtract, "*": np.multiply}
_COMPARE = {"<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal,
            "==": np.equal, "!=": np.not_equal}


def derived_params(model, params: dict, dt: float) -> dict[str, float]:
    """Evaluate a model's derived params on the host in float64."""
    env = {**{k: np.float64(v) for k, v in params.items()}, "dt": np.float64(dt)}
    out = {}
    for name, _ in model.derived:
        value = float(Evaluator(env, np.float64).evaluate(model.parsed["derived." + name]))
        if not np.isfinite(value):
            raise ValueError(f"model {model.name!r}: derived param {name!r} is {value} "
                             f"for params {params} and dt={dt}")
        env[name] = np.float64(value)
        out[name] = value
    return out
