#!/usr/bin/env python3
"""In-process A/B of cpu-backend code-generation settings on the PD14 microcircuit.

    python tools/ab_microcircuit.py --scale 0.25 --threads 1 --rounds 8 \\
        ring_offsets=0 ring_offsets=1

Each VARIANT is a comma-separated list of NAME=VALUE: a ``CpuDialect`` switch
(split_rings, split_sorted_rows, prefetch_distance, ring_offsets, fuse_phases)
or a layout threshold (PREFETCH_FROM, FAR_FRACTION, NEAR_SAVING); "default"
changes nothing. Every variant is built in this one process from the same
network (DC drive, K = 1, seed 55), warmed up for 100 ms, and then simulates
--bio-ms in turn with the others, the order reversed every other round, so that
the drift of a shared machine (up to 1.8x between minutes on the benchmark
machine) hits all of them alike; the comparison is the median over rounds of
each variant's time over the first variant's. The settings change no result, so
the spike counts must agree (exit status 1 otherwise). Builds hold every
variant's network at once: about 5 GB per variant at full scale (11 GB before
session 8's shared arrays).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time

import numpy as np

from spikeforge.backends.cpu.dialect import CpuDialect
from spikeforge.backends.cstyle import layout
from spikeforge.microcircuit import microcircuit_network

SWITCHES = {name: CpuDialect for name in ("split_rings", "split_sorted_rows",
                                          "prefetch_distance", "ring_offsets", "fuse_phases")}
SWITCHES |= {name: layout for name in ("PREFETCH_FROM", "FAR_FRACTION", "NEAR_SAVING")}


def parse_variant(text: str) -> dict:
    """``"ring_offsets=0,PREFETCH_FROM=0"`` -> {name: value}, typed as the current value."""
    settings = {}
    for item in filter(None, text.split(",")):
        if item == "default":
            continue
        name, sep, value = item.partition("=")
        if not sep or name not in SWITCHES:
            raise ValueError(f"variant {text!r}: {item!r} is not NAME=VALUE with NAME one of "
                             f"{sorted(SWITCHES)}")
        kind = type(getattr(SWITCHES[name], name))
        try:
            settings[name] = kind(int(value)) if kind in (bool, int) else kind(value)
        except ValueError:
            raise ValueError(f"variant {text!r}: {name} needs a {kind.__name__}, "
                             f"got {value!r}") from None
    return settings


@contextlib.contextmanager
def applied(settings: dict):
    """The settings in force inside the block, the previous values restored after."""
    saved = {name: getattr(SWITCHES[name], name) for name in settings}
    try:
        for name, value in settings.items():
            setattr(SWITCHES[name], name, value)
        yield
    finally:
        for name, value in saved.items():
            setattr(SWITCHES[name], name, value)


def build(variants: list[str], scale: float, threads: int) -> dict:
    sims = {}
    for text in variants:
        with applied(parse_variant(text)):
            sims[text] = microcircuit_network(scale, 1.0, "dc", seed=55).build(
                backend="cpu", threads=threads)
        sims[text].run(duration_ms=100, progress=False)
    return sims


def alternate(sims: dict, rounds: int, bio_ms: float) -> dict[str, list[float]]:
    """Seconds per run of ``bio_ms`` for each variant, in turn, ``rounds`` times."""
    names = list(sims)
    times = {name: [] for name in names}
    for r in range(rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            start = time.perf_counter()
            sims[name].run(duration_ms=bio_ms, progress=False)
            times[name].append(time.perf_counter() - start)
        print("  ".join(f"{name}: {times[name][-1]:.3f} s" for name in names), flush=True)
    return times


def spike_count(sim) -> int:
    return sum(len(sim.spikes(pop.name)[0]) for pop in sim.network.populations)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("variants", nargs="+", metavar="VARIANT")
    ap.add_argument("--scale", type=float, default=0.25)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--bio-ms", type=float, default=1000.0)
    args = ap.parse_args(argv)
    if len(args.variants) < 2 or len(set(args.variants)) != len(args.variants):
        ap.error("give at least two different variants")
    for text in args.variants:
        try:
            parse_variant(text)
        except ValueError as exc:
            ap.error(str(exc))
    sims = build(args.variants, args.scale, args.threads)
    times = alternate(sims, args.rounds, args.bio_ms)
    counts = {name: spike_count(sim) for name, sim in sims.items()}
    print("spikes:", counts)
    first = args.variants[0]
    for name in args.variants[1:]:
        ratio = np.median(np.array(times[name]) / np.array(times[first]))
        print(f"{name} / {first}: median ratio {ratio:.3f} (median s: "
              f"{np.median(times[first]):.3f} vs {np.median(times[name]):.3f})")
    return 0 if len(set(counts.values())) == 1 else 1


if __name__ == "__main__":
    sys.exit(main())
