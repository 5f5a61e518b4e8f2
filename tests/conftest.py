"""Shared fixtures: the ``backend`` fixture runs a test once per backend that the
registry (``spikeforge.backends.available()``) reports as runnable here, so a new
backend folder is tested by the whole suite without editing any test.

``probe_model`` is a non-spiking neuron that copies this step's summed input into
its var ``x`` (``x = i_syn``): recording ``x`` shows exactly what a neuron received
in every step (trace values are end-of-step values, index k = step k)."""

from __future__ import annotations

import os

import pytest

import spikeforge as sf
from spikeforge.backends import available
from spikeforge.testing import register_profiles

register_profiles()  # "ci" (default, bounded, derandomised) and "thorough"
# Tests use every thread they ask for, however small the network (the cpu backend
# otherwise gives small networks fewer threads: backends/cpu/simulation.team_size).
os.environ.setdefault("SPIKEFORGE_PARALLEL_GRAIN", "0")

_STATUS = available()
BACKENDS = [status.name for status in _STATUS if status.available]


def pytest_report_header(config):
    return "spikeforge backends: " + "; ".join(str(status) for status in _STATUS)


@pytest.fixture(params=BACKENDS, ids=BACKENDS)
def backend(request) -> str:
    """Name of a runnable backend, for ``net.build(backend=backend)``."""
    return request.param


PROBE = sf.NeuronModel(
    "Probe",
    vars=(sf.Var("x", default=0.0),),
    sim="x = i_syn",
    doc="Test probe: x <- i_syn (this step's summed input), never spikes.",
)


@pytest.fixture
def probe_model() -> sf.NeuronModel:
    return PROBE
