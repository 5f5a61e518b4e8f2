"""Reading generated networks back: :func:`features` (what a network exercises,
for coverage checks) and :func:`describe` (a short listing for failure messages)."""

from __future__ import annotations

from .. import builtins as B
from ..connectivity import Dense, Sparse
from ..init import Constant, Values
from ..net import Network
from ..network import Projection

_BUILTINS = {**B.NEURON_MODELS, **B.POSTSYNAPTIC_MODELS, **B.WEIGHT_UPDATE_MODELS,
             **B.CURRENT_SOURCE_MODELS}


def _is_user(model) -> bool:
    """A model that is not (equal to) the built-in of its name."""
    return _BUILTINS.get(model.name) != model


def _inits_of(network: Network):
    for pop in network.populations:
        yield pop.init.values()
    for proj in network.projections:
        yield [*proj.wu_init.values(), *proj.ps_init.values()]
    for source in network.current_sources:
        yield source.init.values()


def _values_tag(network: Network, proj: Projection, init: Values) -> str:
    """values:synapse, or the matrix (Dense) / kernel (Conv2D, AvgPool2D) layouts."""
    n_pre, n_post = (network.population(p).size for p in (proj.pre, proj.post))
    conn = proj.connectivity
    if conn.shared_kernel and init.values.shape[-len(conn.kernel_shape):] == conn.kernel_shape:
        return "values:kernel"
    if isinstance(proj.connectivity, Dense) and n_pre > 1 and init.values.shape[-2:] == (
            n_pre, n_post):
        return "values:matrix"
    return "values:synapse"


def features(network: Network) -> set[str]:
    """Tags of what a network exercises, e.g. ``neuron:LIF``, ``neuron:user``,
    ``conn:Conv2D``, ``conn:AvgPool2D``, ``conn:FixedProbability:procedural``, ``init:Values``,
    ``wu:STDP``, ``ps:ExpCurr``, ``ps:fused``, ``cs:GaussianNoise``, ``delay:axonal``,
    ``delay:dendritic``, ``input:target``, ``input:pre_target``, ``ssa:per_batch``,
    ``cu:reduce:batch``, ``cu:reduce:neurons``, ``cu:followup``, ``cu:every_step``,
    ``cu:host``, ``cu:projection``, ``batch:1``, ``batch:>1``, ``precision:<p>``."""
    tags = {f"precision:{network.precision}", "batch:>1" if network.batch_size > 1 else "batch:1"}
    for pop in network.populations:
        tags.add("neuron:" + ("user" if _is_user(pop.model) else pop.model.name))
        if pop.spike_times is not None and len(pop.spike_times) > 1:
            tags.add("ssa:per_batch")
    for proj in network.projections:
        conn, wu, ps = proj.connectivity, proj.weight_update, proj.postsynaptic
        tags.add(f"conn:{type(conn).__name__}" + (":procedural" if conn.procedural else ""))
        tags.add("wu:" + ("user" if _is_user(wu) else wu.name))
        tags.add("ps:" + ("user" if _is_user(ps) else ps.name))
        tags |= {"delay:axonal"} if proj.delay else set()
        tags |= {"delay:dendritic"} if proj.max_dendritic_delay else set()
        tags |= {"input:target"} if proj.target != "i_syn" else set()
        tags |= {"input:pre_target"} if wu.pre_target else set()
        tags |= {"ps:fused"} if network.postsynaptic_leader[proj.name] != proj.name else set()
        tags |= {_values_tag(network, proj, proj.wu_init[v.name]) for v in wu.vars
                 if isinstance(proj.wu_init[v.name], Values)}
    for inits in _inits_of(network):
        tags |= {f"init:{type(i).__name__}" for i in inits}
    tags |= {f"cs:{s.model.name}" for s in network.current_sources}
    for cu in network.custom_updates:
        tags |= {f"cu:reduce:{r.over}" for r in cu.reductions.values()}
        tags |= {"cu:every_step"} if cu.every_step else {"cu:host"}
        tags |= {"cu:projection"} if isinstance(network.nodes[cu.target], Projection) else set()
        if any(ref.split(".")[0] != cu.target for ref in cu.var_refs.values()):
            tags.add("cu:followup")
    return tags


def _fmt_init(init) -> str:
    if isinstance(init, Constant):
        return repr(init.value)
    if isinstance(init, Values):
        flat = init.values.ravel()
        more = ", ..." if flat.size > 4 else ""
        return f"Values{init.values.shape}[{', '.join(f'{x:g}' for x in flat[:4])}{more}]"
    return repr(init)


def _fmt_dict(d: dict, fmt=repr) -> str:
    return "{" + ", ".join(f"{k}={fmt(v)}" for k, v in d.items()) + "}"


def _fmt_conn(conn) -> str:
    if isinstance(conn, Sparse):
        return f"Sparse(row_ptr={conn.row_ptr.tolist()}, indices={conn.indices.tolist()})"
    return repr(conn)


def _fmt_model(model) -> list[str]:
    kinds = [(v.name, v.type, "batched" if v.batched else "shared") for v in model.vars]
    out = [(f"  model {model.name}: params={list(model.params)} "
            f"derived={dict(model.derived)} vars={kinds}")]
    for attr in ("pre_vars", "post_vars", "inputs", "pre_target"):
        if getattr(model, attr, None):
            out.append(f"    {attr}: {getattr(model, attr)!r}")
    for attr in (*model.CODE_FIELDS, *model.EXPR_FIELDS):
        text = getattr(model, attr).strip()
        if text:
            out.append(f"    {attr}: " + text.replace("\n", "\n" + " " * (6 + len(attr))))
    return out


def describe(network: Network) -> str:
    """A short human-readable listing of a network (for failure messages); the code
    of user-defined models follows the nodes."""
    lines = [(f"Network(dt={network.dt}, batch_size={network.batch_size}, "
              f"seed={network.seed}, precision={network.precision}"
              f"{', fuse_postsynaptic=True' if network.fuse_postsynaptic else ''})")]
    user = {}
    for pop in network.populations:
        text = (f"  population {pop.name}: {pop.model.name} x{pop.size} "
                f"params={_fmt_dict(pop.params)} init={_fmt_dict(pop.init, _fmt_init)}")
        if pop.spike_times is not None:
            text += f" spike_times={[[t.tolist() for t in b] for b in pop.spike_times]}"
        lines.append(text)
        user.update({pop.model.name: pop.model} if _is_user(pop.model) else {})
    for p in network.projections:
        lines.append(f"  projection {p.name}: {p.pre} -> {p.post} {_fmt_conn(p.connectivity)} "
                     f"{p.weight_update.name}{_fmt_dict(p.wu_params)} "
                     f"init={_fmt_dict(p.wu_init, _fmt_init)} {p.postsynaptic.name}"
                     f"{_fmt_dict(p.ps_params)} init={_fmt_dict(p.ps_init, _fmt_init)} "
                     f"delay={p.delay} max_dendritic_delay={p.max_dendritic_delay} "
                     f"target={p.target}")
        for model in (p.weight_update, p.postsynaptic):
            user.update({model.name: model} if _is_user(model) else {})
    for s in network.current_sources:
        lines.append(f"  current source {s.name}: {s.model.name}{_fmt_dict(s.params)} -> "
                     f"{s.target}")
    for cu in network.custom_updates:
        lines.append(f"  custom update {cu.name} on {cu.target} group={cu.group}"
                     f"{' every_step' if cu.every_step else ''}: refs={cu.var_refs} "
                     f"params={cu.params} reductions={_fmt_dict(cu.reductions)} "
                     f"code={cu.code!r}")
    for model in user.values():
        lines += _fmt_model(model)
    return "\n".join(lines)
