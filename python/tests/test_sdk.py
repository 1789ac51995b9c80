"""The SDK against a real `ppdnn serve`: answers equal `ppdnn predict --json`
bit for bit, in both modes, from paths and from numpy arrays; errors raise
the exceptions the documentation names."""

import json
import os
import subprocess

import numpy as np
import pytest

import ppdnn
from conftest import ROOT, ppdnn_bin


def test_classify_the_example_digits_in_the_private_mode(server, key, digits, predicted):
    client = ppdnn.Client(server.url, key=key)
    assert client.describe()["mode"] == "private"  # the default when the server offers it
    for path in digits[:4]:
        r = client.classify(path)
        expected = predicted[path]
        assert r.logits.tolist() == expected["logits"], path
        assert r.label == expected["label"]
        assert r.class_name == expected["class"]
        assert r.mode == "private" and r.garbled_bytes > 0 and r.retries == []
        np.testing.assert_allclose(r.scores, expected["scores"], rtol=1e-9)
        assert r.seconds > 0 and r.bytes_sent > 0 and r.bytes_received > 0
        assert 0 < r.client_seconds < r.seconds
        assert abs(sum(v for k, v in r.timings.items() if k != "total") - r.timings["total"]) < 1e-9


def test_a_numpy_batch_in_the_fast_mode(server, key, digits, predicted):
    client = ppdnn.Client(server.url, key=key, mode="fast")
    batch = np.stack([ppdnn.load_png(p) for p in digits[4:10]])  # shape (6, 1, 28, 28), uint8
    assert batch.shape == (6, 1, 28, 28) and batch.dtype == np.uint8
    results = client.classify_many(batch, progress=True)
    assert len(results) == 6
    for path, r in zip(digits[4:10], results):
        assert r.mode == "fast" and r.garbled_bytes == 0
        assert r.logits.tolist() == predicted[path]["logits"], path
    # A 28x28 array and a wider integer dtype with pixel values are accepted too.
    r = client.classify(batch[0][0].astype(np.int32))
    assert r.logits.tolist() == predicted[digits[4]]["logits"]


def test_npy_files_through_the_sdk_and_the_cli(server, key, digits, predicted, tmp_path):
    batch = np.stack([ppdnn.load_png(p) for p in digits[:3]])
    np.save(tmp_path / "one.npy", batch[1])
    np.save(tmp_path / "batch.npy", batch[:, 0])  # shape (3, 28, 28)
    client = ppdnn.Client(server.url, key=key, mode="fast")
    assert client.classify(tmp_path / "one.npy").logits.tolist() == predicted[digits[1]]["logits"]
    out = subprocess.run([ppdnn_bin(), "classify", "--server", server.url, "--mode", "fast", "--bits", "1024",
                          "--insecure-small-keys", "--json", str(tmp_path / "batch.npy")],
                         cwd=ROOT, check=True, capture_output=True, text=True).stdout
    got = json.loads(out)
    assert [g["file"] for g in got] == [f"{tmp_path / 'batch.npy'}[{i}]" for i in range(3)]
    assert [g["logits"] for g in got] == [predicted[p]["logits"] for p in digits[:3]]


def test_label_only(server, key, digits, predicted):
    client = ppdnn.Client(server.url, key=key, output="label")
    r = client.classify(digits[0])
    assert r.label == predicted[digits[0]]["label"]
    assert r.output == "label" and r.logits.size == 0 and r.scores.size == 0


def test_models_and_describe(server, key):
    client = ppdnn.Client(server.url, key=key)
    models = client.models()
    assert [m["name"] for m in models] == ["lenet5-mnist"]
    assert sorted(models[0]["modes"]) == ["fast", "private"]
    d = client.describe("lenet5-mnist")
    assert d["input_shape"] == [1, 28, 28] and len(d["classes"]) == 10 and d["key_bits"] == 1024
    assert d["digest"] == models[0]["digest"]


def test_errors_raise_the_documented_exceptions(server, key, tmp_path):
    with pytest.raises(ppdnn.ConnectError):
        ppdnn.Client("http://127.0.0.1:1", key=key)
    client = ppdnn.Client(server.url, key=key)
    with pytest.raises(ppdnn.ServerError) as e:
        client.classify(np.zeros((1, 28, 28), np.uint8), model="no-such-model")
    assert e.value.code == "NOT_FOUND" and "no-such-model" in e.value.message
    # The server accepts 1024-bit keys only: a 2048-bit key is refused.
    big = ppdnn.Key.generate(2048)
    with pytest.raises(ppdnn.ServerError) as e:
        ppdnn.Client(server.url, key=big).classify(np.zeros((28, 28), np.uint8))
    assert e.value.code in ("INVALID_ARGUMENT", "FAILED_PRECONDITION") and "2048" in e.value.message
    with pytest.raises(ValueError, match="shape"):
        client.classify(np.zeros((3, 28, 28), np.uint8))
    with pytest.raises(ValueError, match="0..255"):
        client.classify(np.full((28, 28), 0.5))
    with pytest.raises(ValueError, match="0..255"):
        client.classify(np.full((28, 28), 300))
    with pytest.raises(TypeError):
        client.classify([0] * 784)
    with pytest.raises(ppdnn.Error, match="not a readable image"):
        bad = tmp_path / "bad.png"
        bad.write_bytes(b"not a png")
        client.classify(bad)
    with pytest.raises(ValueError, match="mode"):
        ppdnn.Client(server.url, key=key, mode="turbo")
    # The library's errors all share one base.
    assert issubclass(ppdnn.ServerError, ppdnn.Error) and issubclass(ppdnn.ConnectError, ppdnn.Error)


def test_the_gil_is_released_while_classifying(server, key, digits, predicted):
    """Two threads classify at once; a third keeps running Python meanwhile."""
    import threading

    client = ppdnn.Client(server.url, key=key, mode="fast")
    client.classify(digits[0])  # connected and planned
    ticks = []
    done = threading.Event()

    def ticker():
        while not done.is_set():
            ticks.append(1)
            done.wait(0.01)

    out = {}

    def work(i):
        out[i] = client.classify(digits[i]).logits.tolist()

    t = threading.Thread(target=ticker)
    t.start()
    workers = [threading.Thread(target=work, args=(i,)) for i in (1, 2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    done.set()
    t.join()
    assert out[1] == predicted[digits[1]]["logits"] and out[2] == predicted[digits[2]]["logits"]
    assert len(ticks) > 5  # Python ran while the two inferences were computed


def test_keys_round_trip_through_files_shared_with_the_cli(key, tmp_path):
    path = tmp_path / "key.json"
    key.save(path)
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    again = ppdnn.Key.load(path, insecure=True)
    assert again.n == key.n and again.bits == 1024
    # The CLI decrypts what the SDK encrypted, and the SDK what the CLI encrypted.
    c = key.encrypt(-12345)
    out = subprocess.run([ppdnn_bin(), "decrypt", "--key", str(path), "--insecure-small-keys", str(c.value)],
                         cwd=ROOT, check=True, capture_output=True, text=True).stdout.split()
    assert out == ["-12345"]
    out = subprocess.run([ppdnn_bin(), "encrypt", "--key", str(path), "--insecure-small-keys", "777"],
                         cwd=ROOT, check=True, capture_output=True, text=True).stdout.split()
    assert key.decrypt(key.public().ciphertext_from_int(int(out[0]))) == 777
    public = tmp_path / "public.json"
    key.public().save(public)
    assert ppdnn.PublicKey.load(public, insecure=True) == key.public()
    with pytest.raises(ValueError):
        ppdnn.Key.load(path)  # 1024 bits is refused without insecure=True
    with pytest.raises(OSError):
        ppdnn.Key.load(tmp_path / "missing.json")


def test_paillier_arithmetic_and_bytes(key):
    pk = key.public()
    a, b = pk.encrypt(1234), key.encrypt(-34)
    assert key.decrypt(a + b) == 1200
    assert key.decrypt(a - b) == 1268
    assert key.decrypt(a + 66) == 1300 and key.decrypt(66 + a) == 1300
    assert key.decrypt(a * -3) == -3702 and key.decrypt(2 * a) == 2468
    assert key.decrypt(-a) == -1234 and key.decrypt(10 - a) == -1224
    big = (key.n - 1) // 2  # the largest plaintext
    assert key.decrypt(pk.encrypt(big)) == big and key.decrypt(pk.encrypt(-big)) == -big
    with pytest.raises(ValueError, match="range"):
        pk.encrypt(big + 1)
    data = a.to_bytes()
    assert len(data) == 256 and pk.ciphertext_from_bytes(data) == a
    assert key.encrypt(5) != key.encrypt(5)  # fresh randomness every time
    with pytest.raises(ValueError):
        pk.ciphertext_from_bytes(b"\x00" * 256)  # zero is not a ciphertext
    with pytest.raises(ValueError):
        pk.ciphertext_from_bytes(data[:-1])
    with pytest.raises(TypeError):
        a * a
    with pytest.raises(TypeError):
        pk.encrypt(1.5)
    other = ppdnn.Key.generate(1024, insecure=True)
    with pytest.raises(ValueError, match="different keys"):
        a + other.encrypt(1)
    with pytest.raises(ValueError, match="another key"):
        other.decrypt(a)


def test_python_paillier_interoperates(key, tmp_path):
    phe = pytest.importorskip("phe")
    path = tmp_path / "key.json"
    key.save(path)
    numbers = json.loads(path.read_text())
    phe_public = phe.PaillierPublicKey(int(numbers["n"]))
    phe_private = phe.PaillierPrivateKey(phe_public, int(numbers["p"]), int(numbers["q"]))
    # ppdnn -> phe
    for m in [0, 1, -1, 123456789, -987654321]:
        c = key.encrypt(m)
        assert phe_private.decrypt(phe.EncryptedNumber(phe_public, c.value, 0)) == m
    # phe -> ppdnn, including a sum computed by phe
    x, y = phe_public.encrypt(4242), phe_public.encrypt(-42)
    z = x + y
    assert z.exponent == 0
    assert key.decrypt(key.public().ciphertext_from_int(z.ciphertext())) == 4200
    # and an operation by ppdnn on phe's ciphertext, read back by phe
    w = key.public().ciphertext_from_int(x.ciphertext(be_secure=False)) * 3
    assert phe_private.decrypt(phe.EncryptedNumber(phe_public, w.value, 0)) == 12726


def test_one_server_serves_several_models_each_with_its_own_plan(key, digits, tmp_path):
    """`ppdnn serve --model A --model B`: each model answers as its own plaintext model."""
    from conftest import Server

    models = ["models/lenet5-mnist.safetensors", "models/lenet5-fashion-mnist.safetensors"]
    s = Server(tmp_path / "serve.log", "--modes", "private,fast", *[a for m in models for a in ("--model", m)])
    try:
        client = ppdnn.Client(s.url, key=key, mode="fast")
        names = [m["name"] for m in client.models()]
        assert names == ["lenet5-mnist", "lenet5-fashion-mnist"]
        assert client.describe(names[0])["digest"] != client.describe(names[1])["digest"]
        for name, path in zip(names, models):
            expected = json.loads(subprocess.run([ppdnn_bin(), "predict", "--json", "--model", path, *digits[:2]],
                                                 cwd=ROOT, check=True, capture_output=True, text=True).stdout)
            for d, e in zip(digits[:2], expected):
                r = client.classify(d, model=name)
                assert r.model == name and r.logits.tolist() == e["logits"] and r.class_name == e["class"]
    finally:
        s.stop()


def _png_rgb(path, pixels):
    """Writes an RGB PNG (height x width x 3 uint8) with zlib alone."""
    import struct
    import zlib

    h, w, _ = pixels.shape
    raw = b"".join(b"\x00" + pixels[y].tobytes() for y in range(h))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def test_an_imported_colour_network_through_the_sdk(key, tmp_path):
    """An ONNX fixture with 3x16x16 inputs, batch norm, max and average pooling
    and a stride-2 convolution: imported with `ppdnn import`, served, and
    classified from an RGB PNG and from numpy arrays in both modes, equal to
    `ppdnn predict --json`."""
    from conftest import Server

    rng = np.random.default_rng(5)
    calibration = rng.integers(0, 256, size=(16, 3, 16, 16), dtype=np.uint8)
    np.save(tmp_path / "calibration.npy", calibration)
    model = tmp_path / "rgb.safetensors"
    subprocess.run([ppdnn_bin(), "import", "crates/onnx/tests/data/rgb_cnn.onnx", "--calibration",
                    str(tmp_path / "calibration.npy"), "--out", str(model)], cwd=ROOT, check=True, capture_output=True)
    image = rng.integers(0, 256, size=(16, 16, 3), dtype=np.uint8)
    png = tmp_path / "image.png"
    _png_rgb(png, image)
    assert (ppdnn.load_png(png, (3, 16, 16)) == image.transpose(2, 0, 1)).all(), "RGB planes in channel order"
    expected = json.loads(subprocess.run([ppdnn_bin(), "predict", "--json", "--model", str(model), str(png)],
                                         cwd=ROOT, check=True, capture_output=True, text=True).stdout)[0]
    s = Server(tmp_path / "serve.log", "--modes", "private,fast", "--model", str(model))
    try:
        for mode in ["private", "fast"]:
            client = ppdnn.Client(s.url, key=key, mode=mode)
            assert client.describe("rgb")["input_shape"] == [3, 16, 16]
            for x in [str(png), image.transpose(2, 0, 1)]:
                r = client.classify(x)
                assert r.logits.tolist() == expected["logits"] and r.label == expected["label"], mode
            with pytest.raises(ValueError):
                client.classify(np.zeros((1, 28, 28), dtype=np.uint8))
    finally:
        s.stop()
