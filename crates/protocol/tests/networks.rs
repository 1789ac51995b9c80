//! Networks other than LeNet-5: random sequential networks (convolutions of
//! every kernel, stride and padding, non-square and 3-channel inputs,
//! average and max pooling of any window and stride, dense layers) give
//! exactly the plaintext integer model's logits in both protocol modes, and
//! their plans survive a JSON round trip and the client's checks.

mod common;

use common::{key, random_inputs, random_network, random_quant_model};
use ppdnn_model::quant::RequantStyle;
use ppdnn_model::testing::{random_quant_model_mixed, random_quant_model_with};

use std::sync::Arc;

use ppdnn_model::network::argmax;
use ppdnn_model::network::{Linear, PoolKind};
use ppdnn_paillier::KeyPair;
use ppdnn_protocol::Output;
use ppdnn_protocol::{ClientStep, Evaluator, Mode, Packing, Plan};
use proptest::prelude::*;

fn run_fast(ev: &Evaluator, pair: &KeyPair, input: &[u8]) -> ClientStep {
    common::run(ev, pair, input, Output::Logits)
}

fn run_private(ev: &Evaluator, pair: &KeyPair, input: &[u8], output: Output) -> ClientStep {
    common::run(ev, pair, input, output)
}

/// `network` with random weights (from `weights`, requantized with 8-bit
/// multipliers, powers of two, or both layer by layer, as `seed` mod 3 is
/// 0, 1 or 2) on a random
/// input (from `seed`): both layouts of the fast mode and both outputs of the private
/// mode give exactly the integer model's result, and the plans survive JSON.
fn check_both_modes(
    network: ppdnn_model::network::Network,
    weights: u64,
    seed: u64,
) -> Result<(), TestCaseError> {
    let n = network.input().len();
    // A third of the cases requantize by powers of two (the private circuits
    // then fold the rounding into the slot offsets), a third mix the two
    // styles layer by layer (as --requant auto may).
    let calibration = random_inputs(seed ^ 1, 8, n);
    let model = Arc::new(match seed % 3 {
        0 => random_quant_model_with(network, weights, &calibration, RequantStyle::Fixed),
        1 => random_quant_model_with(network, weights, &calibration, RequantStyle::PowerOfTwo),
        _ => random_quant_model_mixed(network, weights, &calibration),
    });
    let input = random_inputs(seed ^ 2, 1, n);
    let want = model.logits(&input).unwrap();
    let pair = key(1024);
    for packing in [Packing::Packed, Packing::Unpacked] {
        let ev = Evaluator::new(model.clone(), 1024, packing).unwrap();
        prop_assert_eq!(Plan::from_json(&ev.plan().to_json()).unwrap(), (**ev.plan()).clone());
        prop_assert_eq!(run_fast(&ev, pair, &input), ClientStep::Done(want.clone()), "fast {:?}", packing);
    }
    let ev = Evaluator::for_mode(model.clone(), 1024, Packing::Packed, Mode::Private).unwrap();
    prop_assert_eq!(Plan::from_json(&ev.plan().to_json()).unwrap(), (**ev.plan()).clone());
    prop_assert_eq!(run_private(&ev, pair, &input, Output::Logits), ClientStep::Done(want.clone()));
    prop_assert_eq!(run_private(&ev, pair, &input, Output::Label), ClientStep::Label(argmax(&want)));
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    #[test]
    fn random_networks_are_exact_in_both_modes(seed in any::<u64>()) {
        check_both_modes(random_network(seed), seed ^ 0xf00d, seed)?;
    }
}

/// The generator covers what it claims: over the seeds the property test
/// can draw, strided, padded, non-square, 3-channel, max- and
/// average-pooled layers all occur (checked on a fixed sample).
#[test]
fn the_random_networks_cover_every_feature() {
    let (mut stride, mut pad, mut non_square, mut rgb, mut max, mut avg, mut overlap) =
        (false, false, false, false, false, false, false);
    for seed in 0..200u64 {
        let net = random_network(seed);
        let input = net.input();
        rgb |= input.channels == 3;
        non_square |= input.height != input.width;
        for layer in net.layers() {
            if let Linear::Conv2d { stride: s, padding: p, .. } = layer.linear {
                stride |= s != [1, 1];
                pad |= p.iter().any(|&v| v > 0) && p[0] != p[2];
            }
            if let Some(p) = layer.pool {
                max |= p.kind == PoolKind::Max;
                avg |= p.kind == PoolKind::Average;
                overlap |= p.stride[0] < p.window[0] || p.stride[1] < p.window[1];
            }
        }
    }
    assert!(stride && pad && non_square && rgb && max && avg && overlap);
}

/// A plan whose stated shapes disagree with its own layers is refused.
#[test]
fn plans_with_inconsistent_shapes_are_refused() {
    let network = random_network(5);
    let n = network.input().len();
    let model = Arc::new(random_quant_model(network, 5, &random_inputs(5, 4, n)));
    let ev = Evaluator::new(model, 1024, Packing::Packed).unwrap();
    let mut plan = (**ev.plan()).clone().into_unchecked();
    plan.layers[0].output.height += 1;
    let e = Plan::from_json(&plan.to_json()).unwrap_err().to_string();
    assert!(e.contains(&plan.layers[0].name) && e.contains("shapes"), "{e}");
    let mut plan = (**ev.plan()).clone().into_unchecked();
    if let Linear::Conv2d { stride, .. } = &mut plan.layers[0].linear {
        stride[0] += 1;
    }
    assert!(Plan::from_json(&plan.to_json()).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    /// Residual networks (identity and stride-2 projection shortcuts,
    /// global average pooling): both modes give exactly the integer model's
    /// logits (the fast mode in both layouts, the private mode with both
    /// outputs), and the plans survive JSON.
    #[test]
    fn residual_networks_are_exact_in_both_modes(seed in any::<u64>()) {
        check_both_modes(ppdnn_model::testing::random_residual_network(seed), seed ^ 0xbeef, seed)?;
    }
}

/// A residual plan whose shortcut is changed (source shape, factors, or
/// removed) no longer checks, or no longer matches the model.
#[test]
fn residual_plans_are_checked() {
    let network = ppdnn_model::zoo::resnet(ppdnn_model::network::Shape::new(3, 8, 8), &[2, 4], 1, 3);
    let n = network.input().len();
    let model = random_quant_model(network, 5, &random_inputs(6, 8, n));
    let plan = Plan::new(&model, 1024, Packing::Packed).unwrap();
    let l =
        plan.layers.iter().position(|l| l.shortcut.as_ref().is_some_and(|s| s.projection.is_some())).unwrap();
    let edit = |f: &dyn Fn(&mut ppdnn_protocol::PlanLayer)| {
        let mut p = plan.clone().into_unchecked();
        f(&mut p.layers[l]);
        Plan::check(p)
    };
    assert!(edit(&|pl| pl.shortcut.as_mut().unwrap().source.channels += 1).is_err());
    assert!(edit(&|pl| pl.shortcut.as_mut().unwrap().main_factor = 0).is_err());
    assert!(edit(&|pl| pl.shortcut.as_mut().unwrap().projection = None).is_err());
    let e = edit(&|pl| {
        pl.input_ciphertexts -= pl.shortcut_ciphertexts();
        pl.shortcut = None;
    });
    // Without its shortcut the layer is a valid layer of another model.
    let other = Plan::check(e.unwrap().into_unchecked()).unwrap();
    assert!(other.check_against(&model).is_err());
    let mut p = plan.clone().into_unchecked();
    p.layers[l].shortcut.as_mut().unwrap().factor += 1;
    assert!(Plan::check(p).unwrap().check_against(&model).is_err());
}

/// The shipped residual network (trained on MNIST) on two test images:
/// both modes give exactly the integer model's logits at 1024 bits.
#[test]
fn the_shipped_residual_model_is_exact_in_both_modes() {
    let path = ppdnn_model::testing::repo_root().join("models/resnet-mnist.safetensors");
    let file = ppdnn_model::modelfile::ModelFile::load(&path).unwrap();
    let model = Arc::new(file.quant);
    let pair = key(1024);
    let fast = Evaluator::new(model.clone(), 1024, Packing::Packed).unwrap();
    let private = Evaluator::for_mode(model.clone(), 1024, Packing::Packed, Mode::Private).unwrap();
    for i in [0, 1] {
        let image = common::test_set().image(i);
        let want = model.logits(image).unwrap();
        assert_eq!(run_fast(&fast, pair, image), ClientStep::Done(want.clone()), "fast, image {i}");
        assert_eq!(
            run_private(&private, pair, image, Output::Logits),
            ClientStep::Done(want),
            "private, {i}"
        );
    }
}

/// ResNet-20's shape on 3x32x32 (three stages of 16, 32 and 64 channels,
/// nine shortcuts, two of them projections) with random weights: both modes
/// give exactly the integer model's logits on a random image at 1024 bits.
#[test]
fn resnet20_is_exact_in_both_modes() {
    let (_, quant) = ppdnn_model::zoo::random_quant_model(ppdnn_model::zoo::resnet20(), 20, 4).unwrap();
    let model = Arc::new(quant);
    let input = random_inputs(21, 1, model.input_len());
    let want = model.logits(&input).unwrap();
    let pair = key(1024);
    let fast = Evaluator::new(model.clone(), 1024, Packing::Packed).unwrap();
    assert_eq!(run_fast(&fast, pair, &input), ClientStep::Done(want.clone()), "fast");
    let private = Evaluator::for_mode(model.clone(), 1024, Packing::Packed, Mode::Private).unwrap();
    assert_eq!(run_private(&private, pair, &input, Output::Logits), ClientStep::Done(want), "private");
}
