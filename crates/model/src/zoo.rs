//! Network shapes beyond LeNet-5, for costs and tests: ResNet-style
//! networks (basic blocks with identity and projection shortcuts, global
//! average pooling) and a VGG-style network on 3x32x32 colour images.

use crate::error::Result;
use crate::float::FloatModel;
use crate::network::{FloatParams, Layer, Linear, Network, Pool, PoolKind, Shape, Shortcut};
use crate::quant::QuantModel;

/// A convolution layer: `out` channels, a square kernel `k`, stride and padding on every side.
pub fn conv(name: &str, out: usize, k: usize, stride: usize, pad: usize) -> Layer {
    Layer {
        name: name.into(),
        linear: Linear::Conv2d { out_channels: out, kernel: [k, k], stride: [stride; 2], padding: [pad; 4] },
        relu: true,
        pool: None,
        shortcut: None,
    }
}

/// A dense layer of `outputs` (ReLU unless it is the last).
pub fn dense(name: &str, outputs: usize, relu: bool) -> Layer {
    Layer { name: name.into(), linear: Linear::Dense { outputs }, relu, pool: None, shortcut: None }
}

/// A pooling window of `side` x `side` with stride `side`.
pub fn pool(kind: PoolKind, side: usize) -> Option<Pool> {
    Some(Pool { kind, window: [side; 2], stride: [side; 2] })
}

/// A ResNet-style network on `input`: a 3x3 stem of `widths[0]` channels,
/// then per width a stage of `blocks` basic blocks (two 3x3 convolutions,
/// the second adding the block's input: through the identity, or through
/// a 1x1 projection of stride 2 where a stage begins with more channels
/// and half the side), global average pooling after the last block, and a
/// dense layer of `classes`. The caller keeps the sides even enough for the
/// strides.
pub fn resnet(input: Shape, widths: &[usize], blocks: usize, classes: usize) -> Network {
    let mut layers = vec![conv("stem", widths[0], 3, 1, 1)];
    let (mut side, mut channels, mut last) = ([input.height, input.width], widths[0], "stem".to_string());
    for (s, &width) in widths.iter().enumerate() {
        for b in 0..blocks {
            let stride = if s > 0 && b == 0 { 2 } else { 1 };
            let name = format!("s{}b{}", s + 1, b + 1);
            layers.push(conv(&format!("{name}.conv1"), width, 3, stride, 1));
            let mut second = conv(&format!("{name}.conv2"), width, 3, 1, 1);
            let projection = (stride != 1 || channels != width).then_some([stride; 2]);
            second.shortcut = Some(Shortcut { from: last.clone(), projection });
            side = side.map(|v| (v + 2 - 3) / stride + 1);
            last = second.name.clone();
            channels = width;
            layers.push(second);
        }
    }
    let end = layers.last_mut().expect("a stem and blocks");
    end.pool = Some(Pool { kind: PoolKind::Average, window: side, stride: [1, 1] });
    layers.push(dense("fc", classes, false));
    Network::new(input, layers).expect("the blocks keep their shapes")
}

/// ResNet-20's shape on 3x32x32: stages of 16, 32 and 64 channels, three
/// basic blocks each, 10 classes.
pub fn resnet20() -> Network {
    resnet(Shape::new(3, 32, 32), &[16, 32, 64], 3, 10)
}

/// A VGG-style network on 3x32x32 (about 42,000 activations): conv 16,
/// conv 16 + 2x2 max pool, conv 32 + 2x2 max pool, conv 32 + 2x2 average
/// pool (3x3, padding 1, ReLU each), dense 512 -> 64, dense 64 -> 10.
pub fn vgg_cifar() -> Network {
    let with_pool = |mut l: Layer, kind| {
        l.pool = pool(kind, 2);
        l
    };
    let layers = vec![
        conv("conv1", 16, 3, 1, 1),
        with_pool(conv("conv2", 16, 3, 1, 1), PoolKind::Max),
        with_pool(conv("conv3", 32, 3, 1, 1), PoolKind::Max),
        with_pool(conv("conv4", 32, 3, 1, 1), PoolKind::Average),
        dense("fc1", 64, true),
        dense("fc2", 10, false),
    ];
    Network::new(Shape::new(3, 32, 32), layers).expect("the VGG-style shapes are consistent")
}

/// A small ResNet-style network for 1x28x28 digits: a 3x3 stem of 16
/// channels with 2x2 average pooling, a block of 16 (identity shortcut), a
/// block of 32 at stride 2 (projection shortcut), global average pooling
/// over 7x7, 10 classes. ppdnn trains it (`ppdnn train --arch resnet-mnist`).
pub fn resnet_mnist() -> Network {
    let mut stem = conv("stem", 16, 3, 1, 1);
    stem.pool = pool(PoolKind::Average, 2);
    let mut b1 = conv("b1.conv2", 16, 3, 1, 1);
    b1.shortcut = Some(Shortcut { from: "stem".into(), projection: None });
    let mut b2 = conv("b2.conv2", 32, 3, 1, 1);
    b2.shortcut = Some(Shortcut { from: "b1.conv2".into(), projection: Some([2, 2]) });
    b2.pool = Some(Pool { kind: PoolKind::Average, window: [7, 7], stride: [1, 1] });
    let layers = vec![
        stem,
        conv("b1.conv1", 16, 3, 1, 1),
        b1,
        conv("b2.conv1", 32, 3, 2, 1),
        b2,
        dense("fc", 10, false),
    ];
    Network::new(Shape::new(1, 28, 28), layers).expect("the blocks keep their shapes")
}

/// The networks of this module by name: `resnet20`, `vgg-cifar`, `resnet-mnist`, `lenet5`.
pub fn by_name(name: &str) -> Option<Network> {
    match name {
        "resnet20" => Some(resnet20()),
        "resnet-mnist" => Some(resnet_mnist()),
        "vgg-cifar" => Some(vgg_cifar()),
        "lenet5" => Some(Network::lenet5()),
        _ => None,
    }
}

/// The names [`by_name`] knows.
pub const NAMES: &[&str] = &["resnet20", "vgg-cifar", "resnet-mnist", "lenet5"];

/// `network` with random weights (uniform, scaled by 1/sqrt(fan-in) so that
/// activations neither vanish nor explode through the layers) and small
/// biases, deterministic from `seed`: for measuring costs, which do not
/// depend on what a network has learnt.
pub fn random_weights(network: Network, seed: u64) -> Result<FloatModel> {
    let mut state = seed | 1;
    let mut uniform = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        ((state >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0) as f32
    };
    let mut params = |shape: Vec<usize>, biases: usize| {
        let fan_in: usize = shape[1..].iter().product();
        let scale = (3.0 / fan_in.max(1) as f32).sqrt();
        let weight = (0..shape.iter().product::<usize>()).map(|_| uniform() * scale).collect();
        FloatParams::new(weight, (0..biases).map(|_| uniform() * 0.05).collect())
    };
    let layers = network
        .layers()
        .iter()
        .zip(network.shapes())
        .map(|(layer, shapes)| {
            let mut p = params(layer.weight_shape(shapes.input), layer.bias_len());
            if let (Some(proj), Some((_, source))) = (layer.shortcut_projection(), shapes.shortcut) {
                p.shortcut = Some(Box::new(params(proj.weight_shape(source), proj.bias_len())));
            }
            p
        })
        .collect();
    FloatModel::new(network, layers)
}

/// [`random_weights`], quantized on `count` random images (pixels uniform
/// in 0..255, from `seed`).
pub fn random_quant_model(network: Network, seed: u64, count: usize) -> Result<(FloatModel, QuantModel)> {
    let float = random_weights(network, seed)?;
    let pixels = random_pixels(seed.rotate_left(17), count * float.input_len());
    let quant = QuantModel::quantize(&float, &pixels)?;
    Ok((float, quant))
}

/// `len` pixels uniform in 0..255, deterministic from `seed` (xorshift):
/// random images for measuring costs.
pub fn random_pixels(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 56) as u8
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resnet20_has_its_shapes_and_shortcuts() {
        let net = resnet20();
        assert_eq!(net.layers().len(), 1 + 18 + 1);
        let projections = net.layers().iter().filter(|l| l.shortcut_projection().is_some()).count();
        assert_eq!(projections, 2);
        assert_eq!(net.layers().iter().filter(|l| l.shortcut.is_some()).count(), 9);
        assert_eq!(net.shapes()[19].input, Shape::vector(64));
        assert_eq!(net.classes(), 10);
        let activations: usize = net.shapes().iter().map(|s| s.output.len()).sum();
        assert!(activations > 150_000, "{activations}");
        assert_eq!(Network::from_json(&net.to_json()).unwrap(), net);
    }

    #[test]
    fn vgg_cifar_has_the_issue_s_shape() {
        let net = vgg_cifar();
        let outputs: usize = net.shapes().iter().map(|s| s.output.len()).sum();
        assert_eq!(net.shapes()[4].input.len(), 512);
        assert!((40_000..45_000).contains(&outputs), "{outputs}");
    }

    #[test]
    fn shortcuts_are_checked_naming_the_layer() {
        let mut layers = vec![conv("a", 4, 3, 1, 1), conv("b", 4, 3, 1, 1), dense("fc", 2, false)];
        let input = Shape::new(1, 6, 6);
        layers[1].shortcut = Some(Shortcut { from: "c".into(), projection: None });
        let e = Network::new(input, layers.clone()).unwrap_err().to_string();
        assert!(e.contains("\"b\"") || e.contains("b:") || e.contains("layer b"), "{e}");
        assert!(e.contains("not an earlier layer"), "{e}");
        layers[1].shortcut = Some(Shortcut { from: "a".into(), projection: Some([2, 2]) });
        let e = Network::new(input, layers.clone()).unwrap_err().to_string();
        assert!(e.contains("4x3x3") && e.contains("4x6x6"), "{e}");
        layers[1].shortcut = Some(Shortcut { from: "a".into(), projection: None });
        let net = Network::new(input, layers.clone()).unwrap();
        assert_eq!(net.shapes()[1].shortcut, Some((0, Shape::new(4, 6, 6))));
        assert_eq!(net.shortcut_sources(), vec![true, false, false]);
        layers[2].shortcut = Some(Shortcut { from: "a".into(), projection: None });
        let e = Network::new(input, layers).unwrap_err().to_string();
        assert!(e.contains("convolution"), "{e}");
    }
}
