//! Float models to ONNX (opset 13): one Conv or Gemm node per layer, named
//! as the layer, then its shortcut's Add (of the source layer's activation,
//! or of a 1x1 Conv of it named `L.shortcut`), its Relu and pooling; a
//! Flatten before the first dense layer of a convolutional network. Inputs
//! are pixel / 255.

use prost::Message;

use ppdnn_model::float::FloatModel;
use ppdnn_model::network::{FloatParams, Layer, LayerShapes, Linear, PoolKind, Shape};

use crate::proto::{
    AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto, TensorShapeProto,
    TypeProto, ValueInfoProto, attribute_proto::AttributeType, tensor_proto::DataType, tensor_shape_proto,
    type_proto,
};
use crate::tensor::float_tensor;

/// The opset the exported models declare.
pub const OPSET: i64 = 13;

fn ints(name: &str, values: &[usize]) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Ints as i32),
        ints: values.iter().map(|&v| v as i64).collect(),
        ..Default::default()
    }
}

fn int(name: &str, value: i64) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Int as i32),
        i: Some(value),
        ..Default::default()
    }
}

fn node(name: &str, op: &str, inputs: &[&str], output: &str, attribute: Vec<AttributeProto>) -> NodeProto {
    NodeProto {
        name: Some(name.into()),
        op_type: Some(op.into()),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![output.into()],
        attribute,
        ..Default::default()
    }
}

/// A float tensor value of shape [batch, dims...] with a symbolic batch.
fn value(name: &str, dims: &[usize]) -> ValueInfoProto {
    use tensor_shape_proto::{Dimension, dimension::Value};
    let mut dim = vec![Dimension { value: Some(Value::DimParam("batch".into())), ..Default::default() }];
    dim.extend(
        dims.iter().map(|&d| Dimension { value: Some(Value::DimValue(d as i64)), ..Default::default() }),
    );
    ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: Some(DataType::Float as i32),
                shape: Some(TensorShapeProto { dim }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The graph being written: its nodes and initializers, the data path's
/// last value, and each layer's activation (what a shortcut reads).
struct Builder {
    nodes: Vec<NodeProto>,
    initializer: Vec<TensorProto>,
    current: String,
    is_vector: bool,
    activations: Vec<String>,
}

/// The model as ONNX bytes.
pub fn export(model: &FloatModel) -> Vec<u8> {
    let net = &model.network;
    let input = net.input();
    let mut b = Builder {
        nodes: Vec::new(),
        initializer: Vec::new(),
        current: "input".to_string(),
        is_vector: input.height == 1 && input.width == 1,
        activations: Vec::new(),
    };
    for ((layer, shapes), params) in net.layers().iter().zip(net.shapes()).zip(&model.layers) {
        b.layer(layer, shapes, params);
    }
    // The last node writes the graph's output, "logits".
    if let Some(last) = b.nodes.last_mut() {
        last.output = vec!["logits".into()];
    }
    let input_dims: Vec<usize> = if input.height == 1 && input.width == 1 {
        vec![input.channels]
    } else {
        vec![input.channels, input.height, input.width]
    };
    let graph = GraphProto {
        name: Some("ppdnn".into()),
        node: b.nodes,
        initializer: b.initializer,
        input: vec![value("input", &input_dims)],
        output: vec![value("logits", &[net.classes()])],
        ..Default::default()
    };
    let model = ModelProto {
        ir_version: Some(8),
        producer_name: Some("ppdnn".into()),
        producer_version: Some(env!("CARGO_PKG_VERSION").into()),
        opset_import: vec![OperatorSetIdProto { domain: Some(String::new()), version: Some(OPSET) }],
        graph: Some(graph),
        ..Default::default()
    };
    model.encode_to_vec()
}

/// A convolution's attributes.
fn conv_attributes(kernel: [usize; 2], stride: [usize; 2], padding: [usize; 4]) -> Vec<AttributeProto> {
    vec![
        ints("kernel_shape", &kernel),
        ints("strides", &stride),
        ints("pads", &padding),
        ints("dilations", &[1, 1]),
        int("group", 1),
    ]
}

impl Builder {
    /// Appends a node reading `inputs` and moves the data path to its output.
    fn push(&mut self, name: &str, op: &str, inputs: &[&str], output: &str, attrs: Vec<AttributeProto>) {
        self.nodes.push(node(name, op, inputs, output, attrs));
        self.current = output.to_string();
    }

    /// A layer: its Conv or Gemm (a Flatten before the first dense layer
    /// of a convolutional network), its shortcut's Add, Relu and pooling.
    fn layer(&mut self, layer: &Layer, shapes: &LayerShapes, params: &FloatParams) {
        let name = &layer.name;
        let (w, b) = (format!("{name}.weight"), format!("{name}.bias"));
        self.initializer.push(float_tensor(&w, &layer.weight_shape(shapes.input), &params.weight));
        // A bias map is added after the convolution as a [1, out, h, w] constant.
        let map = params.bias.len() != layer.bias_len();
        let mut bias_dims = layer.bias_shape(shapes.output, params.bias.len());
        if map {
            bias_dims.insert(0, 1);
        }
        self.initializer.push(float_tensor(&b, &bias_dims, &params.bias));
        let out = format!("{name}.out");
        match layer.linear {
            Linear::Conv2d { kernel, stride, padding, .. } => {
                let attrs = conv_attributes(kernel, stride, padding);
                if map {
                    let conv = format!("{name}.conv");
                    self.push(name, "Conv", &[&self.current.clone(), &w], &conv, attrs);
                    self.push(&format!("{name}.bias_map"), "Add", &[&conv, &b], &out, Vec::new());
                } else {
                    self.push(name, "Conv", &[&self.current.clone(), &w, &b], &out, attrs);
                }
            }
            Linear::Dense { .. } => {
                if !self.is_vector {
                    let flat = format!("{name}.flat");
                    let flatten = format!("{name}.flatten");
                    self.push(&flatten, "Flatten", &[&self.current.clone()], &flat, vec![int("axis", 1)]);
                    self.is_vector = true;
                }
                self.push(name, "Gemm", &[&self.current.clone(), &w, &b], &out, vec![int("transB", 1)]);
            }
        }
        if let Some((from, source)) = shapes.shortcut {
            self.shortcut(layer, from, source, params);
        }
        self.activation(layer);
        self.activations.push(self.current.clone());
    }

    /// The shortcut's Add of the layer's source activation, or of its
    /// projection: a 1x1 Conv node named `L.shortcut` after the layer's own.
    fn shortcut(&mut self, layer: &Layer, from: usize, source: Shape, params: &FloatParams) {
        let mut added = self.activations[from].clone();
        if let (Some(proj), Some(p)) = (layer.shortcut_projection(), params.shortcut.as_deref()) {
            let name = &proj.name;
            let (w, b) = (format!("{name}.weight"), format!("{name}.bias"));
            self.initializer.push(float_tensor(&w, &proj.weight_shape(source), &p.weight));
            self.initializer.push(float_tensor(&b, &[p.bias.len()], &p.bias));
            if let Linear::Conv2d { kernel, stride, padding, .. } = proj.linear {
                let out = format!("{name}.out");
                let attrs = conv_attributes(kernel, stride, padding);
                self.nodes.push(node(name, "Conv", &[&added, &w, &b], &out, attrs));
                added = out;
            }
        }
        let name = &layer.name;
        self.push(
            &format!("{name}.add"),
            "Add",
            &[&self.current.clone(), &added],
            &format!("{name}.sum"),
            Vec::new(),
        );
    }

    /// The layer's Relu and pooling.
    fn activation(&mut self, layer: &Layer) {
        let name = &layer.name;
        if layer.relu {
            let out = format!("{name}.relu");
            self.push(&out, "Relu", &[&self.current.clone()], &out, Vec::new());
        }
        if let Some(p) = &layer.pool {
            let out = format!("{name}.pool");
            let op = match p.kind {
                PoolKind::Max => "MaxPool",
                PoolKind::Average => "AveragePool",
            };
            let attrs = vec![ints("kernel_shape", &p.window), ints("strides", &p.stride)];
            self.push(&out, op, &[&self.current.clone()], &out, attrs);
        }
    }
}
