"""Compile generated CUDA for real GPUs (nvcc, or NVRTC + ptxas) and check it.

``check(program, source, arch)`` compiles ``source`` for ``arch`` (sm_80, sm_90)
and returns a :class:`CompileReport`: per kernel the registers, spills, stack,
static shared memory (from ``ptxas -v``), whether its PTX has double-precision
instructions (``.f64``), and the bytes it moves per step estimated from the
layout. The build fails (:class:`CudaBuildError`) on register spills, on more than
48 KB static shared memory, and on any ``.f64`` instruction in a float32 model.
Results are cached under ``$SPIKEFORGE_CACHE_DIR/cuda`` by a hash of the source,
philox.h, the compiler version, flags and architecture.

Byte estimates (documented in docs/cuda.md): element kernels touch every element
of the buffers they use once per step (one slot of ring buffers); event kernels
move ``bytes_per_event`` per spiking source (mean row length x bytes per synapse),
and their per-step figure assumes ASSUMED_RATE_HZ.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from spikeforge.backends.cpu.runtime import cache_dir
from spikeforge.backends.cstyle import INCLUDE_DIR

from .program import ASSUMED_RATE_HZ

ARCHS = ("sm_80", "sm_90")
FLAGS = ("-std=c++17", "--fmad=false", "-diag-suppress", "177,550")  # unused helper / local
RTC_FLAGS = ("-std=c++17", "--fmad=false")  # NVRTC (and CuPy's RawModule)
MAX_STATIC_SMEM = 48 * 1024
EVENT_KINDS = ("presynaptic", "post_spike")


class CudaBuildError(RuntimeError):
    """A kernel spills, uses > 48 KB static shared memory, double precision in a
    float32 model, or does not compile."""


class NoCudaCompiler(RuntimeError):
    pass


@dataclass
class KernelReport:
    name: str
    kind: str
    node: str
    registers: int = 0
    stack: int = 0
    spill_stores: int = 0
    spill_loads: int = 0
    smem: int = 0
    f64: int = 0  # double-precision PTX instructions
    bytes_per_step: int = 0
    bytes_per_event: int = 0


@dataclass
class CompileReport:
    arch: str
    compiler: str
    precision: str
    kernels: list = field(default_factory=list)

    def problems(self) -> list[str]:
        out = []
        for k in self.kernels:
            if k.spill_stores or k.spill_loads:
                out.append(f"{k.name}: register spills ({k.spill_stores} B stores, "
                           f"{k.spill_loads} B loads) on {self.arch}")
            if k.smem > MAX_STATIC_SMEM:
                out.append(f"{k.name}: {k.smem} B static shared memory > 48 KB on {self.arch}")
            if k.f64 and self.precision == "float32":
                out.append(f"{k.name}: {k.f64} double-precision (.f64) PTX instructions in a "
                           "float32 model")
        return out


# compilers --------------------------------------------------------------------------
def nvcc() -> str | None:
    for candidate in (os.environ.get("NVCC"), shutil.which("nvcc"), "/usr/local/cuda/bin/nvcc"):
        if candidate and Path(candidate).exists():
            return candidate
    return None


def nvrtc_library():
    """ctypes handle of libnvrtc ($SPIKEFORGE_NVRTC, the nvidia-cuda-nvrtc wheel, the
    system library, or the CUDA toolkit's), or None."""
    candidates = [os.environ.get("SPIKEFORGE_NVRTC")]
    try:
        import nvidia.cuda_nvrtc as wheel

        candidates += sorted(str(p) for d in wheel.__path__ for p in Path(d, "lib").glob(
            "libnvrtc.so*") if ".alt." not in p.name)
    except ImportError:
        pass
    candidates += [ctypes.util.find_library("nvrtc"), "/usr/local/cuda/lib64/libnvrtc.so"]
    for candidate in candidates:
        if candidate:
            try:
                return ctypes.CDLL(candidate)
            except OSError:
                continue
    return None


def compiler(prefer: str | None = None) -> str:
    """'nvcc' or 'nvrtc' (registers then come from the toolkit's ptxas when present).
    ``prefer`` picks one when both are installed."""
    have = [k for k, ok in (("nvcc", nvcc() is not None), ("nvrtc", nvrtc_library() is not None))
            if ok]
    if not have:
        raise NoCudaCompiler("no CUDA compiler: neither nvcc (CUDA toolkit) nor NVRTC "
                             "(pip install nvidia-cuda-nvrtc-cu12, or cupy) is installed")
    return prefer if prefer in have else have[0]


@functools.cache
def compiler_version(kind: str) -> str:
    if kind == "nvcc":
        out = subprocess.run([nvcc(), "--version"], capture_output=True, text=True, check=False)
        return out.stdout.strip().splitlines()[-1] if out.stdout else "nvcc"
    major, minor = ctypes.c_int(), ctypes.c_int()
    nvrtc_library().nvrtcVersion(ctypes.byref(major), ctypes.byref(minor))
    return f"nvrtc {major.value}.{minor.value}"


def _run_nvcc(source: str, arch: str) -> tuple[str, str]:
    """(ptxas -v output, PTX text) of ``source`` for ``arch``: nvcc writes PTX, the
    toolkit's ptxas assembles it (what nvcc -cubin runs) and reports."""
    with tempfile.TemporaryDirectory() as tmp:
        src, ptx = Path(tmp, "network.cu"), Path(tmp, "network.ptx")
        src.write_text(source)
        front = subprocess.run([nvcc(), *FLAGS, f"-arch={arch}", f"-I{INCLUDE_DIR}", "-ptx",
                                str(src), "-o", str(ptx)], capture_output=True, text=True, check=False)
        if front.returncode != 0:
            raise CudaBuildError(f"nvcc failed for {arch}:\n{_errors(front.stderr)}")
        ptxas = Path(nvcc()).with_name("ptxas")
        back = subprocess.run([str(ptxas) if ptxas.exists() else "ptxas", "-v", f"-arch={arch}",
                               str(ptx), "-o", str(Path(tmp, "network.cubin"))],
                              capture_output=True, text=True, check=False)
        if back.returncode != 0:
            raise CudaBuildError(f"ptxas failed for {arch}:\n{_errors(back.stderr)}")
        return back.stderr + back.stdout, ptx.read_text()


def _errors(log: str) -> str:
    """The error lines of a compiler log (all of it when none is marked)."""
    lines = [line for line in log.splitlines() if "error" in line.lower()]
    return "\n".join(lines)[-4000:] if lines else log[-4000:]


def nvrtc_ptx(source: str, arch: str) -> str:
    """PTX of ``source`` from NVRTC (as CuPy's RawModule compiles it: no C library
    headers, philox.h through -I)."""
    lib = nvrtc_library()
    prog = ctypes.c_void_p()
    lib.nvrtcCreateProgram(ctypes.byref(prog), source.encode(), b"network.cu", 0, None, None)
    options = [o.encode() for o in (*RTC_FLAGS, f"--gpu-architecture=compute_{arch[3:]}",
                                    f"-I{INCLUDE_DIR}")]
    try:
        status = lib.nvrtcCompileProgram(prog, len(options), (ctypes.c_char_p * len(options))(
            *options))
        size = ctypes.c_size_t()
        lib.nvrtcGetProgramLogSize(prog, ctypes.byref(size))
        log = ctypes.create_string_buffer(size.value)
        lib.nvrtcGetProgramLog(prog, log)
        if status != 0:
            raise CudaBuildError(f"NVRTC failed for {arch}:\n{_errors(log.value.decode())}")
        lib.nvrtcGetPTXSize(prog, ctypes.byref(size))
        ptx = ctypes.create_string_buffer(size.value)
        lib.nvrtcGetPTX(prog, ptx)
        return ptx.value.decode()
    finally:
        lib.nvrtcDestroyProgram(ctypes.byref(prog))


def _run_nvrtc(source: str, arch: str) -> tuple[str, str]:
    ptx = nvrtc_ptx(source, arch)
    ptxas = shutil.which("ptxas") or (nvcc() and str(Path(nvcc()).with_name("ptxas")))
    if not ptxas or not Path(ptxas).exists():
        return "", ptx  # registers unknown: reported as 0
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "n.ptx").write_text(ptx)
        out = subprocess.run([ptxas, "-v", f"-arch={arch}", str(Path(tmp, "n.ptx")), "-o",
                              str(Path(tmp, "n.cubin"))], capture_output=True, text=True,
                             check=False)
    if out.returncode != 0:
        raise CudaBuildError(f"ptxas failed for {arch}:\n{_errors(out.stderr)}")
    return out.stderr + out.stdout, ptx


# parsing ------------------------------------------------------------------------------
def parse_ptxas(text: str) -> dict[str, dict]:
    """Per kernel: registers, stack, spill_stores, spill_loads, smem (bytes)."""
    out, current = {}, None
    for line in text.splitlines():
        m = re.search(r"Function properties for (\w+)", line) or \
            re.search(r"Compiling entry function '(\w+)'", line)
        if m:
            current = out.setdefault(m.group(1), {})
            continue
        if current is None:
            continue
        m = re.search(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads",
                      line)
        if m:
            current.update(stack=int(m.group(1)), spill_stores=int(m.group(2)),
                           spill_loads=int(m.group(3)))
        m = re.search(r"Used (\d+) registers", line)
        if m:
            current["registers"] = int(m.group(1))
            smem = re.search(r"(\d+) bytes smem", line)
            current["smem"] = int(smem.group(1)) if smem else 0
    return out


def f64_instructions(ptx: str) -> dict[str, int]:
    """Count of instructions with a .f64 type per .entry of a PTX module (declarations
    of .f64 registers are not instructions)."""
    counts, current = {}, None
    for line in ptx.splitlines():
        m = re.search(r"\.entry\s+(\w+)", line)
        if m:
            current = m.group(1)
            counts[current] = 0
            continue
        opcode = line.strip().split(" ")[0].split("\t")[0]
        if current and not opcode.startswith((".", "//")) and re.search(r"\.f64\b", opcode):
            counts[current] += 1
    return counts


# bytes per step ---------------------------------------------------------------------------
def _step_bytes(buf) -> int:
    """Bytes of one step's share of a buffer: one slot of a ring or recording."""
    key = buf.key.split(":")[0]
    if key in ("spikes", "spk_id", "spk_n", "inring", "rec_spikes", "rec_var"):
        return int(buf.dtype.itemsize * np.prod(buf.shape[1:]))
    return int(buf.dtype.itemsize * np.prod(buf.shape))


def _per_synapse(key: str, proj) -> bool:
    kind, _, name = key.partition(":")
    if kind in ("post", "vidx", "colsyn", "pre"):
        return name == proj.name
    return kind == "state" and name.split(".")[0] == proj.name and \
        name.split(".")[1] in {v.name for v in proj.weight_update.vars}


def traffic(program, kernel) -> tuple[int, int]:
    """(bytes per step, bytes per event) of one kernel, estimated from the layout."""
    by_name = {b.cname: b for b in program.buffers}
    used = [by_name[n] for n in kernel.buffers if n in by_name]
    if kernel.kind not in EVENT_KINDS and not (kernel.kind == "postsynaptic"
                                               and "b_colptr_" not in " ".join(kernel.buffers)):
        return sum(_step_bytes(b) for b in used), 0
    net = program.network
    proj = net.projection(kernel.node)
    syn = program.prepared.synapses.get(proj.name)
    side = proj.post if kernel.kind == "post_spike" else proj.pre
    n_side = net.population(side).size
    if syn is not None:
        n_syn = len(syn.post)
        row = n_syn / max(n_side, 1)
        per_syn = sum(b.dtype.itemsize for b in used if _per_synapse(b.key, proj))
    else:  # procedural: targets regenerated, nothing per synapse is read
        row = float(getattr(proj.connectivity, "n", 0) or
                    getattr(proj.connectivity, "p", 0) * net.population(proj.post).size)
        per_syn = 0
    per_event = int(row * (per_syn + 4))  # + one 4-byte atomic into the input ring
    rate = min(1.0, ASSUMED_RATE_HZ * net.dt / 1000.0)
    return int(rate * n_side * program.batch * per_event), per_event


# checking ------------------------------------------------------------------------------------
def _cache_path(source: str, arch: str, kind: str) -> Path:
    digest = hashlib.sha256()
    for part in (source, (INCLUDE_DIR / "philox.h").read_text(), compiler_version(kind),
                 " ".join(FLAGS), arch):
        digest.update(part.encode())
        digest.update(b"\0")
    digest.update(kind.encode())
    path = cache_dir() / "cuda"
    path.mkdir(parents=True, exist_ok=True)
    return path / f"{digest.hexdigest()[:32]}.json"


def compile_info(source: str, arch: str, prefer: str | None = None) -> dict:
    """{"ptxas": {...per kernel}, "f64": {...per kernel}, "compiler": name} (cached)."""
    if arch not in ARCHS:
        raise ValueError(f"cuda backend: arch must be one of {ARCHS}, got {arch!r}")
    kind = compiler(prefer)
    path = _cache_path(source, arch, kind)
    if path.exists():
        return json.loads(path.read_text())
    log, ptx = (_run_nvcc if kind == "nvcc" else _run_nvrtc)(source, arch)
    info = {"ptxas": parse_ptxas(log), "f64": f64_instructions(ptx), "compiler": kind}
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(info))
    os.replace(tmp, path)
    return info


def check(program, source: str, arch: str, fail: bool = True,
          prefer: str | None = None) -> CompileReport:
    """Compile for ``arch`` (with ``prefer`` = "nvcc" or "nvrtc" when both exist) and
    report every kernel; raises CudaBuildError on a problem unless ``fail`` is False."""
    info = compile_info(source, arch, prefer)
    precision = "fixed" if program.fixed is not None else program.precision
    report = CompileReport(arch, f"{info['compiler']} ({compiler_version(info['compiler'])})",
                           precision)
    for kernel in program.kernels:
        stats = info["ptxas"].get(kernel.name, {})
        per_step, per_event = traffic(program, kernel)
        report.kernels.append(KernelReport(kernel.name, kernel.kind, kernel.node, **stats,
                                           f64=info["f64"].get(kernel.name, 0),
                                           bytes_per_step=per_step, bytes_per_event=per_event))
    if fail and report.problems():
        raise CudaBuildError("cuda backend: build rejected:\n  " + "\n  ".join(report.problems()))
    return report


def format_reports(reports: list[CompileReport]) -> str:
    """The table printed by ``spikeforge codegen --backend cuda --report``."""
    lines = []
    for rep in reports:
        lines += [f"{rep.arch} ({rep.compiler}, {rep.precision})",
                  (f"  {'kernel':<16} {'kind':<12} {'node':<14} {'regs':>4} {'spill':>5} "
                   f"{'stack':>5} {'smem':>6} {'f64':>4} {'B/step':>11} {'B/event':>9}")]
        for k in rep.kernels:
            lines.append(f"  {k.name:<16} {k.kind:<12} {k.node[:14]:<14} {k.registers:>4} "
                         f"{k.spill_stores + k.spill_loads:>5} {k.stack:>5} {k.smem:>6} "
                         f"{k.f64:>4} {k.bytes_per_step:>11} {k.bytes_per_event or '':>9}")
        problems = rep.problems()
        lines.append("  problems: " + ("; ".join(problems) if problems else "none"))
    lines.append(f"B/step of event kernels assumes {ASSUMED_RATE_HZ:g} Hz; B/event = bytes "
                 "per spiking source (mean row x bytes per synapse).")
    return "\n".join(lines)


def as_dict(report: CompileReport) -> dict:
    return asdict(report)


def render(network, record_spikes=None, record_vars=(), span=None, block_size=128):
    """(program, source) of ``network`` as the cuda backend builds it (spikes of
    every spiking population recorded unless ``record_spikes`` says otherwise)."""
    from spikeforge.prepare import prepare

    from .program import CudaProgram

    if record_spikes is None:
        record_spikes = [p.name for p in network.populations if p.model.spiking]
    program = CudaProgram(prepare(network), record_spikes, record_vars, span, block_size)
    return program, program.render()


def report_network(network, archs=ARCHS, **options) -> str:
    """The per-kernel report of ``network`` for every arch (problems listed, not raised)."""
    program, source = render(network, **options)
    return format_reports([check(program, source, arch, fail=False) for arch in archs])
