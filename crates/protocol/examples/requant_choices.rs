//! The requantization styles side by side: 8-bit multipliers ("fixed", the
//! default) against powers of two ("pow2", `ppdnn import --requant pow2`)
//! and the choice per layer ("auto", `--requant auto`: compared on the
//! first 1,000 training images for MNIST, on the 1,000 shipped test images
//! for Fashion-MNIST, where only they ship; no labels are used),
//! re-quantized from the shipped models' float weights and calibrated
//! activation scales: integer accuracy on MNIST (10,000 test images; LeNet-5
//! and the small residual network) and
//! Fashion-MNIST (the 1,000 shipped test images), and the private mode's
//! circuits at 2048 bits (run from the repository root:
//! `cargo run --release -p ppdnn-protocol --example requant_choices`).
use std::path::Path;

use ppdnn_model::dataset::{Dataset, DatasetKind, Split};
use ppdnn_model::modelfile::ModelFile;
use ppdnn_model::quant::{QuantModel, RequantStyle};
use ppdnn_model::zoo;
use ppdnn_protocol::{Mode, Packing, Plan};

fn circuits(q: &QuantModel) -> (usize, f64) {
    let p = Plan::for_mode(q, 2048, Packing::Packed, Mode::Private).expect("a private plan");
    let ands = p.layers.iter().filter_map(|l| l.circuit.as_ref()).map(|c| c.and_gates).sum();
    let bytes: usize = p.layers.iter().filter_map(|l| l.circuit.as_ref()).map(|c| c.garbled_bytes).sum();
    (ands, bytes as f64 / 1e6)
}

fn main() {
    let sets = [
        ("models/lenet5-mnist.safetensors", "data/mnist", DatasetKind::Mnist),
        ("models/resnet-mnist.safetensors", "data/mnist", DatasetKind::Mnist),
        (
            "models/lenet5-fashion-mnist.safetensors",
            "crates/model/tests/data/fashion-mnist-t10k-1000",
            DatasetKind::FashionMnist,
        ),
    ];
    println!("| model | requantization | integer accuracy | AND gates | garbled MB |");
    println!("|---|---|---:|---:|---:|");
    for (model, data, kind) in sets {
        let m = ModelFile::load(Path::new(model)).expect("a shipped model");
        let test = Dataset::load(Path::new(data), kind, Split::Test).expect("the test images");
        let scales = m.quant.activation_scales();
        let compare = match kind {
            DatasetKind::Mnist => {
                Dataset::load(Path::new(data), kind, Split::Train).expect("the training images")
            }
            _ => test.clone(),
        };
        let auto = QuantModel::choose_requant(&m.float, &scales, &compare.pixels).expect("auto");
        let choices = [
            (
                "fixed".to_string(),
                QuantModel::from_scales(&m.float, &scales, RequantStyle::Fixed).expect("fixed"),
            ),
            (
                "pow2".to_string(),
                QuantModel::from_scales(&m.float, &scales, RequantStyle::PowerOfTwo).expect("pow2"),
            ),
            (format!("auto ({})", auto.style_names().join(", ")), auto.model),
        ];
        for (name, q) in choices {
            let acc = q.accuracy(&test.pixels, &test.labels).expect("accuracy");
            let (ands, mb) = circuits(&q);
            println!(
                "| {model} ({} test images) | {name} | {:.2}% | {ands} | {mb:.1} |",
                test.labels.len(),
                100.0 * acc
            );
        }
    }
    let (float, fixed) = zoo::random_quant_model(zoo::vgg_cifar(), 1, 16).expect("the VGG-style network");
    for style in [RequantStyle::Fixed, RequantStyle::PowerOfTwo] {
        let q = QuantModel::from_scales(&float, &fixed.activation_scales(), style).expect("quantized");
        let (ands, mb) = circuits(&q);
        println!("| VGG-style 3x32x32 (random weights) | {} | - | {ands} | {mb:.1} |", style.name());
    }
}
