"""The whitelist of functions callable from model code.

Each entry gives the argument kinds and the result type. Types are ``"float"``
(the network's scalar format), ``"int"`` and ``"bool"``; ``"num"`` accepts int
or float and the result follows the usual promotion (int op int -> int,
anything with float -> float). ``None`` as result marks a statement-only call.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Function:
    name: str
    args: tuple[str, ...]
    result: str | None
    doc: str


_TABLE = [
    Function("exp", ("float",), "float", "e**x"),
    Function("log", ("float",), "float", "natural logarithm"),
    Function("sqrt", ("float",), "float", "square root"),
    Function("tanh", ("float",), "float", "hyperbolic tangent"),
    Function("floor", ("float",), "float", "largest integer value <= x, as a float"),
    Function("abs", ("num",), "num", "absolute value"),
    Function("min", ("num", "num"), "num", "smaller of two"),
    Function("max", ("num", "num"), "num", "larger of two"),
    Function("clip", ("num", "num", "num"), "num", "clip(x, lo, hi) = min(max(x, lo), hi)"),
    Function("uniform", (), "float", "U(0,1), open interval, from one Philox word"),
    Function("normal", (), "float", "N(0,1) (Box-Muller on two Philox words)"),
    Function("exponential", (), "float", "Exp(1) = -log(uniform())"),
    Function("poisson", ("float",), "int", "Poisson count with mean lam (inversion, one word)"),
    Function("deliver", ("float",), None, "add x to the target's input this step"),
    Function("deliver_delayed", ("float", "int"), None, "add x to the target's input d steps later"),
    Function("deliver_pre", ("float",), None, "add x to the source population's pre_target input"),
]

FUNCTIONS: dict[str, Function] = {f.name: f for f in _TABLE}
RANDOM_FUNCTIONS = frozenset({"uniform", "normal", "exponential", "poisson"})
DELIVERY_FUNCTIONS = frozenset({"deliver", "deliver_delayed", "deliver_pre"})
TRANSCENDENTAL_FUNCTIONS = frozenset({"exp", "log", "sqrt", "tanh"})
MATH_FUNCTIONS = frozenset(FUNCTIONS) - RANDOM_FUNCTIONS - DELIVERY_FUNCTIONS
