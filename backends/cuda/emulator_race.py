"""Race-check mode of the CUDA emulator: a launch under ThreadSanitizer.

Under ``emulator.race_check()`` a launch does not run in this process. The kernel
text is built a second time with ``-fsanitize=thread -DSF_EMU_TSAN`` (the header
then announces every emulated thread to TSan as a fiber, switching with the
no-synchronisation flag, and creates happens-before only where CUDA does:
``__syncthreads()`` and ``__syncwarp()`` release/acquire a per-block object,
atomics are TSan atomics; each block runs on its own OS thread so shared memory
has a fresh address range per block and blocks are unordered with respect to each
other). A small runner executable, also built with TSan, loads that library, gets
the launch's arrays (every array passed as an argument, whole) and the module's
fetched ``__device__`` globals from a request file, runs the launch, and writes
the arrays and globals back. A TSan report makes the launch raise KernelError
with the report's summary (racing accesses with file:line, and the emulated
threads' names ``block (x,y,z) thread (x,y,z)``).
"""

from __future__ import annotations

import os
import struct
import subprocess
import tempfile
from pathlib import Path

import numpy as np
from spikeforge.backends.cpu.runtime import cache_dir
from spikeforge.backends.cuda import emulator as _emu
from spikeforge.backends.cuda import emulator_build as _build

RACE_EXIT = 66
_RUNNER_SOURCE = r"""
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <string>
#include <vector>
typedef int (*launch_fn)(void *, const uint64_t *, const char *, const uint32_t *, uint64_t, int,
                         uint64_t, const uint64_t *, uint64_t, int64_t *, char *, uint64_t);
static FILE *in, *out;
static uint64_t rd() { uint64_t v = 0; if (fread(&v, 8, 1, in) != 1) exit(90); return v; }
static void rdb(void *p, uint64_t n) { if (n && fread(p, 1, n, in) != n) exit(91); }
static void wr(uint64_t v) { fwrite(&v, 8, 1, out); }
int main(int argc, char **argv)
{
    if (argc != 5) return 92;
    void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!h) { fprintf(stderr, "%s\n", dlerror()); return 93; }
    launch_fn launch = (launch_fn)dlsym(h, "sf_emu_launch");
    void *tramp = dlsym(h, (std::string("sf_emu_tramp_") + argv[2]).c_str());
    if (!launch || !tramp) return 94;
    in = fopen(argv[3], "rb");
    if (!in) return 95;
    uint32_t dims[6];
    for (int i = 0; i < 6; i++) dims[i] = (uint32_t)rd();
    uint64_t shmem = rd(), order = rd(), seed = rd(), nslots = rd();
    std::vector<uint64_t> slots(nslots + 1), sbuf(nslots + 1), soff(nslots + 1);
    for (uint64_t i = 0; i < nslots; i++) slots[i] = rd();
    for (uint64_t i = 0; i < nslots; i++) sbuf[i] = rd();
    for (uint64_t i = 0; i < nslots; i++) soff[i] = rd();
    uint64_t nbuf = rd();
    std::vector<char *> bufs(nbuf);
    std::vector<uint64_t> sizes(nbuf);
    for (uint64_t b = 0; b < nbuf; b++) {
        sizes[b] = rd();
        bufs[b] = (char *)aligned_alloc(256, (sizes[b] + 511) / 256 * 256);
        rdb(bufs[b], sizes[b]);
    }
    uint64_t nglob = rd();
    std::vector<char *> gptr(nglob);
    std::vector<uint64_t> gsize(nglob);
    for (uint64_t g = 0; g < nglob; g++) {
        std::string name(rd(), '\0');
        rdb(&name[0], name.size());
        gsize[g] = rd();
        gptr[g] = (char *)dlsym(h, name.c_str());
        if (!gptr[g]) return 96;
        rdb(gptr[g], gsize[g]);
    }
    fclose(in);
    for (uint64_t i = 0; i < nslots; i++)
        if (sbuf[i] != UINT64_MAX) slots[i] = (uint64_t)(uintptr_t)(bufs[sbuf[i]] + soff[i]);
    int64_t info[3] = {0, 0, 0};
    static char err[8192];
    err[0] = 0;
    int rc = launch(tramp, slots.data(), argv[2], dims, shmem, (int)order, seed, nullptr, 0, info,
                    err, sizeof err);
    out = fopen(argv[4], "wb");
    if (!out) return 97;
    wr((uint64_t)rc);
    wr(strlen(err));
    fwrite(err, 1, strlen(err), out);
    if (rc == 0) { /* after an error, threads were abandoned mid-kernel: send nothing back */
        for (uint64_t b = 0; b < nbuf; b++) fwrite(bufs[b], 1, sizes[b], out);
        for (uint64_t g = 0; g < nglob; g++) fwrite(gptr[g], 1, gsize[g], out);
    }
    fclose(out);
    _Exit(0); /* no destructors: nothing more to check */
}
"""


def runner() -> Path:
    """The TSan-instrumented runner executable (built once, cached)."""
    compiler = _build.cxx()
    flags = ("-std=c++17", "-O1", "-g", "-fsanitize=thread", "-fPIE", "-pie")
    key = _build.library_key(_RUNNER_SOURCE, flags, compiler)
    target = cache_dir() / f"sf_emu_runner_{key}"
    if target.exists():
        return target
    with tempfile.TemporaryDirectory(dir=cache_dir()) as tmp:
        src = Path(tmp, "runner.cpp")
        src.write_text(_RUNNER_SOURCE)
        out = Path(tmp, "runner")
        cmd = [compiler, *flags, str(src), "-o", str(out), "-ldl"]
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise _build.CompileError(f"cuda emulator: building the race-check runner failed "
                                      f"(is libtsan installed?):\n{' '.join(cmd)}\n"
                                      f"{result.stderr[-4000:]}")
        os.replace(out, target)
    return target


def launch(kernel, dims, shared_mem: int, args) -> None:
    """Run one (already marshalled) launch under TSan in a subprocess; copy results back."""
    module = kernel.module
    library = module.tsan_library()
    allocs: dict[int, object] = {}
    slot_buf, slot_off = [], []
    for spec, arg in zip(kernel._specs, args):
        if spec.pointer:
            alloc = arg._alloc
            index = list(allocs).index(id(alloc)) if id(alloc) in allocs else len(allocs)
            allocs.setdefault(id(alloc), alloc)
            slot_buf.append(index)
            slot_off.append(arg._ptr - alloc.ptr)
        else:
            slot_buf.append(2 ** 64 - 1)
            slot_off.append(0)
    module.compile()
    sizes = module.global_sizes() if module._globals else {}
    globs = [(name, ptr, sizes[name]) for name, ptr in module._globals.items() if name in sizes]
    config = _emu._config
    with tempfile.TemporaryDirectory(dir=cache_dir()) as tmp:
        req, resp = Path(tmp, "req.bin"), Path(tmp, "resp.bin")
        nslots = len(kernel._specs)
        parts = [struct.pack("<6Q", *dims),
                 struct.pack("<4Q", shared_mem, _emu._ORDERS[config["order"]], config["seed"],
                             nslots),
                 kernel._slots[:nslots].tobytes(), np.array(slot_buf, np.uint64).tobytes(),
                 np.array(slot_off, np.uint64).tobytes(), struct.pack("<Q", len(allocs))]
        for alloc in allocs.values():
            parts += [struct.pack("<Q", alloc.nbytes), alloc.host.tobytes()]
        parts.append(struct.pack("<Q", len(globs)))
        for name, ptr, size in globs:
            host = np.empty(size, np.uint8)
            _emu.memcpy_dtoh(host, ptr)
            parts += [struct.pack("<Q", len(name)), name.encode(), struct.pack("<Q", size),
                      host.tobytes()]
        req.write_bytes(b"".join(parts))
        env = dict(os.environ, TSAN_OPTIONS=f"halt_on_error=1 exitcode={RACE_EXIT} "
                   "report_signal_unsafe=0 history_size=4 second_deadlock_stack=0")
        result = subprocess.run([str(runner()), str(library), kernel.name, str(req), str(resp)],
                                capture_output=True, text=True, env=env, check=False)
        if result.returncode == RACE_EXIT or "ThreadSanitizer" in result.stderr:
            raise _emu.KernelError(f"kernel '{kernel.name}': race check failed:\n"
                                   f"{_summary(result.stderr)}")
        if result.returncode != 0:
            raise _emu.KernelError(f"kernel '{kernel.name}': race-check run failed (exit "
                                   f"{result.returncode}):\n{result.stderr[-4000:]}")
        _read_back(resp.read_bytes(), kernel, list(allocs.values()), globs)


def _read_back(data: bytes, kernel, allocs, globs) -> None:
    rc, errlen = struct.unpack_from("<2Q", data, 0)
    pos = 16
    message = data[pos:pos + errlen].decode(errors="replace")
    pos += errlen
    if rc:
        raise _emu.KernelError(message)
    for alloc in allocs:
        alloc.host[:] = np.frombuffer(data, np.uint8, alloc.nbytes, pos)
        pos += alloc.nbytes
    for name, ptr, size in globs:
        _emu.memcpy_htod(ptr, np.frombuffer(data, np.uint8, size, pos))
        pos += size


def _summary(stderr: str) -> str:
    """The TSan report without its memory-map noise: the racing accesses (with the
    kernel's file:line) and which emulated threads made them."""
    keep = []
    for line in stderr.splitlines():
        text = line.strip()
        if text.startswith(("WARNING: ThreadSanitizer", "Write of", "Read of", "Previous",
                            "Atomic", "SUMMARY", "Thread T", "#0", "#1", "Location")):
            keep.append(line)
    return "\n".join(keep[:40]) or stderr[-4000:]
