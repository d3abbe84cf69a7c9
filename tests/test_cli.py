"""The command line and the files it writes: names, checks before compute, what it prints,
file modes, temporary files, and byte-identical re-renders."""

import os
import re
import time
import types

import pytest

from optdyn.experiments import _cli, _common
from optdyn.experiments._common import Config


def _fake(name, fail=False):
    """A stand-in experiment that writes one JSON (or fails) in no time."""

    def run(config):
        if fail:
            raise RuntimeError("boom")
        return {"x": 1.0}

    def run_and_save(config):
        data = run(config)
        _common.save_json(data, config, name)
        return data

    return types.SimpleNamespace(DESCRIPTION=name, run=run_and_save)


@pytest.fixture
def fake_registry(monkeypatch):
    fakes = {"alpha": _fake("alpha"), "beta_gamma": _fake("beta_gamma"), "bad": _fake("bad", True)}
    monkeypatch.setattr(_cli, "registry", lambda: fakes)
    return fakes


def test_names_any_case_several_per_call_each_once(fake_registry):
    assert _cli.resolve_names(["ALPHA", "beta_gamma", "alpha"], fake_registry) == [
        "alpha",
        "beta_gamma",
    ]
    assert _cli.resolve_names(["Alpha", "All"], fake_registry) == ["alpha", "beta_gamma", "bad"]
    with pytest.raises(ValueError, match=r"'BETA_GAMA' is not known\. Did you mean 'beta_gamma'"):
        _cli.resolve_names(["BETA_GAMA"], fake_registry)


@pytest.mark.parametrize(
    "args, message",
    [
        (["alpha", "--format", ""], "names no format"),
        (["alpha", "--format", " , "], "names no format"),
        (["alpha", "--format", "png,gif"], "--format='gif' is not known"),
        (["alpah"], "Did you mean 'alpha'"),
    ],
)
def test_bad_arguments_exit_2_before_any_compute(fake_registry, tmp_path, capsys, args, message):
    assert _cli.main([*args, "--out", str(tmp_path / "out")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # refused before the output folder was made


def test_out_must_be_a_writable_directory(fake_registry, tmp_path, capsys):
    a_file = tmp_path / "a_file"
    a_file.write_text("")
    for out in (a_file, a_file / "below"):
        assert _cli.main(["alpha", "--out", str(out)]) == 2
        assert f"--out={str(out)!r}" in capsys.readouterr().err
    created = tmp_path / "new" / "folder"
    assert _cli.main(["alpha", "--out", str(created)]) == 0
    assert (created / "alpha.json").exists()


def test_prints_paths_times_and_a_summary(fake_registry, tmp_path, capsys):
    # in this process (the fake registry does not reach spawned workers)
    assert _cli.main(["all", "--jobs", "1", "--out", str(tmp_path)]) == 1  # "bad" fails
    out, err = capsys.readouterr()
    assert f"[alpha] wrote {tmp_path / 'alpha.json'}" in out
    assert "[beta_gamma] done in" in out
    assert "RuntimeError: boom" in err and "failed: bad" in err
    table = out[out.index("experiment  status") :].splitlines()
    assert [line.split()[:2] for line in table[1:]] == [
        ["alpha", "ok"],
        ["beta_gamma", "ok"],
        ["bad", "FAILED"],
        ["total", "0.0"],
    ]
    assert table[-1].split()[-1] == "2"  # files written in all


def test_files_get_the_umask_mode_and_leave_no_temporaries(tmp_path):
    previous = os.umask(0o022)
    try:
        path = _common.save_json({"a": 1.0}, Config(out=str(tmp_path)), "modes")
    finally:
        os.umask(previous)
    assert path.stat().st_mode & 0o777 == 0o644
    target = tmp_path / "t.json"

    def failing(tmp):
        open(tmp, "w").write("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _common._atomic_write(target, failing)
    assert sorted(os.listdir(tmp_path)) == ["modes.json"]
    # A run killed between write and rename (SIGKILL: no handler runs) leaves a temporary
    # file; the next write to that target removes it once it is stale, not one in flight.
    stale = tmp_path / f"{_common.TMP_PREFIX}t.json.abc123"
    fresh = tmp_path / f"{_common.TMP_PREFIX}t.json.def456"
    stale.write_text("killed")
    fresh.write_text("in flight")
    old = time.time() - 2 * _common.STALE_SECONDS
    os.utime(stale, (old, old))
    _common._atomic_write(target, lambda tmp: open(tmp, "w").write("{}"))
    assert sorted(os.listdir(tmp_path)) == sorted(["modes.json", "t.json", fresh.name])


def test_json_keeps_four_significant_digits_and_no_timings(tmp_path):
    data = {"x": 0.123456789, "tiny": 1.23456e-17, "n": 7, "runtime_s": 3.2, "nan": float("nan")}
    path = _common.save_json(data, Config(out=str(tmp_path)), "digits")
    assert (
        path.read_text() == '{\n  "x": 0.1235,\n  "tiny": 1.235e-17,\n  "n": 7,\n  "nan": null\n}\n'
    )


@pytest.mark.slow
def test_two_renders_of_a_quick_experiment_are_byte_identical(tmp_path, capsys, monkeypatch):
    """One render in this process, one in a spawned worker beside another experiment
    (`--jobs 2`): the same bytes."""
    monkeypatch.setenv("JAX_ENABLE_X64", "1")  # the workers compute in float64, as conftest
    first, second = tmp_path / "first", tmp_path / "second"
    assert _cli.main(["STABILITY", "--quick", "--jobs", "1", "--out", str(first)]) == 0
    assert (
        _cli.main(
            ["stability", "modified_equation", "--quick", "--jobs", "2", "--out", str(second)]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert f"[stability] wrote {first / 'stability.json'}" in printed
    assert "running 2 experiments in 2 processes" in printed
    assert f"[modified_equation] wrote {second / 'modified_equation.png'}" in printed
    assert re.search(r"^total +[0-9.]+ +4$", printed, flags=re.M)  # the summary table
    names = sorted(os.listdir(first))
    assert "stability.json" in names and "stability.png" in names
    assert names == sorted(n for n in os.listdir(second) if n.startswith("stability"))
    for name in names:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name


def test_jobs_are_checked_before_any_compute(tmp_path, capsys):
    assert _cli.check_jobs(1, 5) == 1
    assert _cli.check_jobs(8, 3) == 3  # never more workers than experiments
    assert 1 <= _cli.check_jobs(0, 24) <= 4
    assert _cli.main(["valley", "--jobs", "-2", "--out", str(tmp_path)]) == 2
    assert "--jobs=-2" in capsys.readouterr().err


def test_quick_runs_ask_xla_for_fast_compilation_without_overriding_the_user(monkeypatch):
    from jax._src import xla_bridge

    monkeypatch.setattr(xla_bridge, "backends_are_initialized", lambda: False)
    env = {"XLA_FLAGS": "--xla_backend_optimization_level=2 --xla_cpu_enable_fast_math=false"}
    assert _common.compile_fast(env)
    flags = env["XLA_FLAGS"].split()
    assert "--xla_backend_optimization_level=2" in flags  # the user's choice is kept
    assert "--xla_backend_optimization_level=0" not in flags
    assert "--xla_cpu_use_fusion_emitters=false" in flags
    assert "--xla_cpu_enable_fast_math=false" in flags
    empty = {}
    assert _common.compile_fast(empty)
    assert empty["XLA_FLAGS"].split() == list(_common.FAST_COMPILE_XLA_FLAGS)
    # once JAX has started its backend, XLA has read its flags: nothing is changed
    monkeypatch.setattr(xla_bridge, "backends_are_initialized", lambda: True)
    late = {"XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    assert not _common.compile_fast(late)
    assert late == {"XLA_FLAGS": "--xla_force_host_platform_device_count=2"}


def test_side_by_side_runs_submit_the_longest_experiments_first():
    names = ["valley", "precision", "stability", "scaling_rules"]
    assert _cli._submission_order(names) == ["scaling_rules", "precision", "valley", "stability"]
    assert set(_cli.LONGEST_FIRST) <= set(_cli.registry())  # no stale name
