"""Synthesizability check of HLS C++ sources (run on every generated accelerator).

Rules (each violation is reported with the function and line):

* no dynamic allocation: ``malloc calloc realloc free alloca new delete`` and
  no heap containers (``std::vector``, ``std::string``, ``std::map``, ...);
* no recursion: the call graph of the functions defined in the checked text
  (generated source + the HLS library headers) has no cycle;
* no unstructured loops (``goto``); every ``for`` whose start and bound are not
  integer literals (or template constants) and every ``while``/``do`` without a
  ``<name> < <literal>`` conjunct carries ``#pragma HLS LOOP_TRIPCOUNT`` in its
  own body;
* static array sizes: every array declaration's size is an integer literal or a
  template constant;
* only top-level pointer arguments: no pointer-to-pointer, no pointer members
  of structs, no pointer globals, no function pointers, and every pointer
  argument of the top function has an ``INTERFACE m_axi`` pragma.

This is a check of the C++ subset spikeforge emits (a careful regular-expression
scan over comment-free text, not a C++ parser): it guards the generator
against regressions and proves the generated code stays in HLS's subset.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

CONTROL = {"if", "for", "while", "switch", "return", "sizeof", "do", "else"}
ALLOC = re.compile(r"\b(malloc|calloc|realloc|free|alloca)\s*\(|\bnew\b|\bdelete\b|"
                   r"std::(vector|string|map|unordered_map|list|deque|set|unique_ptr|shared_ptr)")
FUNC = re.compile(r'(?:^|\n)[ \t]*(?:extern\s*"[^"]*"\s+)?' r"(?:template\s*<[^>]*>\s*)?"
                  r"(?:static\s+)?(?:inline\s+)?[A-Za-z_][\w:<>, ]*?[\s\*]+"
                  r"(\w+)\s*\(([^;{}]*)\)\s*\{")
LOOP = re.compile(r"\b(for|while)\s*\(|\bdo\s*\{")
FOR = re.compile(r"for\s*\((?:const\s+)?[\w ]+?\s(\w+)\s*=\s*([^;]+);\s*\1\s*<\s*([^;]+);")
LITERAL = re.compile(r"^\(?-?\d+(?:LL|U|ULL|L)?\)?$")
ARRAY = re.compile(r"(?:^|[;{}\n])\s*(?:static\s+)?(?:const\s+)?[A-Za-z_]\w*\s+(\w+)\s*"
                   r"\[([^\]]*)\]")
TEMPLATE = re.compile(r"template\s*<([^>]*)>")


class NotSynthesizable(ValueError):
    """A source violates the HLS subset; ``problems`` lists every violation."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("generated HLS source is not synthesizable:\n  " + "\n  ".join(problems))


@dataclass(frozen=True)
class Function:
    name: str
    params: str
    start: int  # offset of the body's '{'
    end: int  # offset of the matching '}'


def strip_comments(text: str) -> str:
    """Remove comments and string literals (keeping line breaks and #pragma lines)."""
    text = re.sub(r"/\*.*?\*/", lambda m: "\n" * m.group(0).count("\n"), text, flags=re.DOTALL)
    text = re.sub(r"//[^\n]*", "", text)
    return re.sub(r'"(?:\\.|[^"\\\n])*"', '""', text)


def match_brace(text: str, at: int) -> int:
    depth = 0
    for k in range(at, len(text)):
        if text[k] == "{":
            depth += 1
        elif text[k] == "}":
            depth -= 1
            if depth == 0:
                return k
    raise NotSynthesizable([f"unbalanced braces after offset {at}"])


def functions(text: str) -> list[Function]:
    out, pos = [], 0
    while True:
        m = FUNC.search(text, pos)
        if m is None:
            return out
        if m.group(1) in CONTROL:
            pos = m.end()
            continue
        start = m.end() - 1
        end = match_brace(text, start)
        out.append(Function(m.group(1), m.group(2), start, end))
        pos = end + 1


def line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def check_alloc(text: str) -> list[str]:
    return [f"line {line_of(text, m.start())}: dynamic allocation '{m.group(0).strip()}'"
            for m in ALLOC.finditer(text)]


def check_recursion(text: str, funcs: list[Function]) -> list[str]:
    names = {f.name for f in funcs}
    calls = {f.name: set() for f in funcs}
    for f in funcs:
        body = text[f.start:f.end]
        calls[f.name] |= {c for c in re.findall(r"\b(\w+)\s*(?:<[^<>;]*>)?\s*\(", body)
                          if c in names}
    problems, state = [], {}

    def visit(name, path):
        state[name] = "open"
        for callee in sorted(calls.get(name, ())):
            if state.get(callee) == "open":
                cycle = path[path.index(callee):] + [callee]
                problems.append("recursion: " + " -> ".join(cycle))
            elif callee not in state:
                visit(callee, path + [callee])
        state[name] = "done"

    for name in sorted(calls):
        if name not in state:
            visit(name, [name])
    return problems


def loop_bounded(header: str, constants: set) -> bool:
    m = FOR.search(header)
    if m:
        ok = lambda s: bool(LITERAL.match(s.strip())) or s.strip() in constants
        return ok(m.group(2)) and ok(m.group(3))
    cond = header[header.find("(") + 1:]
    return any(re.fullmatch(r"\s*\(?\s*\w+\s*<\s*-?\d+\s*\)?\s*", part)
               for part in re.split(r"&&|\)\s*$", cond) if part.strip())


def check_loops(text: str, constants: set) -> list[str]:
    problems = [f"line {line_of(text, m.start())}: goto (unstructured loop)"
                for m in re.finditer(r"\bgoto\b", text)]
    for m in LOOP.finditer(text):
        if m.group(0).startswith("do"):
            brace = m.end() - 1
            end = match_brace(text, brace)
            tail = text[end:end + 200]
            header = tail[tail.find("while"):tail.find(";")]
        else:
            close = _paren_end(text, m.end() - 1)
            header = text[m.start():close]
            brace = close + len(text[close:]) - len(text[close:].lstrip())
            if text[brace:brace + 1] != "{":
                if not loop_bounded(header, constants):
                    problems.append(f"line {line_of(text, m.start())}: loop without braces "
                                    f"and without a constant bound: {header.strip()}")
                continue
            end = match_brace(text, brace)
        if loop_bounded(header, constants):
            continue
        body = text[brace + 1:end]
        nested = LOOP.search(body)
        own = body[:nested.start()] if nested else body
        if "#pragma HLS LOOP_TRIPCOUNT" not in own:
            problems.append(f"line {line_of(text, m.start())}: loop with a variable bound "
                            f"and no LOOP_TRIPCOUNT: {header.strip()}")
    return problems


def _paren_end(text: str, at: int) -> int:
    depth = 0
    for k in range(at, len(text)):
        depth += {"(": 1, ")": -1}.get(text[k], 0)
        if depth == 0:
            return k + 1
    raise NotSynthesizable([f"unbalanced parentheses after offset {at}"])


def check_arrays(text: str, constants: set) -> list[str]:
    out = []
    for m in ARRAY.finditer(text):
        size = m.group(2).strip()
        if not (LITERAL.match(size) or size in constants):
            out.append(f"line {line_of(text, m.start(1))}: array {m.group(1)!r} has a "
                       f"non-static size [{size or ''}]")
    return out


def check_pointers(text: str, funcs: list[Function], top: str) -> list[str]:
    out = [f"line {line_of(text, m.start())}: pointer to pointer '{m.group(0)}'"
           for m in re.finditer(r"\w\s*\*\s*\*+\s*\w", text) if not _in_expression(text, m)]
    out += [f"line {line_of(text, m.start())}: function pointer" for m in
            re.finditer(r"\(\s*\*\s*\w+\s*\)\s*\(", text)]
    for m in re.finditer(r"\b(struct|union|class)\b[^{;]*\{([^}]*)\}", text):
        if "*" in m.group(2):
            out.append(f"line {line_of(text, m.start())}: pointer member in {m.group(1)}")
    depth_zero = _top_level(text, funcs)
    for m in re.finditer(r"^[ \t]*(?:static\s+)?(?:const\s+)?\w+\s*\*\s*(?:const\s+)?(\w+)\s*[=;]",
                         depth_zero, flags=re.MULTILINE):
        out.append(f"line {line_of(depth_zero, m.start())}: global pointer {m.group(1)!r}")
    tops = [f for f in funcs if f.name == top]
    if not tops:
        return out + [f"no top function {top!r}"]
    body = text[tops[0].start:tops[0].end]
    for name in re.findall(r"\*\s*(\w+)\s*(?:,|$)", tops[0].params):
        if not re.search(rf"#pragma HLS INTERFACE m_axi port={name}\b", body):
            out.append(f"top argument {name!r}: pointer without an INTERFACE m_axi pragma")
    return out


def _in_expression(text: str, m) -> bool:
    """a * *b in an expression (multiplication by a dereference) is not a type."""
    return bool(re.match(r"\w+\s*\*\s*\*\s*\w", m.group(0))) and "=" in \
        text[text.rfind("\n", 0, m.start()):m.start()]


def _top_level(text: str, funcs: list[Function]) -> str:
    """The text outside every function body (bodies blanked, lines kept)."""
    chars = list(text)
    for f in funcs:
        for k in range(f.start, f.end + 1):
            if chars[k] != "\n":
                chars[k] = " "
    return "".join(chars)


def problems(source: str, top: str = "sf_top", headers: dict | None = None) -> list[str]:
    """Every violation in ``source`` plus ``headers`` ({name: text}, e.g. the HLS
    library's, checked as if included)."""
    out = []
    for name, text in [("<generated>", source), *sorted((headers or {}).items())]:
        clean = strip_comments(text)
        constants = {p.split()[-1] for t in TEMPLATE.findall(clean) for p in t.split(",")
                     if p.split()}
        funcs = functions(clean)
        found = (check_alloc(clean) + check_recursion(clean, funcs) +
                 check_loops(clean, constants) + check_arrays(clean, constants))
        if name == "<generated>":
            found += check_pointers(clean, funcs, top)
        out += [f"{name}: {p}" for p in found]
    return out


def check(source: str, top: str = "sf_top", headers: dict | None = None) -> None:
    """Raise NotSynthesizable listing every violation."""
    found = problems(source, top, headers)
    if found:
        raise NotSynthesizable(found)
