//! Helpers shared by the protocol's integration tests.

use ppdnn_model::dataset::Dataset;
use ppdnn_model::quant::QuantModel;

/// A LeNet-5 with random weights (xorshift from `seed`), quantized on one
/// image of `data`.
pub fn random_model(seed: u64, data: &Dataset) -> QuantModel {
    let mut s = seed | 1;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        ((s >> 11) as f64 / (1u64 << 53) as f64) as f32 - 0.5
    };
    let float = ppdnn_model::lenet::FloatModel {
        layers: ppdnn_model::lenet::LENET5
            .iter()
            .map(|spec| ppdnn_model::lenet::FloatLayer {
                weight: (0..spec.shape.weight_shape().iter().product::<usize>()).map(|_| next()).collect(),
                bias: (0..spec.shape.out_channels()).map(|_| next() * 0.3).collect(),
            })
            .collect(),
    };
    QuantModel::quantize(&float, data.image(100)).unwrap()
}
