"""Label noise: rates within binomial tolerance, exact maps, Algorithm 2, CIFAR-N, errors."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from dal_backdoor.data import list_noise_kinds, make_noisy_labels
from dal_backdoor.data.datasets import CIFAR100_FINE_TO_COARSE
from dal_backdoor.data.noise import (
    INSTANCE_FLIP_STD,
    asymmetric_map,
    load_cifar_n,
    transition_matrix,
    truncated_normal_mean,
)
from dal_backdoor.errors import ConfigError, DataNotFoundError
from tests.fakedata import write_fake_cifar_n

N = 20_000


def balanced(n: int = N, k: int = 10) -> torch.Tensor:
    return torch.arange(n) % k


def within(actual: float, p: float, n: int, sigmas: float = 4.0) -> bool:
    return abs(actual - p) <= sigmas * math.sqrt(max(p * (1 - p), 1e-12) / n)


def images_for(n: int, seed: int = 0, shape: tuple[int, ...] = (3, 4, 4)) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, *shape), generator=gen, dtype=torch.uint8)


def test_kinds() -> None:
    assert list_noise_kinds() == ["none", "symmetric", "asymmetric", "instance", "cifar-n"]


def test_transition_matrix_closed_form() -> None:
    clean = torch.tensor([0, 0, 0, 0, 1, 1, 2])
    noisy = torch.tensor([0, 1, 1, 2, 1, 0, 2])
    m = transition_matrix(clean, noisy, 4)
    assert m.dtype == torch.float64
    expected = torch.tensor([[0.25, 0.5, 0.25, 0], [0.5, 0.5, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0]],
                            dtype=torch.float64)
    assert torch.equal(m, expected)


def test_record_fields() -> None:
    labels = balanced(1000)
    r = make_noisy_labels(labels, "symmetric", 0.3, 10, seed=0)
    assert r.kind == "symmetric" and r.nominal_rate == 0.3
    assert r.labels.dtype == torch.int64 and r.flipped.dtype == torch.bool
    assert torch.equal(r.flipped, r.labels != labels)
    assert torch.equal(r.clean_labels, labels)
    assert r.actual_rate == float(r.flipped.double().mean())
    assert r.num_flipped == int(r.flipped.sum()) and r.num_classes == 10
    assert torch.equal(r.transition_matrix, transition_matrix(labels, r.labels, 10))


# -- symmetric -------------------------------------------------------------------------------

def test_symmetric_authors_convention() -> None:
    r = make_noisy_labels(balanced(), "symmetric", 0.4, 10, seed=1)
    assert r.expected_rate == pytest.approx(0.36)
    assert within(r.actual_rate, 0.36, N)
    m = r.transition_matrix
    per_class = N // 10
    off = m[~torch.eye(10, dtype=torch.bool)]
    assert bool((off - 0.04).abs().max() < 4 * math.sqrt(0.04 * 0.96 / per_class))
    assert bool((torch.diagonal(m) - 0.64).abs().max() < 4 * math.sqrt(0.64 * 0.36 / per_class))


def test_symmetric_exclude_true() -> None:
    r = make_noisy_labels(balanced(), "symmetric", 0.4, 10, seed=1, exclude_true=True)
    assert r.expected_rate == 0.4
    assert within(r.actual_rate, 0.4, N)
    off = r.transition_matrix[~torch.eye(10, dtype=torch.bool)]
    p = 0.4 / 9
    assert bool((off - p).abs().max() < 4 * math.sqrt(p * (1 - p) / (N // 10)))


# -- asymmetric ------------------------------------------------------------------------------

def test_cifar10_asymmetric_map_is_exact() -> None:
    # truck 9 -> automobile 1, bird 2 -> airplane 0, deer 4 -> horse 7, cat 3 <-> dog 5
    assert asymmetric_map(10, "cifar10").tolist() == [0, 1, 0, 5, 7, 3, 6, 7, 8, 1]


def test_cifar10_asymmetric_rates_and_swap() -> None:
    labels = balanced()
    r = make_noisy_labels(labels, "asymmetric", 0.4, 10, seed=2, dataset="cifar10")
    assert r.expected_rate == pytest.approx(0.2)  # half the classes move
    assert within(r.actual_rate, 0.2, N)
    m = r.transition_matrix
    target = asymmetric_map(10, "cifar10")
    allowed = torch.eye(10, dtype=torch.bool)
    allowed[torch.arange(10), target] = True
    assert float(m[~allowed].abs().sum()) == 0.0
    for src, dst in ((9, 1), (2, 0), (4, 7), (3, 5), (5, 3)):
        assert within(float(m[src, dst]), 0.4, N // 10), (src, dst)
    for fixed in (0, 1, 6, 7, 8):
        assert float(m[fixed, fixed]) == 1.0
    cats, dogs = labels == 3, labels == 5
    assert set(r.labels[cats].tolist()) == {3, 5} and set(r.labels[dogs].tolist()) == {3, 5}


def test_cat_dog_is_a_simultaneous_swap() -> None:
    """At rate 0.99 two sequential flips would send cats back to 'cat'; a swap does not."""
    labels = balanced()
    r = make_noisy_labels(labels, "asymmetric", 0.99, 10, seed=0, dataset="cifar10")
    assert within(float(r.transition_matrix[3, 5]), 0.99, N // 10)
    assert within(float(r.transition_matrix[5, 3]), 0.99, N // 10)


def test_cifar100_asymmetric_real_superclasses() -> None:
    labels = balanced(2000, 100)
    coarse = torch.tensor(CIFAR100_FINE_TO_COARSE)[labels]
    target = asymmetric_map(100, "cifar100", labels=labels, coarse_labels=coarse)
    # the paper's example: bicycle -> bus -> motorcycle -> pickup truck -> train -> bicycle
    assert [int(target[c]) for c in (8, 13, 48, 58, 90)] == [13, 48, 58, 90, 8]
    table = torch.tensor(CIFAR100_FINE_TO_COARSE)
    assert bool((target != torch.arange(100)).all())
    assert torch.equal(table[target], table)  # stays in its superclass
    assert torch.equal(torch.sort(target).values, torch.arange(100))  # a permutation
    r = make_noisy_labels(labels, "asymmetric", 0.3, 100, seed=0, dataset="cifar100",
                          coarse_labels=coarse)
    assert r.expected_rate == pytest.approx(0.3)
    assert within(r.actual_rate, 0.3, 2000)
    moved = r.flipped
    assert torch.equal(r.labels[moved], target[labels[moved]])


def test_cifar100_asymmetric_fake_layout() -> None:
    labels = balanced(600, 15)
    coarse = labels // 5  # superclasses {0..4}, {5..9}, {10..14}
    target = asymmetric_map(15, "cifar100", labels=labels, coarse_labels=coarse)
    assert target.tolist() == [1, 2, 3, 4, 0, 6, 7, 8, 9, 5, 11, 12, 13, 14, 10]


def test_cifar100_needs_consistent_coarse_labels() -> None:
    labels = balanced(200, 100)
    with pytest.raises(ConfigError, match="cifar100 asymmetric noise needs coarse_labels"):
        make_noisy_labels(labels, "asymmetric", 0.3, 100, seed=0, dataset="cifar100")
    coarse = torch.tensor(CIFAR100_FINE_TO_COARSE)[labels]
    coarse[100] = (coarse[100] + 1) % 20  # class 0 now in two superclasses
    with pytest.raises(ConfigError, match="class 0 appears in more than one superclass"):
        make_noisy_labels(labels, "asymmetric", 0.3, 100, seed=0, dataset="cifar100",
                          coarse_labels=coarse)
    with pytest.raises(ConfigError, match=r"coarse_labels has shape \(3,\), labels \(200,\)"):
        make_noisy_labels(labels, "asymmetric", 0.3, 100, seed=0, dataset="cifar100",
                          coarse_labels=torch.tensor([0, 1, 2]))


def test_generic_asymmetric_is_next_class() -> None:
    assert asymmetric_map(4).tolist() == [1, 2, 3, 0]
    labels = balanced(8000, 4)
    r = make_noisy_labels(labels, "asymmetric", 0.25, 4, seed=3, dataset="fashion-mnist")
    assert within(r.actual_rate, 0.25, 8000)
    assert torch.equal(r.labels[r.flipped], (labels[r.flipped] + 1) % 4)


# -- instance-dependent ----------------------------------------------------------------------

def test_truncated_normal_mean_closed_form() -> None:
    assert truncated_normal_mean(0.5, 0.1) == pytest.approx(0.5)
    # mean 0: a half-normal (the cut at 1 is 10 sigma away): 0.1 * sqrt(2 / pi)
    assert truncated_normal_mean(0.0, 0.1) == pytest.approx(0.1 * math.sqrt(2 / math.pi))
    assert 0.4 < truncated_normal_mean(0.4, 0.1) < 0.4001


def _reference_instance(labels: torch.Tensor, images: torch.Tensor, rate: float, k: int,
                        seed: int, mean: float, std: float) -> torch.Tensor:
    """Xia et al.'s Algorithm 2 written per sample, drawing the same random numbers."""
    gen = torch.Generator().manual_seed(seed)
    lo = torch.special.ndtr(torch.tensor(-rate / INSTANCE_FLIP_STD, dtype=torch.float64))
    hi = torch.special.ndtr(torch.tensor((1 - rate) / INSTANCE_FLIP_STD, dtype=torch.float64))
    u0 = torch.rand(labels.numel(), generator=gen, dtype=torch.float64)
    q = (rate + INSTANCE_FLIP_STD * torch.special.ndtri(lo + (hi - lo) * u0)).clamp(0, 1)
    u = torch.rand(labels.numel(), generator=gen, dtype=torch.float64)
    dim = images[0].numel()
    w = torch.stack([torch.randn((dim, k), generator=gen) for _ in range(k)])  # (K, D, K)
    out = []
    for i in range(labels.numel()):
        y = int(labels[i])
        x = ((images[i].float() / 255 - mean) / std).flatten()
        scores = (x @ w[y]).double()
        scores[y] = -math.inf
        p = q[i] * torch.softmax(scores, 0)
        p[y] = 1 - q[i]
        cdf = torch.cumsum(p, 0)
        out.append(min(int((cdf < u[i] * cdf[-1]).sum()), k - 1))
    return torch.tensor(out)


def test_instance_matches_per_sample_reference() -> None:
    n, k = 300, 5
    labels = balanced(n, k)
    images = images_for(n, shape=(1, 3, 3))
    r = make_noisy_labels(labels, "instance", 0.35, k, seed=4, images=images,
                          dataset="fashion-mnist")
    ref = _reference_instance(labels, images, 0.35, k, 4, 0.2860, 0.3530)
    assert torch.equal(r.labels, ref)


def test_instance_rate_and_dependence_on_images() -> None:
    labels = balanced(8000)
    images = images_for(8000)
    r = make_noisy_labels(labels, "instance", 0.3, 10, seed=0, images=images)
    assert r.expected_rate == pytest.approx(truncated_normal_mean(0.3, 0.1))
    assert within(r.actual_rate, r.expected_rate, 8000)
    other = make_noisy_labels(labels, "instance", 0.3, 10, seed=0, images=images_for(8000, 1))
    assert not torch.equal(r.labels, other.labels)  # the flips depend on the images


def test_instance_float_images_used_as_given() -> None:
    labels = balanced(100, 4)
    x = torch.randn(100, 6, generator=torch.Generator().manual_seed(0))
    a = make_noisy_labels(labels, "instance", 0.4, 4, seed=1, images=x)
    b = make_noisy_labels(labels, "instance", 0.4, 4, seed=1, images=x * 2)
    assert a.actual_rate > 0 and not torch.equal(a.labels, b.labels)


def test_instance_rate_zero_is_clean() -> None:
    labels = balanced(100)
    r = make_noisy_labels(labels, "instance", 0.0, 10, seed=0, images=images_for(100))
    assert r.actual_rate == 0.0 and r.expected_rate == 0.0


def test_instance_needs_images() -> None:
    with pytest.raises(ConfigError, match=r"instance noise needs the training images"):
        make_noisy_labels(balanced(10), "instance", 0.2, 10, seed=0)
    with pytest.raises(ConfigError, match="instance noise got 9 images for 10 labels"):
        make_noisy_labels(balanced(10), "instance", 0.2, 10, seed=0, images=images_for(9))


# -- determinism -----------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["symmetric", "asymmetric", "instance"])
def test_seeded(kind: str) -> None:
    labels = balanced(2000)
    kw = {"images": images_for(2000), "dataset": "cifar10"}
    a = make_noisy_labels(labels, kind, 0.4, 10, seed=7, **kw)
    b = make_noisy_labels(labels, kind, 0.4, 10, seed=7, **kw)
    c = make_noisy_labels(labels, kind, 0.4, 10, seed=8, **kw)
    assert torch.equal(a.labels, b.labels)
    assert not torch.equal(a.labels, c.labels)


def test_none_is_identity() -> None:
    labels = balanced(50)
    r = make_noisy_labels(labels, "none", 0.0, 10, seed=0)
    assert torch.equal(r.labels, labels) and r.actual_rate == 0.0
    assert torch.equal(r.transition_matrix, torch.eye(10, dtype=torch.float64))
    with pytest.raises(ConfigError, match="noise kind 'none' needs rate 0, got 0.2"):
        make_noisy_labels(labels, "none", 0.2, 10, seed=0)


# -- CIFAR-N ---------------------------------------------------------------------------------

@pytest.fixture
def cifar_n(tmp_path: Path) -> tuple[Path, torch.Tensor, dict[str, torch.Tensor]]:
    labels = balanced(500)
    path = tmp_path / "CIFAR-10_human.pt"
    return path, labels, write_fake_cifar_n(path, labels, flip_fraction=0.3)


@pytest.mark.parametrize("key", ["aggre_label", "worse_label", "random_label3"])
def test_cifar_n_reads_the_key(cifar_n: tuple, key: str) -> None:
    path, labels, table = cifar_n
    r = make_noisy_labels(labels, "cifar-n", 0.0, 10, seed=0, cifar_n_path=path,
                          cifar_n_key=key)
    assert torch.equal(r.labels, table[key])
    assert r.actual_rate == pytest.approx(0.3) and r.expected_rate is None


def test_cifar_n_defaults_and_ignores_rate(cifar_n: tuple) -> None:
    path, labels, table = cifar_n
    r = make_noisy_labels(labels, "cifar-n", 0.7, 10, seed=3, cifar_n_path=str(path))
    assert torch.equal(r.labels, table["worse_label"]) and r.nominal_rate == 0.7


def test_cifar_n_legacy_numpy_file(tmp_path: Path) -> None:
    labels = balanced(100, 100)
    path = tmp_path / "CIFAR-100_human.pt"
    table = write_fake_cifar_n(path, labels, num_classes=100, keys=("noisy_label",),
                               legacy_numpy_names=True)
    assert b"numpy.core.multiarray" in path.read_bytes()
    r = make_noisy_labels(labels, "cifar-n", 0.0, 100, seed=0, cifar_n_path=path)
    assert torch.equal(r.labels, table["noisy_label"])
    assert sorted(load_cifar_n(path)) == ["clean_label", "noisy_label"]


def test_cifar_n_errors(cifar_n: tuple, tmp_path: Path) -> None:
    path, labels, _ = cifar_n
    with pytest.raises(ConfigError, match=(
            r"unknown CIFAR-N key 'worst_label' in .*; available: aggre_label, clean_label, "
            r"random_label1, random_label2, random_label3, worse_label")):
        make_noisy_labels(labels, "cifar-n", 0.0, 10, seed=0, cifar_n_path=path,
                          cifar_n_key="worst_label")
    with pytest.raises(ConfigError, match=r"'worse_label' in .* has 500 labels but the data set "
                                          r"has 400 samples"):
        make_noisy_labels(labels[:400], "cifar-n", 0.0, 10, seed=0, cifar_n_path=path)
    with pytest.raises(ConfigError, match=r"clean_label in .* differs from the data set's labels "
                                          r"at 500 of 500 samples"):
        make_noisy_labels((labels + 1) % 10, "cifar-n", 0.0, 10, seed=0, cifar_n_path=path)
    with pytest.raises(ConfigError, match="cifar-n noise needs the CIFAR-N label file"):
        make_noisy_labels(labels, "cifar-n", 0.0, 10, seed=0)
    with pytest.raises(DataNotFoundError, match=r"CIFAR-N file .*nope.pt not found"):
        make_noisy_labels(labels, "cifar-n", 0.0, 10, seed=0, cifar_n_path=tmp_path / "nope.pt")


class _Evil:
    def __reduce__(self) -> tuple:
        return (print, ("should never run",))


def test_cifar_n_refuses_arbitrary_objects(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "evil.pt"
    torch.save({"worse_label": _Evil()}, path)
    with pytest.raises(ConfigError, match="holds objects other than label arrays"):
        load_cifar_n(path)
    assert "should never run" not in capsys.readouterr().out
    path.write_bytes(b"garbage")
    with pytest.raises(ConfigError, match=r"cannot read CIFAR-N file .*evil.pt: "):
        load_cifar_n(path)
    torch.save([1, 2], path)
    with pytest.raises(ConfigError, match="holds a list, expected a dict"):
        load_cifar_n(path)


# -- argument errors -------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rate": 1.0}, "noise rate=1 is not in [0, 1)"),
        ({"rate": -0.1}, "noise rate=-0.1 is not in [0, 1)"),
        ({"kind": "pairflip"}, "unknown noise kind 'pairflip'; allowed: none, symmetric, "
                               "asymmetric, instance, cifar-n"),
        ({"labels": torch.tensor([0, 10])}, "labels must be in [0, 10), got [0, 10]"),
        ({"labels": torch.tensor([0.0, 1.0])}, "labels must be a 1-D integer tensor"),
        ({"num_classes": 1}, "num_classes=1 is not in [2, inf)"),
        ({"seed": -1}, "seed=-1 is not in [0, inf)"),
    ],
)
def test_invalid_input(kwargs: dict, message: str) -> None:
    args = {"labels": balanced(10), "kind": "symmetric", "rate": 0.2, "num_classes": 10,
            "seed": 0, **kwargs}
    with pytest.raises(ConfigError) as err:
        make_noisy_labels(**args)
    assert message in str(err.value)
