"""Board profiles, loaded from the data files ``boards/*.json`` (each cites the
data sheet its resource counts come from).

``bram_18k`` counts 18 Kb block RAMs (a 36 Kb block is two), ``uram`` 288 Kb
UltraRAM blocks; ``usable`` is the share of the device left to the
accelerator (1 on Zynq boards; less on Alveo, whose platform shell occupies
part of the device). ``flow`` is ``"zynq"`` (Vivado block design with the
processing system ``ps``; the accelerator's m_axi bundles go to ``hp_ports``,
its control to ``axi_gp``; PYNQ loads .bit + .hwh) or ``"alveo"`` (``v++``
links the kernel against ``platform`` into an .xclbin; XRT loads it).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

BRAM_18K_BYTES = 18 * 1024 // 8  # 2304 bytes (without parity bits)
URAM_BYTES = 288 * 1024 // 8  # 36864 bytes
DIR = Path(__file__).parent / "boards"


@dataclass(frozen=True)
class Board:
    name: str
    part: str
    family: str
    flow: str  # "zynq" | "alveo"
    bram_18k: int
    uram: int
    dsp: int
    lut: int
    ff: int
    clock_mhz: float
    ps: str | None
    platform: str | None
    hp_ports: tuple[str, ...]
    axi_gp: tuple[str, ...]
    usable: float = 1.0
    board_part: str | None = None
    description: str = ""
    sources: tuple[str, ...] = ()

    def __post_init__(self):
        if self.flow not in ("zynq", "alveo"):
            raise ValueError(f"board {self.name!r}: flow must be 'zynq' or 'alveo', got "
                             f"{self.flow!r}")
        if self.flow == "zynq" and not self.ps:
            raise ValueError(f"board {self.name!r}: a zynq board needs its processing system 'ps'")
        if self.flow == "alveo" and not self.platform:
            raise ValueError(f"board {self.name!r}: an alveo board needs its 'platform'")
        for field in ("bram_18k", "uram", "dsp", "lut", "ff"):
            if getattr(self, field) < 0:
                raise ValueError(f"board {self.name!r}: {field} must be >= 0")
        if not 0 < self.usable <= 1:
            raise ValueError(f"board {self.name!r}: usable must be in (0, 1]")

    @property
    def bram_bytes(self) -> int:
        return self.bram_18k * BRAM_18K_BYTES

    @property
    def uram_bytes(self) -> int:
        return self.uram * URAM_BYTES

    def available(self) -> dict[str, int]:
        """Resources the accelerator may use (device counts x ``usable``)."""
        return {k: int(getattr(self, k) * self.usable) for k in ("bram_18k", "uram", "dsp",
                                                                  "lut", "ff")}


def load(path: Path) -> Board:
    data = json.loads(Path(path).read_text())
    for key in ("hp_ports", "axi_gp", "sources"):
        data[key] = tuple(data.get(key, ()))
    try:
        return Board(**data)
    except TypeError as error:
        raise ValueError(f"board file {path}: {error}") from None


BOARDS: dict[str, Board] = {b.name: b for b in map(load, sorted(DIR.glob("*.json")))}


def board(name_or_board) -> Board:
    """A Board by name (``BOARDS``), or the Board itself."""
    if isinstance(name_or_board, Board):
        return name_or_board
    if name_or_board not in BOARDS:
        raise ValueError(f"unknown board {name_or_board!r}; known boards: {', '.join(BOARDS)}")
    return BOARDS[name_or_board]
