#!/usr/bin/env python3
"""e-prop (spikeforge.train, cpu backend) vs BPTT (snnTorch) on spiking FSDD: resumable.

Task: Free Spoken Digit Dataset (CC BY-SA 4.0: Jackson et al., DOI 10.5281/zenodo.1342401)
encoded by ``spikeforge.datasets.audio.AudioEncoder`` (64 gammatone channels, one LIF each),
binned to ``1000 / T`` ms over the first second (T = 250: 4 ms bins), zero-padded.
Network: 64 inputs -> 256 ALIF (recurrent, no self-connections) -> 10 leaky readouts,
dt = bin width, tau_m = 20 ms, tau_a = 2000 ms, beta = 0.0174, v_th = 0.6, 5 ms refractory,
readout tau 20 ms, softmax cross-entropy, Adam (lr 1e-3), batch 32.

Subcommands (each job runs in its own child process; results are appended to
``--out`` (JSON list) and a job whose key is already there is skipped: rerun to resume):

  accuracy   --method eprop|bptt|lstm --split conventional speaker:george --epochs E
             test accuracy after E epochs (the LSTM job also times batch-1 inference;
             so does the e-prop job on the conventional split);
             ``--split speaker:S/val:next`` (or ``/val:<speaker>``): nested speaker-wise
             model selection (see ``select_epoch``), methods eprop and bptt alike;
             ``--reg on|off``: firing-rate regularisation other than the method's default
             (keys end in /reg-on or /reg-off); with both settings run, ``table`` also
             selects setting and epoch together by validation accuracy (``select_config``);
             ``--signal final``: e-prop with learning_signal='final' (the final softmax's
             error, the exact readout gradient of the 'sum' loss; keys end in /sig-final);
             ``table`` compares it with the default (online) e-prop and BPTT over seeds;
  throughput --method eprop bptt --T 100 500 1000 2000 --threads 1 2 [--signal final]
             training samples/s over ``--samples`` samples after one warm-up batch,
             CPU seconds per sample and peak RSS (ru_maxrss of the child);
  table      markdown tables of everything in ``--out``.

e-prop jobs run under this Python (spikeforge installed); BPTT/LSTM jobs under
``--torch-python`` (default /tmp/eprop-bench-venv/bin/python: ``pip install torch==2.13.0
snntorch``), which needs only numpy, torch and snntorch: data go through .npz files.
Threads: OMP_NUM_THREADS/MKL_NUM_THREADS in the child; torch.set_num_threads; EProp(threads=).

BPTT model (plain PyTorch autograd over the unrolled sequence, snnTorch's custom
surrogate for the spike nonlinearity; snnTorch has no adaptive-threshold neuron):
  I(t)   = W_in x(t) + W_rec z(t-1)
  v(t)   = alpha v(t-1) + I(t) - v_th z(t-1)            alpha = exp(-dt/tau_m)
  a(t)   = rho a(t-1) + z(t-1)                          rho = exp(-dt/tau_a)
  z(t)   = H(v(t) - v_th - beta a(t)), 0 while refractory
  dz/dv  = (gamma / v_th) max(0, 1 - |v - v_th - beta a| / v_th), gamma = 0.3
  y(t)   = kappa y(t-1) + W_out z(t) + b               kappa = exp(-dt/tau_out)
  loss "sum": cross-entropy of softmax(mean_t y(t)) (spikeforge.train's "sum": u = ysum / nst).
"""
from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
FSDD_ATTRIBUTION = ("Free Spoken Digit Dataset, Z. Jackson et al., "
                    "github.com/Jakobovski/free-spoken-digit-dataset, DOI 10.5281/zenodo.1342401, "
                    "CC BY-SA 4.0")
HP = dict(n_in=64, n_rec=256, n_out=10, tau_m=20.0, tau_a=2000.0, beta=0.0174, v_th=0.6,
          refractory_ms=5.0, tau_out=20.0, lr=1e-3, batch=32, gamma=0.3, seed=1)
# Firing-rate regularisation (spikeforge.train's default: on for e-prop; off for BPTT unless
# ``accuracy --reg on``): loss += strength/2 * mean_batch sum_j (rate_j - target)^2, rate_j
# = spikes per step of hidden neuron j, target = rate_hz * dt / 1000.
REG = dict(rate_hz=10.0, strength=0.1)
REG_DEFAULT = {"eprop": "on", "bptt": "off", "lstm": "off"}


def signal_suffix(method: str, signal: str) -> str:
    """Key suffix of a job's e-prop learning signal: "" for the default ('online') and
    for the other methods (the option does not apply to them), "/sig-final" for 'final'."""
    return "" if signal == "online" or method != "eprop" else f"/sig-{signal}"


def signal_entry(method: str, signal: str) -> dict:
    """``{"signal": ...}`` for an e-prop job spec (and its hp record), else {}."""
    return {"signal": signal} if method == "eprop" else {}


def add_signal_option(parser, help_text: str) -> None:
    parser.add_argument("--signal", choices=["online", "final"], default="online",
                        help=help_text)


def settings_suffix(method: str, reg: str, signal: str) -> str:
    """reg_suffix + signal_suffix; one non-default setting per job, so that each
    alternative is compared with the defaults alone (``config_selection``)."""
    reg_part, signal_part = reg_suffix(method, reg), signal_suffix(method, signal)
    if reg_part and signal_part:
        raise SystemExit(f"--reg {reg} with --signal {signal}: change one setting per run")
    return reg_part + signal_part


def reg_suffix(method: str, reg: str) -> str:
    """Key suffix of an accuracy job's regularisation: "" for the method's default
    (keys of earlier runs stay valid), else "/reg-on" or "/reg-off"."""
    if reg == "default" or reg == REG_DEFAULT[method]:
        return ""
    if method == "lstm":
        raise SystemExit("--reg: the LSTM has no spiking layer to regularise")
    return f"/reg-{reg}"


def log(*msg):
    print("[bench_eprop]", *msg, file=sys.stderr, flush=True)


def peak_mb() -> float:
    """Peak RSS of this process's address space (VmHWM; unlike ru_maxrss it does not
    inherit the parent's RSS at fork, since exec starts a new address space)."""
    try:
        with open("/proc/self/status") as f:
            return next(int(l.split()[1]) for l in f if l.startswith("VmHWM")) / 1024.0
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


# ---------------------------------------------------------------------------- data (parent)
def data_file(args, how: str, T: int, limit: int | None = None) -> Path:
    """Encode (cached) and bin FSDD for split ``how`` at T steps over 1 s -> .npz path."""
    tag = how.replace(":", "-")
    path = Path(args.workdir) / f"fsdd_{tag}_T{T}{'' if limit is None else f'_n{limit}'}.npz"
    if path.exists():
        return path
    from spikeforge.datasets import fsdd
    ds = fsdd.load_fsdd(args.fsdd, cache_dir=Path(args.workdir) / "cache", progress=True)
    train, test = fsdd.split(ds, how)
    if limit is not None:
        train = train.subset(np.random.default_rng(0).permutation(len(train))[:limit])
        test = test.subset(np.arange(min(limit, len(test))))
    (xtr, ytr), (xte, yte) = (d.as_arrays(1000.0 / T, T) for d in (train, test))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")     # concurrent runs: own temp file
    np.savez(tmp, xtr=xtr, ytr=ytr, xte=xte, yte=yte)
    os.replace(tmp, path)
    return path


def parse_nested(how: str) -> tuple[str, str] | None:
    """``"speaker:S/val:R"`` -> (S, R); any other split -> None."""
    if "/val:" not in how:
        return None
    test, _, rule = how.partition("/val:")
    if not test.startswith("speaker:") or not rule:
        raise SystemExit(f"--split {how!r}: expected speaker:<name>/val:next or /val:<name>")
    return test.split(":", 1)[1], rule


def validation_speaker(test: str, speakers, rule: str = "next") -> str:
    """The validation speaker V for held-out test speaker ``test``.

    Rule "next": the speaker after ``test`` in alphabetical order, cyclically (FSDD:
    george->jackson->lucas->nicolas->theo->yweweler->george); any other rule names V
    directly. V is never the test speaker and never depends on test accuracy."""
    names = sorted(set(speakers))
    if test not in names:
        raise ValueError(f"validation_speaker: unknown test speaker {test!r}; have {names}")
    if rule == "next":
        return names[(names.index(test) + 1) % len(names)]
    if rule not in names or rule == test:
        raise ValueError(f"validation_speaker: rule {rule!r} must be 'next' or a speaker "
                         f"other than the test speaker {test!r}; have {names}")
    return rule


def select_epoch(val_acc) -> int:
    """0-based index of the epoch with the highest validation accuracy (ties: earliest).

    The reported test accuracy is the one after this epoch; test accuracy is never read."""
    vals = [float(v) for v in val_acc]
    if not vals or any(math.isnan(v) for v in vals):
        raise ValueError(f"select_epoch: need >= 1 validation accuracy, none NaN; got {vals}")
    return vals.index(max(vals))


def nested_data_file(args, how: str, T: int) -> Path:
    """.npz with train (4 speakers), val (speaker V) and test (speaker S) for ``how``."""
    test, rule = parse_nested(how)
    path = Path(args.workdir) / f"fsdd_{test}_val-{rule}_T{T}.npz"
    if path.exists():
        return path
    from spikeforge.datasets import fsdd
    ds = fsdd.load_fsdd(args.fsdd, cache_dir=Path(args.workdir) / "cache", progress=True)
    spk = np.asarray(ds.meta["speaker"])
    val = validation_speaker(test, spk.tolist(), rule)
    parts = {"tr": np.flatnonzero((spk != test) & (spk != val)),
             "va": np.flatnonzero(spk == val), "te": np.flatnonzero(spk == test)}
    arrays = {}
    for name, idx in parts.items():
        arrays[f"x{name}"], arrays[f"y{name}"] = ds.subset(idx).as_arrays(1000.0 / T, T)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
    np.savez(tmp, val_speaker=val, **arrays)
    os.replace(tmp, path)
    return path


def load_npz(path):
    with np.load(path) as z:
        return (z["xtr"], z["ytr"]), (z["xte"], z["yte"])


# ---------------------------------------------------------------------------- e-prop (child)
def eprop_model(dt: float, threads: int):
    from spikeforge.train import EProp, Input, Recurrent, Readout, Adam
    return EProp([Input(HP["n_in"]),
                  Recurrent(HP["n_rec"], neuron="alif", tau_m=HP["tau_m"], tau_a=HP["tau_a"],
                            beta=HP["beta"], v_th=HP["v_th"], refractory_ms=HP["refractory_ms"]),
                  Readout(HP["n_out"], tau=HP["tau_out"])],
                 dt=dt, loss="sum", feedback="symmetric", optimizer=Adam(lr=HP["lr"]),
                 backend="cpu", seed=HP["seed"], threads=threads, reg_rate_hz=REG["rate_hz"],
                 reg_strength=REG["strength"] if HP.get("reg", "on") == "on" else 0.0,
                 learning_signal=HP.get("signal", "online"))


def time_calls(fn, x, repeats: int, name: str) -> dict:
    """Median wall and CPU (process_time) milliseconds of ``fn(x[i:i+1])`` over repeats."""
    fn(x[:1])                                                   # warm-up
    wall, cpu = [], []
    for i in range(repeats):
        xb = x[i % len(x):i % len(x) + 1]
        t0, c0 = time.perf_counter(), time.process_time()
        fn(xb)
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - t0)
    return {f"{name}_ms": 1e3 * float(np.median(wall)),
            f"{name}_cpu_ms": 1e3 * float(np.median(cpu)), f"{name}_repeats": repeats}


def eprop_latency(model, x, repeats: int, y=None) -> dict:
    """Batch-1 latency on the cpu backend at 1 thread, per sample.

    ``latency``: ``model.inference()`` (spikeforge.train.inference.InferenceModel: the
    exported network without recordings; custom-update reset + set input + run T+2
    steps in one call + softmax), its phases through the Simulation API
    (``phase_*``), the old path ``run_exported`` (``sim.reset()``, spike recording on:
    ``latency_export``) and ``model.predict(batch_size=1)`` (the training network)."""
    from spikeforge.train.export import run_exported
    inf = model.inference("cpu", steps=x.shape[1], threads=1)
    net, _ = model.export(steps=x.shape[1], batch_size=1)
    sim = net.build("cpu", threads=1)
    k = min(20, len(x))
    old = np.concatenate([run_exported(sim, x[i:i + 1]) for i in range(k)])
    out = {"inference_vs_export_max_abs_diff": float(np.abs(inf.predict_proba(x[:k]) - old).max()),
           "export_agrees_with_predict": int(old[0].argmax() ==
                                             model.predict(x[:1], batch_size=1).argmax()),
           **time_calls(lambda xb: inf.predict_proba(xb[0]), x, repeats, "latency"),
           **inference_phases(inf, x, repeats),
           **time_calls(lambda xb: run_exported(sim, xb), x, repeats, "latency_export"),
           **time_calls(lambda xb: model.predict(xb, batch_size=1), x, min(repeats, 50),
                        "latency_predict")}
    if y is not None:
        out["inference_test_accuracy"] = inf.accuracy(x, y)
    return out


def inference_phases(inf, x, repeats: int) -> dict:
    """Median CPU-ms of each phase of ``InferenceModel`` (Simulation API calls)."""
    from spikeforge.train.export import _softmax
    sim, steps = inf.sim, inf.steps + 2
    phases = {"reset": lambda i: sim.custom_update("reset"),
              "set_input": lambda i: sim.set("sample.x", x[i % len(x)].reshape(1, -1)),
              "run": lambda i: sim.run(steps=steps, progress=False),
              "read_softmax": lambda i: _softmax(sim.get("out.ysum") / sim.get("out.nst"))}
    cpu = {name: [] for name in phases}
    for i in range(repeats):
        for name, fn in phases.items():            # in order: a real sample each time
            c0 = time.process_time()
            fn(i)
            cpu[name].append(time.process_time() - c0)
    return {f"phase_{k}_cpu_ms": 1e3 * float(np.median(v)) for k, v in cpu.items()}


def job_eprop_accuracy(spec) -> dict:
    (xtr, ytr), (xte, yte) = load_npz(spec["data"])
    model = eprop_model(1000.0 / spec["T"], spec["threads"])
    from spikeforge.train import Checkpoint
    ckpt = Path(spec["data"]).with_name(spec["key"].replace("/", "_") + ".ckpt")
    resumed = ckpt.exists()                     # a killed job continues where it stopped
    t0, c0 = time.perf_counter(), cpu_s()
    hist = model.fit((xtr, ytr), epochs=spec["epochs"], batch_size=HP["batch"],
                     callbacks=[Checkpoint(ckpt, every=10)], checkpoint=str(ckpt), resume=True)
    out = {"train_s": time.perf_counter() - t0, "train_cpu_s": cpu_s() - c0,
           "resumed_from_checkpoint": resumed, "history": _jsonable(hist)}
    out.update({f"test_{k}": float(v) for k, v in model.evaluate((xte, yte)).items()})
    out["train_accuracy"] = float(model.evaluate((xtr[:500], ytr[:500]))["accuracy"])
    np.savez(weights_file(spec, ".npz"), **model.weights())
    if spec.get("latency"):
        out.update(eprop_latency(model, xte, spec["latency"], yte))
    return out


def job_eprop_throughput(spec) -> dict:
    (xtr, ytr), _ = load_npz(spec["data"])
    base = peak_mb()
    model = eprop_model(1000.0 / spec["T"], spec["threads"])
    model.fit((xtr[:HP["batch"]], ytr[:HP["batch"]]), epochs=1, batch_size=HP["batch"])
    n = spec["samples"]
    t0, c0 = time.perf_counter(), cpu_s()
    model.fit((xtr[:n], ytr[:n]), epochs=1, batch_size=HP["batch"])
    wall, cpu = time.perf_counter() - t0, cpu_s() - c0
    return {"samples": n, "samples_per_s": n / wall, "cpu_s_per_sample": cpu / n,
            "wall_s": wall, "peak_mb": peak_mb(), "base_mb": base}


def _jsonable(obj):
    try:
        return json.loads(json.dumps(obj, default=lambda o: getattr(o, "__dict__", str(o))))
    except (TypeError, ValueError):
        return str(obj)


# ---------------------------------------------------------------------------- torch (child)
def torch_models():
    """ALIF-RSNN (BPTT) and LSTM classifiers; imported only in the torch venv."""
    import torch
    from torch import nn
    from snntorch import surrogate

    def psi(inp, grad_input, out):                  # inp = (v - A) / v_th
        return grad_input * HP["gamma"] * torch.clamp(1.0 - inp.abs(), min=0.0)

    spike_fn = surrogate.custom_surrogate(psi)

    class ALIFNet(nn.Module):
        def __init__(self, dt):
            super().__init__()
            g = torch.Generator().manual_seed(HP["seed"])
            n_in, n_rec, n_out = HP["n_in"], HP["n_rec"], HP["n_out"]
            self.w_in = nn.Parameter(torch.randn(n_in, n_rec, generator=g) / math.sqrt(n_in))
            self.w_rec = nn.Parameter(torch.randn(n_rec, n_rec, generator=g) / math.sqrt(n_rec))
            self.w_out = nn.Parameter(torch.randn(n_rec, n_out, generator=g) / math.sqrt(n_rec))
            self.b_out = nn.Parameter(torch.zeros(n_out))
            self.register_buffer("mask", 1.0 - torch.eye(n_rec))
            self.alpha, self.rho = math.exp(-dt / HP["tau_m"]), math.exp(-dt / HP["tau_a"])
            self.kappa = math.exp(-dt / HP["tau_out"])
            self.ref_steps = int(round(HP["refractory_ms"] / dt))
            self.reg_target = REG["rate_hz"] * dt / 1000.0  # spikes per step
            self.reg_strength = REG["strength"] if HP.get("reg") == "on" else 0.0
            self.rate = None                        # [B, n_rec] spikes per step, last forward

        def penalty(self):
            """strength/2 * mean over the batch of sum_j (rate_j - target)^2."""
            return 0.5 * self.reg_strength * ((self.rate - self.reg_target) ** 2).sum(1).mean()

        def forward(self, x):                       # x [B, T, C] float -> logits [B, out]
            b, steps, _ = x.shape
            n = HP["n_rec"]
            v, a, z = (x.new_zeros(b, n) for _ in range(3))
            ref = torch.zeros(b, n, dtype=torch.int32)
            y, ysum = x.new_zeros(b, HP["n_out"]), x.new_zeros(b, HP["n_out"])
            zsum = x.new_zeros(b, n) if self.reg_strength else None
            # unbind, not i_in[:, t]: the backward of each slice would allocate a full
            # [B, T, H] gradient, making BPTT O(T^2) (it did in a first version of this script)
            w_rec, i_in = self.w_rec * self.mask, (x @ self.w_in).unbind(1)
            for t in range(steps):
                v = self.alpha * v + i_in[t] + z @ w_rec - HP["v_th"] * z
                a = self.rho * a + z
                thr = HP["v_th"] + HP["beta"] * a
                z = spike_fn((v - thr) / HP["v_th"]) * (ref == 0)
                ref = torch.where(z.detach() > 0, self.ref_steps, (ref - 1).clamp(min=0))
                y = self.kappa * y + z @ self.w_out + self.b_out
                ysum = ysum + y
                if zsum is not None:                # only with the regulariser
                    zsum = zsum + z
            self.rate = None if zsum is None else zsum / steps
            return ysum / steps

    class LSTMNet(nn.Module):
        def __init__(self, hidden=128):
            super().__init__()
            torch.manual_seed(HP["seed"])
            self.lstm = nn.LSTM(HP["n_in"], hidden, batch_first=True)
            self.out = nn.Linear(hidden, HP["n_out"])

        def forward(self, x):
            h, _ = self.lstm(x)
            return self.out(h.mean(dim=1))

    return ALIFNet, LSTMNet


def torch_setup(threads: int):
    import torch
    torch.set_num_threads(threads)
    return torch


def torch_train(torch, model, x, y, epochs, lr, seed=1, on_epoch=None):
    """Adam over ``epochs`` shuffled passes; ``on_epoch(e, mean_loss)`` after each (it must
    not touch the RNG or the optimiser: training is the same with or without it)."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    rng = np.random.default_rng(seed)
    losses = []
    for epoch in range(epochs):
        order, total = rng.permutation(len(x)), 0.0
        for s in range(0, len(x), HP["batch"]):
            idx = order[s:s + HP["batch"]]
            xb = torch.from_numpy(x[idx].astype(np.float32))
            loss = torch.nn.functional.cross_entropy(model(xb), torch.from_numpy(y[idx]))
            if getattr(model, "reg_strength", 0.0):
                loss = loss + model.penalty()
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        losses.append(total / len(x))
        if on_epoch is not None:
            on_epoch(epoch, losses[-1])
    return losses


def torch_accuracy(torch, model, x, y) -> float:
    with torch.no_grad():
        pred = [model(torch.from_numpy(x[s:s + 256].astype(np.float32))).argmax(1).numpy()
                for s in range(0, len(x), 256)]
    return float((np.concatenate(pred) == y).mean())


def torch_latency(torch, model, x, repeats: int) -> dict:
    torch.set_num_threads(1)
    with torch.no_grad():
        return time_calls(lambda xb: model(torch.from_numpy(xb.astype(np.float32))), x,
                          repeats, "latency")


def job_torch_accuracy(spec) -> dict:
    torch = torch_setup(spec["threads"])
    (xtr, ytr), (xte, yte) = load_npz(spec["data"])
    alif, lstm = torch_models()
    model = alif(1000.0 / spec["T"]) if spec["method"] == "bptt" else lstm()
    lr = HP["lr"] if spec["method"] == "bptt" else 3e-3
    t0, c0 = time.perf_counter(), cpu_s()
    losses = torch_train(torch, model, xtr, ytr, spec["epochs"], lr, seed=HP["seed"])
    out = {"train_s": time.perf_counter() - t0, "train_cpu_s": cpu_s() - c0,
           "history": {"loss": losses}, "test_accuracy": torch_accuracy(torch, model, xte, yte),
           "train_accuracy": torch_accuracy(torch, model, xtr[:500], ytr[:500])}
    torch.save(model.state_dict(), weights_file(spec, ".pt"))
    if spec.get("latency"):
        out.update(torch_latency(torch, model, xte, spec["latency"]))
    return out


def weights_file(spec, suffix: str) -> Path:
    """Where an accuracy job leaves its trained weights (read by latency jobs)."""
    return Path(spec["data"]).with_name(spec["key"].replace("/", "_") + "_weights" + suffix)


def load_nested(path) -> dict:
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def summarize_selection(curves: list, val_speaker: str) -> dict:
    """Per-epoch curves -> the selected epoch (best validation accuracy, ties earliest)
    and the test accuracy there; the last epoch's test accuracy is kept for comparison."""
    i = select_epoch([c["val_accuracy"] for c in curves])
    return {"val_speaker": val_speaker, "curves": curves, "selected_epoch": i + 1,
            "val_accuracy": curves[i]["val_accuracy"], "test_accuracy": curves[i]["test_accuracy"],
            "last_epoch_test_accuracy": curves[-1]["test_accuracy"]}


def job_eprop_select(spec) -> dict:
    """Nested selection, e-prop: fit epoch by epoch (resuming the checkpoint, so the run
    equals one uninterrupted fit), evaluating validation and test after each epoch."""
    d = load_nested(spec["data"])
    model = eprop_model(1000.0 / spec["T"], spec["threads"])
    from spikeforge.train import Checkpoint
    ckpt = Path(spec["data"]).with_name(spec["key"].replace("/", "_") + ".ckpt")
    side = ckpt.with_suffix(".curves.json")         # per-epoch results survive a kill
    curves = json.loads(side.read_text()) if side.exists() else []
    resumed = ckpt.exists()
    t0, c0 = time.perf_counter(), cpu_s()
    for k in range(len(curves) + 1, spec["epochs"] + 1):
        hist = model.fit((d["xtr"], d["ytr"]), epochs=k, batch_size=HP["batch"],
                         callbacks=[Checkpoint(ckpt, every=10)], checkpoint=str(ckpt),
                         resume=True)
        val, test = model.evaluate((d["xva"], d["yva"])), model.evaluate((d["xte"], d["yte"]))
        curves.append({"epoch": k, "train_loss": float(hist["loss"][k - 1]),
                       "train_accuracy": float(hist["accuracy"][k - 1]),
                       "val_loss": val["loss"], "val_accuracy": val["accuracy"],
                       "test_loss": test["loss"], "test_accuracy": test["accuracy"]})
        side.write_text(json.dumps(curves))
        np.savez(weights_file(spec, f"_e{k}.npz"), **model.weights())
        log(spec["key"], curves[-1])
    return {"train_s": time.perf_counter() - t0, "train_cpu_s": cpu_s() - c0,
            "resumed_from_checkpoint": resumed,
            **summarize_selection(curves, str(d["val_speaker"]))}


def job_torch_select(spec) -> dict:
    """Nested selection, BPTT/LSTM: the same training as job_torch_accuracy, validation
    and test accuracy measured after every epoch (no_grad; RNG and optimiser untouched)."""
    torch = torch_setup(spec["threads"])
    d = load_nested(spec["data"])
    alif, lstm = torch_models()
    model = alif(1000.0 / spec["T"]) if spec["method"] == "bptt" else lstm()
    lr = HP["lr"] if spec["method"] == "bptt" else 3e-3
    curves = []

    def on_epoch(epoch, loss):
        curves.append({"epoch": epoch + 1, "train_loss": loss,
                       "val_accuracy": torch_accuracy(torch, model, d["xva"], d["yva"]),
                       "test_accuracy": torch_accuracy(torch, model, d["xte"], d["yte"])})
        torch.save(model.state_dict(), weights_file(spec, f"_e{epoch + 1}.pt"))
        log(spec["key"], curves[-1])

    t0, c0 = time.perf_counter(), cpu_s()
    torch_train(torch, model, d["xtr"], d["ytr"], spec["epochs"], lr, seed=HP["seed"],
                on_epoch=on_epoch)
    return {"train_s": time.perf_counter() - t0, "train_cpu_s": cpu_s() - c0,
            "torch": torch.__version__, **summarize_selection(curves, str(d["val_speaker"]))}


def job_latency(spec) -> dict:
    """Batch-1 latency of a model trained by the accuracy job ``spec['source']``."""
    (_, _), (xte, yte) = load_npz(spec["data"])
    src = {"key": spec["source"], "data": spec["data"]}
    if spec["method"] == "eprop":
        model = eprop_model(1000.0 / spec["T"], 1)
        with np.load(weights_file(src, ".npz")) as z:
            model.set_weights({k: z[k] for k in z.files})
        acc = float(model.evaluate((xte, yte))["accuracy"])
        return {"test_accuracy": acc, **eprop_latency(model, xte, spec["repeats"], yte)}
    torch = torch_setup(1)
    alif, lstm = torch_models()
    model = alif(1000.0 / spec["T"]) if spec["method"] == "bptt" else lstm()
    model.load_state_dict(torch.load(weights_file(src, ".pt")))
    model.eval()
    return {"test_accuracy": torch_accuracy(torch, model, xte, yte),
            **torch_latency(torch, model, xte, spec["repeats"])}


def job_bptt_throughput(spec) -> dict:
    torch = torch_setup(spec["threads"])
    (xtr, ytr), _ = load_npz(spec["data"])
    base = peak_mb()
    model = torch_models()[0](1000.0 / spec["T"])
    torch_train(torch, model, xtr[:HP["batch"]], ytr[:HP["batch"]], 1, HP["lr"])
    n = spec["samples"]
    t0, c0 = time.perf_counter(), cpu_s()
    torch_train(torch, model, xtr[:n], ytr[:n], 1, HP["lr"])
    wall, cpu = time.perf_counter() - t0, cpu_s() - c0
    return {"samples": n, "samples_per_s": n / wall, "cpu_s_per_sample": cpu / n,
            "wall_s": wall, "peak_mb": peak_mb(), "base_mb": base,
            "torch": torch.__version__}


JOBS = {("accuracy", "eprop"): job_eprop_accuracy, ("accuracy", "bptt"): job_torch_accuracy,
        ("accuracy", "lstm"): job_torch_accuracy, ("throughput", "eprop"): job_eprop_throughput,
        ("throughput", "bptt"): job_bptt_throughput, ("latency", "eprop"): job_latency,
        ("latency", "lstm"): job_latency, ("latency", "bptt"): job_latency,
        ("select", "eprop"): job_eprop_select, ("select", "bptt"): job_torch_select,
        ("select", "lstm"): job_torch_select}


def child_main(spec_json: str):
    spec = json.loads(spec_json)
    HP["seed"] = spec.get("seed", HP["seed"])      # weight init and sample order, all methods
    HP["reg"] = spec.get("reg", REG_DEFAULT[spec["method"]])
    HP["signal"] = spec.get("signal", "online")
    out = JOBS[(spec["kind"], spec["method"])](spec)
    print("RESULT " + json.dumps(out), flush=True)


# ---------------------------------------------------------------------------- parent
def machine() -> dict:
    model = ""
    try:
        model = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo")
                     if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"cpu": model, "cores": os.cpu_count(), "python": platform.python_version(),
            "host": platform.node()}


def load_results(path: Path) -> list:
    return json.loads(path.read_text()) if path.exists() else []


def save_result(path: Path, rec: dict):
    """Append ``rec`` atomically (a lock file serialises concurrent benchmark runs)."""
    import fcntl
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        results = load_results(path) + [rec]
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(results, indent=1))
        os.replace(tmp, path)


def run_job(args, spec: dict) -> dict | None:
    """Run one job in a child process unless its key is in the results already."""
    out = Path(args.out)
    if any(r["key"] == spec["key"] for r in load_results(out)):
        log("skip (done):", spec["key"])
        return None
    python = sys.executable if spec["method"] == "eprop" else args.torch_python
    env = dict(os.environ, OMP_NUM_THREADS=str(spec["threads"]),
               MKL_NUM_THREADS=str(spec["threads"]), PYTHONUNBUFFERED="1")
    log("run:", spec["key"])
    t0 = time.time()
    proc = subprocess.run([python, str(Path(__file__).resolve()), "child", json.dumps(spec)],
                          env=env, capture_output=True, text=True, timeout=args.job_timeout)
    line = next((l for l in proc.stdout.splitlines() if l.startswith("RESULT ")), None)
    if proc.returncode != 0 or line is None:
        log(f"FAILED {spec['key']} (rc {proc.returncode}):\n{proc.stderr[-3000:]}")
        return None
    rec = {**spec, **json.loads(line[7:]), "job_wall_s": time.time() - t0,
           "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
           "load_avg_1m": os.getloadavg()[0], "machine": machine(),
           "command": " ".join(sys.argv), "dataset": FSDD_ATTRIBUTION}
    save_result(out, rec)
    log("done:", spec["key"], {k: rec.get(k) for k in ("test_accuracy", "samples_per_s",
                                                      "peak_mb", "latency_ms")})
    return rec


def cmd_accuracy(args):
    for method in args.method:       # refuse --reg on lstm, --reg with --signal, before any job
        settings_suffix(method, args.reg, args.signal)
    for how in args.split:
        nested = parse_nested(how) is not None
        data = str((nested_data_file if nested else data_file)(args, how, args.T))
        for method in args.method:
            latency = args.latency if (method == "lstm" or how == "conventional") else 0
            for seed in args.seed:
                key = (f"accuracy/{method}/{how}/T{args.T}/e{args.epochs}/t{args.threads}"
                       + ("" if seed == 1 else f"/s{seed}")
                       + settings_suffix(method, args.reg, args.signal))
                kind = "select" if nested else "accuracy"
                reg = REG_DEFAULT[method] if args.reg == "default" else args.reg
                extra = signal_entry(method, args.signal)
                run_job(args, {"key": key, "kind": kind, "method": method, "split": how,
                               "T": args.T, "epochs": args.epochs, "threads": args.threads,
                               "data": data, "latency": latency, "seed": seed, "reg": reg,
                               **extra, "hp": {**HP, "seed": seed, **extra,
                                               "reg": {**REG, "on": reg == "on"}}})


def cmd_throughput(args):
    for T in args.T:
        data = str(data_file(args, "conventional", T, limit=max(args.samples, HP["batch"])))
        for threads in args.threads:
            for method in args.method:
                key = (f"throughput/{method}/T{T}/t{threads}/n{args.samples}"
                       + signal_suffix(method, args.signal))
                extra = signal_entry(method, args.signal)
                run_job(args, {"key": key, "kind": "throughput", "method": method, "T": T,
                               "threads": threads, "samples": args.samples, "data": data,
                               **extra, "hp": {**HP, **extra}})


def source_epochs(items: list[str]) -> dict:
    """``["3", "lstm=10"]`` -> {None: 3, "lstm": 10} (None: every other method)."""
    out = {}
    for item in items:
        method, _, value = item.rpartition("=")
        try:
            out[method or None] = int(value)
        except ValueError:
            raise SystemExit(f"--epochs: expected E or METHOD=E, got {item!r}") from None
    return out


def cmd_latency(args):
    data = str(data_file(args, "conventional", args.T))
    epochs = source_epochs(args.epochs)
    for method in args.method:
        e = epochs.get(method, epochs.get(None, 1))
        sig = signal_suffix(method, args.signal)      # the e-prop model trained with it
        source = f"accuracy/{method}/conventional/T{args.T}/e{e}/t1{sig}"
        key = f"latency/{method}/conventional/T{args.T}/e{e}/r{args.repeats}{sig}{args.tag}"
        run_job(args, {"key": key, "kind": "latency", "method": method, "T": args.T,
                       "epochs": e, "threads": 1, "source": source, "data": data,
                       "repeats": args.repeats, "hp": HP})


def _fmt(v, spec="{:.3g}"):
    return "-" if v is None else spec.format(v)


def percent(fraction: float) -> str:
    return f"{100 * fraction:.1f}"


def seed_summary(rows: list) -> dict | None:
    """Nested selection over several seeds: test accuracy at the selected epoch, per fold
    averaged over seeds, and per seed averaged over the folds that both methods finished
    for every seed. The gap's standard error is sd(per-seed gaps) / sqrt(seeds): the folds
    are all the speakers, so the seed (weight init and sample order) is the noise left."""
    acc = {(r["split"], r["method"], r.get("seed", 1)): r["test_accuracy"] for r in rows}
    seeds = sorted({s for (_, _, s) in acc})
    folds = sorted({f for (f, _, _) in acc
                    if all((f, m, s) in acc for m in ("eprop", "bptt") for s in seeds)})
    if len(seeds) < 2 or not folds:
        return None
    def mean(method, fs, ss):
        return float(np.mean([acc[(f, method, s)] for f in fs for s in ss]))

    per_seed = {s: {m: mean(m, folds, [s]) for m in ("eprop", "bptt")} for s in seeds}
    gaps = [v["eprop"] - v["bptt"] for v in per_seed.values()]
    return {"seeds": seeds, "folds": folds,
            "per_fold": {f: {m: mean(m, [f], seeds) for m in ("eprop", "bptt")} for f in folds},
            "per_seed": per_seed, "eprop": mean("eprop", folds, seeds),
            "bptt": mean("bptt", folds, seeds), "gap": float(np.mean(gaps)),
            "gap_se": float(np.std(gaps, ddof=1) / math.sqrt(len(gaps)))}


def print_seed_summary(rows: list, label: str = "e-prop", peer: str = "BPTT"):
    summary = seed_summary(rows)
    if summary is None:
        return
    seeds = summary["seeds"]
    print(f"\n| test speaker | {label} test (mean of seeds {', '.join(map(str, seeds))}) | "
          f"{peer} test | difference |\n|---|---|---|---|")
    for f, v in summary["per_fold"].items():
        print(f"| {parse_nested(f)[0]} | {percent(v['eprop'])} | {percent(v['bptt'])} | "
              f"{100 * (v['eprop'] - v['bptt']):+.1f} |")
    for s, v in summary["per_seed"].items():
        print(f"| mean over folds, seed {s} | {percent(v['eprop'])} | {percent(v['bptt'])} | "
              f"{100 * (v['eprop'] - v['bptt']):+.1f} |")
    print(f"| **mean ({len(summary['folds'])} folds x {len(seeds)} seeds)** | "
          f"**{percent(summary['eprop'])}** | **{percent(summary['bptt'])}** | "
          f"**{100 * summary['gap']:+.1f} +- {100 * summary['gap_se']:.1f}** (s.e. over seeds) |")


SETTING_TAGS = {"reg": "/reg-", "signal": "/sig-"}  # key markers of non-default settings


def changed_settings(row: dict) -> list[str]:
    """The key markers (SETTING_TAGS) of the settings this job ran with changed."""
    return [tag for tag in SETTING_TAGS.values() if tag in row["key"]]


def alternative(row: dict) -> bool:
    """True for a job run with a non-default regularisation (``--reg``) or learning
    signal (``--signal``)."""
    return bool(changed_settings(row))


def final_signal(row: dict) -> bool:
    return SETTING_TAGS["signal"] in row["key"]


def signal_comparisons(rows: list) -> tuple[list, list]:
    """Rows for two seed summaries of e-prop with learning_signal='final' (default
    regularisation): against BPTT, and against the online e-prop relabelled 'bptt'."""
    final = [r for r in rows if changed_settings(r) == [SETTING_TAGS["signal"]]]
    if not final:
        return [], []
    plain = [r for r in rows if not alternative(r)]
    return (final + [r for r in plain if r["method"] == "bptt"],
            final + [{**r, "method": "bptt"} for r in plain if r["method"] == "eprop"])


def print_signal_summary(rows: list):
    vs_bptt, vs_online = signal_comparisons(rows)
    if not vs_bptt:
        return
    print("\ne-prop with learning_signal='final':")
    print_seed_summary(vs_bptt, "e-prop final")
    print_seed_summary(vs_online, "e-prop final", "e-prop online")
    chosen = config_selection(rows, SETTING_TAGS["signal"])
    if chosen:
        final = sum(c["signal"] == "final" for c in chosen)
        print(f"\ne-prop choosing the learning signal (online/final) and epoch by validation "
              f"accuracy: final in {final} of {len(chosen)} (fold, seed) runs")
        bptt = [r for r in rows if r["method"] == "bptt" and not alternative(r)]
        print_seed_summary(chosen + bptt, "e-prop (signal chosen)")


def select_config(curves: list) -> tuple[int, int]:
    """(config, epoch), 0-based, with the highest validation accuracy over the epochs of
    every configuration (``curves[c]`` = validation accuracies per epoch of config c);
    ties: the earliest epoch, then the earlier config (the method's default is config 0).
    Test accuracy is never read."""
    vals = [[float(v) for v in c] for c in curves]
    if not vals or any(not c or any(math.isnan(v) for v in c) for c in vals):
        raise ValueError(f"select_config: need validation accuracies, none NaN; got {vals}")
    return min(((c, e) for c, vs in enumerate(vals) for e in range(len(vs))),
               key=lambda ce: (-vals[ce[0]][ce[1]], ce[1], ce[0]))


def config_selection(rows: list, tag: str = SETTING_TAGS["reg"]) -> list:
    """For every (fold, method, seed) run with both its default and its alternative
    setting (keys with ``tag``: "/reg-" regularisation, "/sig-" learning signal):
    the test accuracy at the (config, epoch) of ``select_config``."""
    groups = {}
    for r in rows:
        if changed_settings(r) not in ([], [tag]):
            continue
        groups.setdefault((r["split"], r["method"], r.get("seed", 1)), {})[alternative(r)] = r
    out = []
    for (split, method, seed), by in sorted(groups.items()):
        if len(by) < 2:
            continue
        runs = [by[False], by[True]]
        c, e = select_config([[x["val_accuracy"] for x in r["curves"]] for r in runs])
        out.append({"split": split, "method": method, "seed": seed, "config": c, "epoch": e + 1,
                    "reg": runs[c].get("reg", REG_DEFAULT[method]),
                    "signal": runs[c].get("signal", "online"),
                    "test_accuracy": runs[c]["curves"][e]["test_accuracy"]})
    return out


def print_config_selection(rows: list):
    chosen = config_selection(rows)
    if not chosen:
        return
    print("\nSelection over regularisation (on/off) and epoch by validation accuracy:")
    for method in ("eprop", "bptt"):
        picks = [c for c in chosen if c["method"] == method]
        if picks:
            on = sum(c["reg"] == "on" for c in picks)
            print(f"* {method}: regularisation on in {on} of {len(picks)} (fold, seed) runs")
    print_seed_summary(chosen)


def select_table(rows: list):
    """Nested selection per fold: e-prop vs BPTT at each method's validation-chosen epoch
    (seed 1), then the summary over seeds when there are several, then the selection
    that also chooses the regularisation when both settings were run."""
    everything = rows
    rows = [r for r in rows if not alternative(r)]
    all_seeds, rows = rows, [r for r in rows if r.get("seed", 1) == 1]
    by = {(r["split"], r["method"]): r for r in rows}
    splits = sorted({r["split"] for r in rows})
    if not {"eprop", "bptt"} <= {r["method"] for r in rows}:
        return
    print("\n| test speaker | val speaker | e-prop epoch | e-prop val | e-prop test | BPTT epoch "
          "| BPTT val | BPTT test | difference | test per epoch: e-prop / BPTT "
          "| val per epoch: e-prop / BPTT |\n|---|---|---|---|---|---|---|---|---|---|---|")
    pairs = []
    for how in splits:
        e, t = by.get((how, "eprop")), by.get((how, "bptt"))
        if e is None or t is None:
            continue
        pairs.append((e, t))
        curve = lambda r, k="test_accuracy": " ".join(percent(c[k]) for c in r["curves"])
        print(f"| {parse_nested(how)[0]} | {e['val_speaker']} | {e['selected_epoch']} | "
              f"{percent(e['val_accuracy'])} | {percent(e['test_accuracy'])} | {t['selected_epoch']} | "
              f"{percent(t['val_accuracy'])} | {percent(t['test_accuracy'])} | "
              f"{100 * (e['test_accuracy'] - t['test_accuracy']):+.1f} | "
              f"{curve(e)} / {curve(t)} | {curve(e, 'val_accuracy')} / "
              f"{curve(t, 'val_accuracy')} |")
    if pairs:
        mean = lambda m, k: float(np.mean([p[m][k] for p in pairs]))
        print(f"| **mean ({len(pairs)} folds)** | | | {percent(mean(0, 'val_accuracy'))} | "
              f"**{percent(mean(0, 'test_accuracy'))}** | | {percent(mean(1, 'val_accuracy'))} | "
              f"**{percent(mean(1, 'test_accuracy'))}** | "
              f"**{100 * (mean(0, 'test_accuracy') - mean(1, 'test_accuracy')):+.1f}** | | |")
    print_seed_summary(all_seeds)
    print_config_selection(everything)
    print_signal_summary(everything)


def cmd_table(args):
    res = load_results(Path(args.out))
    acc = [r for r in res if r["kind"] == "accuracy"]
    print("| method | split | T (bins) | epochs | threads | test acc | train acc (500) "
          "| train CPU-s | batch-1 latency ms |\n|---|---|---|---|---|---|---|---|---|")
    for r in sorted(acc, key=lambda r: (r["split"], r["method"], r["key"])):
        reg = "".join(f" ({name} {r['key'].split(tag, 1)[1].split('/')[0]})"
                      for name, tag in SETTING_TAGS.items() if tag in r["key"])
        print(f"| {r['method']}{reg} | {r['split']} | {r['T']} ({1000 / r['T']:.3g} ms) | "
              f"{r['epochs']} | {r['threads']} | {_fmt(r.get('test_accuracy'), '{:.3f}')} | "
              f"{_fmt(r.get('train_accuracy'), '{:.3f}')} | {_fmt(r.get('train_cpu_s'), '{:.0f}')}"
              f" | {_fmt(r.get('latency_ms'))} |")
    lat = [r for r in res if r["kind"] == "latency"]
    print("\n| model (trained by) | date | test acc | batch-1 CPU ms | batch-1 wall ms "
          "| old export path CPU ms | predict() CPU ms | load avg |\n|---|---|---|---|---|---|---|---|")
    for r in sorted(lat, key=lambda r: (r["date"], r["method"])):
        print(f"| {r['method']} ({r['source']}) | {r['date'][:16]} | "
              f"{_fmt(r.get('test_accuracy'), '{:.3f}')} | {_fmt(r.get('latency_cpu_ms'))} | "
              f"{_fmt(r.get('latency_ms'))} | {_fmt(r.get('latency_export_cpu_ms'))} | "
              f"{_fmt(r.get('latency_predict_cpu_ms'))} | {r['load_avg_1m']:.1f} |")
    phased = [r for r in lat if "phase_run_cpu_ms" in r]
    if phased:
        print("\n| e-prop inference phase (CPU ms, median) | reset | set input | run T+2 steps "
              "| read + softmax |\n|---|---|---|---|---|")
        for r in phased:
            print(f"| {r['key']} | " + " | ".join(_fmt(r[f"phase_{k}_cpu_ms"]) for k in
                                                  ("reset", "set_input", "run", "read_softmax")) + " |")
    thr = [r for r in res if r["kind"] == "throughput"]
    print("\n| method | T | threads | samples/s | CPU-s/sample | peak RSS MB | RSS before model MB "
          "| load avg |\n|---|---|---|---|---|---|---|---|")
    for r in sorted(thr, key=lambda r: (r["T"], r["threads"], r["method"])):
        sig = " (final)" if final_signal(r) else ""
        print(f"| {r['method']}{sig} | {r['T']} | {r['threads']} | {_fmt(r['samples_per_s'])} | "
              f"{_fmt(r['cpu_s_per_sample'])} | {r['peak_mb']:.0f} | {r['base_mb']:.0f} | "
              f"{r['load_avg_1m']:.1f} |")
    select_table([r for r in res if r["kind"] == "select"])
    if res:
        m = res[-1]["machine"]
        print(f"\nMachine: {m['cpu']}, {m['cores']} cores (shared). Data: {FSDD_ATTRIBUTION}.")


def main(argv=None):
    if argv is None and len(sys.argv) > 2 and sys.argv[1] == "child":
        return child_main(sys.argv[2])
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--fsdd", default=str(REPO.parent / "shared" / "data" / "fsdd"),
                   help="FSDD root (holding recordings/)")
    p.add_argument("--workdir", default="/tmp/eprop-bench", help="encoded data and caches")
    p.add_argument("--out", default="/tmp/eprop-bench/results.json")
    p.add_argument("--torch-python", default="/tmp/eprop-bench-venv/bin/python")
    p.add_argument("--job-timeout", type=float, default=3 * 3600)
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("accuracy")
    a.add_argument("--method", nargs="+", default=["eprop", "bptt", "lstm"],
                   choices=["eprop", "bptt", "lstm"])
    a.add_argument("--split", nargs="+", default=["conventional", "speaker:george"])
    a.add_argument("--epochs", type=int, default=5)
    a.add_argument("--T", type=int, default=250)
    a.add_argument("--threads", type=int, default=1)
    a.add_argument("--latency", type=int, default=50, help="batch-1 latency repeats")
    a.add_argument("--reg", choices=["default", "on", "off"], default="default",
                   help="firing-rate regularisation (default: on for e-prop, off for BPTT); "
                        "a non-default choice adds /reg-on or /reg-off to the job keys")
    add_signal_option(a, "e-prop learning signal (default online); 'final' adds /sig-final "
                         "to the e-prop job keys (other methods are unaffected; not with a "
                         "non-default --reg)")
    a.add_argument("--seed", type=int, nargs="+", default=[1],
                   help="seeds of weight initialisation and sample order (one job each; "
                        "keys of seeds other than 1 end in /s<seed>)")
    t = sub.add_parser("throughput")
    t.add_argument("--method", nargs="+", default=["eprop", "bptt"], choices=["eprop", "bptt"])
    t.add_argument("--T", type=int, nargs="+", default=[100, 500, 1000, 2000])
    t.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    t.add_argument("--samples", type=int, default=64)
    add_signal_option(t, "e-prop learning signal ('final' adds /sig-final to the e-prop "
                         "keys; other methods are unaffected)")
    lat = sub.add_parser("latency", help="batch-1 latency of models trained by 'accuracy'")
    lat.add_argument("--method", nargs="+", default=["eprop", "lstm"],
                     choices=["eprop", "bptt", "lstm"])
    lat.add_argument("--epochs", nargs="+", default=["1"],
                     help="epochs of the accuracy job to load: E, or METHOD=E per method "
                          "(e.g. --epochs 3 lstm=10)")
    lat.add_argument("--T", type=int, default=250)
    lat.add_argument("--repeats", type=int, default=50)
    add_signal_option(lat, "time the e-prop model trained with this learning signal "
                           "(accuracy --signal); other methods are unaffected")
    lat.add_argument("--tag", default="",
                     help="appended to the job key (to re-measure a job already in --out)")
    sub.add_parser("table")
    args = p.parse_args(argv)
    Path(args.workdir).mkdir(parents=True, exist_ok=True)
    {"accuracy": cmd_accuracy, "throughput": cmd_throughput, "latency": cmd_latency,
     "table": cmd_table}[args.cmd](args)


if __name__ == "__main__":
    main()
