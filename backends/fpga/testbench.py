"""A C++ testbench for ``sf_top`` whose golden vectors come from the NumPy reference.

``golden(program, steps)`` runs the network on the ``numpy`` backend for
``steps`` steps (recording what the program records) and returns the vectors;
``render(program, gold)`` writes ``sf_tb.cpp``, which

1. fills every argument array with its initial contents (the host layout of
   backends/cstyle/layout.py: state from prepare(), CSR, spike-source schedule),
2. calls ``sf_top(mode=0, n_steps, step, rng_step, seed)`` once per chunk of at
   most ``steps_per_call`` steps (the host protocol of FpgaSimulation),
3. after each call compares the recording rows 0..n_steps-1 with the
   reference (spike counts per step and neuron; recorded vars at the end of each
   step), and after the last call every state array,
4. prints ``PASS`` and returns 0, or lists the first mismatches and returns 1.

Values are stored as the unsigned bit patterns of their storage type and
compared bit for bit. Fixed-point networks must match exactly (the project's
numerics contract). Floating-point networks compare vars and state within
``|got - want| <= atol + rtol * |want|`` (rtol 1e-5, atol 1e-6: summation
order and libm may differ) and spike counts exactly. The same file runs in
``vitis_hls`` csim and cosim and with plain g++ against the C-simulation source.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from spikeforge.backends.cstyle.layout import initial_values

DEFAULT_STEPS = 100
RTOL, ATOL = 1e-5, 1e-6
MAX_REPORTED = 10
BITS = {1: "uint8_t", 2: "uint16_t", 4: "uint32_t", 8: "uint64_t"}
PER_LINE = 16


@dataclass
class Golden:
    """Inputs and expected outputs of a testbench run (arrays by port name)."""

    steps: int
    seed: int
    calls: list = field(default_factory=list)  # (first step, n_steps) per call
    initial: dict = field(default_factory=dict)  # port -> initial contents (port shape)
    rows: dict = field(default_factory=dict)  # recording port -> (steps, *row) expected
    final: dict = field(default_factory=dict)  # state port -> contents after the last step
    exact: bool = True


def golden(program, steps: int = DEFAULT_STEPS) -> Golden:
    """Run the reference on ``program``'s network and collect the vectors."""
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"testbench: steps must be a positive int, got {steps!r}")
    prepared, network = program.prepared, program.network
    ports = {p.key: p for p in program.ports if p.kind == "m_axi"}
    values = initial_values(prepared, program.buffers)
    gold = Golden(steps=steps, seed=int(network.seed), exact=bool(prepared.formats))
    gold.initial = {ports[k].name: np.ascontiguousarray(v) for k, v in values.items()}
    spc = program.steps_per_call
    gold.calls = [(first, min(spc, steps - first)) for first in range(0, steps, spc)]
    sim = network.build("numpy", record_spikes=list(program.record_spikes),
                        record_vars=list(program.record_vars))
    var_rows = {v: [] for v in program.record_vars}
    for _ in range(steps):
        sim.run(steps=1, progress=False)
        for var in program.record_vars:
            var_rows[var].append(np.array(sim._pull(var)))
    for var, rows in var_rows.items():
        port = ports[f"rec_var:{var}"]
        gold.rows[port.name] = np.stack(rows).astype(values[port.key].dtype)
    for pop in program.record_spikes:
        port = ports[f"rec_spikes:{pop}"]
        gold.rows[port.name] = _spike_counts(sim, pop, steps, values[port.key])
    for key, port in ports.items():
        if key.startswith("state:"):
            gold.final[port.name] = np.array(sim._pull(key.split(":", 1)[1]),
                                             dtype=values[key].dtype)
    return gold


def _spike_counts(sim, pop, steps, buffer) -> np.ndarray:
    entry = sim.spikes(pop)
    times, ids = entry[0], entry[1]
    batch = entry[2] if len(entry) > 2 else np.zeros_like(ids)
    step = np.rint(np.asarray(times) / sim.network.dt).astype(np.int64)
    counts = np.zeros((steps, *buffer.shape[1:]), dtype=np.int64)
    np.add.at(counts, (step, np.asarray(batch, dtype=np.int64), np.asarray(ids, dtype=np.int64)), 1)
    return np.minimum(counts, 255).astype(buffer.dtype)


# rendering ---------------------------------------------------------------------------
def _bits(array: np.ndarray) -> tuple[str, np.ndarray]:
    flat = np.ascontiguousarray(array).reshape(-1)
    utype = BITS[flat.dtype.itemsize]
    return utype, flat.view(np.dtype(f"u{flat.dtype.itemsize}"))


def _table(name: str, array: np.ndarray) -> list[str]:
    utype, words = _bits(array)
    out = [f"static const {utype} {name}[{max(len(words), 1)}] = {{"]
    for i in range(0, len(words), PER_LINE):
        out.append("    " + ", ".join(f"{int(w)}u" for w in words[i:i + PER_LINE]) + ",")
    if len(words) == 0:
        out.append("    0u,")
    out.append("};")
    return out


def _kind(ctype: str) -> str:
    return {"float": "SF_F32", "double": "SF_F64"}.get(ctype, "SF_INT")


PRELUDE = """\
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

enum { SF_INT = 0, SF_F32 = 1, SF_F64 = 2 };
static long sf_mismatches = 0;

/* Compare n elements of elem bytes; floats within tolerance unless exact. */
static void sf_compare(const char *what, long call, const void *got, const void *want,
                       long n, int elem, int kind, int exact)
{
    const unsigned char *g = (const unsigned char *)got, *w = (const unsigned char *)want;
    for (long i = 0; i < n; i++) {
        int bad = memcmp(g + i * elem, w + i * elem, elem) != 0;
        if (bad && !exact && kind != SF_INT) {
            double a, b;
            if (kind == SF_F32) { float x, y; memcpy(&x, g + i * elem, 4); memcpy(&y, w + i * elem, 4); a = x; b = y; }
            else { memcpy(&a, g + i * elem, 8); memcpy(&b, w + i * elem, 8); }
            bad = !(fabs(a - b) <= SF_ATOL + SF_RTOL * fabs(b));
        }
        if (bad) {
            if (sf_mismatches < SF_MAX_REPORTED) {
                printf("MISMATCH %s (call %ld) element %ld: got", what, call, i);
                for (int k = 0; k < elem; k++) printf(" %02x", g[i * elem + k]);
                printf(", want");
                for (int k = 0; k < elem; k++) printf(" %02x", w[i * elem + k]);
                printf("\\n");
            }
            sf_mismatches++;
        }
    }
}"""


def render(program, gold: Golden) -> str:
    """The testbench source (see the module docstring)."""
    ports = [p for p in program.ports if p.kind == "m_axi"]
    scalars = [p for p in program.ports if p.kind == "scalar"]
    params = [f"{p.ctype} *{p.name}" if p.kind == "m_axi" else f"{p.ctype} {p.name}"
              for p in program.ports]
    lines = [f"/* spikeforge testbench for {program.top}: golden vectors from the numpy "
             f"reference, {gold.steps} steps in {len(gold.calls)} call(s) (generated). */",
             f"#define SF_RTOL {RTOL!r}", f"#define SF_ATOL {ATOL!r}",
             f"#define SF_MAX_REPORTED {MAX_REPORTED}", PRELUDE, "",
             f'extern "C" void {program.top}({", ".join(params)});', ""]
    for port in ports:
        n = max(port.size, 1)
        lines.append(f"static {port.ctype} {port.name}[{n}];")
        if np.any(gold.initial[port.name]):
            lines += _table(f"init_{port.name}", gold.initial[port.name])
    for name, rows in gold.rows.items():
        lines += _table(f"want_{name}", rows)
    for name, final in gold.final.items():
        lines += _table(f"final_{name}", final)
    lines += ["", f"static const int64_t sf_calls[{len(gold.calls)}][2] = {{",
              *(f"    {{{first}, {n}}}," for first, n in gold.calls), "};", ""]
    lines += _main(program, gold, ports, scalars)
    return "\n".join(lines) + "\n"


def _main(program, gold, ports, scalars) -> list[str]:
    exact = 1 if gold.exact else 0
    by_name = {p.name: p for p in ports}
    body = ["int main(void)", "{"]
    for port in ports:
        if np.any(gold.initial[port.name]):
            body.append(f"    memcpy({port.name}, init_{port.name}, sizeof({port.name}));")
        else:
            body.append(f"    memset({port.name}, 0, sizeof({port.name}));")
    values = {"mode": "0", "n_steps": "(int32_t)n", "step": "first", "rng_step": "(uint32_t)first",
              "seed": f"{gold.seed}u"}
    unknown = [s.name for s in scalars if s.name not in values]
    if unknown:
        raise NotImplementedError(f"testbench: no host value for scalar argument(s) {unknown}")
    args = [p.name if p.kind == "m_axi" else values[p.name] for p in program.ports]
    body += [f"    for (long c = 0; c < {len(gold.calls)}; c++) {{",
             "        const int64_t first = sf_calls[c][0], n = sf_calls[c][1];",
             f"        {program.top}({', '.join(args)});"]
    for name, rows in gold.rows.items():
        port = by_name[name]
        row = int(np.prod(rows.shape[1:], dtype=np.int64))
        body.append(f'        sf_compare("{port.key}", c, {name}, want_{name} + first * {row}, '
                    f"n * {row}, {rows.dtype.itemsize}, {_kind(port.ctype)}, {exact});")
    body.append("    }")
    for name, final in gold.final.items():
        port = by_name[name]
        body.append(f'    sf_compare("{port.key} (final)", {len(gold.calls) - 1}, {name}, '
                    f"final_{name}, {final.size}, {final.dtype.itemsize}, {_kind(port.ctype)}, "
                    f"{exact});")
    body += ['    if (sf_mismatches) {',
             f'        printf("FAIL: %ld mismatching values ({gold.steps} steps)\\n", sf_mismatches);',
             "        return 1;", "    }",
             f'    printf("PASS: {gold.steps} steps, {len(gold.calls)} call(s), '
             f'{"bit-exact" if gold.exact else "float tolerance"}\\n");',
             "    return 0;", "}"]
    return body
