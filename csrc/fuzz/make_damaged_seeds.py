"""Write damaged copies of a compiled-program seed into the fuzz corpus (csrc/fuzz/corpus/damaged-*).

    python csrc/fuzz/make_damaged_seeds.py      # from the repository root; the standard library only

A program file gets damaged the way files do: cut short (at an instruction
boundary or inside one), an instruction lost or repeated, a byte flipped in
an opcode word, a token word or a field. The assembler refuses such a prog.s
(`.contents`, ISA.md "Program integrity"), but the C core must survive any
word stream, so the same damage applied to the compiled CNN window
`cnn-tiny-00000` (written by make_corpus.py) gives the fuzzer seeds that
start in the decoder's and the scheduler's error paths: deadlocks from a
lost signal, unknown opcodes, fields out of range, a partial last
instruction. Deterministic: the same base seed gives the same files.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

CORPUS = Path(__file__).with_name("corpus")
BASE = "cnn-tiny-00000"
HEADER_BYTES = 42  # fuzz_sim.c's input header
INSN_BYTES = 80  # WORDS_PER_INSN (20) little-endian uint32 words


def damaged(seed: bytes) -> dict[str, bytes]:
    head, body = seed[:HEADER_BYTES], seed[HEADER_BYTES:]
    n = len(body) // INSN_BYTES
    assert n >= 8 and len(body) % INSN_BYTES == 0, "the base seed holds whole instructions"
    insns = [body[i * INSN_BYTES:(i + 1) * INSN_BYTES] for i in range(n)]
    mid = n // 2

    def flip(index: int, byte: int, mask: int = 0x10) -> bytes:
        b = bytearray(body)
        b[index * INSN_BYTES + byte] ^= mask
        return head + bytes(b)

    return {
        "damaged-cut-at-insn": head + b"".join(insns[:mid]),
        "damaged-cut-mid-insn": head + b"".join(insns[:mid]) + insns[mid][:INSN_BYTES // 2 + 3],
        "damaged-insn-lost": head + b"".join(insns[:mid] + insns[mid + 1:]),
        "damaged-first-insn-lost": head + b"".join(insns[1:]),
        "damaged-insn-repeated": head + b"".join(insns[:mid + 1] + insns[mid:]),
        "damaged-opcode-flipped": flip(mid, 0, 0x04),
        "damaged-reserved-flipped": flip(mid, 1, 0x01),
        "damaged-tokens-flipped": flip(mid, 4, 0x01),
        "damaged-field-flipped": flip(mid, 8 + 3, 0x80),  # the sign byte of the first field
        "damaged-last-byte-lost": seed[:-1],
    }


def main() -> int:
    seeds = damaged((CORPUS / BASE).read_bytes())
    for name, blob in sorted(seeds.items()):
        (CORPUS / name).write_bytes(blob)
    digest = hashlib.sha256(b"".join(seeds[k] for k in sorted(seeds))).hexdigest()[:16]
    print(f"wrote {len(seeds)} damaged seeds from {BASE} into {CORPUS} (digest {digest})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
