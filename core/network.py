"""Network IR nodes: populations, projections, current sources, custom updates.

All nodes are frozen dataclasses validated in ``__post_init__``; cross-node
checks (names, sizes, code scopes) run when a :class:`Network` is assembled,
so a bad network is rejected before anything is built.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from . import builtins as B
from .connectivity import Connectivity
from .init import Init, Values, as_init
from .lang import Scope, Symbol, check_code, check_expr
from .lang.functions import MATH_FUNCTIONS
from .lang.parse import errors_named, normalise_source
from .lang.tree import calls, names_assigned
from .models import (CurrentSourceModel, NeuronModel, PostsynapticModel, WeightUpdateModel,
                     check_identifier, check_params)
from .scopes import BUILTINS, current_source_scope, derived_scope, neuron_scope


def _inits(owner: str, model, init: dict | None, var_fields=("vars",)) -> dict[str, Init]:
    init = dict(init or {})
    declared = {v.name: v for attr in var_fields for v in getattr(model, attr)}
    unknown = [k for k in init if k not in declared]
    if unknown:
        raise ValueError(f"{owner}: init for unknown var(s) {unknown} (model {model.name!r} "
                         f"has {sorted(declared)})")
    out = {}
    for name, var in declared.items():
        if name in init:
            out[name] = as_init(f"{owner} var {name!r}", init[name])
        elif var.default is not None:
            out[name] = as_init(f"{owner}.{name}", var.default)
        else:
            raise ValueError(f"{owner}: var {name!r} needs an initial value (init={{{name!r}: ...}})")
        if var.type == "int" and out[name].random:
            raise ValueError(f"{owner}: int var {name!r} needs a Constant or array initialiser")
        if var.type == "int" and not _integral(out[name]):
            raise ValueError(f"{owner}: int var {name!r} needs integer initial values")
    return out


def _integral(init: Init) -> bool:
    values = init.values if isinstance(init, Values) else np.float64(getattr(init, "value", 0))
    return bool(np.all(values == np.round(values)))


def _check_size(owner: str, size) -> int:
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
        raise ValueError(f"{owner}: size must be a positive int, got {size!r}")
    return int(size)


def shared_writes(model) -> list[str]:
    """Vars declared shared (batched=False) that a model's code assigns."""
    written = set()
    for attr in model.CODE_FIELDS:
        written |= names_assigned(model.parsed[attr])
    return sorted(v.name for v in model.vars if not v.batched and v.name in written)


def _check_model_code(model, scope_for, owner: str = "") -> None:
    """Type-check every code field and derived param of a model; errors name ``owner``
    (the network node that uses the model) when given."""
    with errors_named(owner):
        _check_fields(model, scope_for)


def _check_fields(model, scope_for) -> None:
    for dname, _ in model.derived:
        check_expr(model.parsed["derived." + dname], derived_scope(model, dname), "float")
    for attr in model.CODE_FIELDS:
        check_code(model.parsed[attr], scope_for(attr))
    for attr in model.EXPR_FIELDS:
        tree = model.parsed[attr]
        if tree is not None:
            want = {"threshold": "bool", "events": "int"}.get(attr, "float")
            check_expr(tree, scope_for(attr), want)


@dataclass(frozen=True, eq=False)
class Population:
    """``size`` neurons of one neuron model with scalar ``params`` and var ``init``.
    ``spike_times`` (spike-source arrays only): one sequence of times (ms) per
    neuron, or per batch element a list of those."""

    name: str
    model: NeuronModel
    size: int
    params: dict = field(default_factory=dict)
    init: dict = field(default_factory=dict)
    spike_times: tuple | None = None

    def __post_init__(self):
        check_identifier("Population", "population", self.name)
        owner = f"population {self.name!r}"
        if not isinstance(self.model, NeuronModel):
            raise TypeError(f"{owner}: model must be a NeuronModel, got {type(self.model).__name__}")
        object.__setattr__(self, "size", _check_size(owner, self.size))
        object.__setattr__(self, "params", check_params(owner, self.model, self.params))
        object.__setattr__(self, "init", _inits(owner, self.model, self.init))
        is_ssa = self.model.native == "spike_source_array"
        if is_ssa != (self.spike_times is not None):
            raise ValueError(f"{owner}: spike_times must be given exactly for SpikeSourceArray models")
        if is_ssa:
            object.__setattr__(self, "spike_times", _spike_times(owner, self.spike_times, self.size))
        _check_model_code(self.model, lambda f: neuron_scope(self.model, f), owner)

    def __eq__(self, other):
        if not isinstance(other, Population):
            return NotImplemented
        same = (self.name, self.model, self.size, self.params, self.init) == (
            other.name, other.model, other.size, other.params, other.init)
        return same and _same_spike_times(self.spike_times, other.spike_times)

    __hash__ = None


def _same_spike_times(a, b) -> bool:
    if a is None or b is None:
        return a is b
    return len(a) == len(b) and all(
        len(x) == len(y) and all(np.array_equal(u, v) for u, v in zip(x, y)) for x, y in zip(a, b))


def _is_sequence(x) -> bool:
    return isinstance(x, (list, tuple, np.ndarray))


def _spike_times(owner: str, times, size: int) -> tuple:
    """Normalise to a tuple over batch elements of tuples over neurons of float arrays.

    Accepts one sequence of times per neuron, or a list (per batch element) of those."""
    times = list(times)
    nested = bool(times) and _is_sequence(times[0]) and len(times[0]) > 0 and _is_sequence(
        times[0][0])
    per_batch = times if nested else [times]
    out = []
    for element in per_batch:
        if len(element) != size:
            raise ValueError(f"{owner}: spike_times needs one sequence per neuron ({size}), "
                             f"got {len(element)}")
        rows = []
        for i, row in enumerate(element):
            arr = np.asarray(row, dtype=np.float64).ravel()
            if not np.all(np.isfinite(arr)) or np.any(arr < 0):
                raise ValueError(f"{owner}: spike_times[{i}] must be finite and >= 0")
            arr.setflags(write=False)
            rows.append(arr)
        out.append(tuple(rows))
    return tuple(out)


@dataclass(frozen=True)
class Projection:
    """Synapses from ``pre`` to ``post`` with a weight-update model (per-synapse
    vars ``wu_init``), a postsynaptic model turning input into current for the
    post population's input ``target``, an axonal ``delay`` (steps) and, for
    code using ``deliver_delayed``, ``max_dendritic_delay`` (steps; per-synapse
    delays are clipped to [0, max])."""

    name: str
    pre: str
    post: str
    connectivity: Connectivity
    weight_update: WeightUpdateModel = B.StaticPulse
    wu_params: dict = field(default_factory=dict)
    wu_init: dict = field(default_factory=dict)
    postsynaptic: PostsynapticModel = B.Delta
    ps_params: dict = field(default_factory=dict)
    ps_init: dict = field(default_factory=dict)
    delay: int = 0
    max_dendritic_delay: int = 0
    target: str = "i_syn"

    def __post_init__(self):
        check_identifier("Projection", "projection", self.name)
        owner = f"projection {self.name!r}"
        if not isinstance(self.connectivity, Connectivity):
            raise TypeError(f"{owner}: connectivity must be a Connectivity, got {self.connectivity!r}")
        if not isinstance(self.weight_update, WeightUpdateModel):
            raise TypeError(f"{owner}: weight_update must be a WeightUpdateModel")
        if not isinstance(self.postsynaptic, PostsynapticModel):
            raise TypeError(f"{owner}: postsynaptic must be a PostsynapticModel")
        for key in ("delay", "max_dendritic_delay"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
                raise ValueError(f"{owner}: {key} must be an int >= 0 (steps), got {value!r}")
            object.__setattr__(self, key, int(value))
        wu, ps = self.weight_update, self.postsynaptic
        object.__setattr__(self, "wu_params", check_params(owner, wu, self.wu_params))
        object.__setattr__(self, "ps_params", check_params(owner, ps, self.ps_params))
        object.__setattr__(self, "wu_init", _inits(owner, wu, self.wu_init, wu.VAR_FIELDS))
        object.__setattr__(self, "ps_init", _inits(owner, ps, self.ps_init))

    def uses(self, func: str) -> bool:
        wu = self.weight_update
        return any(calls(wu.parsed[f], func) for f in wu.SYNAPSE_FIELDS)

    def written_synapse_vars(self) -> set[str]:
        wu = self.weight_update
        written = set()
        for attr in wu.SYNAPSE_FIELDS:
            written |= names_assigned(wu.parsed[attr])
        return written & {v.name for v in wu.vars}


@dataclass(frozen=True)
class CurrentSource:
    """A current-source model injecting into population ``target`` (phase 1)."""

    name: str
    model: CurrentSourceModel
    target: str
    params: dict = field(default_factory=dict)
    init: dict = field(default_factory=dict)

    def __post_init__(self):
        check_identifier("CurrentSource", "current source", self.name)
        owner = f"current source {self.name!r}"
        if not isinstance(self.model, CurrentSourceModel):
            raise TypeError(f"{owner}: model must be a CurrentSourceModel")
        object.__setattr__(self, "params", check_params(owner, self.model, self.params))
        object.__setattr__(self, "init", _inits(owner, self.model, self.init))
        _check_model_code(self.model, lambda f: current_source_scope(self.model, f), owner)


@dataclass(frozen=True)
class Reduction:
    """A declared reduction: ``op`` 'sum' or 'max' over 'batch' (result per
    element, shared across the batch) or 'neurons' (result per batch element)."""

    op: str
    over: str

    def __post_init__(self):
        if self.op not in ("sum", "max") or self.over not in ("batch", "neurons"):
            raise ValueError(f"Reduction: op must be sum/max and over batch/neurons, got {self}")


@dataclass(frozen=True)
class CustomUpdate:
    """Code run per element of ``target`` (a population's neurons or a projection's
    synapses) x batch, when the host calls ``sim.custom_update(group)`` or, with
    ``every_step``, last in every step. ``var_refs`` maps local names to
    ``"<node>.<var>"`` (vars of the target, or reduction outputs of an earlier
    custom update on the same target); ``reductions`` maps output names to a
    :class:`Reduction`; the code assigns each element's contribution to them."""

    name: str
    target: str
    code: str
    var_refs: dict = field(default_factory=dict)
    params: dict = field(default_factory=dict)
    reductions: dict = field(default_factory=dict)
    group: str = ""
    every_step: bool = False

    CODE_FIELDS = ("code",)

    def __post_init__(self):
        check_identifier("CustomUpdate", "custom update", self.name)
        owner = f"custom update {self.name!r}"
        object.__setattr__(self, "group", self.group or self.name)
        object.__setattr__(self, "var_refs", dict(self.var_refs))
        reductions = {}
        for key, red in dict(self.reductions).items():
            try:
                reductions[key] = red if isinstance(red, Reduction) else Reduction(*red)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{owner}: reduction {key!r}: {exc}") from None
        object.__setattr__(self, "reductions", reductions)
        params = {}
        for key, value in dict(self.params).items():
            check_identifier(owner, "param", key)
            if not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"{owner}: param {key!r} must be a finite number, got {value!r}")
            params[key] = float(value)
        object.__setattr__(self, "params", params)
        for key, ref in self.var_refs.items():
            check_identifier(owner, "var ref", key)
            if not isinstance(ref, str) or ref.count(".") != 1:
                raise ValueError(f"{owner}: var ref {key!r} must be '<node>.<var>', got {ref!r}")
        from .lang import parse_code

        object.__setattr__(self, "_parsed", parse_code(self.code, self.name, "code"))

    @property
    def parsed(self):
        return self._parsed


def custom_update_scope(cu: CustomUpdate, ref_types: dict[str, tuple[str, bool]]) -> Scope:
    symbols = {p: Symbol("float", False, "param") for p in cu.params}
    for key, (kind, writable) in ref_types.items():
        symbols[key] = Symbol(kind, writable, "var ref")
    symbols.update({r: Symbol("float", True, "reduction") for r in cu.reductions})
    source = normalise_source(cu.name, "code", cu.code, "exec")
    return Scope(cu.name, "code", source, {**BUILTINS, **symbols}, MATH_FUNCTIONS)
