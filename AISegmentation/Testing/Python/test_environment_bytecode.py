"""Backend environments keep their bytecode: installed compiled, and children may write what is missing.

Without it every backend child start (a frame of a sequence, a cohort case, a training fold) compiled torch and
nnunetv2 from source again where PYTHONDONTWRITEBYTECODE is set (this machine's shells set it): measured 68 s wall /
18 s CPU per import against 25.5 s / 6.4 s with bytecode.
"""

import os
import subprocess
import sys

from AISegmentationLib.Backends.Environments import Environments, Installer


def test_uv_installs_compiled_bytecode():
    command = Installer.uvCommand("uv", "/env/bin/python", "requirements.txt", {"uvArguments": []})
    assert command[:3] == ["uv", "pip", "install"] and "--compile-bytecode" in command


def test_an_isolated_child_writes_bytecode_even_when_the_caller_does_not(monkeypatch, tmp_path):
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    env = Environments.childEnvironment(True, python=sys.executable)
    assert "PYTHONDONTWRITEBYTECODE" not in env
    (tmp_path / "probeModule.py").write_text("VALUE = 1\n", encoding="utf-8")
    subprocess.run([sys.executable, "-c", "import probeModule"], cwd=tmp_path, env=env, check=True)
    assert any(name.startswith("probeModule.") for name in os.listdir(tmp_path / "__pycache__"))
    # the caller's own setting is untouched
    assert os.environ["PYTHONDONTWRITEBYTECODE"] == "1"
