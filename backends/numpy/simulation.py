"""The NumPy reference simulation: the executable definition of one timestep.

Step n (t = n dt), in this order (DESIGN.md, docs/semantics.md):
1. inputs: every population's ``i_syn`` and extra inputs start at 0, current
   sources add their current;
2. presynaptic propagation: spikes of step n-1-d (d: axonal delay) run
   ``pre_spike`` per synapse, once per event; ``deliver`` adds to this step's
   input, ``deliver_delayed(x, k)`` to step n+k's (k clipped to [0, max]);
3. spikes of step n-1 of the postsynaptic population run ``post_spike``;
4. ``synapse_dynamics`` for every synapse;
5. postsynaptic models turn this step's input into current;
6. neuron update (sim, threshold/events, reset), then weight-update trace
   dynamics and, for spiking neurons, spike-trace code;
7. custom updates declared ``every_step``.
"""

from __future__ import annotations

import numpy as np

from spikeforge.network import Population
from spikeforge.prepare import stream
from spikeforge.simulation import Simulation

from . import synapses as S
from spikeforge import fixed as F

from .fixed import FIXED, FixedKernelEvaluator
from .kernels import MAX_EVENTS, Counters, KernelEvaluator


class NumpySimulation(Simulation):
    backend = "numpy"

    def __init__(self, network, record_spikes=None, record_vars=()):
        super().__init__(network, record_spikes, record_vars)
        self.fmt = self.prepared.fixed  # compute format, None in floating point
        self.work_dtype = FIXED if self.fmt is not None else self.prepared.dtype
        self._columns = {}
        self._reset_buffers()

    # buffers --------------------------------------------------------------------
    def _rebuild(self):
        self._columns = {}

    def _reset_buffers(self):
        net, batch = self.network, self.network.batch_size
        depth = {p.name: 1 for p in net.populations}
        for proj in net.projections:
            depth[proj.pre] = max(depth[proj.pre], proj.delay + 1)
        self.spike_ring = {p.name: np.zeros((depth[p.name], batch, p.size), dtype=np.int32)
                           for p in net.populations}
        leader = net.postsynaptic_leader  # fused projections share their leader's ring
        self.input_ring = {
            proj.name: np.zeros((net.ring_depth(proj.name), batch,
                                 net.population(proj.post).size), dtype=self.work_dtype)
            for proj in net.projections if leader[proj.name] == proj.name}
        for proj in net.projections:
            self.input_ring[proj.name] = self.input_ring[leader[proj.name]]
        self.ssa_next = {name: offsets[:-1].copy()
                         for name, (offsets, _) in self.prepared.spike_steps.items()}

    def spikes_at(self, pop: str, step: int) -> np.ndarray:
        """Event counts (batch, n) of ``pop`` at ``step`` (zeros before t = 0)."""
        ring = self.spike_ring[pop]
        if step < 0:
            return np.zeros_like(ring[0])
        return ring[step % len(ring)]

    # environments ----------------------------------------------------------------
    def constant(self, value: float):
        """A real constant in the compute representation (rounded once)."""
        if self.fmt is None:
            return self.prepared.dtype(value)
        return FIXED(F.to_fixed(value, self.fmt, "constant"))

    def scalars(self, node: str) -> dict:
        env = {k: self.constant(v) for k, v in self.prepared.params[node].items()}
        t = self.step * self.network.dt
        if self.fmt is None:
            env["t"] = self.prepared.dtype(t)
        else:  # t is rounded once and wraps like any value
            env["t"] = FIXED(F.wrap(np.rint(t * 2.0**self.fmt.frac), self.fmt.bits))
        env.update(dt=self.constant(self.network.dt), step=np.int32(self.step))
        return env

    def load(self, key: str, raw):
        """Stored values -> the compute representation."""
        fmt = self.prepared.formats.get(key)
        return raw if fmt is None else F.load(raw, fmt[0], self.fmt)

    def encode(self, key: str, value):
        """Compute representation -> stored values (format, wrap or saturation)."""
        dtype = self.state[key].dtype
        fmt = self.prepared.formats.get(key)
        return np.asarray(value).astype(dtype) if fmt is None else F.store(
            value, self.fmt, *fmt).astype(dtype)

    def wrapped(self, value):
        return value if self.fmt is None else F.wrap(value, self.fmt.bits)

    def var_view(self, key: str) -> np.ndarray:
        value = self.load(key, self.state[key])
        return value[None, :] if value.ndim == 1 else value

    def evaluator(self, node: str, field: str, env: dict, c1, c2, batch, on_deliver=None):
        counters = Counters(stream(self.seed, node, field), self.rng_step, c1, c2, batch)
        if self.fmt is None:
            return KernelEvaluator(env, self.prepared.dtype, {}, counters, on_deliver)
        constants = {**self.prepared.params.get(node, {}), **self.prepared.ps_params.get(
            node, {}), "dt": self.network.dt}
        return FixedKernelEvaluator(env, self.fmt, {}, counters, on_deliver, constants)

    def neuron_counters(self, n: int):
        return np.arange(n)[None, :], 0, np.arange(self.network.batch_size)[:, None]

    def run_code(self, node, field, tree, env, counters, mask=None, on_deliver=None):
        evaluator = self.evaluator(node, field, env, *counters, on_deliver)
        evaluator.types.update(self._types_of(evaluator, env))
        evaluator.run(tree, mask)
        return evaluator

    def eval_expr(self, node, field, tree, env, counters):
        evaluator = self.evaluator(node, field, env, *counters)
        return evaluator.evaluate(tree)

    @staticmethod
    def _types_of(evaluator, env):
        return {key: evaluator.kind_of(value) for key, value in env.items()}

    # the step ---------------------------------------------------------------------
    def _advance(self, n: int) -> None:
        for _ in range(n):
            self._step()

    def _step(self):
        net = self.network
        inputs = self._phase_inputs()
        for proj in net.projections:
            self._phase_presynaptic(proj, inputs)
        for proj in net.projections:
            self._phase_postsynaptic_spikes(proj, inputs)
        for proj in net.projections:
            self._phase_synapse_dynamics(proj, inputs)
        for proj in net.projections:
            self._phase_postsynaptic_model(proj, inputs)
        for pop in net.populations:
            self._phase_neurons(pop, inputs)
        for cu in net.custom_updates:
            if cu.every_step:
                self._custom_update(cu)
        self._record_vars(self.step)
        self.step += 1
        self.rng_step += 1

    def _phase_inputs(self) -> dict:
        net, batch = self.network, self.network.batch_size
        inputs = {}
        for pop in net.populations:
            for name in ("i_syn", *pop.model.inputs):
                inputs[(pop.name, name)] = np.zeros((batch, pop.size), dtype=self.work_dtype)
        for source in net.current_sources:
            pop = net.population(source.target)
            env = {**self.scalars(source.name), **self._own_vars(source.name, source.model.vars)}
            env["batch"] = np.arange(batch, dtype=np.int32)[:, None]
            counters = self.neuron_counters(pop.size)
            model = source.model
            self._run_and_store(source.name, "code", model.parsed["code"], env, counters,
                                model.vars)
            current = self.eval_expr(source.name, "current", model.parsed["current"], env, counters)
            inputs[(pop.name, "i_syn")] = self.wrapped(inputs[(pop.name, "i_syn")] + current)
        return inputs

    def _own_vars(self, owner: str, variables) -> dict:
        return {v.name: self.var_view(f"{owner}.{v.name}") for v in variables}

    def _store_vars(self, owner: str, variables, env: dict):
        for var in variables:
            key = f"{owner}.{var.name}"
            value = np.broadcast_to(env[var.name], self.var_view(key).shape)
            self.state[key] = self.encode(key, value.reshape(self.state[key].shape))

    def _run_and_store(self, owner, field, tree, env, counters, variables, mask=None):
        if tree:
            self.run_code(owner, field, tree, env, counters, mask)
            self._store_vars(owner, variables, env)

    # phase 2-4 -------------------------------------------------------------------
    def _delivery(self, proj, inputs, es: S.ElementSet):
        pre_pop = self.network.population(proj.pre)
        ring = self.input_ring[proj.name]

        def on_deliver(func, value, delay, mask):
            shape = es.shape
            value = np.broadcast_to(value, shape)
            if mask is not None:
                value = np.where(mask, value, 0)
            b = np.broadcast_to(es.b, shape)
            if func == "deliver_pre":
                target = inputs[(pre_pop.name, proj.weight_update.pre_target)]
                np.add.at(target, (b, np.broadcast_to(es.row, shape)), value)
                return
            slot = (self.step + np.clip(np.broadcast_to(delay, shape), 0,
                                        proj.max_dendritic_delay)) % len(ring)
            np.add.at(ring, (slot, b, np.broadcast_to(es.post, shape)), value)

        return on_deliver

    def _run_synapse_code(self, proj, field, es: S.ElementSet, inputs):
        env = S.synapse_env(self, proj, es)
        counters = (es.row, es.pos, es.b)
        self.run_code(proj.name, field, proj.weight_update.parsed[field], env, counters,
                      on_deliver=self._delivery(proj, inputs, es))
        S.write_synapse_vars(self, proj, es, env, proj.written_synapse_vars())

    def _phase_presynaptic(self, proj, inputs):
        if not proj.weight_update.parsed["pre_spike"]:
            return
        counts = self.spikes_at(proj.pre, self.step - 1 - proj.delay)
        pre, post = self.network.population(proj.pre), self.network.population(proj.post)
        for b, rows in S.spiking_rounds(counts):
            if proj.connectivity.procedural:
                es = S.procedural_events(proj, S.connectivity_stream(self, proj), b, rows,
                                         pre.size, post.size, pre is post)
            else:
                es = S.row_events(self.prepared.synapses[proj.name], b, rows)
            self._run_synapse_code(proj, "pre_spike", es, inputs)

    def _phase_postsynaptic_spikes(self, proj, inputs):
        if not proj.weight_update.parsed["post_spike"]:
            return
        syn = self.prepared.synapses[proj.name]
        if proj.name not in self._columns:
            self._columns[proj.name] = S.column_index(syn)
        counts = self.spikes_at(proj.post, self.step - 1)
        for b, cols in S.spiking_rounds(counts):
            es = S.column_events(syn, self._columns[proj.name], b, cols)
            self._run_synapse_code(proj, "post_spike", es, inputs)

    def _phase_synapse_dynamics(self, proj, inputs):
        if proj.weight_update.parsed["synapse_dynamics"]:
            es = S.all_synapses(self.prepared.synapses[proj.name], self.network.batch_size)
            self._run_synapse_code(proj, "synapse_dynamics", es, inputs)

    # phase 5 ----------------------------------------------------------------------
    def _phase_postsynaptic_model(self, proj, inputs):
        """Once per ring: a fused projection's input is its leader's."""
        if self.network.postsynaptic_leader[proj.name] != proj.name:
            return
        ps, post = proj.postsynaptic, self.network.population(proj.post)
        ring = self.input_ring[proj.name]
        slot = self.step % len(ring)
        env = {**self.scalars(proj.name), **self._post_neuron_vars(post)}
        env.update({k: self.constant(v) for k, v in self.prepared.ps_params[proj.name].items()})
        env.update(self._own_vars(proj.name, ps.vars))
        env["inp"] = self.wrapped(ring[slot].copy())
        env["batch"] = np.arange(self.network.batch_size, dtype=np.int32)[:, None]
        counters = self.neuron_counters(post.size)
        self._run_and_store(proj.name, "code", ps.parsed["code"], env, counters, ps.vars)
        current = self.eval_expr(proj.name, "current", ps.parsed["current"], env, counters)
        key = (post.name, proj.target)
        inputs[key] = self.wrapped(inputs[key] + current)
        ring[slot] = 0

    def _post_neuron_vars(self, pop, suffix="_post"):
        return {v.name + suffix: self.var_view(f"{pop.name}.{v.name}") for v in pop.model.vars}

    # phase 6 ----------------------------------------------------------------------
    def _phase_neurons(self, pop: Population, inputs):
        model = pop.model
        env = {**self.scalars(pop.name), **self._own_vars(pop.name, model.vars)}
        env["i_syn"] = self.wrapped(inputs[(pop.name, "i_syn")])
        env.update({name: self.wrapped(inputs[(pop.name, name)]) for name in model.inputs})
        env["batch"] = np.arange(self.network.batch_size, dtype=np.int32)[:, None]
        counters = self.neuron_counters(pop.size)
        self._run_and_store(pop.name, "sim", model.parsed["sim"], env, counters, model.vars)
        counts = self._spike_counts(pop, env, counters)
        self._run_and_store(pop.name, "reset", model.parsed["reset"], env, counters, model.vars,
                            counts > 0)
        self._trace_updates(pop, counts)
        ring = self.spike_ring[pop.name]
        ring[self.step % len(ring)] = counts
        self._record_spikes(pop.name, self.step, counts)

    def _spike_counts(self, pop, env, counters) -> np.ndarray:
        model, shape = pop.model, (self.network.batch_size, pop.size)
        if model.native == "spike_source_array":
            return self._ssa_counts(pop)
        if model.parsed["threshold"] is not None:
            fired = self.eval_expr(pop.name, "threshold", model.parsed["threshold"], env, counters)
            return np.broadcast_to(fired, shape).astype(np.int32)
        if model.parsed["events"] is not None:
            k = self.eval_expr(pop.name, "events", model.parsed["events"], env, counters)
            return np.clip(np.broadcast_to(k, shape), 0, MAX_EVENTS).astype(np.int32)
        return np.zeros(shape, dtype=np.int32)

    def _ssa_counts(self, pop) -> np.ndarray:
        offsets, steps = self.prepared.spike_steps[pop.name]
        nxt, end = self.ssa_next[pop.name], offsets[1:]
        counts = np.zeros(len(nxt), dtype=np.int32)
        if len(steps) == 0:
            return counts.reshape(self.network.batch_size, pop.size)
        while True:
            live = nxt < end
            stale = live & (steps[np.minimum(nxt, len(steps) - 1)] < self.step)
            now = live & (steps[np.minimum(nxt, len(steps) - 1)] == self.step)
            if not (stale.any() or now.any()):
                break
            counts += now
            nxt += stale | now
        return np.minimum(counts, MAX_EVENTS).reshape(self.network.batch_size, pop.size)

    def _trace_updates(self, pop, counts):
        for proj in self.network.projections:
            wu = proj.weight_update
            for side, variables in (("pre", wu.pre_vars), ("post", wu.post_vars)):
                if getattr(proj, side) != pop.name:
                    continue
                env = {**self.scalars(proj.name), **self._own_vars(proj.name, variables)}
                env.update(self._post_neuron_vars(pop, f"_{side}"))
                env["batch"] = np.arange(self.network.batch_size, dtype=np.int32)[:, None]
                counters = self.neuron_counters(pop.size)
                self._run_and_store(proj.name, f"{side}_dynamics", wu.parsed[f"{side}_dynamics"],
                                    env, counters, variables)
                self._run_and_store(proj.name, f"{side}_spike_trace",
                                    wu.parsed[f"{side}_spike_trace"], env, counters, variables,
                                    counts > 0)

    # phase 7 / host ---------------------------------------------------------------
    def _custom_update(self, cu) -> None:
        from .custom import run_custom_update

        run_custom_update(self, cu)
