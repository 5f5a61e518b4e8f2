"""``spikeforge codegen MODEL.json --backend cpu --out DIR``: write the generated
sources of a network for inspection, without compiling or running them.

For ``cpu`` the directory gets ``network.c`` (the whole translation unit),
``philox.h`` (the shared RNG header it includes) and ``build.sh`` with the
compile command the backend uses.
"""

from __future__ import annotations

import shlex
import shutil
from pathlib import Path

from spikeforge.prepare import prepare

GENERATORS = {}


def _cpu_sources(network, out: Path) -> list[Path]:
    from spikeforge.backends.cpu import runtime
    from spikeforge.backends.cpu.dialect import CpuDialect
    from spikeforge.backends.cstyle import INCLUDE_DIR
    from spikeforge.backends.cstyle.program import Program

    spiking = [p.name for p in network.populations if p.model.spiking]
    source = Program(prepare(network), CpuDialect(), spiking).render()
    files = [out / "network.c", out / "philox.h", out / "build.sh"]
    files[0].write_text(source)
    shutil.copyfile(INCLUDE_DIR / "philox.h", files[1])
    flags = " ".join(shlex.quote(f) for f in runtime.BASE_FLAGS)
    files[2].write_text("#!/bin/sh\n# the cpu backend's compile command (-march=native and -fopenmp when "
                        f"supported)\ncc -O3 {flags} -march=native -fopenmp -I. network.c -o network.so -lm\n")
    files[2].chmod(0o755)
    return files


GENERATORS["cpu"] = _cpu_sources


def _cuda_sources(network, out: Path) -> list[Path]:
    """network.cu (every kernel), philox.h and build.sh (nvcc for sm_80 and sm_90)."""
    from spikeforge.backends.cstyle import INCLUDE_DIR
    from spikeforge.backends.cuda import compile as cuda_compile

    _, source = cuda_compile.render(network)
    files = [out / "network.cu", out / "philox.h", out / "build.sh"]
    files[0].write_text(source)
    shutil.copyfile(INCLUDE_DIR / "philox.h", files[1])
    flags = " ".join(shlex.quote(f) for f in cuda_compile.FLAGS)
    builds = "".join(f"nvcc {flags} -arch={arch} -I. -cubin -Xptxas -v network.cu -o network_{arch}.cubin\n"
                     for arch in cuda_compile.ARCHS)
    files[2].write_text("#!/bin/sh\n# the cuda backend's kernels for sm_80 and sm_90 (ptxas -v: registers, "
                        f"spills, shared memory)\nset -e\n{builds}")
    files[2].chmod(0o755)
    return files


GENERATORS["cuda"] = _cuda_sources


def report(network, backend: str) -> str:
    """``codegen --report``: per-kernel registers, shared memory, spills and bytes
    moved per step (cuda only)."""
    if backend != "cuda":
        raise ValueError(f"codegen --report: only the cuda backend has a kernel report, not {backend!r}")
    from spikeforge.backends.cuda import compile as cuda_compile

    try:
        return cuda_compile.report_network(network)
    except cuda_compile.NoCudaCompiler as error:
        raise ValueError(f"codegen --report: {error}") from None


def write_sources(network, backend: str, out) -> list[Path]:
    """Render ``network`` for ``backend`` into directory ``out``; returns the files."""
    if backend not in GENERATORS:
        raise ValueError(f"codegen: backend {backend!r} generates no source "
                         f"(backends with sources: {', '.join(sorted(GENERATORS))})")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    return GENERATORS[backend](network, out)
