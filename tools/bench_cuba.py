#!/usr/bin/env python3
"""CUBA/COBA benchmark: spikeforge's cpu backend vs Brian2 cpp_standalone, same run and machine.

Networks (``--model``): Vogels & Abbott (2005), 4000 LIF (3200 E / 800 I), p = 0.02,
dt = 0.1 ms, a SpikeMonitor as Brian2's only monitor. ``--n N`` scales the network to N
neurons (80% E) at the same mean in-degree, p = 0.02 x 4000 / N (80 synapses per neuron).
  cuba  spikeforge.demos.cuba_network; Brian2 the equations of its published CUBA example
        (dv/dt = (ge+gi-(v-El))/taum, dge/dt = -ge/taue, dgi/dt = -gi/taui, v > Vt, reset Vr,
        refractory 5 ms, on_pre ge += we / gi += wi, v0 = Vr + rand()*(Vt-Vr)).
  coba  spikeforge.demos.coba_network (sf.ExpCond); Brian2 benchmark 1 of Brette et al.
        (2007) with conductances in units of g_L (dv/dt = (ge*(Ee-v)+gi*(Ei-v)-(v-El))/taum,
        forward Euler (Brian2's own choice for these equations) unless --brian2-method
        (e.g. exponential_euler, more accurate and costlier), on_pre ge += 0.6 / gi += 6.7,
        v0 ~ N(-65, 5) mV, ge0 ~ N(4, 1.5), gi0 ~ N(20, 12)). spikeforge integrates the
        synaptic current as constant over a step (GeNN's scheme, docs/semantics.md):
        rates are compared, not spike times.
Every (simulator, threads, repeat) runs in its own fresh
child process of the benchmark venv's Python; the table shows medians over repeats.

What is timed (wall clock = time.perf_counter; CPU = getrusage user+sys; peak: see below):
  spikeforge  build  = {cuba,coba}_network() + net.build(backend="cpu"): host connectivity and
                       init, C code generation, cc compilation into an empty
                       $SPIKEFORGE_CACHE_DIR, cffi load. build CPU-s (both simulators) =
                       RUSAGE_SELF + RUSAGE_CHILDREN (compilers) over the build.
              sim    = sim.run(duration) (spike recording on); CPU = RUSAGE_SELF over sim.run.
              peak   = VmHWM of the child Python process (/proc/self/status; the compiler is
                       another process). Not ru_maxrss, which Linux seeds at exec with the
                       forking parent's RSS.
              threads: OMP_NUM_THREADS in the child's environment.
  brian2      build  = network construction + Network.run() (code generation)
                       + device.build(compile=True, run=False) (make/g++, fresh project dir).
              sim    = the binary's own network-run time (results/last_run_info.txt).
              binary = wall time of ./main: synapse creation, init, the run, writing results.
              CPU and peak = os.wait4 rusage of ./main alone (started through
                       prefs.devices.cpp_standalone.run_cmd_unix = a minimal ``python -S``
                       helper, WAIT4_CODE): ru_maxrss of an exec'ed binary is
                       max(helper's RSS at exec, ~12 MB; the binary's VmHWM), i.e. exact
                       for a binary above ~12 MB, an upper bound below.
                       python_peak_mb = the child Python's VmHWM.
              threads: prefs.devices.cpp_standalone.openmp_threads (and OMP_NUM_THREADS).
  total  = build + sim (spikeforge) or build + binary (brian2): everything after imports.
  Brian2 generates connectivity inside the binary, spikeforge inside build: compare totals too.
  Brian2's CPU-s therefore include its binary's init; spikeforge's cover sim.run only.

The venv is created on first use (Python 3.13, brian2==2.11.*, spikeforge editable from this
repo); if that fails: Python 3.11, brian2==2.9.0, numpy<2.4 (recorded in the JSON).
OMP_*/GOMP_* variables of the caller's environment (e.g. OMP_WAIT_POLICY) reach both
simulators and are recorded; so are the machine, versions, flags, every raw run and the
1-min load average after each run (other processes on the box inflate multi-thread times).
"""

from __future__ import annotations

import argparse
import datetime
import glob
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
N_BASE, P_BASE = 4000, 0.02  # the published size and connection probability


def sizes(n: int) -> tuple[int, int, float]:
    """(neurons, excitatory neurons, connection probability) of an n-neuron instance with
    the published mean in-degree N_BASE P_BASE = 80."""
    return n, round(0.8 * n), P_BASE * N_BASE / n
VENV_CHOICES = (("3.13", ["brian2==2.11.*"], "brian2 2.11 on Python 3.13"),
                ("3.11", ["brian2==2.9.0", "numpy<2.4"], "FALLBACK: brian2 2.9.0 on Python 3.11"))
COLUMNS = ("simulator", "threads", "build_s", "build_cpu_s", "sim_s", "binary_s", "total_s",
           "cpu_s_per_bio_s", "peak_mb", "rate_e", "rate_i")


def log(*msg):
    print("[bench_cuba]", *msg, file=sys.stderr, flush=True)


# child: spikeforge ---------------------------------------------------------------------------
def child_spikeforge(args) -> dict:
    assert not any(Path(os.environ["SPIKEFORGE_CACHE_DIR"]).iterdir()), "cache dir not empty"
    from spikeforge import demos

    make = {"cuba": demos.cuba_network, "coba": demos.coba_network}[args.model]
    c0, t0 = cpu(), time.perf_counter()
    n, _, p = sizes(args.n)
    sim = make(n=n, p=p, seed=args.seed).build(backend="cpu")
    c1, t1 = cpu(), time.perf_counter()
    s0 = cpu(children=False)
    sim.run(duration_ms=args.duration_ms, progress=False)
    s1, t2 = cpu(children=False), time.perf_counter()
    return {"build_s": t1 - t0, "build_cpu_s": c1 - c0, "sim_s": t2 - t1, "binary_s": None,
            "total_s": t2 - t0, "cpu_s": s1 - s0, "peak_mb": peak_mb(), "flags": sim.flags,
            "team": sim.team,  # threads the steps ran on (backends/cpu/simulation.team_size)
            **rates(args.n, len(sim.spikes("E")[0]), len(sim.spikes("I")[0]),
                    args.duration_ms)}


def cpu(ru=None, children=True) -> float:
    """user+sys CPU-s of ``ru``, else of this process plus (``children``) its reaped
    children (the C/C++ compilers)."""
    if ru is not None:
        return ru.ru_utime + ru.ru_stime
    who = (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)[:1 + children]
    return sum(cpu(resource.getrusage(w)) for w in who)


def peak_mb() -> float:
    """VmHWM (peak resident set) of this process, in MB, from /proc/self/status. Not
    ru_maxrss: Linux carries the RSS of the process that forked (or vforked) a child at its
    exec into the child's ru_maxrss, so a child of a big parent would report its pages."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def rates(n: int, spikes_e: int, spikes_i: int, duration_ms: float) -> dict:
    _, n_e, _ = sizes(n)
    dur = duration_ms / 1000.0
    return {"rate_e": spikes_e / n_e / dur, "rate_i": spikes_i / (n - n_e) / dur}


# child: brian2 --------------------------------------------------------------------------------
def child_brian2(args) -> dict:
    import brian2 as b2
    import numpy as np

    proj = tempfile.mkdtemp(prefix="sf-bench-brian2-")
    wait_json = os.path.join(proj, "wait4.json")
    b2.set_device("cpp_standalone", build_on_run=False)
    b2.prefs.devices.cpp_standalone.openmp_threads = args.threads[0]
    b2.prefs.devices.cpp_standalone.run_cmd_unix = [sys.executable, "-S", "-c", WAIT4_CODE,
                                                    wait_json, "./main"]
    b2.prefs.logging.file_log = False
    c0, t0 = cpu(), time.perf_counter()
    net, mon = BRIAN2_NETWORKS[args.model](b2, args.seed, brian2_method(args), args.n)
    net.run(args.duration_ms * b2.ms)
    b2.device.build(directory=proj, compile=True, run=False, with_output=False)
    c1, t1 = cpu(), time.perf_counter()
    b2.device.run(directory=proj, with_output=False)
    binary = json.loads(Path(wait_json).read_text())
    run_time = float(Path(b2.device.results_dir, "last_run_info.txt").read_text().split()[0])
    counts, n_e = np.asarray(mon.count), sizes(args.n)[1]
    out = {"build_s": t1 - t0, "build_cpu_s": c1 - c0, "sim_s": run_time,
           "binary_s": binary["wall_s"], "total_s": t1 - t0 + binary["wall_s"],
           "cpu_s": binary["cpu_s"], "peak_mb": binary["maxrss_kb"] / 1024,
           "python_peak_mb": peak_mb(), "make_s": b2.device.timers["compile"]["make"],
           "flags": list(b2.prefs.codegen.cpp.extra_compile_args_gcc),
           **rates(args.n, int(counts[:n_e].sum()), int(counts[n_e:].sum()),
                   args.duration_ms)}
    shutil.rmtree(proj, ignore_errors=True)
    return out


def brian2_cuba(b2, seed: int, method: str, n: int):
    """Brian2's CUBA example (Vogels & Abbott 2005), verbatim equations and parameters."""
    ms, mV = b2.ms, b2.mV
    b2.defaultclock.dt = 0.1 * ms
    b2.seed(seed)
    ns = {"taum": 20 * ms, "taue": 5 * ms, "taui": 10 * ms, "Vt": -50 * mV, "Vr": -60 * mV,
          "El": -49 * mV, "we": (60 * 0.27 / 10) * mV, "wi": (-20 * 4.5 / 10) * mV}
    eqs = """dv/dt  = (ge+gi-(v-El))/taum : volt (unless refractory)
             dge/dt = -ge/taue : volt
             dgi/dt = -gi/taui : volt"""
    P = b2.NeuronGroup(n, eqs, threshold="v>Vt", reset="v = Vr", refractory=5 * ms,
                       method=method, namespace=ns)
    P.v = "Vr + rand() * (Vt - Vr)"
    P.ge = 0 * mV
    P.gi = 0 * mV
    return _brian2_ei_network(b2, P, ns, n)


def _brian2_ei_network(b2, P, ns, n: int):
    """P's first 80% excite (ge += we), the others inhibit (gi += wi), with the
    probability of :func:`sizes`; a SpikeMonitor on P."""
    _, n_e, p = sizes(n)
    Ce = b2.Synapses(P, P, on_pre="ge += we", namespace=ns)
    Ci = b2.Synapses(P, P, on_pre="gi += wi", namespace=ns)
    Ce.connect(f"i<{n_e}", p=p)
    Ci.connect(f"i>={n_e}", p=p)
    mon = b2.SpikeMonitor(P)
    return b2.Network(P, Ce, Ci, mon), mon


def brian2_coba(b2, seed: int, method: str, n: int):
    """Benchmark 1 of Brette et al. (2007) (COBA), conductances in units of g_L = 10 nS."""
    ms, mV = b2.ms, b2.mV
    b2.defaultclock.dt = 0.1 * ms
    b2.seed(seed)
    ns = {"taum": 20 * ms, "taue": 5 * ms, "taui": 10 * ms, "Vt": -50 * mV, "Vr": -60 * mV,
          "El": -60 * mV, "Ee": 0 * mV, "Ei": -80 * mV, "we": 0.6, "wi": 6.7}
    eqs = """dv/dt  = (ge*(Ee-v)+gi*(Ei-v)-(v-El))/taum : volt (unless refractory)
             dge/dt = -ge/taue : 1
             dgi/dt = -gi/taui : 1"""
    P = b2.NeuronGroup(n, eqs, threshold="v>Vt", reset="v = Vr", refractory=5 * ms,
                       method=method, namespace=ns)
    P.v = "El - 5*mV + 5*mV*randn()"
    P.ge = "4 + 1.5*randn()"
    P.gi = "20 + 12*randn()"
    return _brian2_ei_network(b2, P, ns, n)


BRIAN2_NETWORKS = {"cuba": brian2_cuba, "coba": brian2_coba}
#: Brian2's integration method per model unless --brian2-method names another
BRIAN2_METHODS = {"cuba": "exact", "coba": "euler"}  # what Brian2 itself picks for each


def brian2_method(args) -> str:
    return args.brian2_method or BRIAN2_METHODS[args.model]


#: ``python -S -c WAIT4_CODE OUT CMD...``: run CMD, write its wall time and rusage to OUT.
#: A minimal interpreter (no site, no numpy: ~12 MB) so that ru_maxrss of the exec'ed CMD,
#: which Linux takes as max(the forking process's RSS at exec, CMD's own peak), is CMD's.
WAIT4_CODE = """
import json, os, subprocess, sys, time
t0 = time.perf_counter()
proc = subprocess.Popen(sys.argv[2:])
_, status, ru = os.wait4(proc.pid, 0)
with open(sys.argv[1], "w") as f:
    json.dump({"wall_s": time.perf_counter() - t0, "cpu_s": ru.ru_utime + ru.ru_stime,
               "maxrss_kb": ru.ru_maxrss}, f)
sys.exit(os.waitstatus_to_exitcode(status))
"""


# parent ---------------------------------------------------------------------------------------
def sh(cmd) -> subprocess.CompletedProcess:
    """Run ``cmd`` capturing text output; the caller inspects returncode."""
    return subprocess.run([str(c) for c in cmd], check=False, capture_output=True, text=True)


def find_python(version: str) -> str | None:
    pattern = os.path.expanduser(f"~/.pyenv/versions/{version}*/bin/python{version}")
    candidates = sorted(glob.glob(pattern))[-1:] + [shutil.which(f"python{version}")]
    return next((exe for exe in filter(None, candidates)
                 if sh([exe, "--version"]).returncode == 0), None)


def venv_ok(py: Path) -> bool:
    code = ("import brian2, spikeforge, sys; from pathlib import Path; "
            f"sys.exit(not Path(spikeforge.__file__).resolve().is_relative_to({str(REPO)!r}))")
    return py.exists() and sh([py, "-c", code]).returncode == 0


def ensure_venv(venv: Path) -> Path:
    """The venv's python, creating the venv (see VENV_CHOICES) when it lacks brian2 or this
    repo's spikeforge."""
    py = venv / "bin" / "python"
    if venv_ok(py):
        return py
    for version, reqs, note in VENV_CHOICES:
        base = find_python(version)
        if base is None:
            log(f"no python{version} found")
            continue
        if (venv / "pyvenv.cfg").exists():
            shutil.rmtree(venv)
        log(f"creating {venv} with {base}: {' '.join(reqs)} + spikeforge -e {REPO}")
        subprocess.run([base, "-m", "venv", str(venv)], check=True)
        pip = subprocess.run([str(py), "-m", "pip", "install", "-q", *reqs, "-e", str(REPO)],
                             check=False)
        if pip.returncode == 0 and venv_ok(py):
            return py
        log(f"venv attempt failed: {note}")
    raise SystemExit(f"could not create a benchmark venv at {venv}")


def run_child(py: Path, simulator: str, threads: int, args) -> dict:
    cache = tempfile.mkdtemp(prefix="sf-bench-cache-")
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), SPIKEFORGE_CACHE_DIR=cache)
    cmd = [str(py), str(Path(__file__).resolve()), "--child", simulator, "--model", args.model,
           "--brian2-method", brian2_method(args), "--n", str(args.n), "--threads",
           str(threads), "--duration-ms", str(args.duration_ms), "--seed", str(args.seed)]
    try:
        proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, text=True, check=True)
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result.update(simulator=simulator, threads=threads, loadavg_1min=os.getloadavg()[0],
                  cpu_s_per_bio_s=result["cpu_s"] / (args.duration_ms / 1000.0))
    return result


def versions(py: Path) -> dict:
    code = ("import json, sys, brian2, numpy, cffi, spikeforge; print(json.dumps({'python': "
            "sys.version.split()[0], 'brian2': brian2.__version__, 'numpy': numpy.__version__, "
            "'cffi': cffi.__version__, 'spikeforge': getattr(spikeforge, '__version__', '?')}))")
    out = json.loads(sh([py, "-c", code]).stdout)
    for tool in ("cc", "g++"):
        res = sh([tool, "--version"])
        out[tool] = res.stdout.splitlines()[0] if res.returncode == 0 else "missing"
    git = sh(["git", "-C", REPO, "rev-parse", "HEAD"])
    dirty = sh(["git", "-C", REPO, "status", "--porcelain", "--untracked-files=no"])
    out["spikeforge_commit"] = git.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    return out


def machine() -> dict:
    info = Path("/proc/cpuinfo").read_text().splitlines()
    model = next((ln.split(":", 1)[1].strip() for ln in info if ln.startswith("model name")), "?")
    mem = next((ln.split()[1] for ln in Path("/proc/meminfo").read_text().splitlines()
                if ln.startswith("MemTotal")), "0")
    return {"nproc": os.cpu_count(), "usable_cpus": len(os.sched_getaffinity(0)),
            "cpu_model": model, "mem_total_gb": round(int(mem) / 2**20, 1),
            "platform": platform.platform(), "loadavg_start": os.getloadavg()}


def summarise(runs: list[dict]) -> list[dict]:
    rows = []
    for key in dict.fromkeys((r["simulator"], r["threads"]) for r in runs):
        group = [r for r in runs if (r["simulator"], r["threads"]) == key]
        row = {"simulator": key[0], "threads": key[1], "repeats": len(group)}
        for col in COLUMNS[2:]:
            vals = [r[col] for r in group if r[col] is not None]
            row[col] = statistics.median(vals) if vals else None
            row[col + "_range"] = [min(vals), max(vals)] if vals else None
        rows.append(row)
    return rows


def fmt(value, digits=3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def report(rows: list[dict], threads: list[int], tolerance: float) -> tuple[list[str], dict]:
    lines = [("simulator   thr  build s  build CPU-s   sim s  sim range       binary s  total s"
              "  CPU-s/bio-s  peak MB  rate E  rate I")]
    for r in rows:
        rng = r["sim_s_range"]
        lines.append(f"{r['simulator']:<11} {r['threads']:>3} {fmt(r['build_s']):>8} "
                     f"{fmt(r['build_cpu_s']):>12} {fmt(r['sim_s']):>7}  "
                     f"{fmt(rng[0]) + '-' + fmt(rng[1]):<15} "
                     f"{fmt(r['binary_s']):>8} {fmt(r['total_s']):>8} "
                     f"{fmt(r['cpu_s_per_bio_s']):>12} {fmt(r['peak_mb'], 1):>8} "
                     f"{fmt(r['rate_e'], 2):>7} {fmt(r['rate_i'], 2):>7}")
    checks, ok = {}, True
    for t in threads:
        sf, b2 = (next(r for r in rows if r["simulator"] == s and r["threads"] == t)
                  for s in ("spikeforge", "brian2"))
        ratios = {c: b2[c] / sf[c] for c in ("build_s", "build_cpu_s", "sim_s", "total_s",
                                             "cpu_s_per_bio_s")}
        lines.append(f"threads {t}: brian2/spikeforge  build x{ratios['build_s']:.2f} (CPU "
                     f"x{ratios['build_cpu_s']:.2f})  sim x{ratios['sim_s']:.2f}  total "
                     f"x{ratios['total_s']:.2f}  CPU-s/bio-s x{ratios['cpu_s_per_bio_s']:.2f}")
        rel = {p: abs(b2[f"rate_{p}"] - sf[f"rate_{p}"]) / sf[f"rate_{p}"] for p in ("e", "i")}
        passed = all(v <= tolerance for v in rel.values())
        ok &= passed
        checks[t] = {"ratios": ratios, "rate_rel_diff": rel, "passed": passed}
        lines.append(f"threads {t}: rate check (|brian2-spikeforge|/spikeforge <= "
                     f"{tolerance:.0%}): E {rel['e']:.1%}, I {rel['i']:.1%} -> "
                     f"{'PASS' if passed else 'FAIL'}")
    return lines, {"per_threads": checks, "all_passed": ok}


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", choices=("cuba", "coba"), default="cuba")
    ap.add_argument("--n", type=int, default=N_BASE,
                    help="neurons (80%% E; mean in-degree kept at 80)")
    ap.add_argument("--brian2-method", default=None,
                    help="Brian2 integration method (default: what Brian2 picks, exact for "
                         "cuba and euler for coba; exponential_euler is the costlier option)")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--duration-ms", type=float, default=1000.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", default=None, help="default /tmp/bench_<model>_results.json")
    ap.add_argument("--venv", type=Path, default=Path("/tmp/sf-bench-venv"))
    ap.add_argument("--tolerance", type=float, default=0.10, help="rate agreement, relative")
    ap.add_argument("--child", choices=("spikeforge", "brian2"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.n < 100:
        ap.error(f"--n must be at least 100 (the in-degree is 80), got {args.n}")
    return args


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.child:
        child = child_spikeforge if args.child == "spikeforge" else child_brian2
        print(json.dumps(child(args), default=float))
        return 0
    py = ensure_venv(args.venv)
    vers = versions(py)
    venv_note = next((note for _, reqs, note in VENV_CHOICES
                      if vers["brian2"].startswith(reqs[0].split("==")[1].rstrip(".*"))), "other")
    meta = {"date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            "command": " ".join([Path(sys.executable).name, *sys.argv]),
            "machine": machine(), "versions": vers, "venv": str(args.venv),
            "omp_env": {k: v for k, v in os.environ.items() if k.startswith(("OMP_", "GOMP_"))},
            "venv_note": venv_note, "duration_ms": args.duration_ms, "seed": args.seed,
            "model": args.model, "brian2_method": brian2_method(args), "n": args.n,
            "p": sizes(args.n)[2]}
    runs = []
    for rep in range(args.repeats):
        for threads in args.threads:
            for simulator in ("spikeforge", "brian2"):
                log(f"repeat {rep + 1}/{args.repeats}: {simulator}, {threads} thread(s)")
                runs.append(run_child(py, simulator, threads, args) | {"repeat": rep})
                log("  " + ", ".join(f"{c}={fmt(runs[-1][c])}" for c in COLUMNS[2:]))
    meta["machine"]["loadavg_end"] = os.getloadavg()
    rows = summarise(runs)
    lines, check = report(rows, args.threads, args.tolerance)
    header = (f"{args.model.upper()} {args.n} neurons (brian2 method {brian2_method(args)}), "
              f"{args.duration_ms:g} ms bio, dt 0.1 ms, "
              f"medians of {args.repeats} | {meta['date']} | {meta['machine']['cpu_model']} x"
              f"{meta['machine']['nproc']} | brian2 {meta['versions']['brian2']}, "
              f"python {meta['versions']['python']} ({venv_note})")
    print("\n".join([header, *lines]))
    out = Path(args.out or f"/tmp/bench_{args.model}_results.json")
    out.write_text(json.dumps(meta | {"summary": rows, "check": check, "runs": runs},
                                         indent=1, default=float))
    log(f"wrote {out}")
    return 0 if check["all_passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
