//! The shipped models and ONNX: LeNet-5 exported, imported and quantized
//! on the same calibration images is the shipped integer model bit for
//! bit; the shipped ONNX models import to the shipped model files.

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

/// The models trained outside ppdnn (scripts/train_numpy.py) are shipped as
/// ONNX and as the model files `ppdnn import` made of them; importing the
/// ONNX again gives those files' models bit for bit, and they keep their
/// accuracy (float and integer within 0.2 points).
#[test]
fn the_shipped_onnx_models_import_to_the_shipped_model_files() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut train = Dataset::load(&root.join("data/mnist"), DatasetKind::Mnist, Split::Train).unwrap();
    train.truncate(5000);
    let mut test = Dataset::load(&root.join("data/mnist"), DatasetKind::Mnist, Split::Test).unwrap();
    test.truncate(2000);
    for name in ["mlp-mnist", "cnn-stride2-mnist"] {
        let bytes = std::fs::read(root.join(format!("models/{name}.onnx"))).unwrap();
        let float = import(&bytes, &ImportOptions::default()).unwrap().model;
        let quant = QuantModel::quantize(&float, &train.pixels).unwrap();
        let shipped = ModelFile::load(&root.join(format!("models/{name}.safetensors"))).unwrap();
        assert_eq!(float, shipped.float, "{name}");
        assert_eq!(quant, shipped.quant, "{name}");
        let f = float.accuracy(&test.pixels, &test.labels).unwrap();
        let q = quant.accuracy(&test.pixels, &test.labels).unwrap();
        assert!(f > 0.97 && (f - q).abs() <= 0.002, "{name}: float {f}, integer {q}");
    }
}
