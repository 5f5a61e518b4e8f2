#!/usr/bin/env python3
"""PD14 microcircuit benchmark: spikeforge cpu vs NEST 3.10 vs Brian2 2.11 cpp_standalone.

    python tools/bench_microcircuit.py [--scales 0.1 0.25 0.5 1.0] [--k-scale 1.0]
        [--background dc|poisson] [--threads 1 2] [--duration-ms 1000] [--seed 55]
        [--simulators spikeforge nest brian2] [--brian2-connect auto|arrays|binary]
        [--repeats 1] [--venv /tmp/sf-mc-bench-venv] [--out FILE]

Every simulator runs the same network: the numbers come from
``spikeforge.microcircuit.derive(scale, k_scale, background)`` (sizes, synapse counts,
signed mean PSCs, DC amplitudes, external in-degrees, delays), each run in a fresh child
process of the benchmark venv (Python 3.13 with nest-simulator 3.10, brian2 2.11 and this
repo's spikeforge, created on first use). Differences the peers force:
  NEST      iaf_psc_exp, fixed_total_number, weights/delays nest.math.redraw'n exactly as
            the reference; Poisson drive through poisson_generator (rate 8 Hz x K_ext).
  Brian2    one NeuronGroup (exact integration of dv/dt = (E_L-v)/tau_m + (I+I_e)/C_m,
            dI/dt = -I/tau_syn) and ONE Synapses object holding all projections; Poisson
            drive by PoissonInput (K_ext sources at 8 Hz). Connectivity (--brian2-connect):
    arrays  drawn in NumPy by the reference rules (fixed total number with multapses and
            autapses, weights/delays redrawn), grouped by source neuron, passed as arrays.
            Costs the child Python ~82 B/synapse while drawing (freed before the binary
            runs), then the binary ~67 B/synapse.
    binary  drawn inside the cpp_standalone binary: per target population one connect()
            whose generator samples every (source, target) pair of each projection with
            P(X >= 1) and gives it X ~ Binomial(N_syn, 1/(N_pre N_post)) | X >= 1 synapses
            (zt_binomial): the marginal per-pair multiplicity of the reference's fixed total
            number, multapses and autapses included, but pairs are independent, so the
            projection's total is random (mean N_syn, sd ~ sqrt(N_syn)) instead of fixed.
            Weights mean x redrawn_normal(1, 0.1, 0, inf) (= the reference's sign redraw),
            delays floor(D/dt + 1/2) dt with D redrawn outside [dt/2, mean + 8 sd] (as
            spikeforge.microcircuit.delay_steps; NEST has no upper bound, never reached),
            the L4E -> L2/3E doubling as a per-pair factor; all from Brian2's own RNG
            (rejection loops in C++ support functions), so the realisation differs from the
            arrays mode's, not its statistics.
    auto    (default) arrays where their memory model fits, else binary, else skipped.
What is timed (wall = perf_counter, CPU = rusage user+sys, peak = resident-set high-water
mark: VmHWM of each child Python from /proc/self/status, not ru_maxrss, which Linux seeds
at exec with the forking parent's RSS; Brian2's binary: ru_maxrss from wait4 in a minimal
`python -S` helper, exact above the helper's ~12 MB (an upper bound below); Brian2's peak
is the larger of its child Python and its binary, which run one after the other, both
recorded):
  build  spikeforge: microcircuit_network() + build(): host-side connectivity/init, C code
         generation and compilation into an empty cache, loading. NEST: Create + Connect +
         nest.Prepare(). Brian2: network construction + code generation + compilation, then
         the binary's own synapse creation/init (its wall time minus its run time).
  sim    simulation of the requested duration (spikes of every neuron recorded), wall and
         process CPU seconds (Brian2: the binary's run time; CPU over the whole binary).
  events synaptic events per biological second = sum over projections of N_syn x the source
         population's measured rate; events per wall second = that / (sim wall / bio s).
Memory: a run is skipped when its expected peak (MEMORY_MODEL: base + bytes/synapse, an
upper bound of measured peaks) exceeds 90% of MemAvailable read just before that run.
Floor: this machine's memory bandwidth (STREAM 'add' a = b + c in NumPy on 3 x 256 MB arrays,
best of 5) and the bytes one synaptic event moves in spikeforge's layout (stored ring offset
and weight: 8 B streamed from a row, docs/semantics.md "Stored ring offsets"; before
2026-11-24 20:58 UTC target, delay and weight, 12 B; the var index is the synapse
index and is not loaded; plus
the scattered read-modify-write of the target's input-ring entry, one 64 B cache line in and
out when it misses; with T threads each thread reads only the stretch of a spiking row that
targets its own neurons, found by binary search in the target-sorted row, so the streamed
part is read once), and the time per biological second they imply. The machine is shared:
figures taken under load (the 1-min load average is recorded per run) are unreliable;
compare ratios within one run. --repeats R runs every cell R times, the simulators in turn
within each repetition (so a slow period hits both), and the ratios use the medians.
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

try:  # the helper that measures Brian2's binary is shared with the CUBA benchmark
    from .bench_cuba import WAIT4_CODE
except ImportError:  # run as a script from tools/
    from bench_cuba import WAIT4_CODE

REPO = Path(__file__).resolve().parents[1]
SIMULATORS = ("spikeforge", "nest", "brian2")
REQUIREMENTS = ["nest-simulator==3.10.*", "brian2==2.11.*"]
#: peak memory model (MB = base + bytes per synapse x synapses / 2^20) of each (simulator,
#: Brian2 connect mode), an upper bound of the peaks measured on this machine kind: skips
#: runs that cannot fit. spikeforge 1.67 / 4.05 / 16.0 GB at 29.9M / 74.7M / 299M synapses;
#: NEST 1.52 / 3.67 GB and 14.5 GB (issue 8) at full scale; Brian2 arrays: the larger of
#: the child Python (NumPy draws, sort, Brian2's copies: 1.29-1.39 GB at 14.9M) and the
#: binary (~67 B/synapse: 1.00 / 4.75 GB at 14.9M / 74.7M) plus the Python's 0.16 GB;
#: Brian2 binary: the binary (0.52-0.58 GB at 14.9M; 9.8 GB at full scale, issue 8).
#: (Reported "GB" are read as GiB here, the conservative reading.)
MEMORY_MODEL = {("spikeforge", None): (300.0, 58.0), ("nest", None): (300.0, 52.0),
                ("brian2", "arrays"): (400.0, 95.0), ("brian2", "binary"): (300.0, 35.0)}
#: fraction of MemAvailable (read just before each run) a run may be expected to use
MEMORY_HEADROOM = 0.9
STREAM_BYTES, LINE_BYTES = 8, 128


def log(*msg):
    print("[bench_microcircuit]", *msg, file=sys.stderr, flush=True)


def cpu_s(who=None) -> float:
    import resource

    ru = resource.getrusage(resource.RUSAGE_SELF if who is None else who)
    return ru.ru_utime + ru.ru_stime


def proc_status_mb(field: str, pid="self") -> float:
    """A ``Vm*`` field of /proc/<pid>/status (a live process), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/{pid}/status")


def peak_mb(pid="self") -> float:
    """VmHWM (peak resident set) of a live process, in MB. Not ru_maxrss: Linux carries
    the RSS of the process that forked (or vforked) a child at its exec into the child's
    ru_maxrss, so a child of a big parent would report the parent's pages."""
    return proc_status_mb("VmHWM", pid)


def rss_mb(pid="self") -> float:
    return proc_status_mb("VmRSS", pid)


# children ---------------------------------------------------------------------------------
def child_spikeforge(a) -> dict:
    from spikeforge.microcircuit import POPULATIONS, microcircuit_network

    t0 = time.perf_counter()
    net = microcircuit_network(a.scale, a.k_scale, a.background, seed=a.seed)
    sim = net.build(backend="cpu", threads=a.threads)
    t1, c0 = time.perf_counter(), cpu_s()
    sim.run(duration_ms=a.duration_ms, progress=False)
    t2, c1 = time.perf_counter(), cpu_s()
    counts = [len(sim.spikes(p)[0]) for p in POPULATIONS]
    return {"build_s": t1 - t0, "sim_s": t2 - t1, "sim_cpu_s": c1 - c0, "peak_mb": peak_mb(),
            "counts": counts, "team": sim.team}  # team: threads used (see team_size)


def child_nest(a) -> dict:
    import nest
    from spikeforge.microcircuit import NEURON, POPULATIONS, V0_MEAN, V0_SD, derive

    d = derive(a.scale, a.k_scale, a.background)
    t0 = time.perf_counter()
    nest.ResetKernel()
    nest.set_verbosity("M_ERROR")
    nest.SetKernelStatus({"resolution": 0.1, "local_num_threads": a.threads,
                          "rng_seed": a.seed, "print_time": False})
    neuron = {"C_m": NEURON["C_m"], "tau_m": NEURON["tau_m"], "E_L": NEURON["E_L"],
              "V_th": NEURON["V_th"], "V_reset": NEURON["V_reset"], "t_ref": NEURON["t_ref"],
              "tau_syn_ex": NEURON["tau_syn"], "tau_syn_in": NEURON["tau_syn"]}
    pops = []
    for i, n in enumerate(d.sizes):
        pop = nest.Create("iaf_psc_exp", int(n), params={
            **neuron, "I_e": float(d.dc_amp[i]),
            "V_m": nest.random.normal(float(V0_MEAN[i]), float(V0_SD[i]))})
        pops.append(pop)
    # NEST holds at most 134,217,726 connections per virtual process and synapse
    # model: one static_synapse copy per source population (<= 93.4M at full scale)
    # lets one thread hold the full model (one model for all fails from scale 0.5).
    for name in POPULATIONS:
        nest.CopyModel("static_synapse", f"static_from_{name}")
    for t in range(8):
        for s in range(8):
            if d.num_synapses[t, s] == 0:
                continue
            w, dm = float(d.psc_mean[t, s]), float(d.delay_mean[s])
            wdist = nest.random.normal(mean=w, std=abs(w) * 0.1)
            nest.Connect(pops[s], pops[t], {"rule": "fixed_total_number",
                                            "N": int(d.num_synapses[t, s])},
                         {"synapse_model": f"static_from_{POPULATIONS[s]}",
                          "weight": nest.math.redraw(wdist, min=0.0, max=np.inf) if w > 0
                          else nest.math.redraw(wdist, min=-np.inf, max=0.0),
                          "delay": nest.math.redraw(nest.random.normal(mean=dm, std=0.5 * dm),
                                                    min=0.05, max=np.inf)})
    if a.background == "poisson":
        for i, pop in enumerate(pops):
            pg = nest.Create("poisson_generator", params={"rate": float(d.bg_rates[i])})
            nest.Connect(pg, pop, "all_to_all", {"weight": float(d.psc_ext), "delay": 1.5})
    recorders = []
    for pop in pops:
        rec = nest.Create("spike_recorder", params={"start": float(a.warmup_ms)})
        nest.Connect(pop, rec)
        recorders.append(rec)
    nest.Prepare()
    t1, c0 = time.perf_counter(), cpu_s()
    nest.Run(a.warmup_ms + a.duration_ms)
    t2, c1 = time.perf_counter(), cpu_s()
    nest.Cleanup()
    counts = [int(rec.get("n_events")) for rec in recorders]
    return {"build_s": t1 - t0, "sim_s": t2 - t1, "sim_cpu_s": c1 - c0, "peak_mb": peak_mb(),
            "counts": counts}


def peer_connectivity(d, seed: int):
    """Global (pre, post, weight pA, delay ms) arrays of every projection, drawn with NumPy
    as the reference does: fixed total number with multapses/autapses, weights Normal(mean,
    10%) and delays Normal(mean, 50%) redrawn while out of range, delays rounded to steps."""
    rng = np.random.default_rng(seed)
    bounds = np.concatenate([[0], np.cumsum(d.sizes)]).astype(np.int32)  # int32 indices
    parts = []
    for t in range(8):
        for s in range(8):
            n = int(d.num_synapses[t, s])
            if n == 0:
                continue
            pre = bounds[s] + rng.integers(0, d.sizes[s], n, dtype=np.int32)
            post = bounds[t] + rng.integers(0, d.sizes[t], n, dtype=np.int32)
            w, dm = float(d.psc_mean[t, s]), float(d.delay_mean[s])
            weight = _redraw(rng, w, abs(w) * 0.1, n, lambda x: x * w < 0)
            delay = _redraw(rng, dm, 0.5 * dm, n, lambda x: x < 0.05)
            parts.append((pre, post, weight, np.floor(delay / 0.1 + 0.5) * 0.1))
    return [np.concatenate(col) for col in zip(*parts)], bounds


def _redraw(rng, mean, sd, n, bad):
    x = rng.normal(mean, sd, n)
    idx = np.flatnonzero(bad(x))
    while len(idx):
        x[idx] = rng.normal(mean, sd, len(idx))
        idx = idx[bad(x[idx])]
    return x


def brian2_neurons(b2, d, extra: str = ""):
    """One NeuronGroup of all 8 populations (exact integration of dv/dt = (E_L-v)/tau_m +
    (I+I_e)/C_m, dI/dt = -I/tau_syn), V0 and I_e set per population, Poisson drive by
    PoissonInput (K_ext sources at 8 Hz). Returns (group, objects, bounds)."""
    from spikeforge.microcircuit import NEURON, V0_MEAN, V0_SD

    ms, mV, pA, pF, Hz = b2.ms, b2.mV, b2.pA, b2.pF, b2.Hz
    ns = {"E_L": NEURON["E_L"] * mV, "tau_m": NEURON["tau_m"] * ms, "C_m": NEURON["C_m"] * pF,
          "tau_syn": NEURON["tau_syn"] * ms, "V_th": NEURON["V_th"] * mV,
          "V_reset": NEURON["V_reset"] * mV}
    eqs = """dv/dt = (E_L - v)/tau_m + (I + I_e)/C_m : volt (unless refractory)
             dI/dt = -I/tau_syn : amp
             I_e : amp (constant)""" + extra
    G = b2.NeuronGroup(int(d.sizes.sum()), eqs, threshold="v >= V_th", reset="v = V_reset",
                       refractory=NEURON["t_ref"] * ms, method="exact", namespace=ns)
    bounds = np.concatenate([[0], np.cumsum(d.sizes)])
    objects = [G]
    for i in range(8):
        sub = G[int(bounds[i]):int(bounds[i + 1])]
        sub.v = f"({V0_MEAN[i]} + {V0_SD[i]} * randn()) * mV"
        sub.I_e = float(d.dc_amp[i]) * pA
        if d.background == "poisson":
            objects.append(b2.PoissonInput(sub, "I", int(d.k_ext[i]), 8.0 * Hz,
                                           weight=float(d.psc_ext) * pA))
    return G, objects, bounds


def brian2_network(b2, d, seed: int, mode: str = "arrays"):
    """Neurons (:func:`brian2_neurons`) and ONE Synapses object holding every projection
    (one code object per task instead of 64: compile time), connected by ``mode``:
    "arrays" (:func:`peer_connectivity`, passed as arrays) or "binary" (drawn inside the
    binary: :func:`brian2_connect_binary`)."""
    if mode not in ("arrays", "binary"):
        raise ValueError(f"brian2_network: mode must be 'arrays' or 'binary', got {mode!r}")
    b2.defaultclock.dt = 0.1 * b2.ms
    b2.seed(seed)
    extra = "\n w_out : 1 (constant)\n d_out : 1 (constant)" if mode == "binary" else ""
    G, objects, bounds = brian2_neurons(b2, d, extra)
    S = b2.Synapses(G, G, "w : amp (constant)", on_pre="I_post += w",
                    namespace=support_functions(b2) if mode == "binary" else None)
    if mode == "binary":
        brian2_connect_binary(b2, d, G, S, bounds)
    else:
        (pre, post, weight, delay), _ = peer_connectivity(d, seed)
        # synapses grouped by source neuron (stable: projection order within a neuron), as
        # Brian2 creates them itself: its spike propagation walks each source's synapse list,
        # and unsorted (random) indices would cost it a cache miss per event
        order = np.argsort(pre, kind="stable")
        pre, post, weight, delay = (x[order] for x in (pre, post, weight, delay))
        del order
        S.connect(i=pre, j=post)
        S.w = weight * b2.pA
        S.delay = delay * b2.ms
        del pre, post, weight, delay
    mon = b2.SpikeMonitor(G)
    return b2.Network(*objects, S, mon), mon, bounds, S


def binary_plan(d) -> list[list[tuple[int, int, float, float]]]:
    """Per target population t, the sources s with synapses as (s, n, q, p): every pair
    (source neuron, target neuron) of the projection gets X ~ Binomial(n, q) synapses with
    n = N_syn[t, s], q = 1 / (N_s N_t) - the marginal of the reference's fixed total number
    (multapses and autapses allowed) - drawn as: the pair is chosen with p = P(X >= 1) =
    1 - (1 - q)^n, then X from Binomial(n, q) conditioned on X >= 1. Pairs are independent,
    so the total is Binomial-like around N_syn (sd ~ sqrt(N_syn)) instead of fixed."""
    plan = []
    for t in range(8):
        row = []
        for s in range(8):
            n = int(d.num_synapses[t, s])
            if n > 0:
                q = 1.0 / (float(d.sizes[s]) * float(d.sizes[t]))
                row.append((s, n, q, -float(np.expm1(n * np.log1p(-q)))))
        plan.append(row)
    return plan


def _in(var: str, bounds, k: int) -> str:
    return f"{var} >= {int(bounds[k])} and {var} < {int(bounds[k + 1])}"


def connect_expressions(row, bounds) -> tuple[str, str]:
    """Brian2 (p, n) expressions of the presynaptic index i for one target's plan row:
    p = P(X >= 1) of i's population, n = zt_binomial(n_syn, q) of i's population."""
    def pick(values) -> str:
        return " + ".join(f"{v!r} * int({_in('i', bounds, s)})" for s, v in values)

    return (pick((s, p) for s, _, _, p in row),
            f"zt_binomial({pick((s, n) for s, n, _, _ in row)}, "
            f"{pick((s, q) for s, _, q, _ in row)})")


def weight_structure(psc) -> tuple[np.ndarray, list[tuple[int, int, float]]]:
    """psc[t, s] as out[s] x factor: ``out`` is row 1 (L2/3I, a target without special
    cases) and the exceptions (t, s, factor) list every other ratio (the reference's
    L4E -> L2/3E doubling). Raises when a column mixes signs."""
    out = np.asarray(psc[1], dtype=np.float64)
    ratio = np.asarray(psc, dtype=np.float64) / out[None, :]
    if np.any(ratio <= 0):
        raise NotImplementedError("brian2 binary mode: a source population with PSCs of both "
                                  "signs")
    return out, [(t, s, float(ratio[t, s])) for t, s in zip(*np.nonzero(~np.isclose(ratio, 1.0)))]


SUPPORT_CPP = {"redrawn_normal": """
double redrawn_normal(double mean, double sd, double low, double high,
                      const int _vectorisation_idx)
{
    double x = mean + sd * _randn(_vectorisation_idx);
    while (x < low || x > high)
        x = mean + sd * _randn(_vectorisation_idx);
    return x;
}
""", "zt_binomial": """
int32_t zt_binomial(double n, double q, const int _vectorisation_idx)
{
    // Binomial(n, q) conditioned on >= 1, by inversion from U ~ Uniform(P(X=0), 1)
    const double p0 = exp(n * log1p(-q)), r = q / (1.0 - q);
    const double u = p0 + (1.0 - p0) * _rand(_vectorisation_idx);
    double pk = p0, cum = p0;
    int32_t k = 0;
    while (u > cum && k < n && pk > 0.0) {
        pk *= (n - k) / (k + 1.0) * r;
        k++;
        cum += pk;
    }
    return k > 0 ? k : 1;
}
"""}


def support_functions(b2) -> dict:
    """Brian2 Functions (C++ only, for cpp_standalone) drawing from Brian2's own streams:
    ``redrawn_normal(mean, sd, low, high)``: Normal(mean, sd) redrawn while outside
    [low, high]; ``zt_binomial(n, q)``: Binomial(n, q) conditioned on >= 1 (inversion)."""
    from brian2.core.functions import DEFAULT_FUNCTIONS

    def python_only(*_):
        raise NotImplementedError("bench_microcircuit: these functions run in cpp_standalone")

    out = {}
    for name, (nargs, rtype, dep) in {"redrawn_normal": (4, "float", "randn"),
                                      "zt_binomial": (2, "integer", "rand")}.items():
        fn = b2.Function(python_only, arg_units=[1] * nargs, return_unit=1,
                         return_type=rtype, stateless=False, auto_vectorise=True)
        fn.implementations.add_implementation("cpp", SUPPORT_CPP[name], name=name,
                                              dependencies={f"_{dep}": DEFAULT_FUNCTIONS[dep]})
        out[name] = fn
    return out


def brian2_connect_binary(b2, d, G, S, bounds, dt: float = 0.1):
    """Connectivity, weights and delays drawn inside Brian2's binary (S must have the
    :func:`support_functions` in its namespace): one connect() per target population
    (generator syntax: sample(target range, p = P(X >= 1) of i's population), multiplicity
    n = X per pair, see :func:`binary_plan`); w = out[s] x factor(t, s) x
    redrawn_normal(1, 0.1, 0, inf) pA (= Normal(mean, 0.1 |mean|) redrawn while its sign
    is wrong); delay = floor(D/dt + 1/2) dt with D = Normal(mean_s, 0.5 mean_s) redrawn
    outside [dt/2, mean_s + 8 sd] (spikeforge.microcircuit.delay_steps)."""
    from spikeforge.microcircuit import DELAY_REL_SD, DELAY_SD_BOUND, WEIGHT_REL_SD

    out, exceptions = weight_structure(d.psc_mean)
    for s in range(8):
        sub = G[int(bounds[s]):int(bounds[s + 1])]
        sub.w_out = float(out[s])
        sub.d_out = float(d.delay_mean[s])
    for t, row in enumerate(binary_plan(d)):
        if row:
            p, n = connect_expressions(row, bounds)
            S.connect(j=f"k for k in sample({int(bounds[t])}, {int(bounds[t + 1])}, p={p})",
                      n=n)
    factor = "".join(f" + {f - 1.0:.17g} * int({_in('i', bounds, s)} and {_in('j', bounds, t)})"
                     for t, s, f in exceptions)
    S.w = f"w_out_pre * (1{factor}) * redrawn_normal(1.0, {WEIGHT_REL_SD}, 0.0, inf) * pA"
    S.delay = (f"floor(redrawn_normal(d_out_pre, {DELAY_REL_SD} * d_out_pre, {0.5 * dt}, "
               f"{1.0 + DELAY_SD_BOUND * DELAY_REL_SD} * d_out_pre) / {dt} + 0.5) * {dt} * ms")


def child_brian2(a) -> dict:
    import gc

    import brian2 as b2
    from spikeforge.microcircuit import derive

    proj = tempfile.mkdtemp(prefix="sf-bench-mc-brian2-")
    wait_json = os.path.join(proj, "wait4.json")
    b2.set_device("cpp_standalone", build_on_run=False)
    b2.prefs.devices.cpp_standalone.openmp_threads = a.threads
    b2.prefs.devices.cpp_standalone.run_cmd_unix = [sys.executable, "-S", "-c", WAIT4_CODE,
                                                    wait_json, "./main"]
    b2.prefs.logging.file_log = False
    d = derive(a.scale, a.k_scale, a.background)
    mode = a.brian2_connect if a.brian2_connect != "auto" else \
        plan_run("brian2", d.total_synapses, mem_available_mb())[0]
    t0 = time.perf_counter()
    net, mon, bounds, syn = brian2_network(b2, d, a.seed, mode)
    net.run(a.duration_ms * b2.ms)
    b2.device.build(directory=proj, compile=True, run=False, with_output=False)
    t1 = time.perf_counter()
    # free what build wrote to disk before the run: the static arrays and the host-side
    # cache of array values (synapse indices from connect(i=, j=)); results load from disk
    b2.device.static_arrays.clear()
    for var in b2.device.array_cache:
        b2.device.array_cache[var] = None
    gc.collect()
    rss_at_run = rss_mb()
    b2.device.run(directory=proj, with_output=False)
    binary = json.loads(Path(wait_json).read_text())
    run_s = float(Path(b2.device.results_dir, "last_run_info.txt").read_text().split()[0])
    count = np.asarray(mon.count)
    counts = [int(count[bounds[i]:bounds[i + 1]].sum()) for i in range(8)]
    n_syn = int(len(syn))
    shutil.rmtree(proj, ignore_errors=True)
    python_mb = peak_mb()
    return {"build_s": t1 - t0 + binary["wall_s"] - run_s, "sim_s": run_s,
            "sim_cpu_s": binary["cpu_s"], "cpu_note": "whole binary (synapse creation + run)",
            "peak_mb": max(binary["maxrss_kb"] / 1024, python_mb),
            "binary_peak_mb": binary["maxrss_kb"] / 1024, "python_peak_mb": python_mb,
            "python_rss_at_run_mb": rss_at_run,
            "brian2_connect": mode, "n_synapses": n_syn, "counts": counts}




CHILDREN = {"spikeforge": child_spikeforge, "nest": child_nest, "brian2": child_brian2}


# parent -----------------------------------------------------------------------------------
def venv_python(venv: Path) -> Path:
    """The benchmark venv's python, created (Python 3.13 from pyenv) when missing."""
    py = venv / "bin" / "python"
    check = "import nest, brian2, spikeforge.microcircuit"
    if py.exists() and subprocess.run([py, "-c", check], capture_output=True).returncode == 0:
        return py
    base = shutil.which("python3.13") or os.path.expanduser("~/.pyenv/versions/3.13.0/bin/python")
    log(f"creating {venv} with {base}: {' '.join(REQUIREMENTS)} + spikeforge -e {REPO}")
    subprocess.run([base, "-m", "venv", str(venv)], check=True)
    subprocess.run([py, "-m", "pip", "install", "-q", *REQUIREMENTS], check=True)
    subprocess.run([py, "-m", "pip", "install", "-q", "-e", str(REPO)], check=True)
    return py


def mem_available_mb() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable"):
            return int(line.split()[1]) / 1024
    return float("inf")


def need_mb(simulator: str, mode: str | None, n_syn: int) -> float:
    """Expected peak memory (MB) of one run with ``n_syn`` synapses (:data:`MEMORY_MODEL`)."""
    base, per_synapse = MEMORY_MODEL[(simulator, mode)]
    return base + per_synapse * n_syn / 2**20


def plan_run(simulator: str, n_syn: int, available_mb: float,
             brian2_connect: str = "auto") -> tuple[str | None, str | None]:
    """(mode, skip reason): the Brian2 connect mode ("arrays" where it fits, else "binary"
    under "auto"; None for the other simulators) and why the run is skipped (None: run it).
    A run fits when its expected peak is at most MEMORY_HEADROOM x ``available_mb``."""
    modes = ([None] if simulator != "brian2" else
             ["arrays", "binary"] if brian2_connect == "auto" else [brian2_connect])
    limit = MEMORY_HEADROOM * available_mb
    for mode in modes:
        if need_mb(simulator, mode, n_syn) <= limit:
            return mode, None
    needs = ", ".join(f"{m or simulator} ~{need_mb(simulator, m, n_syn) / 1024:.1f} GB"
                      for m in modes)
    return modes[-1], (f"needs {needs}; {available_mb / 1024:.1f} GB available, "
                       f"{MEMORY_HEADROOM:.0%} usable")


def run_child(py: Path, simulator: str, scale: float, threads: int, args,
              mode: str | None = None) -> dict:
    cache = tempfile.mkdtemp(prefix="sf-bench-mc-cache-")
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), SPIKEFORGE_CACHE_DIR=cache)
    cmd = [str(py), str(Path(__file__).resolve()), "--child", simulator, "--scale", str(scale),
           "--k-scale", str(args.k_scale), "--background", args.background, "--threads",
           str(threads), "--duration-ms", str(args.duration_ms), "--seed", str(args.seed),
           *(["--brian2-connect", mode] if mode else [])]
    try:
        proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, text=True,
                              timeout=args.timeout_s)
    except subprocess.TimeoutExpired:
        return {"skipped": f"timed out after {args.timeout_s} s"}
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    if proc.returncode != 0:
        return {"skipped": f"child failed with exit status {proc.returncode}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def derived_figures(result: dict, scale: float, args) -> dict:
    from spikeforge.microcircuit import derive

    d = derive(scale, args.k_scale, args.background)
    bio_s = args.duration_ms / 1000.0
    rates = np.array(result["counts"]) / d.sizes / bio_s
    events = float(np.sum(d.num_synapses * rates[None, :]))  # per biological second
    return {"rates": rates.round(3).tolist(), "events_per_bio_s": events,
            "sim_s_per_bio_s": result["sim_s"] / bio_s,
            "cpu_s_per_bio_s": result["sim_cpu_s"] / bio_s,
            "events_per_wall_s": events / (result["sim_s"] / bio_s),
            "loadavg_1min": os.getloadavg()[0]}


def bandwidth_gb_s(mb: int = 256, repeats: int = 5) -> float:
    """STREAM "add" a = b + c in NumPy (3 arrays of ``mb`` MB; 2 read + 1 written counted,
    as STREAM does), best of ``repeats``, in GB/s."""
    n = mb * (1 << 20) // 8
    a, b, c = np.zeros(n), np.ones(n), np.full(n, 2.0)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        np.add(b, c, out=a)
        best = min(best, time.perf_counter() - t0)
    return 3 * n * 8 / best / 1e9


def floor_figures(events_per_bio_s: float, bw: float) -> dict:
    return {"bandwidth_gb_s": bw, "bytes_per_event_streamed": STREAM_BYTES,
            "bytes_per_event_with_scatter": STREAM_BYTES + LINE_BYTES,
            "floor_s_per_bio_s_streamed": events_per_bio_s * STREAM_BYTES / (bw * 1e9),
            "floor_s_per_bio_s_with_scatter":
                events_per_bio_s * (STREAM_BYTES + LINE_BYTES) / (bw * 1e9)}


def fmt(value, digits=2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def label(row: dict) -> str:
    """Simulator name, with Brian2's connect mode: brian2/arr (arrays), brian2/bin (binary)."""
    mode = row.get("brian2_connect")
    return row["simulator"] + (f"/{mode[:3]}" if mode else "")


def table(rows: list[dict]) -> list[str]:
    lines = ["scale thr simulator   build s  sim s/bio-s  CPU-s/bio-s  events/wall-s  peak MB"
             "  rates L23E..L6I (Hz)"]
    for r in rows:
        if "skipped" in r:
            lines.append(f"{r['scale']:<5} {r['threads']:>3} {label(r):<11} skipped: "
                         f"{r['skipped']}")
            continue
        lines.append(f"{r['scale']:<5} {r['threads']:>3} {label(r):<11} "
                     f"{fmt(r['build_s'], 1):>7} {fmt(r['sim_s_per_bio_s']):>12} "
                     f"{fmt(r['cpu_s_per_bio_s']):>12} {r['events_per_wall_s']:>14.3g} "
                     f"{fmt(r['peak_mb'], 0):>8}  {' '.join(f'{x:.2f}' for x in r['rates'])}")
    return lines


def medians(rows: list[dict]) -> dict:
    """(scale, threads) -> simulator -> the medians over its runs of simulation and build
    time, the largest peak memory, and the range of simulation times."""
    cells: dict = {}
    for r in rows:
        if "skipped" not in r:
            cell = cells.setdefault((r["scale"], r["threads"]), {})
            cell.setdefault(r["simulator"], []).append(r)
    return {key: {sim: summary(runs) for sim, runs in group.items()}
            for key, group in cells.items()}


def summary(runs: list[dict]) -> dict:
    times = [r["sim_s_per_bio_s"] for r in runs]
    return {"label": label(runs[0]), "runs": len(runs), "sim": float(np.median(times)),
            "sim_range": (min(times), max(times)),
            "build": float(np.median([r["build_s"] for r in runs])),
            "peak": max(r["peak_mb"] for r in runs)}


def ratios(rows: list[dict]) -> list[str]:
    lines = []
    for (scale, threads), group in medians(rows).items():
        sf = group.get("spikeforge")
        if sf is None:
            continue
        parts = [f"{group[peer]['label']}/spikeforge sim x{group[peer]['sim'] / sf['sim']:.2f}"
                 f" build x{group[peer]['build'] / sf['build']:.2f}"
                 f" memory x{group[peer]['peak'] / sf['peak']:.2f}"
                 for peer in ("nest", "brian2") if peer in group]
        runs = "" if sf["runs"] == 1 else (
            f" (medians of {sf['runs']} runs; spikeforge sim {sf['sim_range'][0]:.2f}-"
            f"{sf['sim_range'][1]:.2f} s/bio-s" + "".join(
                f", {group[p]['label']} {group[p]['sim_range'][0]:.2f}-"
                f"{group[p]['sim_range'][1]:.2f}" for p in ("nest", "brian2") if p in group)
            + ")")
        lines.append(f"scale {scale}, {threads} thread(s): " + ("; ".join(parts) or "no peers")
                     + runs)
    return lines


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scales", type=float, nargs="+", default=[0.1, 0.25, 0.5, 1.0])
    ap.add_argument("--scale", type=float, help=argparse.SUPPRESS)
    ap.add_argument("--k-scale", type=float, default=1.0)
    ap.add_argument("--background", choices=("dc", "poisson"), default="dc")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--duration-ms", type=float, default=1000.0)
    ap.add_argument("--seed", type=int, default=55)
    ap.add_argument("--simulators", nargs="+", choices=SIMULATORS, default=list(SIMULATORS))
    ap.add_argument("--repeats", type=int, default=1,
                    help="runs of every cell, simulators in turn; ratios use medians")
    ap.add_argument("--venv", type=Path, default=Path("/tmp/sf-mc-bench-venv"))
    ap.add_argument("--timeout-s", type=float, default=3600.0)
    ap.add_argument("--out", default="/tmp/bench_microcircuit.json")
    ap.add_argument("--brian2-connect", choices=("auto", "arrays", "binary"), default="auto",
                    help="Brian2's connectivity: NumPy arrays drawn as the reference (fixed "
                         "total number), drawn inside its binary (pairwise Bernoulli), or "
                         "arrays where they fit in memory, else binary (default)")
    ap.add_argument("--child", choices=SIMULATORS, help=argparse.SUPPRESS)
    ap.add_argument("--warmup-ms", type=float, default=0.0, help=argparse.SUPPRESS)
    ap.add_argument("--nest-rates", type=int, nargs="+", metavar="SEED",
                    help="instead of benchmarking: NEST's mean rates over these seeds after a "
                         "100 ms warm-up (--scales[0], --k-scale, --background, --duration-ms)")
    args = ap.parse_args(argv)
    if args.repeats < 1:
        ap.error(f"--repeats must be >= 1, got {args.repeats}")
    return args


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.child:
        args.threads = args.threads[0]
        print(json.dumps(CHILDREN[args.child](args), default=float))
        return 0
    from spikeforge.microcircuit import derive

    py = venv_python(args.venv)
    if args.nest_rates:
        return nest_rates(py, args)
    # in a child, so that the 3 x 256 MB arrays never sit in this process while peers run
    bw = float(subprocess.run([sys.executable, "-c", "import sys; sys.path.insert(0, "
                               f"{str(Path(__file__).parent)!r}); import bench_microcircuit as b; "
                               "print(b.bandwidth_gb_s())"], capture_output=True, text=True,
                              check=True).stdout.split()[-1])
    meta = {"date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            "command": " ".join(["python", *sys.argv]), "cpu": _cpu_model(),
            "nproc": os.cpu_count(), "k_scale": args.k_scale, "background": args.background,
            "duration_ms": args.duration_ms, "seed": args.seed, "bandwidth_gb_s": bw}
    log(f"memory bandwidth (triad) {bw:.1f} GB/s")
    rows, floors = [], {}
    for scale in args.scales:
        n_syn = derive(scale, args.k_scale, args.background).total_synapses
        for threads, repeat, sim in itertools.product(args.threads, range(args.repeats),
                                                      args.simulators):
            available = mem_available_mb()
            mode, skipped = plan_run(sim, n_syn, available, args.brian2_connect)
            row = {"scale": scale, "threads": threads, "simulator": sim, "repeat": repeat,
                   "mem_available_mb": available,
                   "need_mb": need_mb(sim, mode, n_syn), **({"brian2_connect": mode}
                                                            if mode else {})}
            if skipped:
                row["skipped"] = skipped
            else:
                log(f"scale {scale}, {threads} thread(s): {sim}"
                    + (f" (connectivity: {mode})" if mode else ""))
                row.update(run_child(py, sim, scale, threads, args, mode))
            if "skipped" not in row:
                row.update(derived_figures(row, scale, args))
                if sim == "spikeforge":
                    floors[scale] = floor_figures(row["events_per_bio_s"], bw)
            log("  " + json.dumps({k: v for k, v in row.items() if k != "counts"},
                                  default=float))
            rows.append(row)
            Path(args.out).write_text(json.dumps({**meta, "rows": rows, "floors": floors},
                                                 indent=1, default=float))  # so far
    lines = table(rows) + ratios(rows)
    for scale, f in floors.items():
        lines.append(f"floor at scale {scale}: {f['bandwidth_gb_s']:.1f} GB/s; "
                     f"{f['bytes_per_event_streamed']} B/event streamed -> "
                     f"{f['floor_s_per_bio_s_streamed']:.3f} s/bio-s; with a missed 64 B line in "
                     f"and out per event ({f['bytes_per_event_with_scatter']} B) -> "
                     f"{f['floor_s_per_bio_s_with_scatter']:.3f} s/bio-s")
    header = (f"PD14 microcircuit, k-scale {args.k_scale}, {args.background} drive, "
              f"{args.duration_ms:g} ms, seed {args.seed} | {meta['date']} | {meta['cpu']} x"
              f"{meta['nproc']}")
    print("\n".join([header, *lines]))
    Path(args.out).write_text(json.dumps({**meta, "rows": rows, "floors": floors}, indent=1,
                                         default=float))
    log(f"wrote {args.out}")
    return 0


def nest_rates(py: Path, args) -> int:
    """Mean and sd over seeds of NEST's per-population rates after a 100 ms warm-up."""
    from spikeforge.microcircuit import POPULATIONS, derive

    scale = args.scales[0]
    sizes = derive(scale, args.k_scale, args.background).sizes
    rates = []
    for seed in args.nest_rates:
        cmd = [str(py), str(Path(__file__).resolve()), "--child", "nest", "--scale", str(scale),
               "--k-scale", str(args.k_scale), "--background", args.background, "--threads",
               "1", "--duration-ms", str(args.duration_ms), "--seed", str(seed),
               "--warmup-ms", "100"]
        out = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, check=True).stdout
        counts = np.array(json.loads(out.strip().splitlines()[-1])["counts"])
        rates.append(counts / sizes / (args.duration_ms / 1000.0))
        log(f"seed {seed}: " + " ".join(f"{r:.3f}" for r in rates[-1]))
    mean, sd = np.mean(rates, axis=0), np.std(rates, axis=0)
    print(f"NEST 3.10, scale {scale}, k-scale {args.k_scale}, {args.background}, "
          f"{len(rates)} seeds x {args.duration_ms:g} ms after 100 ms")
    for pop, m, s in zip(POPULATIONS, mean, sd):
        print(f"{pop:<6} {m:.3f} +- {s:.3f}")
    Path(args.out).write_text(json.dumps({"seeds": args.nest_rates, "rates": np.array(
        rates).tolist(), "mean": mean.tolist(), "sd": sd.tolist()}, indent=1))
    return 0


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "?"


if __name__ == "__main__":
    sys.exit(main())
