"""Parse model code (Python syntax) with :mod:`ast` into :mod:`spikeforge.lang.tree`.

Allowed: assignments and augmented assignments to plain names, ``if``/``elif``/
``else``, conditional expressions, arithmetic (``+ - * / %``, unary ``-``),
comparisons (chains become ``and``), ``and``/``or``/``not``, numeric literals,
names, and calls of whitelisted functions (checked by :mod:`.check`), plus
``pass``. Everything else (imports, attributes, subscripts, lambdas, loops,
strings, ``**``, ...) is rejected with a :class:`ModelCodeError` that shows the
offending line with a caret.
"""

from __future__ import annotations

import ast
import contextlib
import math
import textwrap

from . import tree as T
from .functions import RANDOM_FUNCTIONS

MAX_SITES = 256  # call sites share counter word c3 with the batch index

_BINOPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Mod: "%"}
_CMPOPS = {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==", ast.NotEq: "!="}
_UNOPS = {ast.USub: "-", ast.UAdd: "+", ast.Not: "not"}
_BOOLOPS = {ast.And: "and", ast.Or: "or"}

_DESCRIBE = {
    ast.Import: "imports", ast.ImportFrom: "imports", ast.Attribute: "attribute access",
    ast.Subscript: "subscripts", ast.Lambda: "lambdas", ast.For: "loops", ast.While: "loops",
    ast.ListComp: "comprehensions", ast.FunctionDef: "function definitions",
    ast.Pow: "'**' (use exp/log or repeated multiplication)", ast.FloorDiv: "'//'",
    ast.List: "lists", ast.Tuple: "tuples", ast.Dict: "dicts", ast.Return: "return",
    ast.BitAnd: "bitwise operators", ast.BitOr: "bitwise operators",
    ast.BitXor: "bitwise operators", ast.LShift: "bitwise operators",
    ast.RShift: "bitwise operators", ast.MatMult: "'@'",
}
INT32 = (-(2**31), 2**31 - 1)


class ModelCodeError(ValueError):
    """An error in model code, located by model, field, line and column."""

    def __init__(self, model: str, field: str, source: str, line: int, col: int, message: str,
                 owner: str = ""):
        self.model, self.field, self.line, self.col = model, field, line, col
        self.message, self.source, self.owner = message, source, owner
        lines = source.splitlines() or [""]
        text = lines[line - 1] if 0 < line <= len(lines) else ""
        caret = " " * max(col, 0) + "^"
        where = f"{owner}: " if owner else ""
        super().__init__(f"{where}{model}.{field}, line {line}, column {col + 1}: {message}"
                         f"\n    {text}\n    {caret}")

    def within(self, owner: str) -> ModelCodeError:
        """The same error, its message prefixed by the network node that uses the model."""
        return ModelCodeError(self.model, self.field, self.source, self.line, self.col,
                              self.message, owner)


@contextlib.contextmanager
def errors_named(owner: str):
    """Re-raise a ModelCodeError of the block prefixed by ``owner`` (unchanged if empty)."""
    try:
        yield
    except ModelCodeError as err:
        raise (err.within(owner) if owner else err) from None


class _Parser:
    def __init__(self, model: str, field: str, source: str):
        self.model, self.field, self.source = model, field, source
        self.next_site = 0

    def error(self, node, message: str) -> ModelCodeError:
        line = getattr(node, "lineno", 1)
        col = getattr(node, "col_offset", 0)
        return ModelCodeError(self.model, self.field, self.source, line, col, message)

    def loc(self, node) -> dict:
        return {"line": node.lineno, "col": node.col_offset}

    def unsupported(self, node) -> ModelCodeError:
        what = _DESCRIBE.get(type(node), f"'{type(node).__name__}'")
        return self.error(node, f"unsupported syntax: {what} not allowed in model code")

    # statements -------------------------------------------------------------
    def statements(self, nodes) -> tuple:
        out = []
        for node in nodes:
            if isinstance(node, ast.Pass):
                continue
            out.append(self.statement(node))
        return tuple(out)

    def statement(self, node):
        if isinstance(node, ast.Assign):
            if len(node.targets) != 1 or not isinstance(node.targets[0], ast.Name):
                raise self.error(node, "only assignment to a single plain name is allowed")
            return T.Assign(node.targets[0].id, self.expr(node.value), **self.loc(node))
        if isinstance(node, ast.AugAssign):
            if not isinstance(node.target, ast.Name):
                raise self.error(node, "only assignment to a single plain name is allowed")
            op = _BINOPS.get(type(node.op))
            if op is None:
                what = _DESCRIBE.get(type(node.op), "this operator")
                raise self.error(node, f"unsupported syntax: {what} not allowed in model code")
            return T.Assign(node.target.id, self.expr(node.value), op, **self.loc(node))
        if isinstance(node, ast.If):
            return T.If(
                self.expr(node.test), self.statements(node.body), self.statements(node.orelse),
                **self.loc(node),
            )
        if isinstance(node, ast.Expr):
            value = node.value
            if isinstance(value, ast.Call):
                return T.ExprStmt(self.call(value), **self.loc(node))
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                raise self.error(node, "unsupported syntax: strings are not allowed in model code")
            raise self.error(node, "an expression alone is not a statement (did you mean '='?)")
        raise self.unsupported(node)

    # expressions ------------------------------------------------------------
    def expr(self, node):
        method = getattr(self, "expr_" + type(node).__name__, None)
        if method is None:
            raise self.unsupported(node)
        return method(node)

    def expr_Constant(self, node):
        value = node.value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            kind = "strings" if isinstance(value, str) else f"literal {value!r}"
            raise self.error(node, f"unsupported syntax: {kind} not allowed in model code")
        if isinstance(value, int) and not INT32[0] <= value <= INT32[1]:
            raise self.error(node, f"int literal {value} does not fit 32 bits")
        if isinstance(value, float) and not math.isfinite(value):
            raise self.error(node, "float literal is not finite")
        return T.Num(float(value), isinstance(value, int), **self.loc(node))

    def expr_Name(self, node):
        if not node.id.isascii():
            raise self.error(node, f"name '{node.id}' must be ASCII")
        if node.id in ("True", "False", "None"):
            raise self.error(node, f"'{node.id}' is not allowed; use a comparison")
        return T.Name(node.id, **self.loc(node))

    def expr_BinOp(self, node):
        op = _BINOPS.get(type(node.op))
        if op is None:
            what = _DESCRIBE.get(type(node.op), "this operator")
            raise self.error(node, f"unsupported syntax: {what} not allowed in model code")
        return T.BinOp(op, self.expr(node.left), self.expr(node.right), **self.loc(node))

    def expr_UnaryOp(self, node):
        op = _UNOPS.get(type(node.op))
        if op is None:
            raise self.error(node, "unsupported syntax: bitwise operators are not allowed")
        return T.UnaryOp(op, self.expr(node.operand), **self.loc(node))

    def expr_BoolOp(self, node):
        values = tuple(self.expr(v) for v in node.values)
        return T.BoolOp(_BOOLOPS[type(node.op)], values, **self.loc(node))

    def expr_Compare(self, node):
        operands = [node.left, *node.comparators]
        pairs = []
        for op, left, right in zip(node.ops, operands, operands[1:]):
            symbol = _CMPOPS.get(type(op))
            if symbol is None:
                raise self.error(node, "unsupported syntax: 'is'/'in' comparisons")
            pairs.append(T.Compare(symbol, self.expr(left), self.expr(right), **self.loc(node)))
        return pairs[0] if len(pairs) == 1 else T.BoolOp("and", tuple(pairs), **self.loc(node))

    def expr_IfExp(self, node):
        return T.IfExp(
            self.expr(node.test), self.expr(node.body), self.expr(node.orelse), **self.loc(node)
        )

    def expr_Call(self, node):
        return self.call(node)

    def call(self, node) -> T.Call:
        if not isinstance(node.func, ast.Name):
            raise self.error(node, "only calls of plain function names are allowed")
        if node.keywords:
            raise self.error(node, "keyword arguments are not allowed")
        args = tuple(self.expr(a) for a in node.args)
        site = -1
        if node.func.id in RANDOM_FUNCTIONS:
            if self.next_site >= MAX_SITES:
                raise self.error(node, f"more than {MAX_SITES} random draws in one code field")
            site, self.next_site = self.next_site, self.next_site + 1
        return T.Call(node.func.id, args, site, **self.loc(node))


def normalise_source(model: str, field: str, source, mode: str) -> str:
    """The text that line/column numbers refer to: dedented code, stripped expressions."""
    if not isinstance(source, str):
        kind = type(source).__name__
        raise ModelCodeError(model, field, "", 1, 0, f"code must be a string, got {kind}")
    return textwrap.dedent(source) if mode == "exec" else source.strip()


def _parse(model: str, field: str, source: str, mode: str):
    try:
        return ast.parse(source, mode=mode)
    except SyntaxError as exc:
        line, col = exc.lineno or 1, (exc.offset or 1) - 1
        raise ModelCodeError(model, field, source, line, col, f"syntax error: {exc.msg}") from None


def parse_code(source: str, model: str = "model", field: str = "code") -> tuple:
    """Parse a block of statements; returns a tuple of statement nodes."""
    source = normalise_source(model, field, source, "exec")
    return _Parser(model, field, source).statements(_parse(model, field, source, "exec").body)


def parse_expr(source: str, model: str = "model", field: str = "expr"):
    """Parse one expression (thresholds, derived params)."""
    source = normalise_source(model, field, source, "eval")
    return _Parser(model, field, source).expr(_parse(model, field, source, "eval").body)
