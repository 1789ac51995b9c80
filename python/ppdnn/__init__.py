"""ppdnn: classify with a server that never sees your input.

The input is encrypted under a Paillier key only you hold; the server
evaluates its neural network on the ciphertexts; only you can read the answer.
In the private mode (the default when the server offers it) you learn the
answer and nothing else about the server's model.

    import ppdnn
    client = ppdnn.Client("http://127.0.0.1:50051")
    result = client.classify("examples/digits/0000-7.png")
    print(result.label, result.scores)

The protocol, encoding and packing are the Rust crates' own (this package
wraps them), so answers are bit-identical to the `ppdnn` command line's.
Paillier can also be used directly, as python-paillier (phe) is:

    key = ppdnn.Key.generate(bits=2048)
    c = key.encrypt(20) + key.encrypt(22) * 1
    assert key.decrypt(c) == 42
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np

from ._native import (
    Ciphertext,
    ConnectError,
    Error,
    Key,
    ProtocolError,
    PublicKey,
    ServerError,
    __version__,
)
from ._native import Client as _NativeClient
from ._native import load_png as _load_png

__all__ = [
    "Ciphertext",
    "Client",
    "ConnectError",
    "Error",
    "Key",
    "ProtocolError",
    "PublicKey",
    "Result",
    "ServerError",
    "__version__",
    "load_png",
]

Input = Union[str, "os.PathLike[str]", np.ndarray]


@dataclass(frozen=True)
class Result:
    """One classified input.

    ``logits`` are the integer logits, identical to the plaintext integer
    model's (empty, like ``scores``, when only the label was asked for);
    ``scores`` are the class probabilities; ``seconds`` is the inference's
    wall time, of which ``client_seconds`` computing on this side
    (encrypting, decrypting, garbling) and the rest waiting for the server
    and the network (``timings`` has all three); ``retries`` says why
    earlier attempts failed, if any did.
    """

    label: int
    class_name: str
    scores: np.ndarray
    logits: np.ndarray
    model: str
    mode: str
    output: str
    seconds: float
    client_seconds: float
    bytes_sent: int
    bytes_received: int
    garbled_bytes: int
    retries: List[str] = field(default_factory=list)

    @property
    def timings(self) -> Dict[str, float]:
        """Seconds in all, computing on the client, and waiting for the server and the network."""
        return {
            "total": self.seconds,
            "client": self.client_seconds,
            "server_and_network": max(0.0, self.seconds - self.client_seconds),
        }

    @staticmethod
    def _from_native(d: Dict[str, Any]) -> "Result":
        return Result(
            label=d["label"],
            class_name=d["class_name"],
            scores=np.asarray(d["scores"], dtype=np.float64),
            logits=np.asarray(d["logits"], dtype=np.int64),
            model=d["model"],
            mode=d["mode"],
            output=d["output"],
            seconds=d["seconds"],
            client_seconds=d["client_seconds"],
            bytes_sent=d["bytes_sent"],
            bytes_received=d["bytes_received"],
            garbled_bytes=d["garbled_bytes"],
            retries=list(d["retries"]),
        )


def load_png(path: Union[str, "os.PathLike[str]"], shape: Tuple[int, int, int] = (1, 28, 28)) -> np.ndarray:
    """A PNG as a model input of ``shape`` (channels, height, width), uint8.
    For the shipped models' 1x28x28: any size, grey or colour, centred,
    resized, white on black. Otherwise grey (1 channel) or RGB planes (3),
    resized at the same aspect ratio, refused at another."""
    shape = tuple(int(d) for d in shape)
    return np.frombuffer(_load_png(os.fspath(path), shape), dtype=np.uint8).reshape(shape).copy()


class Client:
    """A connection to a ppdnn server and the key that encrypts your inputs.

    ``key``: a :class:`Key` (a fresh one of ``bits`` bits is generated when
    None). ``mode``: ``"private"`` (the server's model stays private) or
    ``"fast"``; None picks private when the server offers it. ``output``:
    ``"logits"`` or, in the private mode, ``"label"`` (learn the label
    only). ``ca``: a CA certificate (a PEM file's path, or its bytes) to trust
    for an ``https://`` server. An inference whose stream fails with
    UNAVAILABLE or RESOURCE_EXHAUSTED is retried with backoff, up to
    ``attempts`` tries in all; ``Result.retries`` says so.
    """

    def __init__(
        self,
        url: str,
        key: Optional[Key] = None,
        mode: Optional[str] = None,
        ca: Union[None, bytes, str, "os.PathLike[str]"] = None,
        *,
        output: str = "logits",
        attempts: int = 4,
        bits: int = 2048,
        insecure: bool = False,
        max_message_mib: int = 4,
    ) -> None:
        if ca is not None and not isinstance(ca, bytes):
            with open(ca, "rb") as f:
                ca = f.read()
        self._native = _NativeClient(
            url,
            key=key,
            mode=mode,
            output=output,
            ca_pem=ca,
            attempts=attempts,
            bits=bits,
            insecure=insecure,
            max_message_mib=max_message_mib,
        )
        self._shapes: Dict[Optional[str], Sequence[int]] = {}

    @property
    def key(self) -> Key:
        """The key that encrypts this client's inputs."""
        return self._native.key

    @property
    def url(self) -> str:
        return self._native.url

    def models(self) -> List[Dict[str, Any]]:
        """The models the server serves (name, dataset, digest, modes)."""
        return self._native.models()

    def describe(self, model: Optional[str] = None) -> Dict[str, Any]:
        """How this client uses ``model`` (the server's first when None):
        name, digest, input_shape, classes, mode, output, key_bits."""
        return self._native.describe(model)

    def classify(self, x: Input, model: Optional[str] = None) -> Result:
        """Classifies one input: a PNG path, a .npy path, or a uint8 numpy
        array of the model's input shape (for MNIST models (1, 28, 28) or
        (28, 28))."""
        pixels = self._pixels(x, model)
        return Result._from_native(self._native.classify(pixels, model))

    def classify_many(
        self, xs: Iterable[Input], model: Optional[str] = None, progress: bool = False
    ) -> List[Result]:
        """Classifies several inputs (paths, arrays, or one array with the
        batch as its first axis), with a progress bar when ``progress``.
        A failure raises an exception whose ``index`` names the input."""
        pixels = [self._pixels(x, model) for x in xs]
        return [Result._from_native(d) for d in self._native.classify_many(pixels, model, progress)]

    def _pixels(self, x: Input, model: Optional[str]) -> bytes:
        if model not in self._shapes:
            self._shapes[model] = tuple(self.describe(model)["input_shape"])
        shape = self._shapes[model]
        if isinstance(x, (str, os.PathLike)):
            x = np.load(x, allow_pickle=False) if os.fspath(x).lower().endswith(".npy") else load_png(x, shape)
        if not isinstance(x, np.ndarray):
            raise TypeError(f"an input is a PNG path or a numpy array, not {type(x).__name__}")
        if x.dtype != np.uint8:
            if not np.issubdtype(x.dtype, np.integer) or x.size and (x.min() < 0 or x.max() > 255):
                raise ValueError(
                    f"pixels are integers 0..255 (uint8); got dtype {x.dtype}"
                    + ("" if not np.issubdtype(x.dtype, np.integer) else " with values outside 0..255")
                )
            x = x.astype(np.uint8)
        squeezed = tuple(d for d in shape if d != 1)
        if x.shape != tuple(shape) and tuple(d for d in x.shape if d != 1) != squeezed:
            raise ValueError(f"the model takes an array of shape {tuple(shape)}; got {x.shape}")
        return np.ascontiguousarray(x).tobytes()
