"""Type checker for model code.

Types: ``float`` (the network's scalar format), ``int``, ``bool``. Rules:

* a name must be a param, derived param, var, input or builtin of the scope, or
  a local declared by an earlier top-level assignment (``tmp = ...``);
  a new local may not be introduced inside an ``if`` (declare it before);
* params, derived params, inputs and builtins (``t``, ``dt``, ``step``,
  ``batch``) are read-only;
* ``+ - * %`` on int and int give int, anything with float gives float;
  ``/`` always gives float; ``%`` is C's truncated remainder (``fmod``);
* conditions (``if``, ``x if c else y``, ``and``/``or``/``not``) must be bool;
  arithmetic on bool is an error;
* a float may not be stored into an int var (no silent truncation);
* only the functions of the scope's whitelist may be called, with their arity.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import tree as T
from .functions import FUNCTIONS
from .parse import ModelCodeError


@dataclass(frozen=True)
class Symbol:
    type: str
    writable: bool
    kind: str  # "param", "derived", "var", "input", "builtin", "local", ...


@dataclass
class Scope:
    """Names visible to one code field, and the functions it may call."""

    model: str
    field: str
    source: str
    symbols: dict[str, Symbol]
    functions: frozenset[str]
    locals: dict[str, str] = field(default_factory=dict)


_HINTS = {
    "deliver_pre": " (only in synapse code of a weight-update model that sets pre_target)",
    "deliver_delayed": " (only in synapse code of a projection with max_dendritic_delay > 0)",
    "deliver": " (only in synapse code)",
}


def promote(a: str, b: str) -> str:
    return "int" if a == b == "int" else "float"


class _Checker:
    def __init__(self, scope: Scope):
        self.scope = scope

    def error(self, node, message: str) -> ModelCodeError:
        s = self.scope
        return ModelCodeError(s.model, s.field, s.source, node.line or 1, node.col, message)

    def lookup(self, node: T.Name) -> str:
        if node.id in self.scope.locals:
            return self.scope.locals[node.id]
        sym = self.scope.symbols.get(node.id)
        if sym is None:
            known = ", ".join(sorted(self.scope.symbols)) or "none"
            raise self.error(node, f"unknown name '{node.id}' (known names: {known})")
        return sym.type

    # statements -------------------------------------------------------------
    def block(self, stmts, top: bool):
        for stmt in stmts:
            if isinstance(stmt, T.Assign):
                self.assign(stmt, top)
            elif isinstance(stmt, T.If):
                self.condition(stmt.test)
                self.block(stmt.body, False)
                self.block(stmt.orelse, False)
            elif isinstance(stmt, T.ExprStmt):
                result = self.call(stmt.call)
                if result is not None:
                    raise self.error(stmt, f"the result of '{stmt.call.func}()' is not used")
            else:  # pragma: no cover - parser produces only these
                raise self.error(stmt, f"unexpected statement {type(stmt).__name__}")

    def assign(self, stmt: T.Assign, top: bool):
        value = self.expr(stmt.value)
        if value is None:
            raise self.error(stmt.value, "this call has no value")
        target = self.target_type(stmt, top, value)
        if stmt.op is not None:
            self.arith_operand(stmt, target)
            self.arith_operand(stmt.value, value)
            value = "float" if stmt.op == "/" else promote(target, value)
        if target == "int" and value != "int":
            raise self.error(stmt, f"cannot store a {value} value in int '{stmt.target}'")
        if target == "float" and value == "bool":
            raise self.error(stmt, f"cannot store a bool value in float '{stmt.target}'")
        if target == "bool" and value != "bool":
            raise self.error(stmt, f"cannot store a {value} value in bool '{stmt.target}'")

    def target_type(self, stmt: T.Assign, top: bool, value: str) -> str:
        name = stmt.target
        if not name.isascii():
            raise self.error(stmt, f"name '{name}' must be ASCII")
        if name in self.scope.locals:
            return self.scope.locals[name]
        sym = self.scope.symbols.get(name)
        if sym is not None:
            if not sym.writable:
                raise self.error(stmt, f"cannot assign to {sym.kind} '{name}' (read-only here)")
            return sym.type
        if stmt.op is not None:
            raise self.error(stmt, f"unknown name '{name}'")
        if not top:
            raise self.error(
                stmt, f"new local '{name}' inside an if: assign it before the if to declare it"
            )
        self.scope.locals[name] = value
        return value

    # expressions ------------------------------------------------------------
    def condition(self, node):
        kind = self.expr(node)
        if kind != "bool":
            raise self.error(node, f"condition must be bool (a comparison), got {kind}")

    def arith_operand(self, node, kind):
        if kind not in ("int", "float"):
            raise self.error(node, f"arithmetic on a {kind} value")

    def expr(self, node):
        if isinstance(node, T.Num):
            return "int" if node.is_int else "float"
        if isinstance(node, T.Name):
            return self.lookup(node)
        if isinstance(node, T.BinOp):
            left, right = self.expr(node.left), self.expr(node.right)
            self.arith_operand(node.left, left)
            self.arith_operand(node.right, right)
            return "float" if node.op == "/" else promote(left, right)
        if isinstance(node, T.UnaryOp):
            kind = self.expr(node.operand)
            if node.op == "not":
                self.condition(node.operand)
                return "bool"
            self.arith_operand(node.operand, kind)
            return kind
        if isinstance(node, T.Compare):
            self.arith_operand(node.left, self.expr(node.left))
            self.arith_operand(node.right, self.expr(node.right))
            return "bool"
        if isinstance(node, T.BoolOp):
            for value in node.values:
                self.condition(value)
            return "bool"
        if isinstance(node, T.IfExp):
            self.condition(node.test)
            body, orelse = self.expr(node.body), self.expr(node.orelse)
            if "bool" in (body, orelse):
                if body != orelse:
                    raise self.error(node, "both branches must be bool or both numbers")
                return "bool"
            return promote(body, orelse)
        if isinstance(node, T.Call):
            return self.call(node)
        raise self.error(node, f"unexpected expression {type(node).__name__}")  # pragma: no cover

    def call(self, node: T.Call):
        fn = FUNCTIONS.get(node.func)
        if fn is None or node.func not in self.scope.functions:
            allowed = ", ".join(sorted(self.scope.functions))
            where = "unknown function" if fn is None else "function not allowed here"
            hint = _HINTS.get(node.func, "") if fn is not None else ""
            raise self.error(node, f"{where} '{node.func}'{hint} (allowed: {allowed})")
        if len(node.args) != len(fn.args):
            raise self.error(
                node, f"'{fn.name}' takes {len(fn.args)} argument(s), got {len(node.args)}"
            )
        kinds = [self.expr(a) for a in node.args]
        for arg, kind, want in zip(node.args, kinds, fn.args):
            self.arith_operand(arg, kind)
            if want == "int" and kind != "int":
                raise self.error(arg, f"'{fn.name}' needs an int here, got {kind}")
        if fn.result == "num":
            result = "int"
            for kind in kinds:
                result = promote(result, kind)
            return result
        return fn.result


def check_code(stmts: tuple, scope: Scope) -> dict[str, str]:
    """Check a statement list; returns the locals it declares (name -> type)."""
    _Checker(scope).block(stmts, True)
    return dict(scope.locals)


def check_expr(expr, scope: Scope, want: str | None = None) -> str:
    """Check one expression; with ``want``, require that type."""
    checker = _Checker(scope)
    kind = checker.expr(expr)
    if kind is None:
        raise checker.error(expr, "this call has no value")
    if want == "bool" and kind != "bool":
        raise checker.error(expr, f"must be a condition (bool), got {kind}")
    if want in ("float", "int") and kind not in ("float", "int"):
        raise checker.error(expr, f"must be a number, got {kind}")
    if want == "int" and kind != "int":
        raise checker.error(expr, f"must be an int, got {kind}")
    return kind
