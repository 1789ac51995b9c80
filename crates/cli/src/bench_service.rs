//! `ppdnn bench service`: a loopback server under a load of concurrent
//! clients (throughput, latency, exactness, memory per pass), or with
//! `--duration` a soak with hostile clients ([`crate::soak`]).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
use ppdnn_paillier::KeyPolicy;
use ppdnn_protocol::Mode;
use ppdnn_service::{LocalServer, ServedModel, ServerConfig};

use crate::model_cmds::{DEFAULT_MODEL, load_model};
use crate::service_cmds::{measuring, prepare, rss_mib, runtime};

#[derive(Args)]
pub struct BenchServiceArgs {
    /// The model to serve.
    #[arg(long, default_value = DEFAULT_MODEL)]
    model: PathBuf,
    /// Folder with the IDX files (as for eval).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Concurrent clients.
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// Images per client.
    #[arg(long, default_value_t = 3)]
    images: usize,
    /// Key size.
    #[arg(long, default_value_t = 2048)]
    bits: u32,
    /// Run the whole load this many times (memory after each pass shows
    /// whether it returns to a plateau).
    #[arg(long, default_value_t = 2)]
    passes: usize,
    /// Soak mode: run for this many seconds instead of a fixed number of
    /// images, every client in a loop, with --hostile of them hostile.
    #[arg(long)]
    duration: Option<f64>,
    /// With --duration: how many of --clients are hostile (never start, go
    /// silent, trickle, send garbage, disconnect, use a fresh key every stream).
    #[arg(long, default_value_t = 0, requires = "duration")]
    hostile: usize,
    /// Protocol mode of the load (without --duration): fast or private.
    #[arg(long, default_value = "fast")]
    mode: Mode,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(serde::Serialize)]
struct BenchServiceReport {
    passes: usize,
    rss_mib_after_each_pass: Vec<f64>,
    clients: usize,
    images: usize,
    correct: usize,
    exact: usize,
    seconds: f64,
    images_per_second: f64,
    latency_s_median: f64,
    rss_mib_before: f64,
    rss_mib_peak_after_load: f64,
    rss_mib_after: f64,
    active_sessions_after: usize,
    bits: u32,
}

pub fn bench_service(args: BenchServiceArgs) -> Result<()> {
    if args.clients == 0 || args.images == 0 || args.clients > 256 || args.passes == 0 {
        bail!("--clients (1..=256), --images and --passes must be positive");
    }
    let file = load_model(&args.model)?;
    if let Some(seconds) = args.duration {
        return soak_command(file, &args, seconds);
    }
    let test =
        crate::model_cmds::load_test_set(&file, args.data.as_deref(), 0, Some(args.clients * args.images))?;
    let reference = file.quant.clone();
    let policy = KeyPolicy::admitting(args.bits);
    let config = ServerConfig {
        key_bits: vec![args.bits],
        key_policy: policy,
        max_sessions: args.clients,
        modes: vec![args.mode],
        ..ServerConfig::default()
    };
    let models = vec![ServedModel { name: "model".into(), file }];
    let (svc, gauge) = ppdnn_service::service_with_gauge(models, config)?;
    runtime()?.block_on(async move {
        let server = LocalServer::start(svc, None, Duration::from_secs(5)).await?;
        let url = format!("http://{}", server.addr());
        // Keys and offline randomness first, so the timed part is the service.
        let mut clients = Vec::new();
        for _ in 0..args.clients {
            clients.push(prepare(&url, None, args.bits, policy, &measuring("model", args.mode)).await?);
        }
        let rss_before = rss_mib();
        let (mut correct, mut exact, mut lat, mut count, mut seconds, mut rss_passes) =
            (0, 0, Vec::new(), 0, 0.0, Vec::new());
        for _ in 0..args.passes {
        for p in &clients {
            let (pool, n) = (p.pool().clone(), p.plan().client_encryptions() * args.images);
            tokio::task::spawn_blocking(move || pool.fill(n)).await??;
        }
        let t = Instant::now();
        let tasks: Vec<_> = clients
            .iter()
            .enumerate()
            .map(|(c, p)| {
                let p = p.clone();
                let images: Vec<Vec<u8>> = (0..args.images).map(|k| test.image(c * args.images + k).to_vec()).collect();
                tokio::spawn(async move {
                    let mut out = Vec::new();
                    for img in images {
                        let r = p.classify(img.clone()).await.map(|a| a.classification);
                        out.push((img, r));
                    }
                    out
                })
            })
            .collect();
        for (c, task) in tasks.into_iter().enumerate() {
            for (k, (img, r)) in task.await?.into_iter().enumerate() {
                let r = r.with_context(|| format!("client {c}, image {k}"))?;
                count += 1;
                exact += usize::from(reference.logits(&img)? == r.logits);
                correct += usize::from(r.label == test.labels[c * args.images + k] as usize);
                lat.push(r.duration.as_secs_f64());
            }
        }
        seconds += t.elapsed().as_secs_f64();
        tokio::time::sleep(Duration::from_millis(300)).await;
        rss_passes.push(rss_mib());
        }
        let rss_peak = rss_passes.iter().cloned().fold(0.0, f64::max);
        lat.sort_by(f64::total_cmp);
        let report = BenchServiceReport {
            passes: args.passes,
            rss_mib_after_each_pass: rss_passes,
            clients: args.clients,
            images: count,
            correct,
            exact,
            seconds,
            images_per_second: count as f64 / seconds,
            latency_s_median: lat[lat.len() / 2],
            rss_mib_before: rss_before,
            rss_mib_peak_after_load: rss_peak,
            rss_mib_after: rss_mib(),
            active_sessions_after: gauge.active(),
            bits: args.bits,
        };
        server.stop().await?;
        if args.json {
            println!("{}", serde_json::to_string(&report)?);
        } else {
            println!(
                "{} pass(es) of {} clients x {} images at {} bits: {} answers, {} exact, {} correct; {:.2} images/s; median latency {:.2} s; RSS {:.0} MiB before, {:?} MiB after each pass; sessions left {}",
                report.passes,
                report.clients,
                args.images,
                report.bits,
                report.images,
                report.exact,
                report.correct,
                report.images_per_second,
                report.latency_s_median,
                report.rss_mib_before,
                report.rss_mib_after_each_pass.iter().map(|x| x.round()).collect::<Vec<_>>(),
                report.active_sessions_after
            );
        }
        if report.exact != report.images {
            bail!("{} of {} answers differ from the plaintext integer model", report.images - report.exact, report.images);
        }
        anyhow::Ok(())
    })
}

fn soak_command(
    file: ppdnn_model::modelfile::ModelFile,
    args: &BenchServiceArgs,
    seconds: f64,
) -> Result<()> {
    if !(1.0..=86_400.0).contains(&seconds) {
        bail!("--duration {seconds}: choose 1 to 86400 seconds");
    }
    let test = crate::model_cmds::load_test_set(&file, args.data.as_deref(), 0, Some(1000))?;
    let report = crate::soak::soak(file, test, args.clients, args.hostile, args.bits, seconds)?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    report.verdict()
}
