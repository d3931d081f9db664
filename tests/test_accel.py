from __future__ import annotations

import pytest
import torch

from dal_backdoor import accel


def test_channels_last_rule() -> None:
    assert accel.auto_channels_last("cuda", 8) is True
    assert accel.auto_channels_last("cpu", accel.CPU_CHANNELS_LAST_MIN_WIDTH - 1) is False
    assert accel.auto_channels_last("cpu", accel.CPU_CHANNELS_LAST_MIN_WIDTH) is True
    assert accel.auto_channels_last("cpu", 64) is True


@pytest.mark.parametrize("native", [False, True])
def test_auto_precision_follows_native_bf16(monkeypatch: pytest.MonkeyPatch,
                                            native: bool) -> None:
    monkeypatch.setattr(accel, "native_bf16", lambda _device: native)
    assert accel.auto_precision("cuda") == ("bf16" if native else "fp32")
    assert accel.auto_precision("cpu") == "fp32"  # opt-in only on the CPU (see the module doc)


def test_native_bf16_is_false_for_missing_or_unknown_devices() -> None:
    assert accel.native_bf16("mps-or-anything") is False
    if not torch.cuda.is_available():
        assert accel.native_bf16("cuda") is False
    assert isinstance(accel.native_bf16("cpu"), bool)


def test_autocast_dtype() -> None:
    assert accel.autocast_dtype("bf16") is torch.bfloat16
    assert accel.autocast_dtype("fp32") is None


@pytest.mark.parametrize("device", ["cpu", torch.device("cpu")])
def test_autocast_runs_linear_layers_in_bf16_on_the_cpu(device: object) -> None:
    x, w = torch.randn(4, 8), torch.randn(3, 8)
    with accel.autocast(device, torch.bfloat16):  # type: ignore[arg-type]
        y = torch.nn.functional.linear(x, w)
    assert y.dtype is torch.bfloat16
    expected = torch.nn.functional.linear(x.bfloat16(), w.bfloat16())
    assert torch.equal(y, expected)
    with accel.autocast(device, None):  # type: ignore[arg-type]
        assert torch.nn.functional.linear(x, w).dtype is torch.float32


def _bn_net() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.BatchNorm1d(6), torch.nn.ReLU(),
                               torch.nn.Linear(6, 3))


def test_compiled_module_shares_the_model_and_its_mode() -> None:
    model = _bn_net()
    net = accel.compile_model(model, backend="eager")
    x = torch.randn(8, 4)
    assert torch.equal(net(x), _bn_net()(x))  # same computation as the eager model
    assert {id(p) for p in net.parameters()} == {id(p) for p in model.parameters()}
    net.eval()
    assert model.training is False
    assert int(model[1].num_batches_tracked) == 1


def test_a_failing_compiler_falls_back_to_eager_once_per_call() -> None:
    def broken_backend(_gm: object, _example_inputs: object) -> object:
        raise RuntimeError("no C++ compiler on this machine")

    model, reference = _bn_net(), _bn_net()
    net = accel.compile_model(model, backend=broken_backend)
    x = torch.randn(8, 4)
    out = net(x)
    expected = reference(x)
    assert torch.equal(out, expected)
    out.sum().backward()
    # the failed compilation ran nothing: batch norm saw the batch exactly once
    assert int(model[1].num_batches_tracked) == 1
    assert torch.equal(model[1].running_mean, reference[1].running_mean)
    assert model[0].weight.grad is not None
