//! `ppdnn import` (ONNX to a quantized model file) and `ppdnn export-onnx`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use ppdnn_model::dataset::{Dataset, DatasetKind, Split};
use ppdnn_model::image_io::load_png_as;
use ppdnn_model::modelfile::ModelFile;
use ppdnn_model::network::{Linear, Shape};
use ppdnn_model::npy::load_npy;
use ppdnn_model::quant::QuantModel;
use ppdnn_model::requant_choice::{Chosen, RequantChoice};
use ppdnn_onnx::{ImportOptions, InputScale, import};
use serde_json::json;

use crate::model_cmds::load_model;

/// The scale of an ONNX model's input values.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum Scale {
    /// pixel / 255 (PyTorch's ToTensor; what export-onnx writes).
    Unit,
    /// The pixels themselves, 0..255.
    Byte,
}

#[derive(Args)]
pub struct ImportArgs {
    /// The ONNX model.
    model: PathBuf,
    /// Calibration data (and, with labels, the accuracy check): a folder of
    /// IDX files (MNIST format: calibrates on the training images, measures
    /// on the test images), a folder of PNG images (labelled when every name
    /// ends in -LABEL.png), or a .npy array of inputs (labels from --labels).
    #[arg(long)]
    calibration: PathBuf,
    /// Where to write the model file (safetensors).
    #[arg(long, short)]
    out: PathBuf,
    /// Labels (a .npy vector of integers) of the inputs of a .npy --calibration.
    #[arg(long)]
    labels: Option<PathBuf>,
    /// The data set whose class names the model uses (mnist or fashion-mnist;
    /// a model with another number of classes names them by index).
    #[arg(long, default_value = "mnist")]
    dataset: String,
    /// Calibration inputs used (the first ones).
    #[arg(long, default_value_t = 5000)]
    calibration_count: usize,
    /// The input shape as CxHxW, e.g. 1x28x28 for an MLP whose graph takes
    /// 784 values (so PNGs can be given to it).
    #[arg(long, value_parser = parse_shape)]
    input_shape: Option<Shape>,
    /// What the graph's input values are.
    #[arg(long, value_enum, default_value = "unit")]
    input_scale: Scale,
    /// Input normalization the graph expects but does not contain: the
    /// mean subtracted, one value or one per channel (comma-separated), in
    /// the units of --input-scale (PyTorch's MNIST: 0.1307). Folded into the
    /// first layer: the served model still takes pixels 0..255.
    #[arg(long, value_delimiter = ',', allow_negative_numbers = true)]
    input_mean: Vec<f32>,
    /// The standard deviation divided by, as --input-mean (PyTorch's MNIST: 0.3081).
    #[arg(long, value_delimiter = ',')]
    input_std: Vec<f32>,
    /// Requantization steps: fixed (8-bit multipliers, the activation
    /// scales as calibrated) or pow2 (powers of two: each scale moved to the
    /// nearest that makes its factor one; the private mode's circuits then
    /// multiply nothing, 25 to 40% fewer AND gates; accuracy on LeNet-5 is
    /// unchanged, see `cargo run --release -p ppdnn-protocol --example requant_choices`),
    /// or auto (per layer: a power of two wherever the first 1,000
    /// calibration inputs still get the float model's answers, within 0.2%
    /// of what fixed gives).
    #[arg(long, default_value = "fixed", value_parser = parse_requant)]
    requant: RequantChoice,
    /// Overwrite --out if it exists.
    #[arg(long)]
    force: bool,
    /// Print a JSON record instead of text.
    #[arg(long)]
    json: bool,
}

fn parse_requant(s: &str) -> std::result::Result<RequantChoice, String> {
    RequantChoice::from_name(s).ok_or_else(|| format!("{s:?}: choose fixed, pow2 or auto"))
}

fn parse_shape(s: &str) -> std::result::Result<Shape, String> {
    let dims: Vec<usize> = s
        .split(['x', 'X', ','])
        .map(|d| d.trim().parse::<usize>().map_err(|_| format!("{s:?} is not CxHxW (e.g. 1x28x28)")))
        .collect::<std::result::Result<_, _>>()?;
    match dims[..] {
        [c, h, w] if c > 0 && h > 0 && w > 0 => Ok(Shape::new(c, h, w)),
        _ => Err(format!("{s:?} is not CxHxW with positive sizes (e.g. 1x28x28)")),
    }
}

/// Inputs to calibrate on, and labelled inputs to measure accuracy on.
struct Data {
    calibration: Vec<u8>,
    labelled: Option<(Vec<u8>, Vec<u8>)>,
    description: String,
}

fn load_data(args: &ImportArgs, kind: DatasetKind, shape: Shape) -> Result<Data> {
    let path = &args.calibration;
    let n = shape.len();
    let dims = [shape.channels, shape.height, shape.width];
    if path.is_dir() && has_idx(path) {
        if n != 784 {
            bail!("{}: IDX data holds 28x28 images; the model takes {dims:?}", path.display());
        }
        let mut train = Dataset::load(path, kind, Split::Train)?;
        train.truncate(args.calibration_count);
        let test = Dataset::load(path, kind, Split::Test).ok();
        return Ok(Data {
            description: format!("{} training images of {}", train.len(), path.display()),
            calibration: train.pixels,
            labelled: test.map(|t| (t.pixels, t.labels)),
        });
    }
    if path.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(path)
            .with_context(|| format!("reading {}", path.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("png")))
            .collect();
        files.sort();
        if files.is_empty() {
            bail!("{} holds neither IDX files nor PNG images", path.display());
        }
        let mut pixels = Vec::new();
        for f in &files {
            pixels.extend(load_png_as(f, dims)?);
        }
        let labels: Option<Vec<u8>> =
            files.iter().map(|f| f.file_stem()?.to_str()?.rsplit('-').next()?.parse::<u8>().ok()).collect();
        return Ok(Data {
            description: format!("{} PNG images of {}", files.len(), path.display()),
            calibration: pixels[..pixels.len().min(args.calibration_count * n)].to_vec(),
            labelled: labels.map(|l| (pixels, l)),
        });
    }
    // Inputs of the model's shape, or flat rows of as many values.
    let npy = match load_npy(path, &dims) {
        Ok(npy) => npy,
        Err(e) => load_npy(path, &[n]).map_err(|_| e)?,
    };
    let pixels: Vec<u8> = npy.inputs.concat();
    let labelled = match &args.labels {
        Some(l) => {
            let labels: Vec<u8> = load_npy(l, &[1])?.inputs.concat();
            if labels.len() != npy.inputs.len() {
                bail!("{} holds {} labels for {} inputs", l.display(), labels.len(), npy.inputs.len());
            }
            Some((pixels.clone(), labels))
        }
        None => None,
    };
    Ok(Data {
        description: format!("{} inputs of {}", npy.inputs.len(), path.display()),
        calibration: pixels[..pixels.len().min(args.calibration_count * n)].to_vec(),
        labelled,
    })
}

fn has_idx(dir: &Path) -> bool {
    ["train-images-idx3-ubyte", "train-images-idx3-ubyte.gz"].iter().any(|f| dir.join(f).is_file())
}

pub fn import_cmd(args: ImportArgs) -> Result<()> {
    if args.out.exists() && !args.force {
        bail!("{} exists; pass --force to overwrite it", args.out.display());
    }
    let kind = DatasetKind::from_name(&args.dataset)?;
    let start = Instant::now();
    let bytes = std::fs::read(&args.model).with_context(|| format!("reading {}", args.model.display()))?;
    let options = ImportOptions {
        input_shape: args.input_shape,
        input_scale: match args.input_scale {
            Scale::Unit => InputScale::Unit,
            Scale::Byte => InputScale::Byte,
        },
        mean: args.input_mean.clone(),
        std: args.input_std.clone(),
    };
    let imported = import(&bytes, &options).with_context(|| format!("importing {}", args.model.display()))?;
    let parsed = start.elapsed().as_secs_f64();
    let float = imported.model;
    let data = load_data(&args, kind, float.network.input())?;
    let quantize_start = Instant::now();
    let chosen = QuantModel::quantize_choosing(&float, &data.calibration, args.requant)?;
    let quant = chosen.model.clone();
    let quantized = quantize_start.elapsed().as_secs_f64();
    let eval_start = Instant::now();
    let accuracy = match &data.labelled {
        Some((x, y)) => Some((float.accuracy(x, y)?, quant.accuracy(x, y)?, y.len())),
        None => None,
    };
    let evaluated = eval_start.elapsed().as_secs_f64();
    let file = ModelFile {
        dataset: kind,
        float_accuracy: accuracy.map_or(f64::NAN, |a| a.0),
        quantized_accuracy: accuracy.map_or(f64::NAN, |a| a.1),
        training: json!({"imported_from": args.model.display().to_string(), "calibration": data.description, "requant": args.requant.name(), "requant_steps": chosen.style_names(), "notes": imported.notes}),
        float,
        quant,
    };
    file.save(&args.out)?;
    let net = &file.quant.network;
    if args.json {
        let record = json!({
            "model": args.out.display().to_string(),
            "layers": net.layers().len(),
            "input_shape": [net.input().channels, net.input().height, net.input().width],
            "classes": net.classes(),
            "float_accuracy": accuracy.map(|a| a.0),
            "quantized_accuracy": accuracy.map(|a| a.1),
            "accuracy_inputs": accuracy.map(|a| a.2),
            "import_s": parsed + quantized,
            "parse_s": parsed,
            "quantize_s": quantized,
            "evaluate_s": evaluated,
            "requant": args.requant.name(),
            "requant_steps": chosen.style_names(),
            "requant_agreement": chosen.agreement.map(|a| json!({"inputs": a.inputs, "fixed": a.fixed, "chosen": a.chosen})),
            "notes": imported.notes,
        });
        println!("{record}");
        return Ok(());
    }
    let i = net.input();
    println!(
        "{}: {}x{}x{} -> {} classes",
        args.model.display(),
        i.channels,
        i.height,
        i.width,
        net.classes()
    );
    for (layer, shapes) in net.layers().iter().zip(net.shapes()) {
        let what = match layer.linear {
            Linear::Conv2d { out_channels, kernel, stride, padding } => {
                format!("conv {out_channels}x{}x{} stride {stride:?} pad {padding:?}", kernel[0], kernel[1])
            }
            Linear::Dense { outputs } => format!("dense {outputs}"),
        };
        let relu = if layer.relu { ", relu" } else { "" };
        let pool = layer
            .pool
            .map(|p| format!(", {:?} pool {:?}/{:?}", p.kind, p.window, p.stride))
            .unwrap_or_default();
        let a = shapes.activation;
        println!("  {:<12} {what}{relu}{pool} -> {}x{}x{}", layer.name, a.channels, a.height, a.width);
    }
    for note in &imported.notes {
        println!("  note: {note}");
    }
    println!("calibrated on {}", data.description);
    print_choice(args.requant, &chosen);
    if let Some((f, q, n)) = accuracy {
        println!("accuracy on {n} labelled inputs: float {:.2}%, integer {:.2}%", f * 100.0, q * 100.0);
    }
    println!(
        "imported in {:.2} s (parse {parsed:.2} s, quantize {quantized:.2} s), evaluated in {evaluated:.2} s; wrote {}",
        parsed + quantized,
        args.out.display()
    );
    Ok(())
}

#[derive(Args)]
pub struct ExportOnnxArgs {
    /// The model file (safetensors).
    model: PathBuf,
    /// Where to write the ONNX model.
    #[arg(long, short)]
    out: PathBuf,
    /// Overwrite --out if it exists.
    #[arg(long)]
    force: bool,
}

pub fn export_onnx_cmd(args: ExportOnnxArgs) -> Result<()> {
    if args.out.exists() && !args.force {
        bail!("{} exists; pass --force to overwrite it", args.out.display());
    }
    let file = load_model(&args.model)?;
    let bytes = ppdnn_onnx::export(&file.float);
    std::fs::write(&args.out, &bytes).with_context(|| format!("writing {}", args.out.display()))?;
    let i = file.float.network.input();
    println!(
        "wrote {} ({} bytes): input \"input\" [batch, {}, {}, {}] of pixel / 255, output \"logits\" [batch, {}]",
        args.out.display(),
        bytes.len(),
        i.channels,
        i.height,
        i.width,
        file.float.network.classes()
    );
    Ok(())
}

/// Says which requantization each step got (and, for auto, why).
pub(crate) fn print_choice(choice: RequantChoice, chosen: &Chosen) {
    println!("requantization ({}): {}", choice.name(), chosen.style_names().join(", "));
    if let Some(a) = chosen.agreement {
        println!(
            "  top-1 agreement with the float model on {} calibration inputs: {} with these steps, {} with fixed everywhere",
            a.inputs, a.chosen, a.fixed
        );
    }
}
