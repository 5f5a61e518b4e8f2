"""Build-time check of a fixed-point network: every code field obeys the rules
of spikeforge.fixed, every param fits the format. Run by backends at build."""

from __future__ import annotations

from .fixed import check_code, to_fixed
from .lang.parse import errors_named, normalise_source
from .scopes import source_of


def _fields(model):
    for attr in model.CODE_FIELDS + getattr(model, "EXPR_FIELDS", ()):
        tree = model.parsed[attr]
        if tree:
            mode = "exec" if attr in model.CODE_FIELDS else "eval"
            yield attr, normalise_source(model.name, attr, source_of(model, attr), mode), tree


def _check_model(model, params: dict, fmt, dt: float, owner: str):
    constants = {**params, "dt": dt}
    for name, value in params.items():
        to_fixed(value, fmt, f"{owner}: param {name!r}")
    with errors_named(owner):
        for attr, source, tree in _fields(model):
            check_code(model.name, attr, source, tree, constants, fmt)


def check_fixed_point(prepared) -> None:
    """Raise a located error for anything a fixed-point network cannot run."""
    net, fmt = prepared.network, prepared.fixed
    to_fixed(net.dt, fmt, "network dt")
    for pop in net.populations:
        _check_model(pop.model, prepared.params[pop.name], fmt, net.dt, f"population {pop.name!r}")
    for proj in net.projections:
        owner = f"projection {proj.name!r}"
        _check_model(proj.weight_update, prepared.params[proj.name], fmt, net.dt, owner)
        _check_model(proj.postsynaptic, {**prepared.params[proj.name],
                                         **prepared.ps_params[proj.name]}, fmt, net.dt, owner)
    for source in net.current_sources:
        _check_model(source.model, prepared.params[source.name], fmt, net.dt,
                     f"current source {source.name!r}")
    for cu in net.custom_updates:
        for name, value in cu.params.items():
            to_fixed(value, fmt, f"custom update {cu.name!r}: param {name!r}")
        source = normalise_source(cu.name, "code", cu.code, "exec")
        check_code(cu.name, "code", source, cu.parsed, {**cu.params, "dt": net.dt}, fmt)
