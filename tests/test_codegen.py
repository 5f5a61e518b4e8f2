"""``spikeforge codegen``: generated sources are written, complete and compile."""

import subprocess

import pytest

from spikeforge.backends.cpu import runtime
from spikeforge.demos import stdp_network
from spikeforge.tools.codegen import write_sources


def test_cpu_sources_are_written_and_build_with_their_script(tmp_path):
    try:
        runtime.compiler()
    except runtime.CompilerNotFound:
        pytest.skip("no C compiler")
    files = write_sources(stdp_network(), "cpu", tmp_path)
    assert [f.name for f in files] == ["network.c", "philox.h", "build.sh"]
    source = files[0].read_text()
    assert '#include "philox.h"' in source and "int32_t sf_run(sf_state *S" in source
    result = subprocess.run(["sh", "build.sh"], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "network.so").exists()


def test_unknown_codegen_backend():
    with pytest.raises(ValueError, match="generates no source.*cpu"):
        write_sources(stdp_network(), "numpy", "unused")


def test_codegen_command(tmp_path, capsys):
    from pathlib import Path

    from spikeforge.cli import main

    model = Path(__file__).parent.parent / "examples" / "stdp.json"
    assert main(["codegen", str(model), "--backend", "cpu", "--out", str(tmp_path)]) == 0
    assert "network.c" in capsys.readouterr().out
    assert "sf_run" in (tmp_path / "network.c").read_text()
    assert main(["codegen", str(model), "--backend", "numpy", "--out", str(tmp_path)]) == 1
