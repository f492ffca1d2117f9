"""Dataset loaders on real files: bundled IDX, raw and broken IDX, image folders, a CIFAR-format
tarball, the offline-missing-data error, downloads from a local server, and the batch stream."""
import functools
import gzip
import hashlib
import http.server
import io
import os
import pickle
import shutil
import tarfile
import threading

import cv2
import numpy as np
import pytest

from paddle_gan import data as D
from paddle_gan.data import BUNDLED_DIR, BatchStream, DataError
from paddle_gan.data import idx as IDX


@pytest.fixture
def no_default_dirs(tmp_path, monkeypatch):
    """Hide Paddle's cache, Debian's folder and the bundled copy: only data.root counts."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setattr(IDX, "DEBIAN_FASHION_DIR", str(tmp_path / "no-debian"))
    monkeypatch.setattr(IDX, "BUNDLED_DIR", str(tmp_path / "no-bundle"))


def test_bundled_fashion_mnist():
    ds = D.load_idx_dataset("fashion_mnist", BUNDLED_DIR, "test", img_size=28, channels=1)
    assert len(ds) == 10000 and ds.images.shape == (10000, 1, 28, 28) and ds.images.dtype == np.uint8
    assert sorted(np.unique(ds.labels)) == list(range(10)) and np.bincount(ds.labels).tolist() == [1000] * 10
    x, y = ds[0]
    assert x.shape == (1, 28, 28) and x.dtype == np.float32 and x.min() >= -1 and x.max() <= 1
    assert x.min() == -1.0 and y == ds.labels[0]  # background pixels are 0 -> -1
    # resized for DCGAN-32; still the same images
    ds32 = D.load_idx_dataset("fashion_mnist", BUNDLED_DIR, "test", img_size=32, channels=1, limit=100)
    assert ds32.images.shape == (100, 1, 32, 32)
    small = cv2.resize(ds32.images[5, 0], (28, 28), interpolation=cv2.INTER_AREA).astype(float)
    assert np.corrcoef(small.ravel(), ds.images[5, 0].ravel().astype(float))[0, 1] > 0.95


def test_raw_idx_in_data_root_paddle_cache_and_debian_folder(tmp_path, no_default_dirs, monkeypatch):
    root = tmp_path / "root"
    root.mkdir()
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):  # un-gzipped copies
        (root / name).write_bytes(gzip.decompress((open(os.path.join(BUNDLED_DIR, name + ".gz"), "rb").read())))
    ds = D.load_idx_dataset("fashion_mnist", str(root), "test", 28, 1, download=False, limit=10)
    assert ds.images.shape == (10, 1, 28, 28)
    # MNIST from Paddle's cache folder (~/.cache/paddle/dataset/mnist)
    cache = tmp_path / "home" / ".cache" / "paddle" / "dataset" / "mnist"
    shutil.copytree(root, cache)
    assert len(D.load_idx_dataset("mnist", "", "test", 28, 1, download=False)) == 10000
    # Fashion-MNIST from Debian's dataset-fashion-mnist folder
    monkeypatch.setattr(IDX, "DEBIAN_FASHION_DIR", str(root))
    assert len(D.load_idx_dataset("fashion_mnist", "", "test", 28, 1, download=False)) == 10000


def _broken_idx(tmp_path, payload):
    root = tmp_path / "broken"
    root.mkdir(exist_ok=True)
    (root / "t10k-images-idx3-ubyte").write_bytes(payload)
    shutil.copy(os.path.join(BUNDLED_DIR, "t10k-labels-idx1-ubyte.gz"), root)
    return str(root)


def test_bad_magic_and_truncated_idx(tmp_path, no_default_dirs):
    raw = gzip.decompress(open(os.path.join(BUNDLED_DIR, "t10k-images-idx3-ubyte.gz"), "rb").read())
    with pytest.raises(DataError, match="bad magic"):
        D.load_idx_dataset("fashion_mnist", _broken_idx(tmp_path, b"\x00\x00\x0d\x03" + raw[4:]), "test", 28, 1)
    with pytest.raises(DataError, match="truncated"):
        D.load_idx_dataset("fashion_mnist", _broken_idx(tmp_path, raw[:-100]), "test", 28, 1)


def test_offline_missing_data_is_one_clear_line(tmp_path, no_default_dirs, monkeypatch):
    monkeypatch.setitem(D.IDX_SOURCES, "mnist", ("mnist", "http://127.0.0.1:9/mnist/", D.IDX_SOURCES["mnist"][2]))
    with pytest.raises(DataError) as e:  # no data.root: the default places, then a download
        D.load_idx_dataset("mnist", "", "train", 28, 1)
    msg = str(e.value)
    assert "\n" not in msg and "train-images-idx3-ubyte.gz not found in" in msg
    assert os.path.join(".cache", "paddle", "dataset", "mnist") in msg
    assert "could not download" in msg and "set data.root" in msg
    # an explicit data.root is the only place looked at: a missing one is named, never passed over
    with pytest.raises(DataError, match=r"data.root '.*mine' does not exist"):
        D.load_idx_dataset("mnist", str(tmp_path / "mine"), "train", 28, 1)
    (tmp_path / "mine").mkdir()
    with pytest.raises(DataError) as e:
        D.load_idx_dataset("mnist", str(tmp_path / "mine"), "train", 28, 1)
    assert f"not found in {tmp_path / 'mine'}, and could not download" in str(e.value)
    assert ".cache" not in str(e.value)
    with pytest.raises(DataError, match="data.download is false"):
        D.load_idx_dataset("mnist", "", "train", 28, 1, download=False)


@pytest.fixture
def local_server(tmp_path):
    """An HTTP server on 127.0.0.1 serving tmp_path/www; yields (folder, base url)."""
    www = tmp_path / "www"
    www.mkdir()
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(www))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield www, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


def test_download_with_checksum(tmp_path, no_default_dirs, monkeypatch, local_server):
    www, url = local_server
    md5s = {}
    for f in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        shutil.copy(os.path.join(BUNDLED_DIR, f), www)
        md5s[f] = hashlib.md5(open(www / f, "rb").read()).hexdigest()
    monkeypatch.setitem(D.IDX_SOURCES, "mnist", ("mnist", url, md5s))
    ds = D.load_idx_dataset("mnist", "", "test", 28, 1)
    assert len(ds) == 10000
    assert os.path.isfile(tmp_path / "home" / ".cache" / "paddle" / "dataset" / "mnist" / "t10k-images-idx3-ubyte.gz")
    # a file whose checksum does not match is refused and not kept
    shutil.rmtree(tmp_path / "home")
    bad = dict(md5s, **{"t10k-images-idx3-ubyte.gz": "0" * 32})
    monkeypatch.setitem(D.IDX_SOURCES, "mnist", ("mnist", url, bad))
    (tmp_path / "fresh").mkdir()  # an explicit data.root must exist; missing files are downloaded into it
    with pytest.raises(DataError, match="MD5"):
        D.load_idx_dataset("mnist", str(tmp_path / "fresh"), "test", 28, 1)
    assert not (tmp_path / "fresh" / "t10k-images-idx3-ubyte.gz").exists()


def _images_folder(tmp_path):
    root = tmp_path / "imgs"
    (root / "a" / "b").mkdir(parents=True)
    rng = np.random.default_rng(0)
    cv2.imwrite(str(root / "rgb.png"), rng.integers(0, 255, (40, 60, 3), dtype=np.uint8))
    cv2.imwrite(str(root / "a" / "grey.jpg"), rng.integers(0, 255, (50, 50), dtype=np.uint8))
    cv2.imwrite(str(root / "a" / "b" / "rgba.PNG"), rng.integers(0, 255, (30, 20, 4), dtype=np.uint8))
    cv2.imwrite(str(root / "a" / "b" / "x.bmp"), rng.integers(0, 255, (16, 16, 3), dtype=np.uint8))
    cv2.imwrite(str(root / "a" / "pic.webp"), rng.integers(0, 255, (24, 24, 3), dtype=np.uint8))
    (root / "a" / "broken.jpg").write_bytes(b"not an image")
    (root / "notes.txt").write_text("ignored")
    # a left half red / right half blue image: the centre crop must keep both halves, in RGB order
    img = np.zeros((20, 40, 3), np.uint8)
    img[:, :20] = (0, 0, 255)  # BGR red
    img[:, 20:] = (255, 0, 0)  # BGR blue
    cv2.imwrite(str(root / "halves.png"), img)
    return root


def test_image_folder(tmp_path, capsys):
    root = _images_folder(tmp_path)
    ds = D.load_image_folder(str(root), img_size=8, channels=3)
    assert ds.images.shape == (6, 3, 8, 8) and ds.images.dtype == np.uint8
    assert "skipped 1 of 7" in capsys.readouterr().err
    # files are taken in sorted path order: a/b/rgba.PNG, a/b/x.bmp, a/grey.jpg, a/pic.webp, halves.png, rgb.png
    halves = ds.images[4]
    assert halves[0, :, :3].min() > 200 and halves[2, :, :3].max() < 50  # left: red (R high, B low)
    assert halves[2, :, 5:].min() > 200 and halves[0, :, 5:].max() < 50  # right: blue
    # greyscale config reads everything as one channel; the second load comes from the cache
    grey = D.load_image_folder(str(root), img_size=8, channels=1)
    assert grey.images.shape == (6, 1, 8, 8)
    again = D.load_image_folder(str(root), img_size=8, channels=1)
    assert "from cache" in capsys.readouterr().err and np.array_equal(np.asarray(again.images), grey.images)


def test_image_folder_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="holds no"):
        D.load_image_folder(str(tmp_path / "empty"), 8, 3)
    (tmp_path / "file.png").write_bytes(b"x")
    with pytest.raises(DataError, match="is a file"):
        D.load_image_folder(str(tmp_path / "file.png"), 8, 3)
    with pytest.raises(DataError, match="does not exist"):
        D.load_image_folder(str(tmp_path / "nowhere"), 8, 3)
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "a.jpg").write_bytes(b"garbage")
    with pytest.raises(DataError, match="none of the 1 image files decode"):
        D.load_image_folder(str(tmp_path / "junk"), 8, 3)


def _cifar_tarball(path, n_per_batch=4):
    rng = np.random.default_rng(0)
    with tarfile.open(path, "w:gz") as tar:
        for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
            batch = {b"data": rng.integers(0, 255, (n_per_batch, 3072), dtype=np.uint8),
                     b"labels": list(rng.integers(0, 10, n_per_batch))}
            payload = pickle.dumps(batch)
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    return rng


def test_cifar10_tarball(tmp_path, no_default_dirs):
    _cifar_tarball(tmp_path / "cifar-10-python.tar.gz")
    train = D.load_cifar10(str(tmp_path), "train", img_size=32, channels=3, download=False)
    test = D.load_cifar10(str(tmp_path), "test", img_size=32, channels=3, download=False)
    assert train.images.shape == (20, 3, 32, 32) and test.images.shape == (4, 3, 32, 32)
    with tarfile.open(tmp_path / "cifar-10-python.tar.gz") as tar:
        first = pickle.load(tar.extractfile("cifar-10-batches-py/data_batch_1"), encoding="bytes")
    np.testing.assert_array_equal(train.images[0].ravel(), first[b"data"][0])  # CHW order kept
    assert train.labels[:4].tolist() == list(first[b"labels"])
    assert D.load_cifar10(str(tmp_path), "test", 64, 1, download=False).images.shape == (4, 1, 64, 64)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "cifar-10-python.tar.gz").write_bytes(b"not a tarball")
    with pytest.raises(DataError, match="cannot read CIFAR-10"):
        D.load_cifar10(str(tmp_path / "bad"), "train", 32, 3, download=False)


def test_greyscale_dataset_in_rgb_config_is_an_error():
    with pytest.raises(DataError, match="model.channels=1"):
        D.load_idx_dataset("fashion_mnist", BUNDLED_DIR, "test", 32, 3)


def test_batch_stream_is_resumable_and_seeded():
    images = np.arange(10, dtype=np.uint8).reshape(10, 1, 1, 1)
    a = BatchStream(images, 3, seed=1)
    batches = [a.next() for _ in range(7)]  # 3 batches per epoch (one image dropped each epoch)
    b = BatchStream(images, 3, seed=1)
    for _ in range(4):
        b.next()
    c = BatchStream(images, 3, seed=1)
    c.load_state_dict(b.state_dict())
    for want in batches[4:]:
        np.testing.assert_array_equal(c.next(), want)
    epoch0 = np.concatenate([x.ravel() for x in batches[:3]])
    epoch1 = np.concatenate([x.ravel() for x in batches[3:6]])
    assert len(set(epoch0)) == 9 and not np.array_equal(epoch0, epoch1)  # no repeats within an epoch
    other = BatchStream(images, 3, seed=2)
    assert not all(np.array_equal(other.next(), x) for x in batches[:3])
    with pytest.raises(DataError, match="fewer than train.batch_size"):
        BatchStream(images, 11, seed=0)
