"""The ``cpu`` dialect of the C-style emitter: plain C11 (OpenMP pragmas come
from the skeleton when the compiler supports them)."""

from spikeforge.backends.cstyle.render import Dialect


class CpuDialect(Dialect):
    name = "cpu"
    runtime_params = True  # one library per network structure (see Dialect)
    fuse_phases = True  # one barrier per step where the network allows (see Dialect)
    split_rings = True  # near/far input rings where the delays allow (see Dialect)
    split_sorted_rows = True  # threads deliver their part of ascending rows (see Dialect)
    prefetch_distance = 64  # ring entries prefetched 64 synapses ahead (see Dialect)
    ring_offsets = True  # stored ring offsets per synapse where allowed (see Dialect)
    defer_block = 32  # deferred synapse dynamics in blocks of 32 steps (see Dialect)
