"""Which names and functions each code field may use (binding; see docs/semantics.md).

* neuron ``sim``/``reset``/``threshold``/``events``: params, derived params, vars
  (writable in code), ``i_syn`` and extra inputs, ``t``, ``dt``, ``step``, ``batch``;
* postsynaptic ``code``/``current``: own params/vars, ``inp``, target neuron vars
  as ``<var>_post`` (read-only);
* weight-update synapse code: synapse vars (writable), pre/post trace vars and
  pre/post neuron vars as ``<var>_pre``/``<var>_post`` (read-only), ``deliver``,
  ``deliver_delayed``, ``deliver_pre``;
* pre/post dynamics and spike-trace code: own params, pre (post) trace vars
  (writable) and pre (post) neuron vars with suffix (read-only);
* current sources: own params/vars; custom updates: their params, var refs and
  reduction outputs (no randomness);
* derived params: params, earlier derived params and ``dt``; math functions only.
"""

from __future__ import annotations

from .lang import Scope, Symbol
from .lang.functions import DELIVERY_FUNCTIONS, MATH_FUNCTIONS, RANDOM_FUNCTIONS

BUILTINS = {
    "t": Symbol("float", False, "builtin"),
    "dt": Symbol("float", False, "builtin"),
    "step": Symbol("int", False, "builtin"),
    "batch": Symbol("int", False, "builtin"),
}
STOCHASTIC = MATH_FUNCTIONS | RANDOM_FUNCTIONS


def model_symbols(model, writable_vars: tuple[str, ...] = ("vars",)) -> dict[str, Symbol]:
    symbols = {p: Symbol("float", False, "param") for p in model.params}
    symbols.update({d: Symbol("float", False, "derived param") for d, _ in model.derived})
    for attr in model.VAR_FIELDS:
        for var in getattr(model, attr):
            symbols[var.name] = Symbol(var.type, attr in writable_vars, "var")
    return symbols


def neuron_vars(model, suffix: str) -> dict[str, Symbol]:
    out = {f"{v.name}{suffix}": Symbol(v.type, False, f"{suffix[1:]} neuron var") for v in model.vars}
    return out


def source_of(model, field: str) -> str:
    text = dict(model.derived).get(field[8:-1]) if field.startswith("derived[") else None
    return text if text is not None else getattr(model, field)


def make_scope(model, field: str, symbols: dict, functions) -> Scope:
    from .lang.parse import normalise_source

    mode = "exec" if field in model.CODE_FIELDS else "eval"
    source = normalise_source(model.name, field, source_of(model, field), mode)
    return Scope(model.name, field, source, {**BUILTINS, **symbols}, frozenset(functions))


def neuron_scope(model, field: str) -> Scope:
    symbols = model_symbols(model)
    symbols["i_syn"] = Symbol("float", False, "input")
    symbols.update({i: Symbol("float", False, "input") for i in model.inputs})
    return make_scope(model, field, symbols, STOCHASTIC)


def postsynaptic_scope(model, post_model, field: str) -> Scope:
    symbols = {**neuron_vars(post_model, "_post"), **model_symbols(model)}
    symbols["inp"] = Symbol("float", False, "input")
    return make_scope(model, field, symbols, STOCHASTIC)


def synapse_scope(model, pre_model, post_model, field: str, delayed: bool) -> Scope:
    symbols = {**neuron_vars(pre_model, "_pre"), **neuron_vars(post_model, "_post")}
    symbols.update(model_symbols(model, ("vars",)))
    functions = set(STOCHASTIC | DELIVERY_FUNCTIONS)
    if not delayed:
        functions.discard("deliver_delayed")
    if not model.pre_target:
        functions.discard("deliver_pre")
    return make_scope(model, field, symbols, functions)


def trace_scope(model, neuron_model, field: str) -> Scope:
    side = "pre" if field.startswith("pre") else "post"
    symbols = neuron_vars(neuron_model, f"_{side}")
    symbols.update(model_symbols(model, (f"{side}_vars",)))
    for v in getattr(model, "vars"):
        symbols.pop(v.name, None)  # per-synapse vars are not visible per neuron
    other = "post_vars" if side == "pre" else "pre_vars"
    for v in getattr(model, other):
        symbols.pop(v.name, None)
    return make_scope(model, field, symbols, STOCHASTIC)


def current_source_scope(model, field: str) -> Scope:
    return make_scope(model, field, model_symbols(model), STOCHASTIC)


def derived_scope(model, name: str) -> Scope:
    symbols = {p: Symbol("float", False, "param") for p in model.params}
    for dname, _ in model.derived:
        if dname == name:
            break
        symbols[dname] = Symbol("float", False, "derived param")
    symbols["dt"] = BUILTINS["dt"]
    return make_scope(model, f"derived[{name}]", symbols, MATH_FUNCTIONS)
