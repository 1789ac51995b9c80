//! `ppdnn bench network`: one network's encrypted inference in-process, on
//! random images: where the time and the bytes go, and that the result is
//! exactly the integer model's. Networks of the zoo (ResNet-20's shape, the
//! VGG-style network on 3x32x32, LeNet-5) get random weights, which is all
//! costs depend on; `--model` measures a model file instead.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args;
use ppdnn_model::dataset::DatasetKind;
use ppdnn_model::modelfile::ModelFile;
use ppdnn_model::quant::{QuantModel, RequantStyle};
use ppdnn_model::zoo;
use ppdnn_paillier::{KeyPolicy, RandomnessPool, generate_keypair};
use ppdnn_protocol::{ClientSession, ClientStep, Evaluator, Mode, Output, Packing, run_in_process};
use serde::Serialize;

/// The arguments of `ppdnn bench network`.
#[derive(Args, Debug)]
pub struct BenchNetworkArgs {
    /// A network of the zoo, with random weights: resnet20, vgg-cifar or lenet5.
    #[arg(long, default_value = "resnet20", conflicts_with = "model")]
    arch: String,
    /// A model file to measure instead.
    #[arg(long)]
    model: Option<PathBuf>,
    /// Key size in bits.
    #[arg(long, default_value_t = 2048)]
    bits: u32,
    /// Protocol mode: fast or private.
    #[arg(long, default_value = "fast")]
    mode: Mode,
    /// Random images to classify.
    #[arg(long, default_value_t = 3)]
    images: usize,
    /// Private mode: SoftSpokenOT's group width, 4 or 8 (default: the
    /// planner's choice, 8 for sessions of 2^20 OTs or more).
    #[arg(long, value_parser = crate::service_cmds::parse_group_bits)]
    ot_group_bits: Option<u32>,
    /// Requantization of the random-weight model: fixed (8-bit multipliers) or pow2.
    #[arg(long, default_value = "fixed", value_parser = parse_requant)]
    requant: RequantStyle,
    /// Write the random-weight model (quantized on random images) to this
    /// file, to serve it (`ppdnn serve --model FILE`).
    #[arg(long)]
    save: Option<PathBuf>,
    /// Allow keys below 2048 bits (tests only).
    #[arg(long)]
    insecure_small_keys: bool,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct LayerCost {
    name: String,
    kind: &'static str,
    shortcut: Option<String>,
    slots: usize,
    slot_bits: u32,
    ciphertexts_in: usize,
    ciphertexts_out: usize,
}

#[derive(Serialize)]
struct NetworkReport {
    network: String,
    mode: &'static str,
    bits: u32,
    images: usize,
    exact: usize,
    accumulators: usize,
    online_s_mean: f64,
    client_s_mean: f64,
    server_s_mean: f64,
    offline_s_mean: f64,
    bytes_per_image: f64,
    client_to_server_bytes: usize,
    server_to_client_bytes: usize,
    garbled_bytes_per_image: f64,
    and_gates_per_image: f64,
    /// Private mode: SoftSpokenOT's group width of the plan (4 or 8).
    #[serde(skip_serializing_if = "Option::is_none")]
    ot_group_bits: Option<u32>,
    layers: Vec<LayerCost>,
}

/// Runs `ppdnn bench network`.
pub fn bench_network(args: BenchNetworkArgs) -> Result<()> {
    if !(1..=1000).contains(&args.images) {
        bail!("--images {}: choose 1 to 1000", args.images);
    }
    let policy = KeyPolicy::insecure_if(args.insecure_small_keys);
    crate::crypto_cmds::check_new_key_bits(args.bits, policy)?;
    let (name, quant) = model(&args)?;
    let n = quant.input_len();
    let mut evaluator = Evaluator::for_mode(Arc::new(quant.clone()), args.bits, Packing::Packed, args.mode)
        .with_context(|| format!("{name} in the {} mode", args.mode.name()))?;
    if let Some(k) = args.ot_group_bits {
        evaluator = evaluator.with_ot_group_bits(k).context("--ot-group-bits: the private mode only")?;
    }
    let plan = evaluator.plan().clone();
    let pair = generate_keypair(args.bits, policy).context("generating the client's key")?;
    let sk = Arc::new(pair.private);
    sk.public_key().precompute_randomness(8);
    let pool = Arc::new(RandomnessPool::new(sk.public_key()));
    let ct_bytes = (2 * args.bits as usize).div_ceil(8);
    let (mut exact, mut online, mut client_t, mut server_t, mut offline) = (0, 0.0, 0.0, 0.0, 0.0);
    let (mut bytes, mut garbled, mut ands) = (0usize, 0usize, 0usize);
    let images = zoo::random_pixels(0x2545_f491_4f6c_dd1d, args.images * n);
    for (i, image) in images.chunks(n).enumerate() {
        let mut client =
            ClientSession::new(evaluator.session_plan(), sk.clone(), pool.clone(), Output::Logits)?;
        let (mut server, opening) = evaluator.start(sk.public_key().clone(), Output::Logits)?;
        let t = Instant::now();
        pool.fill(plan.client_encryptions().saturating_sub(pool.available()))?;
        server.randomness().fill(server.randomness_needed())?;
        offline += t.elapsed().as_secs_f64();
        let run = run_in_process(&mut client, &mut server, opening, image)
            .with_context(|| format!("random image {i}"))?;
        let want = quant.logits(image)?;
        exact += usize::from(run.outcome == ClientStep::Done(want));
        online += (run.client + run.server).as_secs_f64();
        client_t += run.client.as_secs_f64();
        server_t += run.server.as_secs_f64();
        bytes += run.bytes;
        garbled += run.stats.garbled_bytes;
        ands += run.stats.and_gates;
    }
    let k = args.images as f64;
    let report = NetworkReport {
        network: name,
        mode: args.mode.name(),
        bits: args.bits,
        images: args.images,
        exact,
        accumulators: quant.network.shapes().iter().map(|s| s.output.len()).sum(),
        online_s_mean: online / k,
        client_s_mean: client_t / k,
        server_s_mean: server_t / k,
        offline_s_mean: offline / k,
        bytes_per_image: bytes as f64 / k,
        client_to_server_bytes: plan.client_encryptions() * ct_bytes,
        server_to_client_bytes: plan.server_ciphertexts() * ct_bytes,
        garbled_bytes_per_image: garbled as f64 / k,
        and_gates_per_image: ands as f64 / k,
        ot_group_bits: plan.ot_group_bits,
        layers: plan
            .layers
            .iter()
            .map(|l| LayerCost {
                name: l.name.clone(),
                kind: if l.is_conv() { "conv" } else { "dense" },
                shortcut: l.shortcut.as_ref().map(|s| {
                    let how = if s.projection.is_some() { "projection" } else { "identity" };
                    format!("{} ({how})", s.from)
                }),
                slots: l.slots,
                slot_bits: l.slot_bits,
                ciphertexts_in: l.input_ciphertexts,
                ciphertexts_out: l.output_ciphertexts,
            })
            .collect(),
    };
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print_report(&report);
    }
    if report.exact != report.images {
        bail!(
            "{} of {} inferences differed from the integer model",
            report.images - report.exact,
            report.images
        );
    }
    Ok(())
}

fn parse_requant(s: &str) -> std::result::Result<RequantStyle, String> {
    RequantStyle::from_name(s).ok_or_else(|| format!("{s:?}: choose fixed or pow2"))
}

/// The model measured: a zoo network with random weights (saved if asked), or a file.
fn model(args: &BenchNetworkArgs) -> Result<(String, QuantModel)> {
    if let Some(path) = &args.model {
        let file = crate::model_cmds::load_model(path)?;
        return Ok((path.display().to_string(), file.quant));
    }
    let Some(network) = zoo::by_name(&args.arch) else {
        bail!("--arch {}: choose one of {}", args.arch, zoo::NAMES.join(", "));
    };
    let (float, fixed) = zoo::random_quant_model(network, 0x05ee_d0fc_0575, 16)?;
    let quant = QuantModel::from_scales(&float, &fixed.activation_scales(), args.requant)?;
    if let Some(path) = &args.save {
        let file = ModelFile {
            dataset: DatasetKind::Mnist,
            float,
            quant: quant.clone(),
            float_accuracy: 0.0,
            quantized_accuracy: 0.0,
            training: serde_json::json!({"note": format!("{}: random weights, for measuring costs", args.arch)}),
        };
        file.save(path)?;
        eprintln!("wrote {} ({}, random weights)", path.display(), args.arch);
    }
    Ok((format!("{} (random weights, {} requantization)", args.arch, args.requant.name()), quant))
}

fn print_report(r: &NetworkReport) {
    println!(
        "{}: {} mode, {}-bit keys, {} accumulators; {} of {} images exact",
        r.network, r.mode, r.bits, r.accumulators, r.exact, r.images
    );
    println!(
        "online {:.3} s per image (client {:.3} s, server {:.3} s), offline {:.3} s",
        r.online_s_mean, r.client_s_mean, r.server_s_mean, r.offline_s_mean
    );
    println!(
        "traffic {:.2} MB per image ({:.2} MB client to server, {:.2} MB back in ciphertexts)",
        r.bytes_per_image / 1e6,
        r.client_to_server_bytes as f64 / 1e6,
        r.server_to_client_bytes as f64 / 1e6
    );
    if r.and_gates_per_image > 0.0 {
        println!(
            "garbled {:.2} MB, {:.0} AND gates per image",
            r.garbled_bytes_per_image / 1e6,
            r.and_gates_per_image
        );
    }
    println!(
        "{:<14} {:<6} {:>5} {:>4} {:>7} {:>7}  shortcut",
        "layer", "kind", "S", "B", "cts in", "cts out"
    );
    for l in &r.layers {
        println!(
            "{:<14} {:<6} {:>5} {:>4} {:>7} {:>7}  {}",
            l.name,
            l.kind,
            l.slots,
            l.slot_bits,
            l.ciphertexts_in,
            l.ciphertexts_out,
            l.shortcut.as_deref().unwrap_or("")
        );
    }
}
