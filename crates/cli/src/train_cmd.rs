//! `ppdnn train`: train LeNet-5 (or another network of the zoo), quantize
//! it, and write the model file.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use ppdnn_model::dataset::{Dataset, DatasetKind, PIXELS, Split, resolve_data_dir};
use ppdnn_model::modelfile::ModelFile;
use ppdnn_model::quant::QuantModel;
use ppdnn_model::requant_choice::RequantChoice;
use ppdnn_train::{TrainConfig, train, train_network};

/// Training images used to calibrate the activation scales.
const CALIBRATION_IMAGES: usize = 5000;

#[derive(Args)]
pub struct TrainArgs {
    /// The network: lenet5, or resnet-mnist (a small residual network:
    /// identity and projection shortcuts, global average pooling).
    #[arg(long, default_value = "lenet5")]
    arch: String,
    /// Requantization steps: fixed (8-bit multipliers), pow2 (powers of
    /// two: the private mode's circuits multiply nothing) or auto (per
    /// layer: a power of two wherever the calibration images keep the float
    /// model's answers, within 0.2% of fixed).
    #[arg(long, default_value = "fixed", value_parser = parse_requant)]
    requant: RequantChoice,
    /// The data set: mnist or fashion-mnist.
    #[arg(long, default_value = "mnist")]
    dataset: String,
    /// Passes over the 60,000 training images.
    #[arg(long, default_value_t = 10)]
    epochs: usize,
    /// Where to write the model (safetensors).
    #[arg(long, short)]
    out: PathBuf,
    /// Folder with the IDX files (default: $PPDNN_DATA, then ./data/mnist;
    /// Fashion-MNIST: $PPDNN_FASHION_DATA, then /usr/share/datasets/fashion-mnist).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Images per step.
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    /// Adam's initial learning rate (cosine decay to 5% of it).
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
    /// Seed for initialisation and shuffling.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Stop after this many steps (a quick smoke run).
    #[arg(long)]
    max_steps: Option<usize>,
    /// Overwrite --out if it exists.
    #[arg(long)]
    force: bool,
}

fn parse_requant(s: &str) -> std::result::Result<RequantChoice, String> {
    RequantChoice::from_name(s).ok_or_else(|| format!("{s:?}: choose fixed, pow2 or auto"))
}

pub fn run(args: TrainArgs) -> Result<()> {
    let kind = DatasetKind::from_name(&args.dataset)?;
    let network = match args.arch.as_str() {
        "lenet5" => None,
        "resnet-mnist" => Some(ppdnn_model::zoo::resnet_mnist()),
        other => bail!("--arch {other}: choose lenet5 or resnet-mnist"),
    };
    if args.out.exists() && !args.force {
        bail!("{} exists; pass --force to overwrite it", args.out.display());
    }
    let dir = resolve_data_dir(args.data.as_deref(), kind);
    let train_set = Dataset::load(&dir, kind, Split::Train)?;
    let test_set = Dataset::load(&dir, kind, Split::Test)?;
    let config = TrainConfig {
        epochs: args.epochs,
        batch_size: args.batch_size,
        learning_rate: args.lr,
        seed: args.seed,
        max_steps: args.max_steps,
    };
    let bar = ProgressBar::new(0).with_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} steps, {per_sec}, eta {eta}")
            .context("progress template")?
            .progress_chars("=> "),
    );
    let start = Instant::now();
    let outcome = match &network {
        None => train(&train_set, &config, &bar)?,
        Some(net) => train_network(net, &train_set, &config, &bar)?,
    };
    bar.finish_and_clear();
    let train_secs = start.elapsed().as_secs_f64();
    let float_accuracy = outcome.model.accuracy(&test_set.pixels, &test_set.labels)?;
    let calibration = &train_set.pixels[..CALIBRATION_IMAGES.min(train_set.len()) * PIXELS];
    let chosen = QuantModel::quantize_choosing(&outcome.model, calibration, args.requant)?;
    crate::onnx_cmds::print_choice(args.requant, &chosen);
    let quant = chosen.model.clone();
    let quantized_accuracy = quant.accuracy(&test_set.pixels, &test_set.labels)?;
    let file = ModelFile {
        dataset: kind,
        float: outcome.model,
        quant,
        float_accuracy,
        quantized_accuracy,
        training: serde_json::json!({
            "epochs": args.epochs, "batch_size": args.batch_size, "learning_rate": args.lr,
            "seed": args.seed, "steps": outcome.steps, "seconds": (train_secs * 10.0).round() / 10.0,
            "framework": "burn 0.22.1 (flex backend)", "optimizer": "Adam, cosine decay",
            "calibration_images": CALIBRATION_IMAGES, "arch": args.arch, "requant": args.requant.name(), "requant_steps": chosen.style_names(),
        }),
    };
    file.save(&args.out)?;
    println!(
        "trained {} steps in {train_secs:.1} s (loss {:.4} -> {:.4}); test accuracy: float {:.2}%, integer {:.2}%; wrote {}",
        outcome.steps,
        outcome.first_loss,
        outcome.last_loss,
        float_accuracy * 100.0,
        quantized_accuracy * 100.0,
        args.out.display()
    );
    Ok(())
}
