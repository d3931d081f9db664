"""``dal-backdoor --help`` and every ``<cmd> --help`` must not import torch (or numpy).

Run in a fresh interpreter: the test process itself has torch loaded already.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from dal_backdoor.cli import cli
from tests.helpers import cli_env

_DRIVER = """
import json, sys
from click.testing import CliRunner
from dal_backdoor.cli import cli
args = sys.argv[1:]
result = CliRunner().invoke(cli, args)
heavy = sorted({m.split(".")[0] for m in sys.modules} & {"torch", "numpy", "torchvision"})
print(json.dumps({"exit": result.exit_code, "heavy": heavy, "out": result.output[:200]}))
"""

COMMANDS = cli.list_commands(None)  # type: ignore[arg-type]


def _help_run(args: list[str]) -> dict:
    done = subprocess.run([sys.executable, "-c", _DRIVER, *args], capture_output=True,
                          text=True, timeout=120, check=True, env=cli_env())
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_every_command_is_covered() -> None:
    assert {"train", "sweep", "evaluate", "noise", "poison", "losses", "triggers"} <= set(COMMANDS)


@pytest.mark.parametrize("args", [["--help"], *[[c, "--help"] for c in COMMANDS]],
                         ids=lambda a: " ".join(a))
def test_help_imports_no_torch(args: list[str]) -> None:
    report = _help_run(args)
    assert report["exit"] == 0, report["out"]
    assert report["heavy"] == []


def test_help_lists_registry_choices_without_torch() -> None:
    report = _help_run(["train", "--help"])
    assert report["heavy"] == []
    full = subprocess.run([sys.executable, "-m", "dal_backdoor", "train", "--help"],
                          capture_output=True, text=True, timeout=120, check=True,
                          env=cli_env()).stdout
    assert "fashion-mnist" in full
    assert "nce_agce" in full
    assert "symmetric" in full


def test_registry_names_and_infos_load_without_torch() -> None:
    code = (
        "import sys\n"
        "from dal_backdoor.data import DATASETS, NOISE_KINDS\n"
        "from dal_backdoor.experiments import GRIDS, PRESETS\n"
        "from dal_backdoor.losses import LOSSES\n"
        "from dal_backdoor.models import MODELS\n"
        "from triggers import TRIGGERS\n"
        "regs = (DATASETS, NOISE_KINDS, GRIDS, PRESETS, LOSSES, MODELS, TRIGGERS)\n"
        "assert all(r.infos() for r in regs)\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'numpy'}))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=True, env=cli_env())
    assert done.stdout.strip() == "[]"
