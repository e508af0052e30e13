"""`defectlab --help` names the workbench, and the first `./run.sh` says what it is installing."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.cli.main import main

ROOT = Path(__file__).resolve().parents[2]


def test_help_lists_gui(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "{gui," in out and "defectlab gui [FOLDER | MODEL | PROJECT]" in out
    assert main(["gui"]) == 2 and "defectlab gui" in capsys.readouterr().err  # only the launcher opens it


def test_first_run_says_what_it_installs() -> None:
    script = (ROOT / "run.sh").read_text(encoding="utf-8")
    assert "First run: installing DefectLab" in script and "1/2 PyTorch" in script and "2/2 DefectLab" in script


def test_asked_for_workbench_that_cannot_load_says_why(monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    import builtins

    from app.launcher import main as launch

    real_import = builtins.__import__

    def failing(name: str, *args, **kwargs):
        if name == "app.main_window":
            raise ImportError("libEGL.so.1: cannot open shared object file")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", failing)
    assert launch(["gui"]) == 2  # not the headless demo in its place
    assert "the workbench cannot start: libEGL.so.1" in capsys.readouterr().err
