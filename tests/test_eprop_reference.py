"""e-prop gradients: an independent plain implementation, and numpy vs other backends.

``reference`` below is a deliberately plain per-sample, per-synapse loop over
the equations of docs/eprop.md (same update order and one-step learning-signal
lag as the IR network). It shares no code with spikeforge.train; the IR
gradients (numpy backend, float64) must agree with it to 1e-9 relative.
Other backends must agree with numpy within a float32 tolerance on random
small networks (hypothesis).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from spikeforge.backends import available
from spikeforge.train import EProp, Input, Readout, Recurrent

DT = 1.0


def reference(x, y, W, B, b_out, layers, p, loss="per_step", late=False, dt=DT, final=False):
    """Per-sample gradients of one sample x [T, C] with label y, as a dict keyed like
    W. W: dense matrices 'in_hid', 'rec', 'hid_out' (layer 0) and 'ff<l>', 'rec<l>',
    'hid<l>_out' (layer l); B: feedback matrix per layer [H_l, K]; layers: per layer
    dict(tau_m, tau_a, v_th, refractory_ms, gamma, betas). ``late`` pairs the
    learning signal with the updated ebar (a two-step lag). ``final`` (loss 'sum'):
    the gradient of CE(softmax(mean_n y(n))) through the final error errf only,
    dL/dy(n) = errf: output dW_kj = errf_k sum_n dy_k(n)/dW_kj (dy/dW carried along
    directly), bias errf sum_n bbar(n), hidden (B errf)_j sum_n ebar_ji(n-1), plus
    the same regularisation term."""
    T, C = x.shape
    K = len(b_out)
    N = T + 2
    mask = 1.0 / N  # one sample: 1 / (n_samples * N)
    kappa = math.exp(-dt / p["tau_out"])
    f_target = p["reg_rate_hz"] * dt / 1000.0
    tags = ["" if l == 0 else str(l) for l in range(len(layers))]
    alphas = [math.exp(-dt / lay["tau_m"]) for lay in layers]
    # relay state (its trace uses layer 0's alpha)
    xin, xbar, xprev = [0.0] * C, [0.0] * C, [0.0] * C
    S = []  # per hidden layer: neuron state lists (end of the previous step)
    for lay in layers:
        H = len(lay["betas"])
        st = {name: [0.0] * H for name in ("v", "a", "z", "psi", "L", "reg", "zsum", "zbar",
                                           "zprev", "zk", "zkprev", "zbarn", "zprevn")}
        st["refrac"] = [-dt] * H
        S.append(st)
    yv, bbar, u, ysum, err = ([0.0] * K for _ in range(5))
    grads = {name: np.zeros_like(m) for name, m in W.items()}
    epsa = {name: np.zeros_like(m) for name, m in W.items()}
    ebar = {name: np.zeros_like(m) for name, m in W.items()}
    ebar_sum = {name: np.zeros_like(m) for name, m in W.items()}  # final: sum_n ebar(n-1)
    dydw = [np.zeros(len(lay["betas"])) for lay in layers]  # final: dy_k(n)/dW_kj (any k)
    dydw_sum = [np.zeros(len(lay["betas"])) for lay in layers]
    bbar_sum = [0.0] * K
    g_b = np.zeros(K)
    for n in range(N):
        nst = n + 1.0
        # phase 2: the clock spike of step n-1 delivers sample row n-1 to the relay
        relay_in = [float(x[n - 1, c]) if 1 <= n <= T else 0.0 for c in range(C)]
        # phase 4: synapse dynamics, reading neuron state of step n-1
        i_hid = [[0.0] * len(lay["betas"]) for lay in layers]
        i_fb = [[0.0] * len(lay["betas"]) for lay in layers]
        i_out = [0.0] * K
        for l, lay in enumerate(layers):
            post = S[l]
            rho = math.exp(-dt / lay["tau_a"])
            betas = lay["betas"]
            feeds = [("in_hid", xin, xprev) if l == 0 else
                     (f"ff{l}", S[l - 1]["z"], S[l - 1]["zprevn"]),
                     (f"rec{tags[l]}", post["z"], post["zprev"])]
            for name, pre_z, pre_trace in feeds:
                w, g, ea, eb = W[name], grads[name], epsa[name], ebar[name]
                for i in range(len(pre_z)):
                    for j in range(len(betas)):
                        if name.startswith("rec") and i == j:
                            continue  # no self-connections
                        i_hid[l][j] += w[i, j] * pre_z[i]
                        if not late and not final:  # L(m-1) = B err(m-2) with ebar(m-2)
                            g[i, j] += post["L"][j] * eb[i, j]
                        psi, beta = post["psi"][j], betas[j]
                        e = psi * (pre_trace[i] - beta * ea[i, j])
                        ea[i, j] = psi * pre_trace[i] + (rho - psi * beta) * ea[i, j]
                        eb[i, j] = kappa * eb[i, j] + e
                        if late:
                            g[i, j] += post["L"][j] * eb[i, j]
                        ebar_sum[name][i, j] += eb[i, j]  # ebar(m-1), m = 0..N-1
                        g[i, j] += post["reg"][j] * e
            name = f"hid{tags[l]}_out"
            for j in range(len(betas)):  # y(n) gets W z(n-1): dy(n)/dW = kappa dy(n-1)/dW + z(n-1)
                dydw[l][j] = kappa * dydw[l][j] + post["z"][j]
                dydw_sum[l][j] += dydw[l][j]
                for k in range(K):
                    i_out[k] += W[name][j, k] * post["z"][j]
                    grads[name][j, k] += err[k] * post["zkprev"][j]
                    i_fb[l][j] += B[l][j, k] * err[k]
        # phase 6: relay, hidden layers, readout
        for c in range(C):
            xin[c] = relay_in[c]
            xprev[c] = xbar[c]
            xbar[c] = alphas[0] * xbar[c] + xin[c]
        for l, lay in enumerate(layers):
            st, alpha = S[l], alphas[l]
            alpha_n = alphas[l + 1] if l + 1 < len(layers) else alpha
            rho, v_th = math.exp(-dt / lay["tau_a"]), lay["v_th"]
            for j, beta in enumerate(lay["betas"]):
                st["v"][j] = alpha * st["v"][j] + i_hid[l][j] - st["z"][j] * v_th
                st["a"][j] = rho * st["a"][j] + st["z"][j]
                st["refrac"][j] = max(st["refrac"][j] - dt, -dt)
                st["zsum"][j] += st["z"][j]
                st["reg"][j] = mask * p["reg_strength"] * (st["zsum"][j] / nst - f_target)
                st["L"][j] = i_fb[l][j]
                free = st["refrac"][j] < -0.5 * dt
                thr = v_th + beta * st["a"][j]
                st["psi"][j] = lay["gamma"] / v_th * max(
                    0.0, 1.0 - abs((st["v"][j] - thr) / v_th)) if free else 0.0
                st["zprev"][j], st["zkprev"][j] = st["zbar"][j], st["zk"][j]
                st["zprevn"][j] = st["zbarn"][j]
                st["zbar"][j] *= alpha
                st["zk"][j] *= kappa
                st["zbarn"][j] *= alpha_n
                st["z"][j] = 0.0
                if free and st["v"][j] >= thr and n < N - 1:  # no spike in the last step
                    st["z"][j], st["refrac"][j] = 1.0, lay["refractory_ms"]
                    st["zbar"][j] += 1.0
                    st["zk"][j] += 1.0
                    st["zbarn"][j] += 1.0
        for k in range(K):
            yv[k] = kappa * yv[k] + i_out[k] + b_out[k]
            bbar[k] = kappa * bbar[k] + 1.0
            ysum[k] += yv[k]
            bbar_sum[k] += bbar[k]
            if loss == "per_step":
                u[k] = yv[k]
            elif loss == "sum":
                u[k] = ysum[k] / nst
            else:
                u[k] = yv[k] if n == 0 else max(u[k], yv[k])
        # phase 7: softmax, error, bias gradient
        top = max(u)
        total = sum(math.exp(uk - top) for uk in u)
        for k in range(K):
            pi = math.exp(u[k] - top) / total
            err[k] = mask * (pi - (1.0 if k == y else 0.0))
            g_b[k] += err[k] * bbar[k]
    if final:  # err now holds the final error errf = mask (pi(N-1) - y*)
        g_b = np.array([err[k] * bbar_sum[k] for k in range(K)])
        for l in range(len(layers)):
            name = f"hid{tags[l]}_out"
            grads[name] = np.outer(dydw_sum[l], err)
            signal = B[l] @ np.array(err)  # (B errf)_j
            for name in (("in_hid" if l == 0 else f"ff{l}"), f"rec{tags[l]}"):
                grads[name] = grads[name] + ebar_sum[name] * signal[None, :]
                if name.startswith("rec"):
                    np.fill_diagonal(grads[name], 0.0)
    grads = {f"{name}.w": g for name, g in grads.items()}
    grads["out.b"] = g_b
    return grads


PARAMS = {"tau_m": 10.0, "tau_a": 30.0, "v_th": 0.5, "refractory_ms": 2.0, "gamma": 0.3,
          "tau_out": 8.0, "reg_rate_hz": 10.0, "reg_strength": 0.5}


def layer_spec(neuron, size, n_adaptive=None, tau_m=None):
    return Recurrent(size, neuron=neuron, tau_m=tau_m or PARAMS["tau_m"], tau_a=PARAMS["tau_a"],
                     beta=0.2, v_th=PARAMS["v_th"], refractory_ms=PARAMS["refractory_ms"],
                     gamma=PARAMS["gamma"], n_adaptive=n_adaptive)


def make_model(c, hidden, k, feedback, loss, backend, precision, seed, dt=DT, signal="online"):
    return EProp([Input(c), *hidden, Readout(k, tau=PARAMS["tau_out"])], dt=dt, loss=loss,
                 feedback=feedback, reg_rate_hz=PARAMS["reg_rate_hz"],
                 reg_strength=PARAMS["reg_strength"], backend=backend, seed=seed,
                 precision=precision, verbose=False, learning_signal=signal)


def active_weights(model, scale=2.0):
    """Stronger feedforward weights so that hidden neurons spike and psi is often non-zero."""
    w = model.weights()
    for key in w:
        if key.startswith(("in_hid", "ff")):
            w[key] = w[key] * scale + 0.3
    w["out.b"] = np.linspace(-0.2, 0.2, len(w["out.b"]))
    model.set_weights(w)
    return model.weights()


def sample_data(n, t, c, k, seed, p=0.3):
    rng = np.random.default_rng(seed)
    return (rng.random((n, t, c)) < p).astype(np.uint8), rng.integers(0, k, n)


def reference_args(model, w, feedback):
    W = {key[:-2]: value for key, value in w.items() if key.endswith(".w")}
    tags = ["" if l == 0 else str(l) for l in range(len(model.spec.hidden))]
    B = [w[f"hid{t}_out.w"] if feedback == "symmetric" else w[f"hid{t}_out.bfb"] for t in tags]
    layers = [{"tau_m": h.tau_m, "tau_a": h.tau_a, "v_th": h.v_th, "refractory_ms": h.refractory_ms,
                   "gamma": h.gamma, "betas": h.betas} for h in model.spec.hidden]
    return W, B, w["out.b"], layers


def ir_vs_reference(hidden, feedback, loss, dt=DT, signal="online"):
    c, k, t, n = 4, 3, 14, 2
    model = make_model(c, hidden, k, feedback, loss, "numpy", "float64", 3, dt, signal)
    w = active_weights(model)
    x, y = sample_data(n, t, c, k, 5)
    got = model.per_sample_gradients(x, y)
    W, B, b_out, layers = reference_args(model, w, feedback)
    for b in range(n):
        ref = reference(x[b], y[b], W, B, b_out, layers, PARAMS, loss, dt=dt,
                        final=signal == "final")
        assert set(ref) == set(got)
        for key, value in ref.items():
            # IR masks with 1/(n N): n samples share the batch mean
            np.testing.assert_allclose(got[key][b] * n, value, rtol=1e-9, atol=1e-12,
                                       err_msg=f"{feedback}/{loss} sample {b} {key}")
    return got


@pytest.mark.parametrize("neuron", ["alif", "lif"])
@pytest.mark.parametrize("feedback", ["symmetric", "random"])
def test_ir_gradients_equal_plain_reference(neuron, feedback):
    got = ir_vs_reference([layer_spec(neuron, 6)], feedback, "per_step")
    for key in ("in_hid.w", "rec.w", "hid_out.w"):  # the comparison is not vacuous
        assert np.count_nonzero(got[key]) > got[key].size // 4, key


@pytest.mark.parametrize("loss", ["sum", "max"])
def test_ir_gradients_equal_reference_other_losses(loss):
    ir_vs_reference([layer_spec("alif", 6)], "symmetric", loss)


@pytest.mark.parametrize("neuron", ["alif", "lif"])
@pytest.mark.parametrize("feedback", ["symmetric", "random"])
def test_final_learning_signal_equals_plain_reference(neuron, feedback):
    got = ir_vs_reference([layer_spec(neuron, 6)], feedback, "sum", signal="final")
    for key in ("in_hid.w", "rec.w", "hid_out.w"):
        assert np.count_nonzero(got[key]) > got[key].size // 4, key


def test_final_learning_signal_two_layers_match_reference():
    ir_vs_reference([layer_spec("alif", 5), layer_spec("lif", 4, tau_m=6.0)], "random", "sum",
                    signal="final")


def test_final_learning_signal_differs_from_online():
    """Not vacuous: the online rule's gradients are different numbers."""
    online = ir_vs_reference([layer_spec("alif", 6)], "symmetric", "sum")
    final = ir_vs_reference([layer_spec("alif", 6)], "symmetric", "sum", signal="final")
    for key in ("in_hid.w", "rec.w", "hid_out.w", "out.b"):
        assert not np.allclose(online[key], final[key], rtol=1e-2), key


def loss_of(model, x, y):
    return model.evaluate((x, y), batch_size=1)["loss"]


@pytest.mark.parametrize("signal, exact", [("final", True), ("online", False)])
def test_final_signal_gives_the_exact_readout_gradient(signal, exact):
    """The readout weights and bias do not change a spike, so the loss is smooth in
    them and central differences give its gradient: 'final' matches it, the online
    rule does not (on this sample)."""
    model = make_model(4, [layer_spec("alif", 6)], 3, "symmetric", "sum", "numpy", "float64", 3,
                       signal=signal)
    w = active_weights(model)
    x, y = sample_data(1, 14, 4, 3, 5)
    got = model.per_sample_gradients(x, y)
    h = 1e-5
    for key, index in (("hid_out.w", (2, 1)), ("hid_out.w", (4, 0)), ("out.b", (1,)),
                       ("out.b", (2,))):
        losses = []
        for sign in (1, -1):
            moved = {k: v.copy() for k, v in w.items()}
            moved[key][index] += sign * h
            model.set_weights(moved)
            losses.append(loss_of(model, x, y))
        numeric = (losses[0] - losses[1]) / (2 * h)
        assert abs(numeric) > 1e-4, (key, index)
        close = np.isclose(got[key][0][index], numeric, rtol=1e-6, atol=1e-10)
        assert close == exact, (signal, key, index, got[key][0][index], numeric)


def test_other_time_step_matches_reference():
    """dt = 0.5 ms: refractory 2 ms = 4 steps; decays exp(-dt/tau) and the rate target scale."""
    got = ir_vs_reference([layer_spec("alif", 6)], "symmetric", "sum", dt=0.5)
    assert np.count_nonzero(got["rec.w"]) > 0


def test_mixed_adaptive_and_lif_neurons_match_reference():
    ir_vs_reference([layer_spec("alif", 6, n_adaptive=3)], "random", "per_step")


def test_two_layers_match_reference():
    got = ir_vs_reference([layer_spec("alif", 5), layer_spec("lif", 4, tau_m=6.0)], "symmetric",
                          "per_step")
    assert np.count_nonzero(got["ff1.w"]) > got["ff1.w"].size // 4


def test_reference_detects_a_wrong_lag():
    """Sanity of the oracle: pairing the learning signal with ebar one step later
    (a two-step lag) gives gradients the comparison rejects."""
    model = make_model(4, [layer_spec("alif", 6)], 3, "symmetric", "per_step", "numpy",
                       "float64", 3)
    w = active_weights(model)
    x, y = sample_data(1, 14, 4, 3, 5)
    got = model.per_sample_gradients(x, y)
    args = (x[0], y[0], *reference_args(model, w, "symmetric"), PARAMS)
    np.testing.assert_allclose(got["in_hid.w"][0], reference(*args)["in_hid.w"], rtol=1e-9)
    assert not np.allclose(got["in_hid.w"][0], reference(*args, late=True)["in_hid.w"],
                           rtol=1e-3)


OTHER = [s.name for s in available() if s.available and s.name != "numpy"]


@pytest.mark.skipif(not OTHER, reason="no backend besides numpy")
@pytest.mark.parametrize("backend", OTHER)
@settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck))
@given(c=st.integers(1, 5), h=st.lists(st.integers(2, 6), min_size=1, max_size=2),
       k=st.integers(2, 4), t=st.integers(1, 12), n=st.integers(1, 3),
       neuron=st.sampled_from(["alif", "lif"]),
       feedback=st.sampled_from(["symmetric", "random", "adaptive"]),
       loss=st.sampled_from(["per_step", "sum", "max", "sum/final"]),
       seed=st.integers(0, 2**16))
@example(c=3, h=[5, 3], k=3, t=9, n=2, neuron="alif", feedback="random", loss="sum/final",
         seed=7)  # the final learning signal on every backend, whatever hypothesis draws
def test_backend_gradients_equal_numpy_in_float32(backend, c, h, k, t, n, neuron, feedback,
                                                   loss, seed):
    x, y = sample_data(n, t, c, k, seed)
    grads = []
    for name in ("numpy", backend):
        hidden = [layer_spec(neuron, size, tau_m=5.0 + 5 * i) for i, size in enumerate(h)]
        model = make_model(c, hidden, k, feedback, loss.split("/")[0], name, "float32", seed,
                           signal="final" if loss.endswith("/final") else "online")
        active_weights(model)
        grads.append(model.per_sample_gradients(x, y))
    ref, got = grads
    for key in ref:
        scale = max(float(np.abs(ref[key]).max()), 1e-12)
        np.testing.assert_allclose(got[key], ref[key], rtol=1e-4, atol=1e-5 * scale,
                                   err_msg=f"{backend} vs numpy: {key}")
