//! The shipped models load, and keep their accuracy.

use std::path::PathBuf;

use ppdnn_model::dataset::{Dataset, DatasetKind, Split};
use ppdnn_model::modelfile::ModelFile;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn shipped_mnist_model_integer_accuracy_on_first_1000() {
    let model = ModelFile::load(&root().join("models/lenet5-mnist.safetensors")).unwrap();
    assert_eq!(model.dataset, DatasetKind::Mnist);
    assert!(model.float_accuracy >= 0.99, "recorded float accuracy {}", model.float_accuracy);
    let mut test = Dataset::load(&root().join("data/mnist"), DatasetKind::Mnist, Split::Test).unwrap();
    test.truncate(1000);
    let acc = model.quant.accuracy(&test.pixels, &test.labels);
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
    let acc = model.quant.accuracy(&test.pixels, &test.labels);
    assert!(acc >= 0.87, "integer accuracy on the first 1000 Fashion-MNIST test images: {acc}");
}
