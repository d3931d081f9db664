"""Label noise: rates within binomial tolerance, exact maps, Algorithm 2, CIFAR-N, errors."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from dal_backdoor.config import resolve_config
from dal_backdoor.data import list_noise_kinds, make_noisy_labels
from dal_backdoor.data.authors_labels import authors_label_path
from dal_backdoor.data.datasets import CIFAR100_FINE_TO_COARSE, ImageDataset
from dal_backdoor.data.noise import (
    CIFAR10_ASYMMETRIC,
    INSTANCE_FLIP_STD,
    asymmetric_map,
    describe_noise_source,
    file_sha256,
    load_cifar_n,
    load_label_file,
    noise_seed,
    noisy_labels_for_run,
    transition_matrix,
    truncated_normal_mean,
)
from dal_backdoor.errors import ConfigError, DataNotFoundError
from tests.fakedata import write_fake_cifar_n
from tests.reference import reference_file

N = 20_000


def balanced(n: int = N, k: int = 10) -> torch.Tensor:
    return torch.arange(n) % k


def within(actual: float, p: float, n: int, sigmas: float = 4.0) -> bool:
    return abs(actual - p) <= sigmas * math.sqrt(max(p * (1 - p), 1e-12) / n)


def images_for(n: int, seed: int = 0, shape: tuple[int, ...] = (3, 4, 4)) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, *shape), generator=gen, dtype=torch.uint8)


def test_kinds() -> None:
    assert list_noise_kinds() == ["none", "symmetric", "asymmetric", "instance", "cifar-n",
                                  "file"]


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
    assert r.kind == "symmetric"
    assert r.nominal_rate == 0.3
    assert r.labels.dtype == torch.int64
    assert r.flipped.dtype == torch.bool
    assert torch.equal(r.flipped, r.labels != labels)
    assert torch.equal(r.clean_labels, labels)
    assert r.actual_rate == float(r.flipped.double().mean())
    assert r.num_flipped == int(r.flipped.sum())
    assert r.num_classes == 10
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
    assert set(r.labels[cats].tolist()) == {3, 5}
    assert set(r.labels[dogs].tolist()) == {3, 5}


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
    assert a.actual_rate > 0
    assert not torch.equal(a.labels, b.labels)


def test_instance_rate_zero_is_clean() -> None:
    labels = balanced(100)
    r = make_noisy_labels(labels, "instance", 0.0, 10, seed=0, images=images_for(100))
    assert r.actual_rate == 0.0
    assert r.expected_rate == 0.0


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
    assert torch.equal(r.labels, labels)
    assert r.actual_rate == 0.0
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
    assert r.actual_rate == pytest.approx(0.3)
    assert r.expected_rate is None


def test_cifar_n_defaults_and_ignores_rate(cifar_n: tuple) -> None:
    path, labels, table = cifar_n
    r = make_noisy_labels(labels, "cifar-n", 0.7, 10, seed=3, cifar_n_path=str(path))
    assert torch.equal(r.labels, table["worse_label"])
    assert r.nominal_rate == 0.7


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
                               "asymmetric, instance, cifar-n, file"),
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


# -- instance noise on raw pixels (Xia et al.'s code) -----------------------------------------

def test_instance_raw_features_project_the_0_255_pixels() -> None:
    n, k = 300, 5
    labels = balanced(n, k)
    images = images_for(n, shape=(1, 3, 3))
    raw = make_noisy_labels(labels, "instance", 0.35, k, seed=4, images=images,
                            dataset="fashion-mnist", features="raw")
    # mean 0, std 1/255 turns the reference's normalisation into x * 255: the raw pixels
    ref = _reference_instance(labels, images, 0.35, k, 4, 0.0, 1 / 255)
    assert torch.equal(raw.labels, ref)
    normalized = make_noisy_labels(labels, "instance", 0.35, k, seed=4, images=images,
                                   dataset="fashion-mnist", features="normalized")
    assert torch.equal(normalized.labels, _reference_instance(labels, images, 0.35, k, 4,
                                                              0.2860, 0.3530))
    assert not torch.equal(raw.labels, normalized.labels)
    # the same flip-rate draw: the number of flips follows the same q_i, only targets move
    assert raw.expected_rate == normalized.expected_rate


def test_instance_features_are_checked() -> None:
    with pytest.raises(ConfigError, match=r"unknown instance features 'pca'; allowed: raw, "
                                          r"normalized"):
        make_noisy_labels(balanced(10), "instance", 0.2, 10, seed=0, images=images_for(10),
                          features="pca")


# -- labels from a file ------------------------------------------------------------------------

def _save(path: Path, values: np.ndarray) -> Path:
    np.save(path, values)
    return path


def test_file_noise_reads_the_labels_and_measures_the_rate(tmp_path: Path) -> None:
    clean = balanced(1000)
    noisy = clean.clone()
    noisy[:130] = (noisy[:130] + 3) % 10  # 130 flips, 13 per class
    path = _save(tmp_path / "labels.npy", noisy.numpy().astype(np.int32))
    r = make_noisy_labels(clean, "file", 0.4, 10, seed=0, labels_path=path)
    assert torch.equal(r.labels, noisy)
    assert r.labels.dtype == torch.int64
    assert (r.num_flipped, r.actual_rate, r.expected_rate) == (130, 0.13, None)
    assert r.transition_matrix[0, 3].item() == pytest.approx(13 / 100)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert file_sha256(path) == digest
    again = make_noisy_labels(clean, "file", 0.0, 10, seed=9, labels_path=path,
                              labels_sha256=digest)  # rate and seed play no part
    assert torch.equal(again.labels, noisy)


@pytest.mark.parametrize(("values", "message"), [
    (np.zeros(999, dtype=np.int64), "has 999 labels but the training split has 1000; allowed: "
                                    "one label per training sample"),
    (np.full(1000, 10, dtype=np.int64), "has labels in [10, 10]; allowed: [0, 10)"),
    (np.full(1000, -1, dtype=np.int64), "has labels in [-1, -1]; allowed: [0, 10)"),
    (np.zeros(1000, dtype=np.float32), "holds a float32 array of shape (1000,); allowed: a 1-D "
                                       "integer array"),
    (np.zeros((1000, 1), dtype=np.int64), "holds a int64 array of shape (1000, 1)"),
])
def test_file_noise_errors_are_one_line(tmp_path: Path, values: np.ndarray,
                                        message: str) -> None:
    path = _save(tmp_path / "bad.npy", values)
    with pytest.raises(ConfigError) as err:
        make_noisy_labels(balanced(1000), "file", 0.2, 10, seed=0, labels_path=path)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_file_noise_missing_unreadable_or_changed_file(tmp_path: Path) -> None:
    labels = balanced(10)
    with pytest.raises(ConfigError, match=r"file noise needs a label file"):
        make_noisy_labels(labels, "file", 0.2, 10, seed=0)
    with pytest.raises(DataNotFoundError, match=r"label file .*none.npy not found; the DAL "
                                                r"authors' files: dal-backdoor download"):
        make_noisy_labels(labels, "file", 0.2, 10, seed=0, labels_path=tmp_path / "none.npy")
    text = tmp_path / "labels.npy"
    text.write_text("0,1,2\n")
    with pytest.raises(ConfigError, match=r"cannot read label file .* as a \.npy array"):
        make_noisy_labels(labels, "file", 0.2, 10, seed=0, labels_path=text)
    path = _save(tmp_path / "ok.npy", labels.numpy())
    with pytest.raises(ConfigError, match=r"changed since the run was configured \(sha256 "
                                          r"differs from 0123456789ab\.\.\.\)"):
        make_noisy_labels(labels, "file", 0.2, 10, seed=0, labels_path=path,
                          labels_sha256="0123456789abcdef")


# -- the noise of a run: its noise seed ----------------------------------------------------------

def _split(n: int = 2000) -> ImageDataset:
    return ImageDataset("fake", images_for(n), balanced(n), tuple(str(i) for i in range(10)),
                        (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))


@pytest.mark.parametrize("kind", ["symmetric", "instance"])
def test_one_noise_draw_is_shared_by_the_training_seeds(kind: str) -> None:
    train = _split()
    runs = [resolve_config(dataset="synthetic", device="cpu", noise_kind=kind, noise_rate=0.4,
                           seed=s) for s in (0, 1, 2)]
    draws = [noisy_labels_for_run(c, train, legacy_seed=1000 + c.seed) for c in runs]
    assert all(torch.equal(d.labels, draws[0].labels) for d in draws)
    # the draw of noise seed 0 is what `dal-backdoor noise --seed 0` shows
    direct = make_noisy_labels(train.labels, kind, 0.4, 10, seed=0, images=train.images,
                               dataset="synthetic", **runs[0].noise_params)
    assert torch.equal(draws[0].labels, direct.labels)
    other = noisy_labels_for_run(runs[0].replace(noise_seed=1), train, legacy_seed=0)
    assert not torch.equal(other.labels, draws[0].labels)


def test_legacy_runs_draw_their_noise_from_the_training_seed() -> None:
    train = _split()
    cfg = resolve_config(dataset="synthetic", device="cpu", noise_kind="symmetric",
                         noise_rate=0.4, noise_seed=None)
    assert noise_seed(None, 77) == 77
    assert noise_seed(5, 77) == 5
    legacy = noisy_labels_for_run(cfg, train, legacy_seed=77)
    direct = make_noisy_labels(train.labels, "symmetric", 0.4, 10, seed=77)
    assert torch.equal(legacy.labels, direct.labels)


def test_a_stored_instance_config_keeps_normalised_features() -> None:
    from dal_backdoor.config import RunConfig

    train = _split(500)
    new = resolve_config(dataset="synthetic", device="cpu", noise_kind="instance",
                         noise_rate=0.4)
    stored = {**new.to_dict(), "noise_params": {}}  # written before ``features`` existed
    old = RunConfig.from_dict(stored)
    old_draw = noisy_labels_for_run(old, train, legacy_seed=0)
    normalized = make_noisy_labels(train.labels, "instance", 0.4, 10, seed=0,
                                   images=train.images, dataset="synthetic",
                                   features="normalized")
    assert torch.equal(old_draw.labels, normalized.labels)
    assert not torch.equal(noisy_labels_for_run(new, train, 0).labels, old_draw.labels)


def test_authors_label_path_and_source_descriptions(tmp_path: Path) -> None:
    assert authors_label_path(tmp_path, "symmetric", "cifar10", 0.4) == (
        tmp_path / "dal-labels" / "symmetric" / "cifar10_40.npy")
    assert authors_label_path("r", "instance", "cifar100", 0.2) == Path(
        "r/dal-labels/instance/cifar100_20.npy")
    assert describe_noise_source({"noise_kind": "symmetric", "noise_seed": 0}) == (
        "drawn with noise seed 0")
    assert describe_noise_source({"noise_kind": "symmetric", "noise_seed": None}) == (
        "drawn per training seed")
    assert describe_noise_source({"noise_kind": "file", "noise_params": {
        "labels_path": "/x/cifar10_40.npy", "labels_sha256": "ab" * 32}}) == (
        "label file cifar10_40.npy (sha256 abababababab)")


# -- the DAL authors' label files (copies in ../shared/reference/dal-authors-labels) -----------

#: Class counts of the authors' CIFAR-10 files (CIFAR-10's training split has 5,000 per class).
AUTHORS_CIFAR10_COUNTS = {
    "symmetric/cifar10_20": [4919, 5031, 4965, 5036, 4981, 5019, 5042, 5061, 4984, 4962],
    "symmetric/cifar10_80": [4851, 4984, 5071, 4958, 5056, 5082, 4969, 5005, 4980, 5044],
    "asymmetric/cifar10_20": [5973, 5977, 4027, 4974, 3985, 5026, 5000, 6015, 5000, 4023],
    "asymmetric/cifar10_40": [6992, 7014, 3008, 4973, 2980, 5027, 5000, 7020, 5000, 2986],
    "instance/cifar10_40": [6801, 4662, 3845, 4413, 4175, 5747, 5369, 5032, 4581, 5375],
}
AUTHORS_FILES = [f"{kind}/{ds}_{rate}" for ds in ("cifar10", "cifar100")
                 for kind, rates in (("symmetric", (20, 40, 60, 80)), ("asymmetric", (20, 40)),
                                     ("instance", (20, 40))) for rate in rates]


def _authors(name: str, num_classes: int | None = None) -> torch.Tensor:
    path = reference_file(f"dal-authors-labels/{name}.npy")
    k = num_classes or (100 if "cifar100" in name else 10)
    return load_label_file(path, 50_000, k)


@pytest.mark.parametrize("name", AUTHORS_FILES)
def test_authors_files_load_as_50000_labels(name: str) -> None:
    k = 100 if "cifar100" in name else 10
    labels = _authors(name)
    assert labels.shape == (50_000,)
    assert labels.dtype == torch.int64
    assert int(labels.min()) == 0
    assert int(labels.max()) == k - 1
    if name in AUTHORS_CIFAR10_COUNTS:
        assert torch.bincount(labels, minlength=k).tolist() == AUTHORS_CIFAR10_COUNTS[name]


@pytest.mark.parametrize("rate", [20, 40])
def test_authors_asymmetric_cifar10_files_use_our_class_map(rate: int) -> None:
    # Our map moves truck->automobile, bird->airplane, deer->horse and swaps cat<->dog; frog and
    # ship never move. If the authors used the same map, frog and ship keep exactly 5,000
    # samples and each source/target pair keeps 10,000 between them.
    counts = torch.bincount(_authors(f"asymmetric/cifar10_{rate}"), minlength=10).tolist()
    assert counts[6] == counts[8] == 5000
    for src, dst in CIFAR10_ASYMMETRIC.items():
        assert counts[src] + counts[dst] == 10_000
    moved = sum(5000 - counts[src] for src in (9, 2, 4))  # one-way flips of the 3 sources
    assert moved == {20: 2965, 40: 6026}[rate]  # about rate x 15,000


def test_authors_files_on_a_class_sorted_fake_split() -> None:
    """What a flip rate against a *fake* split measures.

    The true CIFAR-10 labels are not available offline. A fake 50,000-image split with the
    right class counts (5,000 per class) but sorted by class (CIFAR-10's training split is
    not) pairs each file label with an unrelated "true" label: the measured flip rate is then
    about 1 - 1/K = 90% whatever the noise rate. It checks the pipeline end to end (load,
    length and range checks, rate and transition matrix of a ``file`` run) and shows that a
    label file only means something in the order of torchvision's split.
    """
    fake = torch.arange(50_000) // 5000
    flips = {}
    for name in ("symmetric/cifar10_20", "symmetric/cifar10_80", "asymmetric/cifar10_20",
                 "instance/cifar10_40"):
        path = reference_file(f"dal-authors-labels/{name}.npy")
        r = make_noisy_labels(fake, "file", 0.0, 10, seed=0, labels_path=path)
        flips[name] = r.num_flipped
        assert r.actual_rate == r.num_flipped / 50_000
        assert r.expected_rate is None
        assert torch.allclose(r.transition_matrix.sum(dim=1), torch.ones(10, dtype=torch.float64))
    assert flips == {"symmetric/cifar10_20": 44995, "symmetric/cifar10_80": 44931,
                     "asymmetric/cifar10_20": 44993, "instance/cifar10_40": 44989}


def _estimated_true_cifar10_labels() -> torch.Tensor:
    """An estimate of CIFAR-10's true training labels from the authors' eight files.

    Asymmetric noise only moves a source class to its target, so the two asymmetric files
    restrict each sample to at most two candidates (exactly one for 48% of the samples); a
    weighted vote of the six other files (weights log(a (K-1) / (1 - a)) from each file's
    agreement a with the current estimate, five rounds) picks among them.
    """
    files = {n: _authors(n).numpy() for n in AUTHORS_FILES if "cifar10_" in n}
    n = 50_000
    sources = {j: {j} for j in range(10)}
    for src, dst in CIFAR10_ASYMMETRIC.items():
        sources[dst] = sources[dst] | {src}
    allowed = np.ones((n, 10), dtype=bool)
    for name in ("asymmetric/cifar10_20", "asymmetric/cifar10_40"):
        mask = np.zeros((n, 10), dtype=bool)
        for j, origin in sources.items():
            mask[np.ix_(files[name] == j, sorted(origin))] = True
        allowed &= mask
    voters = [v for k, v in files.items() if not k.startswith("asymmetric")]
    agreement = [0.8] * len(voters)
    for _ in range(5):
        score = np.zeros((n, 10))
        for a, labels in zip(agreement, voters, strict=True):
            score[np.arange(n), labels] += math.log(a * 9 / (1 - a))
        estimate = np.where(allowed, score, -np.inf).argmax(axis=1)
        agreement = [float((labels == estimate).mean()) for labels in voters]
    return torch.from_numpy(estimate)


def test_estimated_flip_rates_of_the_authors_cifar10_files() -> None:
    """Flip rates against estimated true labels: the authors' conventions, within 1 point.

    Symmetric noise resamples among all K classes (expected flip rate rate x 9/10), asymmetric
    noise moves half of the classes (rate x 1/2 of all samples), instance noise flips ``rate``.
    """
    estimate = _estimated_true_cifar10_labels()
    counts = torch.bincount(estimate, minlength=10)
    assert int(counts.min()) >= 4800
    assert int(counts.max()) <= 5200  # true: 5,000 each
    expected = {"symmetric": 0.9, "asymmetric": 0.5, "instance": 1.0}
    for name in (n for n in AUTHORS_FILES if "cifar10_" in n):
        kind, rate = name.split("/")[0], int(name.rsplit("_", 1)[1]) / 100
        measured = make_noisy_labels(estimate, "file", 0.0, 10, seed=0,
                                     labels_path=reference_file(
                                         f"dal-authors-labels/{name}.npy")).actual_rate
        assert measured == pytest.approx(expected[kind] * rate, abs=0.01), name
