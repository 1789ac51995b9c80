//! The shipped models load, and keep their accuracy.

use std::path::PathBuf;

use ppdnn_model::dataset::{Dataset, DatasetKind, Split};
use ppdnn_model::modelfile::ModelFile;

use ppdnn_model::testing::repo_root as root;

#[test]
fn shipped_mnist_model_integer_accuracy_on_first_1000() {
    let model = ModelFile::load(&root().join("models/lenet5-mnist.safetensors")).unwrap();
    assert_eq!(model.dataset, DatasetKind::Mnist);
    assert!(model.float_accuracy >= 0.99, "recorded float accuracy {}", model.float_accuracy);
    let mut test = Dataset::load(&root().join("data/mnist"), DatasetKind::Mnist, Split::Test).unwrap();
    test.truncate(1000);
    let acc = model.quant.accuracy(&test.pixels, &test.labels).unwrap();
    assert!(acc >= 0.985, "integer accuracy on the first 1000 test images: {acc}");
}

#[test]
fn shipped_fashion_model_loads_with_its_record() {
    let model = ModelFile::load(&root().join("models/lenet5-fashion-mnist.safetensors")).unwrap();
    assert_eq!(model.dataset, DatasetKind::FashionMnist);
    assert!(model.float_accuracy >= 0.89 && model.quantized_accuracy >= 0.89);
    // The first 1,000 Fashion-MNIST test images travel with the repository
    // (the full set is the Debian package dataset-fashion-mnist).
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/fashion-mnist-t10k-1000");
    let test = Dataset::load(&dir, DatasetKind::FashionMnist, Split::Test).unwrap();
    assert_eq!(test.labels.len(), 1000);
    let acc = model.quant.accuracy(&test.pixels, &test.labels).unwrap();
    assert!(acc >= 0.87, "integer accuracy on the first 1000 Fashion-MNIST test images: {acc}");
}

/// Integer logits of the shipped models on their first 200 test images, as
/// computed before the architecture became general (issue 13): any change
/// of the integer forward pass shows here.
#[test]
fn shipped_models_give_their_recorded_integer_logits() {
    let cases = [
        ("models/lenet5-mnist.safetensors", root().join("data/mnist"), DatasetKind::Mnist, "mnist"),
        (
            "models/lenet5-fashion-mnist.safetensors",
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/fashion-mnist-t10k-1000"),
            DatasetKind::FashionMnist,
            "fashion-mnist",
        ),
    ];
    for (model, data, kind, name) in cases {
        let model = ModelFile::load(&root().join(model)).unwrap();
        let mut test = Dataset::load(&data, kind, Split::Test).unwrap();
        test.truncate(200);
        let logits: Vec<Vec<i64>> = (0..200).map(|i| model.quant.logits(test.image(i)).unwrap()).collect();
        let golden =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("tests/data/logits-{name}-200.json"));
        let recorded: Vec<Vec<i64>> =
            serde_json::from_str(&std::fs::read_to_string(&golden).unwrap()).unwrap();
        assert_eq!(logits, recorded, "{name}");
    }
}

/// The shipped integer models are what quantizing their float models on
/// the first 5,000 training images gives, bit for bit (so an import of the
/// same float network with the same calibration reproduces them).
#[test]
fn shipped_integer_models_are_their_float_models_quantized() {
    use ppdnn_model::quant::QuantModel;
    let model = ModelFile::load(&root().join("models/lenet5-mnist.safetensors")).unwrap();
    let mut train = Dataset::load(&root().join("data/mnist"), DatasetKind::Mnist, Split::Train).unwrap();
    train.truncate(5000);
    let quant = QuantModel::quantize(&model.float, &train.pixels).unwrap();
    assert_eq!(quant, model.quant);
}

/// The shipped residual network (`ppdnn train --arch resnet-mnist`): its
/// architecture has shortcuts (an identity and a projection), it loads as a
/// version 3 file, its recorded accuracies hold on the first 1,000 test
/// images, and its integer model is its float model quantized again.
#[test]
fn shipped_residual_model_loads_and_keeps_its_accuracy() {
    let model = ModelFile::load(&root().join("models/resnet-mnist.safetensors")).unwrap();
    assert_eq!(model.quant.network, ppdnn_model::zoo::resnet_mnist());
    assert!(model.float_accuracy >= 0.985 && model.quantized_accuracy >= 0.985, "{model:?}");
    let mut test = Dataset::load(&root().join("data/mnist"), DatasetKind::Mnist, Split::Test).unwrap();
    test.truncate(1000);
    let acc = model.quant.accuracy(&test.pixels, &test.labels).unwrap();
    assert!(acc >= 0.98, "integer accuracy on the first 1000 test images: {acc}");
    let again = ppdnn_model::quant::QuantModel::from_scales(
        &model.float,
        &model.quant.activation_scales(),
        ppdnn_model::quant::RequantStyle::Fixed,
    )
    .unwrap();
    assert_eq!(again, model.quant);
}
