"""DeviceLoader: coverage per epoch, exact crop/flip geometry, torchvision agreement, seeds."""

from __future__ import annotations

import io

import pytest
import torch
import torch.nn.functional as F

from dal_backdoor.data import DeviceLoader, ImageDataset
from dal_backdoor.data.transforms import normalize_uint8
from dal_backdoor.errors import ConfigError

UNIT = {"mean": (0.0, 0.0, 0.0), "std": (1.0, 1.0, 1.0)}  # x = pixel / 255


def _data(n: int, size: int = 8, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 3, size, size), generator=gen, dtype=torch.uint8)
    return images, torch.arange(n) % 10


def _loader(images: torch.Tensor, labels: torch.Tensor, **kw: object) -> DeviceLoader:
    opts = {"batch_size": 16, "device": "cpu", "augment": True, "shuffle": True, "seed": 0,
            **UNIT, **kw}
    return DeviceLoader(images, labels, **opts)


def _pixels(x: torch.Tensor) -> torch.Tensor:
    """Undo the unit normalisation: back to exact uint8 values."""
    return (x * 255).round().to(torch.uint8)


def test_every_index_exactly_once_per_epoch() -> None:
    images, labels = _data(103)
    loader = _loader(images, labels)
    assert len(loader) == 7
    orders = []
    for _ in range(2):
        seen = []
        for x, y, idx in loader:
            assert x.dtype == torch.float32
            assert y.dtype == torch.int64
            assert idx.dtype == torch.int64
            assert x.device.type == y.device.type == idx.device.type == "cpu"
            assert torch.equal(y, labels[idx])
            seen.append(idx)
        order = torch.cat(seen)
        assert torch.equal(torch.sort(order).values, torch.arange(103))
        orders.append(order)
    assert not torch.equal(orders[0], orders[1])  # reshuffled each epoch


def test_eval_loader_is_ordered_and_exact() -> None:
    images, labels = _data(37)
    loader = DeviceLoader.for_eval(images, labels, batch_size=10, mean=(0.4, 0.5, 0.6),
                                   std=(0.2, 0.25, 0.3), device=torch.device("cpu"))
    batches = list(loader)
    assert [b[0].shape[0] for b in batches] == [10, 10, 10, 7]
    assert torch.equal(torch.cat([b[2] for b in batches]), torch.arange(37))
    expected = normalize_uint8(images, (0.4, 0.5, 0.6), (0.2, 0.25, 0.3))
    assert torch.equal(torch.cat([b[0] for b in batches]), expected)
    assert loader.state_dict() == {"generator": None}


def test_from_dataset_uses_its_normalisation() -> None:
    images, labels = _data(5)
    ds = ImageDataset("toy", images, labels, tuple("abcdefghij"), (0.1, 0.2, 0.3),
                      (0.5, 0.5, 0.5))
    loader = DeviceLoader.from_dataset(ds, batch_size=5, device="cpu", augment=False,
                                       shuffle=False)
    x, _, _ = next(iter(loader))
    assert torch.equal(x, normalize_uint8(images, (0.1, 0.2, 0.3), (0.5, 0.5, 0.5)))


def _coded_image(size: int = 32) -> torch.Tensor:
    """Channel 0 codes the row (10 + i), channel 1 the column (10 + j), channel 2 is 200."""
    ar = torch.arange(size, dtype=torch.uint8) + 10
    return torch.stack([ar[:, None].expand(size, size), ar[None, :].expand(size, size),
                        torch.full((size, size), 200, dtype=torch.uint8)])


def _recover(out: torch.Tensor, padding: int = 4) -> tuple[torch.Tensor, ...]:
    """Crop offsets (dy, dx in 0..2p) and flips, read off the coded centre pixels."""
    centre = out.shape[-1] // 2
    dy = out[:, 0, centre, centre].long() - 10 - centre + padding
    right = out[:, 1, centre, centre + 1].long() - out[:, 1, centre, centre].long()
    flip = right < 0
    col = torch.where(flip, torch.full_like(dy, out.shape[-1] - 1 - centre), torch.full_like(dy,
                      centre))
    dx = out[:, 1, centre, centre].long() - 10 - col + padding
    return dy, dx, flip


def test_crop_and_flip_geometry_is_exact() -> None:
    """Each output equals pad-with-zeros -> crop at its offsets -> optional flip."""
    image = _coded_image()
    n = 300
    loader = _loader(image.expand(n, 3, 32, 32).contiguous(), torch.zeros(n, dtype=torch.long),
                     batch_size=n, shuffle=False)
    x, _, _ = next(iter(loader))
    out = _pixels(x)
    dy, dx, flip = _recover(out)
    padded = F.pad(image, (4, 4, 4, 4), value=0)
    for i in range(n):
        ref = padded[:, dy[i]:dy[i] + 32, dx[i]:dx[i] + 32]
        if flip[i]:
            ref = ref.flip(-1)
        assert torch.equal(out[i], ref), i
    assert int(dy.min()) == 0
    assert int(dy.max()) == 8  # zero padding reached on both sides
    assert bool((out[dy == 0][:, :, :4] == 0).all())


def test_offsets_uniform_and_flip_rate_half() -> None:
    image = _coded_image()
    n = 4500
    loader = _loader(image.expand(n, 3, 32, 32).contiguous(), torch.zeros(n, dtype=torch.long),
                     batch_size=1500, seed=11)
    dys, dxs, flips = zip(*(_recover(_pixels(x)) for x, _, _ in loader), strict=True)
    dy, dx, flip = torch.cat(dys), torch.cat(dxs), torch.cat(flips)
    for offsets in (dy, dx):
        counts = torch.bincount(offsets, minlength=9).double()
        assert counts.numel() == 9
        expected = n / 9
        chi2 = float(((counts - expected) ** 2 / expected).sum())
        assert chi2 < 26.12  # chi-square, 8 dof, p = 0.001
    joint = torch.bincount(dy * 9 + dx, minlength=81).double()
    chi2 = float(((joint - n / 81) ** 2 / (n / 81)).sum())
    assert chi2 < 124.84  # 80 dof, p = 0.001: offsets independent and uniform
    rate = float(flip.double().mean())
    assert abs(rate - 0.5) < 4 * (0.25 / n) ** 0.5


def test_augmentation_matches_torchvision_distribution() -> None:
    """Per-pixel mean and std over many draws of one image agree with torchvision's."""
    from torchvision import transforms

    gen = torch.Generator().manual_seed(3)
    image = torch.randint(0, 256, (3, 32, 32), generator=gen, dtype=torch.uint8)
    n = 2000
    loader = _loader(image.expand(n, 3, 32, 32).contiguous(), torch.zeros(n, dtype=torch.long),
                     batch_size=n, seed=5)
    ours = _pixels(next(iter(loader))[0]).double()
    tv = transforms.Compose([transforms.RandomCrop(32, padding=4),
                             transforms.RandomHorizontalFlip()])
    with torch.random.fork_rng():
        torch.manual_seed(7)
        theirs = torch.stack([tv(image) for _ in range(n)]).double()
    m1, m2 = ours.mean(0), theirs.mean(0)
    s1, s2 = ours.std(0), theirs.std(0)
    se_mean = ((s1**2 + s2**2) / n).sqrt()
    assert bool(((m1 - m2).abs() < 5 * se_mean + 1e-9).all())
    se_std = ((s1**2 + s2**2) / (2 * n)).sqrt()
    assert bool(((s1 - s2).abs() < 6 * se_std + 1e-9).all())
    # and the overall share of zero (padding) pixels agrees
    z1, z2 = float((ours == 0).double().mean()), float((theirs == 0).double().mean())
    assert abs(z1 - z2) < 0.01


def test_same_seed_same_batches_different_seed_differs() -> None:
    images, labels = _data(50)

    def run(seed: int) -> list[torch.Tensor]:
        loader = _loader(images, labels, seed=seed)
        return [t for _ in range(2) for batch in loader for t in batch]

    a, b, c = run(1), run(1), run(2)
    assert all(torch.equal(u, v) for u, v in zip(a, b, strict=True))
    assert not all(torch.equal(u, v) for u, v in zip(a, c, strict=True))


def test_explicit_generator() -> None:
    images, labels = _data(20)
    g1 = torch.Generator().manual_seed(9)
    first = [b[2] for b in _loader(images, labels, seed=None, generator=g1)]
    second = [b[2] for b in _loader(images, labels, seed=9)]
    assert all(torch.equal(u, v) for u, v in zip(first, second, strict=True))


def test_state_dict_resumes_the_stream() -> None:
    images, labels = _data(40)
    loader = _loader(images, labels, seed=4)
    list(loader)  # epoch 1
    buf = io.BytesIO()
    torch.save(loader.state_dict(), buf)
    epoch2 = [t for batch in loader for t in batch]
    buf.seek(0)
    resumed = _loader(images, labels, seed=123)
    resumed.load_state_dict(torch.load(buf, weights_only=True))
    again = [t for batch in resumed for t in batch]
    assert all(torch.equal(u, v) for u, v in zip(epoch2, again, strict=True))


def test_state_dict_mismatch() -> None:
    images, labels = _data(10)
    evaluator = DeviceLoader.for_eval(images, labels, batch_size=4, device="cpu", **UNIT)
    with pytest.raises(ConfigError, match="loader state does not match"):
        evaluator.load_state_dict(_loader(images, labels).state_dict())


def test_channels_last() -> None:
    images, labels = _data(12)
    plain = [b[0] for b in _loader(images, labels, seed=2)]
    cl = [b[0] for b in _loader(images, labels, seed=2, channels_last=True)]
    for u, v in zip(plain, cl, strict=True):
        assert v.is_contiguous(memory_format=torch.channels_last)
        assert torch.equal(u, v)


@pytest.mark.parametrize(
    ("n", "batch", "drop_last", "sizes"),
    [(10, 4, False, [4, 4, 2]), (10, 4, True, [4, 4]), (3, 8, False, [3]), (3, 8, True, []),
     (1, 1, False, [1])],
)
def test_drop_last_and_tiny_sets(n: int, batch: int, drop_last: bool, sizes: list[int]) -> None:
    images, labels = _data(n)
    loader = _loader(images, labels, batch_size=batch, drop_last=drop_last)
    assert len(loader) == len(sizes)
    assert [b[0].shape[0] for b in loader] == sizes


def test_no_padding_means_flip_only() -> None:
    images, labels = _data(64)
    loader = _loader(images, labels, batch_size=64, shuffle=False, padding=0, seed=1)
    out = _pixels(next(iter(loader))[0])
    flipped = images.flip(-1)
    same = (out == images).flatten(1).all(1)
    mirror = (out == flipped).flatten(1).all(1)
    assert bool((same | mirror).all())
    assert 0 < int(mirror.sum()) < 64


def test_grey_images_and_other_sizes() -> None:
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(1, 256, (6, 1, 28, 28), generator=gen, dtype=torch.uint8)
    loader = DeviceLoader(images, torch.arange(6), batch_size=6, mean=(0.0,), std=(1.0,),
                          device="cpu", augment=True, shuffle=True, seed=0, padding=2)
    x, _, _ = next(iter(loader))
    assert x.shape == (6, 1, 28, 28)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"seed": None}, "needs seed= or generator="),
        ({"batch_size": 0}, "batch_size=0 is not in [1, inf)"),
        ({"padding": -1}, "padding=-1 is not in [0, inf)"),
        ({"mean": (0.5,)}, "mean/std have 1/3 entries for 3 channels"),
    ],
)
def test_bad_arguments(kwargs: dict, message: str) -> None:
    images, labels = _data(4)
    with pytest.raises(ConfigError) as err:
        _loader(images, labels, **kwargs)
    assert message in str(err.value)


def test_bad_data() -> None:
    images, labels = _data(4)
    with pytest.raises(ConfigError, match=r"labels must have shape \(4,\), got \(3,\)"):
        _loader(images, labels[:3])
    with pytest.raises(ConfigError, match="images must be uint8"):
        _loader(images.float(), labels)
    with pytest.raises(ConfigError, match="empty data set"):
        _loader(images[:0], labels[:0])
