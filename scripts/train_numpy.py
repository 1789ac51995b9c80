#!/usr/bin/env python3
"""Trains two MNIST models outside ppdnn, with numpy alone, and exports them
as ONNX with the `onnx` package: a 784-128-10 MLP and a stride-2 CNN without
pooling (conv 8x5x5 stride 2, conv 16x3x3 stride 2, dense 10). They are the
"bring your own model" examples: `ppdnn import` reads them.

    python3 scripts/train_numpy.py [--epochs 4] [--out models]

Inputs are pixel / 255, as `ppdnn import` expects by default. Deterministic
for a given numpy (seeded); about a minute per model on two cores.
"""
import argparse
import gzip
import os
import time

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def idx(name):
    with gzip.open(os.path.join(ROOT, "data", "mnist", name + ".gz")) as f:
        data = f.read()
    return np.frombuffer(data, np.uint8, offset=16 if "images" in name else 8)


def load():
    x = idx("train-images-idx3-ubyte").reshape(-1, 1, 28, 28).astype(np.float32) / 255
    y = idx("train-labels-idx1-ubyte").astype(np.int64)
    tx = idx("t10k-images-idx3-ubyte").reshape(-1, 1, 28, 28).astype(np.float32) / 255
    ty = idx("t10k-labels-idx1-ubyte").astype(np.int64)
    return x, y, tx, ty


class Adam:
    def __init__(self, params, lr=1e-3):
        self.params, self.lr, self.t = params, lr, 0
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]

    def step(self, grads, lr):
        self.t += 1
        for p, g, m, v in zip(self.params, grads, self.m, self.v):
            m *= 0.9
            m += 0.1 * g
            v *= 0.999
            v += 0.001 * g * g
            p -= lr * (m / (1 - 0.9 ** self.t)) / (np.sqrt(v / (1 - 0.999 ** self.t)) + 1e-8)


def softmax_xent(logits, y):
    z = logits - logits.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    loss = -np.log(p[np.arange(len(y)), y] + 1e-12).mean()
    p[np.arange(len(y)), y] -= 1
    return loss, p / len(y)


def he(rng, *shape):
    fan_in = np.prod(shape[1:])
    return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)


class Mlp:
    def __init__(self, rng):
        self.w1, self.b1 = he(rng, 128, 784), np.zeros(128, np.float32)
        self.w2, self.b2 = he(rng, 10, 128), np.zeros(10, np.float32)
        self.params = [self.w1, self.b1, self.w2, self.b2]

    def forward(self, x):
        self.x = x.reshape(len(x), -1)
        self.h = np.maximum(self.x @ self.w1.T + self.b1, 0)
        return self.h @ self.w2.T + self.b2

    def backward(self, g):
        gw2, gb2 = g.T @ self.h, g.sum(0)
        gh = (g @ self.w2) * (self.h > 0)
        return [gh.T @ self.x, gh.sum(0), gw2, gb2]

    def graph(self):
        return [("Flatten", "flatten", [], {"axis": 1}),
                ("Gemm", "fc1", [self.w1, self.b1], {"transB": 1}), ("Relu", "relu1", [], {}),
                ("Gemm", "fc2", [self.w2, self.b2], {"transB": 1})]


def im2col(x, k, s):
    """x [B, C, H, W] -> [B, OH*OW, C*k*k] for a k x k kernel, stride s, no padding."""
    win = np.lib.stride_tricks.sliding_window_view(x, (k, k), axis=(2, 3))[:, :, ::s, ::s]
    b, c, oh, ow = win.shape[:4]
    return win.transpose(0, 2, 3, 1, 4, 5).reshape(b, oh * ow, c * k * k), oh, ow


def col2im(g, shape, k, s, oh, ow):
    """The adjoint of im2col: g [B, OH*OW, C*k*k] -> [B, C, H, W]."""
    b, c, h, w = shape
    g = g.reshape(b, oh, ow, c, k, k)
    out = np.zeros(shape, np.float32)
    for ky in range(k):
        for kx in range(k):
            out[:, :, ky:ky + s * oh:s, kx:kx + s * ow:s] += g[:, :, :, :, ky, kx].transpose(0, 3, 1, 2)
    return out


class StrideCnn:
    def __init__(self, rng):
        self.c1, self.cb1 = he(rng, 8, 1, 5, 5), np.zeros(8, np.float32)
        self.c2, self.cb2 = he(rng, 16, 8, 3, 3), np.zeros(16, np.float32)
        self.w, self.b = he(rng, 10, 16 * 5 * 5), np.zeros(10, np.float32)
        self.params = [self.c1, self.cb1, self.c2, self.cb2, self.w, self.b]

    def conv(self, x, w, b, s):
        cols, oh, ow = im2col(x, w.shape[2], s)
        y = cols @ w.reshape(len(w), -1).T + b  # [B, P, O]
        return cols, y.transpose(0, 2, 1).reshape(len(x), len(w), oh, ow)

    def forward(self, x):
        self.x = x
        self.cols1, z1 = self.conv(x, self.c1, self.cb1, 2)
        self.a1 = np.maximum(z1, 0)
        self.cols2, z2 = self.conv(self.a1, self.c2, self.cb2, 2)
        self.a2 = np.maximum(z2, 0)
        self.f = self.a2.reshape(len(x), -1)
        return self.f @ self.w.T + self.b

    def conv_back(self, g, cols, w, x_shape, s):
        b, o, oh, ow = g.shape
        gp = g.reshape(b, o, oh * ow).transpose(0, 2, 1)  # [B, P, O]
        gw = np.einsum("bpo,bpk->ok", gp, cols).reshape(w.shape)
        gcols = gp @ w.reshape(o, -1)
        return gw, gp.sum((0, 1)), col2im(gcols, x_shape, w.shape[2], s, oh, ow)

    def backward(self, g):
        gw, gb = g.T @ self.f, g.sum(0)
        ga2 = (g @ self.w).reshape(self.a2.shape) * (self.a2 > 0)
        gc2, gcb2, ga1 = self.conv_back(ga2, self.cols2, self.c2, self.a1.shape, 2)
        ga1 *= self.a1 > 0
        gc1, gcb1, _ = self.conv_back(ga1, self.cols1, self.c1, self.x.shape, 2)
        return [gc1, gcb1, gc2, gcb2, gw, gb]

    def graph(self):
        return [("Conv", "conv1", [self.c1, self.cb1], {"kernel_shape": [5, 5], "strides": [2, 2]}),
                ("Relu", "relu1", [], {}),
                ("Conv", "conv2", [self.c2, self.cb2], {"kernel_shape": [3, 3], "strides": [2, 2]}),
                ("Relu", "relu2", [], {}), ("Flatten", "flatten", [], {"axis": 1}),
                ("Gemm", "fc", [self.w, self.b], {"transB": 1})]


def train(model, x, y, epochs, seed, batch=64, lr=2e-3):
    rng = np.random.default_rng(seed)
    opt = Adam(model.params)
    steps = epochs * (len(x) // batch)
    step = 0
    for epoch in range(epochs):
        order = rng.permutation(len(x))
        for i in range(0, len(x) - batch + 1, batch):
            idx_ = order[i:i + batch]
            loss, g = softmax_xent(model.forward(x[idx_]), y[idx_])
            opt.step(model.backward(g), lr * (0.05 + 0.95 * 0.5 * (1 + np.cos(np.pi * step / steps))))
            step += 1
        print(f"  epoch {epoch + 1}: loss {loss:.4f}", flush=True)


def accuracy(model, x, y):
    return float(np.mean(np.concatenate([model.forward(x[i:i + 1000]).argmax(1) for i in range(0, len(x), 1000)]) == y))


def export(model, path):
    nodes, inits, current = [], [], "input"
    for op, name, params, attrs in model.graph():
        inputs = [current]
        for j, p in enumerate(params):
            inits.append(numpy_helper.from_array(p, f"{name}.{['weight', 'bias'][j]}"))
            inputs.append(inits[-1].name)
        nodes.append(helper.make_node(op, inputs, [name + "_out"], name=name, **attrs))
        current = name + "_out"
    graph = helper.make_graph(nodes, os.path.basename(path)[:-5],
                              [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 1, 28, 28])],
                              [helper.make_tensor_value_info(current, TensorProto.FLOAT, ["batch", 10])], inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="ppdnn scripts/train_numpy.py")
    m.ir_version = 8
    onnx.checker.check_model(m)
    onnx.save(m, path)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--out", default=os.path.join(ROOT, "models"))
    args = parser.parse_args()
    x, y, tx, ty = load()
    for name, cls in [("mlp-mnist", Mlp), ("cnn-stride2-mnist", StrideCnn)]:
        start = time.time()
        print(f"{name}:", flush=True)
        model = cls(np.random.default_rng(42))
        train(model, x, y, args.epochs, seed=7)
        acc = accuracy(model, tx, ty)
        path = os.path.join(args.out, name + ".onnx")
        export(model, path)
        print(f"  test accuracy {acc * 100:.2f}% ({time.time() - start:.0f} s); wrote {path}", flush=True)


if __name__ == "__main__":
    main()
