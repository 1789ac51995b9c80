//! The shipped LeNet-5 through ONNX and back: exported, imported, and
//! quantized on the same calibration images, it is the shipped integer
//! model bit for bit.

use std::path::Path;

use ppdnn_model::dataset::{Dataset, DatasetKind, Split};
use ppdnn_model::modelfile::ModelFile;
use ppdnn_model::quant::QuantModel;
use ppdnn_onnx::{ImportOptions, export, import};

#[test]
fn lenet5_round_trips_through_onnx_bit_for_bit() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let shipped = ModelFile::load(&root.join("models/lenet5-mnist.safetensors")).unwrap();
    let bytes = export(&shipped.float);
    let imported = import(&bytes, &ImportOptions::default()).unwrap();
    assert_eq!(imported.model, shipped.float, "float parameters and architecture, names included");
    let mut train = Dataset::load(&root.join("data/mnist"), DatasetKind::Mnist, Split::Train).unwrap();
    train.truncate(5000);
    let quant = QuantModel::quantize(&imported.model, &train.pixels).unwrap();
    assert_eq!(quant, shipped.quant, "the integer model, bit for bit");
}
