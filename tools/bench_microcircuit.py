#!/usr/bin/env python3
"""PD14 microcircuit benchmark: spikeforge cpu vs NEST 3.10 vs Brian2 2.11 cpp_standalone.

    python tools/bench_microcircuit.py [--scales 0.1 0.25 0.5 1.0] [--k-scale 1.0]
        [--background dc|poisson] [--threads 1 2] [--duration-ms 1000] [--seed 55]
        [--simulators spikeforge nest brian2] [--venv /tmp/sf-mc-bench-venv] [--out FILE]

Every simulator runs the same network: the numbers come from
``spikeforge.microcircuit.derive(scale, k_scale, background)`` (sizes, synapse counts,
signed mean PSCs, DC amplitudes, external in-degrees, delays), each run in a fresh child
process of the benchmark venv (Python 3.13 with nest-simulator 3.10, brian2 2.11 and this
repo's spikeforge, created on first use). Differences the peers force:
  NEST      iaf_psc_exp, fixed_total_number, weights/delays nest.math.redraw'n exactly as
            the reference; Poisson drive through poisson_generator (rate 8 Hz x K_ext).
  Brian2    one NeuronGroup (exact integration of dv/dt = (E_L-v)/tau_m + (I+I_e)/C_m,
            dI/dt = -I/tau_syn) and ONE Synapses object holding all projections, connectivity,
            weights and delays drawn in NumPy by the reference rules (fixed total number with
            multapses, redraw) and passed as arrays: Brian2 cannot draw a fixed total number
            with multapses inside its binary, and Bernoulli p = N_syn/(N_pre N_post) exceeds 1
            for several projections at scale < 1 with k-scale 1 (in-degree above the source
            size). Arrays cost memory, so Brian2 is skipped where they do not fit. Poisson drive
            by PoissonInput (K_ext sources at 8 Hz).
What is timed (wall = perf_counter, CPU = rusage user+sys, peak = ru_maxrss):
  build  spikeforge: microcircuit_network() + build(): host-side connectivity/init, C code
         generation and compilation into an empty cache, loading. NEST: Create + Connect +
         nest.Prepare(). Brian2: network construction + code generation + compilation, then
         the binary's own synapse creation/init (its wall time minus its run time).
  sim    simulation of the requested duration (spikes of every neuron recorded), wall and
         process CPU seconds (Brian2: the binary's run time; CPU over the whole binary).
  events synaptic events per biological second = sum over projections of N_syn x the source
         population's measured rate; events per wall second = that / (sim wall / bio s).
Floor: this machine's memory bandwidth (STREAM 'add' a = b + c in NumPy on 3 x 256 MB arrays,
best of 5) and the bytes one synaptic event moves in spikeforge's layout (post index, weight,
delay: 12 B streamed from a row; the var index is the synapse index and is not loaded; plus
the scattered read-modify-write of the target's input-ring entry, one 64 B cache line in and
out when it misses; with T threads every thread scans each spiking row and keeps its own
targets, so the streamed part is read T times), and the time per
biological second they imply. The machine is shared: figures taken under load (the 1-min
load average is recorded per run) are unreliable; compare ratios within one run.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SIMULATORS = ("spikeforge", "nest", "brian2")
REQUIREMENTS = ["nest-simulator==3.10.*", "brian2==2.11.*"]
#: peak memory per synapse (bytes, measured here) used to skip runs that cannot fit
BYTES_PER_SYNAPSE = {"spikeforge": 60.0, "nest": 50.0, "brian2": 70.0}
STREAM_BYTES, LINE_BYTES = 12, 128


def log(*msg):
    print("[bench_microcircuit]", *msg, file=sys.stderr, flush=True)


def cpu_s(who=None) -> float:
    import resource

    ru = resource.getrusage(resource.RUSAGE_SELF if who is None else who)
    return ru.ru_utime + ru.ru_stime


def peak_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


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
            "counts": counts}


def child_nest(a) -> dict:
    import nest
    from spikeforge.microcircuit import NEURON, V0_MEAN, V0_SD, derive

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
    for t in range(8):
        for s in range(8):
            if d.num_synapses[t, s] == 0:
                continue
            w, dm = float(d.psc_mean[t, s]), float(d.delay_mean[s])
            wdist = nest.random.normal(mean=w, std=abs(w) * 0.1)
            nest.Connect(pops[s], pops[t], {"rule": "fixed_total_number",
                                            "N": int(d.num_synapses[t, s])},
                         {"synapse_model": "static_synapse",
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
    bounds = np.concatenate([[0], np.cumsum(d.sizes)])
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


def brian2_network(b2, d, seed: int):
    """One NeuronGroup (8 subgroups) and one Synapses object holding every projection,
    connectivity passed as arrays (one code object instead of 64: compile time)."""
    from spikeforge.microcircuit import NEURON, V0_MEAN, V0_SD

    ms, mV, pA, pF, Hz = b2.ms, b2.mV, b2.pA, b2.pF, b2.Hz
    b2.defaultclock.dt = 0.1 * ms
    b2.seed(seed)
    ns = {"E_L": NEURON["E_L"] * mV, "tau_m": NEURON["tau_m"] * ms, "C_m": NEURON["C_m"] * pF,
          "tau_syn": NEURON["tau_syn"] * ms, "V_th": NEURON["V_th"] * mV,
          "V_reset": NEURON["V_reset"] * mV}
    eqs = """dv/dt = (E_L - v)/tau_m + (I + I_e)/C_m : volt (unless refractory)
             dI/dt = -I/tau_syn : amp
             I_e : amp (constant)"""
    G = b2.NeuronGroup(int(d.sizes.sum()), eqs, threshold="v >= V_th", reset="v = V_reset",
                       refractory=NEURON["t_ref"] * ms, method="exact", namespace=ns)
    (pre, post, weight, delay), bounds = peer_connectivity(d, seed)
    objects = [G]
    for i in range(8):
        sub = G[int(bounds[i]):int(bounds[i + 1])]
        sub.v = f"({V0_MEAN[i]} + {V0_SD[i]} * randn()) * mV"
        sub.I_e = float(d.dc_amp[i]) * pA
        if d.background == "poisson":
            objects.append(b2.PoissonInput(sub, "I", int(d.k_ext[i]), 8.0 * Hz,
                                           weight=float(d.psc_ext) * pA))
    S = b2.Synapses(G, G, "w : amp (constant)", on_pre="I_post += w")
    S.connect(i=pre, j=post)
    S.w = weight * pA
    S.delay = delay * ms
    del pre, post, weight, delay
    mon = b2.SpikeMonitor(G)
    return b2.Network(*objects, S, mon), mon, bounds


def child_brian2(a) -> dict:
    import brian2 as b2
    from spikeforge.microcircuit import derive

    proj = tempfile.mkdtemp(prefix="sf-bench-mc-brian2-")
    wait_json = os.path.join(proj, "wait4.json")
    b2.set_device("cpp_standalone", build_on_run=False)
    b2.prefs.devices.cpp_standalone.openmp_threads = a.threads
    b2.prefs.devices.cpp_standalone.run_cmd_unix = [
        sys.executable, str(Path(__file__).resolve()), "--wait4", wait_json, "./main"]
    b2.prefs.logging.file_log = False
    t0 = time.perf_counter()
    net, mon, bounds = brian2_network(b2, derive(a.scale, a.k_scale, a.background), a.seed)
    net.run(a.duration_ms * b2.ms)
    b2.device.build(directory=proj, compile=True, run=False, with_output=False)
    t1 = time.perf_counter()
    b2.device.run(directory=proj, with_output=False)
    binary = json.loads(Path(wait_json).read_text())
    run_s = float(Path(b2.device.results_dir, "last_run_info.txt").read_text().split()[0])
    count = np.asarray(mon.count)
    counts = [int(count[bounds[i]:bounds[i + 1]].sum()) for i in range(8)]
    shutil.rmtree(proj, ignore_errors=True)
    return {"build_s": t1 - t0 + binary["wall_s"] - run_s, "sim_s": run_s,
            "sim_cpu_s": binary["cpu_s"], "cpu_note": "whole binary (synapse creation + run)",
            "peak_mb": binary["maxrss_kb"] / 1024,
            "counts": counts}


def wait4_main(argv) -> int:
    """``--wait4 OUT CMD...``: run CMD, write its wall time and rusage to OUT."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv[1:])
    _, status, ru = os.wait4(proc.pid, 0)
    Path(argv[0]).write_text(json.dumps({"wall_s": time.perf_counter() - t0,
                                         "cpu_s": ru.ru_utime + ru.ru_stime,
                                         "maxrss_kb": ru.ru_maxrss}))
    return os.waitstatus_to_exitcode(status)


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


def run_child(py: Path, simulator: str, scale: float, threads: int, args) -> dict:
    cache = tempfile.mkdtemp(prefix="sf-bench-mc-cache-")
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), SPIKEFORGE_CACHE_DIR=cache)
    cmd = [str(py), str(Path(__file__).resolve()), "--child", simulator, "--scale", str(scale),
           "--k-scale", str(args.k_scale), "--background", args.background, "--threads",
           str(threads), "--duration-ms", str(args.duration_ms), "--seed", str(args.seed)]
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


def table(rows: list[dict]) -> list[str]:
    lines = ["scale thr simulator   build s  sim s/bio-s  CPU-s/bio-s  events/wall-s  peak MB"
             "  rates L23E..L6I (Hz)"]
    for r in rows:
        if "skipped" in r:
            lines.append(f"{r['scale']:<5} {r['threads']:>3} {r['simulator']:<11} skipped: "
                         f"{r['skipped']}")
            continue
        lines.append(f"{r['scale']:<5} {r['threads']:>3} {r['simulator']:<11} "
                     f"{fmt(r['build_s'], 1):>7} {fmt(r['sim_s_per_bio_s']):>12} "
                     f"{fmt(r['cpu_s_per_bio_s']):>12} {r['events_per_wall_s']:>14.3g} "
                     f"{fmt(r['peak_mb'], 0):>8}  {' '.join(f'{x:.2f}' for x in r['rates'])}")
    return lines


def ratios(rows: list[dict]) -> list[str]:
    lines = []
    for key in dict.fromkeys((r["scale"], r["threads"]) for r in rows):
        group = {r["simulator"]: r for r in rows if (r["scale"], r["threads"]) == key
                 and "skipped" not in r}
        sf = group.get("spikeforge")
        if sf is None:
            continue
        parts = [f"{peer}/spikeforge sim x{group[peer]['sim_s_per_bio_s'] / sf['sim_s_per_bio_s']:.2f}"
                 f" build x{group[peer]['build_s'] / sf['build_s']:.2f}"
                 f" memory x{group[peer]['peak_mb'] / sf['peak_mb']:.2f}"
                 for peer in ("nest", "brian2") if peer in group]
        lines.append(f"scale {key[0]}, {key[1]} thread(s): " + ("; ".join(parts) or "no peers"))
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
    ap.add_argument("--venv", type=Path, default=Path("/tmp/sf-mc-bench-venv"))
    ap.add_argument("--timeout-s", type=float, default=3600.0)
    ap.add_argument("--out", default="/tmp/bench_microcircuit.json")
    ap.add_argument("--child", choices=SIMULATORS, help=argparse.SUPPRESS)
    ap.add_argument("--warmup-ms", type=float, default=0.0, help=argparse.SUPPRESS)
    ap.add_argument("--nest-rates", type=int, nargs="+", metavar="SEED",
                    help="instead of benchmarking: NEST's mean rates over these seeds after a "
                         "100 ms warm-up (--scales[0], --k-scale, --background, --duration-ms)")
    return ap.parse_args(argv)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--wait4"]:
        return wait4_main(argv[1:])
    args = parse_args(argv)
    if args.child:
        args.threads = args.threads[0]
        print(json.dumps(CHILDREN[args.child](args), default=float))
        return 0
    from spikeforge.microcircuit import derive

    py = venv_python(args.venv)
    if args.nest_rates:
        return nest_rates(py, args)
    # in a child: a child's ru_maxrss starts from its parent's RSS at fork, so big arrays here
    # would inflate every peer's peak memory
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
        for threads in args.threads:
            for sim in args.simulators:
                need = BYTES_PER_SYNAPSE[sim] * n_syn / 2**20
                row = {"scale": scale, "threads": threads, "simulator": sim}
                if need > 0.9 * mem_available_mb():
                    row["skipped"] = (f"needs ~{need / 1024:.1f} GB, "
                                      f"{mem_available_mb() / 1024:.1f} GB available")
                else:
                    log(f"scale {scale}, {threads} thread(s): {sim}")
                    row.update(run_child(py, sim, scale, threads, args))
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
