"""Low-latency inference of trained e-prop models (spikeforge.train.inference)."""

from __future__ import annotations

import numpy as np
import pytest
from spikeforge import Fixed
from spikeforge.backends import available
from spikeforge.train import Adam, EProp, Input, Readout, Recurrent
from spikeforge.train.export import run_exported
from spikeforge.train.inference import InferenceModel

FAST = "cpu" if any(s.name == "cpu" and s.available for s in available()) else "numpy"


def task(n, t=20, c=12, k=3, seed=0):
    """k classes of Bernoulli spike patterns (rates per class and half of the sample);
    some counts are 2 and some inputs are real-valued, to exercise the valued relay."""
    rates = np.random.default_rng(7).random((k, 2, c)) ** 2 * 0.6
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    r = np.repeat(rates[y], -(-t // 2), axis=1)[:, :t]
    x = (rng.random((n, t, c)) < r) + (rng.random((n, t, c)) < r * 0.2)
    x = x.astype(np.float64)
    x[:, :, 0] *= 0.5
    return x, y


def trained(loss="sum", layers=None, **kw):
    """A small model trained for one epoch with a strong input so that the hidden
    layer is active up to the last steps (spikes near the end of a sample would leak
    into the next sample if the reset missed a spike queue)."""
    layers = layers or [Input(12), Recurrent(20, v_th=0.3), Readout(3)]
    m = EProp(layers, loss=loss, optimizer=Adam(lr=1e-2), backend=FAST, seed=3,
              verbose=False, **kw)
    x, y = task(32)
    m.fit((x, y), epochs=1, batch_size=16)
    return m


@pytest.fixture(scope="module")
def model():
    return trained()


def test_inference_equals_export_with_full_reset(backend, model):
    x, _ = task(6, seed=1)
    inf = model.inference(backend)
    net, _ = model.export()
    sim = net.build(backend)
    ref = np.concatenate([run_exported(sim, x[i:i + 1]) for i in range(len(x))])
    got = np.stack([inf.predict_proba(x[i]) for i in range(len(x))])
    np.testing.assert_array_equal(got, ref)
    np.testing.assert_allclose(got, model.predict(x), rtol=1e-4, atol=1e-6)


def test_samples_do_not_leak_into_the_next(model):
    x, _ = task(8, seed=2)
    inf = model.inference(FAST)
    sim = inf.sim
    forward = inf.predict_proba(x)
    backward = inf.predict_proba(x[::-1])[::-1]
    np.testing.assert_array_equal(forward, backward)
    inf.predict_proba(x[0])
    assert sim.get("hidden.n").max() == 20 + 2      # every step of the sample ran
    assert not np.any(sim.get("hidden.z"))         # no spike in the last step
    assert sim.step == 17 * 22                      # one run of T + 2 steps per sample


def test_the_last_step_guard_is_needed(monkeypatch, model):
    """Without the guard (n < T + 2), hidden neurons of this network do spike in a
    sample's last step, and that spike would reach the next sample."""
    import spikeforge.train.export as E

    guarded = E.hidden_inference
    monkeypatch.setattr(E, "hidden_inference", lambda n_steps: guarded(10 ** 6))
    inf = model.inference(FAST)
    x, _ = task(8, seed=2)
    late = 0
    for i in range(len(x)):
        inf.predict_proba(x[i])
        late += int(inf.sim.get("hidden.z").sum())
    assert late > 0, "test network too quiet to exercise the last-step guard"


def test_batched_inference_pads_and_matches_batch_one(model):
    x, y = task(5, seed=3)
    one = model.inference(FAST).predict_proba(x)
    two = model.inference(FAST, batch_size=2)
    np.testing.assert_allclose(two.predict_proba(x), one, rtol=1e-6, atol=1e-7)
    assert two.predict(x).shape == (5,)
    assert two.accuracy(x, y) == pytest.approx(np.mean(one.argmax(1) == y))
    assert two.classify(x[4]) == int(one[4].argmax())


def test_max_loss_and_two_layers_match_predict():
    layers = [Input(12), Recurrent(16, v_th=0.3), Recurrent(10, neuron="lif"), Readout(3)]
    m = trained(loss="max", layers=layers, feedback="random")
    x, _ = task(4, seed=4)
    np.testing.assert_allclose(m.inference(FAST).predict_proba(x), m.predict(x),
                               rtol=1e-4, atol=1e-6)


def test_fixed_point_inference_is_bit_exact_across_backends(backend, model):
    x, _ = task(3, seed=5)
    ref = model.inference("numpy", precision=Fixed(32, 16)).predict_proba(x)
    got = model.inference(backend, precision=Fixed(32, 16)).predict_proba(x)
    np.testing.assert_array_equal(got, ref)
    np.testing.assert_allclose(ref, model.predict(x), atol=1e-3)


def test_bad_input_is_rejected(model):
    inf = model.inference(FAST)
    x, _ = task(2)
    with pytest.raises(ValueError, match=r"T=20, C=12.*sample"):
        inf.predict_proba(x[:, :10])
    with pytest.raises(ValueError, match=r"T=20, C=12"):
        inf.predict_proba(x[:, :, :5])
    with pytest.raises(ValueError, match="one sample"):
        inf.classify(x)
    bad = x[0].copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError, match="finite"):
        inf.predict_proba(bad)
    with pytest.raises(ValueError, match="batch_size"):
        InferenceModel(model, FAST, batch_size=0)
    with pytest.raises(ValueError, match="y must have shape"):
        inf.accuracy(x, np.zeros(3))
    with pytest.raises(ValueError, match="steps must be a positive int"):
        model.export(steps=0)
    with pytest.raises(KeyError, match="populations"):
        InferenceModel(model, FAST).sim.network.population("nope", "test")


def test_latency_cli_parses_per_method_epochs():
    from spikeforge.tools.bench_eprop import source_epochs

    assert source_epochs(["3", "lstm=10"]) == {None: 3, "lstm": 10}
    with pytest.raises(SystemExit, match="METHOD=E"):
        source_epochs(["lstm=ten"])


@pytest.mark.skipif(FAST != "cpu", reason="cpu backend not available")
def test_cpu_inference_does_not_depend_on_thread_count(model):
    x, _ = task(3, seed=6)
    one = model.inference("cpu").predict_proba(x)
    two = model.inference("cpu", threads=2).predict_proba(x)
    assert model.inference("cpu").sim.threads == 1
    np.testing.assert_array_equal(two, one)


@pytest.mark.parametrize("loss,hidden", [("sum", 1), ("max", 1), ("sum", 2)])
def test_evaluate_runs_the_export_and_equals_the_training_network(loss, hidden):
    """evaluate/predict ('sum', 'max') run the exported network with the current weights;
    their probabilities equal the training network's bit for bit, also after more training."""
    layers = [Input(12), *[Recurrent(20 - 10 * k, v_th=0.3) for k in range(hidden)], Readout(3)]
    m = trained(loss, layers)
    x, y = task(10, seed=1)
    for _ in range(2):
        sim = m.simulation(4, x.shape[1])
        old = np.concatenate([m._run_batch(sim, x[a:a + 4], y[a:a + 4], train=False)["probs"]
                              for a in range(0, 10, 4)])
        got = m.predict(x, batch_size=4)
        np.testing.assert_array_equal(got, old)
        assert ("inference", 4, x.shape[1]) in m._sims
        metrics = m.evaluate((x, y), batch_size=4)
        assert metrics["accuracy"] == np.mean(old.argmax(1) == y)
        assert metrics["loss"] == pytest.approx(-np.mean(np.log(old[np.arange(10), y])), abs=0)
        m.fit(task(32, seed=5), epochs=1, batch_size=16)    # new weights reach the export


def test_set_weights_drops_a_recurrent_diagonal_for_every_path(model):
    """A diagonal given to set_weights is no self-connection in predict, the training
    network or weights() alike."""
    x, y = task(6, seed=4)
    weights = model.weights()
    bad = dict(weights, **{"rec.w": weights["rec.w"] + 2.0 * np.eye(len(weights["rec.w"]))})
    try:
        model.set_weights(bad)
        assert np.all(np.diag(model.weights()["rec.w"]) == 0)
        got = model.predict(x, batch_size=6)
        old = model._run_batch(model.simulation(6, x.shape[1]), x, y, train=False)["probs"]
        np.testing.assert_array_equal(got, old)
    finally:
        model.set_weights(weights)
    np.testing.assert_array_equal(model.predict(x, batch_size=6), got)
