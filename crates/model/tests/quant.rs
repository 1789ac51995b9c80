//! The integer forward pass against an independent computation, the
//! requantization step, and model file round trips.

use ppdnn_model::lenet::{FloatLayer, FloatModel, LENET5, LayerShape};
use ppdnn_model::modelfile::ModelFile;
use ppdnn_model::quant::{MULTIPLIER_BITS, QuantModel, Requant};
use proptest::prelude::*;

/// A deterministic pseudo-random float model (xorshift), for tests only.
fn random_float_model(seed: u64) -> FloatModel {
    let mut s = seed | 1;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        ((s >> 11) as f64 / (1u64 << 53) as f64) as f32 - 0.5
    };
    FloatModel {
        layers: LENET5
            .iter()
            .map(|spec| FloatLayer {
                weight: (0..spec.shape.weight_shape().iter().product::<usize>())
                    .map(|_| next() * 0.4)
                    .collect(),
                bias: (0..spec.shape.out_channels()).map(|_| next() * 0.2).collect(),
            })
            .collect(),
    }
}

fn random_images(seed: u64, count: usize) -> Vec<u8> {
    let mut s = seed | 1;
    (0..count * 784)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (s >> 56) as u8
        })
        .collect()
}

/// Straightforward accumulators on an explicitly zero-padded input, written
/// independently of the crate's `linear`.
fn independent_accumulators(q: &QuantModel, l: usize, x: &[i64]) -> Vec<i64> {
    let layer = &q.layers[l];
    match layer.spec.shape {
        LayerShape::Conv { in_channels: ci, out_channels: co, kernel: k, pad, in_side: s } => {
            let ps = s + 2 * pad;
            let mut padded = vec![0i64; ci * ps * ps];
            for c in 0..ci {
                for y in 0..s {
                    for xx in 0..s {
                        padded[(c * ps + y + pad) * ps + xx + pad] = x[(c * s + y) * s + xx];
                    }
                }
            }
            let os = ps - k + 1;
            let mut out = Vec::new();
            for o in 0..co {
                for y in 0..os {
                    for xx in 0..os {
                        let mut acc = layer.bias[o];
                        for c in 0..ci {
                            for dy in 0..k {
                                for dx in 0..k {
                                    acc += layer.weight[o * ci * k * k + c * k * k + dy * k + dx]
                                        * padded[(c * ps + y + dy) * ps + xx + dx];
                                }
                            }
                        }
                        out.push(acc);
                    }
                }
            }
            out
        }
        LayerShape::Dense { inputs, outputs } => (0..outputs)
            .map(|o| layer.bias[o] + (0..inputs).map(|i| layer.weight[o * inputs + i] * x[i]).sum::<i64>())
            .collect(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(8))]

    #[test]
    fn integer_forward_matches_independent_computation(seed in any::<u64>()) {
        let float = random_float_model(seed);
        let calib = random_images(seed ^ 0xabc, 20);
        let q = QuantModel::quantize(&float, &calib).unwrap();
        q.validate().unwrap();
        let image = random_images(seed ^ 0x123, 1);
        let trace = q.trace(&image).unwrap();
        let mut x: Vec<i64> = image.iter().map(|&p| p as i64).collect();
        for (l, traced) in trace.iter().enumerate() {
            let acc = independent_accumulators(&q, l, &x);
            prop_assert_eq!(&acc, traced);
            prop_assert!(acc.iter().all(|a| a.abs() <= q.accumulator_bound(l)), "bound holds");
            x = q.activate(l, &acc).unwrap();
            if l + 1 < LENET5.len() {
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
    let float = random_float_model(7);
    let quant = QuantModel::quantize(&float, &random_images(9, 10)).unwrap();
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
    let file = sample_file();
    let back = ModelFile::from_bytes(&file.to_bytes().unwrap()).unwrap();
    assert_eq!(back.float, file.float);
    assert_eq!(back.quant, file.quant);
    assert_eq!(back.dataset, file.dataset);
    assert_eq!(back.training, file.training);
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
