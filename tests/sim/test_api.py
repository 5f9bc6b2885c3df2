"""npuc.sim.load / Simulator: many inputs per call (the first sample timed, the rest replayed on
threads) give exactly what one full run per input gives; cycles do not depend on the data."""

from pathlib import Path

import numpy as np
import pytest

import npuc.sim
from npuc.hw import HwConfig
from npuc.isa.load import load_program
from npuc.sim.core import SimError, replay_words, run_words
from npuc.sim.driver import initial_dram, run_program

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
PROGRAMS = ["tiny_cnn-default.s", "se_block-default.s"]


def _inputs(sim: npuc.sim.Simulator, batch: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {t.name: rng.uniform(-3, 3, (batch * t.shape[0], *t.shape[1:])).astype(np.float32)
            for t in sim.image.inputs()}


@pytest.mark.parametrize("name", PROGRAMS)
def test_a_batch_of_100_is_100_single_runs(name):
    sim = npuc.sim.load(GOLDEN / name, cache=False, threads=2)
    xs = _inputs(sim, 100, seed=1)
    batch = sim.run(xs)
    assert len(batch.stats) == 100
    for b in range(100):
        one = npuc.sim.load(GOLDEN / name, cache=False).run({k: v[b:b + 1] for k, v in xs.items()})
        for k in one.raw:
            np.testing.assert_array_equal(batch.raw[k][b:b + 1], one.raw[k], err_msg=f"sample {b}, output {k}")
        assert batch.stats[b] == one.stats[0]


@pytest.mark.parametrize("name", PROGRAMS)
def test_cycles_do_not_depend_on_the_data(name):
    """Two full runs on different inputs (and an all-zero one): the same counters and the same start
    and end cycle of every instruction, but other outputs."""
    runs = [npuc.sim.load(GOLDEN / name, cache=False).run(_inputs(npuc.sim.load(GOLDEN / name, cache=False), 1, seed))
            for seed in (2, 3)]
    zero = {t.name: np.zeros(t.shape, np.float32) for t in load_program(GOLDEN / name, cache=False).inputs()}
    runs.append(run_program(load_program(GOLDEN / name, cache=False), zero))
    first = runs[0]
    assert any(not np.array_equal(first.raw[k], runs[1].raw[k]) for k in first.raw)
    for r in runs[1:]:
        assert r.stats == first.stats
        np.testing.assert_array_equal(r.insn_start, first.insn_start)
        np.testing.assert_array_equal(r.insn_end, first.insn_end)


def test_a_loaded_program_replays_later_calls():
    """The second call replays its only sample: same outputs as the first call on the same input."""
    sim = npuc.sim.load(GOLDEN / PROGRAMS[0], cache=False)
    x = _inputs(sim, 1, seed=4)
    a, b = sim.run(x), sim.run(x)
    assert a.stats == b.stats
    for k in a.raw:
        np.testing.assert_array_equal(a.raw[k], b.raw[k])
    assert b.layers == a.layers


def test_replay_equals_the_timed_run_in_the_c_core():
    image = load_program(GOLDEN / PROGRAMS[1], cache=False)
    hw = HwConfig.from_flat(image.hw)
    dram = initial_dram(image)
    timed = run_words(image.words, dram, hw, trace=False, order=True)
    assert timed.order is not None and sorted(timed.order.tolist()) == list(range(image.n_insns))
    other = dram.copy()
    stats = replay_words(image.words, timed.order, other, hw)
    np.testing.assert_array_equal(other, timed.dram)
    assert stats.macs == timed.stats.macs and stats.insns == timed.stats.insns and stats.cycles == 0


def test_replay_rejects_an_order_outside_the_program():
    image = load_program(GOLDEN / PROGRAMS[0], cache=False)
    dram = initial_dram(image)
    with pytest.raises(SimError, match="outside the"):
        replay_words(image.words, np.array([image.n_insns], np.uint32), dram, HwConfig.from_flat(image.hw))


def test_one_array_feeds_the_only_input():
    sim = npuc.sim.load(GOLDEN / PROGRAMS[0], cache=False)
    (name, x), = _inputs(sim, 2, seed=5).items()
    a, b = sim.run(x), sim.run({name: x})
    for k in a.raw:
        np.testing.assert_array_equal(a.raw[k], b.raw[k])
