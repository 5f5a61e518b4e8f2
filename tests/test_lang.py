"""Tests for the model language (spikeforge.lang): what the parser rejects and
accepts, the type checker's rules, the error format, and the evaluator's semantics.

Every ``ModelCodeError`` has the form::

    <model>.<field>, line <L>, column <C>: <reason>
        <the offending source line>
        <spaces>^            (caret under column C, 1-based)

and carries ``model``, ``field``, ``line`` (1-based) and ``col`` (0-based)."""

from __future__ import annotations

import numpy as np
import pytest
import spikeforge as sf
from spikeforge.lang import (
    FUNCTIONS,
    RANDOM_FUNCTIONS,
    Scope,
    Symbol,
    check_code,
    parse_code,
    parse_expr,
)
from spikeforge.lang import tree as T
from spikeforge.lang.evaluate import Evaluator
from spikeforge.scopes import neuron_scope

V = sf.Var


# helpers --------------------------------------------------------------------------
def assert_code_error(err, model, field, line, col, source_line, *reasons):
    """``col`` is the 1-based column printed in the message."""
    assert isinstance(err, sf.ModelCodeError)
    lines = str(err).split("\n")
    assert len(lines) == 3, str(err)
    where = f"{err.owner}: " if err.owner else ""  # the population/projection using it
    assert lines[0].startswith(f"{where}{model}.{field}, line {line}, column {col}: "), lines[0]
    assert lines[1] == "    " + source_line
    assert lines[2] == "    " + " " * (col - 1) + "^"
    for reason in reasons:
        assert reason in lines[0], (reason, lines[0])
    assert (err.model, err.field, err.line, err.col) == (model, field, line, col - 1)


def cell(sim="", threshold="", reset="", inputs=()):
    """A neuron model with a param, a derived param, a float and an int var."""
    return sf.NeuronModel(
        "Cell", params=("tau",), derived={"k": "exp(-dt / tau)"},
        vars=(V("v", default=0.0), V("n", type="int", default=0)),
        sim=sim, threshold=threshold, reset=reset, inputs=inputs)


def checked_cell(**code):
    """Assemble a population: this type-checks the model's code."""
    return sf.Population("P", cell(**code), 3, params={"tau": 10.0})


def if_net():
    net = sf.NetworkBuilder(dt=1.0)
    net.population("A", sf.IF, 4, params={"v_thresh": 1.0})
    net.population("B", sf.IF, 4, params={"v_thresh": 1.0})
    return net


# rejected syntax -----------------------------------------------------------------
REJECTED = [
    ("import os", 1, 1, "import os", "imports"),
    ("from os import path", 1, 1, "from os import path", "imports"),
    ("v = os.path", 1, 5, "v = os.path", "attribute access"),
    ("v = v.real", 1, 5, "v = v.real", "attribute access"),
    ("v = v[0]", 1, 5, "v = v[0]", "subscripts"),
    ("v = lambda: 1", 1, 5, "v = lambda: 1", "lambdas"),
    ("for i in v:\n    v = 1", 1, 1, "for i in v:", "loops"),
    ("while v > 0:\n    v = 1", 1, 1, "while v > 0:", "loops"),
    ("v = 'x'", 1, 5, "v = 'x'", "strings"),
    ("'a docstring'", 1, 1, "'a docstring'", "strings"),
    ("v = v ** 2", 1, 5, "v = v ** 2", "'**'"),
    ("v = v // 2", 1, 5, "v = v // 2", "'//'"),
    ("def f():\n    v = 1", 1, 1, "def f():", "function definitions"),
    ("v = True", 1, 5, "v = True", "True", "not allowed"),
    ("v = False", 1, 5, "v = False", "False", "not allowed"),
    ("v = None", 1, 5, "v = None", "None", "not allowed"),
    ("if True:\n    v = 1", 1, 4, "if True:", "True", "not allowed"),
    ("v = exp(x=1.0)", 1, 5, "v = exp(x=1.0)", "keyword arguments"),
    ("a = b = 1", 1, 1, "a = b = 1", "single plain name"),
    ("a, b = 1, 2", 1, 1, "a, b = 1, 2", "single plain name"),
    ("v = ~n", 1, 5, "v = ~n", "bitwise"),
    ("v = [1]", 1, 5, "v = [1]", "lists"),
    ("v = v if v > 0 else os.x", 1, 21, "v = v if v > 0 else os.x", "attribute access"),
    ("v = 1\nif v > 0:\n    v = v ** 2", 3, 9, "    v = v ** 2", "'**'"),
    ("v = 1\n\nv = 2 +", 3, 8, "v = 2 +", "syntax error"),
]


@pytest.mark.parametrize("case", REJECTED, ids=[c[0].split("\n")[-1] for c in REJECTED])
def test_rejected_syntax_at_model_definition(case):
    code, line, col, text, *reasons = case
    with pytest.raises(sf.ModelCodeError) as info:
        sf.NeuronModel("Bad", vars=(V("v", default=0.0), V("n", type="int", default=0)), sim=code)
    assert_code_error(info.value, "Bad", "sim", line, col, text, *reasons)


def test_rejected_syntax_in_expression_fields():
    with pytest.raises(sf.ModelCodeError) as info:
        sf.NeuronModel("Bad", vars=(V("v", default=0.0),), threshold="  v ** 2 > 1 ")
    assert_code_error(info.value, "Bad", "threshold", 1, 1, "v ** 2 > 1", "'**'")
    with pytest.raises(sf.ModelCodeError) as info:
        sf.NeuronModel("Bad", params=("tau",), derived={"k": "tau[0]"})
    assert_code_error(info.value, "Bad", "derived[k]", 1, 1, "tau[0]", "subscripts")


def test_lines_refer_to_dedented_source():
    code = """
    v = 1.0
    if v > 0:
        v = v // 2
    """
    with pytest.raises(sf.ModelCodeError) as info:
        sf.NeuronModel("Indented", vars=(V("v", default=0.0),), sim=code)
    assert_code_error(info.value, "Indented", "sim", 4, 9, "    v = v // 2", "'//'")


@pytest.mark.parametrize("op", ["&", "|", "^", "<<", ">>"])
def test_binary_bitwise_operators_named_in_message(op):
    code = f"n = n {op} 1"
    with pytest.raises(sf.ModelCodeError) as info:
        sf.NeuronModel("Bad", vars=(V("n", type="int", default=0),), sim=code)
    assert_code_error(info.value, "Bad", "sim", 1, 5, code, "bitwise")


@pytest.mark.parametrize("op", ["&", "|", "^", "<<", ">>"])
def test_binary_bitwise_operators_rejected(op):
    code = f"n = n {op} 1"
    with pytest.raises(sf.ModelCodeError) as info:
        sf.NeuronModel("Bad", vars=(V("n", type="int", default=0),), sim=code)
    assert_code_error(info.value, "Bad", "sim", 1, 5, code, "unsupported syntax")


@pytest.mark.parametrize("code,shown", [("v //= 2", "'//'"), ("v **= 2", "'**'")])
def test_augmented_forbidden_operator_named(code, shown):
    with pytest.raises(sf.ModelCodeError) as info:
        sf.NeuronModel("Bad", vars=(V("v", default=0.0),), sim=code)
    assert_code_error(info.value, "Bad", "sim", 1, 1, code, shown)


@pytest.mark.parametrize("code,text", [
    ("v = 1e400", "v = 1e400"),  # overflows to inf
    ("n = 99999999999999999999", "n = 99999999999999999999"),  # outside int32
])
def test_out_of_range_literals_rejected(code, text):
    with pytest.raises(sf.ModelCodeError) as info:
        sf.NeuronModel("Big", vars=(V("v", default=0.0), V("n", type="int", default=0)), sim=code)
    assert_code_error(info.value, "Big", "sim", 1, 5, text)


# code injection ---------------------------------------------------------------------
@pytest.mark.parametrize("code,col,reason", [
    ('v = 1; } system("x"); {', 8, "syntax error"),
    ("v = 1 /* */", 8, "syntax error"),
    ('v = 1\nsystem("rm -rf /")', 8, "strings"),
    ('v = "#include <stdlib.h>"', 5, "strings"),
    ("v = 1 // comment", 5, "'//'"),
    ('v = 1\x00', None, "null bytes"),  # column differs between Python versions
])
def test_c_injection_rejected_at_model_definition(code, col, reason):
    with pytest.raises(sf.ModelCodeError) as info:
        sf.NeuronModel("Inject", vars=(V("v", default=0.0),), sim=code)
    err = info.value
    assert (err.model, err.field) == ("Inject", "sim")
    assert reason in err.message
    assert col is None or err.col == col - 1


@pytest.mark.parametrize("code", [
    "#include <stdlib.h>\nv = 1",
    "v = 1  #include <stdlib.h>",
    "#define v system\nv = 1",
])
def test_c_preprocessor_lines_are_python_comments_and_never_reach_the_tree(code):
    """'#...' is a Python comment: the parser drops it, and only the tree is rendered."""
    model = sf.NeuronModel("Inject", vars=(V("v", default=0.0),), sim=code)
    assert model.parsed["sim"] == (T.Assign("v", T.Num(1.0, True)),)


def test_c_injection_in_synapse_and_custom_update_code():
    with pytest.raises(sf.ModelCodeError) as info:
        sf.WeightUpdateModel("Syn", vars=(V("w"),), pre_spike='deliver(w); } exit(1); {')
    assert (info.value.model, info.value.field) == ("Syn", "pre_spike")
    net = if_net()
    before = net.network()
    with pytest.raises(sf.ModelCodeError) as info:
        net.custom_update("Zero", "A", 'v = 0.0 /* */ ; asm("nop")', var_refs={"v": "A.v"})
    assert (info.value.model, info.value.field) == ("Zero", "code")
    assert net.network() is before


# type checking ----------------------------------------------------------------------
def test_unknown_name_lists_known_names():
    with pytest.raises(sf.ModelCodeError) as info:
        checked_cell(sim="v = w + 1")
    assert_code_error(info.value, "Cell", "sim", 1, 5, "v = w + 1", "unknown name 'w'")
    known = info.value.message.split("known names: ")[1].rstrip(")").split(", ")
    assert known == ["batch", "dt", "i_syn", "k", "n", "step", "t", "tau", "v"]


@pytest.mark.parametrize("name,kind", [
    ("tau", "param"), ("k", "derived param"), ("i_syn", "input"), ("i_fb", "input"),
    ("t", "builtin"), ("dt", "builtin"), ("step", "builtin"), ("batch", "builtin"),
])
@pytest.mark.parametrize("op", ["=", "+="])
def test_read_only_names_cannot_be_assigned(name, kind, op):
    code = f"{name} {op} 1"
    with pytest.raises(sf.ModelCodeError) as info:
        checked_cell(sim=code, inputs=("i_fb",))
    assert_code_error(info.value, "Cell", "sim", 1, 1, code,
                      f"cannot assign to {kind} '{name}'", "read-only")


def test_read_only_neuron_vars_in_synapse_code():
    wu = sf.WeightUpdateModel("W", vars=(V("w", batched=False),), pre_spike="v_post = w")
    net = if_net()
    with pytest.raises(sf.ModelCodeError) as info:
        net.connect("A", "B", sf.Dense(), weight_update=wu, w=1.0)
    assert_code_error(info.value, "W", "pre_spike", 1, 1, "v_post = w",
                      "cannot assign to post neuron var 'v_post'")


@pytest.mark.parametrize("code,col,reason", [
    ("v = foo(1)", 5, "unknown function 'foo'"),
    ("v = printf(v)", 5, "unknown function 'printf'"),
    ("v = exp(1.0, 2.0)", 5, "'exp' takes 1 argument(s), got 2"),
    ("v = exp()", 5, "'exp' takes 1 argument(s), got 0"),
    ("v = clip(v, 0.0)", 5, "'clip' takes 3 argument(s), got 2"),
    ("v = uniform(1.0)", 5, "'uniform' takes 0 argument(s), got 1"),
    ("n = poisson()", 5, "'poisson' takes 1 argument(s), got 0"),
    ("exp(v)", 1, "result of 'exp()' is not used"),
])
def test_unknown_functions_and_arity(code, col, reason):
    with pytest.raises(sf.ModelCodeError) as info:
        checked_cell(sim=code)
    assert_code_error(info.value, "Cell", "sim", 1, col, code, reason)
    if "unknown function" in reason:
        allowed = info.value.message.split("allowed: ")[1].rstrip(")").split(", ")
        assert "exp" in allowed and "uniform" in allowed and "deliver" not in allowed


@pytest.mark.parametrize("code,col", [("deliver(v)", 1), ("v = deliver(1.0)", 5),
                                      ("deliver_delayed(v, 1)", 1), ("deliver_pre(v)", 1)])
def test_delivery_outside_synapse_code_in_neuron(code, col):
    with pytest.raises(sf.ModelCodeError) as info:
        checked_cell(sim=code)
    func = code.split("(")[0].split()[-1]
    assert_code_error(info.value, "Cell", "sim", 1, col, code,
                      f"function not allowed here '{func}'")


def test_delivery_outside_synapse_code_in_postsynaptic_and_trace_code():
    ps = sf.PostsynapticModel("PS", vars=(V("g", default=0.0),), code="g = inp\ndeliver(g)",
                              current="g")
    net = if_net()
    with pytest.raises(sf.ModelCodeError) as info:
        net.connect("A", "B", sf.Dense(), postsynaptic=ps, w=1.0)
    assert_code_error(info.value, "PS", "code", 2, 1, "deliver(g)", "not allowed here 'deliver'")
    wu = sf.WeightUpdateModel("Tr", vars=(V("w", batched=False),), pre_vars=(V("x", default=0.0),),
                              pre_spike="deliver(w)", pre_dynamics="x = x * 0.5\ndeliver(x)")
    with pytest.raises(sf.ModelCodeError) as info:
        net.connect("A", "B", sf.Dense(), weight_update=wu, w=1.0)
    assert_code_error(info.value, "Tr", "pre_dynamics", 2, 1, "deliver(x)",
                      "not allowed here 'deliver'")


FEEDBACK = sf.WeightUpdateModel("Feedback", vars=(V("w", batched=False),),
                                pre_spike="deliver(w)\ndeliver_pre(w)")


def test_deliver_pre_without_pre_target_rejected():
    net = if_net()
    before = net.network()
    with pytest.raises(sf.ModelCodeError) as info:
        net.connect("A", "B", sf.Dense(), weight_update=FEEDBACK, w=1.0)
    assert_code_error(info.value, "Feedback", "pre_spike", 2, 1, "deliver_pre(w)",
                      "not allowed here 'deliver_pre'")
    assert net.network() is before


def test_deliver_pre_without_pre_target_explains_pre_target():
    with pytest.raises(sf.ModelCodeError, match="pre_target"):
        if_net().connect("A", "B", sf.Dense(), weight_update=FEEDBACK, w=1.0)


def test_deliver_pre_with_pre_target_accepted_and_checked_against_inputs():
    wu = sf.WeightUpdateModel("Fb", vars=(V("w", batched=False),),
                              pre_spike="deliver_pre(w)", pre_target="i_fb")
    net = if_net()
    with pytest.raises(ValueError, match="projection 'A_B': pre_target 'i_fb' is not an input"):
        net.connect("A", "B", sf.Dense(), weight_update=wu, w=1.0)
    fb_model = sf.NeuronModel("FbCell", vars=(V("v", default=0.0),), inputs=("i_fb",),
                              sim="v = i_fb")
    net.population("F", fb_model, 4)
    proj = net.connect("F", "B", sf.Dense(), weight_update=wu, w=1.0)
    assert proj.uses("deliver_pre")


def test_deliver_delayed_needs_max_dendritic_delay():
    net = if_net()
    before = net.network()
    with pytest.raises(ValueError) as info:
        net.connect("A", "B", sf.Dense(), weight_update=sf.StaticPulseDendriticDelay, w=1.0)
    assert not isinstance(info.value, sf.ModelCodeError)
    assert "projection 'A_B'" in str(info.value)
    assert "deliver_delayed" in str(info.value) and "max_dendritic_delay" in str(info.value)
    assert net.network() is before
    net.connect("A", "B", sf.Dense(), weight_update=sf.StaticPulseDendriticDelay, w=1.0,
                max_dendritic_delay=2)
    assert len(net.network().projections) == 1


@pytest.mark.parametrize("code,col,reason", [
    ("n = 1.5", 1, "cannot store a float value in int 'n'"),
    ("n = v", 1, "cannot store a float value in int 'n'"),
    ("n = 6 / 3", 1, "cannot store a float value in int 'n'"),
    ("n /= 2", 1, "cannot store a float value in int 'n'"),
    ("n += 0.5", 1, "cannot store a float value in int 'n'"),
    ("n = floor(v)", 1, "cannot store a float value in int 'n'"),
    ("n = 1 if v > 0 else 2.0", 1, "cannot store a float value in int 'n'"),
    ("v = v > 0", 1, "cannot store a bool value in float 'v'"),
    ("if v:\n    v = 1", 4, "condition must be bool"),
    ("if n:\n    v = 1", 4, "condition must be bool"),
    ("v = 1.0 if n else 2.0", 12, "condition must be bool"),
    ("v = (v > 1) + 1", 6, "arithmetic on a bool value"),
    ("v = -(v > 1)", 7, "arithmetic on a bool value"),
    ("v = not v", 9, "condition must be bool"),
    ("v = exp(v > 0)", 9, "arithmetic on a bool value"),
    ("v = (v > 0) if v > 0 else 1.0", 5, "both branches must be bool or both numbers"),
])
def test_type_errors(code, col, reason):
    with pytest.raises(sf.ModelCodeError) as info:
        checked_cell(sim=code)
    assert_code_error(info.value, "Cell", "sim", 1, col, code.split("\n")[0], reason)


def test_new_local_inside_if_rejected():
    code = "if v > 0:\n    tmp = 1.0\nv = tmp"
    with pytest.raises(sf.ModelCodeError) as info:
        checked_cell(sim=code)
    assert_code_error(info.value, "Cell", "sim", 2, 5, "    tmp = 1.0",
                      "new local 'tmp' inside an if")
    code = "if v > 0:\n    v = 1.0\nelse:\n    tmp = 1.0"
    with pytest.raises(sf.ModelCodeError) as info:
        checked_cell(sim=code)
    assert_code_error(info.value, "Cell", "sim", 4, 5, "    tmp = 1.0", "new local 'tmp'")


def test_threshold_must_be_bool_and_events_int():
    with pytest.raises(sf.ModelCodeError) as info:
        checked_cell(threshold="v + 1.0")
    assert_code_error(info.value, "Cell", "threshold", 1, 1, "v + 1.0", "must be a condition")
    model = sf.NeuronModel("Src", params=("lam",), events="lam * 2.0")
    with pytest.raises(sf.ModelCodeError) as info:
        sf.Population("S", model, 2, params={"lam": 1.0})
    assert_code_error(info.value, "Src", "events", 1, 1, "lam * 2.0", "must be an int")


# accepted code ------------------------------------------------------------------------
ALL_SYMBOLS = {"x": Symbol("float", True, "var"), "n": Symbol("int", True, "var")}


def full_scope(source):
    return Scope("M", "code", source, dict(ALL_SYMBOLS), frozenset(FUNCTIONS))


def call_text(fn, extra=0):
    args = ["n" if kind == "int" else "x" for kind in fn.args] + ["x"] * extra
    return f"{fn.name}({', '.join(args)})"


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_every_whitelisted_function_with_right_arity(name):
    fn = FUNCTIONS[name]
    code = call_text(fn) if fn.result is None else f"tmp = {call_text(fn)}"
    stmts = parse_code(code)
    local = check_code(stmts, full_scope(code))
    if fn.result is None:
        assert isinstance(stmts[0], T.ExprStmt)
    else:
        expected = {"num": "float", "float": "float", "int": "int"}[fn.result]
        assert local == {"tmp": expected}
    (call,) = T.calls(stmts)
    assert call.func == name and len(call.args) == len(fn.args)
    assert (call.site >= 0) == (name in RANDOM_FUNCTIONS)


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_every_whitelisted_function_with_wrong_arity(name):
    fn = FUNCTIONS[name]
    code = call_text(fn, extra=1)
    code = code if fn.result is None else f"tmp = {code}"
    with pytest.raises(sf.ModelCodeError) as info:
        check_code(parse_code(code, "M", "code"), full_scope(code))
    assert f"'{name}' takes {len(fn.args)} argument(s), got {len(fn.args) + 1}" in str(info.value)


def test_num_functions_keep_int_type():
    code = "a = abs(n)\nb = min(n, 2)\nc = clip(n, 0, 5)\nd = max(n, 1.5)\ne = poisson(2)"
    local = check_code(parse_code(code), full_scope(code))
    assert local == {"a": "int", "b": "int", "c": "int", "d": "float", "e": "int"}


def test_locals_declared_at_top_level():
    code = "tmp = v * 2.0\ncount = 3\nif v > 0:\n    tmp = 1.0\n    count += 1\nv = tmp + count"
    model = checked_cell(sim=code).model
    local = check_code(model.parsed["sim"], neuron_scope(model, "sim"))
    assert local == {"tmp": "float", "count": "int"}
    with pytest.raises(sf.ModelCodeError, match="cannot store a float value in int 'count'"):
        checked_cell(sim="count = 3\ncount = 0.5")


def test_augmented_assignment_parses_to_assign_with_op():
    stmts = parse_code("v += 1\nv -= k\nv *= 2.0\nv /= tau\nn %= 3")
    assert [(s.target, s.op) for s in stmts] == [
        ("v", "+"), ("v", "-"), ("v", "*"), ("v", "/"), ("n", "%")]
    checked_cell(sim="v += 1\nv -= k\nv *= 2.0\nv /= tau\nn %= 3")


def test_if_elif_else():
    code = "if v > 1:\n    v = 1.0\nelif v < -1:\n    v = -1.0\nelse:\n    v = 0.0"
    (stmt,) = parse_code(code)
    assert isinstance(stmt, T.If) and len(stmt.body) == 1
    (inner,) = stmt.orelse
    assert isinstance(inner, T.If) and inner.test == T.Compare("<", T.Name("v"), T.UnaryOp(
        "-", T.Num(1.0, True)))
    assert inner.orelse == (T.Assign("v", T.Num(0.0, False)),)
    checked_cell(sim=code)


def test_conditional_expression():
    expr = parse_expr("1.0 if v > 0 else 2")
    assert expr == T.IfExp(T.Compare(">", T.Name("v"), T.Num(0.0, True)), T.Num(1.0, False),
                           T.Num(2.0, True))
    checked_cell(sim="v = 1.0 if v > 0 else 2\nn = 1 if v > 0 else 2")


def test_chained_comparison_becomes_and():
    expr = parse_expr("0 < v <= 1")
    assert expr == T.BoolOp("and", (T.Compare("<", T.Num(0.0, True), T.Name("v")),
                                    T.Compare("<=", T.Name("v"), T.Num(1.0, True))))
    checked_cell(threshold="0 < v <= 1 < tau")


def test_pass_is_dropped():
    assert parse_code("if v > 0:\n    pass\nelse:\n    v = 1") == (
        T.If(T.Compare(">", T.Name("v"), T.Num(0.0, True)), (), (T.Assign("v", T.Num(1.0, True)),)),)


def test_random_call_sites_numbered_in_order():
    code = "x = uniform() + normal()\nif x > 0:\n    x = exponential()\nn = poisson(x)\nx = exp(x)"
    calls = sorted(T.calls(parse_code(code)), key=lambda c: (c.line, c.col))
    assert [(c.func, c.site) for c in calls] == [
        ("uniform", 0), ("normal", 1), ("exponential", 2), ("poisson", 3), ("exp", -1)]
    args = parse_expr("clip(uniform(), normal(), exponential())").args
    assert [a.site for a in args] == [0, 1, 2]


def test_random_call_sites_restart_per_field():
    model = sf.NeuronModel("R", vars=(V("v", default=0.0),), sim="v = uniform()\nv = normal()",
                           reset="v = normal()", threshold="v > uniform()")
    assert sorted(c.site for c in T.calls(model.parsed["sim"])) == [0, 1]
    assert [c.site for c in T.calls(model.parsed["reset"])] == [0]
    assert [c.site for c in T.calls(model.parsed["threshold"])] == [0]


def test_nodes_carry_line_and_column():
    (stmt,) = parse_code("\n\nv = k * (n + 1)")
    assert (stmt.line, stmt.col) == (3, 0)
    assert (stmt.value.line, stmt.value.col) == (3, 4)
    assert (stmt.value.right.line, stmt.value.right.col) == (3, 9)


# C/CUDA keywords as user identifiers -------------------------------------------------------
KEYWORDS = sf.NeuronModel(
    "Keywords", params=("float",), derived={"sizeof": "float * 2"},
    vars=(V("double", default=0.0), V("int", type="int", default=0),
          V("threadIdx", default=0.0)),
    sim="blockIdx = double + float\ndouble = blockIdx + sizeof\nint += 1\n"
        "if double > 3.0:\n    threadIdx = double",
    threshold="double >= 10.0", reset="double = 0.0")


def test_c_keywords_are_legal_identifiers():
    pop = sf.Population("main", KEYWORDS, 2, params={"float": 0.5})
    local = check_code(KEYWORDS.parsed["sim"], neuron_scope(pop.model, "sim"))
    assert local == {"blockIdx": "float"}


def test_c_keyword_model_simulates_on_numpy():
    """double grows by float + sizeof = 1.5 per step, so it crosses 10 at step 6
    (10.5), spikes and resets to 0; int counts steps."""
    net = sf.NetworkBuilder(dt=1.0)
    net.population("main", KEYWORDS, 2, params={"float": 0.5})
    sim = net.build("numpy", record_vars=["main.double"])
    sim.run(steps=8)
    times, ids = sim.spikes("main")
    np.testing.assert_array_equal(times, [6.0, 6.0])
    np.testing.assert_array_equal(ids, [0, 1])
    np.testing.assert_array_equal(sim.get("main.int"), [8, 8])
    np.testing.assert_array_equal(sim.get("main.threadIdx"), [10.5, 10.5])
    _, trace = sim.trace("main.double")
    np.testing.assert_array_equal(trace[:, 0], [1.5, 3, 4.5, 6, 7.5, 9, 0, 1.5])


# evaluation semantics ----------------------------------------------------------------------
def evaluate(text, dtype=np.float64, **env):
    return Evaluator(dict(env), dtype).evaluate(parse_expr(text))


def test_division_of_ints_gives_float():
    result = evaluate("a / b", a=np.int32(7), b=np.int32(2))
    assert result == 3.5 and np.asarray(result).dtype == np.float64
    assert evaluate("7 / 2", np.float32) == np.float32(3.5)
    assert np.asarray(evaluate("7 / 2", np.float32)).dtype == np.float32
    local = check_code(parse_code("q = 7 / 2"), full_scope("q = 7 / 2"))
    assert local == {"q": "float"}


@pytest.mark.parametrize("text,expected", [
    ("-7 % 3", -1), ("7 % -3", 1), ("7 % 3", 1), ("-7 % -3", -1),
    ("-7.5 % 2", -1.5), ("7.5 % -2", 1.5),
])
def test_modulo_is_c_fmod(text, expected):
    result = evaluate(text)
    assert result == expected
    is_int = "." not in text
    assert np.issubdtype(np.asarray(result).dtype, np.integer) == is_int


def test_modulo_on_arrays_is_fmod():
    a = np.array([-7, -1, 0, 5, 8], dtype=np.int32)
    np.testing.assert_array_equal(evaluate("a % 3", a=a), [-1, -1, 0, 2, 2])


def test_masked_if_assignment_keeps_old_values():
    env = {"v": np.array([1.0, 5.0, -2.0, 0.5]), "n": np.array([1, 2, 3, 4], dtype=np.int32)}
    code = "if v > 2:\n    v = 0.0\n    n += 10\nelif v < 0:\n    v = 100.0\nelse:\n    n = 0"
    Evaluator(env, np.float64, {"v": "float", "n": "int"}).run(parse_code(code))
    np.testing.assert_array_equal(env["v"], [1.0, 0.0, 100.0, 0.5])
    np.testing.assert_array_equal(env["n"], [0, 12, 3, 0])
    assert env["n"].dtype == np.int32


def test_masked_assignment_of_local_declared_before_if():
    env = {"v": np.array([1.0, -1.0])}
    Evaluator(env, np.float64, {"v": "float"}).run(
        parse_code("tmp = v * 2\nif v < 0:\n    tmp = 7.0\nv = tmp"))
    np.testing.assert_array_equal(env["v"], [2.0, 7.0])


def test_float32_literals_are_rounded_to_float32():
    value = evaluate("0.1", np.float32)
    assert np.asarray(value).dtype == np.float32 and value == np.float32(0.1)
    assert float(value) != 0.1
    total = evaluate("0.1 + 0.2", np.float32)
    assert total == np.float32(0.1) + np.float32(0.2)
    assert float(total) != 0.1 + 0.2
    env = {"v": np.zeros(2, dtype=np.float32)}
    Evaluator(env, np.float32, {"v": "float"}).run(parse_code("v = 16777217.0"))
    assert env["v"].dtype == np.float32 and env["v"] == np.float32(16777216.0)


def test_int_assigned_to_float_var_is_cast():
    env = {"v": np.zeros(2, dtype=np.float32)}
    Evaluator(env, np.float32, {"v": "float"}).run(parse_code("v = 3"))
    assert env["v"].dtype == np.float32
    np.testing.assert_array_equal(env["v"], [3.0, 3.0])


def test_boolean_operators_and_conditional_expression_evaluate_elementwise():
    v = np.array([-1.0, 0.5, 2.0])
    np.testing.assert_array_equal(evaluate("0 < v < 1", v=v), [False, True, False])
    np.testing.assert_array_equal(evaluate("v < 0 or v > 1", v=v), [True, False, True])
    np.testing.assert_array_equal(evaluate("not v > 0", v=v), [True, False, False])
    np.testing.assert_array_equal(evaluate("1 if v > 0 else 2.5", v=v), [2.5, 1.0, 1.0])
    np.testing.assert_array_equal(evaluate("clip(v, 0, 1)", v=v), [0.0, 0.5, 1.0])
