"""The Potjans & Diesmann (2014) cortical microcircuit: run, measure, plot.

    python examples/microcircuit.py [--scale 0.1] [--k-scale 0.1] [--background poisson|dc]
        [--thalamic] [--dc-stimulus] [--backend cpu] [--duration-ms 1100] [--warmup-ms 100]
        [--threads N] [--seed 55 | --seeds 55 56 57] [--out DIR] [--no-progress]

For every seed: builds ``spikeforge.microcircuit.microcircuit_network`` (neuron
numbers x scale, in-degrees x k-scale with the reference DC compensation), runs it
and prints per population the mean rate after the warm-up, the mean CV of
inter-spike intervals and the synchrony (variance/mean of the population count in
3 ms bins), beside the reference rate: the NEST example's full-scale rates at
scale = k-scale = 1, its shipped N = K = 0.1 Poisson run at 0.1/0.1 (other
scales have no reference; the full-scale rates are shown as a guide). Several
seeds give the mean and the standard deviation over seeds.

With ``--out DIR``: ``rates.json`` (arguments, timings, peak memory, per-seed and
mean statistics, reference), ``spikes.npz`` (first seed: ``P.times_ms``, ``P.ids``
per population), ``raster.png`` (first seed, the last 200 ms) and ``rates.png``
(mean rate per population), the plots when matplotlib is installed.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np

from spikeforge.analysis import network_stats
from spikeforge.microcircuit import (FULL_MEAN_RATES, POPULATIONS, REFERENCE_RATES_0_1,
                                     microcircuit_network)

__all__ = ["main", "microcircuit_network", "reference_rates", "run_one"]


def reference_rates(scale: float, k_scale: float, background: str) -> tuple[np.ndarray, str]:
    """The reference rates to compare with, and what they are."""
    if scale == 1.0 and k_scale == 1.0:
        return FULL_MEAN_RATES, "NEST full-scale reference"
    if scale == 0.1 and k_scale == 0.1 and background == "poisson":
        return REFERENCE_RATES_0_1, "NEST example run at N = K = 0.1, Poisson"
    return FULL_MEAN_RATES, "full-scale rates (guide only: no reference at this scale)"


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_one(args, seed: int) -> tuple[object, dict]:
    """Build and run one network; returns (simulation, {timings, stats})."""
    t0 = time.perf_counter()
    net = microcircuit_network(args.scale, args.k_scale, args.background, seed=seed, dt=args.dt,
                               thalamic=args.thalamic, dc_stimulus=args.dc_stimulus)
    t1 = time.perf_counter()
    options = {"threads": args.threads} if args.backend == "cpu" and args.threads else {}
    sim = net.build(backend=args.backend, **options)
    t2 = time.perf_counter()
    sim.run(duration_ms=args.duration_ms, progress=False if args.no_progress else None)
    t3 = time.perf_counter()
    stats = network_stats(sim, args.warmup_ms, sim.t, POPULATIONS)
    timing = {"network_s": t1 - t0, "build_s": t2 - t1, "run_s": t3 - t2,
              "run_s_per_bio_s": (t3 - t2) / (args.duration_ms / 1000.0),
              "synapses": int(sum(p.connectivity.n for p in net.projections)),
              "neurons": int(sum(p.size for p in net.populations))}
    return sim, {"seed": seed, **timing,
                 "populations": {p: s.as_dict() for p, s in stats.items()}}


def summarise(runs: list[dict]) -> dict:
    """Mean (and sd over seeds) of every statistic per population."""
    out = {}
    for pop in POPULATIONS:
        entry = {}
        for key in ("rate_hz", "cv_isi", "synchrony"):
            values = np.array([r["populations"][pop][key] for r in runs], dtype=np.float64)
            values = values[np.isfinite(values)]
            entry[key] = float(values.mean()) if len(values) else float("nan")
            entry[key + "_sd"] = float(values.std()) if len(values) > 1 else 0.0
        out[pop] = entry
    return out


def format_table(summary: dict, reference: np.ndarray) -> str:
    head = f"{'population':<10} {'rate (Hz)':>10} {'sd':>7} {'reference':>9} {'diff':>7} " \
           f"{'CV ISI':>7} {'synchrony':>9}"
    lines = [head]
    for i, pop in enumerate(POPULATIONS):
        s = summary[pop]
        diff = (s["rate_hz"] - reference[i]) / reference[i]
        lines.append(f"{pop:<10} {s['rate_hz']:>10.3f} {s['rate_hz_sd']:>7.3f} "
                     f"{reference[i]:>9.3f} {diff:>+7.1%} {s['cv_isi']:>7.3f} "
                     f"{s['synchrony']:>9.2f}")
    return "\n".join(lines)


def write_spikes(out: Path, sim, scale: float) -> list[Path]:
    """spikes.npz and raster.png (the last 200 ms) of one simulation."""
    from spikeforge import plot

    out.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for pop in POPULATIONS:
        times, ids = sim.spikes(pop)[:2]
        arrays[f"{pop}.times_ms"], arrays[f"{pop}.ids"] = times, ids
    np.savez_compressed(out / "spikes.npz", **arrays)
    written = [out / "spikes.npz"]
    if not plot.have_matplotlib():
        print(f"matplotlib missing: plots skipped ({plot.INSTALL_HINT})")
        return written
    start = max(0.0, sim.t - 200.0)
    window = {}
    for p in POPULATIONS:
        times, ids = arrays[f"{p}.times_ms"], arrays[f"{p}.ids"]
        window[p] = (times[times >= start], ids[times >= start])
    sizes = {p: sim.network.population(p).size for p in POPULATIONS}
    written.append(plot.raster(window, list(POPULATIONS), out / "raster.png", sizes=sizes,
                               title=f"PD14 microcircuit, scale {scale:g}"))
    return written


def write_report(out: Path, report: dict) -> list[Path]:
    """rates.json and rates.png (mean rate per population)."""
    from spikeforge import plot

    out.mkdir(parents=True, exist_ok=True)
    (out / "rates.json").write_text(json.dumps(report, indent=1))
    written = [out / "rates.json"]
    if plot.have_matplotlib():
        rates = {p: report["mean"][p]["rate_hz"] for p in POPULATIONS}
        written.append(plot.rates_bar(rates, out / "rates.png", title=(
            f"mean rate after {report['args']['warmup_ms']:g} ms warm-up")))
    return written


def parse(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=0.1, help="neuron-number scale")
    parser.add_argument("--k-scale", type=float, default=None,
                        help="in-degree scale (default: --scale)")
    parser.add_argument("--background", choices=("poisson", "dc"), default="poisson")
    parser.add_argument("--thalamic", action="store_true",
                        help="the reference's thalamic pulse: 902 neurons at 120 Hz, 701-711 ms")
    parser.add_argument("--dc-stimulus", action="store_true",
                        help="the reference's DC stimulus: 0.3 pA x K_ext for 650-750 ms")
    parser.add_argument("--backend", default=None, help="default: best available")
    parser.add_argument("--duration-ms", type=float, default=1100.0)
    parser.add_argument("--warmup-ms", type=float, default=100.0)
    parser.add_argument("--dt", type=float, default=0.1)
    parser.add_argument("--threads", type=int, default=None, help="cpu backend threads")
    parser.add_argument("--seed", type=int, default=55)
    parser.add_argument("--seeds", type=int, nargs="+", default=None, help="several seeds")
    parser.add_argument("--out", default=None)
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    args.k_scale = args.scale if args.k_scale is None else args.k_scale
    if args.duration_ms <= args.warmup_ms:
        parser.error("--duration-ms must exceed --warmup-ms")
    if args.backend is None:
        from spikeforge.demos import best_backend

        args.backend = best_backend()
    return args


def main(argv=None) -> dict:
    args = parse(argv)
    seeds = args.seeds or [args.seed]
    reference, what = reference_rates(args.scale, args.k_scale, args.background)
    if args.thalamic or args.dc_stimulus:
        what += "; for the unstimulated model: the stimuli change the rates they cover"
    runs, written = [], []
    for seed in seeds:
        sim, run = run_one(args, seed)
        runs.append(run)
        print(f"seed {seed}: {run['neurons']} neurons, {run['synapses']} synapses; network "
              f"{run['network_s']:.1f} s, build {run['build_s']:.1f} s, run {run['run_s']:.1f} s "
              f"({run['run_s_per_bio_s']:.2f} s per biological s), peak RSS "
              f"{peak_rss_mb():.0f} MB", flush=True)
        if args.out and seed == seeds[0]:
            written += write_spikes(Path(args.out), sim, args.scale)
        del sim
    summary = summarise(runs)
    print(f"scale {args.scale}, k-scale {args.k_scale}, {args.background} drive, "
          f"{args.backend}, {len(seeds)} seed(s) x {args.duration_ms - args.warmup_ms:g} ms "
          f"after {args.warmup_ms:g} ms warm-up; reference: {what}")
    print(format_table(summary, reference))
    report = {"args": {k: v for k, v in vars(args).items()}, "reference": dict(
        zip(POPULATIONS, map(float, reference))), "reference_source": what, "runs": runs,
        "mean": summary, "peak_rss_mb": peak_rss_mb()}
    if args.out:
        written += write_report(Path(args.out), report)
        for path in written:
            print(f"wrote {path}")
    return report


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
