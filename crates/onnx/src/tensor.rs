//! ONNX tensors and attributes to and from plain vectors.

use std::collections::HashMap;

use crate::error::{Error, GraphError, Refusal, Result};
use crate::proto::{AttributeProto, NodeProto, TensorProto, tensor_proto::DataType};

/// A constant tensor of the graph: its dimensions and its values as f32
/// (float and double tensors) or i64 (integer tensors, e.g. shapes).
#[derive(Debug, Clone)]
pub(crate) struct Constant {
    pub dims: Vec<usize>,
    pub floats: Vec<f32>,
    pub ints: Vec<i64>,
}

impl Constant {
    /// Reads a tensor; external data and types other than float, double,
    /// int32 and int64 are refused.
    pub fn from_proto(t: &TensorProto) -> Result<Self> {
        let name = &t.name;
        if t.data_location == Some(1) || !t.external_data.is_empty() {
            return Err(GraphError::ExternalData { tensor: name.clone() }.into());
        }
        let dims = t
            .dims
            .iter()
            .map(|&d| {
                usize::try_from(d).map_err(|_| GraphError::Dimension { tensor: name.clone(), dim: d }.into())
            })
            .collect::<Result<Vec<_>>>()?;
        let count = dims
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .filter(|&n| n <= 1 << 26)
            .ok_or_else(|| GraphError::TooLarge { tensor: name.clone(), dims: dims.clone() })?;
        let raw = t.raw_data.as_deref().unwrap_or_default();
        let data_type = t.data_type.unwrap_or(0);
        let (floats, ints) = match DataType::try_from(data_type) {
            Ok(DataType::Float) if !raw.is_empty() => (
                raw.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect(),
                Vec::new(),
            ),
            Ok(DataType::Float) => (t.float_data.clone(), Vec::new()),
            Ok(DataType::Double) if !raw.is_empty() => (
                raw.chunks_exact(8)
                    .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f32)
                    .collect(),
                Vec::new(),
            ),
            Ok(DataType::Double) => (t.double_data.iter().map(|&d| d as f32).collect(), Vec::new()),
            Ok(DataType::Int64) if !raw.is_empty() => (
                Vec::new(),
                raw.chunks_exact(8)
                    .map(|c| i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
                    .collect(),
            ),
            Ok(DataType::Int64) => (Vec::new(), t.int64_data.clone()),
            Ok(DataType::Int32) if !raw.is_empty() => (
                Vec::new(),
                raw.chunks_exact(4).map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as i64).collect(),
            ),
            Ok(DataType::Int32) => (Vec::new(), t.int32_data.iter().map(|&v| v as i64).collect()),
            _ => return Err(GraphError::ElementType { tensor: name.clone(), data_type }.into()),
        };
        if floats.len().max(ints.len()) != count {
            return Err(GraphError::ValueCount {
                tensor: name.clone(),
                values: floats.len().max(ints.len()),
                dims,
            }
            .into());
        }
        Ok(Constant { dims, floats, ints })
    }
}

/// A float tensor as an ONNX initializer, values in raw little-endian form.
pub(crate) fn float_tensor(name: &str, dims: &[usize], values: &[f32]) -> TensorProto {
    TensorProto {
        name: Some(name.to_string()),
        dims: dims.iter().map(|&d| d as i64).collect(),
        data_type: Some(DataType::Float as i32),
        raw_data: Some(values.iter().flat_map(|v| v.to_le_bytes()).collect()),
        ..Default::default()
    }
}

/// A node's attributes by name.
pub(crate) struct Attributes<'a> {
    node: &'a NodeProto,
    by_name: HashMap<&'a str, &'a AttributeProto>,
}

impl<'a> Attributes<'a> {
    pub fn of(node: &'a NodeProto) -> Self {
        Attributes { node, by_name: node.attribute.iter().map(|a| (a.name(), a)).collect() }
    }

    fn err(&self, why: Refusal) -> Error {
        Error::Unsupported { node: self.node.name().to_string(), op: self.node.op_type().to_string(), why }
    }

    /// An integer attribute, or `default`.
    pub fn int(&self, name: &str, default: i64) -> i64 {
        self.by_name.get(name).and_then(|a| a.i).unwrap_or(default)
    }

    /// A float attribute, or `default`.
    pub fn float(&self, name: &str, default: f32) -> f32 {
        self.by_name.get(name).and_then(|a| a.f).unwrap_or(default)
    }

    /// A string attribute, or `default`.
    pub fn string(&self, name: &str, default: &str) -> String {
        self.by_name
            .get(name)
            .and_then(|a| a.s.as_deref())
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .unwrap_or_else(|| default.to_string())
    }

    /// A list of non-negative integers of length `len`, or `default`.
    pub fn sizes(&self, name: &str, len: usize, default: Option<Vec<usize>>) -> Result<Vec<usize>> {
        let Some(a) = self.by_name.get(name) else {
            return default
                .ok_or_else(|| self.err(Refusal::MissingAttribute { attribute: name.to_string() }));
        };
        if a.ints.len() != len || a.ints.iter().any(|&v| !(0..=1 << 20).contains(&v)) {
            return Err(self.err(Refusal::AttributeValues {
                attribute: name.to_string(),
                values: a.ints.clone(),
                expected: len,
            }));
        }
        Ok(a.ints.iter().map(|&v| v as usize).collect())
    }

    /// Names of attributes present other than `known`.
    pub fn unknown(&self, known: &[&str]) -> Vec<String> {
        self.by_name.keys().filter(|k| !known.contains(k)).map(|k| k.to_string()).collect()
    }
}
