"""Cross-backend validation: run a network on several backends and compare each with
the NumPy reference (``spikeforge validate``; also ``python -m spikeforge.tools.validate``).

Usage::

    spikeforge validate MODEL.json [--backends numpy,cpu,cuda,fpga] [--steps N] [--seed S]
    spikeforge validate --random K [--seed S] [--backends ...] [--steps N]
    common options: [--report validate-report.json] [--failures validate-failures]
                    [--shrink-seconds 120] [--verbose]

What one case does (a model file, or each of K random networks drawn by
``spikeforge.testing.networks()`` with hypothesis seed S):

1. build on ``numpy`` and on every requested backend with its default build
   options, run N steps (default 100), then call every host-triggered custom-update
   group once (declaration order), so host custom updates are validated too;
2. compare with :func:`spikeforge.compare.compare` (policy in its docstring: float
   spikes pair up within ``WINDOW`` steps and vars satisfy
   ``|x - ref| <= atol + rtol |ref|`` with ``TOLERANCE[precision]``; fixed point
   must be bit-exact). Per population: reference and backend spike counts, their
   difference, unmatched spikes, first step where the rasters differ; per var:
   max abs and max rel error; bit-exact yes/no.

Backend status per case: ``ok``; ``mismatch`` (beyond tolerance); ``error`` (build or
run raised); ``unsupported`` (build raised NotImplementedError: the backend says it
cannot lower the network; reported, not a failure); ``reference`` (numpy itself).
A crash of the reference itself on a random network is an ``error`` of ``numpy`` (a
bug in the reference or in the generator), reproduced and shrunk like the others.
A requested backend that reports itself unavailable here (e.g. ``cuda`` without a
GPU) is skipped with the reason, not a failure.

Exit status: 0 when every compared backend is ``ok``; 1 on any ``mismatch`` or
``error`` (and on user errors such as a missing model file); 2 on bad usage.

Every failure is written as a model file that reproduces it (``Network.save``:
JSON + ``.npz``) under ``--failures`` and listed in the report with the steps:

* ``--random``: the failing network shrunk by hypothesis: a second ``@given`` run
  with the same seed whose body fails exactly when that backend disagrees with
  numpy, so hypothesis finds the same example again and shrinks it. Shrinking is
  bounded by ``--shrink-seconds``; when the budget runs out, the smallest failing
  example seen so far is saved and the report says ``"shrunk": false``.
* a model file: reduced greedily by deleting nodes (populations with their
  projections and sources, projections, current sources, custom updates) while
  the failure persists, within the same budget (sizes and arrays are kept).

The JSON report (``--report``) holds ``{"spikeforge", "mode", "model" | "random",
"seed", "steps", "tolerance", "window", "backends": {name: {"status", "reason"}},
"cases": [{"name", "features", "results": {backend: {"status", "reason", "ok",
"bit_exact", "populations": [...], "vars": [...], "failures": [...]}}}],
"failures": [{"case", "backend", "model_file", "steps", "shrunk", "how"}], "ok"}``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from spikeforge.compare import TOLERANCE, WINDOW, Report, compare
from spikeforge.registry import backends as registered_backends

REFERENCE = "numpy"
DEFAULT_STEPS = 100
DEFAULT_REPORT = "validate-report.json"
DEFAULT_FAILURES = "validate-failures"
SHRINK_SECONDS = 120.0
FAILING = ("mismatch", "error")


class UsageError(Exception):
    """A user-facing problem with the request (shown without a traceback)."""


@dataclass
class Outcome:
    """One backend on one case."""

    backend: str
    status: str  # ok | mismatch | error | unsupported | reference
    report: Report | None = None
    reason: str = ""

    @property
    def failed(self) -> bool:
        return self.status in FAILING


@dataclass
class Case:
    name: str
    network: object
    outcomes: list[Outcome] = field(default_factory=list)


@dataclass
class Failure:
    case: str
    backend: str
    model_file: str
    steps: int
    shrunk: bool
    how: str


# backends ------------------------------------------------------------------------------
def select_backends(names: list[str] | None) -> tuple[list[str], dict[str, str]]:
    """(runnable backends, {skipped backend: reason}); None means every registered one.
    Unknown names are a UsageError."""
    known = registered_backends()
    names = sorted(known) if names is None else list(dict.fromkeys(names))
    runnable, skipped = [], {}
    for name in names:
        if name not in known:
            raise UsageError(f"unknown backend {name!r}; known backends: "
                             f"{', '.join(sorted(known))}")
        ok, reason = known[name].availability()
        if ok:
            runnable.append(name)
        else:
            skipped[name] = f"unavailable here: {reason}"
    runnable.sort(key=lambda name: name != REFERENCE)  # the reference's row first
    return runnable, skipped


def host_groups(network) -> list[str]:
    return list(dict.fromkeys(cu.group for cu in network.custom_updates if not cu.every_step))


def simulate(network, backend: str, steps: int):
    """Build, run ``steps`` steps, then call every host custom-update group once."""
    sim = network.build(backend=backend)
    sim.run(steps=steps, progress=False)
    for group in host_groups(network):
        sim.custom_update(group)
    return sim


def check(network, backend: str, steps: int, reference=None) -> Outcome:
    """Run ``backend`` and compare it with ``reference`` (a numpy simulation that ran
    the same steps; simulated here when not given)."""
    if reference is None:
        reference = simulate(network, REFERENCE, steps)
    try:
        sim = simulate(network, backend, steps)
    except NotImplementedError as exc:
        return Outcome(backend, "unsupported", reason=str(exc))
    except Exception as exc:  # noqa: BLE001 - a crash of the backend under test is a failure
        return Outcome(backend, "error", reason=f"{type(exc).__name__}: {exc}")
    report = compare(reference, sim)
    return Outcome(backend, "ok" if report.ok else "mismatch", report)


def fails(network, backend: str, steps: int) -> bool:
    """True when ``backend`` disagrees with numpy on ``network`` (mismatch or crash);
    for ``numpy`` itself: when the reference crashes. A candidate on which the
    reference crashes does not reproduce another backend's failure."""
    try:
        reference = simulate(network, REFERENCE, steps)
    except Exception:  # noqa: BLE001 - any crash of the reference is the failure sought
        return backend == REFERENCE
    return backend != REFERENCE and check(network, backend, steps, reference).failed


def validate_case(name: str, network, backends: list[str], steps: int) -> Case:
    case = Case(name, network)
    try:
        reference = simulate(network, REFERENCE, steps)
    except Exception as exc:  # noqa: BLE001 - reported (and reproduced) as a failure
        case.outcomes.append(Outcome(REFERENCE, "error",
                                     reason=f"reference failed: {type(exc).__name__}: {exc}"))
        return case
    for backend in backends:
        if backend == REFERENCE:
            case.outcomes.append(Outcome(REFERENCE, "reference"))
        else:
            case.outcomes.append(check(network, backend, steps, reference))
    return case


# random networks -----------------------------------------------------------------------
class _OutOfTime(BaseException):
    """Stops a hypothesis run when the shrink budget is spent (not an Exception, so
    hypothesis propagates it instead of treating it as a test failure)."""


class _Disagrees(AssertionError):
    pass


def _hypothesis():
    try:
        import hypothesis

        from spikeforge import testing
    except ImportError as exc:
        raise UsageError("--random needs hypothesis: pip install 'spikeforge[test]'") from exc
    return hypothesis, testing


def _settings(hypothesis, examples: int, shrink: bool):
    from hypothesis import HealthCheck, Phase, Verbosity

    phases = (Phase.generate, Phase.shrink) if shrink else (Phase.generate,)
    return hypothesis.settings(max_examples=examples, derandomize=False, database=None,
                               deadline=None, phases=phases, verbosity=Verbosity.quiet,
                               suppress_health_check=list(HealthCheck), print_blob=False)


def random_networks(count: int, seed: int) -> list:
    """The ``count`` networks that ``spikeforge.testing.networks()`` draws with
    hypothesis seed ``seed`` (the same sequence as :func:`shrink_random` replays)."""
    hypothesis, testing = _hypothesis()
    drawn = []

    @hypothesis.seed(seed)
    @_settings(hypothesis, count, shrink=False)
    @hypothesis.given(testing.networks())
    def collect(net):
        drawn.append(net)

    collect()
    return drawn


def shrink_random(backend: str, count: int, seed: int, steps: int, budget_s: float,
                  fallback) -> tuple[object, bool, str]:
    """Replay the seeded draw with a body that fails when ``backend`` disagrees with
    numpy; hypothesis stops at the first failing example and shrinks it. Returns
    (network, shrunk, how). ``count`` must be the K of the original draw (hypothesis'
    generation depends on max_examples). ``fallback`` (the failing example found
    before) is used when the replay does not fail (e.g. a nondeterministic backend)."""
    hypothesis, testing = _hypothesis()
    deadline = time.monotonic() + budget_s
    seen = []

    @hypothesis.seed(seed)
    @_settings(hypothesis, count, shrink=True)
    @hypothesis.given(testing.networks())
    def disagree(net):
        if time.monotonic() > deadline:
            raise _OutOfTime
        if fails(net, backend, steps):
            seen.append(net)
            raise _Disagrees(backend)

    try:
        disagree()
    except _Disagrees:
        return seen[-1], True, "shrunk by hypothesis (replay of the seeded draw)"
    except _OutOfTime:
        if seen:
            return seen[-1], False, (f"shrink budget of {budget_s:g} s ran out; smallest "
                                     "failing example seen so far")
        return fallback, False, (f"shrink budget of {budget_s:g} s ran out before the replay "
                                 "failed; the generated example as drawn")
    except Exception as exc:  # noqa: BLE001 - e.g. FlakyFailure: nondeterministic backend
        return fallback, False, f"not shrunk ({type(exc).__name__}); the generated example"
    return fallback, False, "the replay did not fail (nondeterministic?); the generated example"


# model files ---------------------------------------------------------------------------
def _without(network, drop: set[str]):
    """``network`` without the nodes named in ``drop`` and everything referring to
    them; None when the rest is not a valid network."""
    def refs(cu):
        return {cu.target, *(ref.split(".")[0] for ref in cu.var_refs.values())}

    pops = [p for p in network.populations if p.name not in drop]
    names = {p.name for p in pops}
    projs = [p for p in network.projections
             if p.name not in drop and {p.pre, p.post} <= names]
    sources = [s for s in network.current_sources if s.name not in drop and s.target in names]
    names |= {p.name for p in projs} | {s.name for s in sources}
    cus = []
    for cu in network.custom_updates:
        if cu.name not in drop and refs(cu) <= names | {c.name for c in cus}:
            cus.append(cu)
    if not pops:
        return None
    try:
        return dataclasses.replace(network, populations=pops, projections=projs,
                                   current_sources=sources, custom_updates=cus)
    except (ValueError, KeyError, TypeError):
        return None


def _candidates(network):
    for key in ("populations", "projections", "current_sources", "custom_updates"):
        for node in getattr(network, key):
            smaller = _without(network, {node.name})
            if smaller is not None:
                yield smaller


def reduce_model(network, backend: str, steps: int, budget_s: float) -> tuple[object, bool, str]:
    """Greedy node deletion while ``backend`` still disagrees with numpy.
    Returns (network, complete, how)."""
    deadline = time.monotonic() + budget_s
    removed, progress = 0, True
    while progress:
        progress = False
        for candidate in _candidates(network):
            if time.monotonic() > deadline:
                return network, False, (f"greedy node deletion, {removed} node(s) removed; "
                                        f"budget of {budget_s:g} s ran out")
            if fails(candidate, backend, steps):
                removed += _count(network) - _count(candidate)
                network, progress = candidate, True
                break
    return network, True, (f"greedy node deletion: {removed} node(s) removed, no single "
                           "further deletion keeps the failure")


def _count(network) -> int:
    return len(network.nodes)


# the report ----------------------------------------------------------------------------
def _num(x: float):
    return float(x) if math.isfinite(x) else str(x)


def outcome_json(outcome: Outcome) -> dict:
    out = {"status": outcome.status, "reason": outcome.reason}
    report = outcome.report
    if report is None:
        return out
    out.update(ok=report.ok, bit_exact=report.bit_exact, spikes_exact=report.spikes_exact,
               failures=report.failures())
    out["populations"] = [
        {"name": p.name, "spikes_reference": p.spikes_ref, "spikes": p.spikes,
         "spike_count_difference": p.spikes - p.spikes_ref, "unmatched": p.unmatched,
         "first_difference_step": p.first_difference_step, "exact": p.exact}
        for p in report.populations]
    out["vars"] = [{"name": v.name, "max_abs": _num(v.max_abs), "max_rel": _num(v.max_rel),
                    "exact": v.exact, "within_tolerance": v.within} for v in report.vars]
    return out


def report_json(mode: dict, steps: int, skipped: dict, runnable: list, cases: list[Case],
                failures: list[Failure]) -> dict:
    from spikeforge import __version__

    try:
        from spikeforge.testing import features
    except ImportError:  # hypothesis missing: feature tags are optional
        features = None
    statuses = {name: {"status": "compared", "reason": ""} for name in runnable}
    statuses.update({name: {"status": "skipped", "reason": why} for name, why in skipped.items()})
    return {
        "spikeforge": __version__, **mode, "steps": steps,
        "tolerance": {k: {"rtol": r, "atol": a} for k, (r, a) in TOLERANCE.items()},
        "window": WINDOW, "backends": statuses,
        "cases": [{"name": c.name,
                   "features": sorted(features(c.network)) if features else [],
                   "results": {o.backend: outcome_json(o) for o in c.outcomes}}
                  for c in cases],
        "failures": [dataclasses.asdict(f) for f in failures],
        "ok": not any(o.failed for c in cases for o in c.outcomes),
    }


# the table -----------------------------------------------------------------------------
COLUMNS = ("case", "backend", "item", "spikes ref", "spikes", "diff", "first diff",
           "max abs", "max rel", "bit-exact", "verdict")


def _g(x) -> str:
    return "-" if x is None else f"{x:.3g}"


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def outcome_rows(case: str, outcome: Outcome, details: bool) -> list[tuple]:
    """One summary row, then (with ``details``) one row per population and var."""
    report = outcome.report
    if report is None:
        verdict = outcome.status if not outcome.reason else f"{outcome.status}: {outcome.reason}"
        return [(case, outcome.backend, "(all)", *["-"] * 7, verdict.splitlines()[0][:100])]
    ref = sum(p.spikes_ref for p in report.populations)
    got = sum(p.spikes for p in report.populations)
    worst_abs = max((v.max_abs for v in report.vars), default=None)
    worst = max((v.max_rel for v in report.vars), default=None)
    rows = [(case, outcome.backend, "(all)", str(ref), str(got), f"{got - ref:+d}",
             _g(min((p.first_difference_step for p in report.populations
                     if p.first_difference_step is not None), default=None)),
             _g(worst_abs), _g(worst), _yes(report.bit_exact), outcome.status.upper()
             if outcome.failed else outcome.status)]
    if not details:
        return rows
    for p in report.populations:
        rows.append(("", "", p.name, str(p.spikes_ref), str(p.spikes),
                     f"{p.spikes - p.spikes_ref:+d}", _g(p.first_difference_step), "-", "-",
                     _yes(p.exact), "ok" if not p.unmatched else f"MISMATCH ({p.unmatched} "
                     "unmatched)"))
    judged = report.fixed or report.spikes_exact
    for v in report.vars:
        ok = v.exact if report.fixed else v.within
        verdict = ("ok" if ok else "MISMATCH") if judged else "not judged (spikes moved)"
        rows.append(("", "", v.name, "-", "-", "-", "-", _g(v.max_abs), _g(v.max_rel),
                     _yes(v.exact), verdict))
    return rows


def format_table(cases: list[Case], verbose: bool) -> str:
    rows = [COLUMNS]
    for case in cases:
        for outcome in case.outcomes:
            rows += outcome_rows(case.name, outcome, verbose or outcome.failed)
    width = [max(len(str(r[k])) for r in rows) for k in range(len(COLUMNS) - 1)]
    return "\n".join("  ".join(f"{c!s:<{w}}" for c, w in zip(r, width)) + "  " + r[-1]
                     for r in rows)


# running -------------------------------------------------------------------------------
def _save(network, directory: Path, stem: str) -> str:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{stem}.json"
    network.save(path)
    return str(path)


def _first_failures(cases: list[Case]) -> dict[str, tuple[int, Case]]:
    """backend -> (index, first case it fails)."""
    out = {}
    for index, case in enumerate(cases):
        for outcome in case.outcomes:
            if outcome.failed:
                out.setdefault(outcome.backend, (index, case))
    return out


def run_model(args, backends: list[str]) -> tuple[dict, list[Case], list[Failure]]:
    from spikeforge import load

    path = Path(args.model)
    if not path.is_file():
        raise UsageError(f"model file not found: {path}")
    network = load(path)
    if args.seed is not None:
        network = dataclasses.replace(network, seed=args.seed)
    case = validate_case(path.name, network, backends, args.steps)
    reference = case.outcomes[0] if case.outcomes else None
    if reference is not None and reference.backend == REFERENCE and reference.failed:
        raise UsageError(f"the numpy reference cannot run {path}: {reference.reason}")
    failures = []
    for outcome in case.outcomes:
        if outcome.failed:
            small, complete, how = reduce_model(network, outcome.backend, args.steps,
                                                args.shrink_seconds)
            saved = _save(small, Path(args.failures), f"{path.stem}-{outcome.backend}")
            failures.append(Failure(case.name, outcome.backend, saved, args.steps, complete,
                                    how))
    mode = {"mode": "model", "model": str(path), "seed": network.seed}
    return mode, [case], failures


def run_random(args, backends: list[str]) -> tuple[dict, list[Case], list[Failure]]:
    seed = 0 if args.seed is None else args.seed
    cases = [validate_case(f"random-{seed}-{i}", net, backends, args.steps)
             for i, net in enumerate(random_networks(args.random, seed))]
    failures = []
    for backend, (index, case) in _first_failures(cases).items():
        net, shrunk, how = shrink_random(backend, args.random, seed, args.steps,
                                         args.shrink_seconds, case.network)
        saved = _save(net, Path(args.failures), f"random-seed{seed}-{backend}")
        failures.append(Failure(case.name, backend, saved, args.steps, shrunk, how))
    return {"mode": "random", "random": args.random, "seed": seed}, cases, failures


def run(args) -> int:
    """Validate as ``args`` (see :func:`add_arguments`) asks; print, write the report;
    return the exit status."""
    if (args.model is None) == (args.random is None):
        raise UsageError("give a model file or --random K (not both)")
    names = None if args.backends is None else [b.strip() for b in args.backends.split(",")]
    if names is not None and not all(names):
        raise UsageError(f"--backends: empty backend name in {args.backends!r}")
    runnable, skipped = select_backends(names)
    started = time.perf_counter()
    mode, cases, failures = (run_model if args.model else run_random)(args, runnable)
    report = report_json(mode, args.steps, skipped, runnable, cases, failures)
    print(format_table(cases, args.verbose or args.model is not None))
    for name, why in skipped.items():
        print(f"skipped {name}: {why}")
    for failure in failures:
        state = "shrunk" if failure.shrunk else "not shrunk"
        print(f"reproducer for {failure.backend} ({state}: {failure.how}): {failure.model_file}"
              f" (run {failure.steps} steps)")
    Path(args.report).write_text(json.dumps(report, indent=1) + "\n")
    compared = sum(o.backend != REFERENCE for c in cases for o in c.outcomes)
    bad = sum(o.failed for c in cases for o in c.outcomes)
    print(f"{len(cases)} case(s), {compared} comparison(s) with numpy, {bad} failure(s) "
          f"[{time.perf_counter() - started:.1f} s]; report: {args.report}")
    return 1 if not report["ok"] else 0


# command line ------------------------------------------------------------------------------
def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0 seconds, got {text!r}")
    return value


def add_arguments(parser: argparse.ArgumentParser, seed_type=int) -> None:
    """The validate options (shared by ``spikeforge validate`` and ``__main__``)."""
    parser.add_argument("model", nargs="?", default=None,
                        help="model file written by Network.save (JSON)")
    parser.add_argument("--random", type=_positive, default=None, metavar="K",
                        help="validate K random networks from spikeforge.testing.networks()")
    parser.add_argument("--seed", type=seed_type, default=None,
                        help="hypothesis seed for --random (default 0); with a model file: "
                             "override the network's seed")
    parser.add_argument("--backends", default=None, metavar="LIST",
                        help="comma-separated backends (default: every registered one); "
                             "unregistered cuda/fpga and unavailable ones are skipped")
    parser.add_argument("--steps", type=_positive, default=DEFAULT_STEPS,
                        help=f"time steps to run (default: {DEFAULT_STEPS})")
    parser.add_argument("--report", default=DEFAULT_REPORT,
                        help=f"JSON report path (default: {DEFAULT_REPORT})")
    parser.add_argument("--failures", default=DEFAULT_FAILURES, metavar="DIR",
                        help=f"where reproducing model files go (default: ./{DEFAULT_FAILURES})")
    parser.add_argument("--shrink-seconds", type=_seconds, default=SHRINK_SECONDS,
                        help=f"time budget per failing backend for shrinking/reducing "
                             f"(default: {SHRINK_SECONDS:g})")
    parser.add_argument("--verbose", action="store_true",
                        help="per-population and per-var rows for every comparison "
                             "(default: for model files and failures only)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m spikeforge.tools.validate",
                                     description="Compare backends with the numpy reference.")
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except UsageError as exc:
        print(f"validate: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
