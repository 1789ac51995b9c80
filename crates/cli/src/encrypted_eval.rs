//! `ppdnn eval --encrypted`: the protocol run in-process over test images,
//! with the client and the server timed separately.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use ppdnn_model::network::argmax;
use ppdnn_paillier::{KeyPolicy, RandomnessPool, generate_keypair};
use ppdnn_protocol::private::Schedule;
use ppdnn_protocol::{ClientSession, ClientStep, Evaluator, Mode, Output, Packing, run_in_process};
use serde::Serialize;

use crate::model_cmds::{EvalArgs, load_model, load_test_set, progress_bar};

/// The options of `eval --encrypted`, parsed once.
#[derive(Debug, Clone, Copy)]
pub struct EncryptedOpts {
    pub bits: u32,
    pub no_packing: bool,
    pub insecure_small_keys: bool,
    pub mode: Mode,
    pub output: Output,
}

#[derive(Serialize)]
struct EncryptedReport {
    mode: &'static str,
    output: &'static str,
    dataset: &'static str,
    offset: usize,
    images: usize,
    accuracy: f64,
    agreement: usize,
    latency_s_median: f64,
    latency_s_mean: f64,
    client_s: f64,
    server_s: f64,
    offline_s: f64,
    bytes_per_image: f64,
    gc_bytes_per_image: f64,
    and_gates_per_image: f64,
    rounds: usize,
    ciphertexts_per_image: usize,
    bits: u32,
    packing: bool,
    keygen_s: f64,
    total_s: f64,
}

/// Timings and traffic of one encrypted inference.
struct Run {
    /// The logits (empty when only the label was learnt).
    logits: Vec<i64>,
    label: usize,
    gc_bytes: usize,
    and_gates: usize,
    client: Duration,
    server: Duration,
    offline: Duration,
    bytes: usize,
}

pub fn eval_encrypted(args: EvalArgs, opts: EncryptedOpts) -> Result<()> {
    let EncryptedOpts { bits, no_packing, insecure_small_keys, mode, output } = opts;
    if mode == Mode::Private && no_packing {
        bail!("--no-packing: the private mode uses the packed layout only");
    }
    let policy = KeyPolicy::insecure_if(insecure_small_keys);
    crate::crypto_cmds::check_new_key_bits(bits, policy)?;
    let model = load_model(&args.model)?;
    let test = load_test_set(&model, args.data.as_deref(), args.offset, args.limit.or(Some(100)))?;
    let packing = if no_packing { Packing::Unpacked } else { Packing::Packed };
    let evaluator = Evaluator::for_mode(Arc::new(model.quant.clone()), bits, packing, mode)?;
    let plan = evaluator.plan().clone();
    let schedule = evaluator.circuits().map(|c| Schedule::new(&plan, c, output));
    let schedule = schedule.as_ref();
    let start = Instant::now();
    let pair = generate_keypair(bits, policy).context("generating the client's key")?;
    let sk = Arc::new(pair.private);
    sk.public_key().precompute_randomness(8);
    let keygen = start.elapsed();
    let pool = Arc::new(RandomnessPool::new(sk.public_key()));

    let bar =
        if args.json { indicatif::ProgressBar::hidden() } else { progress_bar(test.len(), "encrypted eval") };
    let mut runs = Vec::with_capacity(test.len());
    let mut correct = 0usize;
    let mut agree = 0usize;
    for i in 0..test.len() {
        let image = test.image(i);
        let run = infer(&evaluator, &sk, &pool, output, image).with_context(|| format!("test image {i}"))?;
        let reference = model.quant.logits(image)?;
        agree += usize::from(match output {
            Output::Logits => run.logits == reference,
            Output::Label => run.label == argmax(&reference),
        });
        correct += usize::from(run.label == test.labels[i] as usize);
        bar.set_message(format!("{:.2} s/image", (run.client + run.server).as_secs_f64()));
        bar.inc(1);
        runs.push(run);
    }
    bar.finish_and_clear();
    let n = runs.len() as f64;
    let mut lat: Vec<f64> = runs.iter().map(|r| (r.client + r.server).as_secs_f64()).collect();
    lat.sort_by(f64::total_cmp);
    let median = if lat.len() % 2 == 1 {
        lat[lat.len() / 2]
    } else {
        (lat[lat.len() / 2 - 1] + lat[lat.len() / 2]) / 2.0
    };
    let mean = |f: fn(&Run) -> f64| runs.iter().map(f).sum::<f64>() / n;
    let report = EncryptedReport {
        mode: mode.name(),
        output: if mode == Mode::Private { output.name() } else { "logits" },
        dataset: model.dataset.name(),
        offset: args.offset,
        images: runs.len(),
        accuracy: correct as f64 / n,
        agreement: agree,
        latency_s_median: median,
        latency_s_mean: lat.iter().sum::<f64>() / n,
        client_s: mean(|r| r.client.as_secs_f64()),
        server_s: mean(|r| r.server.as_secs_f64()),
        offline_s: mean(|r| r.offline.as_secs_f64()),
        bytes_per_image: mean(|r| r.bytes as f64),
        gc_bytes_per_image: mean(|r| r.gc_bytes as f64),
        and_gates_per_image: mean(|r| r.and_gates as f64),
        rounds: match schedule {
            Some(s) => s.client_rounds(),
            None => plan.rounds(),
        },
        ciphertexts_per_image: match schedule {
            Some(s) => s.client_ciphertexts() + s.server_ciphertexts(),
            None => plan.client_encryptions() + plan.server_ciphertexts(),
        },
        bits,
        packing: !no_packing,
        keygen_s: keygen.as_secs_f64(),
        total_s: start.elapsed().as_secs_f64(),
    };
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "{} encrypted inferences on {} ({} mode, {}-bit keys, {}):",
            report.images,
            report.dataset,
            report.mode,
            bits,
            if no_packing { "one value per ciphertext" } else { "packed" }
        );
        println!(
            "  accuracy {:.2}%, agreement with the plaintext integer model {} of {}",
            report.accuracy * 100.0,
            report.agreement,
            report.images
        );
        println!(
            "  latency per image: median {:.3} s, mean {:.3} s (client {:.3} s, server {:.3} s); offline randomness {:.3} s",
            report.latency_s_median,
            report.latency_s_mean,
            report.client_s,
            report.server_s,
            report.offline_s
        );
        println!(
            "  {} rounds, {} ciphertexts and {:.0} KiB exchanged per image; key generation {:.2} s; total {:.1} s",
            report.rounds,
            report.ciphertexts_per_image,
            report.bytes_per_image / 1024.0,
            report.keygen_s,
            report.total_s
        );
        if mode == Mode::Private {
            println!(
                "  garbled circuits: {:.0} AND gates, {:.1} MiB per image (included above)",
                report.and_gates_per_image,
                report.gc_bytes_per_image / (1 << 20) as f64
            );
        }
    }
    Ok(())
}

/// One inference in the evaluator's mode: the offline randomness of both
/// sides (the client's pool, the server's re-randomizers), then the rounds,
/// client and server timed apart.
fn infer(
    evaluator: &Evaluator,
    sk: &Arc<ppdnn_paillier::PrivateKey>,
    pool: &Arc<RandomnessPool>,
    output: Output,
    image: &[u8],
) -> Result<Run> {
    let plan = evaluator.plan();
    let mut client = ClientSession::new(evaluator.session_plan(), sk.clone(), pool.clone(), output)?;
    let (mut server, opening) = evaluator.start(sk.public_key().clone(), output)?;
    let t = Instant::now();
    let encryptions = match evaluator.circuits() {
        Some(c) => Schedule::new(plan, c, output).client_ciphertexts(),
        None => plan.client_encryptions(),
    };
    pool.fill(encryptions.saturating_sub(pool.available()))?;
    server.randomness().fill(server.randomness_needed())?;
    let offline = t.elapsed();
    let run = run_in_process(&mut client, &mut server, opening, image)?;
    let (logits, label) = match run.outcome {
        ClientStep::Done(logits) => {
            let label = argmax(&logits);
            (logits, label)
        }
        ClientStep::Label(label) => (Vec::new(), label),
        ClientStep::Send(_) => bail!("the inference ended with a message still to send"),
    };
    Ok(Run {
        logits,
        label,
        gc_bytes: run.stats.garbled_bytes,
        and_gates: run.stats.and_gates,
        client: run.client,
        server: run.server,
        offline,
        bytes: run.bytes,
    })
}
