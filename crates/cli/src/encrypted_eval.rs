//! `ppdnn eval --encrypted`: the protocol run in-process over test images,
//! with the client and the server timed separately.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use ppdnn_model::lenet::argmax;
use ppdnn_paillier::{KeyPolicy, RandomnessPool, generate_keypair};
use ppdnn_protocol::{ClientSession, ClientStep, Evaluator, Packing};
use serde::Serialize;

use crate::model_cmds::{EvalArgs, load_model, load_test_set, progress_bar};

#[derive(Serialize)]
struct EncryptedReport {
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
    rounds: usize,
    ciphertexts_per_image: usize,
    bits: u32,
    packing: bool,
    keygen_s: f64,
    total_s: f64,
}

/// Timings and traffic of one encrypted inference.
struct Run {
    logits: Vec<i64>,
    client: Duration,
    server: Duration,
    offline: Duration,
    bytes: usize,
}

pub fn eval_encrypted(args: EvalArgs, bits: u32, no_packing: bool, insecure_small_keys: bool) -> Result<()> {
    let policy = if insecure_small_keys { KeyPolicy::INSECURE_TESTING } else { KeyPolicy::PRODUCTION };
    if policy == KeyPolicy::PRODUCTION && !ppdnn_paillier::SUPPORTED_BITS.contains(&bits) {
        bail!("--bits {bits}: supported sizes are 2048 and 3072 (smaller ones need --insecure-small-keys)");
    }
    let model = load_model(&args.model)?;
    let test = load_test_set(&model, args.data.as_deref(), args.offset, args.limit.or(Some(100)))?;
    let packing = if no_packing { Packing::Unpacked } else { Packing::Packed };
    let evaluator = Evaluator::new(Arc::new(model.quant.clone()), bits, packing)?;
    let plan = evaluator.plan().clone();
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
        let run = infer(&evaluator, &sk, &pool, plan.client_encryptions(), image)
            .with_context(|| format!("test image {i}"))?;
        let reference = model.quant.logits(image)?;
        agree += usize::from(run.logits == reference);
        correct += usize::from(argmax(&run.logits) == test.labels[i] as usize);
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
        rounds: plan.rounds(),
        ciphertexts_per_image: plan.client_encryptions() + plan.server_ciphertexts(),
        bits,
        packing: !no_packing,
        keygen_s: keygen.as_secs_f64(),
        total_s: start.elapsed().as_secs_f64(),
    };
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "{} encrypted inferences on {} ({}-bit keys, {}):",
            report.images,
            report.dataset,
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
    }
    Ok(())
}

/// One inference: offline pool filling, then the rounds, client and server timed apart.
fn infer(
    evaluator: &Evaluator,
    sk: &Arc<ppdnn_paillier::PrivateKey>,
    pool: &Arc<RandomnessPool>,
    encryptions: usize,
    image: &[u8],
) -> Result<Run> {
    let t = Instant::now();
    pool.fill(encryptions.saturating_sub(pool.available()))?;
    let offline = t.elapsed();
    let mut client = ClientSession::new(evaluator.plan().clone(), sk.clone(), pool.clone())?;
    let mut server = evaluator.session(sk.public_key().clone())?;
    let (mut client_t, mut server_t, mut bytes) = (Duration::ZERO, Duration::ZERO, 0usize);
    let t = Instant::now();
    let mut message = client.start(image)?;
    client_t += t.elapsed();
    loop {
        bytes += message.len_bytes();
        let t = Instant::now();
        let answer = server.handle(&message)?;
        server_t += t.elapsed();
        bytes += answer.len_bytes();
        let t = Instant::now();
        let step = client.receive(&answer)?;
        client_t += t.elapsed();
        match step {
            ClientStep::Send(next) => message = next,
            ClientStep::Done(logits) => {
                return Ok(Run { logits, client: client_t, server: server_t, offline, bytes });
            }
        }
    }
}
