"""The schedule choices the code generator makes, each one a switch (all on by default).

They exist so that each choice can be measured against its absence (bench/cycles.py --ablate):
the cycles a choice saves are what the hardware does with a better schedule, not a property of
the hardware, and a hardware team comparing designs should know which part of a figure is which.
"""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass(frozen=True)
class Schedule:
    pack_taps: bool = True  # small Cin: kernel taps packed into the reduction rows (row buffers)
    resident_weights: bool = True  # weights kept in the scratchpad across output tiles where they fit
    max_tile_pixels: int = 0  # cap on an output tile's pixels (0: as large as the SRAM allows)
    fuse_adds: bool = True  # a Conv's output tiles go through the Add that alone reads them, on chip
    keep_on_chip: bool = True  # a Conv's output stays in the scratchpad for the Conv that alone reads it
    alternate_halves: bool = True  # consecutive layers in alternate halves of SPAD and ACC (overlap)

    def __post_init__(self) -> None:
        if isinstance(self.max_tile_pixels, bool) or not isinstance(self.max_tile_pixels, int) or \
                self.max_tile_pixels < 0:
            raise ValueError(f"max_tile_pixels = {self.max_tile_pixels!r}: must be a non-negative integer")

    def without(self, name: str) -> Schedule:
        """This schedule with one choice switched off (`max_tile_pixels`: tiles of one output row's
        pixels at most, taken as 64)."""
        if name not in {f.name for f in fields(self)}:
            raise ValueError(f"no schedule choice {name!r}")
        value = 64 if name == "max_tile_pixels" else False
        return Schedule(**{**self.__dict__, name: value})


DEFAULT = Schedule()
