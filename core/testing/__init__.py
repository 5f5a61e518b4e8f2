"""Hypothesis strategies for random, valid spikeforge networks (``spikeforge.testing``).

Every backend is tested against the NumPy reference on networks drawn here::

    from hypothesis import given
    from spikeforge.testing import describe, networks

    @given(networks(max_populations=2))
    def test_cpu_matches_numpy(net):
        ...  # build on both backends, compare; put describe(net) in failure messages

:func:`networks` draws a frozen :class:`spikeforge.Network` covering every
built-in neuron, postsynaptic, weight-update and current-source model, random
user models (:func:`user_neuron_models`, :func:`user_weight_update_models`,
:func:`user_postsynaptic_models`), every connectivity kind (stored and
procedural), every initialiser and ``Values`` arrays of each legal shape,
axonal and dendritic delays, batching, extra inputs (``target=`` and
``deliver_pre``) and custom updates (reductions over the batch or the neurons,
follow-ups reading them, ``every_step`` ones). :func:`features` lists what a
network exercises; :func:`describe` prints it. :func:`register_profiles`
registers the "ci" and "thorough" hypothesis profiles.

Design rules:

* choices are ordered simplest first (1 population, size 1, LIF, Dense,
  StaticPulse, Delta, Constant, no delay, batch 1), so failures shrink to small
  readable networks;
* inputs are scaled per target neuron model (``networks.NEURONS[...].scale``:
  weights and DC amplitudes in [-scale/2, scale]), so neurons spike sometimes
  and stay finite; user-model state is clipped to [-4, 4] and divisions are by
  ``1 + abs(x)`` (fixed point: by a param in [0.1, 2]), so user code cannot
  overflow in hundreds of steps;
* arrays (``Values``, ``Sparse`` CSR, spike times) come from a drawn integer
  seed through ``numpy.random.default_rng``, keeping hypothesis' buffer small;
* the IR's rules hold by construction: no code writing shared vars when
  batch_size > 1, procedural connectivity only for models whose only synapse
  code is a non-writing ``pre_spike``, never with arrays or custom updates;
  Conv2D and AvgPool2D only for read-only kernels and matching sizes; OneToOne only for equal
  sizes; ``deliver_delayed`` only with ``max_dendritic_delay > 0``;
* with a ``Fixed`` precision, user code avoids transcendental functions outside
  derived params and divides only by params (DESIGN.md, Numerics).

hypothesis is needed only by this package (``pip install 'spikeforge[test]'``).
"""

from __future__ import annotations

try:
    from hypothesis import settings
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("spikeforge.testing needs hypothesis: "
                      "pip install 'spikeforge[test]'") from exc

from .describe import describe, features
from .models import (expressions, user_neuron_models, user_postsynaptic_models,
                     user_weight_update_models)
from .networks import avgpool2d_geometries, conv2d_geometries, networks


def register_profiles() -> None:
    """Register hypothesis profiles "ci" (25 derandomized examples, no deadline) and
    "thorough" (500 random examples, no deadline), and load "ci" unless a profile
    was chosen already (e.g. by pytest's ``--hypothesis-profile``)."""
    settings.register_profile("ci", max_examples=25, derandomize=True, deadline=None,
                              print_blob=True)
    settings.register_profile("thorough", max_examples=500, deadline=None, print_blob=True)
    if settings.get_current_profile_name() == "default":
        settings.load_profile("ci")


__all__ = ["avgpool2d_geometries", "conv2d_geometries", "describe", "expressions", "features",
           "networks", "register_profiles", "user_neuron_models", "user_postsynaptic_models",
           "user_weight_update_models"]
