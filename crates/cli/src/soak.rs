//! `ppdnn bench service --duration S --hostile H`: a soak of the service with
//! hostile clients mixed among good ones, for a fixed time.
//!
//! Good clients classify test images in a loop and check every answer against
//! the plaintext integer model. Hostile clients cycle through what a bad peer
//! does: open a stream and never start, start and go silent, trickle a round
//! one ciphertext at a time, send garbage, disconnect mid-inference, and
//! classify with a fresh key every stream (exact answers required there too).
//! The report has the memory curve of the process (server and clients share
//! it) and the sessions left when the load stops.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use ppdnn_model::dataset::Dataset;
use ppdnn_model::quant::QuantModel;
use ppdnn_paillier::{KeyPolicy, PrivateKey, generate_keypair};
use ppdnn_protocol::Mode;
use ppdnn_service::pb::{self, infer_request};
use ppdnn_service::{Classifier, LocalServer, ServedModel, ServerConfig};
use tokio::sync::{Mutex, mpsc};
use tokio_stream::wrappers::ReceiverStream;

use crate::service_cmds::{measuring, prepare, rss_mib};

/// The kinds of hostile client, assigned in turn.
const KINDS: [&str; 6] = ["never-start", "silent", "slow", "garbage", "disconnecting", "fresh-key"];

/// What the soak measured.
#[derive(serde::Serialize)]
pub struct SoakReport {
    seconds: f64,
    bits: u32,
    clients: usize,
    hostile: usize,
    good_answers: usize,
    good_exact: usize,
    good_failed: usize,
    fresh_key_answers: usize,
    fresh_key_exact: usize,
    good_images_per_second: f64,
    good_latency_s_median: f64,
    hostile_streams: BTreeMap<String, usize>,
    hostile_outcomes: BTreeMap<String, usize>,
    rss_mib_before: f64,
    rss_mib_max: f64,
    rss_mib_curve: Vec<(f64, f64)>,
    active_sessions_after: usize,
    key_cache_mib: f64,
}

impl SoakReport {
    /// Fails unless every good answer was exact, none was lost, the
    /// fresh-key answers were exact, and no session was left behind.
    pub fn verdict(&self) -> Result<()> {
        if self.good_failed > 0 || self.good_exact != self.good_answers {
            bail!(
                "good clients: {} failed, {} of {} answers exact",
                self.good_failed,
                self.good_exact,
                self.good_answers
            );
        }
        if self.fresh_key_exact != self.fresh_key_answers {
            bail!("fresh-key clients: {} of {} answers exact", self.fresh_key_exact, self.fresh_key_answers);
        }
        if self.active_sessions_after != 0 {
            bail!("{} sessions left behind", self.active_sessions_after);
        }
        Ok(())
    }
}

/// Shared tallies of the run.
#[derive(Default)]
struct Tally {
    good_latencies: Vec<f64>,
    good_exact: usize,
    good_failed: Vec<String>,
    fresh_answers: usize,
    fresh_exact: usize,
    hostile_streams: BTreeMap<String, usize>,
    hostile_outcomes: BTreeMap<String, usize>,
}

/// Everything a client task needs.
struct Ctx {
    url: String,
    bits: u32,
    policy: KeyPolicy,
    reference: QuantModel,
    test: Dataset,
    stop: AtomicBool,
    tally: Mutex<Tally>,
    /// A valid key to start hostile streams with (validation is not what they test).
    start_key: pb::PublicKey,
    /// Ciphertexts in round 0 of the plan.
    round0_ciphertexts: usize,
}

/// Runs the soak: `clients` in all, `hostile` of them hostile, for `seconds`.
pub fn soak(
    file: ppdnn_model::modelfile::ModelFile,
    test: Dataset,
    clients: usize,
    hostile: usize,
    bits: u32,
    seconds: f64,
) -> Result<SoakReport> {
    if hostile >= clients {
        bail!("--hostile {hostile} must leave at least one good client among --clients {clients}");
    }
    let policy = KeyPolicy::admitting(bits);
    let config = ServerConfig {
        key_bits: vec![bits],
        key_policy: policy,
        max_sessions: clients,
        modes: vec![ppdnn_protocol::Mode::Fast],
        ..Default::default()
    };
    let key_cache_mib = (config.key_cache_bytes >> 20) as f64;
    let reference = file.quant.clone();
    let models = vec![ServedModel { name: "model".into(), file }];
    let (svc, gauge) = ppdnn_service::service_with_gauge(models, config)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let server = LocalServer::start(svc, None, Duration::from_secs(5)).await?;
        let url = format!("http://{}", server.addr());
        let good = clients - hostile;
        let mut prepared = Vec::new();
        for _ in 0..good {
            prepared.push(prepare(&url, None, bits, policy, &measuring("model", Mode::Fast)).await?);
        }
        let start_key = ppdnn_service::convert::key_to_pb(prepared[0].public_key());
        let round0_ciphertexts = prepared[0].plan().layers[0].input_ciphertexts;
        let ctx = Arc::new(Ctx {
            url,
            bits,
            policy,
            reference,
            test,
            stop: AtomicBool::new(false),
            tally: Mutex::default(),
            start_key,
            round0_ciphertexts,
        });
        let rss_before = rss_mib();
        let started = Instant::now();
        let mut tasks = Vec::new();
        for (i, p) in prepared.into_iter().enumerate() {
            tasks.push(tokio::spawn(good_client(ctx.clone(), p, i)));
        }
        for h in 0..hostile {
            tasks.push(tokio::spawn(hostile_client(ctx.clone(), KINDS[h % KINDS.len()], h)));
        }
        // The memory curve: every 10 s (and at the end).
        let mut curve = vec![(0.0, rss_before)];
        let total = Duration::from_secs_f64(seconds);
        while started.elapsed() < total {
            tokio::time::sleep(Duration::from_secs(10).min(total.saturating_sub(started.elapsed()))).await;
            curve.push((started.elapsed().as_secs_f64().round(), rss_mib()));
        }
        ctx.stop.store(true, Ordering::SeqCst);
        for t in tasks {
            t.await?;
        }
        let elapsed = started.elapsed().as_secs_f64();
        // Hostile sessions wind down within the idle timeout; then nothing may be left.
        let wait = Instant::now();
        while gauge.active() > 0 && wait.elapsed() < Duration::from_secs(40) {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        curve.push((started.elapsed().as_secs_f64().round(), rss_mib()));
        let active_after = gauge.active();
        server.stop().await?;
        let mut tally = std::mem::take(&mut *ctx.tally.lock().await);
        tally.good_latencies.sort_by(f64::total_cmp);
        for f in tally.good_failed.iter().take(5) {
            eprintln!("a good client's inference failed: {f}");
        }
        let answers = tally.good_latencies.len();
        anyhow::Ok(SoakReport {
            seconds: elapsed,
            bits,
            clients,
            hostile,
            good_answers: answers,
            good_exact: tally.good_exact,
            good_failed: tally.good_failed.len(),
            fresh_key_answers: tally.fresh_answers,
            fresh_key_exact: tally.fresh_exact,
            good_images_per_second: answers as f64 / elapsed,
            good_latency_s_median: tally.good_latencies.get(answers / 2).copied().unwrap_or(f64::NAN),
            hostile_streams: tally.hostile_streams,
            hostile_outcomes: tally.hostile_outcomes,
            rss_mib_before: rss_before,
            rss_mib_max: curve.iter().map(|c| c.1).fold(0.0, f64::max),
            rss_mib_curve: curve,
            active_sessions_after: active_after,
            key_cache_mib,
        })
    })
}

async fn good_client(ctx: Arc<Ctx>, p: Classifier, index: usize) {
    let mut k = index;
    while !ctx.stop.load(Ordering::SeqCst) {
        let image = ctx.test.image(k % ctx.test.len()).to_vec();
        k += 97;
        let pool = p.pool().clone();
        let need = p.plan().client_encryptions();
        let _ = tokio::task::spawn_blocking(move || pool.fill(need)).await;
        let r = p.classify(image.clone()).await.map(|a| a.classification);
        let mut t = ctx.tally.lock().await;
        match r {
            Ok(c) => {
                t.good_latencies.push(c.duration.as_secs_f64());
                t.good_exact += usize::from(ctx.reference.logits(&image).ok() == Some(c.logits));
            }
            Err(e) => t.good_failed.push(e.to_string()),
        }
    }
}

async fn hostile_client(ctx: Arc<Ctx>, kind: &'static str, index: usize) {
    let mut round = index;
    while !ctx.stop.load(Ordering::SeqCst) {
        round += 1;
        let outcome = match kind {
            "fresh-key" => fresh_key(&ctx, round).await,
            _ => raw_stream(&ctx, kind, round).await,
        };
        let mut t = ctx.tally.lock().await;
        *t.hostile_streams.entry(kind.to_string()).or_default() += 1;
        *t.hostile_outcomes.entry(format!("{kind}: {outcome}")).or_default() += 1;
        drop(t);
        if kind == "garbage" {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// A full inference with a key generated for this stream alone.
async fn fresh_key(ctx: &Ctx, round: usize) -> String {
    let (bits, policy) = (ctx.bits, ctx.policy);
    let key: PrivateKey = match tokio::task::spawn_blocking(move || generate_keypair(bits, policy)).await {
        Ok(Ok(k)) => k.private,
        _ => return "keygen failed".into(),
    };
    let p = match prepare(&ctx.url, Some(key), bits, policy, &measuring("model", Mode::Fast)).await {
        Ok(p) => p,
        Err(e) => return format!("prepare failed: {e}"),
    };
    let image = ctx.test.image(round % ctx.test.len()).to_vec();
    match p.classify(image.clone()).await.map(|a| a.classification) {
        Ok(c) => {
            let exact = ctx.reference.logits(&image).ok() == Some(c.logits);
            let mut t = ctx.tally.lock().await;
            t.fresh_answers += 1;
            t.fresh_exact += usize::from(exact);
            if exact { "exact answer".into() } else { "WRONG answer".into() }
        }
        Err(e) => format!("failed: {}", short(&e.to_string())),
    }
}

fn start_msg(ctx: &Ctx) -> pb::InferRequest {
    pb::InferRequest {
        kind: Some(infer_request::Kind::Start(pb::Start {
            model: String::new(),
            key: Some(ctx.start_key.clone()),
            packing: pb::Packing::Packed as i32,
            model_digest: String::new(),
            mode: pb::Mode::Fast as i32,
            output: pb::Output::Logits as i32,
            modulus_proof: Vec::new(),
            factor_proof: Vec::new(),
            factor_params_digest: Vec::new(),
        })),
    }
}

fn chunk(data: Vec<u8>, last: bool) -> pb::InferRequest {
    pb::InferRequest {
        kind: Some(infer_request::Kind::Round(pb::Round {
            round: 0,
            ciphertexts: data,
            last,
            material: Vec::new(),
        })),
    }
}

/// One hostile stream of the given kind; returns the outcome the client saw.
async fn raw_stream(ctx: &Ctx, kind: &str, round: usize) -> String {
    let Ok(mut client) = ppdnn_service::client::grpc_client(&ctx.url).await else {
        return "connect failed".into();
    };
    let width = 2 * ctx.bits.div_ceil(8) as usize;
    let (tx, rx) = mpsc::channel(8);
    let feeder = match kind {
        "never-start" => tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(60)).await;
            drop(tx);
        }),
        "silent" => {
            let start = start_msg(ctx);
            tokio::spawn(async move {
                let _ = tx.send(start).await;
                tokio::time::sleep(Duration::from_secs(60)).await;
            })
        }
        "slow" => {
            let start = start_msg(ctx);
            tokio::spawn(async move {
                let _ = tx.send(start).await;
                // One ciphertext every 5 s: within the idle timeout, never done.
                loop {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    let mut c = vec![0u8; width];
                    c[width - 1] = 3;
                    if tx.send(chunk(c, false)).await.is_err() {
                        break;
                    }
                }
            })
        }
        "garbage" => {
            let start = start_msg(ctx);
            let junk: Vec<u8> = (0..width * 3).map(|i| (i * 31 + round * 7) as u8).collect();
            tokio::spawn(async move {
                let _ = tx.send(start).await;
                let _ = tx.send(chunk(junk, round.is_multiple_of(2))).await;
            })
        }
        _ => {
            // disconnecting: a genuine Start and round 0, then gone.
            let start = start_msg(ctx);
            let data = valid_round0(ctx);
            tokio::spawn(async move {
                let _ = tx.send(start).await;
                let _ = tx.send(chunk(data, true)).await;
            })
        }
    };
    let outcome = match client.infer(ReceiverStream::new(rx)).await {
        Err(s) => format!("{:?}", s.code()),
        Ok(r) => {
            let mut stream = r.into_inner();
            if kind == "disconnecting" {
                let _ = stream.message().await;
                "disconnected".to_string()
            } else {
                loop {
                    match stream.message().await {
                        Ok(Some(_)) => continue,
                        Ok(None) => break "closed".to_string(),
                        Err(s) => break format!("{:?}", s.code()),
                    }
                }
            }
        }
    };
    feeder.abort();
    outcome
}

/// A round 0 that passes validation and makes the server do a full
/// layer's work: h^n of the Start key is itself a valid ciphertext (an
/// encryption of 0), repeated as many times as the plan asks.
fn valid_round0(ctx: &Ctx) -> Vec<u8> {
    ctx.start_key.hn.repeat(ctx.round0_ciphertexts)
}

fn short(s: &str) -> String {
    s.chars().take(80).collect()
}
