#!/usr/bin/env python3
"""Writes the ONNX fixtures of crates/onnx/tests/data: one small network per
supported operator (and attribute), a few whole networks, residual networks
as PyTorch exports ResNet's blocks (identity and projection shortcuts, with
batch normalization, global average pooling), and graphs ppdnn refuses (an
unsupported operator, a Concat of branches, a shortcut of two layers, an
Add after a ReLU), whose JSON names the node refused. Needs the `onnx`,
`onnxruntime` and `numpy` wheels, no deep-learning framework.

For each fixture NAME.onnx it also writes NAME.json: four inputs as pixels
0..255 (the graph sees pixel / 255 unless the fixture says "byte"), and
onnxruntime's outputs on them, which the Rust tests compare with ppdnn's
import to 1e-4.

    python3 scripts/onnx_fixtures.py [--out crates/onnx/tests/data]
"""
import argparse
import json
import os

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

rng = np.random.default_rng(20261130)


def weights(*shape, scale=0.5):
    return (rng.standard_normal(shape) * scale / np.sqrt(np.prod(shape[1:]))).astype(np.float32)


class Net:
    """A graph under construction: a data path, with branches from earlier values."""

    def __init__(self, name, input_shape):
        self.name, self.input_shape = name, input_shape
        self.nodes, self.inits, self.current, self.count = [], [], "input", 0

    def const(self, name, value):
        self.inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def op(self, op, *consts, name=None, **attrs):
        self.count += 1
        name = name or f"{op.lower()}{self.count}"
        out = f"{name}_out"
        inputs = [self.current] + [c if isinstance(c, str) else self.const(f"{name}.{i}", c)
                                   for i, c in enumerate(consts)]
        self.nodes.append(helper.make_node(op, inputs, [out], name=name, **attrs))
        self.current = out
        return self

    def at(self, tensor):
        """Continues from an earlier value (a branch)."""
        self.current = tensor
        return self

    def join(self, op, other, name, swap=False, **attrs):
        """An operator of two computed values: the current one and `other`."""
        out = f"{name}_out"
        inputs = [other, self.current] if swap else [self.current, other]
        self.nodes.append(helper.make_node(op, inputs, [out], name=name, **attrs))
        self.current = out
        return self

    def model(self):
        graph = helper.make_graph(
            self.nodes, self.name,
            [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch"] + list(self.input_shape))],
            [helper.make_tensor_value_info(self.current, TensorProto.FLOAT, ["batch", "classes"])],
            self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
        model.ir_version = 8
        onnx.checker.check_model(model)
        return model


def fixtures():
    n = Net("conv_stride_pad", [1, 9, 8])
    n.op("Conv", weights(4, 1, 3, 2), rng.standard_normal(4).astype(np.float32) * 0.1,
         name="conv", kernel_shape=[3, 2], strides=[2, 1], pads=[1, 0, 0, 1])
    n.op("Relu").op("Flatten", axis=1).op("Gemm", weights(5, 4 * 4 * 8), np.zeros(5, np.float32), name="fc", transB=1)
    yield n, {}

    n = Net("maxpool_overlapping", [2, 10, 11])
    n.op("Conv", weights(3, 2, 3, 3), name="conv", pads=[1, 1, 1, 1])
    n.op("Relu").op("MaxPool", kernel_shape=[3, 3], strides=[2, 2])
    n.op("Flatten").op("Gemm", weights(6, 3 * 4 * 5), weights(6, scale=0.1), name="fc", transB=1)
    yield n, {}

    n = Net("avgpool_matmul_add", [1, 8, 8])
    n.op("Conv", weights(4, 1, 3, 3), rng.standard_normal(4).astype(np.float32) * 0.1, name="conv")
    n.op("Relu").op("AveragePool", kernel_shape=[2, 3], strides=[2, 3])
    n.op("Reshape", np.array([-1, 4 * 3 * 2], np.int64))
    n.op("MatMul", weights(7, 24).T.copy(), name="fc")
    n.op("Add", rng.standard_normal(7).astype(np.float32) * 0.1)
    yield n, {}

    n = Net("batchnorm_gemm_attributes", [1, 7, 7])
    n.op("Conv", weights(5, 1, 3, 3), name="conv")
    n.op("BatchNormalization", rng.uniform(0.5, 1.5, 5).astype(np.float32), rng.standard_normal(5).astype(np.float32) * 0.1,
         rng.standard_normal(5).astype(np.float32) * 0.1, rng.uniform(0.5, 2, 5).astype(np.float32), epsilon=1e-3)
    n.op("Relu").op("Flatten")
    n.op("Gemm", weights(5 * 5 * 5, 6), rng.standard_normal(6).astype(np.float32), name="fc", alpha=0.5, beta=2.0)
    yield n, {}

    n = Net("input_normalization_softmax", [1, 8, 8])
    n.op("Sub", np.array(0.1307, np.float32)).op("Div", np.array(0.3081, np.float32))
    n.op("Conv", weights(3, 1, 3, 3), name="conv").op("Relu").op("Flatten")
    n.op("Gemm", weights(4, 3 * 6 * 6), np.zeros(4, np.float32), name="fc", transB=1).op("Softmax", axis=1)
    yield n, {"softmax": True}

    n = Net("byte_input_dropout_identity", [20])
    n.op("Gemm", weights(12, 20), np.zeros(12, np.float32), name="fc1", transB=1)
    n.op("Dropout").op("Relu").op("Identity")
    n.op("Gemm", weights(3, 12), weights(3), name="fc2", transB=1)
    yield n, {"byte": True}

    n = Net("mlp", [784])
    n.op("Gemm", weights(64, 784), weights(64, scale=0.1), name="fc1", transB=1).op("Relu")
    n.op("Gemm", weights(10, 64), weights(10, scale=0.1), name="fc2", transB=1)
    yield n, {}

    n = Net("cnn_maxpool_stride2", [1, 28, 28])
    n.op("Conv", weights(6, 1, 5, 5), weights(6, scale=0.1), name="conv1", pads=[2, 2, 2, 2]).op("Relu")
    n.op("MaxPool", kernel_shape=[2, 2], strides=[2, 2])
    n.op("Conv", weights(12, 6, 3, 3), weights(12, scale=0.1), name="conv2", strides=[2, 2]).op("Relu")
    n.op("Flatten").op("Gemm", weights(32, 12 * 6 * 6), weights(32, scale=0.1), name="fc1", transB=1).op("Relu")
    n.op("Gemm", weights(10, 32), weights(10, scale=0.1), name="fc2", transB=1)
    yield n, {}

    n = Net("rgb_cnn", [3, 16, 16])
    n.op("Conv", weights(8, 3, 3, 3), name="conv1", pads=[1, 1, 1, 1])
    n.op("BatchNormalization", rng.uniform(0.5, 1.5, 8).astype(np.float32), weights(8, scale=0.1),
         weights(8, scale=0.1), rng.uniform(0.5, 2, 8).astype(np.float32))
    n.op("Relu").op("MaxPool", kernel_shape=[2, 2], strides=[2, 2])
    n.op("Conv", weights(8, 8, 3, 3), weights(8, scale=0.1), name="conv2", strides=[2, 2]).op("Relu")
    n.op("AveragePool", kernel_shape=[3, 3], strides=[1, 1])
    n.op("Flatten").op("Gemm", weights(5, 8 * 1 * 1), weights(5, scale=0.1), name="fc", transB=1)
    yield n, {}

    n = Net("global_average_pool", [2, 9, 7])
    n.op("Conv", weights(4, 2, 3, 3), weights(4, scale=0.1), name="conv").op("Relu").op("GlobalAveragePool")
    n.op("Flatten").op("Gemm", weights(3, 4), weights(3, scale=0.1), name="fc", transB=1)
    yield n, {}

    n = Net("per_channel_normalization_rgb", [3, 8, 8])
    n.op("Sub", np.array([0.485, 0.456, 0.406], np.float32).reshape(1, 3, 1, 1))
    n.op("Div", np.array([0.229, 0.224, 0.225], np.float32).reshape(1, 3, 1, 1))
    n.op("Conv", weights(4, 3, 3, 3), weights(4, scale=0.1), name="conv", strides=[2, 2]).op("Relu")
    n.op("Flatten").op("Gemm", weights(5, 4 * 3 * 3), weights(5, scale=0.1), name="fc", transB=1)
    yield n, {}

    # Normalization the graph expects but does not contain: `ppdnn import
    # --input-mean 0.1307 --input-std 0.3081` folds it in.
    n = Net("external_normalization", [1, 10, 10])
    n.op("Conv", weights(3, 1, 3, 3), weights(3, scale=0.1), name="conv").op("Relu")
    n.op("MaxPool", kernel_shape=[2, 2], strides=[2, 2])
    n.op("Flatten").op("Gemm", weights(4, 3 * 4 * 4), weights(4, scale=0.1), name="fc", transB=1)
    yield n, {"mean": [0.1307], "std": [0.3081]}

    # The same before a zero-padded convolution (PyTorch's LeNet on
    # normalized MNIST): folded exactly as a bias map.
    n = Net("external_normalization_padded", [1, 12, 12])
    n.op("Conv", weights(4, 1, 5, 5), weights(4, scale=0.1), name="conv1", pads=[2, 2, 2, 2]).op("Relu")
    n.op("AveragePool", kernel_shape=[2, 2], strides=[2, 2])
    n.op("Conv", weights(4, 4, 3, 3), weights(4, scale=0.1), name="conv2", pads=[1, 1, 1, 1]).op("Relu")
    n.op("Flatten").op("Gemm", weights(5, 4 * 6 * 6), weights(5, scale=0.1), name="fc", transB=1)
    yield n, {"mean": [0.1307], "std": [0.3081]}

    n = Net("unsupported_sigmoid", [1, 6, 6])
    n.op("Conv", weights(2, 1, 3, 3), name="conv").op("Sigmoid", name="squash")
    n.op("Flatten").op("Gemm", weights(3, 2 * 4 * 4), np.zeros(3, np.float32), name="fc", transB=1)
    yield n, {"refused": "squash"}

    # Residual networks, as PyTorch exports ResNet's basic blocks (new
    # fixtures go here, after the others, so that theirs keep their values).
    n = Net("residual_identity_maxpool", [2, 8, 8])
    n.op("Conv", weights(4, 2, 3, 3), name="stem", pads=[1, 1, 1, 1])
    batch_norm(n, 4).op("Relu")
    block = n.current
    n.op("Conv", weights(4, 4, 3, 3), name="block.conv1", pads=[1, 1, 1, 1])
    batch_norm(n, 4).op("Relu")
    n.op("Conv", weights(4, 4, 3, 3), name="block.conv2", pads=[1, 1, 1, 1])
    batch_norm(n, 4).join("Add", block, "block.add").op("Relu")
    n.op("MaxPool", kernel_shape=[2, 2], strides=[2, 2])
    n.op("Flatten").op("Gemm", weights(3, 4 * 4 * 4), weights(3, scale=0.1), name="fc", transB=1)
    yield n, {}

    # PyTorch's order: the main branch, then the downsample (a 1x1 stride-2
    # convolution and its batch normalization), then the Add and its ReLU.
    n = Net("residual_projection_stride2", [3, 10, 10])
    n.op("Conv", weights(4, 3, 3, 3), name="stem", pads=[1, 1, 1, 1])
    batch_norm(n, 4).op("Relu")
    basic_block(n, "layer1.0", 4, 4, 1)
    basic_block(n, "layer2.0", 4, 6, 2)
    n.op("GlobalAveragePool").op("Flatten")
    n.op("Gemm", weights(5, 6), weights(5, scale=0.1), name="fc", transB=1)
    yield n, {}

    # The other order: the projection (with a bias, no batch norm, stride
    # 1 to more channels) before the main branch, the Add's inputs the
    # other way round, then an identity block, also swapped.
    n = Net("residual_projection_first", [1, 7, 6])
    n.op("Conv", weights(3, 1, 3, 3), weights(3, scale=0.1), name="stem", pads=[1, 1, 1, 1]).op("Relu")
    block = n.current
    n.op("Conv", weights(5, 3, 1, 1), weights(5, scale=0.1), name="proj")
    projection = n.current
    n.at(block).op("Conv", weights(5, 3, 3, 3), weights(5, scale=0.1), name="b1.conv1", pads=[1, 1, 1, 1]).op("Relu")
    n.op("Conv", weights(5, 5, 3, 3), weights(5, scale=0.1), name="b1.conv2", pads=[1, 1, 1, 1])
    n.join("Add", projection, "b1.add", swap=True).op("Relu")
    block = n.current
    n.op("Conv", weights(5, 5, 3, 3), weights(5, scale=0.1), name="b2.conv1", pads=[1, 1, 1, 1]).op("Relu")
    n.op("Conv", weights(5, 5, 3, 3), weights(5, scale=0.1), name="b2.conv2", pads=[1, 1, 1, 1])
    n.join("Add", block, "b2.add", swap=True).op("Relu").op("GlobalAveragePool").op("Flatten")
    n.op("Gemm", weights(4, 5), weights(4, scale=0.1), name="fc", transB=1)
    yield n, {}

    # Refused: a concatenation of branches (an operator ppdnn does not read) ...
    n = Net("refused_concat", [1, 6, 6])
    n.op("Conv", weights(2, 1, 3, 3), name="conv", pads=[1, 1, 1, 1]).op("Relu")
    block = n.current
    n.op("Conv", weights(2, 2, 3, 3), name="left", pads=[1, 1, 1, 1])
    left = n.current
    n.at(block).op("Conv", weights(2, 2, 1, 1), name="right")
    n.join("Concat", left, "branches", axis=1).op("Relu")
    n.op("Flatten").op("Gemm", weights(3, 4 * 6 * 6), np.zeros(3, np.float32), name="fc", transB=1)
    yield n, {"refused": "branches"}

    # ... a shortcut of two layers (the node leaving the data path is named) ...
    n = Net("refused_two_layer_shortcut", [1, 6, 6])
    n.op("Conv", weights(2, 1, 3, 3), name="stem", pads=[1, 1, 1, 1]).op("Relu")
    block = n.current
    n.op("Conv", weights(2, 2, 3, 3), name="conv1", pads=[1, 1, 1, 1]).op("Relu")
    n.op("Conv", weights(2, 2, 3, 3), name="conv2", pads=[1, 1, 1, 1])
    main = n.current
    n.at(block).op("Conv", weights(2, 2, 1, 1), name="side1").op("Relu")
    n.op("Conv", weights(2, 2, 1, 1), name="side2").join("Add", main, "add").op("Relu")
    n.op("Flatten").op("Gemm", weights(3, 2 * 6 * 6), np.zeros(3, np.float32), name="fc", transB=1)
    yield n, {"refused": "side1"}

    # ... and an Add after the convolution's ReLU (a pre-activation block).
    n = Net("refused_add_after_relu", [1, 6, 6])
    n.op("Conv", weights(2, 1, 3, 3), name="stem", pads=[1, 1, 1, 1]).op("Relu")
    block = n.current
    n.op("Conv", weights(2, 2, 3, 3), name="conv", pads=[1, 1, 1, 1]).op("Relu")
    n.join("Add", block, "late_add")
    n.op("Flatten").op("Gemm", weights(3, 2 * 6 * 6), np.zeros(3, np.float32), name="fc", transB=1)
    yield n, {"refused": "late_add"}


def batch_norm(n, channels):
    """A batch normalization of `channels` on the current value."""
    return n.op("BatchNormalization", rng.uniform(0.5, 1.5, channels).astype(np.float32), weights(channels, scale=0.1),
                weights(channels, scale=0.1), rng.uniform(0.5, 2, channels).astype(np.float32))


def basic_block(n, name, inputs, outputs, stride):
    """ResNet's basic block as PyTorch exports it: conv1, bn1, relu, conv2,
    bn2, then a downsample (1x1 convolution, batch norm) where the stride
    or the channels change, the Add and its ReLU."""
    block = n.current
    n.op("Conv", weights(outputs, inputs, 3, 3), name=f"{name}.conv1", strides=[stride, stride], pads=[1, 1, 1, 1])
    batch_norm(n, outputs).op("Relu")
    n.op("Conv", weights(outputs, outputs, 3, 3), name=f"{name}.conv2", pads=[1, 1, 1, 1])
    main = batch_norm(n, outputs).current
    shortcut = block
    if stride != 1 or inputs != outputs:
        n.at(block).op("Conv", weights(outputs, inputs, 1, 1), name=f"{name}.downsample.0", strides=[stride, stride])
        shortcut = batch_norm(n, outputs).current
    n.at(main).join("Add", shortcut, f"{name}.add").op("Relu")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "crates", "onnx", "tests", "data"))
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    for net, meta in fixtures():
        model = net.model()
        path = os.path.join(args.out, net.name + ".onnx")
        onnx.save(model, path)
        pixels = rng.integers(0, 256, size=[4] + net.input_shape, dtype=np.uint8)
        x = pixels.astype(np.float32) if meta.get("byte") else pixels.astype(np.float32) / 255
        if "mean" in meta:
            x = ((x - np.float32(meta["mean"][0])) / np.float32(meta["std"][0])).astype(np.float32)
        session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        expected = session.run(None, {"input": x})[0]
        record = {"input_shape": net.input_shape, "pixels": pixels.reshape(4, -1).tolist(),
                  "expected": expected.astype(float).tolist(), **meta}
        with open(os.path.join(args.out, net.name + ".json"), "w") as f:
            json.dump(record, f)
        print(f"{path}: {len(model.graph.node)} nodes")


if __name__ == "__main__":
    main()
