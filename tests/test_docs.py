"""What the README and the deployment files promise holds: the set-up commands are CI's, the unit is valid."""

from __future__ import annotations

import getpass
import grp
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bot.settings import Settings

REPOSITORY = Path(__file__).resolve().parent.parent
README = (REPOSITORY / "README.md").read_text()
UNIT = REPOSITORY / "deploy" / "unmixr-discord.service"


def shell_blocks(text: str) -> list[str]:
    """The contents of every ```sh block."""
    return re.findall(r"```sh\n(.*?)```", text, flags=re.DOTALL)


def test_the_readme_test_command_is_what_ci_runs() -> None:
    ci = [line for line in (REPOSITORY / ".ci" / "run").read_text().splitlines() if line.startswith("apt-get")]
    assert len(ci) == 1
    test_command = ci[0]
    assert test_command in [block.strip() for block in shell_blocks(README)]
    contributing = (REPOSITORY / "CONTRIBUTING.md").read_text()
    assert test_command in [block.strip() for block in shell_blocks(contributing)]


def test_the_readme_install_command_installs_what_ci_installs_for_the_bot() -> None:
    install = next(block.strip() for block in shell_blocks(README) if block.strip().endswith("-m bot"))
    packages = set(re.search(r"apt-get install -y (.*?) &&", install).group(1).split())  # type: ignore[union-attr]
    ci = (REPOSITORY / ".ci" / "run").read_text()
    assert packages == {"ffmpeg", "libopus0", "python3-venv"}
    assert all(f" {package} " in ci for package in packages)
    assert ".venv/bin/pip install . && .venv/bin/python -m bot" in install


def test_every_setting_is_in_the_readme_table() -> None:
    names = {str(field.validation_alias) for field in Settings.model_fields.values()}
    table = README.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    missing = [name for name in sorted(names) if f"`{name}`" not in table]
    assert missing == []


def test_the_monitoring_examples_leave_node_exporters_port_alone() -> None:
    assert ":9100" not in README
    assert "127.0.0.1:8971/healthz" in README


def test_the_systemd_unit_runs_the_bot_from_its_folder() -> None:
    unit = UNIT.read_text()
    folder = re.search(r"^WorkingDirectory=(.+)$", unit, flags=re.MULTILINE).group(1)  # type: ignore[union-attr]
    assert re.search(rf"^ExecStart={re.escape(folder)}/\.venv/bin/python -m bot$", unit, flags=re.MULTILINE)
    assert re.search(rf"^ReadWritePaths={re.escape(folder)}/data$", unit, flags=re.MULTILINE)
    # A configuration mistake (exit status 2) is not restarted in a loop; SIGTERM is the bot's clean stop.
    assert "RestartPreventExitStatus=2" in unit and "KillSignal=SIGTERM" in unit
    assert "deploy/unmixr-discord.service" in README


def test_the_systemd_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed here (Debian package systemd): the unit was not verified")
    # The unit as installed on this machine: this checkout, this interpreter, this user.
    user = getpass.getuser()
    group = grp.getgrgid(os.getgid()).gr_name
    unit = (
        UNIT.read_text()
        .replace("/opt/unmixr-discord/.venv/bin/python", sys.executable)
        .replace("/opt/unmixr-discord", str(REPOSITORY))
        .replace("User=unmixr", f"User={user}")
        .replace("Group=unmixr", f"Group={group}")
    )
    installed = tmp_path / UNIT.name
    installed.write_text(unit)
    result = subprocess.run(
        [analyze, "verify", str(installed)], capture_output=True, text=True, timeout=60, check=False
    )
    # Unknown keys and the like are only warnings (exit status 0): any output at all fails the test.
    assert (result.returncode, result.stdout + result.stderr) == (0, "")
