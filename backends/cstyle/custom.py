"""Custom updates in generated code (reference: backends/numpy/custom.py).

Loops run element-major, batch-minor (batch-major when the elements are
independent: no reduction, no shared var written). Each reduction output starts at its
identity, every (element, batch) contribution is folded in batch order
(over the batch) or element order (over neurons). A shared var written by the
code takes batch element 0's value after the batch loop, so every batch
element reads the old value, as in the vectorised reference.
"""

from __future__ import annotations

from spikeforge.lang.tree import names_assigned
from spikeforge.network import Population

from .elements import Binding, Element, indent

def identity(prog, op: str) -> str:
    """0 for sums; for max the smallest value of the format."""
    if op == "sum":
        return "0"
    return "(-INFINITY)" if prog.fixed is None else f"INT64_C({-(1 << (prog.fixed.bits - 1))})"


def _size(prog, cu) -> int | str:
    target = prog.network.nodes[cu.target]
    if isinstance(target, Population):
        return target.size
    return prog.synapse_count(cu.target)


def _target_var(prog, cu, var_name):
    target = prog.network.nodes[cu.target]
    model = target.model if isinstance(target, Population) else target.weight_update
    return model.var(var_name)


def _ref_binding(prog, cu, ref: str, n: int, written: bool) -> Binding:
    node, var = ref.split(".")
    ptr = prog.ptr(f"state:{ref}")
    if node == cu.target:
        v = _target_var(prog, cu, var)
        where = f"{ptr}[(int64_t)b * {n} + e]" if v.batched else f"{ptr}[e]"
        return Binding(v.type, where, written and v.batched, fmt=prog.prepared.formats.get(ref))
    over = prog.network.nodes[node].reductions[var].over
    return Binding("float", f"{ptr}[{'e' if over == 'batch' else 'b'}]")


def custom_update(prog, cu) -> list[str]:
    from .kernels import builtins, params

    n = _size(prog, cu)
    written = names_assigned(cu.parsed)
    names = {**params(prog, cu.name), **builtins(prog)}
    shared_written = []
    for local, ref in cu.var_refs.items():
        names[local] = _ref_binding(prog, cu, ref, n, local in written)
        if local in written and not names[local].store:
            shared_written.append(local)
            names[local] = Binding(names[local].kind, names[local].load, mutable=True,
                                   fmt=names[local].fmt)
    for name, red in cu.reductions.items():
        names[name] = Binding("float", identity(prog, red.op), mutable=True)
    el = Element(prog, cu.name, names, c1="e")
    body = el.declare([cu.parsed]) + el.code("code", cu.parsed) + el.stores()
    body += [f"if (b == 0) sh_{x} = u_{x};" for x in shared_written]
    body += [_fold(prog, cu, name, red) for name, red in cu.reductions.items()]
    inits = [_init_output(prog, cu, name, red, n) for name, red in cu.reductions.items()]
    if not cu.reductions and not shared_written:
        return batch_major(prog, n, body)
    loop = [f"{prog.ctype(names[x].kind)} sh_{x} = 0;" for x in shared_written]
    loop += [f"for (int32_t b = 0; b < {prog.batch}; b++) {{", "    {", *indent(body, 2), "    }",
             "}"]
    loop += [prog.store(Binding(names[x].kind, names[x].load, fmt=names[x].fmt), f"sh_{x}")
             for x in shared_written]
    loop = [f"for (int64_t e = 0; e < {n}; e++) {{", *indent(loop), "}"]
    if any(red.over == "neurons" for red in cu.reductions.values()):
        return ["SF_OMP(omp single)", "{", *indent(inits + loop), "}"]  # one order per sum
    inits = ["SF_OMP(omp single)", "{", *indent(inits), "}"] if inits else []
    return inits + ["SF_OMP(omp for schedule(static))", *loop]


def batch_major(prog, n, body: list[str]) -> list[str]:
    """Elements that are independent of each other (no reduction, no shared var
    written) in batch-major order: contiguous rows of batched vars instead of a
    stride of n per batch element (resetting e-prop's per-synapse traces was 10%
    of a training step element-major). Each thread takes the same static share
    of every row, so no barrier is needed until the end."""
    return [f"for (int32_t b = 0; b < {prog.batch}; b++) {{",
            "    SF_OMP(omp for schedule(static) nowait)",
            f"    for (int64_t e = 0; e < {n}; e++) {{", "        {", *indent(body, 3),
            "        }", "    }", "}", "SF_OMP(omp barrier)"]


def _out(prog, cu, name, red) -> str:
    return f"{prog.ptr(f'state:{cu.name}.{name}')}[{'e' if red.over == 'batch' else 'b'}]"


def _init_output(prog, cu, name, red, n) -> str:
    size = n if red.over == "batch" else prog.batch
    ptr = prog.ptr(f"state:{cu.name}.{name}")
    return f"for (int64_t x = 0; x < {size}; x++) {ptr}[x] = {identity(prog, red.op)};"


def _fold(prog, cu, name, red) -> str:
    out = _out(prog, cu, name, red)
    if red.op == "sum":
        return prog.accumulate(out, f"u_{name}")
    suffix = "l" if prog.fixed is not None else ("f" if prog.precision == "float32" else "d")
    return f"{out} = sf_max_{suffix}({out}, u_{name});"
