//! `ppdnn eval` and `ppdnn predict`: the plaintext baselines.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;
use indicatif::{ParallelProgressIterator, ProgressBar, ProgressStyle};
use ppdnn_model::dataset::{Dataset, PIXELS, Split, resolve_data_dir};
use ppdnn_model::image_io::load_png_as;
use ppdnn_model::modelfile::ModelFile;
use ppdnn_model::network::argmax;
use ppdnn_model::npy::load_npy;
use rayon::prelude::*;
use serde::Serialize;

/// The model shipped with ppdnn, used when --model is not given.
pub const DEFAULT_MODEL: &str = "models/lenet5-mnist.safetensors";

#[derive(Args)]
pub struct EvalArgs {
    /// Model file (safetensors).
    #[arg(long, default_value = DEFAULT_MODEL)]
    pub model: PathBuf,
    /// Folder with the IDX files (default: $PPDNN_DATA, then ./data/mnist;
    /// Fashion-MNIST: $PPDNN_FASHION_DATA, then /usr/share/datasets/fashion-mnist).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Evaluate only N test images (with --encrypted: 100 unless given).
    #[arg(long)]
    pub limit: Option<usize>,
    /// Skip the first N test images (to split a long run into parts).
    #[arg(long, default_value_t = 0)]
    pub offset: usize,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct EvalReport {
    dataset: &'static str,
    images: usize,
    float_accuracy: f64,
    quantized_accuracy: f64,
    agreement: usize,
    seconds: f64,
}

/// Loads a model file with a message that says what to do if it is missing.
pub fn load_model(path: &Path) -> Result<ModelFile> {
    if !path.exists() {
        anyhow::bail!(
            "model file {} not found (the shipped models are in models/ at the repository root; run from there, pass --model, or train one with `ppdnn train`)",
            path.display()
        );
    }
    Ok(ModelFile::load(path)?)
}

/// The test split of the model's data set, cut to `limit` images.
pub fn load_test_set(
    model: &ModelFile,
    data: Option<&Path>,
    offset: usize,
    limit: Option<usize>,
) -> Result<Dataset> {
    let dir = resolve_data_dir(data, model.dataset);
    let mut test = Dataset::load(&dir, model.dataset, Split::Test)?;
    if offset >= test.len() {
        anyhow::bail!("--offset {offset}: the test set has {} images", test.len());
    }
    test.pixels.drain(..offset * PIXELS);
    test.labels.drain(..offset);
    if let Some(n) = limit {
        if n == 0 {
            anyhow::bail!("--limit 0: nothing to evaluate");
        }
        test.truncate(n);
    }
    Ok(test)
}

/// A progress bar in ppdnn's style.
pub fn progress_bar(len: usize, what: &str) -> ProgressBar {
    let style =
        ProgressStyle::with_template(&format!("{what} [{{bar:30}}] {{pos}}/{{len}} {{msg}} eta {{eta}}"))
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
    ProgressBar::new(len as u64).with_style(style)
}

pub fn eval_plain(args: EvalArgs) -> Result<()> {
    let model = load_model(&args.model)?;
    let test = load_test_set(&model, args.data.as_deref(), args.offset, args.limit)?;
    let start = Instant::now();
    let bar = if args.json { ProgressBar::hidden() } else { progress_bar(test.len(), "eval") };
    let results: Vec<(bool, bool, bool)> = (0..test.len())
        .into_par_iter()
        .progress_with(bar.clone())
        .map(|i| -> Result<(bool, bool, bool)> {
            let img = test.image(i);
            let label = test.labels[i] as usize;
            let f = argmax(&model.float.logits(img)?);
            let q = model.quant.predict(img)?;
            Ok((f == label, q == label, f == q))
        })
        .collect::<Result<_>>()?;
    bar.finish_and_clear();
    let n = results.len();
    let count = |k: fn(&(bool, bool, bool)) -> bool| results.iter().filter(|r| k(r)).count();
    let report = EvalReport {
        dataset: model.dataset.name(),
        images: n,
        float_accuracy: count(|r| r.0) as f64 / n as f64,
        quantized_accuracy: count(|r| r.1) as f64 / n as f64,
        agreement: count(|r| r.2),
        seconds: start.elapsed().as_secs_f64(),
    };
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "{} test images of {}: float accuracy {:.2}%, integer accuracy {:.2}% (float and integer agree on {} of {}), {:.1} s",
            report.images,
            report.dataset,
            report.float_accuracy * 100.0,
            report.quantized_accuracy * 100.0,
            report.agreement,
            report.images,
            report.seconds
        );
    }
    Ok(())
}

#[derive(Args)]
pub struct PredictArgs {
    /// Model file (safetensors).
    #[arg(long, default_value = DEFAULT_MODEL)]
    model: PathBuf,
    /// Print a JSON list instead of text.
    #[arg(long)]
    json: bool,
    /// Run the float model instead of the integer one: `float_logits` in
    /// the JSON (what onnxruntime gives for the exported or imported network).
    #[arg(long)]
    float: bool,
    /// PNG images (any size; a dark digit on light paper is inverted) or
    /// .npy arrays of pixels 0..255: one input of shape (1, 28, 28) or
    /// (28, 28), or a batch (N, 1, 28, 28) or (N, 28, 28).
    #[arg(required = true)]
    images: Vec<PathBuf>,
}

/// One classified image, as printed by predict and classify.
#[derive(Serialize, Debug, Clone)]
pub struct Prediction {
    /// The image file.
    pub file: String,
    /// The predicted class index.
    pub label: usize,
    /// The predicted class name.
    pub class: String,
    /// Class probabilities (softmax of the integer logits), index = label.
    pub scores: Vec<f64>,
    /// The integer logits.
    pub logits: Vec<i64>,
}

/// Text form of predictions: file, label, top probability.
pub fn print_predictions(preds: &[Prediction], json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(preds)?);
    } else {
        for p in preds {
            match p.scores.get(p.label) {
                Some(score) => println!("{}\t{}\t{} ({:.1}%)", p.file, p.label, p.class, score * 100.0),
                None => println!("{}\t{}\t{} (label only)", p.file, p.label, p.class),
            }
        }
    }
    Ok(())
}

/// The inputs named on the command line, each with the name it is printed
/// under: a PNG image is one input (`FILE`); a .npy array is one input
/// (`FILE`) or a batch (`FILE[0]`, `FILE[1]`, ...) of `input_shape`
/// (channels, height, width); a PNG is read in that shape.
pub(crate) fn load_inputs(paths: &[PathBuf], input_shape: &[usize]) -> Result<Vec<(String, Vec<u8>)>> {
    let png_shape: [usize; 3] = input_shape.try_into().map_err(|_| {
        anyhow::anyhow!("the model's input shape {input_shape:?} is not channels x height x width")
    })?;
    let mut out = Vec::new();
    for path in paths {
        let name = path.display().to_string();
        if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("npy")) {
            let npy = load_npy(path, input_shape)?;
            let batched = npy.batched;
            out.extend(
                npy.inputs
                    .into_iter()
                    .enumerate()
                    .map(|(i, x)| (if batched { format!("{name}[{i}]") } else { name.clone() }, x)),
            );
        } else {
            out.push((name, load_png_as(path, png_shape)?));
        }
    }
    Ok(out)
}

pub fn predict(args: PredictArgs) -> Result<()> {
    let model = load_model(&args.model)?;
    let names = model.class_names();
    let mut preds = Vec::new();
    let input = model.quant.network.input();
    let inputs = load_inputs(&args.images, &[input.channels, input.height, input.width])?;
    if args.float {
        return predict_float(&model, inputs, args.json);
    }
    for (file, pixels) in inputs {
        let logits = model.quant.logits(&pixels).with_context(|| file.clone())?;
        let label = argmax(&logits);
        preds.push(Prediction {
            file,
            label,
            class: names[label].to_string(),
            scores: model.quant.scores(&logits),
            logits,
        });
    }
    print_predictions(&preds, args.json)
}

/// `predict --float`: the float model's logits.
fn predict_float(model: &ModelFile, inputs: Vec<(String, Vec<u8>)>, json: bool) -> Result<()> {
    let names = model.class_names();
    let mut out = Vec::new();
    for (file, pixels) in inputs {
        let logits = model.float.logits(&pixels).with_context(|| file.clone())?;
        let label = argmax(&logits);
        if !json {
            println!("{file}\t{label}\t{}\t{logits:?}", names[label]);
        }
        out.push(
            serde_json::json!({"file": file, "label": label, "class": names[label], "float_logits": logits}),
        );
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&out)?);
    }
    Ok(())
}

#[derive(Args)]
pub struct ExportArgs {
    /// The data set: mnist or fashion-mnist.
    #[arg(long, default_value = "mnist")]
    dataset: String,
    /// Folder with the IDX files (as for eval).
    #[arg(long)]
    data: Option<PathBuf>,
    /// How many test images, from the first.
    #[arg(long, default_value_t = 20)]
    count: usize,
    /// Folder to write the PNG files to (created if missing).
    #[arg(long, short)]
    out: PathBuf,
}

/// Writes the first test images as PNG files named INDEX-LABEL.png.
pub fn export(args: ExportArgs) -> Result<()> {
    let kind = ppdnn_model::dataset::DatasetKind::from_name(&args.dataset)?;
    let dir = resolve_data_dir(args.data.as_deref(), kind);
    let test = Dataset::load(&dir, kind, Split::Test)?;
    if args.count == 0 || args.count > test.len() {
        anyhow::bail!("--count {}: choose 1 to {}", args.count, test.len());
    }
    std::fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    for i in 0..args.count {
        let path = args.out.join(format!("{i:04}-{}.png", test.labels[i]));
        ppdnn_model::image_io::save_png(&path, test.image(i))?;
    }
    println!("wrote {} images to {}", args.count, args.out.display());
    Ok(())
}
