"""`npuc sweep`: the grid, rows equal to plain compile + sim, caches and resume, the Dask executor."""

from __future__ import annotations

import csv
import json
import re
import shutil

import numpy as np
import pytest

from npuc.cli import main
from npuc.examples import DIGITS_CNN, digits
from npuc.hw import load_hw
from npuc.tools.sweep import GridError, SweepRequest, load_grid, run_sweep
from npuc.tools.sweep.results import pareto_front

N_TEST = 48  # test images per point: enough to tell points apart, cheap to simulate


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("sweep-data")
    test = digits("test")
    np.save(d / "x.npy", test.x[:N_TEST])
    np.save(d / "y.npy", test.y[:N_TEST])
    np.save(d / "calib.npy", digits("calib").x[:32])
    return d


def write_grid(path, text):
    path.write_text(text)
    return path


GRID = """
[[point]]
array = { rows = 8, cols = 8 }
[[point]]
array = { rows = 16, cols = 16 }

[quant]
rounding = ["half_even", "truncate"]

[compile]
calib_method = ["minmax", "percentile"]
"""


def request(tmp, data, out="out", **kw):
    grid = write_grid(tmp / "grid.toml", kw.pop("grid", GRID))
    return SweepRequest(DIGITS_CNN, grid, tmp / out, calib=data / "calib.npy", data=data / "x.npy",
                        labels=data / "y.npy", **kw)


# ---- the grid ---------------------------------------------------------------------------------


def test_grid_is_the_cross_product_of_its_axes_times_its_points(tmp_path):
    grid = load_grid(write_grid(tmp_path / "g.toml", GRID + "\n[vector]\nvec_lanes = 8\n"))
    points = grid.points()
    assert len(points) == 2 * 2 * 2
    assert grid.swept_keys == ["array.rows", "array.cols", "quant.rounding", "compile.calib_method"]
    assert all(p.values["vector.vec_lanes"] == 8 for p in points)  # a scalar is fixed everywhere
    assert len({p.key for p in points}) == len(points)
    hw = points[-1].hw(load_hw(None))
    assert (hw.rows, hw.rounding, hw.vec_lanes) == (16, "truncate", 8)


@pytest.mark.parametrize("text,message", [
    ("[array]\nrowz = [8]\n", "unknown hardware field 'array.rowz'"),
    ("[memory]\nrows = [8]\n", "unknown hardware field 'memory.rows'"),
    ("[compile]\ncalib = ['x']\n", "unknown compile option 'compile.calib'"),
    ("[array]\nrows = [8, 0]\n", "array.rows = 0: must be an integer in [1, 1024]"),
    ("[quant]\nrounding = 'up'\n", "quant.rounding = 'up': must be one of"),
    ("[compile]\ncalib_method = ['kl']\n", "compile.calib_method = 'kl': must be one of minmax"),
    ("[compile]\nrules = ['tpu']\n", "compile.rules = 'tpu': must be one of npuc"),
    ("[array]\nrows = []\n", "array.rows is an empty list"),
    ("[array]\nrows = [8]\n[[point]]\narray = { rows = 4 }\n", "array.rows is also an axis"),
    ("[array\n", "not valid TOML"),
])
def test_a_bad_grid_is_one_line_naming_the_key(tmp_path, text, message):
    with pytest.raises(GridError, match=re.escape(message)):
        load_grid(write_grid(tmp_path / "g.toml", text))


def test_cli_refuses_a_bad_grid_before_running(tmp_path, data, capsys):
    grid = write_grid(tmp_path / "g.toml", "[array]\nrows = [8, -1]\n")
    rc = main(["sweep", str(DIGITS_CNN), "--grid", str(grid), "-o", str(tmp_path / "o"),
               "--calib", str(data / "calib.npy")])
    err = capsys.readouterr().err
    assert rc == 1 and err.count("\n") == 1 and "array.rows = -1" in err
    assert not (tmp_path / "o").exists()


def test_pareto_front_of_cycles_and_accuracy_with_sqnr_breaking_ties():
    rows = [{"status": "ok", "cycles": c, "accuracy": a, "sqnr_db": s} for c, a, s in [
        (100, 0.90, 30.0),  # front: fastest
        (200, 0.95, 31.0),  # front
        (200, 0.95, 30.0),  # dominated by the one above (equal accuracy, lower SQNR)
        (300, 0.94, 40.0),  # dominated: slower and less accurate than the second
        (400, 0.99, 20.0),  # front: most accurate
    ]] + [{"status": "failed", "cycles": None, "accuracy": None, "sqnr_db": None}]
    assert pareto_front(rows) == [True, True, False, False, True, False]


# ---- a sweep ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def swept(tmp_path_factory, data):
    tmp = tmp_path_factory.mktemp("sweep")
    req = request(tmp, data)
    return req, run_sweep(req)


def test_results_table_has_the_documented_columns(swept):
    req, result = swept
    with open(req.out_dir / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["array.rows", "array.cols", "quant.rounding", "compile.calib_method", "status", "error",
                             "cycles", "accuracy", "sqnr_db", "dram_bytes", "utilization", "energy_uj", "area_mm2",
                             "pareto"]
    assert len(rows) == 8 and all(r["status"] == "ok" for r in rows)
    assert {r["pareto"] for r in rows} <= {"0", "1"} and any(r["pareto"] == "1" for r in rows)
    assert json.loads((req.out_dir / "results.json").read_text())[0]["cycles"] == int(rows[0]["cycles"])
    assert (req.out_dir / "pareto.png").stat().st_size > 1000 and "Pareto front" in result.summary
    by_array = {(r["array.rows"]): int(r["cycles"]) for r in rows}
    assert by_array["16"] < by_array["8"]  # a bigger array, fewer cycles
    assert result.computed == 8 and result.compiled == 8


@pytest.mark.parametrize("index", [0, 7])
def test_a_row_equals_plain_compile_and_sim(swept, tmp_path, data, capsys, index):
    req, result = swept
    row = result.rows[index]
    grid = load_grid(req.grid)
    point = grid.points()[index]
    hw_file = tmp_path / "hw.toml"
    hw_file.write_text(point.hw(load_hw(None)).to_toml())
    prog, out = tmp_path / "p.s", tmp_path / "out.npz"
    assert main(["compile", str(DIGITS_CNN), "-o", str(prog), "--hw", str(hw_file), "--calib", str(data / "calib.npy"),
                 "--calib-method", point.values["compile.calib_method"]]) == 0
    capsys.readouterr()
    assert main(["sim", str(prog), "--input", str(data / "x.npy"), "-o", str(out)]) == 0
    cycles = int(re.search(r"^cycles: (\d+)", capsys.readouterr().out, re.M).group(1))
    logits = np.load(out)["logits"]
    accuracy = float(np.mean(logits.argmax(1) == np.load(data / "y.npy")))
    assert (row["cycles"], row["accuracy"]) == (cycles, accuracy)


def test_statistics_are_collected_once_per_calibration_method(swept):
    req, _ = swept
    assert len(list((req.out_dir / "cache").glob("stats-*.pkl"))) == 2  # minmax, percentile: not 8


def test_a_rerun_recomputes_nothing_and_a_cut_sweep_resumes(swept, tmp_path, data):
    req, first = swept
    out = tmp_path / "copy"
    shutil.copytree(req.out_dir, out)
    again = run_sweep(SweepRequest(**{**req.__dict__, "out_dir": out}))
    assert (again.computed, again.compiled) == (0, 0) and again.rows == first.rows
    # a sweep killed half way: half the points never finished (and one result file was cut short)
    points = sorted((out / "points").glob("*.json"))
    for p in points[:3]:
        p.unlink()
    points[3].write_text(points[3].read_text()[:20])
    resumed = run_sweep(SweepRequest(**{**req.__dict__, "out_dir": out}))
    assert resumed.computed == 4 and resumed.compiled == 0  # their programs were cached already
    assert resumed.rows == first.rows


def test_a_failed_point_is_recorded_and_the_sweep_goes_on(tmp_path, data):
    # a 256x256 array with 1 KiB of accumulators: fc1's smallest tile does not fit
    grid = "[array]\nrows = 256\ncols = 256\n[memory]\nacc_kib = [1, 256]\n"
    result = run_sweep(request(tmp_path, data, grid=grid))
    status = {r["memory.acc_kib"]: (r["status"], r["error"]) for r in result.rows}
    assert status[256] == ("ok", "")
    assert status[1][0] == "failed" and "no tiling fits" in status[1][1] and "\n" not in status[1][1]
    assert result.rows[0]["pareto"] == 0


def test_the_dask_executor_gives_the_local_rows(swept, tmp_path, data):
    req, local = swept
    grid = write_grid(tmp_path / "g.toml", GRID.replace('"truncate"', '"truncate", "half_up"'))
    # the same points (and two more) on a local Dask cluster of two worker processes
    result = run_sweep(SweepRequest(**{**req.__dict__, "out_dir": tmp_path / "dask", "grid": grid,
                                       "executor": "dask", "jobs": 2}))
    rows = {tuple(r[k] for k in ("array.rows", "quant.rounding", "compile.calib_method")): r for r in result.rows}
    for r in local.rows:
        other = rows[(r["array.rows"], r["quant.rounding"], r["compile.calib_method"])]
        assert {k: other[k] for k in r if k != "pareto"} == {k: r[k] for k in r if k != "pareto"}
    assert result.computed == 12
