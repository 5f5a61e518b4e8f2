"""The Simulation API, the same for every backend.

A backend subclasses :class:`Simulation` and implements ``_advance(n)`` (run n
steps, appending recorded spikes/vars through ``_record_*``), and, when its
state does not live in ``self.state`` on the host, ``_pull``/``_push``.
"""

from __future__ import annotations

import numpy as np

from .fixed import to_fixed, to_real
from .net import Network
from .prepare import Prepared, prepare

PROGRESS_CHUNK = 1000


class Simulation:
    """A built network. ``run`` advances time; ``spikes``/``trace`` read recordings;
    ``get``/``set`` access state as ``"<node>.<var>"``; ``custom_update`` runs
    host-triggered custom updates; ``reset`` restores the initial state."""

    backend = "abstract"

    def __init__(self, network: Network, record_spikes=None, record_vars=()):
        self.network = network
        self.prepared: Prepared = prepare(network)
        self.state = self._live_state()
        self.step = 0  # steps since build or reset (t = step * dt)
        self.rng_step = 0  # Philox counter word c0: never rewound by reset()
        self.seed = network.seed
        spiking = [p.name for p in network.populations if p.model.spiking]
        self.record_spikes = tuple(spiking if record_spikes is None else record_spikes)
        self.record_vars = tuple(record_vars)
        for name in self.record_spikes:
            pop = network.population(name, "record_spikes")
            if not pop.model.spiking:
                raise ValueError(f"record_spikes: population {name!r} ({pop.model.name}) never spikes")
        for name in self.record_vars:
            self._check_var(name, "record_vars")
        self._clear_recordings()

    # public API ---------------------------------------------------------------
    @property
    def t(self) -> float:
        """Current time in ms (start of the next step)."""
        return self.step * self.network.dt

    def run(self, steps: int | None = None, duration_ms: float | None = None, progress=None):
        """Advance ``steps`` steps or ``duration_ms`` (rounded to whole steps).
        A progress bar appears for runs longer than about a second unless
        ``progress=False``."""
        n = self._steps(steps, duration_ms)
        if n == 0:
            return self
        if progress is False or n <= PROGRESS_CHUNK:
            self._advance(n)
            return self
        from tqdm.auto import tqdm

        with tqdm(total=n, unit="step", delay=0 if progress else 1.0, leave=False,
                  desc=f"{self.backend}") as bar:
            done = 0
            while done < n:
                chunk = min(PROGRESS_CHUNK, n - done)
                self._advance(chunk)
                done += chunk
                bar.update(chunk)
        return self

    def spikes(self, pop: str):
        """Recorded spikes of ``pop``: (times_ms, ids) for batch_size 1, else
        (times_ms, ids, batch). A step with k events lists the neuron k times."""
        if pop not in self.record_spikes:
            self.network.population(pop, "spikes")
            raise KeyError(f"spikes of population {pop!r} were not recorded "
                           f"(recorded: {list(self.record_spikes)})")
        steps, ids, batch = (np.concatenate(p) for p in zip(*self._spike_log[pop]))
        times = steps * self.network.dt
        return (times, ids) if self.network.batch_size == 1 else (times, ids, batch)

    def trace(self, name: str):
        """Recorded values of var ``name``: (times_ms, values[step, ...])."""
        if name not in self.record_vars:
            self._check_var(name, "trace")
            raise KeyError(f"var {name!r} was not recorded (recorded: {list(self.record_vars)})")
        values = self._var_log[name]
        steps = np.array(self._var_steps, dtype=np.int64)
        return (steps + 1) * self.network.dt, np.array(values)

    def get(self, name: str) -> np.ndarray:
        """A copy of var ``name`` ("<node>.<var>"): shape (n,) for shared vars and for
        batched vars when batch_size is 1, else (batch, n)."""
        self._check_var(name, "get")
        value = np.array(self._pull(name))
        if name in self.prepared.formats:  # fixed point: stored integers -> real values
            value = to_real(value, self.prepared.formats[name][0])
        if value.ndim == 2 and self.network.batch_size == 1:
            value = value[0]
        return value

    def set(self, name: str, value) -> None:
        """Overwrite var ``name`` with a scalar or an array of its shape; on bad
        input the state is left unchanged."""
        self._check_var(name, "set")
        current = self.state[name]
        array = np.asarray(value, dtype=np.float64)
        if not np.all(np.isfinite(array)):
            raise ValueError(f"set {name!r}: values must be finite")
        try:
            new = np.broadcast_to(array, current.shape)
        except ValueError:
            raise ValueError(f"set {name!r}: shape {array.shape} does not fit {current.shape}") from None
        if name in self.prepared.formats:
            new = to_fixed(new, self.prepared.formats[name][0], f"set {name!r}")
        elif np.issubdtype(current.dtype, np.integer) and np.any(new != np.round(new)):
            raise ValueError(f"set {name!r}: int var needs integer values")
        if self.prepared.state[name] is current:  # shared: keep the initial value for reset
            self.prepared.state[name] = current.copy()
        current[...] = new.astype(current.dtype)  # in place: backends may hold pointers
        self._push(name)

    def custom_update(self, group: str) -> None:
        """Run the custom updates of ``group`` (in declaration order)."""
        updates = [cu for cu in self.network.custom_updates if cu.group == group]
        if not updates:
            groups = sorted({cu.group for cu in self.network.custom_updates})
            raise KeyError(f"no custom update group {group!r} (groups: {groups})")
        for cu in updates:
            self._custom_update(cu)

    def reset(self, seed: int | None = None) -> None:
        """Back to the initial state at t = 0, recordings cleared. Random streams
        continue (each run draws fresh numbers) unless ``seed`` is given: then
        initial values are redrawn with that seed and the counter restarts."""
        if seed is not None:
            self.seed = seed
            self.prepared = prepare(self.network, seed)
            self.rng_step = 0
            self.state = self._live_state()
            self._rebuild()
        else:
            for key, value in self.prepared.state.items():
                if self.state[key] is value:  # shared and never set: unchanged
                    continue
                self.state[key][...] = value
                self._push(key)
                if key in self._shared:       # equal again: share again, drop the copy
                    self.prepared.state[key] = self.state[key]
        self.step = 0
        self._reset_buffers()
        self._clear_recordings()

    def connectivity(self, proj: str) -> tuple[np.ndarray, np.ndarray]:
        """(pre, post) index arrays of every synapse of projection ``proj``, in CSR order;
        ``post`` is a read-only view (backends may run on that very array)."""
        projection = self.network.projection(proj)
        syn = self.prepared.synapses.get(proj)
        if syn is None:
            from .prepare import stream

            pre = self.network.population(projection.pre)
            post = self.network.population(projection.post)
            syn = projection.connectivity.materialise(
                stream(self.seed, proj, "connectivity"), pre.size, post.size, pre is post)
        post = syn.post.view()
        post.flags.writeable = False
        return syn.pre, post

    # helpers for backends -------------------------------------------------------
    def _steps(self, steps, duration_ms) -> int:
        if (steps is None) == (duration_ms is None):
            raise ValueError("run: give exactly one of steps= or duration_ms=")
        if duration_ms is not None:
            if not np.isfinite(duration_ms) or duration_ms < 0:
                raise ValueError(f"run: duration_ms must be >= 0, got {duration_ms}")
            return int(round(duration_ms / self.network.dt))
        if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
            raise ValueError(f"run: steps must be an int >= 0, got {steps!r}")
        return int(steps)

    def _check_var(self, name: str, what: str) -> None:
        if name not in self.state:
            node = name.split(".")[0]
            known = sorted(k for k in self.state if k.startswith(node + "."))
            raise KeyError(f"{what}: unknown var {name!r}" + (
                f" (vars of {node!r}: {known})" if known else f" (no node named {node!r})"))

    def _clear_recordings(self):
        empty = (np.zeros(0, dtype=np.int64),) * 3
        self._spike_log = {p: [empty] for p in self.record_spikes}
        self._var_log = {v: [] for v in self.record_vars}
        self._var_steps = []

    def _record_spikes(self, pop: str, step: int, counts: np.ndarray) -> None:
        """counts: (batch, n) events of ``pop`` at ``step``."""
        if pop in self._spike_log:
            b, i = np.nonzero(counts)
            k = counts[b, i].astype(np.int64)
            self._spike_log[pop].append((np.full(k.sum(), step, dtype=np.int64),
                                         np.repeat(i, k), np.repeat(b, k)))

    def _record_spike_block(self, pop: str, first_step: int, counts: np.ndarray,
                            nonzero=None) -> None:
        """counts: (steps, batch, n) events of ``pop`` in the steps from ``first_step``;
        ``nonzero``: its np.nonzero if the caller has it already."""
        rows, batch, ids = nonzero_events(counts) if nonzero is None else nonzero
        k = counts[rows, batch, ids].astype(np.int64)
        self._spike_log[pop].append((np.repeat(rows + first_step, k), np.repeat(ids, k),
                                     np.repeat(batch, k)))

    def _record_var_block(self, first_step: int, values: dict) -> None:
        """values: var -> (steps, ...) recorded at the end of each step."""
        if self.record_vars:
            steps = len(next(iter(values.values())))
            self._var_steps.extend(range(first_step, first_step + steps))
            for name in self.record_vars:
                block = self._real(name, values[name])
                if block.ndim == 3 and self.network.batch_size == 1:
                    block = block[:, 0]
                self._var_log[name].extend(np.array(block))

    def _record_vars(self, step: int) -> None:
        """Record the current values as the end of ``step``."""
        self._record_var_block(step, {n: self._pull(n)[None] for n in self.record_vars})

    def _real(self, name: str, raw: np.ndarray) -> np.ndarray:
        fmt = self.prepared.formats.get(name)
        return raw if fmt is None else to_real(raw, fmt[0])

    def _live_state(self) -> dict:
        """The arrays the simulation runs on: copies of the initial values, except
        for ``_shared_vars``, whose initial array is used itself until ``set``
        changes the var (then the initial value is copied first, for ``reset``)."""
        self._shared = {k for k in self._shared_vars()
                        if self.prepared.state[k].flags.c_contiguous}
        return {k: v if k in self._shared else np.array(v, order="C")
                for k, v in self.prepared.state.items()}

    def _shared_vars(self) -> set[str]:
        """Vars that this backend never changes while running (only ``set`` and
        ``reset`` write them), so that their live and initial arrays can be one:
        none unless a backend says so."""
        return set()

    def _pull(self, name: str) -> np.ndarray:
        return self.state[name]

    def _push(self, name: str) -> None:
        pass

    def _rebuild(self) -> None:
        """Reseeded: ``self.prepared``/``self.state`` are new (sizes may differ)."""

    def _reset_buffers(self) -> None:
        raise NotImplementedError

    def _advance(self, n: int) -> None:
        raise NotImplementedError

    def _custom_update(self, cu) -> None:
        raise NotImplementedError


def nonzero_events(counts: np.ndarray):
    """np.nonzero of a mostly-zero count array (uint8: 8 counts at a time)."""
    flat = np.ascontiguousarray(counts).reshape(-1)
    if flat.dtype.itemsize != 1:
        return np.unravel_index(np.flatnonzero(flat), counts.shape)
    whole = len(flat) // 8 * 8
    words = np.flatnonzero(flat[:whole].view(np.uint64)) if whole else np.zeros(0, np.int64)
    candidates = (words[:, None] * 8 + np.arange(8)).ravel()
    candidates = np.concatenate([candidates, np.arange(whole, len(flat))])
    hits = candidates[flat[candidates] != 0].astype(np.int64)
    return np.unravel_index(hits, counts.shape)
