//! Model files: safetensors with the float and the integer parameters, and the
//! architecture, data set, accuracy and quantization in the metadata.
//!
//! Tensors, per layer `L` of the network (by its name): `L.weight` (F32,
//! [out, in, kh, kw] or [out, in]), `L.bias` (F32, [out]), `L.qweight` (I8,
//! same shape), `L.qbias` (I64, [out]). Metadata (all strings): `format` =
//! "ppdnn-model", `version` = "2", `architecture` (the network as JSON:
//! input shape and layers, see [`Network::to_json`]), `dataset`,
//! `float_accuracy`, `quantized_accuracy`, `quantization` (JSON: per layer
//! name, weight_scale, input_scale, requant {multiplier, shift}), `training`
//! (JSON, free-form).
//!
//! Version 1 files (LeNet-5 only: `architecture` = "lenet5", `pooling` =
//! "avg") are still read, as [`Network::lenet5`].

use std::collections::HashMap;
use std::path::Path;

use safetensors::{Dtype, SafeTensors, tensor::TensorView};
use serde::{Deserialize, Serialize};

use crate::dataset::DatasetKind;
use crate::error::{ModelError, Result, io_error};
use crate::float::FloatModel;
use crate::network::{FloatParams, Network};
use crate::quant::{QuantLayer, QuantModel, QuantShortcut, Requant};

/// The `format` metadata value.
pub const FORMAT: &str = "ppdnn-model";
/// The model file version this build writes for a sequential network.
pub const VERSION: &str = "2";
/// The version it writes for a network with shortcuts (which a build that
/// reads only version 2 must refuse rather than read as sequential).
pub const VERSION_RESIDUAL: &str = "3";

/// A model as stored: float and integer parameters and what is known of them.
#[derive(Debug, Clone)]
pub struct ModelFile {
    /// The data set it was trained on.
    pub dataset: DatasetKind,
    /// The float parameters.
    pub float: FloatModel,
    /// The quantized model (the reference of the encrypted pipeline).
    pub quant: QuantModel,
    /// Float test accuracy measured at training time.
    pub float_accuracy: f64,
    /// Integer test accuracy measured at training time.
    pub quantized_accuracy: f64,
    /// Free-form training record (JSON object).
    pub training: serde_json::Value,
}

#[derive(Serialize, Deserialize)]
struct LayerQuant {
    name: String,
    weight_scale: f64,
    input_scale: f64,
    requant: Option<Requant>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    shortcut: Option<ShortcutQuant>,
}

/// A shortcut's scalars in the metadata (its projection's tensors are
/// `L.shortcut.*`).
#[derive(Serialize, Deserialize)]
struct ShortcutQuant {
    weight_scale: f64,
    main_factor: i64,
    factor: i64,
}

fn bytes_f32(xs: &[f32]) -> Vec<u8> {
    xs.iter().flat_map(|x| x.to_le_bytes()).collect()
}
fn bytes_i8(xs: &[i64]) -> Vec<u8> {
    xs.iter().map(|&x| x as i8 as u8).collect()
}
fn bytes_i64(xs: &[i64]) -> Vec<u8> {
    xs.iter().flat_map(|x| x.to_le_bytes()).collect()
}

impl ModelFile {
    /// The name of each class: the data set's own when the model has its
    /// number of classes, the class indices otherwise.
    pub fn class_names(&self) -> Vec<String> {
        let known = self.dataset.class_names();
        let classes = self.quant.network.classes();
        if classes == known.len() {
            known.iter().map(|s| s.to_string()).collect()
        } else {
            (0..classes).map(|i| i.to_string()).collect()
        }
    }

    /// Serializes to safetensors bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut buffers: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
        if self.float.network != self.quant.network {
            return Err(ModelError::ArchitectureMismatch.into());
        }
        let net = &self.quant.network;
        for (((layer, shapes), fl), ql) in
            net.layers().iter().zip(net.shapes()).zip(&self.float.layers).zip(&self.quant.layers)
        {
            let wshape = layer.weight_shape(shapes.input);
            let bshape = layer.bias_shape(shapes.output, fl.bias.len());
            if ql.bias.len() != fl.bias.len() {
                return Err(ModelError::BiasShapes { layer: layer.name.clone() }.into());
            }
            let name = &layer.name;
            buffers.push((format!("{name}.weight"), Dtype::F32, wshape.clone(), bytes_f32(&fl.weight)));
            buffers.push((format!("{name}.bias"), Dtype::F32, bshape.clone(), bytes_f32(&fl.bias)));
            buffers.push((format!("{name}.qweight"), Dtype::I8, wshape, bytes_i8(&ql.weight)));
            buffers.push((format!("{name}.qbias"), Dtype::I64, bshape, bytes_i64(&ql.bias)));
            if let (Some(fs), Some(qs), Some(p), Some((_, source))) =
                (&fl.shortcut, &ql.shortcut, layer.shortcut_projection(), shapes.shortcut)
            {
                let (ws, bs) = (p.weight_shape(source), vec![p.bias_len()]);
                buffers.push((
                    format!("{name}.shortcut.weight"),
                    Dtype::F32,
                    ws.clone(),
                    bytes_f32(&fs.weight),
                ));
                buffers.push((format!("{name}.shortcut.bias"), Dtype::F32, bs.clone(), bytes_f32(&fs.bias)));
                buffers.push((format!("{name}.shortcut.qweight"), Dtype::I8, ws, bytes_i8(&qs.weight)));
                buffers.push((format!("{name}.shortcut.qbias"), Dtype::I64, bs, bytes_i64(&qs.bias)));
            }
        }
        let views = buffers
            .iter()
            .map(|(name, dtype, shape, data)| {
                TensorView::new(*dtype, shape.clone(), data)
                    .map(|v| (name.clone(), v))
                    .map_err(|source| ModelError::TensorView { tensor: name.clone(), source }.into())
            })
            .collect::<Result<Vec<_>>>()?;
        let quant: Vec<LayerQuant> = self
            .quant
            .layers
            .iter()
            .zip(net.layers())
            .map(|(l, layer)| LayerQuant {
                name: layer.name.clone(),
                weight_scale: l.weight_scale,
                input_scale: l.input_scale,
                requant: l.requant,
                shortcut: l.shortcut.as_ref().map(|s| ShortcutQuant {
                    weight_scale: s.weight_scale,
                    main_factor: s.main_factor,
                    factor: s.factor,
                }),
            })
            .collect();
        let mut meta = HashMap::new();
        meta.insert("format".into(), FORMAT.into());
        let version = if net.is_residual() { VERSION_RESIDUAL } else { VERSION };
        meta.insert("version".into(), version.into());
        meta.insert("architecture".into(), net.to_json());
        meta.insert("dataset".into(), self.dataset.name().into());
        meta.insert("float_accuracy".into(), format!("{:.4}", self.float_accuracy));
        meta.insert("quantized_accuracy".into(), format!("{:.4}", self.quantized_accuracy));
        meta.insert(
            "quantization".into(),
            serde_json::to_string(&quant).map_err(|source| ModelError::SerializeQuantization { source })?,
        );
        meta.insert("training".into(), self.training.to_string());
        safetensors::serialize(views, Some(meta)).map_err(|source| ModelError::Serialize { source }.into())
    }

    /// Writes the model file.
    pub fn save(&self, path: &Path) -> Result<()> {
        std::fs::write(path, self.to_bytes()?).map_err(|e| io_error(path, e))
    }

    /// Reads and checks a model file.
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| io_error(path, e))?;
        Self::from_bytes(&bytes)
            .map_err(|e| ModelError::File { path: path.display().to_string(), source: Box::new(e) }.into())
    }

    /// Parses and checks safetensors bytes: the architecture, then every
    /// tensor against it.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let (_, header) =
            SafeTensors::read_metadata(bytes).map_err(|source| ModelError::NotSafetensors { source })?;
        let meta = header.metadata().clone().unwrap_or_default();
        let get = |key: &'static str| meta.get(key).cloned().ok_or(ModelError::MissingMetadata { key });
        let format = get("format")?;
        if format != FORMAT {
            return Err(ModelError::Format { found: format, expected: FORMAT }.into());
        }
        let network = match get("version")?.as_str() {
            "1" => {
                if get("architecture")? != "lenet5" || get("pooling")? != "avg" {
                    return Err(ModelError::Version1Architecture.into());
                }
                Network::lenet5()
            }
            "2" | "3" => Network::from_json(&get("architecture")?)
                .map_err(|e| ModelError::Architecture { source: Box::new(e) })?,
            other => {
                return Err(ModelError::Version { version: other.to_string() }.into());
            }
        };
        let dataset = DatasetKind::from_name(&get("dataset")?)?;
        let num = |key: &'static str| -> Result<f64> {
            get(key)?.parse::<f64>().map_err(|source| ModelError::MetadataNumber { key, source }.into())
        };
        let quant_meta: Vec<LayerQuant> = serde_json::from_str(&get("quantization")?)
            .map_err(|source| ModelError::QuantizationJson { source })?;
        if quant_meta.len() != network.layers().len() {
            return Err(ModelError::QuantizationLayers {
                listed: quant_meta.len(),
                layers: network.layers().len(),
            }
            .into());
        }
        let tensors =
            SafeTensors::deserialize(bytes).map_err(|source| ModelError::NotSafetensors { source })?;
        let read = |name: String, dtype: Dtype, shape: &[usize]| -> Result<Vec<u8>> {
            let t = match tensors.tensor(&name) {
                Ok(t) => t,
                Err(source) => return Err(ModelError::MissingTensor { tensor: name, source }.into()),
            };
            if t.dtype() != dtype || t.shape() != shape {
                return Err(ModelError::TensorType {
                    tensor: name,
                    dtype: t.dtype(),
                    shape: t.shape().to_vec(),
                    expected_dtype: dtype,
                    expected_shape: shape.to_vec(),
                }
                .into());
            }
            Ok(t.data().to_vec())
        };
        let mut float = Vec::new();
        let mut quant = Vec::new();
        for ((layer, shapes), q) in network.layers().iter().zip(network.shapes()).zip(&quant_meta) {
            let name = &layer.name;
            if q.name != *name {
                return Err(
                    ModelError::QuantizationName { found: q.name.clone(), expected: name.clone() }.into()
                );
            }
            let ws = layer.weight_shape(shapes.input);
            // One bias per channel, or a convolution's bias map [out, h, w].
            let stored =
                tensors.tensor(&format!("{name}.bias")).map(|t| t.shape().to_vec()).unwrap_or_default();
            let map = layer.bias_shape(shapes.output, shapes.output.len());
            let bs = if layer.accepts_bias_len(shapes.output, shapes.output.len()) && stored == map {
                map
            } else {
                vec![layer.bias_len()]
            };
            let f32s = |b: Vec<u8>| -> Vec<f32> {
                b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
            };
            let i8s = |b: Vec<u8>| -> Vec<i64> { b.iter().map(|&b| b as i8 as i64).collect() };
            let i64s = |b: Vec<u8>| -> Vec<i64> {
                b.chunks_exact(8)
                    .map(|c| i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
                    .collect()
            };
            let weight = f32s(read(format!("{name}.weight"), Dtype::F32, &ws)?);
            let bias = f32s(read(format!("{name}.bias"), Dtype::F32, &bs)?);
            let qweight = i8s(read(format!("{name}.qweight"), Dtype::I8, &ws)?);
            let qbias = i64s(read(format!("{name}.qbias"), Dtype::I64, &bs)?);
            let mut fshort = None;
            let mut qshort = None;
            if let (Some(_), Some((_, source))) = (&layer.shortcut, shapes.shortcut) {
                let meta = q.shortcut.as_ref().ok_or(ModelError::ShortcutPresence { layer: name.clone() })?;
                let (mut qw, mut qb) = (Vec::new(), Vec::new());
                if let Some(p) = layer.shortcut_projection() {
                    let (ws, bs) = (p.weight_shape(source), vec![p.bias_len()]);
                    let sw = f32s(read(format!("{name}.shortcut.weight"), Dtype::F32, &ws)?);
                    let sb = f32s(read(format!("{name}.shortcut.bias"), Dtype::F32, &bs)?);
                    fshort = Some(Box::new(FloatParams::new(sw, sb)));
                    qw = i8s(read(format!("{name}.shortcut.qweight"), Dtype::I8, &ws)?);
                    qb = i64s(read(format!("{name}.shortcut.qbias"), Dtype::I64, &bs)?);
                }
                qshort = Some(QuantShortcut {
                    weight: qw,
                    bias: qb,
                    weight_scale: meta.weight_scale,
                    main_factor: meta.main_factor,
                    factor: meta.factor,
                });
            }
            float.push(FloatParams { weight, bias, shortcut: fshort });
            quant.push(QuantLayer {
                weight: qweight,
                bias: qbias,
                weight_scale: q.weight_scale,
                input_scale: q.input_scale,
                requant: q.requant,
                shortcut: qshort,
            });
        }
        let float = FloatModel::new(network.clone(), float)?;
        let quant = QuantModel { network, layers: quant };
        quant.validate()?;
        let training = serde_json::from_str(&get("training").unwrap_or_else(|_| "{}".into()))
            .unwrap_or(serde_json::Value::Null);
        Ok(ModelFile {
            dataset,
            float,
            quant,
            float_accuracy: num("float_accuracy")?,
            quantized_accuracy: num("quantized_accuracy")?,
            training,
        })
    }
}
