"""The ``fpga`` dialect of the C-style emitter: HLS C++ (Vitis HLS; builds with g++).

Spellings: the prelude is the project's HLS library header (hls/sf_hls.h, which
includes the one Philox, backends/cstyle/philox.h, and replaces the OpenMP
helpers by their one-"thread" forms); ``restrict`` is C++'s ``__restrict``.

Loop pragmas (:func:`annotate`), added to the phase bodies the shared emitter
renders:

* every loop whose bounds are not both integer literals gets
  ``#pragma HLS LOOP_TRIPCOUNT min=0 max=<bound>`` (bound from the network:
  row/column lengths, population sizes, event caps); HLS needs it only for
  reports, so a bound is an upper estimate, never a correctness condition;
* innermost loops get ``#pragma HLS PIPELINE II=1`` (unless they call the
  float ``sf_poisson``, whose own loop cannot unroll);
* loops named in ``independent`` (the neuron update loop, where iteration i
  touches element i of every array only: the premise of the cpu backend's
  barrier-free OpenMP split) get ``DEPENDENCE ... type=inter dependent=false``
  for each array they touch; nowhere else (deliveries in a CSR row may repeat
  a target, so those loops keep their dependences).
"""

from __future__ import annotations

import re

from spikeforge.backends.cstyle.render import Dialect


class FpgaDialect(Dialect):
    name = "fpga"
    prelude = '#include "sf_hls.h"'
    restrict = "__restrict"
    fn_qualifier = "static inline"
    pipeline = "#pragma HLS PIPELINE II=1"
    tripcount = "#pragma HLS LOOP_TRIPCOUNT min=0 max={max}"
    dependence = "#pragma HLS DEPENDENCE variable={var} type=inter dependent=false"


LOOP = re.compile(r"^(\s*)(for|while) \(")
FOR = re.compile(r"for \((?:const )?\w+ (\w+) = ([^;]+); \1 < ([^;]+);")
LITERAL = re.compile(r"^\(?-?\d+(?:LL|U|ULL)?\)?$")
WORD = re.compile(r"[A-Za-z_]\w*")


def _header_end(line: str, start: int) -> int:
    """Index just past the ')' closing the loop header that opens at ``start``."""
    depth = 0
    for k in range(start, len(line)):
        depth += {"(": 1, ")": -1}.get(line[k], 0)
        if depth == 0 and line[k] == ")":
            return k + 1
    raise ValueError(f"unbalanced loop header: {line!r}")


def braced(lines: list[str]) -> list[str]:
    """Rewrite one-line loops ``for (...) stmt;`` as ``for (...) {`` stmt ``}``."""
    out = []
    for line in lines:
        m = LOOP.match(line)
        if not m:
            out.append(line)
            continue
        end = _header_end(line, line.index("(", m.end() - 1))
        rest = line[end:].strip()
        if rest == "{":
            out.append(line)
        else:
            out += [line[:end] + " {", m.group(1) + "    " + rest, m.group(1) + "}"]
    return out


def _close(lines: list[str], at: int) -> int:
    depth = 0
    for k in range(at, len(lines)):
        depth += lines[k].count("{") - lines[k].count("}")
        if depth == 0:
            return k
    return len(lines) - 1


def bounded(header: str) -> bool:
    m = FOR.search(header)
    return bool(m) and bool(LITERAL.match(m.group(2).strip())) and bool(
        LITERAL.match(m.group(3).strip()))


def loop_var(header: str) -> str:
    m = FOR.search(header)
    if m:
        return m.group(1)
    cond = header[header.index("(") + 1:]
    return WORD.search(cond).group(0)


def annotate(lines: list[str], trips: dict, default: int, dialect=FpgaDialect,
             independent: dict | None = None) -> list[str]:
    """Add LOOP_TRIPCOUNT / PIPELINE / DEPENDENCE pragmas (see the module doc).
    ``trips`` maps a loop variable (or ``"<var><<bound>"`` for a specific bound
    expression) to its maximum trip count; ``independent`` maps a loop variable
    to the arrays whose inter-iteration dependences are provably absent."""
    lines = braced(lines)
    starts = [k for k, line in enumerate(lines) if LOOP.match(line)]
    inserts: dict[int, list[str]] = {}
    for k in starts:
        close = _close(lines, k)
        inner = not any(k < j <= close for j in starts)
        pad = LOOP.match(lines[k]).group(1) + "    "
        var = loop_var(lines[k])
        m = FOR.search(lines[k])
        key = f"{var}<{m.group(3).strip()}" if m else var
        pragmas = []
        if not bounded(lines[k]):
            trip = trips.get(key, trips.get(var, default))
            pragmas.append(dialect.tripcount.format(max=max(int(trip), 1)))
        body = "\n".join(lines[k:close + 1])
        if inner and "sf_poisson(" not in body:
            pragmas.append(dialect.pipeline)
            claims = independent or {}
            for array in claims.get(key, claims.get(var, ())):
                if re.search(rf"\b{array}\[", body):
                    pragmas.append(dialect.dependence.format(var=array))
        inserts[k] = [pad + p for p in pragmas]
    out = []
    for k, line in enumerate(lines):
        out.append(line)
        out += inserts.get(k, [])
    return out
