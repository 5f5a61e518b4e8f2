"""The C-style emitter shared by the cpu, cuda and fpga backends: a renderer of
the model language with dialect tables (render.py), per-element blocks
(elements.py), the phase skeletons (kernels.py, custom.py) and the
translation unit (program.py) over a buffer layout (layout.py)."""

from pathlib import Path

INCLUDE_DIR = Path(__file__).parent
