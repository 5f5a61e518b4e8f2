"""Model definitions: what a neuron, synapse or current source computes.

Models are frozen dataclasses holding model-language code (see
``spikeforge.lang``); their code is parsed when the model is defined, so a
syntax error surfaces at definition with the line and a caret. Names that
depend on the network (``v_post`` in synapse code, ...) are checked when the
network is assembled (``spikeforge.network``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property

from .lang import parse_code, parse_expr
from .numerics import Fixed

NAME_OK = "a Python identifier not starting with '_'"


def check_identifier(owner: str, what: str, name: str) -> None:
    if not isinstance(name, str) or not name.isidentifier() or name.startswith("_"):
        raise ValueError(f"{owner}: {what} name {name!r} must be {NAME_OK}")


@dataclass(frozen=True)
class Var:
    """A state variable. ``type`` is ``"float"`` (the network's scalar format) or
    ``"int"``; ``batched`` vars have one copy per batch element, shared ones
    (weights) one copy for the whole batch. ``default`` initialises it when a
    population/projection gives no init. In a fixed-point network, ``fmt``
    overrides the storage format of a float var (e.g. ``Fixed(8, 6)`` weights)
    and ``saturate`` clamps instead of wrapping when it is stored; both are
    ignored in floating-point networks."""

    name: str
    type: str = "float"
    batched: bool = True
    default: float | None = None
    fmt: Fixed | None = None
    saturate: bool = False

    def __post_init__(self):
        check_identifier("Var", "var", self.name)
        if self.type not in ("float", "int"):
            raise ValueError(f"Var {self.name!r}: type must be 'float' or 'int', got {self.type!r}")
        if self.fmt is not None and (self.type != "float" or not isinstance(self.fmt, Fixed)):
            raise ValueError(f"Var {self.name!r}: fmt must be a Fixed format of a float var")


def _as_vars(owner: str, what: str, items) -> tuple[Var, ...]:
    out = []
    for item in items or ():
        if isinstance(item, Var):
            out.append(item)
        elif isinstance(item, str):
            out.append(Var(item))
        elif isinstance(item, (tuple, list)):
            out.append(Var(*item))
        elif isinstance(item, dict):
            out.append(Var(**item))
        else:
            raise TypeError(f"{owner}: {what} entries must be Var or name, got {item!r}")
    return tuple(out)


def _as_pairs(items) -> tuple[tuple[str, str], ...]:
    if isinstance(items, dict):
        items = items.items()
    return tuple((str(k), v) for k, v in (items or ()))


@dataclass(frozen=True)
class _Model:
    """Common part: params (scalars given per population/projection), derived
    params (expressions over params and ``dt``, computed on the host in float64
    before code generation) and vars."""

    name: str
    params: tuple[str, ...] = ()
    derived: tuple[tuple[str, str], ...] = ()
    vars: tuple[Var, ...] = ()

    CODE_FIELDS = ()
    EXPR_FIELDS = ()
    VAR_FIELDS = ("vars",)

    def __post_init__(self):
        check_identifier(type(self).__name__, "model", self.name)
        object.__setattr__(self, "params", tuple(self.params))
        object.__setattr__(self, "derived", _as_pairs(self.derived))
        for attr in self.VAR_FIELDS:
            object.__setattr__(self, attr, _as_vars(self.name, attr, getattr(self, attr)))
        for attr in ("inputs",):
            if hasattr(self, attr):
                object.__setattr__(self, attr, tuple(getattr(self, attr)))
        self._check_names()
        _ = self.parsed  # parse now: syntax errors at definition

    def _check_names(self):
        seen = set()
        names = [*self.params, *(d for d, _ in self.derived)]
        for attr in self.VAR_FIELDS:
            names += [v.name for v in getattr(self, attr)]
        names += list(getattr(self, "inputs", ()))
        for n in names:
            check_identifier(self.name, "param/var", n)
            if n in seen:
                raise ValueError(f"model {self.name!r}: name {n!r} is declared twice")
            seen.add(n)

    @cached_property
    def parsed(self) -> dict:
        """Field name -> parsed tree (statements for code, a node for expressions)."""
        out = {}
        for attr in self.CODE_FIELDS:
            out[attr] = parse_code(getattr(self, attr), self.name, attr)
        for attr in self.EXPR_FIELDS:
            text = getattr(self, attr)
            out[attr] = parse_expr(text, self.name, attr) if text.strip() else None
        for dname, expr in self.derived:
            out["derived." + dname] = parse_expr(expr, self.name, f"derived[{dname}]")
        return out

    def var(self, name: str) -> Var:
        for attr in self.VAR_FIELDS:
            for v in getattr(self, attr):
                if v.name == name:
                    return v
        raise KeyError(name)


@dataclass(frozen=True)
class NeuronModel(_Model):
    """A neuron model, updated in phase 6 of every step:

    ``sim`` runs first (it sees this step's summed input ``i_syn`` and any
    extra ``inputs``); then the neuron spikes once if ``threshold`` holds, or
    emits ``events`` spikes (an int expression, for Poisson sources); spiking
    neurons run ``reset``. A model with neither threshold nor events never
    spikes (readouts). ``native`` names a model lowered by a backend rule
    instead of code (the spike-source array)."""

    sim: str = ""
    threshold: str = ""
    reset: str = ""
    events: str = ""
    inputs: tuple[str, ...] = ()
    native: str = ""
    doc: str = field(default="", compare=False)

    CODE_FIELDS = ("sim", "reset")
    EXPR_FIELDS = ("threshold", "events")

    def __post_init__(self):
        super().__post_init__()
        if self.threshold.strip() and self.events.strip():
            raise ValueError(f"neuron model {self.name!r}: give threshold or events, not both")
        if self.native not in ("", "spike_source_array"):
            raise ValueError(f"neuron model {self.name!r}: unknown native kind {self.native!r}")

    @property
    def spiking(self) -> bool:
        return bool(self.threshold.strip() or self.events.strip() or self.native)


@dataclass(frozen=True)
class PostsynapticModel(_Model):
    """Turns the input ``inp`` delivered to a neuron this step into a current
    (phase 5): ``code`` updates the model's own per-neuron vars, then
    ``current`` (an expression) is added to the target input (``i_syn`` unless
    the projection names another). ``linear``: the model's vars evolve as
    x' = A x + B inp and ``current`` = C x + D inp with A, B fixed by the params
    and C, D by the params and the target neuron's vars (ExpCond: C = E_rev - v),
    so projections with equal params may share one instance (a network's
    ``fuse_postsynaptic``); declare it only when that holds."""

    code: str = ""
    current: str = "inp"
    linear: bool = False
    doc: str = field(default="", compare=False)

    CODE_FIELDS = ("code",)
    EXPR_FIELDS = ("current",)


@dataclass(frozen=True)
class WeightUpdateModel(_Model):
    """What a synapse does.

    * ``pre_spike``: per synapse of a presynaptic spike arriving this step
      (phase 2), typically ``deliver(w)``;
    * ``post_spike``: per synapse of a postsynaptic spike of the last step (phase 3);
    * ``synapse_dynamics``: per synapse every step (phase 4);
    * ``pre_dynamics``/``post_dynamics``: per pre/post neuron every step (phase 6,
      after the neuron update), on ``pre_vars``/``post_vars`` (traces);
    * ``pre_spike_trace``/``post_spike_trace``: per spiking pre/post neuron, after
      the dynamics (phase 6).

    ``vars`` are per synapse; ``pre_target`` names the source population's extra
    input that ``deliver_pre(x)`` adds to."""

    pre_vars: tuple[Var, ...] = ()
    post_vars: tuple[Var, ...] = ()
    pre_spike: str = ""
    post_spike: str = ""
    synapse_dynamics: str = ""
    pre_dynamics: str = ""
    post_dynamics: str = ""
    pre_spike_trace: str = ""
    post_spike_trace: str = ""
    pre_target: str = ""
    doc: str = field(default="", compare=False)

    CODE_FIELDS = (
        "pre_spike", "post_spike", "synapse_dynamics", "pre_dynamics", "post_dynamics",
        "pre_spike_trace", "post_spike_trace",
    )
    VAR_FIELDS = ("vars", "pre_vars", "post_vars")
    SYNAPSE_FIELDS = ("pre_spike", "post_spike", "synapse_dynamics")


@dataclass(frozen=True)
class CurrentSourceModel(_Model):
    """Injects ``current`` (an expression) into a population's ``i_syn`` in phase 1,
    after ``code`` updates the source's own per-neuron vars."""

    code: str = ""
    current: str = "0.0"
    doc: str = field(default="", compare=False)

    CODE_FIELDS = ("code",)
    EXPR_FIELDS = ("current",)


def check_params(owner: str, model: _Model, params: dict) -> dict:
    """Validate a params dict against a model: every param given, none unknown, finite."""
    if not isinstance(params, dict):
        raise TypeError(f"{owner}: params must be a dict, got {type(params).__name__}")
    missing = [p for p in model.params if p not in params]
    unknown = [p for p in params if p not in model.params]
    if missing:
        raise ValueError(f"{owner}: missing param(s) {missing} of model {model.name!r}")
    if unknown:
        raise ValueError(
            f"{owner}: unknown param(s) {unknown} for model {model.name!r} "
            f"(it has {list(model.params)})"
        )
    out = {}
    for key, value in params.items():
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise TypeError(f"{owner}: param {key!r} must be a number, got {value!r}") from None
        if not math.isfinite(number):
            raise ValueError(f"{owner}: param {key!r} is {number}; params must be finite")
        out[key] = number
    return out
