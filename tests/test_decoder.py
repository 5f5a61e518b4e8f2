"""Exact-oracle tests of event propagation for every connectivity kind (the idea
of GeNN's binary-decoder feature test, written anew).

Presynaptic neuron i (a spike-source array) spikes at step i only, so in step
n = i + 1 + delay the targets receive exactly row i of the connectivity. Probe
neurons record ``x = i_syn`` (Delta synapses), so ``trace[n]`` is each target's
input in step n. Weights are powers of two or small integers: every expected
value is exact in float32, on any backend and in any summation order.

* Binary decoder (Dense, Sparse): post j gets weight 2**j from pre i iff bit j
  of i is set, so the inputs of step i+1+delay sum to the integer i.
* OneToOne: 16 -> 16 with weight i+1; neuron i is fed at step i+1+delay only.
* Conv2D: kernel taps are distinct powers of two, so each received value names
  the tap that delivered it; checked against a loop-based convolution oracle.
* Random kinds: with unit weights the input of a target equals the number of
  synapses (pre, post) read back with ``sim.connectivity``; procedural
  connectivity gives the same synapses and inputs as stored for the same seed.
"""

from __future__ import annotations

import numpy as np
import pytest

import spikeforge as sf

DT = 0.1
N_PRE, N_BITS = 16, 4


def _source(net, n):
    """Neuron i spikes at step i only."""
    net.population("src", sf.SpikeSourceArray, n, spike_times=[[i * DT] for i in range(n)])


def _run_probe(backend, net, n_steps):
    sim = net.build(backend=backend, record_vars=["probe.x"])
    sim.run(steps=n_steps)
    return sim, sim.trace("probe.x")[1]


def _expected_inputs(matrix: np.ndarray, delay: int, n_steps: int) -> np.ndarray:
    """Input per (step, target) when pre i spikes at step i: row i at step i+1+delay."""
    out = np.zeros((n_steps, matrix.shape[1]))
    out[1 + delay: 1 + delay + matrix.shape[0]] = matrix
    return out


def _decoder_matrix() -> np.ndarray:
    """(16, 4): 2**j where bit j of i is set, else 0."""
    i, j = np.arange(N_PRE)[:, None], np.arange(N_BITS)[None, :]
    return np.where((i >> j) & 1, 2.0**j, 0.0)


def _check_decoder(inputs, delay):
    decoded = inputs.sum(axis=1)
    want = np.zeros(len(inputs))
    want[1 + delay: 1 + delay + N_PRE] = np.arange(N_PRE)
    np.testing.assert_array_equal(decoded, want)


@pytest.mark.parametrize("delay", [0, 3])
def test_decoder_dense(backend, probe_model, delay):
    net = sf.NetworkBuilder(dt=DT)
    _source(net, N_PRE)
    net.population("probe", probe_model, N_BITS)
    net.connect("src", "probe", sf.Dense(), w=_decoder_matrix(), delay=delay)
    n_steps = N_PRE + delay + 3
    _, inputs = _run_probe(backend, net, n_steps)
    np.testing.assert_array_equal(inputs, _expected_inputs(_decoder_matrix(), delay, n_steps))
    _check_decoder(inputs, delay)


@pytest.mark.parametrize("delay", [0, 2])
def test_decoder_sparse(backend, probe_model, delay):
    pre, post = np.nonzero(_decoder_matrix())
    # give the pairs in reverse order: from_pairs must sort them by pre
    conn = sf.Sparse.from_pairs(pre[::-1], post[::-1], N_PRE)
    order = np.argsort(pre[::-1], kind="stable")
    weights = (2.0 ** post[::-1])[order]
    net = sf.NetworkBuilder(dt=DT)
    _source(net, N_PRE)
    net.population("probe", probe_model, N_BITS)
    net.connect("src", "probe", conn, "proj", w=weights, delay=delay)
    n_steps = N_PRE + delay + 3
    sim, inputs = _run_probe(backend, net, n_steps)
    np.testing.assert_array_equal(inputs, _expected_inputs(_decoder_matrix(), delay, n_steps))
    _check_decoder(inputs, delay)
    got_pre, got_post = sim.connectivity("proj")
    assert sorted(zip(got_pre.tolist(), got_post.tolist(), strict=True)) == sorted(
        zip(pre.tolist(), post.tolist(), strict=True))


@pytest.mark.parametrize("delay", [0, 4])
def test_one_to_one(backend, probe_model, delay):
    net = sf.NetworkBuilder(dt=DT)
    _source(net, N_PRE)
    net.population("probe", probe_model, N_PRE)
    net.connect("src", "probe", sf.OneToOne(), w=np.arange(1.0, N_PRE + 1), delay=delay)
    n_steps = N_PRE + delay + 3
    _, inputs = _run_probe(backend, net, n_steps)
    matrix = np.diag(np.arange(1.0, N_PRE + 1))
    np.testing.assert_array_equal(inputs, _expected_inputs(matrix, delay, n_steps))


def _conv_matrix(conn: sf.Conv2D, kernel: np.ndarray) -> np.ndarray:
    """Dense (n_pre, n_post) weights of a channel-last 2-D convolution, by loops:
    output (oy, ox, o) sums input (oy sy + ky - py, ox sx + kx - px, c) times
    kernel[ky, kx, c, o]; 'same' pads total max((out-1) s + k - in, 0), half before."""
    (h, w, c), (kh, kw), (sy, sx) = conn.in_shape, conn.kernel, conn.stride
    n_out = conn.out_channels
    if conn.padding == "valid":
        oh, ow, py, px = (h - kh) // sy + 1, (w - kw) // sx + 1, 0, 0
    else:
        oh, ow = -(-h // sy), -(-w // sx)
        py, px = max((oh - 1) * sy + kh - h, 0) // 2, max((ow - 1) * sx + kw - w, 0) // 2
    matrix = np.zeros((h * w * c, oh * ow * n_out))
    for oy in range(oh):
        for ox in range(ow):
            for ky in range(kh):
                for kx in range(kw):
                    y, x = oy * sy + ky - py, ox * sx + kx - px
                    if not (0 <= y < h and 0 <= x < w):
                        continue
                    for ci in range(c):
                        for o in range(n_out):
                            pre, post = (y * w + x) * c + ci, (oy * ow + ox) * n_out + o
                            matrix[pre, post] += kernel[ky, kx, ci, o]
    return matrix


CONV_CASES = [
    sf.Conv2D((4, 4, 1), (4, 4), 4),  # the binary decoder as one full-size kernel
    sf.Conv2D((3, 3, 2), (2, 2), 3),
    sf.Conv2D((5, 5, 1), (3, 3), 2, stride=(2, 2), padding="same"),
    sf.Conv2D((4, 6, 1), (3, 2), 2, stride=(1, 2), padding="same"),
]


@pytest.mark.parametrize("conn", CONV_CASES, ids=lambda c: f"{c.in_shape}k{c.kernel}s{c.stride}"
                         f"{c.padding}")
@pytest.mark.parametrize("delay", [0, 2])
def test_conv2d(backend, probe_model, conn, delay):
    kh, kw = conn.kernel
    shape = (kh, kw, conn.in_shape[2], conn.out_channels)
    if conn.in_shape == (4, 4, 1):  # tap (ky, kx) -> output o: 2**o iff bit o of ky*4+kx
        tap = np.arange(16).reshape(4, 4, 1, 1)
        kernel = np.where((tap >> np.arange(4)) & 1, 2.0 ** np.arange(4), 0.0)
    else:  # every tap a distinct power of two
        kernel = 2.0 ** np.arange(np.prod(shape)).reshape(shape)
    inputs = _window_inputs(backend, probe_model, conn, kernel, delay, _conv_matrix(conn, kernel))
    if conn.in_shape == (4, 4, 1):
        _check_decoder(inputs, delay)


def _window_inputs(backend, probe_model, conn, w, delay, matrix):
    """Every source neuron fires once in turn through ``conn`` (weights ``w``) onto
    probes; checks the probes' inputs against the dense ``matrix`` and returns them."""
    n_pre, n_post = int(np.prod(conn.in_shape)), int(np.prod(conn.out_shape))
    net = sf.NetworkBuilder(dt=DT)
    _source(net, n_pre)
    net.population("probe", probe_model, n_post)
    net.connect("src", "probe", conn, w=w, delay=delay)
    n_steps = n_pre + delay + 3
    _, inputs = _run_probe(backend, net, n_steps)
    np.testing.assert_array_equal(inputs, _expected_inputs(matrix, delay, n_steps))
    return inputs


POOL_CASES = [
    sf.AvgPool2D((4, 4, 1), (2, 2)),
    sf.AvgPool2D((4, 4, 2), (2, 2), stride=(1, 1)),
    sf.AvgPool2D((5, 5, 1), (2, 2), padding="same"),
    sf.AvgPool2D((3, 4, 3), (3, 2), stride=(1, 2), padding="same"),
]


@pytest.mark.parametrize("conn", POOL_CASES, ids=lambda c: f"{c.in_shape}p{c.pool}s{c.stride}"
                         f"{c.padding}")
@pytest.mark.parametrize("delay", [0, 2])
def test_avgpool2d(backend, probe_model, conn, delay):
    """Pooling equals the convolution whose kernel is the pool's taps on the channel
    diagonal (the loop oracle above); every tap a distinct power of two."""
    (ph, pw), c = conn.pool, conn.in_shape[2]
    taps = 2.0 ** np.arange(ph * pw).reshape(ph, pw)
    diagonal = taps[:, :, None, None] * np.eye(c)[None, None]
    matrix = _conv_matrix(sf.Conv2D(conn.in_shape, conn.pool, c, conn.stride, conn.padding),
                          diagonal)
    _window_inputs(backend, probe_model, conn, taps, delay, matrix)


def test_avgpool2d_shapes_and_errors():
    pool = sf.AvgPool2D((6, 4, 3), (2, 2))
    assert pool.stride == (2, 2) and pool.out_shape == (3, 2, 3) and pool.kernel_shape == (2, 2)
    assert sf.AvgPool2D((5, 5, 1), (2, 2), padding="same").out_shape == (3, 3, 1)
    net = sf.NetworkBuilder()
    net.population("a", sf.IF, 72, params={"v_thresh": 1.0})
    net.population("b", sf.IF, 18, params={"v_thresh": 1.0})
    with pytest.raises(ValueError, match="projection 'a_b': AvgPool2D needs pre size 72 .* "
                                         "post size 45 .*got 72 -> 18"):
        net.connect("a", "b", sf.AvgPool2D((6, 4, 3), (2, 2), stride=(1, 1)), w=0.25)
    with pytest.raises(ValueError, match="AvgPool2D pool \\(7, 1\\) larger than input"):
        net.connect("a", "b", sf.AvgPool2D((6, 4, 3), (7, 1)), w=0.25)
    with pytest.raises(ValueError, match="array shape \\(3, 3\\) does not match"):
        net.connect("a", "b", sf.AvgPool2D((6, 4, 3), (2, 2), padding="same"),
                    w=np.ones((3, 3)))
    with pytest.raises(ValueError, match="pool entries must be >= 1"):
        sf.AvgPool2D((6, 4, 3), (0, 2))
    with pytest.raises(ValueError, match="padding must be 'valid' or 'same'"):
        sf.AvgPool2D((6, 4, 3), (2, 2), padding="full")


# random connectivity --------------------------------------------------------------

N_POST = 12
RANDOM_KINDS = {
    "prob": sf.FixedProbability(0.3),
    "prob_procedural": sf.FixedProbability(0.3, procedural=True),
    "num_post": sf.FixedNumberPost(5),
    "num_post_procedural": sf.FixedNumberPost(5, procedural=True),
    "total": sf.FixedTotalNumber(60),
}


def _random_net(probe, conn, w, delay=1, seed=7):
    net = sf.NetworkBuilder(dt=DT, seed=seed)
    _source(net, N_PRE)
    net.population("probe", probe, N_POST)
    net.connect("src", "probe", conn, "proj", w=w, delay=delay)
    return net


def _count_matrix(pre, post) -> np.ndarray:
    matrix = np.zeros((N_PRE, N_POST))
    np.add.at(matrix, (pre, post), 1.0)
    return matrix


@pytest.mark.parametrize("kind", list(RANDOM_KINDS))
def test_random_kinds_deliver_their_connectivity(backend, probe_model, kind):
    conn = RANDOM_KINDS[kind]
    n_steps = N_PRE + 4
    sim, inputs = _run_probe(backend, _random_net(probe_model, conn, 1.0), n_steps)
    pre, post = sim.connectivity("proj")
    assert len(pre) == len(post) > 0
    assert np.all(np.diff(pre) >= 0), "connectivity must be in CSR (row) order"
    matrix = _count_matrix(pre, post)
    assert 0 < np.count_nonzero(matrix) < matrix.size  # neither empty nor all-to-all
    np.testing.assert_array_equal(inputs, _expected_inputs(matrix, 1, n_steps))
    if isinstance(conn, sf.FixedNumberPost):
        np.testing.assert_array_equal(np.bincount(pre, minlength=N_PRE), conn.n)
    if isinstance(conn, sf.FixedTotalNumber):
        assert len(pre) == conn.n


def test_fixed_total_number_has_multapses_counted(backend, probe_model):
    """60 pairs among 16 x 3 targets: duplicates are certain; each counts once."""
    net = sf.NetworkBuilder(dt=DT, seed=3)
    _source(net, N_PRE)
    net.population("probe", probe_model, 3)
    net.connect("src", "probe", sf.FixedTotalNumber(60), "proj", w=1.0)
    sim, inputs = _run_probe(backend, net, N_PRE + 2)
    pre, post = sim.connectivity("proj")
    matrix = np.zeros((N_PRE, 3))
    np.add.at(matrix, (pre, post), 1.0)
    assert matrix.max() > 1
    np.testing.assert_array_equal(inputs, _expected_inputs(matrix, 0, N_PRE + 2))


@pytest.mark.parametrize("stored, procedural", [
    (sf.FixedProbability(0.3), sf.FixedProbability(0.3, procedural=True)),
    (sf.FixedNumberPost(5), sf.FixedNumberPost(5, procedural=True)),
], ids=["prob", "num_post"])
def test_procedural_equals_stored(backend, probe_model, stored, procedural):
    n_steps = N_PRE + 4
    weights = sf.Uniform(0.5, 1.5)  # regenerated per synapse from the same init stream
    sim_s, in_s = _run_probe(backend, _random_net(probe_model, stored, weights), n_steps)
    sim_p, in_p = _run_probe(backend, _random_net(probe_model, procedural, weights), n_steps)
    for got, want in zip(sim_p.connectivity("proj"), sim_s.connectivity("proj"), strict=True):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_allclose(in_p, in_s, rtol=1e-6, atol=0)
    # the stored inputs equal the read-back weights summed per (pre, post)
    pre, post = sim_s.connectivity("proj")
    matrix = np.zeros((N_PRE, N_POST))
    np.add.at(matrix, (pre, post), sim_s.get("proj.w").astype(np.float64))
    np.testing.assert_allclose(in_s, _expected_inputs(matrix, 1, n_steps), rtol=1e-6, atol=0)
    assert np.count_nonzero(in_s) > N_PRE


def test_procedural_depends_on_seed(backend, probe_model):
    conn = sf.FixedProbability(0.3, procedural=True)
    sim_a, in_a = _run_probe(backend, _random_net(probe_model, conn, 1.0, seed=1), 20)
    sim_b, in_b = _run_probe(backend, _random_net(probe_model, conn, 1.0, seed=2), 20)
    assert not np.array_equal(in_a, in_b)
    for sim, inputs in ((sim_a, in_a), (sim_b, in_b)):
        pre, post = sim.connectivity("proj")
        np.testing.assert_array_equal(inputs, _expected_inputs(_count_matrix(pre, post), 1, 20))


@pytest.mark.parametrize("conn", [sf.FixedProbability(0.5, autapses=False),
                                  sf.FixedNumberPost(4, autapses=False)],
                         ids=["prob", "num_post"])
def test_no_autapses(backend, conn):
    net = sf.NetworkBuilder(dt=DT, seed=5)
    net.population("ifs", sf.IF, 20, params={"v_thresh": 1e9})
    net.connect("ifs", "ifs", conn, "proj", w=1.0)
    sim = net.build(backend=backend)
    pre, post = sim.connectivity("proj")
    assert len(pre) > 0 and not np.any(pre == post)
