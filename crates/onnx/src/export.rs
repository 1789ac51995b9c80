//! Float models to ONNX (opset 13): one Conv or Gemm node per layer, named
//! as the layer, then its Relu and pooling; a Flatten before the first
//! dense layer of a convolutional network. Inputs are pixel / 255.

use prost::Message;

use ppdnn_model::float::FloatModel;
use ppdnn_model::network::{Linear, PoolKind};

use crate::proto::{
    AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorShapeProto, TypeProto,
    ValueInfoProto, attribute_proto::AttributeType, tensor_proto::DataType, tensor_shape_proto, type_proto,
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

/// The model as ONNX bytes.
pub fn export(model: &FloatModel) -> Vec<u8> {
    let net = &model.network;
    let mut nodes = Vec::new();
    let mut initializer = Vec::new();
    let mut current = "input".to_string();
    let mut is_vector = net.input().height == 1 && net.input().width == 1;
    for ((layer, shapes), params) in net.layers().iter().zip(net.shapes()).zip(&model.layers) {
        let name = &layer.name;
        let (w, b) = (format!("{name}.weight"), format!("{name}.bias"));
        initializer.push(float_tensor(&w, &layer.weight_shape(shapes.input), &params.weight));
        // A bias map is added after the convolution as a [1, out, h, w] constant.
        let map = params.bias.len() != layer.bias_len();
        let mut bias_dims = layer.bias_shape(shapes.output, params.bias.len());
        if map {
            bias_dims.insert(0, 1);
        }
        initializer.push(float_tensor(&b, &bias_dims, &params.bias));
        let out = format!("{name}.out");
        match layer.linear {
            Linear::Conv2d { kernel, stride, padding, .. } => {
                let attrs = vec![
                    ints("kernel_shape", &kernel),
                    ints("strides", &stride),
                    ints("pads", &padding),
                    ints("dilations", &[1, 1]),
                    int("group", 1),
                ];
                if map {
                    let conv = format!("{name}.conv");
                    nodes.push(node(name, "Conv", &[&current, &w], &conv, attrs));
                    nodes.push(node(&format!("{name}.bias_map"), "Add", &[&conv, &b], &out, Vec::new()));
                } else {
                    nodes.push(node(name, "Conv", &[&current, &w, &b], &out, attrs));
                }
            }
            Linear::Dense { .. } => {
                if !is_vector {
                    let flat = format!("{name}.flat");
                    nodes.push(node(
                        &format!("{name}.flatten"),
                        "Flatten",
                        &[&current],
                        &flat,
                        vec![int("axis", 1)],
                    ));
                    current = flat;
                    is_vector = true;
                }
                nodes.push(node(name, "Gemm", &[&current, &w, &b], &out, vec![int("transB", 1)]));
            }
        }
        current = out;
        if layer.relu {
            let out = format!("{name}.relu");
            nodes.push(node(&out, "Relu", &[&current], &out, Vec::new()));
            current = out;
        }
        if let Some(p) = &layer.pool {
            let out = format!("{name}.pool");
            let op = match p.kind {
                PoolKind::Max => "MaxPool",
                PoolKind::Average => "AveragePool",
            };
            nodes.push(node(
                &out,
                op,
                &[&current],
                &out,
                vec![ints("kernel_shape", &p.window), ints("strides", &p.stride)],
            ));
            current = out;
        }
    }
    // The last node writes the graph's output, "logits".
    if let Some(last) = nodes.last_mut() {
        last.output = vec!["logits".into()];
    }
    let input = net.input();
    let input_dims: Vec<usize> = if input.height == 1 && input.width == 1 {
        vec![input.channels]
    } else {
        vec![input.channels, input.height, input.width]
    };
    let graph = GraphProto {
        name: Some("ppdnn".into()),
        node: nodes,
        initializer,
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
