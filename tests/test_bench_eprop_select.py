"""The nested speaker-wise model-selection rule of tools/bench_eprop.py (no training)."""
import math

import pytest

from spikeforge.tools import bench_eprop as b

FSDD = ["george", "jackson", "lucas", "nicolas", "theo", "yweweler"]


def test_select_epoch_best_validation_earliest_tie():
    assert b.select_epoch([0.5, 0.7, 0.6]) == 1
    assert b.select_epoch([0.7, 0.5, 0.7]) == 0          # tie: the earliest epoch
    assert b.select_epoch([0.2, 0.4, 0.4]) == 1
    assert b.select_epoch([0.3]) == 0


@pytest.mark.parametrize("bad", [[], [0.5, math.nan]])
def test_select_epoch_rejects_empty_and_nan(bad):
    with pytest.raises(ValueError, match="select_epoch"):
        b.select_epoch(bad)


def test_validation_speaker_next_is_cyclic_alphabetical():
    shuffled = ["theo", "george", "yweweler", "lucas", "jackson", "nicolas", "george"]
    got = {s: b.validation_speaker(s, shuffled) for s in FSDD}
    assert got == {"george": "jackson", "jackson": "lucas", "lucas": "nicolas",
                   "nicolas": "theo", "theo": "yweweler", "yweweler": "george"}
    assert all(v != s for s, v in got.items())
    assert sorted(got.values()) == FSDD                    # every speaker validates once


def test_validation_speaker_explicit_and_errors():
    assert b.validation_speaker("george", FSDD, "theo") == "theo"
    with pytest.raises(ValueError, match="test speaker"):
        b.validation_speaker("george", FSDD, "george")
    with pytest.raises(ValueError, match="unknown test speaker"):
        b.validation_speaker("bob", FSDD)
    with pytest.raises(ValueError, match="rule 'prev'"):
        b.validation_speaker("george", FSDD, "prev")


def test_parse_nested():
    assert b.parse_nested("speaker:george/val:next") == ("george", "next")
    assert b.parse_nested("speaker:theo/val:lucas") == ("theo", "lucas")
    assert b.parse_nested("speaker:george") is None
    assert b.parse_nested("conventional") is None
    with pytest.raises(SystemExit, match="val:next"):
        b.parse_nested("conventional/val:next")


def test_summary_reports_test_at_the_validation_choice_not_the_best_test():
    curves = [{"epoch": 1, "val_accuracy": 0.60, "test_accuracy": 0.30},
              {"epoch": 2, "val_accuracy": 0.70, "test_accuracy": 0.20},
              {"epoch": 3, "val_accuracy": 0.70, "test_accuracy": 0.50}]
    s = b.summarize_selection(curves, "jackson")
    assert (s["selected_epoch"], s["val_accuracy"], s["test_accuracy"]) == (2, 0.70, 0.20)
    assert s["last_epoch_test_accuracy"] == 0.50 and s["val_speaker"] == "jackson"


def test_nested_data_file_splits_speakers_disjointly(tmp_path, monkeypatch):
    """4 training speakers, V = the next speaker, S = the test speaker (fake FSDD:
    label = speaker index; one spike per 4 ms bin for 32 ms in channel = speaker index)."""
    import argparse

    import numpy as np
    from spikeforge.datasets import events as ev
    from spikeforge.datasets import fsdd

    spk = [s for s in FSDD for _ in range(3)]
    frames = [np.eye(1, 6, FSDD.index(s), dtype=np.uint8).repeat(8, 0) for s in spk]
    fake = ev.EventDataset([ev.frames_to_events(f, 4.0) for f in frames],
                           [FSDD.index(s) for s in spk], 6, {"speaker": spk})
    monkeypatch.setattr(fsdd, "load_fsdd", lambda *a, **k: fake)
    args = argparse.Namespace(workdir=str(tmp_path), fsdd="unused")
    d = b.load_nested(b.nested_data_file(args, "speaker:yweweler/val:next", 250))
    assert str(d["val_speaker"]) == "george"
    assert set(d["yte"]) == {5} and set(d["yva"]) == {0} and set(d["ytr"]) == {1, 2, 3, 4}
    assert len(d["xtr"]) == 12 and d["xte"].shape == (3, 250, 6)
    assert (d["xte"][:, :8, 5] == 1).all() and d["xte"].sum() == 3 * 8


def _select_row(fold, method, seed, acc):
    return {"split": f"speaker:{fold}/val:next", "method": method, "seed": seed,
            "test_accuracy": acc}


def test_seed_summary_means_and_standard_error_over_seeds():
    rows = [_select_row("george", "eprop", 1, 0.2), _select_row("george", "bptt", 1, 0.4),
            _select_row("jackson", "eprop", 1, 0.6), _select_row("jackson", "bptt", 1, 0.6),
            _select_row("george", "eprop", 2, 0.3), _select_row("george", "bptt", 2, 0.3),
            _select_row("jackson", "eprop", 2, 0.7), _select_row("jackson", "bptt", 2, 0.5),
            _select_row("lucas", "eprop", 1, 0.9)]        # lucas lacks seed 2 and BPTT: left out
    s = b.seed_summary(rows)
    assert s["seeds"] == [1, 2] and s["folds"] == ["speaker:george/val:next",
                                                   "speaker:jackson/val:next"]
    assert s["per_fold"]["speaker:george/val:next"] == pytest.approx({"eprop": 0.25,
                                                                      "bptt": 0.35})
    assert s["per_seed"][1] == pytest.approx({"eprop": 0.4, "bptt": 0.5})
    assert s["per_seed"][2] == pytest.approx({"eprop": 0.5, "bptt": 0.4})
    assert s["gap"] == pytest.approx(0.0)               # seed gaps -0.1 and +0.1
    assert s["gap_se"] == pytest.approx(0.1)            # sd 0.1414 / sqrt(2)


def test_seed_summary_needs_two_seeds():
    rows = [_select_row("george", "eprop", 1, 0.2), _select_row("george", "bptt", 1, 0.4)]
    assert b.seed_summary(rows) is None
    old = [{k: v for k, v in r.items() if k != "seed"} for r in rows]   # seed-1 rows of old runs
    assert b.seed_summary(old + [_select_row("george", "eprop", 2, 0.3),
                                 _select_row("george", "bptt", 2, 0.5)])["gap"] == \
        pytest.approx(-0.2)


def test_select_config_best_validation_then_earliest_epoch_then_default():
    assert b.select_config([[0.5, 0.6, 0.55], [0.4, 0.7, 0.3]]) == (1, 1)
    assert b.select_config([[0.5, 0.7, 0.7], [0.7, 0.2, 0.1]]) == (1, 0)   # earliest epoch
    assert b.select_config([[0.3, 0.7], [0.2, 0.7]]) == (0, 1)              # then the default
    with pytest.raises(ValueError, match="select_config"):
        b.select_config([[0.5], [math.nan]])


def _curve_row(speaker, method, seed, val, test, reg_alt=False, final=False):
    key = f"accuracy/{method}/speaker:{speaker}/val:next/T250/e3/t1" + \
        ("" if seed == 1 else f"/s{seed}") + ("/reg-x" if reg_alt else "") + \
        ("/sig-final" if final else "")
    on = (method == "eprop") != reg_alt
    return {"key": key, "split": f"speaker:{speaker}/val:next", "method": method,
            "seed": seed, "reg": "on" if on else "off",
            **({"signal": "final" if final else "online"} if method == "eprop" else {}),
            "curves": [{"val_accuracy": v, "test_accuracy": t} for v, t in zip(val, test)]}


def test_config_selection_reads_validation_only_and_needs_both_settings():
    rows = [_curve_row("george", "eprop", 1, [0.5, 0.6], [0.9, 0.1]),
            _curve_row("george", "eprop", 1, [0.4, 0.65], [0.8, 0.3], reg_alt=True),
            _curve_row("george", "bptt", 1, [0.7, 0.6], [0.2, 0.9]),
            _curve_row("george", "bptt", 1, [0.7, 0.5], [0.4, 0.6], reg_alt=True),
            _curve_row("jackson", "bptt", 1, [0.7, 0.6], [0.2, 0.9]),   # one setting: left out
            _curve_row("george", "eprop", 1, [0.9, 0.9], [0.5, 0.5], final=True),  # not a reg run
            _curve_row("george", "eprop", 1, [0.95, 0.9], [0.4, 0.4], reg_alt=True,
                       final=True)]                     # two changed settings: neither selection
    got = {(c["split"], c["method"]): c for c in b.config_selection(rows)}
    assert set(got) == {("speaker:george/val:next", "eprop"), ("speaker:george/val:next", "bptt")}
    e, t = got[("speaker:george/val:next", "eprop")], got[("speaker:george/val:next", "bptt")]
    assert (e["config"], e["epoch"], e["reg"], e["test_accuracy"]) == (1, 2, "off", 0.3)
    assert (t["config"], t["epoch"], t["reg"], t["test_accuracy"]) == (0, 1, "off", 0.2)


def test_reg_suffix_keeps_default_keys():
    assert b.reg_suffix("eprop", "default") == b.reg_suffix("eprop", "on") == ""
    assert b.reg_suffix("eprop", "off") == "/reg-off"
    assert b.reg_suffix("bptt", "off") == "" and b.reg_suffix("bptt", "on") == "/reg-on"
    with pytest.raises(SystemExit, match="LSTM"):
        b.reg_suffix("lstm", "on")


def test_signal_suffix_and_comparisons():
    assert b.signal_suffix("eprop", "online") == "" and b.signal_suffix("bptt", "online") == ""
    assert b.signal_suffix("eprop", "final") == "/sig-final"
    assert b.signal_suffix("bptt", "final") == ""             # the option is e-prop's alone
    assert b.settings_suffix("bptt", "on", "final") == "/reg-on"
    with pytest.raises(SystemExit, match="one setting per run"):
        b.settings_suffix("eprop", "off", "final")
    rows = []
    for seed, (fin, onl, bp) in {1: (0.6, 0.3, 0.4), 2: (0.5, 0.4, 0.5)}.items():
        rows += [_curve_row("george", "eprop", seed, [0.5], [fin], final=True),
                 _curve_row("george", "eprop", seed, [0.5], [onl]),
                 _curve_row("george", "bptt", seed, [0.5], [bp]),
                 _curve_row("george", "eprop", seed, [0.5], [0.99], reg_alt=True)]
    for r in rows:
        r["test_accuracy"] = r["curves"][0]["test_accuracy"]
    vs_bptt, vs_online = (b.seed_summary(x) for x in b.signal_comparisons(rows))
    assert vs_bptt["per_seed"][1] == pytest.approx({"eprop": 0.6, "bptt": 0.4})
    assert vs_bptt["gap"] == pytest.approx(0.1)
    assert vs_online["per_seed"][2] == pytest.approx({"eprop": 0.5, "bptt": 0.4})
    assert vs_online["gap"] == pytest.approx(0.2)
    assert b.signal_comparisons([r for r in rows if "/sig-" not in r["key"]]) == ([], [])
    rows.append(_curve_row("george", "eprop", 1, [0.99], [0.0], reg_alt=True, final=True))
    chosen = b.config_selection(rows, "/sig-")         # validation ties: the default (online)
    assert [(c["seed"], c["signal"], c["test_accuracy"]) for c in chosen] == \
        [(1, "online", 0.3), (2, "online", 0.4)]
    rows[0]["curves"][0]["val_accuracy"] = 0.6         # final validates better for seed 1
    chosen = b.config_selection(rows, "/sig-")
    assert [(c["seed"], c["signal"], c["test_accuracy"]) for c in chosen] == \
        [(1, "final", 0.6), (2, "online", 0.4)]
