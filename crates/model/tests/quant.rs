//! The integer forward pass against an independent computation, the
//! requantization step, and model file round trips.

use ppdnn_model::float::FloatModel;
use ppdnn_model::modelfile::ModelFile;
use ppdnn_model::network::{Linear, Network, Pool, PoolKind};
use ppdnn_model::quant::{MULTIPLIER_BITS, QuantModel, Requant};
use proptest::prelude::*;

/// A random network from the shared generator, or LeNet-5 when `seed` is 0.
fn random_network(seed: u64) -> Network {
    if seed == 0 { Network::lenet5() } else { ppdnn_model::testing::random_network(seed) }
}

/// Random float parameters for `network`.
fn random_float_model(network: Network, seed: u64) -> FloatModel {
    ppdnn_model::testing::random_float_model(network, seed)
}

use ppdnn_model::testing::random_inputs;

/// Straightforward accumulators on an explicitly zero-padded input, written
/// independently of the crate's `linear`.
fn independent_accumulators(q: &QuantModel, l: usize, x: &[i64]) -> Vec<i64> {
    let layer = &q.layers[l];
    let input = q.network.shapes()[l].input;
    match q.network.layers()[l].linear {
        Linear::Conv2d { out_channels: co, kernel: [kh, kw], stride: [sy, sx], padding: [t, le, b, ri] } => {
            let (ci, ih, iw) = (input.channels, input.height, input.width);
            let (ph, pw) = (ih + t + b, iw + le + ri);
            let mut padded = vec![0i64; ci * ph * pw];
            for c in 0..ci {
                for y in 0..ih {
                    for xx in 0..iw {
                        padded[(c * ph + y + t) * pw + xx + le] = x[(c * ih + y) * iw + xx];
                    }
                }
            }
            let (oh, ow) = ((ph - kh) / sy + 1, (pw - kw) / sx + 1);
            let mut out = Vec::new();
            for o in 0..co {
                for y in 0..oh {
                    for xx in 0..ow {
                        let mut acc = layer.bias[o];
                        for c in 0..ci {
                            for dy in 0..kh {
                                for dx in 0..kw {
                                    acc += layer.weight[((o * ci + c) * kh + dy) * kw + dx]
                                        * padded[(c * ph + y * sy + dy) * pw + xx * sx + dx];
                                }
                            }
                        }
                        out.push(acc);
                    }
                }
            }
            out
        }
        Linear::Dense { outputs } => {
            let inputs = input.len();
            (0..outputs)
                .map(|o| {
                    layer.bias[o] + (0..inputs).map(|i| layer.weight[o * inputs + i] * x[i]).sum::<i64>()
                })
                .collect()
        }
    }
}

/// The between-layer step, written independently: ReLU, pooling windows
/// by explicit coordinates, requantization.
fn independent_activation(q: &QuantModel, l: usize, acc: &[i64]) -> Vec<i64> {
    let layer = &q.network.layers()[l];
    let out = q.network.shapes()[l].output;
    let Some(requant) = q.layers[l].requant else { return acc.to_vec() };
    let y: Vec<i64> = acc.iter().map(|&v| if layer.relu { v.max(0) } else { v }).collect();
    let pooled = match layer.pool {
        None => y,
        Some(Pool { kind, window: [wh, ww], stride: [sy, sx] }) => {
            let (oh, ow) = ((out.height - wh) / sy + 1, (out.width - ww) / sx + 1);
            let mut v = Vec::new();
            for c in 0..out.channels {
                for oy in 0..oh {
                    for ox in 0..ow {
                        let cells =
                            (0..wh).flat_map(|dy| (0..ww).map(move |dx| (oy * sy + dy, ox * sx + dx)));
                        let vals: Vec<i64> =
                            cells.map(|(yy, xx)| y[(c * out.height + yy) * out.width + xx]).collect();
                        v.push(match kind {
                            PoolKind::Average => vals.iter().sum(),
                            PoolKind::Max => *vals.iter().max().unwrap(),
                        });
                    }
                }
            }
            v
        }
    };
    pooled.into_iter().map(|v| requant.apply(v)).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn integer_forward_matches_independent_computation(seed in prop_oneof![Just(0u64), any::<u64>()]) {
        let network = random_network(seed);
        let n = network.input().len();
        let float = random_float_model(network, seed ^ 0x5eed);
        let calib = random_inputs(seed ^ 0xabc, 20, n);
        let q = QuantModel::quantize(&float, &calib).unwrap();
        q.validate().unwrap();
        let image = random_inputs(seed ^ 0x123, 1, n);
        let trace = q.trace(&image).unwrap();
        let mut x: Vec<i64> = image.iter().map(|&p| p as i64).collect();
        for (l, traced) in trace.iter().enumerate() {
            let acc = independent_accumulators(&q, l, &x);
            prop_assert_eq!(&acc, traced);
            prop_assert!(acc.iter().all(|a| a.abs() <= q.accumulator_bound(l)), "bound holds");
            x = q.activate(l, &acc).unwrap();
            prop_assert_eq!(&x, &independent_activation(&q, l, &acc));
            if l + 1 < q.layers.len() {
                prop_assert!(x.iter().all(|&v| (0..=255).contains(&v)));
            }
        }
    }

    #[test]
    fn requant_matches_real_rounding(m in 1e-7f64..4.0, y in 0i64..(1 << 28)) {
        let r = Requant::from_real(m).unwrap();
        // Rounded to MULTIPLIER_BITS bits: within half a unit of the top bit's 2^-(bits-1).
        prop_assert!((r.real() - m).abs() / m <= 1.0 / (1u64 << MULTIPLIER_BITS) as f64);
        let fine = Requant::from_real_bits(m, 31).unwrap();
        prop_assert!((fine.real() - m).abs() / m < 1e-8);
        let want = ((y as f64) * r.real()).round().clamp(0.0, 255.0) as i64;
        let got = r.apply(y);
        // Equal except where the real product sits within rounding error of .5.
        prop_assert!((got - want).abs() <= 1);
    }
}

#[test]
fn requant_clamps_and_rejects_nonsense() {
    let r = Requant::from_real(0.5).unwrap();
    assert_eq!(r.apply(-10), 0);
    assert_eq!(r.apply(3), 2);
    assert_eq!(r.apply(10_000), 255);
    assert!(Requant::from_real(0.0).is_err());
    assert!(Requant::from_real(f64::NAN).is_err());
}

fn sample_file() -> ModelFile {
    sample_file_of(Network::lenet5())
}

fn sample_file_of(network: Network) -> ModelFile {
    let n = network.input().len();
    let float = random_float_model(network, 7);
    let quant = QuantModel::quantize(&float, &random_inputs(9, 10, n)).unwrap();
    ModelFile {
        dataset: ppdnn_model::dataset::DatasetKind::Mnist,
        float,
        quant,
        float_accuracy: 0.5,
        quantized_accuracy: 0.49,
        training: serde_json::json!({"epochs": 1}),
    }
}

#[test]
fn model_file_round_trip() {
    for seed in [0, 3, 11, 12345] {
        let file = sample_file_of(random_network(seed));
        let back = ModelFile::from_bytes(&file.to_bytes().unwrap()).unwrap();
        assert_eq!(back.float, file.float);
        assert_eq!(back.quant, file.quant);
        assert_eq!(back.dataset, file.dataset);
        assert_eq!(back.training, file.training);
    }
}

#[test]
fn bias_maps_round_trip_and_add_per_accumulator() {
    // LeNet-5 whose conv1 has a bias map (one per accumulator), as folding a
    // normalized input into a padded convolution gives.
    let mut float = random_float_model(Network::lenet5(), 3);
    let out = float.network.shapes()[0].output;
    let map: Vec<f32> = (0..out.len()).map(|i| (i % 97) as f32 * 0.01 - 0.4).collect();
    float.layers[0].bias = map.clone();
    float.validate().unwrap();
    let image = random_inputs(4, 1, 784);
    let zero_bias = {
        let mut f = float.clone();
        f.layers[0].bias = vec![0.0; 6];
        f
    };
    let with = float.activations(&image).unwrap();
    let without = zero_bias.activations(&image).unwrap();
    assert_ne!(with[0], without[0], "the map changes conv1's outputs");
    let quant = QuantModel::quantize(&float, &random_inputs(5, 8, 784)).unwrap();
    assert_eq!(quant.layers[0].bias.len(), out.len());
    let file = ModelFile { float, quant, ..sample_file() };
    let back = ModelFile::from_bytes(&file.to_bytes().unwrap()).unwrap();
    assert_eq!(back.float, file.float);
    assert_eq!(back.quant, file.quant);
    // A bias of any other length is refused.
    let mut bad = file.float.clone();
    bad.layers[0].bias.pop();
    assert!(bad.validate().unwrap_err().to_string().contains("conv1"));
}

#[test]
fn version_1_files_load_as_lenet5_and_are_rewritten_as_version_2() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/lenet5-mnist.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let meta = header.metadata().clone().unwrap();
    assert_eq!(meta["version"], "1", "the shipped models are version 1 files");
    let v1 = ModelFile::from_bytes(&bytes).unwrap();
    assert_eq!(v1.quant.network, Network::lenet5());
    let v2 = v1.to_bytes().unwrap();
    let (_, header) = safetensors::SafeTensors::read_metadata(&v2).unwrap();
    assert_eq!(header.metadata().as_ref().unwrap()["version"], "2");
    let back = ModelFile::from_bytes(&v2).unwrap();
    assert_eq!(back.quant, v1.quant);
    assert_eq!(back.float, v1.float);
}

#[test]
fn model_file_shape_mismatch_and_damage_are_errors() {
    let mut file = sample_file();
    file.float.layers[2].weight.pop();
    assert!(file.to_bytes().is_err() || ModelFile::from_bytes(&file.to_bytes().unwrap()).is_err());

    // A tensor with the wrong shape, written by hand.
    let good = sample_file().to_bytes().unwrap();
    let st = safetensors::SafeTensors::deserialize(&good).unwrap();
    let (_, meta) = safetensors::SafeTensors::read_metadata(&good).unwrap();
    let mut tensors: Vec<(String, safetensors::tensor::TensorView)> =
        st.tensors().into_iter().filter(|(n, _)| n != "fc1.bias").collect();
    let wrong = vec![0u8; 4 * 119];
    tensors.push((
        "fc1.bias".into(),
        safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![119], &wrong).unwrap(),
    ));
    let bytes = safetensors::serialize(tensors, meta.metadata().clone()).unwrap();
    let e = ModelFile::from_bytes(&bytes).unwrap_err().to_string();
    assert!(e.contains("fc1.bias") && e.contains("119"), "{e}");

    assert!(ModelFile::from_bytes(b"garbage").is_err());
    let e = ModelFile::from_bytes(&good[..good.len() - 10]).unwrap_err().to_string();
    assert!(!e.is_empty());
}

/// A residual model's accumulators, written out: a (W x + b) + c s with s
/// the source's activation or its 1x1 projection, computed independently.
fn independent_residual(q: &QuantModel, l: usize, x: &[i64], source: &[i64]) -> Vec<i64> {
    let main = independent_accumulators(q, l, x);
    let s = q.layers[l].shortcut.as_ref().unwrap();
    let (_, src) = q.network.shapes()[l].shortcut.unwrap();
    let out = q.network.shapes()[l].output;
    let term: Vec<i64> = match q.network.layers()[l].shortcut.as_ref().unwrap().projection {
        None => source.to_vec(),
        Some([sy, sx]) => {
            let mut t = Vec::new();
            for o in 0..out.channels {
                for y in 0..out.height {
                    for xx in 0..out.width {
                        let mut acc = s.bias[o];
                        for c in 0..src.channels {
                            acc += s.weight[o * src.channels + c]
                                * source[(c * src.height + y * sy) * src.width + xx * sx];
                        }
                        t.push(acc);
                    }
                }
            }
            t
        }
    };
    main.iter().zip(&term).map(|(m, t)| s.main_factor * m + s.factor * t).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Residual networks: every layer's accumulators equal the independent
    /// computation (shortcut sums included), within the stated bound, and
    /// the model file round trip keeps every parameter.
    #[test]
    fn residual_forward_matches_independent_computation(seed in any::<u64>()) {
        let net = ppdnn_model::testing::random_residual_network(seed);
        let float = random_float_model(net.clone(), seed);
        let q = QuantModel::quantize(&float, &random_inputs(seed, 16, net.input().len())).unwrap();
        let image: Vec<u8> = random_inputs(seed ^ 7, 1, net.input().len());
        let trace = q.trace(&image).unwrap();
        let mut x: Vec<i64> = image.iter().map(|&p| p as i64).collect();
        let mut acts: Vec<Vec<i64>> = Vec::new();
        for (l, acc) in trace.iter().enumerate() {
            let want = match net.shapes()[l].shortcut {
                Some((f, _)) => independent_residual(&q, l, &x, &acts[f]),
                None => independent_accumulators(&q, l, &x),
            };
            prop_assert_eq!(acc, &want, "layer {}", l);
            prop_assert!(acc.iter().all(|a| a.abs() <= q.accumulator_bound(l)), "bound holds");
            x = q.activate(l, acc).unwrap();
            acts.push(x.clone());
        }
        let file = ModelFile {
            dataset: ppdnn_model::dataset::DatasetKind::Mnist,
            float,
            quant: q.clone(),
            float_accuracy: 0.5,
            quantized_accuracy: 0.5,
            training: serde_json::json!({}),
        };
        let back = ModelFile::from_bytes(&file.to_bytes().unwrap()).unwrap();
        prop_assert_eq!(&back.quant, &q);
        prop_assert_eq!(&back.float, &file.float);
    }
}

#[test]
fn shortcut_factors_hold_the_ratio() {
    use ppdnn_model::quant::shortcut_factors;
    for ratio in [1e-4, 0.003, 0.5, 1.0, 3.0, 255.9, 256.0, 1000.3, 60000.0] {
        let (a, c) = shortcut_factors(ratio).unwrap();
        let got = c as f64 / a as f64;
        assert!((got / ratio - 1.0).abs() <= 1.0 / 512.0, "{ratio}: {a} {c}");
        assert!(a.min(c) <= 256 && a >= 1 && c >= 1, "{ratio}: {a} {c}");
    }
    assert!(shortcut_factors(f64::NAN).is_err());
    assert!(shortcut_factors(0.0).is_err());
    assert_eq!(shortcut_factors(1e9).unwrap(), (1, 1 << 16));
}

#[test]
fn residual_files_are_version_3_and_a_missing_projection_is_an_error() {
    let net = ppdnn_model::zoo::resnet(ppdnn_model::network::Shape::new(1, 6, 6), &[2, 3], 1, 3);
    let file = sample_file_of(net);
    let bytes = file.to_bytes().unwrap();
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    assert_eq!(header.metadata().as_ref().unwrap()["version"], "3");
    let back = ModelFile::from_bytes(&bytes).unwrap();
    assert_eq!(back.quant, file.quant);
    // Without the projection's tensors the file is refused, naming them.
    let tensors = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let kept: Vec<(String, safetensors::tensor::TensorView)> =
        tensors.tensors().into_iter().filter(|(name, _)| !name.contains("shortcut.qweight")).collect();
    let meta = header.metadata().clone();
    let damaged = safetensors::serialize(kept, meta).unwrap();
    let e = ModelFile::from_bytes(&damaged).unwrap_err().to_string();
    assert!(e.contains("shortcut.qweight"), "{e}");
}
