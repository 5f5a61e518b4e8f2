"""e-prop training API: learning, resume, callbacks, export, validation."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from spikeforge import Fixed
from spikeforge.backends import available
from spikeforge.train import (
    SGD,
    Adam,
    Callback,
    Checkpoint,
    CosineDecay,
    EarlyStopping,
    EProp,
    ExponentialDecay,
    Input,
    Readout,
    Recurrent,
    SpikeRecorder,
    StepDecay,
    VarRecorder,
)
from spikeforge.train.export import run_exported

FAST = "cpu" if any(s.name == "cpu" and s.available for s in available()) else "numpy"


def task(n, t=40, c=16, k=3, seed=0):
    """k classes of Bernoulli spike patterns: per class, 4 segments of channel rates."""
    rates = np.random.default_rng(123).random((k, 4, c)) ** 3 * 0.4
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    r = np.repeat(rates[y], -(-t // 4), axis=1)[:, :t]
    return (rng.random((n, t, c)) < r).astype(np.uint8), y


def model(backend=FAST, **kw):
    args = {"loss": "sum", "optimizer": Adam(lr=5e-3), "backend": backend, "seed": 2,
            "verbose": False}
    args.update(kw)
    layers = args.pop("layers", [Input(16), Recurrent(24), Readout(3)])
    return EProp(layers, **args)


def test_training_reduces_loss_and_beats_chance():
    xtr, ytr = task(192)
    xte, yte = task(96, seed=1)
    m = model()
    before = m.evaluate((xte, yte))
    history = m.fit((xtr, ytr), epochs=3, batch_size=16, validation=(xte, yte))
    after = m.evaluate((xte, yte))
    assert history["loss"][-1] < 0.6 * history["loss"][0]
    assert after["loss"] < 0.6 * before["loss"]
    assert after["accuracy"] >= 0.8  # chance is 1/3
    assert history["val_accuracy"][-1] == pytest.approx(after["accuracy"])


LIF_LAYERS = [Input(16), Recurrent(24, neuron="lif"), Readout(3)]


@pytest.mark.parametrize("kw", [
    {"loss": "per_step", "optimizer": SGD(0.05, 0.9)},
    {"loss": "sum", "feedback": "random", "optimizer": Adam(1e-2)},
    {"loss": "max", "feedback": "adaptive", "optimizer": Adam(1e-2), "layers": LIF_LAYERS},
    {"loss": "sum", "learning_signal": "final", "optimizer": Adam(1e-2)},
])
def test_other_losses_feedback_and_sgd_learn(kw):
    xtr, ytr = task(160)
    m = model(**kw)
    history = m.fit((xtr, ytr), epochs=3, batch_size=16)
    assert history["loss"][-1] < 0.7 * history["loss"][0]
    assert history["accuracy"][-1] > 0.55  # chance is 1/3


class Interrupt(Callback):
    def __init__(self, epoch, batch):
        self.at = (epoch, batch)

    def on_batch_end(self, model, epoch, batch, logs):
        if (epoch, batch) == self.at:
            raise KeyboardInterrupt


@pytest.mark.parametrize("signal", ["online", "final"])
def test_resume_after_interrupt_equals_uninterrupted(tmp_path, signal):
    x, y = task(44, t=20)
    path = tmp_path / "ck.npz"
    reference = model(learning_signal=signal)
    full = reference.fit((x, y), epochs=2, batch_size=8)
    first = model(learning_signal=signal)
    with pytest.raises(KeyboardInterrupt):
        first.fit((x, y), epochs=2, batch_size=8, checkpoint=path,
                  callbacks=[Checkpoint(path, every=2), Interrupt(1, 3)])
    second = model(learning_signal=signal)
    resumed = second.fit((x, y), epochs=2, batch_size=8, checkpoint=path, resume=True)
    for key, value in reference.weights().items():
        np.testing.assert_array_equal(second.weights()[key], value, err_msg=key)
    assert resumed == full
    assert second.updates == reference.updates == 2 * 6
    assert not [p for p in tmp_path.iterdir() if p.name != "ck.npz"]  # no temp files left


def test_resume_inside_an_epoch_needs_the_same_batches(tmp_path):
    x, y = task(24, t=10)
    path = tmp_path / "ck.npz"
    with pytest.raises(KeyboardInterrupt):
        model().fit((x, y), epochs=1, batch_size=8, callbacks=[Checkpoint(path, every=1),
                                                               Interrupt(0, 0)])
    with pytest.raises(ValueError, match="same data and batch_size"):
        model().fit((x, y), epochs=1, batch_size=4, checkpoint=path, resume=True)


def test_resume_without_checkpoint_file_starts_fresh(tmp_path):
    x, y = task(16, t=10)
    m = model()
    m.fit((x, y), epochs=1, batch_size=8, checkpoint=tmp_path / "new.npz", resume=True)
    assert (tmp_path / "new.npz").exists() and m.updates == 2
    with pytest.raises(ValueError, match="checkpoint=<path>"):
        m.fit((x, y), epochs=1, resume=True)


def test_checkpoint_of_another_model_is_rejected(tmp_path):
    x, y = task(16, t=10)
    m = model()
    m.fit((x, y), epochs=1, batch_size=8, checkpoint=tmp_path / "a.npz")
    other = model(layers=[Input(16), Recurrent(20), Readout(3)])
    with pytest.raises(ValueError, match="different model"):
        other.fit((x, y), epochs=1, checkpoint=tmp_path / "a.npz", resume=True)
    final = model(learning_signal="final")  # same weights, another learning rule
    with pytest.raises(ValueError, match="different model"):
        final.fit((x, y), epochs=1, checkpoint=tmp_path / "a.npz", resume=True)


def test_default_learning_signal_keeps_the_checkpoint_spec_of_earlier_versions():
    """Checkpoints compare repr(spec); the default spec reads as it did before
    learning_signal existed (field by field, in declaration order), so they still load."""
    spec = model().spec
    assert "signal" not in repr(spec)
    shown = ", ".join(f"{f.name}={getattr(spec, f.name)!r}" for f in dataclasses.fields(spec)
                      if f.name != "signal")
    assert repr(spec) == f"Spec({shown})"
    assert "signal='final'" in repr(model(learning_signal="final").spec)


def test_early_stopping_and_recorders():
    x, y = task(24, t=12)
    stop = EarlyStopping(monitor="val_loss", patience=1, min_delta=10.0)
    spikes, traces = SpikeRecorder(max_batches=1), VarRecorder(["hidden.v", "out.y"])
    m = model(optimizer=Adam(lr=1e-6))
    history = m.fit((x, y), epochs=10, batch_size=8, validation=(x, y),
                    callbacks=[stop, spikes, traces])
    assert len(history["loss"]) == 2 and stop.stopped_epoch == 1
    assert set(spikes.spikes) == {(0, 0), (1, 0)}
    times, ids, batch = spikes.spikes[(0, 0)]
    assert len(times) > 0 and ids.max() < 24 and batch.max() < 8
    v = traces.traces[(0, 0)]["hidden.v"]
    assert v.shape == (12 + 2, 8, 24) and traces.traces[(0, 0)]["out.y"].shape == (14, 8, 3)
    with pytest.raises(KeyError, match="val_"):
        model().fit((x, y), epochs=1, callbacks=[EarlyStopping()])


def test_samples_are_independent_of_earlier_batches():
    """The reset group clears every per-sample state: a batch's gradients do not
    depend on what ran before (no state, no queued spike carries over)."""
    x, y = task(6, t=12)
    used = model()
    used.per_sample_gradients(x[:3], y[:3])
    after = used.per_sample_gradients(x[3:], y[3:])
    fresh = model().per_sample_gradients(x[3:], y[3:])
    for key in fresh:
        np.testing.assert_array_equal(after[key], fresh[key], err_msg=key)
    assert np.abs(fresh["rec.w"]).sum() > 0


@pytest.mark.skipif(FAST != "cpu", reason="needs the cpu backend")
def test_cpu_gradients_do_not_depend_on_thread_count():
    x, y = task(3, t=8)
    one = model(threads=1).per_sample_gradients(x, y)
    two = model(threads=2).per_sample_gradients(x, y)
    for key in one:
        np.testing.assert_array_equal(one[key], two[key], err_msg=key)


def test_rate_regularisation_lowers_firing_rates():
    x, y = task(64, t=20)
    rates = []
    for strength in (0.0, 50.0):
        m = model(reg_rate_hz=0.0, reg_strength=strength, optimizer=Adam(lr=2e-2))
        m.fit((x, y), epochs=2, batch_size=16)
        sim = m.simulation(16, 20)
        m._run_batch(sim, x[:16], y[:16], train=False)
        rates.append(float(np.mean(sim.get("hidden.zsum"))))
    assert rates[1] < 0.5 * rates[0]


def test_release_keeps_weights():
    x, y = task(16, t=8)
    m = model()
    m.fit((x, y), epochs=1, batch_size=8)
    before = m.predict(x)
    m.release()
    np.testing.assert_array_equal(m.predict(x), before)


def test_predict_does_not_depend_on_batch_padding():
    x, y = task(7, t=15)
    m = model()
    a = m.predict(x, batch_size=3)
    b = m.predict((x, y), batch_size=5)
    assert a.shape == (7, 3)
    np.testing.assert_allclose(a.sum(1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def test_export_runs_on_every_backend_and_matches_predict(backend):
    x, y = task(48, t=16)
    m = model(backend="numpy", precision="float64")
    m.fit((x, y), epochs=1, batch_size=16)
    expected = m.predict(x[:4])
    net, weights = m.export(batch_size=4)
    assert set(weights) == {"in_hid.w", "rec.w", "hid_out.w", "out.b"}
    assert np.all(np.diag(weights["rec.w"]) == 0)
    got = run_exported(net.build(backend), x[:4].astype(np.float32))
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)


def test_fixed_point_export_is_bit_exact_across_backends(backend):
    x, y = task(32, t=12)
    m = model()
    m.fit((x, y), epochs=1, batch_size=16)
    net, _ = m.export(batch_size=4, precision=Fixed(32, 16))
    ref = run_exported(net.build("numpy"), x[:4])
    got = run_exported(net.build(backend), x[:4])
    np.testing.assert_array_equal(got, ref)
    np.testing.assert_allclose(ref, m.predict(x[:4]), atol=1e-3)


def test_float_inputs_are_accepted_and_as_arrays_objects():
    class Data:
        def as_arrays(self):
            x, y = task(16, t=10)
            return x.astype(np.float32) * 0.5, y

    m = model()
    metrics = m.evaluate(Data())
    assert set(metrics) == {"loss", "accuracy"} and np.isfinite(metrics["loss"])


@pytest.mark.parametrize("bad, match", [
    (lambda: model(layers=[Recurrent(4), Readout(2)]), "layers must be"),
    (lambda: model(layers=[Input(2), Readout(2)]), "only Recurrent"),
    (lambda: model(loss="mse"), "loss must be"),
    (lambda: model(feedback="dfa"), "feedback must be"),
    (lambda: model(learning_signal="exact"), "learning_signal must be"),
    (lambda: model(loss="max", learning_signal="final"), "needs loss='sum'"),
    (lambda: model(precision="float16"), "floating point"),
    (lambda: Recurrent(4, neuron="izh"), "neuron must be"),
    (lambda: Recurrent(0), "positive int"),
    (lambda: Recurrent(4, n_adaptive=5), "n_adaptive"),
    (lambda: Adam(lr=-1), "lr must be"),
])
def test_bad_configuration_is_rejected(bad, match):
    with pytest.raises(ValueError, match=match):
        bad()


def test_two_recurrent_layers_train_and_export():
    x, y = task(160)
    layers = [Input(16), Recurrent(24), Recurrent(12, neuron="lif", tau_m=10.0), Readout(3)]
    m = model(layers=layers, feedback="random", optimizer=Adam(1e-2))
    history = m.fit((x, y), epochs=3, batch_size=16)
    assert history["loss"][-1] < 0.5 * history["loss"][0]
    assert history["accuracy"][-1] > 0.8
    assert {"ff1.w", "rec1.w", "hid1_out.w"} <= set(m.weights())
    net, _ = m.export(batch_size=4)
    np.testing.assert_allclose(run_exported(net.build(FAST), x[:4]), m.predict(x[:4]),
                               rtol=1e-5, atol=1e-6)


def test_bad_data_is_rejected():
    m = model()
    x, y = task(4, t=5)
    with pytest.raises(ValueError, match=r"shape \[N, T, 16\]"):
        m.evaluate((x[:, :, :3], y))
    with pytest.raises(ValueError, match=r"labels must be in \[0, 3\)"):
        m.evaluate((x, y + 3))
    with pytest.raises(ValueError, match="y must be int labels"):
        m.evaluate((x, y[:2]))
    with pytest.raises(TypeError, match="expected"):
        m.evaluate("data")
    with pytest.raises(ValueError, match="batch_size"):
        m.fit((x, y), batch_size=0)


@pytest.mark.parametrize("opt", [
    Adam(lr=1e-2, weight_decay=0.05, clip_value=2e-3),
    SGD(lr=0.5, momentum=0.9, weight_decay=0.05, clip_value=2e-3),
    Adam(lr=1e-2, clip_norm=5e-3, weight_decay=0.05),
    SGD(lr=0.5, clip_norm=5e-3, clip_value=1e-3),
    Adam(lr=1e-2)], ids=["adam", "sgd", "adam-norm", "sgd-norm-value", "adam-plain"])
def test_optimizer_steps_with_weight_decay_and_clipping(opt):
    """Two batches, against the formulas in spikeforge.train.optim: each update scales
    every summed gradient G by min(1, n / (|G| + 1e-6)) (|G| over all weights and the
    bias), then uses g = clip(G, -c, c) + lambda w (PyTorch's clip_grad_norm_,
    clip_grad_value_, then weight_decay); the bias is not decayed. Two updates, because
    Adam's first step depends only on the sign of g."""
    x, y = task(16)
    m = model(optimizer=opt, precision="float64")
    w = m.weights()
    m1 = {k: np.zeros_like(v) for k, v in w.items()}
    m2 = {k: np.zeros_like(v) for k, v in w.items()}
    c = opt.clip_value or np.inf
    clipped = scaled = 0
    for t, half in enumerate((slice(0, 8), slice(8, 16)), start=1):
        gsum = {k: v.sum(0) for k, v in m.per_sample_gradients(x[half], y[half]).items()}
        np.fill_diagonal(gsum["rec.w"], 0.0)  # masked self-connections
        norm = np.sqrt(sum(np.sum(g * g) for g in gsum.values()))
        factor = min(1.0, opt.clip_norm / (norm + 1e-6)) if opt.clip_norm else 1.0
        scaled += factor < 1.0
        gsum = {k: g * factor for k, g in gsum.items()}
        m.fit((x[half], y[half]), epochs=1, batch_size=8, shuffle=False)
        for key, g in gsum.items():
            clipped += np.count_nonzero(np.abs(g) > c)
            g = np.clip(g, -c, c) + (opt.weight_decay * w[key] if key != "out.b" else 0.0)
            if isinstance(opt, Adam):
                m1[key] = opt.beta1 * m1[key] + (1 - opt.beta1) * g
                m2[key] = opt.beta2 * m2[key] + (1 - opt.beta2) * g * g
                w[key] = w[key] - opt.step_size(t, 0) * m1[key] / (np.sqrt(m2[key]) + opt.eps)
            else:
                m1[key] = opt.momentum * m1[key] + g
                w[key] = w[key] - opt.lr * m1[key]
        got = m.weights()
        for key in w:
            np.testing.assert_allclose(got[key], w[key], rtol=1e-9, atol=1e-12,
                                       err_msg=f"{key} after update {t}")
    assert np.all(np.diag(w["rec.w"]) == 0)  # masked self-connections stay 0 under decay
    assert (clipped > 0) == (opt.clip_value is not None)  # the clips are active in this test
    assert (scaled == 2) == (opt.clip_norm is not None)


def test_regularisers_are_validated_and_omitted_from_the_default_repr():
    assert repr(Adam()) == ("Adam(lr=0.001, beta1=0.9, beta2=0.999, eps=1e-08, "
                            "schedule=ConstantLR())")  # as written into older checkpoints
    assert "weight_decay=0.01" in repr(SGD(weight_decay=0.01))
    for bad, match in ((dict(weight_decay=-1.0), "weight_decay must be"),
                       (dict(clip_value=0.0), "clip_value must be"),
                       (dict(clip_norm=-2.0), "clip_norm must be"),
                       (dict(clip_value=float("nan")), "clip_value must be")):
        for opt in (Adam, SGD):
            with pytest.raises(ValueError, match=match):
                opt(**bad)


def test_learning_rate_schedules():
    assert StepDecay(every=2, factor=0.5)(1.0, 0, 3) == 0.5
    assert ExponentialDecay(steps=10, rate=0.5)(1.0, 10, 0) == pytest.approx(0.5)
    cos = CosineDecay(total=10, lr_min=0.1)
    assert cos(1.0, 0, 0) == pytest.approx(1.0) and cos(1.0, 20, 0) == pytest.approx(0.1)
    adam = Adam(lr=1e-3)
    assert adam.step_size(1, 0) == pytest.approx(1e-3 * np.sqrt(1 - 0.999) / (1 - 0.9))
