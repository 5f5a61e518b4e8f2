"""fpga board profiles and the resource estimate (no Xilinx tools needed)."""

import json

import pytest
import spikeforge as sf
from spikeforge.backends.fpga import boards as B
from spikeforge.backends.fpga import csim
from spikeforge.backends.fpga.estimate import DoesNotFit, bram_blocks, check, estimate, uram_blocks
from spikeforge.backends.fpga.program import FpgaProgram
from spikeforge.demos import cuba_network
from spikeforge.prepare import prepare

PARTS = {"pynq-z2": "xc7z020clg400-1", "ultra96-v2": "xczu3eg-sbva484-1-i",
         "kv260": "xck26-sfvc784-2LV-c", "zcu104": "xczu7ev-ffvc1156-2-e",
         "u250": "xcu250-figd2104-2L-e"}


def test_board_profiles_are_data_with_sources():
    assert set(B.BOARDS) == set(PARTS)
    for name, board in B.BOARDS.items():
        assert board.part == PARTS[name]
        assert board.sources and all(isinstance(s, str) for s in board.sources)
        assert min(board.bram_18k, board.dsp, board.lut, board.ff) > 0
        assert (board.flow == "alveo") == (name == "u250")
        assert (board.ps is None) == (board.flow == "alveo")
        assert board.platform is None or board.flow == "alveo"
    assert B.BOARDS["pynq-z2"].ps == "processing_system7"
    assert B.BOARDS["zcu104"].ps == "zynq_ultra_ps_e" and B.BOARDS["zcu104"].uram == 96
    assert B.BOARDS["pynq-z2"].bram_bytes == 280 * 2304


def test_bad_board_data_is_rejected(tmp_path):
    data = json.loads((B.DIR / "pynq-z2.json").read_text())
    (tmp_path / "x.json").write_text(json.dumps({**data, "flow": "asic"}))
    with pytest.raises(ValueError, match="pynq-z2.*flow"):
        B.load(tmp_path / "x.json")
    (tmp_path / "y.json").write_text(json.dumps({**data, "lutz": 1}))
    with pytest.raises(ValueError, match="lutz"):
        B.load(tmp_path / "y.json")
    with pytest.raises(ValueError, match="unknown board 'zedboard'.*pynq-z2"):
        B.board("zedboard")


def test_ram_block_counts():
    assert bram_blocks(512, 32) == 1 and bram_blocks(1024, 32) == 2
    assert bram_blocks(16384, 1) == 1 and bram_blocks(2048, 8) == 1
    assert bram_blocks(204415, 32) == 400 and bram_blocks(0, 32) == 0
    assert uram_blocks(4096, 72) == 1 and uram_blocks(4097, 32) == 2


def program_of(network, **options) -> FpgaProgram:
    return FpgaProgram(prepare(network), record_spikes=[network.populations[0].name], **options)


@pytest.fixture(scope="module")
def cuba():
    return program_of(cuba_network(n=4000))


def test_cuba_float32_fits_u250_but_not_pynq_z2(cuba):
    assert estimate(cuba, "u250").fits
    small = estimate(cuba, "pynq-z2")
    assert not small.fits and small.over == ["bram_18k"]
    with pytest.raises(DoesNotFit) as info:
        check(small)
    message = str(info.value)
    assert "does not fit pynq-z2 (xc7z020clg400-1): bram_18k" in message
    assert "largest on-chip arrays: state:E_E.w (204415 x float32" in message
    assert "post:E_E" in message
    assert "16-bit weights" in message and "8-bit weights" in message
    assert "procedural connectivity for 'E_E'" in message
    assert "off-chip weights (build(..., onchip='state'))" in message and "fits" in message
    assert "boards it fits as is: u250" in message


def test_auto_placement_keeps_weights_on_chip_only_where_they_fit(cuba):
    small = FpgaProgram(cuba.prepared, cuba.record_spikes, onchip="auto", board=B.board("pynq-z2"))
    large = FpgaProgram(cuba.prepared, cuba.record_spikes, onchip="auto", board=B.board("u250"))
    assert "state:E_E.w" not in small.onchip and "state:E.v" in small.onchip
    assert "state:E_E.w" in large.onchip
    assert check(estimate(small, "pynq-z2")).fits


def test_off_chip_weights_fit_pynq_z2(cuba):
    offchip = FpgaProgram(cuba.prepared, cuba.record_spikes, onchip="state")
    est = check(estimate(offchip, "pynq-z2"))
    where = {r.name: r.storage for r in est.rows if r.kind == "array"}
    assert where["state:E_E.w"] == where["post:E_E"] == "ddr" and where["state:E.v"] == "bram"


def test_large_arrays_go_to_uram_where_the_board_has_it(cuba):
    rows = {r.name: r for r in estimate(cuba, "zcu104").rows}
    assert rows["state:E_E.w"].storage == "uram" and rows["state:E_E.w"].uram > 0
    assert rows["spk_t:E"].storage == "lutram"
    assert rows["rec_spikes:E"].storage == "ddr" and rows["rec_spikes:E"].bram_18k == 0


def small_network(precision, weight_fmt=None):
    net = sf.NetworkBuilder(dt=0.5, seed=2, precision=precision)
    lif = dict(C=1.0, tau_m=10.0, v_rest=0.0, v_reset=0.0, v_thresh=1.0, i_offset=0.0,
               tau_refrac=1.0)
    net.population("A", sf.LIF, 400, params=lif, init={"v": sf.Uniform(0.0, 1.0)})
    model = sf.WeightUpdateModel("W", vars=(sf.Var("w", batched=False, fmt=weight_fmt),),
                                 pre_spike="deliver(w)", doc="static, with a storage format")
    net.connect("A", "A", sf.FixedProbability(0.2), weight_update=model, w=0.01,
                postsynaptic=sf.ExpCurr, ps_params={"tau": 2.0})
    return net.network()


def test_float_costs_more_dsp_and_lut_than_fixed():
    flt = estimate(program_of(small_network("float32")), "pynq-z2").totals
    fix = estimate(program_of(small_network(sf.Fixed(16, 8))), "pynq-z2").totals
    assert flt["dsp"] > fix["dsp"] and flt["lut"] > fix["lut"]
    assert estimate(program_of(small_network("float64")), "pynq-z2").totals["dsp"] > flt["dsp"]


def test_loops_are_costed_from_the_model_code():
    plain = small_network(sf.Fixed(32, 16))
    builder = sf.NetworkBuilder(dt=0.5, seed=2, precision=sf.Fixed(32, 16))
    for pop in plain.populations:
        builder.population(pop.name, pop.model, pop.size, params=pop.params, init=pop.init)
    proj = plain.projections[0]
    builder.connect("A", "A", sf.FixedProbability(0.2, procedural=True),
                    weight_update=proj.weight_update, w=0.01,
                    postsynaptic=sf.ExpCurr, ps_params={"tau": 2.0})
    builder.current_source("noise", sf.GaussianNoise, "A", params={"mean": 0.0, "sd": 0.1})
    rows = {r.name: r for r in estimate(program_of(plain), "zcu104").rows}
    noisy = {r.name: r for r in estimate(program_of(builder.network()), "zcu104").rows}
    assert "0 Philox" in rows["neurons A"].detail and "1 Philox" in noisy["neurons A"].detail
    assert noisy["neurons A"].dsp >= rows["neurons A"].dsp + 80  # one unrolled Philox
    assert "1 Philox" in noisy["pre_spike A_A"].detail  # the procedural row's draw
    assert "state:A_A.w" not in noisy and "post:A_A" not in noisy  # nothing stored


def test_narrow_weights_take_fewer_block_rams():
    wide = estimate(program_of(small_network(sf.Fixed(32, 16))), "pynq-z2").rows
    narrow = estimate(program_of(small_network(sf.Fixed(32, 16), sf.Fixed(8, 6))), "pynq-z2").rows
    weight = {r.name: r for r in wide}["state:A_A.w"]
    weight8 = {r.name: r for r in narrow}["state:A_A.w"]
    assert weight8.nbytes * 4 == weight.nbytes and weight8.bram_18k < weight.bram_18k


def test_table_lists_every_array_loop_and_interface(cuba):
    est = estimate(cuba, "zcu104")
    text = est.table()
    for buf in cuba.buffers:
        assert buf.key in text
    for label in ("neurons E", "pre_spike E_E", "m_axi gmem_csr", "s_axilite control", "total",
                  "board"):
        assert label in text
    assert f"{est.totals['bram_18k']:>8}" in text


def test_build_with_a_board_fails_before_compiling(monkeypatch):
    def no_compile(*args):
        raise AssertionError("compiled a network that does not fit")

    monkeypatch.setattr(csim, "build", no_compile)
    with pytest.raises(DoesNotFit, match="pynq-z2"):
        cuba_network(n=4000).build("fpga", board="pynq-z2")


def test_a_fitting_network_builds_and_runs_for_its_board():
    net = small_network(sf.Fixed(32, 16), sf.Fixed(16, 12))
    sim = net.build("fpga", board="pynq-z2")
    ref = net.build("numpy")
    sim.run(steps=30, progress=False)
    ref.run(steps=30, progress=False)
    assert (sim.get("A.v") == ref.get("A.v")).all()
