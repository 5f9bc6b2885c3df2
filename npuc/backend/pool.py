"""Pooling on the vector unit.

MaxPool is exact in int8: the input window is loaded with -128 padding (the
identity of max) and reduced by one `vmax` per output row and kernel tap.
GlobalAveragePool sums each channel with `vsum` into int32, adds the folded
zero-point correction with `vaddv` and divides by the pixel count inside `vrq`
through the reciprocal multiplier the quantizer chose.
GlobalMaxPool loads chunks of pixel rows and halves them with `vmax` (a
reduction tree: log2(pixels) instructions, pixels·ceil(C/L) lane cycles) to
one row, the running maximum of the chunks; exact on int8.
AveragePool runs on the array as a depthwise convolution (`conv_ops.py`).
"""

from __future__ import annotations

import numpy as np

from ..ir import AccQ
from ..isa.arith import ROUNDING_BY_NAME
from .conv import ConvGeom, _clip, _largest, _spans
from .emit import SPAD_ALIGN, BackendError, Buf, Emitter, SlotCache, align_up

INT8_MIN = -128


def maxpool_window_fits(g: ConvGeom, spad_bytes: int) -> bool:
    """Whether one output pixel's window of one channel, and its output, fit the scratchpad twice."""
    ih, iw = g.box(1, 1)
    return 2 * align_up(ih * iw, SPAD_ALIGN) + 2 * align_up(1, SPAD_ALIGN) <= spad_bytes


def lower_maxpool(em: Emitter, g: ConvGeom, x: Buf, y: Buf, what: str) -> None:
    def slot(n: int) -> int:
        return align_up(n, SPAD_ALIGN)

    def fits(th: int, tw: int, cc: int) -> bool:
        ih, iw = g.box(th, tw)
        return 2 * slot(ih * iw * cc) + 2 * slot(th * tw * cc) <= em.spad.capacity

    cc = _largest(lambda c: fits(1, 1, c), g.cin) if fits(1, 1, 1) else 0
    if cc == 0:
        raise BackendError(f"{what}: a {g.kh}x{g.kw} window does not fit the scratchpad")
    if fits(1, g.ow, cc):
        th, tw = _largest(lambda t: fits(t, g.ow, cc), g.oh), g.ow
    else:
        th, tw = 1, _largest(lambda t: fits(1, t, cc), g.ow)
    ih_max, iw_max = g.box(th, tw)
    in_cache = SlotCache([em.spad.take(ih_max * iw_max * cc, what) for _ in range(2)])
    out_slots = [em.spad.take(th * tw * cc, what) for _ in range(2)]
    n_out = 0
    for r0, th_i in _spans(g.oh, th):
        for c0, tw_i in _spans(g.ow, tw):
            ih, iw = g.box(th_i, tw_i)
            for k0, cci in _spans(g.cin, cc):
                box, _ = in_cache.get((r0, c0, k0))
                top, left = r0 * g.sh - g.pt, c0 * g.sw - g.pl
                pt, n0, pb = _clip(top, ih, g.h)
                pl, n1, pr = _clip(left, iw, g.w)
                src = x.at(top + pt, left + pl, k0) if n0 and n1 else 0
                em.emit("ld", dst=box, src=src, n0=n0, n1=n1, n2=cci, ss0=x.rs, ss1=x.ps,
                        ds0=iw * cci, ds1=cci, pt=pt, pb=pb, pl=pl, pr=pr, fill=INT8_MIN)
                out = out_slots[n_out % 2]
                n_out += 1
                for i in range(th_i):
                    row = out + i * tw_i * cci
                    for t, (ki, kj) in enumerate((a, b) for a in range(g.kh) for b in range(g.kw)):
                        tap = box + ((i * g.sh + ki * g.dh) * iw + kj * g.dw) * cci
                        a, a_s = (tap, g.sw * cci) if t == 0 else (row, cci)
                        em.emit("vmax", dst=row, a=a, b=tap, m=tw_i, n=cci, ds=cci, **{"as": a_s},
                                bs=g.sw * cci)
                em.emit("st", dst=y.at(r0, c0, k0), src=out, n0=th_i, n1=tw_i,
                        n2=cci, ds0=y.rs, ds1=y.ps, ss0=tw_i * cci, ss1=cci)


def lower_global_avgpool(em: Emitter, x: Buf, y: Buf, qop: AccQ, what: str) -> None:
    c, pixels = x.c, x.h * x.w
    cc = min(c, max(1, em.acc.capacity // 4 - 16))
    par = np.concatenate([qop.bias, qop.mul, qop.shift]).astype("<i4")
    par_addr = em.add_data(par)
    pix, in_cache, out_slots = _pixel_slots(em, pixels, cc, what)
    par_slot = em.acc.take(3 * cc, what)
    acc = em.acc.take(cc, what)
    rnd = int(ROUNDING_BY_NAME[qop.rounding])
    for n, (k0, cci) in enumerate(_spans(c, cc)):
        em.emit("lda", dst=par_slot, src=par_addr + 4 * k0, n0=3, n1=cci, ss0=4 * c, ds0=cci)
        for p, (p0, npx) in enumerate(_spans(pixels, pix)):
            box, _ = in_cache.get((k0, p0))
            _load_pixels(em, x, box, p0, npx, k0, cci)
            em.emit("vsum", dst=acc, src=box, m=npx, n=cci, ss=cci, acc=0 if p == 0 else 1)
        out = out_slots[n % 2]
        em.emit("vaddv", dst=acc, src=acc, vec=par_slot, m=1, n=cci)
        em.emit("vrq", dst=out, src=acc, mul=par_slot + cci, sh=par_slot + 2 * cci, m=1, n=cci,
                zp=qop.zp_out, lo=qop.lo, hi=qop.hi, rnd=rnd)
        em.emit("st", dst=y.addr + k0, src=out, n0=1, n1=1, n2=cci)


def _pixel_slots(em: Emitter, pixels: int, cc: int, what: str) -> tuple[int, SlotCache, list[int]]:
    """A global pool's scratchpad: the most pixels a chunk of cc channels may hold so that two input
    slots (double buffering) and two one-row output slots fit; returns (pixels, inputs, outputs)."""
    room = em.spad.capacity - 2 * align_up(cc, SPAD_ALIGN) - 2 * SPAD_ALIGN
    pix = min(pixels, max(0, room // (2 * cc)))
    if pix == 0:
        raise BackendError(f"{what}: {cc} channels do not fit the scratchpad")
    in_cache = SlotCache([em.spad.take(pix * cc, what) for _ in range(2)])
    return pix, in_cache, [em.spad.take(cc, what) for _ in range(2)]


def _load_pixels(em: Emitter, x: Buf, dst: int, p0: int, npx: int, k0: int, cc: int) -> None:
    """DMA pixels [p0, p0 + npx) (row-major) x channels [k0, k0 + cc) of view `x` as dense rows of cc
    bytes: one `ld` when the pixels follow each other at one stride, else one per image row."""
    if x.rows_dense:
        em.emit("ld", dst=dst, src=x.addr + p0 * x.ps + k0, n0=1, n1=npx, n2=cc, ss1=x.ps, ds1=cc)
        return
    p = p0
    while p < p0 + npx:
        r, c = divmod(p, x.w)
        n = min(x.w - c, p0 + npx - p)
        em.emit("ld", dst=dst + (p - p0) * cc, src=x.at(r, c, k0), n0=1, n1=n, n2=cc, ss1=x.ps, ds1=cc)
        p += n


def lower_global_maxpool(em: Emitter, x: Buf, y: Buf, what: str) -> None:
    """Per channel chunk: each pixel chunk halved by `vmax` down to one row, folded into the result row."""
    c, pixels = x.c, x.h * x.w
    cc = min(c, max(1, em.spad.capacity // 8))
    pix, in_cache, out_slots = _pixel_slots(em, pixels, cc, what)
    for n, (k0, cci) in enumerate(_spans(c, cc)):
        out = out_slots[n % 2]
        for p, (p0, npx) in enumerate(_spans(pixels, pix)):
            box, _ = in_cache.get((k0, p0))
            _load_pixels(em, x, box, p0, npx, k0, cci)
            rows = npx
            while rows > 1:  # rows [0, half) take the max with rows [rows - half, rows)
                half = rows // 2
                em.emit("vmax", dst=box, a=box, b=box + (rows - half) * cci, m=half, n=cci, ds=cci,
                        **{"as": cci}, bs=cci)
                rows -= half
            # the first chunk's row is copied (max with itself), later ones folded in
            em.emit("vmax", dst=out, a=box if p == 0 else out, b=box, m=1, n=cci, ds=cci, **{"as": cci}, bs=cci)
        em.emit("st", dst=y.addr + k0, src=out, n0=1, n1=1, n2=cci)
