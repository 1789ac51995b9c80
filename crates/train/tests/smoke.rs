//! A short training run on a subset lowers the loss (fits in CI time).

use std::path::PathBuf;

use indicatif::ProgressBar;
use ppdnn_model::dataset::{Dataset, DatasetKind, Split};
use ppdnn_train::{TrainConfig, train};

#[test]
fn a_few_hundred_steps_lower_the_loss_and_beat_chance() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/mnist");
    let mut data = Dataset::load(&dir, DatasetKind::Mnist, Split::Train).unwrap();
    data.truncate(12_800);
    let config = TrainConfig { epochs: 1, max_steps: Some(200), ..TrainConfig::default() };
    let out = train(&data, &config, &ProgressBar::hidden()).unwrap();
    assert_eq!(out.steps, 200);
    assert!(out.last_loss < out.first_loss * 0.5, "loss {} -> {}", out.first_loss, out.last_loss);
    out.model.validate().unwrap();
    let mut test = Dataset::load(&dir, DatasetKind::Mnist, Split::Test).unwrap();
    test.truncate(500);
    let acc = out.model.accuracy(&test.pixels, &test.labels).unwrap();
    assert!(acc > 0.8, "accuracy after 200 steps: {acc}");
}

#[test]
fn nonsense_settings_are_refused() {
    let data = Dataset { kind: DatasetKind::Mnist, pixels: vec![0; 784], labels: vec![3] };
    let bad = TrainConfig { epochs: 0, ..TrainConfig::default() };
    assert!(train(&data, &bad, &ProgressBar::hidden()).is_err());
    let bad = TrainConfig { learning_rate: 5.0, ..TrainConfig::default() };
    assert!(train(&data, &bad, &ProgressBar::hidden()).is_err());
}
