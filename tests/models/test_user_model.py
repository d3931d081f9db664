"""``--model module:function``: the recorded source hash and import folder, the run id, the
call convention, and one clear error per bad model."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import torch

from dal_backdoor.config import resolve_config
from dal_backdoor.errors import ConfigError
from dal_backdoor.models import create_model, resolve_model
from dal_backdoor.models.user import source_sha256
from tests.fakedata import write_model_module
from tests.helpers import cli_env


def _resolve(ref: str, params: dict | None = None, **kw: object) -> dict:
    args = {"num_classes": 3, "in_channels": 1, "image_size": (8, 8), "width": 4,
            "init": "pytorch", **kw}
    return resolve_model(ref, params or {}, **args)  # type: ignore[arg-type]


def test_resolve_records_the_source_hash_and_the_import_folder(module: str,
                                                               tmp_path: Path) -> None:
    source = tmp_path / "nets" / f"{module}.py"
    recorded = _resolve(f"{module}:build", {"hidden": 5})
    assert recorded == {"hidden": 5, "sha256": source_sha256([source.resolve()]),
                        "sys_path": str((tmp_path / "nets").resolve())}
    data = source.read_bytes()
    expected = hashlib.sha256(b"dal-backdoor/model-source/v1\n"
                              + len(data).to_bytes(8, "little") + data).hexdigest()
    assert recorded["sha256"] == expected
    assert _resolve("resnet18") == {}


def test_the_function_gets_the_shape_its_params_and_a_seeded_init(module: str) -> None:
    params = _resolve(f"{module}:build", {"hidden": 5})
    net = create_model(f"{module}:build", 3, in_channels=1, width=4, seed=7, params=params)
    assert net[0].weight.shape == (5, 1, 3, 3)  # hidden=5 channels from 1 input channel
    assert net[-1].weight.shape == (3, 5)
    again = create_model(f"{module}:build", 3, in_channels=1, width=4, seed=7, params=params)
    assert torch.equal(net[0].weight, again[0].weight)
    other = create_model(f"{module}:build", 3, in_channels=1, width=4, seed=8, params=params)
    assert not torch.equal(net[0].weight, other[0].weight)


def test_init_is_passed_only_to_a_function_that_names_it(module: str) -> None:
    params = _resolve(f"{module}:with_init", init="torchvision")
    net = create_model(f"{module}:with_init", 3, in_channels=1, width=4, init="torchvision",
                       params=params)
    assert net.init_name == "torchvision"
    with pytest.raises(ConfigError, match=r"init=torchvision but model .*:build' takes no init "
                                          "parameter; allowed for it: pytorch"):
        _resolve(f"{module}:build", init="torchvision")


def test_run_id_follows_the_model_source(module: str, tmp_path: Path) -> None:
    def cfg() -> object:
        return resolve_config(dataset="synthetic", dataset_params={"image_size": 8},
                              device="cpu", epochs=1, model=f"{module}:build", width=2)

    first = cfg()
    assert first.run_id == cfg().run_id  # type: ignore[attr-defined]
    assert "sys_path" not in first.identity()["model_params"]  # type: ignore[attr-defined]
    source = tmp_path / "nets" / f"{module}.py"
    source.write_text(source.read_text() + "\n# a changed line\n")
    assert cfg().run_id != first.run_id  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match=r"model .*:build' changed: its source's sha256 is "
                                          r"[0-9a-f]{64}, the run recorded "):
        create_model(f"{module}:build", 10, params=first.model_params)  # type: ignore[attr-defined]


def test_a_recorded_import_folder_is_used_by_a_fresh_process(module: str,
                                                             tmp_path: Path) -> None:
    params = _resolve(f"{module}:build")
    code = ("import json, sys\n"
            "from dal_backdoor.models import create_model\n"
            f"net = create_model({module + ':build'!r}, 3, in_channels=1, width=4, "
            "params=json.loads(sys.argv[1]))\n"
            "print(type(net).__name__, net[-1].out_features)\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = subprocess.run([sys.executable, "-c", code, json.dumps(params)], cwd=elsewhere,
                          capture_output=True, text=True, timeout=120, env=cli_env())
    assert done.stdout.strip() == "Sequential 3", done.stderr
    del params["sys_path"]  # without it the module is not found
    done = subprocess.run([sys.executable, "-c", code, json.dumps(params)], cwd=elsewhere,
                          capture_output=True, text=True, timeout=120, env=cli_env())
    assert f"model module '{module}' cannot be imported" in done.stderr


def test_a_module_in_the_current_folder_is_found(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"usernet_{uuid.uuid4().hex[:12]}"
    write_model_module(tmp_path / "here", name)
    monkeypatch.chdir(tmp_path / "here")
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", ".")])
    try:
        assert _resolve(f"{name}:build")["sys_path"] == str((tmp_path / "here").resolve())
    finally:
        sys.modules.pop(name, None)


@pytest.mark.parametrize(("ref", "params", "match"), [
    ("nets", {}, r"unknown model 'nets'; allowed: resnet18, resnet34, or your own as "
                 r"module:function"),
    ("nets:", {}, r"model 'nets:' is not a registered name or module:function"),
    ("no_such_module_xyz:build", {}, r"model module 'no_such_module_xyz' cannot be imported"),
    ("{m}:missing", {}, r"module '{m}' has no callable 'missing'"),
    ("{m}:not_a_module", {}, r"returned str; allowed: an nn.Module"),
    ("{m}:wrong_shape", {}, r"gives outputs of shape \(2, 64\) for 2 images; allowed: \(2, 3\)"),
    ("{m}:raises", {}, r"failed to build: RuntimeError: out of ideas"),
    ("{m}:build", {"depth": 3}, r"failed to build: TypeError: .*depth"),
    ("resnet18", {"depth": 3}, r"model resnet18 takes no model params; got depth"),
])
def test_bad_models_are_one_clear_error(module: str, ref: str, params: dict,
                                        match: str) -> None:
    with pytest.raises(ConfigError, match=match.replace("{m}", module)):
        _resolve(ref.replace("{m}", module), params)


def test_a_module_that_fails_to_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"usernet_{uuid.uuid4().hex[:12]}"
    write_model_module(tmp_path, name, "def build(:\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ConfigError, match=f"importing model module '{name}' failed: "
                                          "SyntaxError"):
        _resolve(f"{name}:build")
