"""The ``spikeforge`` command line (also ``python -m spikeforge.cli``).

Commands::

    spikeforge info                       version, Python/numpy, every backend and why
                                          it is unavailable
    spikeforge run MODEL.json --backend B --duration-ms T [--out DIR] [--seed S]
                                          [--no-progress]
    spikeforge demo [--backend B] [--duration-ms 1000] [--out DIR] [--seed S]
                                          Potjans & Diesmann (2014) cortical microcircuit
                                          at scale 0.1 (7717 LIF neurons, 8 populations),
                                          on the first available of cpu, cuda, fpga, numpy
    spikeforge validate MODEL.json [--backends numpy,cpu,cuda,fpga] [--steps N]
    spikeforge validate --random K [--seed S] [--backends ...] [--steps N]
                                          [--report validate-report.json]
                                          [--failures DIR] [--shrink-seconds T] [--verbose]
                                          compare every requested backend with numpy; see
                                          spikeforge.tools.validate (exit 1 on any mismatch)
    spikeforge fpga boards | estimate MODEL.json --board B | build MODEL.json --board B --out DIR
                                          FPGA resource estimate and Vitis/Vivado project;
                                          see spikeforge.tools.fpga and docs/fpga-build.md

``run`` and ``demo`` print one row per spiking population: size, spike count and
mean rate = spikes / (size * batch_size * duration_s), and, with ``--out DIR``
(``demo`` always writes, by default to ./spikeforge_demo), write:

- ``DIR/spikes.npz``: for every population P the arrays ``P.times_ms`` (float64),
  ``P.ids`` and ``P.batch`` (int64), one entry per spike event;
- ``DIR/rates.json``: ``{"model", "backend", "seed", "dt_ms", "duration_ms",
  "batch_size", "populations": {P: {"size", "spikes", "rate_hz"}}}``;
- ``DIR/raster.png`` (and ``DIR/rates.png`` for ``demo``) when matplotlib is
  installed (``pip install spikeforge[plot]``); otherwise a note says the plot
  was skipped.

Errors are reported as one line ``spikeforge: error: ...`` on stderr with exit
status 1 (2 for bad command-line usage); ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

DEMO_OUT = "spikeforge_demo"


class CLIError(Exception):
    """A user-facing error: printed without a traceback."""


# argument parsing ----------------------------------------------------------------
def _positive_ms(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not np.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of ms, got {text!r}")
    return value


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(f"must be in [0, 2**32), got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="spikeforge", description="Describe a spiking network once; run it anywhere.")
    parser.add_argument("--version", action="version", version=f"spikeforge {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("info", help="versions and backends")
    run = sub.add_parser("run", help="run a JSON model file")
    run.add_argument("model", help="model file written by Network.save (JSON)")
    run.add_argument("--backend", default="numpy", help="backend name (default: numpy)")
    run.add_argument("--duration-ms", type=_positive_ms, required=True,
                     help="biological time to simulate, ms")
    _common(run, out_default=None)
    demo = sub.add_parser("demo", help="run the Potjans & Diesmann (2014) microcircuit, scale 0.1")
    demo.add_argument("--backend", default=None,
                      help="backend name (default: first available of cpu, cuda, fpga, numpy)")
    demo.add_argument("--duration-ms", type=_positive_ms, default=1000.0,
                      help="biological time to simulate, ms (default: 1000)")
    _common(demo, out_default=DEMO_OUT)
    validate = sub.add_parser("validate", help="compare backends with the numpy reference")
    _validate_arguments(validate)
    codegen = sub.add_parser("codegen", help="write a model's generated sources")
    codegen.add_argument("model", help="JSON model file")
    codegen.add_argument("--backend", default="cpu", help="backend whose sources to write")
    codegen.add_argument("--out", required=True, help="output directory")
    codegen.add_argument("--report", action="store_true",
                         help="cuda: print registers, shared memory, spills and bytes per step of each kernel")
    fpga = sub.add_parser("fpga", help="FPGA resource estimate and bitstream project")
    _fpga_arguments(fpga)
    return parser


def _fpga_arguments(parser):
    from spikeforge.tools.fpga import add_arguments  # argparse only; the backend loads lazily

    add_arguments(parser)


def _validate_arguments(parser):
    from spikeforge.tools.validate import add_arguments

    add_arguments(parser, seed_type=_seed)


def _common(parser, out_default):
    where = f"(default: ./{out_default})" if out_default else "(default: print only)"
    parser.add_argument("--out", default=out_default, help=f"output directory {where}")
    parser.add_argument("--seed", type=_seed, default=None,
                        help="override the network's random seed")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


# commands ----------------------------------------------------------------------
def cmd_info(args) -> int:
    from . import __version__
    from .plot import have_matplotlib
    from .registry import available

    print(f"spikeforge {__version__}")
    print(f"python     {platform.python_version()} ({sys.executable})")
    print(f"numpy      {np.__version__}")
    if have_matplotlib():
        import matplotlib

        print(f"matplotlib {matplotlib.__version__} (plots enabled)")
    else:
        print("matplotlib not installed (plots disabled: install spikeforge[plot])")
    print("backends:")
    for status in available():
        state = "available" if status.available else "unavailable"
        reason = f": {status.reason}" if status.reason else ""
        print(f"  {status.name:<8} {state}{reason}")
    return 0


def _load_model(model: str):
    import spikeforge as sf

    path = Path(model)
    if not path.is_file():
        raise CLIError(f"model file not found: {path}")
    return sf.load(path)


def cmd_run(args) -> int:
    _check_backend(args.backend)
    return _simulate_and_report(_load_model(args.model), args, model=args.model, bar=False)


def cmd_codegen(args) -> int:
    from spikeforge.tools.codegen import write_sources

    network = _load_model(args.model)
    try:
        files = write_sources(network, args.backend, args.out)
    except ValueError as error:
        raise CLIError(str(error)) from None
    for path in files:
        print(path)
    if getattr(args, "report", False):
        from spikeforge.tools.codegen import report

        try:
            print(report(network, args.backend))
        except ValueError as error:
            raise CLIError(str(error)) from None
    return 0


def cmd_demo(args) -> int:
    from .demos import best_backend, microcircuit_demo_network

    args.backend = args.backend or best_backend()
    _check_backend(args.backend)
    network = microcircuit_demo_network(55 if args.seed is None else args.seed)
    print(f"Potjans & Diesmann (2014) cortical microcircuit, scale 0.1 (N = K = 0.1, Poisson "
          f"drive), {sum(p.size for p in network.populations)} LIF neurons, backend {args.backend}")
    return _simulate_and_report(network, args, model="demo:microcircuit", bar=True)


def cmd_validate(args) -> int:
    from spikeforge.tools import validate

    try:
        return validate.run(args)
    except validate.UsageError as error:
        raise CLIError(str(error)) from None


def cmd_fpga(args) -> int:
    from spikeforge.tools import fpga

    try:
        return fpga.run(args)
    except Exception as error:  # usage, project and does-not-fit errors: one line
        if args.debug or type(error).__name__ not in fpga.USER_ERRORS:
            raise
        raise CLIError(str(error)) from None


def _check_backend(name: str) -> None:
    from .registry import backends

    known = backends()
    if name not in known:
        raise CLIError(f"unknown backend {name!r}; known backends: {', '.join(sorted(known))}")
    ok, reason = known[name].availability()
    if not ok:
        raise CLIError(f"backend {name!r} is not available here: {reason}")


def _simulate_and_report(network, args, model: str, bar: bool) -> int:
    if args.seed is not None:
        network = dataclasses.replace(network, seed=args.seed)
    start = time.perf_counter()
    sim = network.build(args.backend)
    built = time.perf_counter()
    sim.run(duration_ms=args.duration_ms, progress=False if args.no_progress else None)
    ran = time.perf_counter()
    report = rates_report(sim, model=model, backend=args.backend)
    print(f"{report['duration_ms']:g} ms biological on {args.backend}: "
          f"build {built - start:.2f} s, run {ran - built:.2f} s wall")
    print(format_rates(report))
    if args.out is not None:
        for path in write_outputs(sim, report, Path(args.out), bar=bar):
            print(f"wrote {path}")
    return 0


# results -----------------------------------------------------------------------
def spike_arrays(sim, pop: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(times_ms, ids, batch) of ``pop``, whatever the batch size."""
    entry = sim.spikes(pop)
    times, ids = np.asarray(entry[0], dtype=np.float64), np.asarray(entry[1], dtype=np.int64)
    batch = np.asarray(entry[2], dtype=np.int64) if len(entry) > 2 else np.zeros_like(ids)
    return times, ids, batch


def rates_report(sim, model: str = "", backend: str = "") -> dict:
    """Per recorded population: size, spikes and rate_hz = spikes / (size * batch * s),
    with s the simulated time in seconds (steps run * dt / 1000)."""
    net = sim.network
    duration_ms = sim.t
    populations = {}
    for pop in sim.record_spikes:
        size = net.population(pop).size
        count = len(spike_arrays(sim, pop)[0])
        denom = size * net.batch_size * duration_ms / 1000.0
        populations[pop] = {"size": size, "spikes": count,
                            "rate_hz": count / denom if denom > 0 else 0.0}
    return {"model": model, "backend": backend, "seed": sim.seed, "dt_ms": net.dt,
            "duration_ms": duration_ms, "batch_size": net.batch_size,
            "populations": populations}


def format_rates(report: dict) -> str:
    rows = [("population", "size", "spikes", "rate (Hz)")]
    for pop, r in report["populations"].items():
        rows.append((pop, str(r["size"]), str(r["spikes"]), f"{r['rate_hz']:.3f}"))
    width = [max(len(row[k]) for row in rows) for k in range(4)]
    lines = [f"{a:<{width[0]}}  {b:>{width[1]}}  {c:>{width[2]}}  {d:>{width[3]}}"
             for a, b, c, d in rows]
    return "\n".join(lines)


def write_outputs(sim, report: dict, out: Path, bar: bool = False) -> list[Path]:
    """spikes.npz, rates.json and, with matplotlib, raster.png (+ rates.png if ``bar``)."""
    from . import plot

    out.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for pop in sim.record_spikes:
        times, ids, batch = spike_arrays(sim, pop)
        arrays.update({f"{pop}.times_ms": times, f"{pop}.ids": ids, f"{pop}.batch": batch})
    written = [out / "spikes.npz", out / "rates.json"]
    np.savez(written[0], **arrays)
    written[1].write_text(json.dumps(report, indent=2) + "\n")
    if not plot.have_matplotlib():
        print(f"raster plot skipped: {plot.INSTALL_HINT}", file=sys.stderr)
        return written
    if not sim.record_spikes:
        print("raster plot skipped: the network has no spiking population", file=sys.stderr)
        return written
    title = f"{report['model']} on {report['backend']}"
    written.append(plot.raster(sim, None, out / "raster.png", title=title))
    if bar:
        written.append(plot.rates_bar(report["populations"], out / "rates.png", title=title))
    return written


# entry point -------------------------------------------------------------------
COMMANDS = {"info": cmd_info, "run": cmd_run, "demo": cmd_demo, "validate": cmd_validate,
            "codegen": cmd_codegen, "fpga": cmd_fpga}


def main(argv: list[str] | None = None) -> int:
    """Run the command line with ``argv`` (default: sys.argv[1:]); returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    try:
        return COMMANDS[args.command](args)
    except KeyboardInterrupt:
        print("spikeforge: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # every error is shown as one line
        if args.debug:
            raise
        print(f"spikeforge: error: {_describe(error)}", file=sys.stderr)
        return 1


def _describe(error: Exception) -> str:
    if isinstance(error, CLIError):
        return str(error)
    text = error.args[0] if isinstance(error, KeyError) and error.args else str(error)
    return f"{type(error).__name__}: {text}"


if __name__ == "__main__":
    sys.exit(main())
