"""Tests of spikeforge.datasets: binning/padding, audio encoder, FSDD splits and
cache, sequential image encoding, Fashion-MNIST and SHD loaders."""
from __future__ import annotations

import gzip
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra.numpy import arrays

from spikeforge.datasets import events as E
from spikeforge.datasets import fsdd, smnist, shd
from spikeforge.datasets.audio import AudioEncoder, erb_space, gammatone_filterbank

FSDD = Path(os.environ.get("SPIKEFORGE_FSDD", Path(__file__).resolve().parents[1].parent
                           / "shared" / "data" / "fsdd"))
needs_fsdd = pytest.mark.skipif(not (FSDD / "recordings").is_dir(),
                                reason=f"FSDD recordings not found at {FSDD}")
needs_fmnist = pytest.mark.skipif(
    not Path(smnist.DEBIAN_FASHION_MNIST, "t10k-labels-idx1-ubyte.gz").exists(),
    reason="Debian package dataset-fashion-mnist not installed")


# ---------------------------------------------------------------- events
def test_bin_events_exact():
    ev = E.make_events([0, 999, 1000, 2500, 2999, 3000, 7000], [0, 1, 1, 2, 2, 0, 1])
    fr = E.bin_events(ev, 3, dt_ms=1.0, n_steps=4)
    expect = np.array([[1, 1, 0], [0, 1, 0], [0, 0, 2], [1, 0, 0]], np.uint8)
    np.testing.assert_array_equal(fr, expect)     # t=7000 us lies beyond step 3: dropped
    assert E.bin_events(ev, 3, 1.0).shape == (8, 3)            # n_steps=None holds every event
    shifted = E.bin_events(ev, 3, 2.0, n_steps=2, t0_us=1000)  # steps [1000,3000), [3000,5000)
    np.testing.assert_array_equal(shifted, [[0, 1, 2], [1, 0, 0]])


def test_bin_events_errors_name_the_problem():
    ev = E.make_events([0] * 300, [0] * 300)
    with pytest.raises(ValueError, match="exceed uint8"):
        E.bin_events(ev, 1, 1.0)
    assert E.bin_events(ev, 1, 1.0, dtype=np.float32)[0, 0] == 300
    with pytest.raises(ValueError, match=r"channel index out of range \[0, 2\)"):
        E.bin_events(E.make_events([0], [5]), 2, 1.0)
    with pytest.raises(ValueError, match="fields t"):
        E.bin_events(np.zeros(3), 2, 1.0)


def test_pad_frames_exact():
    a, b = np.ones((3, 2), np.uint8), 2 * np.ones((5, 2), np.uint8)
    x, lengths = E.pad_frames([a, b])
    assert x.shape == (2, 5, 2) and lengths.tolist() == [3, 5]
    np.testing.assert_array_equal(x[0], np.r_[a, np.zeros((2, 2), np.uint8)])
    x4, l4 = E.pad_frames([a, b], n_steps=4)
    assert l4.tolist() == [3, 4] and (x4[1] == 2).all()
    with pytest.raises(ValueError, match="same C"):
        E.pad_frames([a, np.ones((3, 4))])


@settings(max_examples=40, deadline=None)
@given(arrays(np.uint8, st.tuples(st.integers(1, 12), st.integers(1, 5)),
              elements=st.integers(0, 4)),
       st.sampled_from([0.5, 1.0, 4.0]))
def test_frames_events_roundtrip(frames, dt_ms):
    ev = E.frames_to_events(frames, dt_ms)
    assert len(ev) == int(frames.sum())
    np.testing.assert_array_equal(E.bin_events(ev, frames.shape[1], dt_ms, frames.shape[0]),
                                  frames)


def _toy_dataset():
    rng = np.random.default_rng(3)
    evs = [E.make_events(np.sort(rng.integers(0, 9000 * (i + 1), 20)), rng.integers(0, 4, 20))
           for i in range(5)]
    return E.EventDataset(evs, [0, 1, 2, 1, 0], 4, meta={"k": np.arange(5)})


def test_event_dataset_arrays_and_batches_agree():
    ds = _toy_dataset()
    x, y = ds.as_arrays(dt_ms=2.0, n_steps=10)
    assert x.shape == (5, 10, 4) and x.dtype == np.uint8 and y.tolist() == [0, 1, 2, 1, 0]
    got = list(ds.batches(2, dt_ms=2.0, n_steps=10))
    assert [b[0].shape[0] for b in got] == [2, 2, 1]
    np.testing.assert_array_equal(np.concatenate([b[0] for b in got]), x)
    full, _ = ds.as_arrays(dt_ms=2.0)                    # pads to the longest sample
    lengths = np.concatenate([b[2] for b in ds.batches(5, dt_ms=2.0)])
    assert full.shape[1] == lengths.max() and full.sum() == 100
    assert (lengths <= full.shape[1]).all()
    x2, _ = ds.with_binning(2.0, 10).as_arrays()     # the no-argument form train accepts
    np.testing.assert_array_equal(x2, x)
    with pytest.raises(ValueError, match="dt_ms is required"):
        ds.as_arrays()
    sub = ds.subset([4, 0])
    assert sub.labels.tolist() == [0, 0] and sub.meta["k"].tolist() == [4, 0]
    with pytest.raises(ValueError, match="2 samples but 3 labels"):
        E.EventDataset(ds.events[:2], [0, 1, 2], 4)


# ---------------------------------------------------------------- audio
FS = 8000


def _tone(f, amp, seconds=0.5):
    t = np.arange(int(FS * seconds)) / FS
    return amp * np.sin(2 * np.pi * f * t)


def test_erb_space_and_unity_gain():
    fc = erb_space(80, 3600, 64)
    assert fc[0] == pytest.approx(80) and fc[-1] == pytest.approx(3600)
    assert (np.diff(fc) > 0).all() and np.diff(fc)[-1] > np.diff(fc)[0]   # wider at the top
    for f in (fc[10], fc[40]):
        g = gammatone_filterbank(np.cos(2 * np.pi * f * np.arange(4000) / FS), FS, [f])
        assert np.abs(g[2000:]).max() == pytest.approx(1.0, abs=2e-3)


def test_numpy_recursion_matches_scipy():
    pytest.importorskip("scipy")
    x = np.random.default_rng(0).normal(size=300)
    fc = erb_space(100, 3000, 8)
    np.testing.assert_allclose(gammatone_filterbank(x, FS, fc, use_scipy=True),
                               gammatone_filterbank(x, FS, fc, use_scipy=False), atol=1e-12)


@pytest.mark.parametrize("freq", [250.0, 1000.0, 3000.0])
def test_tone_excites_channels_near_its_frequency(freq):
    enc = AudioEncoder(n_channels=64)
    fc = enc.centres(FS)
    nearest = int(np.abs(fc - freq).argmin())
    counts = np.bincount(enc.encode(_tone(freq, 0.05), FS)["x"], minlength=64)
    assert abs(int(counts.argmax()) - nearest) <= 1
    assert counts[np.abs(np.arange(64) - nearest) > 4].sum() == 0
    loud = np.bincount(enc.encode(_tone(freq, 0.5), FS)["x"], minlength=64)  # rates saturate:
    centroid = (loud * np.arange(64)).sum() / loud.sum()                    # use the centroid
    assert abs(centroid - nearest) < 1.5
    assert loud[np.abs(np.arange(64) - nearest) > 12].max() < loud.max() / 4


def test_spike_counts_scale_with_loudness():
    enc = AudioEncoder(n_channels=64)
    totals = [len(enc.encode(_tone(700.0, a), FS)) for a in (0.02, 0.1, 0.5, 1.0)]
    assert all(b > a for a, b in zip(totals, totals[1:])), totals
    assert len(enc.encode(np.zeros(FS // 4), FS)) == 0


def test_encoder_events_and_range():
    enc = AudioEncoder(n_channels=700, compression="log")
    ev = enc.encode(_tone(440.0, 0.3, 0.1), FS)
    assert ev.dtype == E.EVENT_DTYPE and len(ev) > 0
    assert ev["x"].max() < 700 and (np.diff(ev["t"]) >= 0).all()
    assert (ev["t"] % 125 == 0).all()          # sample times of 8 kHz audio, in us
    isi = np.diff(ev["t"][ev["x"] == np.bincount(ev["x"]).argmax()])
    assert isi.min() > 2000                    # refractory 2 ms
    for bad, msg in [(dict(n_channels=32), "n_channels"), (dict(compression="sqrt"), "compression"),
                     (dict(gain=0.0), "gain")]:
        with pytest.raises(ValueError, match=msg):
            AudioEncoder(**bad)
    with pytest.raises(ValueError, match="Nyquist"):
        AudioEncoder(f_high=5000.0).centres(FS)


# ---------------------------------------------------------------- FSDD
@needs_fsdd
def test_fsdd_splits_are_disjoint_and_conventional():
    rec = fsdd.list_recordings(FSDD)
    assert len(rec["file"]) == 3000 and sorted(set(rec["speaker"])) == list(fsdd.SPEAKERS)
    tr, te = fsdd.conventional_split(rec)
    assert len(te) == 300 and len(tr) == 2700 and not set(tr) & set(te)
    assert set(rec["index"][te]) == set(range(5))
    files_tr = set(rec["file"][tr])
    assert not files_tr & set(rec["file"][te])
    for spk in fsdd.SPEAKERS:
        tr, te = fsdd.speaker_split(rec, spk)
        assert len(tr) + len(te) == 3000 and len(te) == 500
        assert set(rec["speaker"][te]) == {spk} and spk not in set(rec["speaker"][tr])
    with pytest.raises(ValueError, match="unknown speaker 'bob'"):
        fsdd.speaker_split(rec, "bob")


@needs_fsdd
def test_fsdd_encode_cache_and_split(tmp_path, monkeypatch):
    data = tmp_path / "fsdd" / "recordings"
    data.mkdir(parents=True)
    for name in ["0_george_0.wav", "0_george_7.wav", "1_theo_3.wav", "1_theo_9.wav",
                 "2_lucas_12.wav", "2_lucas_1.wav"]:
        shutil.copy(FSDD / "recordings" / name, data / name)
    ds = fsdd.load_fsdd(tmp_path / "fsdd", cache_dir=tmp_path / "cache", progress=False)
    assert len(ds) == 6 and ds.labels.tolist() == [0, 0, 1, 1, 2, 2]
    assert "CC BY-SA 4.0" in ds.attribution
    assert all(len(e) > 50 for e in ds.events)
    monkeypatch.setattr(fsdd, "_encode_all", lambda *a: pytest.fail("cache not used"))
    again = fsdd.load_fsdd(data, cache_dir=tmp_path / "cache", progress=False)
    for a, b in zip(ds.events, again.events):
        np.testing.assert_array_equal(a, b)
    train, test = fsdd.split(ds, "conventional")
    assert test.meta["index"].tolist() == [0, 3, 1] and len(train) == 3
    x, y = test.as_arrays(dt_ms=4.0, n_steps=250)
    assert x.shape == (3, 250, 64) and x.sum() > 0
    with pytest.raises(ValueError, match="speaker:<name>"):
        fsdd.split(ds, "random")


def test_fsdd_missing_path_is_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="recordings"):
        fsdd.load_fsdd(tmp_path)


# ---------------------------------------------------------------- sequential images
def test_threshold_crossing_exact():
    img = np.array([[0.0, 0.5, 0.2, 1.0]])                 # thresholds 0.2, 0.4, 0.6, 0.8
    x = smnist.threshold_crossing_encode(img, n_thresholds=4)
    expect = np.array([[0, 0, 0, 0], [1, 1, 0, 0], [0, 1, 0, 0], [0, 1, 1, 1]], np.uint8)
    np.testing.assert_array_equal(x[0], expect)            # 0.5->0.2 crosses 0.4 only (0.2 < 0.2 no)
    xs = smnist.threshold_crossing_encode(img, n_thresholds=4, split_polarity=True,
                                          steps_per_pixel=2, n_cue=1, cue_steps=3)
    assert xs.shape == (1, 11, 9)
    np.testing.assert_array_equal(xs[0, 0:8:2, 0:4], [[0] * 4, [1, 1, 0, 0], [0] * 4, [0, 1, 1, 1]])
    np.testing.assert_array_equal(xs[0, 0:8:2, 4:8], [[0] * 4, [0] * 4, [0, 1, 0, 0], [0] * 4])
    assert xs[0, 1:8:2].sum() == 0 and (xs[0, 8:, 8] == 1).all() and xs[0, 8:, :8].sum() == 0
    u8 = np.array([[[0, 128], [51, 255]]], np.uint8)
    np.testing.assert_array_equal(smnist.threshold_crossing_encode(u8),
                                  smnist.threshold_crossing_encode(u8 / 255.0))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        smnist.threshold_crossing_encode(np.array([[0.0, 2.0]]))


@settings(max_examples=30, deadline=None)
@given(arrays(np.uint8, st.tuples(st.integers(1, 3), st.integers(1, 20))))
def test_threshold_crossing_counts(images):
    x = smnist.threshold_crossing_encode(images, n_thresholds=80)
    g = images / 255.0
    prev = np.concatenate([np.zeros((g.shape[0], 1)), g[:, :-1]], axis=1)
    theta = np.arange(1, 81) / 81.0
    lo, hi = np.minimum(prev, g), np.maximum(prev, g)
    expect = ((lo[..., None] < theta) & (theta <= hi[..., None])).sum(-1)
    np.testing.assert_array_equal(x.sum(-1), expect)


def test_sequential_images_batches():
    rng = np.random.default_rng(0)
    s = smnist.SequentialImages(rng.integers(0, 256, (5, 4, 4), dtype=np.uint8), [0, 1, 2, 3, 4],
                                n_thresholds=10, n_cue=2, cue_steps=5)
    x, y = s.as_arrays()
    assert x.shape == (5, 21, 12)
    np.testing.assert_array_equal(np.concatenate([b[0] for b in s.batches(2)]), x)


def test_read_idx_roundtrip(tmp_path):
    imgs = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    raw = bytes([0, 0, 8, 3]) + b"".join(d.to_bytes(4, "big") for d in imgs.shape) + imgs.tobytes()
    (tmp_path / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(raw))
    labels = bytes([0, 0, 8, 1]) + (2).to_bytes(4, "big") + bytes([7, 3])
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(labels)
    got, lab = smnist.load_fashion_mnist(tmp_path, "train")
    np.testing.assert_array_equal(got, imgs)
    assert lab.tolist() == [7, 3]
    with pytest.raises(FileNotFoundError, match="t10k-images"):
        smnist.load_fashion_mnist(tmp_path, "test")


@needs_fmnist
def test_fashion_mnist_debian():
    imgs, labels = smnist.load_fashion_mnist(split="test")
    assert imgs.shape == (10000, 28, 28) and sorted(set(labels.tolist())) == list(range(10))
    x = smnist.threshold_crossing_encode(imgs[:2])
    assert x.shape == (2, 784, 80) and x.sum() > 0


# ---------------------------------------------------------------- SHD
def test_shd_without_tonic_is_clear(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "tonic", None)
    with pytest.raises(ImportError, match="pip install tonic"):
        shd.load_shd(tmp_path)
    with pytest.raises(ValueError, match="'train', 'valid' or 'test'"):
        shd.load_ssc(tmp_path, split="dev")


def test_shd_conversion_from_tonic_layout():
    raw = np.zeros(3, dtype=[("t", float), ("x", int), ("p", int)])
    raw["t"], raw["x"], raw["p"] = [10.4, 2000.0, 5000.6], [0, 699, 3], 1
    ev = shd._to_events(raw)
    assert ev.dtype == E.EVENT_DTYPE and ev["t"].tolist() == [10, 2000, 5001]
    fr = E.bin_events(ev, shd.N_CHANNELS, 1.0)
    assert fr.shape == (6, 700) and fr.sum() == 3


# ---------------------------------------------------------------- benchmark bookkeeping
def test_bench_eprop_resumes_and_tabulates(tmp_path, capsys):
    from spikeforge.tools import bench_eprop as B
    out = tmp_path / "r.json"
    rec = {"key": "throughput/eprop/T100/t1/n64", "kind": "throughput", "method": "eprop",
           "T": 100, "threads": 1, "samples_per_s": 2.0, "cpu_s_per_sample": 0.03,
           "peak_mb": 150.0, "base_mb": 30.0, "load_avg_1m": 8.0,
           "machine": {"cpu": "x", "cores": 2}}
    B.save_result(out, rec)
    B.save_result(out, {**rec, "key": "accuracy/eprop/conventional/T250/e3/t1",
                        "kind": "accuracy", "split": "conventional", "T": 250, "epochs": 3,
                        "test_accuracy": 0.8, "train_accuracy": 0.9, "train_cpu_s": 100.0})
    assert len(B.load_results(out)) == 2
    args = type("A", (), {"out": str(out), "torch_python": "/nonexistent", "job_timeout": 5})()
    assert B.run_job(args, {"key": rec["key"], "method": "bptt", "threads": 1}) is None  # skipped
    B.cmd_table(args)
    text = capsys.readouterr().out
    assert "| eprop | conventional | 250 (4 ms) | 3 | 1 | 0.800 |" in text
    assert "| eprop | 100 | 1 | 2 | 0.03 | 150 | 30 | 8.0 |" in text and "CC BY-SA 4.0" in text


def test_event_dataset_feeds_eprop_training():
    """The dataset objects satisfy spikeforge.train's contract (as_arrays() -> (x, y))."""
    train = pytest.importorskip("spikeforge.train")
    ds = _toy_dataset()
    model = train.EProp([train.Input(4), train.Recurrent(6, neuron="alif"), train.Readout(3)],
                        dt=2.0, backend="numpy", seed=2, verbose=False)
    hist = model.fit(ds.with_binning(2.0, 12), epochs=1, batch_size=5)
    assert len(hist["loss"]) == 1 and np.isfinite(hist["loss"][0])
    imgs = smnist.SequentialImages(np.random.default_rng(1).integers(0, 256, (3, 2, 2), np.uint8),
                                   [0, 1, 2], n_thresholds=4)
    assert 0.0 <= model.evaluate(ds.with_binning(2.0, 12))["accuracy"] <= 1.0
    assert model.predict(imgs.as_arrays()[0]).shape == (3, 3)   # [N, T=4 pixels, C=4]
    assert 0.0 <= model.evaluate(imgs)["accuracy"] <= 1.0
