"""Model files: a network as JSON (``m.json``) plus its arrays in a sibling ``m.npz``.

Layout of the JSON file::

    {"format": "spikeforge-model", "version": 1,
     "npz_sha256": "<hex digest of m.npz>",          # written always, checked when present
     "network": {"kind": "Network", "dt": 0.1, ..., "populations": [...], ...}}

Every IR node is an object ``{"kind": "<class name>", <field>: <value>, ...}`` with
exactly the node's dataclass fields (``doc`` included; a missing or unknown field
is an error, so a new IR field means a new format version). One table,
:data:`KINDS` (kind -> class and field specs), drives the encoder and decoder:
``str``/``int``/``bool``: JSON string/integer/boolean; ``float``: a number or
``"inf"``/``"-inf"`` (JSON has no infinity); ``[X]``: list of X (a tuple in the IR);
``{X}``: object of X by name; ``X?``: X or null; a family (``Init``,
``Connectivity``) or kind name: a node of one of its kinds; ``array``: the key of
an array in ``m.npz`` (every array goes there: Values, Sparse ``row_ptr``/
``indices``, spike times); ``spike_times``: per batch element ``{"row_ptr": key,
"times": key}`` (CSR over neurons); ``precision``: ``"float32"``, ``"float64"``
or a ``Fixed`` node.

Models are always stored in full (code strings, derived params, vars, doc), so
user-defined models round-trip and a file does not depend on the installed
built-ins. A model saved equal to a built-in also carries ``"builtin": "<name>"``;
on load the stored definition is authoritative: when it still equals the
installed built-in of that name, that built-in object is used (same identity),
otherwise the stored model is built as if user-defined.

Loading executes nothing from the file (no pickle: ``np.load(...,
allow_pickle=False)``; no eval): code strings go through the model-language
parser, and every node is rebuilt through its constructor, so all
``__post_init__`` and :class:`Network` checks run. Every load error is a
:class:`ModelFileError` (a ``ValueError``) naming the file and the JSON path, e.g.
``m.json: network.projections[2].connectivity: unknown kind 'Foo'``; rejected model
code raises :class:`ModelFileCodeError`, also a :class:`~spikeforge.lang.ModelCodeError`.

Writes are atomic: each file goes to a temporary file in the same directory
and is moved into place with ``os.replace``, the ``.npz`` first, then the JSON
(whose ``npz_sha256`` detects an npz from another save or a corrupted one).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import secrets
import zipfile
from pathlib import Path

import numpy as np

from . import builtins as B
from . import connectivity as C
from .init import Constant, Exponential, Normal, NormalClipped, Uniform, Values
from .lang import ModelCodeError
from .models import CurrentSourceModel, NeuronModel, PostsynapticModel, Var, WeightUpdateModel
from .net import Network
from .network import CurrentSource, CustomUpdate, Population, Projection, Reduction
from .numerics import Fixed

FORMAT, VERSION = "spikeforge-model", 1

_MODEL = {"name": "str", "params": "[str]", "derived": "{str}", "vars": "[Var]"}
_SYN = {"pre_vars": "[Var]", "post_vars": "[Var]", "pre_spike": "str", "post_spike": "str",
        "synapse_dynamics": "str", "pre_dynamics": "str", "post_dynamics": "str",
        "pre_spike_trace": "str", "post_spike_trace": "str", "pre_target": "str"}

#: Fields added to format version 1 after files were written: their default
#: when a file lacks them.
ADDED_FIELDS = {"Network": {"fuse_postsynaptic": False}, "PostsynapticModel": {"linear": False}}

#: kind name -> (class, {field: spec}); field order is the order written.
KINDS: dict[str, tuple[type, dict[str, str]]] = {
    "Network": (Network, {
        "dt": "float", "batch_size": "int", "seed": "int", "precision": "precision",
        "populations": "[Population]", "projections": "[Projection]",
        "current_sources": "[CurrentSource]", "custom_updates": "[CustomUpdate]",
        "fuse_postsynaptic": "bool"}),
    "Fixed": (Fixed, {"bits": "int", "frac": "int"}),
    "Population": (Population, {
        "name": "str", "model": "NeuronModel", "size": "int", "params": "{float}",
        "init": "{Init}", "spike_times": "spike_times?"}),
    "Projection": (Projection, {
        "name": "str", "pre": "str", "post": "str", "connectivity": "Connectivity",
        "weight_update": "WeightUpdateModel", "wu_params": "{float}", "wu_init": "{Init}",
        "postsynaptic": "PostsynapticModel", "ps_params": "{float}", "ps_init": "{Init}",
        "delay": "int", "max_dendritic_delay": "int", "target": "str"}),
    "CurrentSource": (CurrentSource, {
        "name": "str", "model": "CurrentSourceModel", "target": "str", "params": "{float}",
        "init": "{Init}"}),
    "CustomUpdate": (CustomUpdate, {
        "name": "str", "target": "str", "code": "str", "var_refs": "{str}",
        "params": "{float}", "reductions": "{Reduction}", "group": "str", "every_step": "bool"}),
    "Reduction": (Reduction, {"op": "str", "over": "str"}),
    "Var": (Var, {"name": "str", "type": "str", "batched": "bool", "default": "float?",
                  "fmt": "Fixed?", "saturate": "bool"}),
    "NeuronModel": (NeuronModel, {
        **_MODEL, "sim": "str", "threshold": "str", "reset": "str", "events": "str",
        "inputs": "[str]", "native": "str", "doc": "str"}),
    "PostsynapticModel": (PostsynapticModel, {
        **_MODEL, "code": "str", "current": "str", "linear": "bool", "doc": "str"}),
    "WeightUpdateModel": (WeightUpdateModel, {**_MODEL, **_SYN, "doc": "str"}),
    "CurrentSourceModel": (CurrentSourceModel, {
        **_MODEL, "code": "str", "current": "str", "doc": "str"}),
    "Dense": (C.Dense, {}),
    "OneToOne": (C.OneToOne, {}),
    "Sparse": (C.Sparse, {"row_ptr": "array", "indices": "array"}),
    "FixedProbability": (C.FixedProbability, {
        "p": "float", "procedural": "bool", "autapses": "bool"}),
    "FixedNumberPost": (C.FixedNumberPost, {"n": "int", "procedural": "bool", "autapses": "bool"}),
    "FixedTotalNumber": (C.FixedTotalNumber, {"n": "int"}),
    "Conv2D": (C.Conv2D, {"in_shape": "[int]", "kernel": "[int]", "out_channels": "int",
                          "stride": "[int]", "padding": "str"}),
    "AvgPool2D": (C.AvgPool2D, {"in_shape": "[int]", "pool": "[int]", "stride": "[int]",
                                "padding": "str"}),
    "Constant": (Constant, {"value": "float"}),
    "Uniform": (Uniform, {"low": "float", "high": "float"}),
    "Normal": (Normal, {"mean": "float", "sd": "float"}),
    "NormalClipped": (NormalClipped, {"mean": "float", "sd": "float", "low": "float",
                                      "high": "float"}),
    "Exponential": (Exponential, {"scale": "float"}),
    "Values": (Values, {"values": "array"}),
}

#: family name -> the kinds a field of that family accepts (a kind is its own family).
FAMILIES = {
    "Init": ("Constant", "Uniform", "Normal", "NormalClipped", "Exponential", "Values"),
    "Connectivity": ("Dense", "OneToOne", "Sparse", "FixedProbability", "FixedNumberPost",
                     "FixedTotalNumber", "Conv2D", "AvgPool2D"),
    **{kind: (kind,) for kind in KINDS},
}

#: model kind -> built-ins of that kind by name (for the optional "builtin" reference).
BUILTINS = {"NeuronModel": B.NEURON_MODELS, "PostsynapticModel": B.POSTSYNAPTIC_MODELS,
            "WeightUpdateModel": B.WEIGHT_UPDATE_MODELS,
            "CurrentSourceModel": B.CURRENT_SOURCE_MODELS}

_KIND_OF = {cls: kind for kind, (cls, _) in KINDS.items()}


class ModelFileError(ValueError):
    """A model file that cannot be loaded; the message names the file and the JSON path."""

    def __init__(self, file, path: str, message: str):
        self.file, self.path, self.reason = str(file), path, message
        ValueError.__init__(self, f"{self.file}: {path + ': ' if path else ''}{message}")


class ModelFileCodeError(ModelFileError, ModelCodeError):
    """Model code in a file rejected by the model language (also a ModelCodeError)."""

    def __init__(self, file, path: str, error: ModelCodeError):
        self.model, self.field, self.line, self.col = error.model, error.field, error.line, error.col
        self.message = error.message
        ModelFileError.__init__(self, file, path, str(error))


# saving ----------------------------------------------------------------------------------
def save(network: Network, path) -> None:
    """Write ``network`` to ``path`` (JSON) and its arrays to ``path`` with suffix ``.npz``."""
    if not isinstance(network, Network):
        raise TypeError(f"save: expected a Network, got {type(network).__name__}")
    path = Path(path)
    npz_path = path.with_suffix(".npz")
    if npz_path == path:
        raise ValueError(f"save: {path} is the arrays file's name; name the model file .json")
    arrays: dict[str, np.ndarray] = {}
    body = _encode("Network", network, "network", arrays)
    digest = _atomic_write(npz_path, lambda f: np.savez(f, **arrays))
    doc = {"format": FORMAT, "version": VERSION, "npz_sha256": digest, "network": body}
    text = json.dumps(doc, indent=1, allow_nan=False) + "\n"
    _atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def _encode(spec: str, value, path: str, arrays: dict):
    if spec.endswith("?"):
        return None if value is None else _encode(spec[:-1], value, path, arrays)
    if spec.startswith("["):
        return [_encode(spec[1:-1], v, f"{path}[{i}]", arrays) for i, v in enumerate(value)]
    if spec.startswith("{"):
        items = dict(value).items()  # a dict, or (name, value) pairs (derived params)
        return {str(k): _encode(spec[1:-1], v, f"{path}.{k}", arrays) for k, v in items}
    if spec in _SCALARS:
        return _SCALARS[spec][0](value)
    if spec == "array":
        arrays[path] = np.asarray(value)
        return path
    if spec == "spike_times":
        return [{"row_ptr": _encode("array", np.cumsum([0] + [len(r) for r in rows]),
                                    f"{path}[{b}].row_ptr", arrays),
                 "times": _encode("array", np.concatenate(rows), f"{path}[{b}].times", arrays)}
                for b, rows in enumerate(value)]
    if spec == "precision":
        return value if isinstance(value, str) else _encode("Fixed", value, path, arrays)
    return _encode_node(value, path, arrays)


def _encode_node(node, path: str, arrays: dict) -> dict:
    kind = _KIND_OF.get(type(node))
    if kind is None:
        raise TypeError(f"save: {path}: cannot store a {type(node).__name__}")
    out = {"kind": kind}
    for name, spec in KINDS[kind][1].items():
        out[name] = _encode(spec, getattr(node, name), f"{path}.{name}", arrays)
    if kind in BUILTINS and BUILTINS[kind].get(node.name) == node:
        out["builtin"] = node.name
    return out


def _encode_float(x):
    if isinstance(x, (int, np.integer)) and not isinstance(x, bool):
        return int(x)
    return float(x) if math.isfinite(x) else ("inf" if x > 0 else "-inf")


def _atomic_write(path: Path, write) -> str:
    """Write through ``write(binary_file)`` to a temp file beside ``path``, fsync, then
    os.replace it over ``path``; returns the SHA-256 of what was written."""
    tmp = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # mode as umask allows
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        digest = _sha256(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return digest


def _sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# loading ---------------------------------------------------------------------------------
def load(path) -> Network:
    """Read a model file written by :func:`save` (see the module docstring for the format)."""
    ctx = _Loader(Path(path))
    doc = ctx.read_json()
    if doc.get("format") != FORMAT:
        raise ctx.error("format", f"not a spikeforge model file (format {doc.get('format')!r})")
    if not _is_int(doc.get("version")) or doc["version"] != VERSION:
        raise ctx.error("version", f"unsupported version {doc.get('version')!r} "
                                   f"(this spikeforge reads version {VERSION})")
    _check_keys(ctx, doc, "", ["format", "version", "network"], ["npz_sha256"])
    ctx.sha256 = doc.get("npz_sha256")
    if ctx.sha256 is not None and not isinstance(ctx.sha256, str):
        raise ctx.error("npz_sha256", "expected a hex string")
    return _decode("Network", doc["network"], "network", ctx)


class _Loader:
    """Per-load state: the file names, lazily opened npz, error construction."""

    def __init__(self, path: Path):
        self.path, self.npz_path = path, path.with_suffix(".npz")
        self.sha256, self._npz = None, None

    def error(self, where: str, message: str) -> ModelFileError:
        return ModelFileError(self.path, where, message)

    def read_json(self):
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise self.error("", "no such model file") from None
        except (OSError, UnicodeDecodeError) as e:
            raise self.error("", f"cannot read: {e}") from None
        try:
            doc = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
        except ValueError as e:  # json.JSONDecodeError included
            raise self.error("", f"invalid JSON: {e}") from None
        if not isinstance(doc, dict):
            raise self.error("", f"expected a JSON object at the top, got {_what(doc)}")
        return doc

    def array(self, key, where: str) -> np.ndarray:
        if not isinstance(key, str):
            raise self.error(where, f"expected the key of an array in {self.npz_path.name}, "
                                    f"got {_what(key)}")
        arrays = self._open(where)
        if key not in arrays:
            raise self.error(where, f"{self.npz_path.name} has no array {key!r}")
        array = arrays[key]
        if array.dtype.kind not in "biuf":
            raise self.error(where, f"array {key!r} has dtype {array.dtype}; expected numbers")
        return array

    def _open(self, where: str) -> dict:
        """Read every array of the npz once (checksum first when the JSON has one)."""
        if self._npz is not None:
            return self._npz
        name = self.npz_path.name
        if not self.npz_path.is_file():
            raise self.error(where, f"the arrays file {name} does not exist")
        if self.sha256 is not None and _sha256(self.npz_path) != self.sha256:
            raise self.error(where, f"{name} does not match this model file (checksum differs): "
                                    "it is corrupted or comes from another save")
        try:
            with open(self.npz_path, "rb") as f, np.load(f, allow_pickle=False) as npz:
                self._npz = {key: npz[key] for key in npz.files}
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
            raise self.error(where, f"{name} is corrupted or not an npz file: {e}") from None
        return self._npz


def _no_duplicates(pairs):
    out = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def _no_constant(name):
    raise ValueError(f"{name} is not a JSON number (write \"inf\"/\"-inf\" for infinities)")


_JSON_TYPES = {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
               int: "an integer", float: "a number", type(None): "null"}


def _what(value) -> str:
    text = "" if isinstance(value, (dict, list, type(None))) else f" {value!r}"
    return _JSON_TYPES.get(type(value), type(value).__name__) + text


def _decode(spec: str, value, path: str, ctx: _Loader):
    if spec.endswith("?"):
        return None if value is None else _decode(spec[:-1], value, path, ctx)
    if spec.startswith("["):
        _want(ctx, value, list, path, "a list")
        return tuple(_decode(spec[1:-1], v, f"{path}[{i}]", ctx) for i, v in enumerate(value))
    if spec.startswith("{"):
        _want(ctx, value, dict, path, "an object")
        return {k: _decode(spec[1:-1], v, f"{path}.{k}", ctx) for k, v in value.items()}
    if spec in _SCALARS:
        ok, expected = _SCALARS[spec][1], _SCALARS[spec][2]
        if not ok(value):
            raise ctx.error(path, f"expected {expected}, got {_what(value)}")
        return _INF.get(value, value) if spec == "float" else value
    if spec == "array":
        return ctx.array(value, path)
    if spec == "spike_times":
        return _decode_spike_times(value, path, ctx)
    if spec == "precision":
        return value if isinstance(value, str) else _decode("Fixed", value, path, ctx)
    return _decode_node(spec, value, path, ctx)


def _want(ctx, value, typ, path, expected):
    if not isinstance(value, typ):
        raise ctx.error(path, f"expected {expected}, got {_what(value)}")


def _check_keys(ctx, obj: dict, path: str, required, optional=()):
    missing = [k for k in required if k not in obj]
    extra = [k for k in obj if k not in required and k not in optional]
    if missing:
        raise ctx.error(path, f"missing field {missing[0]!r}")
    if extra:
        raise ctx.error(path, f"unknown field {extra[0]!r}")


def _decode_node(family: str, value, path: str, ctx: _Loader):
    _want(ctx, value, dict, path, f"a {family} node (an object with a 'kind')")
    kind = value.get("kind")
    if not isinstance(kind, str) or kind not in KINDS:
        raise ctx.error(path, f"unknown kind {kind!r}" if "kind" in value else "missing 'kind'")
    if kind not in FAMILIES[family]:
        raise ctx.error(path, f"a {kind} is not allowed here (expected {family})")
    cls, specs = KINDS[kind]
    builtins = BUILTINS.get(kind)
    later = ADDED_FIELDS.get(kind, {})
    _check_keys(ctx, value, path, ["kind", *(s for s in specs if s not in later)],
                ["builtin"] * bool(builtins) + list(later))
    args = {name: _decode(spec, value[name], f"{path}.{name}", ctx) if name in value
            else later[name] for name, spec in specs.items()}
    node = _construct(cls, args, path, ctx)
    if builtins is None or "builtin" not in value:
        return node
    _want(ctx, value["builtin"], str, f"{path}.builtin", "a built-in model's name")
    builtin = builtins.get(value["builtin"])
    return builtin if builtin is not None and builtin == node else node


def _construct(cls, args: dict, path: str, ctx: _Loader):
    """Build a node through its constructor; its validation errors name the file and path."""
    try:
        return cls(**args)
    except ModelCodeError as e:
        where = f"{path}.{e.field}" if e.field in args else path
        raise ModelFileCodeError(ctx.path, where, e) from None
    except (ValueError, TypeError, KeyError, OverflowError) as e:
        message = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
        raise ctx.error(path, message) from None


def _decode_spike_times(value, path: str, ctx: _Loader) -> tuple:
    _want(ctx, value, list, path, "a list (one entry per batch element)")
    out = []
    for b, entry in enumerate(value):
        where = f"{path}[{b}]"
        _want(ctx, entry, dict, where, "an object with 'row_ptr' and 'times'")
        _check_keys(ctx, entry, where, ["row_ptr", "times"])
        row_ptr = ctx.array(entry["row_ptr"], f"{where}.row_ptr")
        times = ctx.array(entry["times"], f"{where}.times")
        ok = (row_ptr.ndim == 1 and times.ndim == 1 and row_ptr.dtype.kind in "iu"
              and len(row_ptr) >= 1 and row_ptr[0] == 0 and row_ptr[-1] == len(times)
              and np.all(np.diff(row_ptr) >= 0))
        if not ok:
            raise ctx.error(where, "row_ptr must be a 1-D int array rising from 0 to len(times)")
        out.append(tuple(np.split(times, row_ptr[1:-1])))
    return tuple(out)


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


_INF = {"inf": math.inf, "-inf": -math.inf}


def _is_inf(v):
    return isinstance(v, str) and v in _INF

#: scalar spec -> (encode, JSON check, description).
_SCALARS = {
    "str": (str, lambda v: isinstance(v, str), "a string"),
    "int": (int, _is_int, "an integer"),
    "bool": (bool, lambda v: isinstance(v, bool), "a boolean"),
    "float": (_encode_float, lambda v: _is_int(v) or isinstance(v, float) or _is_inf(v),
              'a number (or "inf"/"-inf")'),
}
