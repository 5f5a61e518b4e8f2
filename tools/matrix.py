"""The feature x backend matrix of the README (``python -m spikeforge.tools.matrix``).

Rows are the IR features of :data:`FEATURES`; columns are the backends of the
registry (``numpy`` first). Each backend class declares, as data, what it lowers
and how it is verified (``verification = {feature key or "*": level}``); a cell is

* ``reference``: the backend is the definition (numpy);
* ``exact``: declared ``exact`` and the feature has exact-oracle tests (``oracles``:
  expected values computed independently of numpy: integer decoders, closed-form
  dynamics, Philox words), written against the ``backend`` fixture so they run on
  every available registered backend; random networks with the feature are also
  compared with numpy within tolerance;
* ``tolerance``: only the random-network property test (tests/test_cross_backend.py,
  networks of ``spikeforge.testing`` carrying the feature's ``tags``) compares the
  backend with numpy within ``spikeforge.compare.TOLERANCE``; shown when a backend
  declares ``exact``/``tolerance`` but the feature has no exact oracle;
* ``compile-only``: generated code is compiled but not executed here;
* ``no``: not lowered; building raises NotImplementedError naming it;
* ``untested``: declared but neither oracles nor tags exist (a gap to fix).

tests/test_matrix.py keeps this honest: the README copy must equal :func:`render`,
every oracle must exist and take the ``backend`` fixture, every tag must be one
the property-test generator is checked to draw, and every available backend must
build each feature's :func:`probe <Feature.probe>` network exactly when it
declares the feature lowered (and then agree with numpy on it).

Usage: ``python -m spikeforge.tools.matrix`` prints the block;
``--write README.md`` replaces the block between the markers; ``--check README.md``
exits 1 when the README copy is stale.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import spikeforge as sf
from spikeforge.registry import backends as registered_backends

START, END = "<!-- matrix:start -->", "<!-- matrix:end -->"
LEVELS = ("reference", "exact", "tolerance", "compile-only", "no")
REFERENCE = "numpy"


@dataclass(frozen=True)
class Feature:
    """One row: ``oracles`` are ``"test_file.py::test_name"`` exact-oracle tests,
    ``tags`` the ``spikeforge.testing.features`` tags of random networks using it,
    ``probe`` builds a small network exercising it."""

    key: str
    label: str
    probe: Callable[[], sf.Network]
    oracles: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()


# probe networks --------------------------------------------------------------------------
LIF_PARAMS = {"C": 1.0, "tau_m": 10.0, "v_rest": -65.0, "v_reset": -70.0, "v_thresh": -50.0,
              "i_offset": 0.0, "tau_refrac": 1.0}
SPIKE_TIMES = [[0.5, 2.0, 4.0], [1.0, 3.0], [0.0, 1.5, 5.0], [2.5]]


def _net(precision="float32", batch_size=1) -> sf.NetworkBuilder:
    return sf.NetworkBuilder(dt=0.5, batch_size=batch_size, seed=11, precision=precision)


def _src_lif(net, size=3, **lif) -> sf.NetworkBuilder:
    """Spike-source array S (4 neurons) and LIF population N (``size`` neurons)."""
    net.population("S", sf.SpikeSourceArray, 4, spike_times=SPIKE_TIMES)
    net.population("N", sf.LIF, size, params={**LIF_PARAMS, **lif},
                   init={"v": sf.Uniform(-60.0, -52.0)})
    return net


def _connected(conn=None, **kw) -> sf.Network:
    net = _src_lif(_net(), size=kw.pop("size", 3))
    net.connect("S", "N", conn or sf.Dense(), w=kw.pop("w", 6.0), **kw)
    return net.network()


def _fused() -> sf.Network:
    net = _src_lif(sf.NetworkBuilder(dt=0.5, seed=11, fuse_postsynaptic=True), size=4)
    exp = {"postsynaptic": sf.ExpCurr, "ps_params": {"tau": 2.0}}
    net.connect("S", "N", sf.Dense(), name="a", w=4.0, **exp)
    net.connect("S", "N", sf.OneToOne(), name="b", w=3.0, delay=1, **exp)
    return net.network()


def _driven(model, params, amp, init=None, size=3, **net_kw) -> sf.Network:
    net = _net(**net_kw)
    net.population("N", model, size, params=params, init=init or {})
    net.current_source("drive", sf.DC, "N", params={"amp": amp})
    return net.network()


USER_NEURON = sf.NeuronModel(
    "ProbeNeuron", params=("tau",), derived={"k": "exp(-dt / tau)"},
    vars=(sf.Var("x", default=0.0), sf.Var("n", type="int", default=0)),
    sim="x = k * x + i_syn\nif x > 2.0:\n    x = min(x, 3.0)", threshold="x >= 1.0",
    reset="x -= 1.0\nn += 1", doc="matrix probe: leaky counter")
DRAWS = sf.NeuronModel("ProbeDraws", vars=(sf.Var("u", default=0.0), sf.Var("g", default=0.0)),
                       sim="u = uniform()\ng = g + normal()", doc="matrix probe: run-time draws")
USER_PSM = sf.PostsynapticModel(
    "ProbePSM", params=("tau",), derived={"decay": "exp(-dt / tau)"},
    vars=(sf.Var("g", default=0.0),), code="g = g * decay + inp",
    current="g * (1.0 + 0.001 * (v_post + 65.0))",
    doc="matrix probe: exponential current scaled by the target's v")
USER_WU = sf.WeightUpdateModel(
    "ProbeWU", params=("eta",), vars=(sf.Var("w"),),
    pre_vars=(sf.Var("xpre", default=0.0),), post_vars=(sf.Var("ypost", default=0.0),),
    pre_spike="deliver(w)\nw = w - eta * ypost", post_spike="w = w + eta * xpre",
    synapse_dynamics="w = w * 0.999", pre_dynamics="xpre = 0.9 * xpre",
    post_dynamics="ypost = 0.9 * ypost", pre_spike_trace="xpre += 1.0",
    post_spike_trace="ypost += 1.0", doc="matrix probe: pair rule with decay")
FEEDBACK_NEURON = sf.NeuronModel(
    "ProbeFeedback", vars=(sf.Var("v", default=0.0), sf.Var("fb", default=0.0)),
    inputs=("i_fb",), sim="v = 0.9 * v + i_syn\nfb = fb + i_fb", threshold="v >= 1.0",
    reset="v = 0.0", doc="matrix probe: an extra input i_fb")
FEEDBACK_WU = sf.WeightUpdateModel(
    "ProbeFeedbackWU", vars=(sf.Var("w"),), pre_spike="deliver(w)\ndeliver_pre(0.5 * w)",
    pre_target="i_fb", doc="matrix probe: deliver_pre into the source's i_fb")


def _user_neuron():
    net = _net()
    net.population("S", sf.SpikeSourceArray, 4, spike_times=SPIKE_TIMES)
    net.population("U", USER_NEURON, 3, params={"tau": 4.0})
    net.connect("S", "U", sf.Dense(), w=0.7)
    return net.network()


def _ssa():
    net = _net(batch_size=2)
    net.population("S", sf.SpikeSourceArray, 4, spike_times=[SPIKE_TIMES, SPIKE_TIMES[::-1]])
    net.population("N", sf.IF, 2, params={"v_thresh": 1.5})
    net.connect("S", "N", sf.Dense(), w=1.0)
    return net.network()


def _poisson():
    net = _net()
    net.population("P", sf.PoissonSource, 5, params={"rate": 400.0})
    net.population("N", sf.IF, 2, params={"v_thresh": 2.0})
    net.connect("P", "N", sf.Dense(), w=0.5)
    return net.network()


def _extra_inputs():
    net = _net()
    net.population("S", sf.SpikeSourceArray, 4, spike_times=SPIKE_TIMES)
    net.population("F", FEEDBACK_NEURON, 3)
    net.connect("S", "F", sf.Dense(), w=0.6)
    net.connect("F", "F", sf.Dense(), name="FF", weight_update=FEEDBACK_WU, w=0.3,
                target="i_fb")
    return net.network()


def _dendritic():
    net = _src_lif(_net())
    net.connect("S", "N", sf.Dense(), weight_update=sf.StaticPulseDendriticDelay,
                wu_init={"w": 8.0, "d": sf.Values(np.arange(12) % 4)}, max_dendritic_delay=3)
    return net.network()


def _stdp():
    params = {"tau_plus": 10.0, "tau_minus": 10.0, "a_plus": 0.5, "a_minus": 0.6, "w_min": 0.0,
              "w_max": 12.0}
    return _connected(weight_update=sf.STDP, wu_params=params, w=None,
                      wu_init={"w": sf.Uniform(6.0, 10.0)})


def _user_wu():
    return _connected(weight_update=USER_WU, wu_params={"eta": 0.2}, w=None,
                      wu_init={"w": sf.Uniform(6.0, 10.0)})


def _conv2d():
    net = _net()
    net.population("S", sf.SpikeSourceArray, 16, spike_times=[[0.5 * (i % 5)] for i in range(16)])
    net.population("N", sf.IF, 18, params={"v_thresh": 1.5})
    net.connect("S", "N", sf.Conv2D((4, 4, 1), (2, 2), 2, (1, 1), "valid"),
                w=sf.Values(np.arange(8, dtype=float).reshape(2, 2, 1, 2) / 4))
    return net.network()


def _avgpool2d():
    net = _net()
    net.population("S", sf.SpikeSourceArray, 32, spike_times=[[0.5 * (i % 5)] for i in range(32)])
    net.population("N", sf.IF, 8, params={"v_thresh": 0.6})
    net.connect("S", "N", sf.AvgPool2D((4, 4, 2), (2, 2)), w=0.25)
    return net.network()


def _init_kinds():
    net = _net()
    net.population("N", sf.IF, 4, params={"v_thresh": 5.0}, init={"v": sf.Normal(0.0, 1.0)})
    net.population("M", sf.LIF, 4, params=LIF_PARAMS, init={
        "v": sf.NormalClipped(-60.0, 5.0, -70.0, -50.0), "refrac_time": sf.Exponential(1.0)})
    net.connect("N", "M", sf.Dense(), w=sf.Values(np.linspace(0.0, 3.0, 16)))
    net.current_source("drive", sf.DC, "N", params={"amp": 1.0})
    return net.network()


def _custom_updates():
    net = _net(batch_size=2)
    net.population("N", sf.IF, 4, params={"v_thresh": 2.0}, init={"v": sf.Uniform(0.0, 1.0)})
    net.current_source("drive", sf.DC, "N", params={"amp": 0.3})
    net.custom_update("Sum", "N", "r = v", var_refs={"v": "N.v"},
                      reductions={"r": sf.Reduction("sum", "batch")})
    net.custom_update("Centre", "N", "v = v - 0.5 * r", var_refs={"v": "N.v", "r": "Sum.r"},
                      group="Sum")
    net.custom_update("Peak", "N", "m = v", var_refs={"v": "N.v"},
                      reductions={"m": sf.Reduction("max", "neurons")}, every_step=True)
    return net.network()


def _batch():
    net = _src_lif(_net(batch_size=3))
    net.connect("S", "N", sf.FixedProbability(0.5), w=6.0)
    return net.network()


def _noise():
    net = _net()
    net.population("N", sf.IF, 4, params={"v_thresh": 1.0})
    net.current_source("noise", sf.GaussianNoise, "N", params={"mean": 0.2, "sd": 0.3})
    return net.network()


def _draws():
    net = _net(batch_size=2)
    net.population("D", DRAWS, 5)
    return net.network()


ALIF_PARAMS = {"tau_m": 10.0, "tau_a": 100.0, "beta": 0.5, "v_thresh": 1.0, "tau_refrac": 1.0}
IZH_PARAMS = {"a": 0.02, "b": 0.2, "c": -65.0, "d": 8.0}
_T, _D, _S, _B = "test_timing.py::", "test_decoder.py::", "test_semantics.py::", "test_batch.py::"
_Y, _F = "test_dynamics.py::", "test_fixed.py::"

FEATURES: tuple[Feature, ...] = (
    Feature("neuron:LIF", "neuron LIF", lambda: _driven(sf.LIF, {**LIF_PARAMS, "i_offset": 2.0},
                                                        0.5, {"v": sf.Uniform(-65.0, -55.0)}),
            (f"{_Y}test_lif_membrane_closed_form", f"{_Y}test_lif_refractory_period",
             f"{_Y}test_lif_refractory_ignores_input"), ("neuron:LIF",)),
    Feature("neuron:IF", "neuron IF", lambda: _driven(sf.IF, {"v_thresh": 1.0}, 0.3),
            (f"{_Y}test_expcurr_integrated_by_if", f"{_T}test_neuron_spike_chain",
             f"{_T}test_initial_state_spike_at_step_zero"), ("neuron:IF",)),
    Feature("neuron:ALIF", "neuron ALIF", lambda: _driven(sf.ALIF, ALIF_PARAMS, 0.4),
            (), ("neuron:ALIF",)),
    Feature("neuron:LeakyIntegrator", "neuron LeakyIntegrator",
            lambda: _driven(sf.LeakyIntegrator, {"tau_out": 5.0}, 0.5), (),
            ("neuron:LeakyIntegrator",)),
    Feature("neuron:Izhikevich", "neuron Izhikevich",
            lambda: _driven(sf.Izhikevich, IZH_PARAMS, 10.0), (), ("neuron:Izhikevich",)),
    Feature("neuron:PoissonSource", "neuron PoissonSource (several events per step)", _poisson,
            (), ("neuron:PoissonSource",)),
    Feature("neuron:SpikeSourceArray", "neuron SpikeSourceArray (shared or per batch element)",
            _ssa, (f"{_T}test_spike_source_array_rounds_to_nearest_step",
                   f"{_B}test_batch_with_shared_spike_times_and_reset"),
            ("neuron:SpikeSourceArray", "ssa:per_batch")),
    Feature("neuron:user", "user neuron models (model language)", _user_neuron,
            (f"{_T}test_trace_times_are_end_of_step",), ("neuron:user",)),
    Feature("ps:Delta", "postsynaptic Delta", lambda: _connected(),
            (f"{_D}test_decoder_dense",), ("ps:Delta",)),
    Feature("ps:ExpCurr", "postsynaptic ExpCurr",
            lambda: _connected(postsynaptic=sf.ExpCurr, ps_params={"tau": 3.0}, w=3.0),
            (f"{_Y}test_expcurr_decay", f"{_Y}test_expcurr_superposition"), ("ps:ExpCurr",)),
    Feature("ps:ExpCond", "postsynaptic ExpCond (conductance)",
            lambda: _connected(postsynaptic=sf.ExpCond, ps_params={"tau": 3.0, "E_rev": 0.0},
                               w=0.2),
            (f"{_Y}test_expcond_current_uses_v_at_the_start_of_the_step",
             f"{_Y}test_expcond_drives_lif_towards_the_reversal_potential"), ("ps:ExpCond",)),
    Feature("ps:user", "user postsynaptic models",
            lambda: _connected(postsynaptic=USER_PSM, ps_params={"tau": 3.0}, w=3.0),
            (), ("ps:user",)),
    Feature("input:extra", "extra inputs (`target=`, `deliver_pre`)", _extra_inputs, (),
            ("input:target", "input:pre_target")),
    Feature("wu:StaticPulse", "weight update StaticPulse", lambda: _connected(),
            (f"{_D}test_decoder_dense", f"{_D}test_decoder_sparse"), ("wu:StaticPulse",)),
    Feature("wu:STDP", "weight update STDP (pair rule)", _stdp,
            (f"{_Y}test_stdp_pair", f"{_Y}test_stdp_traces", f"{_Y}test_stdp_clipped_to_bounds"),
            ("wu:STDP",)),
    Feature("wu:user", "user weight-update models", _user_wu,
            (f"{_S}test_synapse_draws_use_row_and_position",), ("wu:user",)),
    Feature("conn:Dense", "connectivity Dense", lambda: _connected(sf.Dense()),
            (f"{_D}test_decoder_dense",), ("conn:Dense", "values:matrix")),
    Feature("conn:Sparse", "connectivity Sparse",
            lambda: _connected(sf.Sparse.from_pairs([0, 1, 3, 3], [2, 0, 1, 2], 3)),
            (f"{_D}test_decoder_sparse",), ("conn:Sparse", "values:synapse")),
    Feature("conn:OneToOne", "connectivity OneToOne", lambda: _connected(sf.OneToOne(), size=4),
            (f"{_D}test_one_to_one",), ("conn:OneToOne",)),
    Feature("conn:random", "connectivity FixedProbability, FixedNumberPost, FixedTotalNumber",
            lambda: _connected(sf.FixedNumberPost(2)),
            (f"{_D}test_random_kinds_deliver_their_connectivity",
             f"{_D}test_fixed_total_number_has_multapses_counted", f"{_D}test_no_autapses"),
            ("conn:FixedProbability", "conn:FixedNumberPost", "conn:FixedTotalNumber")),
    Feature("conn:procedural", "procedural connectivity (FixedProbability, FixedNumberPost)",
            lambda: _connected(sf.FixedProbability(0.6, procedural=True)),
            (f"{_D}test_procedural_equals_stored", f"{_D}test_procedural_depends_on_seed",
             f"{_S}test_fixed_probability_uses_connectivity_stream"),
            ("conn:FixedProbability:procedural", "conn:FixedNumberPost:procedural")),
    Feature("conn:Conv2D", "connectivity Conv2D (shared kernel)", _conv2d,
            (f"{_D}test_conv2d",), ("conn:Conv2D", "values:kernel")),
    Feature("conn:AvgPool2D", "connectivity AvgPool2D (shared pool taps)", _avgpool2d,
            (f"{_D}test_avgpool2d",), ("conn:AvgPool2D",)),
    Feature("ps:fused", "fused postsynaptic models (`fuse_postsynaptic`)", _fused,
            ("test_fuse.py::test_fused_delta_inputs_sum_exactly",), ("ps:fused",)),
    Feature("delay:axonal", "axonal delays", lambda: _connected(delay=3),
            (f"{_T}test_axonal_delay_arrives_at_t_plus_1_plus_d",), ("delay:axonal",)),
    Feature("delay:dendritic", "dendritic delays (`deliver_delayed`, StaticPulseDendriticDelay)",
            _dendritic, (f"{_T}test_dendritic_delay_per_synapse",
                         f"{_T}test_axonal_and_dendritic_delays_add",
                         f"{_T}test_dendritic_delay_clipped_to_max",
                         f"{_T}test_dendritic_delay_set_at_run_time"),
            ("delay:dendritic", "wu:StaticPulseDendriticDelay")),
    Feature("batch", "batching (batch_size > 1)", _batch,
            (f"{_B}test_batch_equals_single_runs",), ("batch:>1",)),
    Feature("cs:DC", "current source DC",
            lambda: _driven(sf.LIF, LIF_PARAMS, 2.0, {"v": sf.Uniform(-65.0, -55.0)}),
            (f"{_Y}test_lif_membrane_closed_form",), ("cs:DC",)),
    Feature("cs:GaussianNoise", "current source GaussianNoise", _noise, (), ("cs:GaussianNoise",)),
    Feature("rng", "run-time draws `uniform()`, `normal()` (Philox streams)", _draws,
            (f"{_S}test_neuron_draws_use_step_element_batch_site",
             f"{_S}test_reset_continues_counter_unless_reseeded"), ("neuron:user",)),
    Feature("init", "initialisers Constant, Uniform, Normal, NormalClipped, Exponential, Values",
            _init_kinds, (f"{_S}test_initial_values_use_init_stream",),
            ("init:Constant", "init:Uniform", "init:Normal", "init:NormalClipped",
             "init:Exponential", "init:Values")),
    Feature("cu", "custom updates: host-triggered, `every_step`, reductions over batch/neurons",
            _custom_updates,
            (f"{_B}test_reduction_matches_numpy", f"{_B}test_several_reductions_of_expressions",
             f"{_B}test_group_uses_earlier_reduction",
             f"{_B}test_host_custom_update_runs_only_when_called",
             f"{_B}test_every_step_update_runs_after_neurons"),
            ("cu:host", "cu:every_step", "cu:reduce:batch", "cu:reduce:neurons", "cu:followup",
             "cu:projection")),
    Feature("precision:float32", "precision float32", lambda: _connected(),
            (f"{_Y}test_lif_membrane_closed_form",), ("precision:float32",)),
    Feature("precision:float64", "precision float64",
            lambda: _driven(sf.IF, {"v_thresh": 1.0}, 0.3, precision="float64"),
            (f"{_Y}test_lif_membrane_closed_form",), ("precision:float64",)),
    Feature("precision:fixed", "fixed point `Fixed(bits, frac)` (bit-exact with numpy)",
            lambda: _driven(sf.IF, {"v_thresh": 1.0}, 0.25, precision=sf.Fixed(32, 16)),
            (f"{_F}test_arithmetic_rules", f"{_F}test_constants_round_to_nearest_even",
             f"{_F}test_narrow_storage_wraps_or_saturates",
             f"{_F}test_store_to_coarser_format_floors",
             f"{_F}test_time_and_uniform_draws_are_integer_exact",
             f"{_F}test_poisson_counts_use_threshold_table")),
)
BY_KEY = {f.key: f for f in FEATURES}


# cells -------------------------------------------------------------------------------------
def declared(backend: type, key: str) -> str | None:
    """The level ``backend`` declares for feature ``key`` (its ``verification`` dict,
    ``"*"`` as the default); None when it declares nothing."""
    table = getattr(backend, "verification", None)
    if table is None:
        return None
    return table.get(key, table.get("*", "no"))


def cell(feature: Feature, backend: type) -> str:
    level = declared(backend, feature.key)
    if level is None:
        return "?"
    if level in ("reference", "compile-only", "no"):
        return level
    if level == "exact" and feature.oracles:
        return "exact"
    return "tolerance" if feature.tags else "untested"


def columns() -> list[tuple[str, type]]:
    known = registered_backends()
    return sorted(known.items(), key=lambda kv: (kv[0] != REFERENCE, kv[0]))


def _oracle_files(feature: Feature) -> str:
    files = dict.fromkeys(o.split("::")[0].removesuffix(".py") for o in feature.oracles)
    return ", ".join(f"`{f}`" for f in files) or "—"


LEGEND = (
    "Cells: **reference** = the definition of the semantics; **exact** = exact-oracle tests",
    "(expected values computed independently of numpy: binary decoders, closed forms, Philox",
    "words; files in the last column) run on this backend, and random networks are compared",
    "with numpy; **tolerance** = only random networks (`tests/test_cross_backend.py`,",
    "`spikeforge validate --random`) are compared with numpy within the documented tolerance",
    "(`spikeforge.compare`); **compile-only** = generated code is compiled, not run;",
    "**no** = not lowered (building raises NotImplementedError naming the feature).",
)


def render() -> str:
    """The markdown block between the markers (markers excluded)."""
    cols = columns()
    head = ["feature", *(f"`{name}`" for name, _ in cols), "exact oracles (tests/)"]
    lines = [("<!-- generated by `python -m spikeforge.tools.matrix --write README.md`; "
              "tests/test_matrix.py fails when stale -->"),
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for feature in FEATURES:
        cells = [cell(feature, cls) for _, cls in cols]
        lines.append("| " + " | ".join([feature.label, *cells, _oracle_files(feature)]) + " |")
    return "\n".join([*lines, "", *LEGEND])


def replace_block(text: str, block: str) -> str:
    """``text`` with the part between START and END replaced by ``block``."""
    start, end = text.find(START), text.find(END)
    if start < 0 or end < start:
        raise ValueError(f"no {START} ... {END} block found")
    return text[:start + len(START)] + "\n" + block + "\n" + text[end:]


def current_block(text: str) -> str:
    start, end = text.find(START), text.find(END)
    if start < 0 or end < start:
        raise ValueError(f"no {START} ... {END} block found")
    return text[start + len(START):end].strip("\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m spikeforge.tools.matrix",
                                     description="Print or update the feature x backend matrix.")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--write", metavar="README", help="replace the block in this file")
    group.add_argument("--check", metavar="README", help="exit 1 when this file's block is stale")
    args = parser.parse_args(argv)
    block = render()
    if args.write:
        path = Path(args.write)
        path.write_text(replace_block(path.read_text(), block))
        print(f"wrote the matrix into {path}")
    elif args.check:
        if current_block(Path(args.check).read_text()) != block:
            print(f"{args.check}: the matrix is stale; run python -m spikeforge.tools.matrix "
                  f"--write {args.check}", file=sys.stderr)
            return 1
        print(f"{args.check}: the matrix is current")
    else:
        print(block)
    return 0


if __name__ == "__main__":
    sys.exit(main())
