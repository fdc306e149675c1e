"""``rnn-certify run``/``constants``: user mistakes caught before any computation,
reports for every verdict, file modes, Ctrl-C with ``--jobs 2``, overflowing bounds."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import mpmath
import pytest

from certify import runner
from certify.cli import main
from certify.output.certificate import write_atomic
from certify.output.report import render, write_report
from tests.schema_util import assert_matches_schema
from tests.test_runner import write_case

CLI = [sys.executable, "-m", "certify"]


def tree(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.fixture
def no_compute(monkeypatch):
    """Fail the test if a case gets computed (the checks must come first)."""
    def boom(*a, **k):
        raise AssertionError("a case was computed before the check")

    monkeypatch.setattr(runner, "run", boom)


def one_line_error(capsys, *needles):
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for n in needles:
        assert n in err, (n, err)
    return err


# ---------------------------------------------------------------- --out


def test_out_is_a_file(tmp_path, capsys, no_compute):
    case = write_case(tmp_path)
    out = tmp_path / "taken"
    out.write_text("not a folder")
    before = tree(tmp_path)
    assert main(["run", str(case), "--out", str(out), "--quiet"]) == 2
    one_line_error(capsys, "--out", str(out), "is a file")
    assert tree(tmp_path) == before and out.read_text() == "not a folder"


def test_out_under_a_file(tmp_path, capsys, no_compute):
    case = write_case(tmp_path)
    (tmp_path / "f").write_text("x")
    out = tmp_path / "f" / "a" / "b"
    before = tree(tmp_path)
    assert main(["run", str(case), "--out", str(out), "--quiet"]) == 2
    one_line_error(capsys, "--out", str(out), f"lies under {tmp_path / 'f'}")
    assert tree(tmp_path) == before


def unwritable_dirs(tmp_path) -> list[Path]:
    """Folders that cannot be written: an existing one and one that cannot be created."""
    if os.geteuid() != 0:
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o555)
        return [locked, locked / "new" / "deeper"]
    # root ignores permission bits: /proc takes no new files, /sys no new folders
    return [Path("/proc"), Path("/sys/rnn-certify-test/out")]


def test_out_not_writable(tmp_path, capsys, no_compute):
    case = write_case(tmp_path)
    for out in unwritable_dirs(tmp_path):
        before = tree(tmp_path)
        assert main(["run", str(case), "--out", str(out), "--quiet"]) == 2
        one_line_error(capsys, "--out", str(out), "cannot write there")
        assert tree(tmp_path) == before
        assert not Path("/sys/rnn-certify-test").exists()


def test_out_check_leaves_nothing_behind(tmp_path):
    from certify.output.certificate import check_out_dir

    check_out_dir(tmp_path / "a" / "b")  # writable: no error, and no folder left
    assert tree(tmp_path) == []


# ---------------------------------------------------------------- duplicate names


def test_two_cases_with_the_same_name(tmp_path, capsys, no_compute):
    cases = tmp_path / "cases"
    cases.mkdir()
    write_case(cases, name="same")
    (cases / "same.toml").rename(cases / "a.toml")
    write_case(cases, name="same")
    (cases / "same.toml").rename(cases / "b.toml")
    out = tmp_path / "out"
    assert main(["run", str(cases), "--out", str(out), "--quiet"]) == 2
    one_line_error(capsys, str(cases / "a.toml"), str(cases / "b.toml"), ": name: ",
                   "'same'")
    assert not out.exists()


# ---------------------------------------------------------------- reports of every verdict


@pytest.fixture(scope="module")
def unknown_cert(tmp_path_factory):
    """A real certificate with verdict unknown: η = 1e300 makes every iterate uncheckable."""
    d = tmp_path_factory.mktemp("huge")
    case = write_case(d, name="huge", eta="1e300")
    case.write_text(case.read_text().replace("iterations = 40", "iterations = 5"))
    out = d / "out"
    r = subprocess.run([*CLI, "run", str(case), "--out", str(out), "--quiet"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 1, r
    assert "Traceback" not in r.stderr, r.stderr
    assert r.stdout.startswith("UNKNOWN  huge"), r.stdout
    assert_matches_schema(out / "huge.json")  # written by a subprocess
    return out


def test_unknown_certificate_gets_its_report(unknown_cert):
    cert = json.loads((unknown_cert / "huge.json").read_text())
    assert cert["verdict"] == "unknown"
    assert cert["executor"]["drift"]["min_slack"] is None  # non-finite: stored as null
    assert None in cert["executor"]["drift"]["fp_allowance_values"]
    md = (unknown_cert / "huge.md").read_text()
    assert md.startswith("# huge: **UNKNOWN**")
    assert "minimum slack — at k = —" in md
    assert "huge" in (unknown_cert / "index.md").read_text()


def nulled(obj):
    """Every number (also inside lists and interval pairs) replaced by None."""
    if isinstance(obj, dict):
        return {k: nulled(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [nulled(v) for v in obj]
    if isinstance(obj, bool) or not isinstance(obj, int | float | str):
        return obj
    if isinstance(obj, str):
        try:
            float(obj)
        except ValueError:
            return obj
    return None


def test_report_renders_a_certificate_with_every_number_missing(unknown_cert, tmp_path):
    cert = nulled(json.loads((unknown_cert / "huge.json").read_text()))
    assert cert["executor"]["loss"] == [None] * 5 and cert["constants"]["t"] == [None] * 4
    text = render(cert, {})
    assert text.startswith("# huge: **UNKNOWN**")
    path = write_report(cert, tmp_path)  # plots without finite data are left out
    assert path.read_text() == text
    assert not (tmp_path / "huge-constants.png").exists()
    cert["constants"]["closed_form"]["L"] = [["1", "2"], ["1", "inf"], None, ["nan", "x"]]
    cert["constants"]["t"] = [0, 1, 2, 3]
    text = render(cert, {})
    assert "| 0 | 2 |" in text and "| 1 | inf |" in text and "| 3 | — |" in text
    write_report(cert, tmp_path)
    assert (tmp_path / "huge-constants.png").exists()


# ---------------------------------------------------------------- file modes


@pytest.mark.parametrize("umask", [0o022, 0o027, 0o077])
def test_written_files_respect_the_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        write_atomic(tmp_path / "c.json", "{}\n")
        (tmp_path / "plain.txt").write_text("x")  # what open() gives, like the plots
    finally:
        os.umask(old)
    mode = stat.S_IMODE((tmp_path / "c.json").stat().st_mode)
    assert mode == 0o666 & ~umask == stat.S_IMODE((tmp_path / "plain.txt").stat().st_mode)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_certificate_and_report_modes(unknown_cert):
    umask = os.umask(0)
    os.umask(umask)  # the subprocess that wrote them inherited this umask
    for f in ("huge.json", "huge.md", "index.md", "huge-loss.png"):
        assert stat.S_IMODE((unknown_cert / f).stat().st_mode) == 0o666 & ~umask, f


# ---------------------------------------------------------------- Ctrl-C with --jobs 2


def test_two_jobs_write_every_case_in_file_order(tmp_path):
    cases = tmp_path / "cases"
    cases.mkdir()
    for name in ("b", "a", "c"):
        write_case(cases, name=name)
    out = tmp_path / "out"
    r = subprocess.run([*CLI, "run", str(cases), "--out", str(out), "--jobs", "2", "--quiet"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r
    assert [ln.split()[1] for ln in r.stdout.splitlines()[:3]] == ["a", "b", "c"]
    for name in "abc":
        assert json.loads((out / f"{name}.json").read_text())["verdict"] == "pass"
        assert (out / f"{name}.md").exists()


def ctrl_c_stops_at_once(proc, wait):
    """After ``wait()``, SIGINT to the process group (what Ctrl-C does): the run exits
    with 130 and one line within 3 s, leaving no worker behind."""
    try:
        wait()
        os.killpg(proc.pid, signal.SIGINT)
        t0 = time.monotonic()
        stdout, stderr = proc.communicate(timeout=60)
        stopped_after = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, (stdout, stderr)
    assert stderr.count("\n") == 1 and "interrupted" in stderr and "Traceback" not in stderr
    assert stopped_after < 3, stopped_after
    with pytest.raises(ProcessLookupError):  # no worker left behind
        os.killpg(proc.pid, 0)


def test_ctrl_c_with_two_jobs_stops_at_once_and_writes_nothing_more(tmp_path):
    cases = tmp_path / "cases"
    cases.mkdir()
    for name, iterations in (("a0", 4000), ("a1", 4000), ("b0", 40000), ("b1", 40000)):
        p = write_case(cases, name=name)
        p.write_text(p.read_text().replace("iterations = 40", f"iterations = {iterations}"))
    out = tmp_path / "out"
    proc = subprocess.Popen([*CLI, "run", str(cases), "--out", str(out), "--jobs", "2",
                             "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    def first_certificate():
        deadline = time.monotonic() + 240
        while not list(out.glob("*.json")):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no certificate appeared"
            time.sleep(0.02)

    ctrl_c_stops_at_once(proc, first_certificate)
    written = tree(out)
    time.sleep(2)
    assert tree(out) == written  # nothing written after the exit
    assert not {"b0.json", "b1.json"} & set(written)  # the long cases were stopped
    certs = [f for f in written if f.endswith(".json")]
    assert all(f.replace(".json", ".md") in written for f in certs)  # report before cert


# ---------------------------------------------------------------- constants: overflow


def test_constants_long_output_overflows_to_inf():
    from symbolic.recurrence import numeric_recurrence

    steps = 20000
    r = subprocess.run([*CLI, "constants", "--activation", "tanh", "--alpha", "1.5",
                        "--steps", str(steps)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    table = [ln.split() for ln in lines if ln[:5].strip().isdigit()]
    assert [int(row[0]) for row in table] == list(range(steps))
    assert table[-1][1:] == ["inf", "inf"]
    first = next(t for t, row in enumerate(table) if "inf" in row[1:])
    assert all(float(v) < sys.float_info.max for row in table[:first] for v in row[1:])
    assert all(row[2] == "inf" for row in table[first:])  # β_t grows with t
    assert lines[-1].startswith("inf: beyond the double range") and f"t = {first} " in lines[-1]
    # where the recurrence, in plain (unbounded-exponent) mpf numbers, leaves the double range
    s0, s1, s2, a = (mpmath.mpf(v) for v in (1, 1, "0.7698003589195031", "1.5"))
    _, B = numeric_recurrence(s0, s1, s2, a, 1000, None)
    assert abs(first - next(t for t, b in enumerate(B) if b > sys.float_info.max)) <= 1


def test_constants_json_inf_pairs_enclose(capsys):
    assert main(["constants", "--activation", "tanh", "--alpha", "1.5", "--steps", "900",
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    t = out["first_inf_t"]
    assert t is not None and out["beta"][t][1] == "inf"
    assert float(out["beta"][t][0]) <= sys.float_info.max  # a lower end that still holds
    assert out["beta"][t - 1][1] != "inf" and float(out["beta"][t - 1][1]) > 1e307
    main(["constants", "--activation", "tanh", "--alpha", "0.5", "--steps", "50", "--json"])
    assert json.loads(capsys.readouterr().out)["first_inf_t"] is None


def test_ctrl_c_inside_one_case_with_two_jobs_stops_at_once(tmp_path):
    """One case, --jobs 2: the neurons fan out inside the data-specific stage
    (certify/data_constants._map); Ctrl-C there stops at once and writes nothing."""
    src = Path(__file__).resolve().parents[1] / "cases" / "logistic.toml"
    case = tmp_path / "logistic.toml"
    case.write_text(src.read_text())
    out = tmp_path / "out"
    proc = subprocess.Popen([*CLI, "run", str(case), "--out", str(out), "--jobs", "2",
                             "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    def inside_the_bounds():
        time.sleep(6)  # loading and σ-constants take about a second; the bounds ~30 s
        assert proc.poll() is None, proc.communicate()

    ctrl_c_stops_at_once(proc, inside_the_bounds)
    assert not out.exists() or tree(out) == []


def test_reports_of_huge_values_print_no_warning(tmp_path):
    """η = 1e15, plain GD: losses near the double range.  The report is drawn in-process
    here, where warnings are errors (before, matplotlib's symlog overflow was printed)."""
    case = write_case(tmp_path, name="big", alg="gd", eta="1e15")
    case.write_text(case.read_text().replace("steps = 4", "steps = 12")
                    .replace("iterations = 40", "iterations = 300"))
    from certify import load_case

    cert = runner.run(load_case(case)).data
    assert cert["verdict"] == "unknown"
    write_report(cert, tmp_path / "out")
    assert (tmp_path / "out" / "big.md").exists()


def test_report_into_a_folder_whose_index_is_a_folder_is_a_one_line_error(tmp_path, capsys):
    """``report DIR`` checks where it writes before drawing anything: no traceback, exit 2,
    no figure left behind."""
    import shutil

    src = Path(__file__).resolve().parents[1] / "cases" / "baselines" / "tanh-gd-exit.json"
    shutil.copy(src, tmp_path / src.name)
    (tmp_path / "index.md").mkdir()
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "index.md: is a folder, not a file" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index.md", src.name]
