//! `ppdnn serve`, `ppdnn classify` and `ppdnn demo`: ppdnn as a service.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
use ppdnn_model::image_io::load_png;
use ppdnn_paillier::{KeyPolicy, PrivateKey, generate_keypair, keyfile};
use ppdnn_protocol::Output;
use ppdnn_protocol::{Mode, Packing};
use ppdnn_service::classifier::{ClassifierOptions, RetryPolicy};
use ppdnn_service::{
    Classifier, LocalServer, QueryBudget, ServedModel, ServerConfig, serve_service_with, service,
};

use crate::model_cmds::{DEFAULT_MODEL, Prediction, load_inputs, load_model, print_predictions};

#[derive(Args)]
pub struct ServeArgs {
    /// Model files to serve (each under its file name without extension).
    #[arg(long = "model", default_value = DEFAULT_MODEL)]
    models: Vec<PathBuf>,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:50051")]
    listen: SocketAddr,
    /// TLS certificate chain (PEM); with --tls-key, serve over TLS.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Let pages from ORIGIN (scheme://host[:port], or * for any) call this
    /// server over gRPC-web (CORS); repeatable. Default: pages of the same
    /// origin only (the one --web serves).
    #[arg(long = "cors-origin", value_name = "ORIGIN")]
    cors_origins: Vec<String>,
    /// Serve the browser client at /: the page built into this binary, or
    /// the page in folder DIR (scripts/build-web.sh makes web/dist).
    #[arg(long, value_name = "DIR", num_args = 0..=1)]
    web: Option<Option<PathBuf>>,
    #[command(flatten)]
    limits: LimitArgs,
}

mod embedded_web {
    include!(concat!(env!("OUT_DIR"), "/embedded_web.rs"));
}

impl ServeArgs {
    /// The HTTP settings: CORS origins and the page (checked).
    fn http(&self) -> Result<ppdnn_service::http::HttpOptions> {
        use ppdnn_service::http::{HttpOptions, WebPage};
        let web = match &self.web {
            None => None,
            Some(None) => {
                if embedded_web::FILES.is_empty() {
                    bail!(
                        "--web: this ppdnn was built without the page; run scripts/build-web.sh and build ppdnn again, or give the page's folder (--web web/dist)"
                    );
                }
                Some(WebPage::Embedded(embedded_web::FILES))
            }
            Some(Some(dir)) => Some(WebPage::Dir(dir.clone())),
        };
        let http = HttpOptions { cors_origins: self.cors_origins.clone(), web };
        http.check()?;
        Ok(http)
    }
}

#[derive(Args, Clone)]
pub struct LimitArgs {
    /// Concurrent inferences; more get RESOURCE_EXHAUSTED.
    #[arg(long, default_value_t = 16)]
    max_sessions: usize,
    /// Concurrent inferences from one client address (default: no per-client
    /// share; behind a load balancer all clients share its address).
    #[arg(long)]
    max_sessions_per_client: Option<usize>,
    /// Seconds to wait for a client's next message before dropping its session.
    #[arg(long, default_value_t = 30.0)]
    idle_timeout: f64,
    /// Seconds a whole inference may take before it is dropped.
    #[arg(long, default_value_t = 120.0)]
    session_deadline: f64,
    /// Seconds a new stream may take to send its Start message.
    #[arg(long, default_value_t = 10.0)]
    start_timeout: f64,
    /// Also serve the unpacked layout (8x the server's CPU per image and a
    /// 16 MiB table per client key; off by default).
    #[arg(long)]
    allow_unpacked: bool,
    /// Memory budget, in MiB, for cached client-key tables.
    #[arg(long, default_value_t = 64)]
    key_cache_mib: usize,
    /// Threads of the server's compute pool (default: one per core).
    #[arg(long, default_value_t = 0)]
    compute_threads: usize,
    /// Largest gRPC message, in MiB (clients must accept the same).
    #[arg(long, default_value_t = 4)]
    max_message_mib: usize,
    /// Key sizes accepted, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "2048,3072")]
    key_bits: Vec<u32>,
    /// Protocol modes offered, comma-separated: private (the client learns
    /// only the answer) and/or fast (2P-DNN: the client can learn the
    /// weights). Private only unless the operator says otherwise.
    #[arg(long, value_delimiter = ',', default_value = "private")]
    modes: Vec<Mode>,
    /// Private mode: the most MiB of material (garbled tables, OT messages,
    /// pads) one round of a session may carry, either way.
    #[arg(long, default_value_t = 64)]
    max_garbled_mib: usize,
    /// Private mode: SoftSpokenOT's group width, 4 or 8 (default: 8 for
    /// sessions of 2^20 OTs or more, 4 below). 8 halves the OT extension's
    /// bytes (2 per OT) for 8 times its PRG work on both sides.
    #[arg(long, value_parser = parse_group_bits)]
    ot_group_bits: Option<u32>,
    /// Accept client keys below 2048 bits (tests only).
    #[arg(long)]
    insecure_small_keys: bool,
    /// What a private inference may ask to learn, comma-separated: logits
    /// and/or label. With label alone, a Start asking for the logits is
    /// refused (FAILED_PRECONDITION), and the fast mode cannot be offered.
    #[arg(long, value_delimiter = ',', default_value = "logits,label")]
    outputs: Vec<Output>,
    /// Query budget: completed inferences per client key, and separately
    /// per client address, in each --budget-period (a token bucket; beyond
    /// it RESOURCE_EXHAUSTED with the wait in the retry-after-ms metadata).
    #[arg(long)]
    query_budget: Option<u32>,
    /// The query budget's period, in seconds.
    #[arg(long, default_value_t = 3600.0, requires = "query_budget")]
    budget_period: f64,
    /// The ring-Pedersen parameters clients prove their keys' factors
    /// against (private mode): read from FILE, or made and written there if
    /// it does not exist. Replicas behind one balancer must share one file;
    /// without the flag each process makes its own.
    #[arg(long, value_name = "FILE")]
    factor_params: Option<std::path::PathBuf>,
}

impl LimitArgs {
    fn config(&self) -> Result<ServerConfig> {
        for (flag, v) in [
            ("--idle-timeout", self.idle_timeout),
            ("--session-deadline", self.session_deadline),
            ("--start-timeout", self.start_timeout),
        ] {
            if !(0.1..=3600.0).contains(&v) {
                bail!("{flag} {v}: choose 0.1 to 3600 seconds");
            }
        }
        if self.max_sessions_per_client == Some(0) {
            bail!("--max-sessions-per-client must be at least 1");
        }
        if self.key_cache_mib > 65536 {
            bail!("--key-cache-mib {}: choose at most 65536", self.key_cache_mib);
        }
        if !(1..=1024).contains(&self.max_message_mib) {
            bail!("--max-message-mib {}: choose 1 to 1024", self.max_message_mib);
        }
        if self.max_sessions == 0 {
            bail!("--max-sessions must be at least 1");
        }
        if !(1..=4096).contains(&self.max_garbled_mib) {
            bail!("--max-garbled-mib {}: choose 1 to 4096", self.max_garbled_mib);
        }
        let mut modes = self.modes.clone();
        modes.dedup();
        if modes.is_empty() {
            bail!("--modes: name at least one of private, fast");
        }
        let policy = KeyPolicy::insecure_if(self.insecure_small_keys);
        for &b in &self.key_bits {
            crate::crypto_cmds::check_new_key_bits(b, policy)
                .map_err(|e| anyhow::anyhow!("--key-bits: {e:#}"))?;
        }
        let mut outputs = self.outputs.clone();
        outputs.dedup();
        let query_budget = match self.query_budget {
            None => None,
            Some(0) => bail!("--query-budget must be at least 1"),
            Some(queries) => {
                if !(1.0..=31_536_000.0).contains(&self.budget_period) {
                    bail!("--budget-period {}: choose 1 s to one year", self.budget_period);
                }
                Some(QueryBudget { queries, period: Duration::from_secs_f64(self.budget_period) })
            }
        };
        Ok(ServerConfig {
            max_sessions: self.max_sessions,
            max_sessions_per_client: self.max_sessions_per_client,
            idle_timeout: Duration::from_secs_f64(self.idle_timeout),
            start_timeout: Duration::from_secs_f64(self.start_timeout),
            session_deadline: Duration::from_secs_f64(self.session_deadline),
            allow_unpacked: self.allow_unpacked,
            key_cache_bytes: self.key_cache_mib << 20,
            compute_threads: self.compute_threads,
            max_message_bytes: self.max_message_mib << 20,
            max_chunk_bytes: (self.max_message_mib << 20) / 2,
            key_bits: self.key_bits.clone(),
            modes,
            max_garbled_bytes: self.max_garbled_mib << 20,
            ot_group_bits: self.ot_group_bits,
            key_policy: policy,
            outputs,
            query_budget,
            factor_params: match &self.factor_params {
                Some(path) => Some(std::sync::Arc::new(factor_params(path, &self.key_bits)?)),
                None => None,
            },
        })
    }
}

/// The parameters in `path`, or new ones written there (atomically: made
/// in a temporary file and linked into place, so replicas starting together
/// all end with the file of whichever linked first).
fn factor_params(path: &std::path::Path, key_bits: &[u32]) -> Result<ppdnn_paillier::RingPedersen> {
    use anyhow::Context;
    use ppdnn_paillier::RingPedersen;
    let read = |p: &std::path::Path| -> Result<RingPedersen> {
        let bytes = std::fs::read(p).with_context(|| format!("reading --factor-params {}", p.display()))?;
        let params =
            RingPedersen::from_bytes(&bytes).with_context(|| format!("--factor-params {}", p.display()))?;
        // Clients check this proof before they commit to anything: a file
        // whose proof fails would turn every private client away.
        params.check_membership().with_context(|| format!("--factor-params {}", p.display()))?;
        // The server verifies clients' proofs with them: a prime or smooth
        // n_hat would let clients forge those proofs.
        params.check_as_verifier().with_context(|| format!("--factor-params {}", p.display()))?;
        Ok(params)
    };
    if path.exists() {
        return read(path);
    }
    let bits = key_bits.iter().copied().max().unwrap_or(2048).max(2048).next_multiple_of(2);
    let params = RingPedersen::generate(bits).context("making the factor-proof parameters")?;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
    let tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("a temporary file beside --factor-params {}", path.display()))?;
    std::fs::write(tmp.path(), params.to_bytes())?;
    match std::fs::hard_link(tmp.path(), path) {
        Ok(()) => Ok(params),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => read(path),
        Err(e) => Err(e).with_context(|| format!("writing --factor-params {}", path.display())),
    }
}

pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().enable_all().build()?)
}

/// Logs to standard error: info by default, RUST_LOG to change it.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,h2=warn,tower=warn,hyper=warn"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}

fn served_models(paths: &[PathBuf]) -> Result<Vec<ServedModel>> {
    paths
        .iter()
        .map(|p| {
            let name = p.file_stem().and_then(|s| s.to_str()).unwrap_or("model").to_string();
            Ok(ServedModel { name, file: load_model(p)? })
        })
        .collect()
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

pub fn serve_cmd(args: ServeArgs) -> Result<()> {
    init_logging();
    let models = served_models(&args.models)?;
    let config = args.limits.config()?;
    let http = args.http()?;
    let page = match &http.web {
        None => "none".to_string(),
        Some(ppdnn_service::http::WebPage::Dir(dir)) => format!("{} at /", dir.display()),
        Some(ppdnn_service::http::WebPage::Embedded(files)) => {
            format!("built in ({} files) at /", files.len())
        }
    };
    let cors = if http.cors_origins.is_empty() {
        "same origin only".to_string()
    } else {
        http.cors_origins.join(",")
    };
    let names: Vec<String> = models.iter().map(|m| m.name.clone()).collect();
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(c), Some(k)) => Some(ppdnn_service::ServerTls {
            cert_pem: std::fs::read(c).with_context(|| c.display().to_string())?,
            key_pem: std::fs::read(k).with_context(|| k.display().to_string())?,
        }),
        _ => None,
    };
    let modes: Vec<&str> = config.modes.iter().map(|m| m.name()).collect();
    let outputs: Vec<&str> = config.outputs.iter().map(|o| o.name()).collect();
    let budget = config.query_budget.map_or("none".to_string(), |b| format!("{b}, per key and per address"));
    let factor_params = match (&args.limits.factor_params, &config.factor_params) {
        (Some(path), Some(p)) => {
            let digest: String = p.digest()[..8].iter().map(|b| format!("{b:02x}")).collect();
            format!("{} (digest {digest}...)", path.display())
        }
        _ => "made at start-up (replicas need --factor-params)".to_string(),
    };
    // Every model's plans and limits are checked before anything is said to be served.
    let svc = service(models, config)?;
    runtime()?.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        tracing::info!(
            address = %args.listen,
            models = ?names,
            modes = ?modes,
            outputs = ?outputs,
            query_budget = %budget,
            factor_params = %factor_params,
            arithmetic = ppdnn_paillier::Backend::current().name(),
            web = %page,
            cors = %cors,
            "serving"
        );
        Ok(serve_service_with(listener, svc, tls, http, shutdown_signal(), Duration::from_secs(10)).await?)
    })
}

#[derive(Args)]
pub struct ClassifyArgs {
    /// Server address, e.g. http://127.0.0.1:50051.
    #[arg(long)]
    server: String,
    /// Private key file; a fresh key is generated when absent.
    #[arg(long)]
    key: Option<PathBuf>,
    /// Model name on the server (default: its first model).
    #[arg(long, default_value = "")]
    model: String,
    /// Key size when generating a key.
    #[arg(long, default_value_t = 2048)]
    bits: u32,
    /// One value per ciphertext (slow; for comparison; fast mode only).
    #[arg(long)]
    no_packing: bool,
    /// Protocol mode: private (the server's model stays private) or fast
    /// (2P-DNN). Default: private when the server offers it, else fast.
    #[arg(long)]
    mode: Option<Mode>,
    /// Private mode: what to learn, logits (and class scores) or the label only.
    #[arg(long, default_value = "logits")]
    output: Output,
    /// Largest gRPC message, in MiB.
    #[arg(long, default_value_t = 4)]
    max_message_mib: usize,
    /// Attempts per image: an inference whose stream failed with UNAVAILABLE
    /// or RESOURCE_EXHAUSTED is tried again (with backoff) up to this many
    /// times in all; 1 never retries.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=20))]
    attempts: u32,
    /// Certificate authority (PEM) to trust for the server's TLS certificate
    /// (use an https:// URL).
    #[arg(long)]
    ca: Option<PathBuf>,
    /// Allow keys below 2048 bits (tests only).
    #[arg(long)]
    insecure_small_keys: bool,
    /// Print a JSON list (the shape of `ppdnn predict --json`).
    #[arg(long)]
    json: bool,
    /// PNG images, or .npy arrays of pixels 0..255 in the model's input
    /// shape (one input, or a batch with a leading axis).
    #[arg(required = true)]
    images: Vec<PathBuf>,
}

/// Connects a classifier holding `key`, or a fresh key of `bits` bits.
pub(crate) async fn prepare(
    url: &str,
    key: Option<PrivateKey>,
    bits: u32,
    policy: KeyPolicy,
    options: &ClassifierOptions,
) -> Result<Classifier> {
    let key = match key {
        Some(k) => k,
        None => tokio::task::spawn_blocking(move || generate_keypair(bits, policy)).await??.private,
    };
    Ok(Classifier::connect(url, key, options).await?)
}

/// The options of the CLI's own measurements: one mode, logits, no retries
/// (a retried inference would hide a failure and skew a latency).
pub(crate) fn measuring(model: &str, mode: Mode) -> ClassifierOptions {
    ClassifierOptions {
        model: model.into(),
        mode: Some(mode),
        retry: RetryPolicy::NONE,
        ..Default::default()
    }
}

/// A prediction from the logits, or (label-only) from the label alone, with no scores.
fn prediction(file: &str, classifier: &Classifier, logits: Vec<i64>, label: usize) -> Prediction {
    Prediction {
        file: file.into(),
        label,
        class: classifier.classes().get(label).cloned().unwrap_or_default(),
        scores: classifier.scores(&logits),
        logits,
    }
}

pub fn classify(args: ClassifyArgs) -> Result<()> {
    let policy = KeyPolicy::insecure_if(args.insecure_small_keys);
    let key = args.key.as_deref().map(|p| keyfile::read_private_key(p, policy)).transpose()?;
    let packing = if args.no_packing { Packing::Unpacked } else { Packing::Packed };
    let ca =
        args.ca.as_deref().map(|p| std::fs::read(p).with_context(|| p.display().to_string())).transpose()?;
    let options = ClassifierOptions {
        model: args.model.clone(),
        mode: args.mode,
        output: args.output,
        packing,
        max_message: args.max_message_mib << 20,
        ca_pem: ca,
        retry: RetryPolicy { attempts: args.attempts, ..RetryPolicy::default() },
    };
    let preds = runtime()?.block_on(async {
        let p = prepare(&args.server, key, args.bits, policy, &options).await?;
        if !args.json {
            eprintln!(
                "mode: {}{}",
                p.mode().name(),
                if p.mode() == Mode::Private {
                    format!(" (output: {})", args.output.name())
                } else {
                    String::new()
                }
            );
        }
        // Inputs in the served model's shape: PNGs, or .npy arrays and batches.
        let images = load_inputs(&args.images, p.input_shape())?;
        let mut preds = Vec::new();
        for (file, pixels) in images {
            let answer = p.classify(pixels).await.with_context(|| file.clone())?;
            for (k, why) in answer.retried.iter().enumerate() {
                eprintln!("{file}: attempt {} failed ({why}); retried", k + 1);
            }
            let c = answer.classification;
            preds.push(prediction(&file, &p, c.logits, c.label));
        }
        anyhow::Ok(preds)
    })?;
    print_predictions(&preds, args.json)
}

#[derive(Args)]
pub struct DemoArgs {
    /// The model to serve.
    #[arg(long, default_value = DEFAULT_MODEL)]
    model: PathBuf,
    /// Folder of PNG digits named INDEX-LABEL.png.
    #[arg(long, default_value = "examples/digits")]
    images: PathBuf,
    /// Key size.
    #[arg(long, default_value_t = 2048)]
    bits: u32,
}

pub fn demo(args: DemoArgs) -> Result<()> {
    let file = load_model(&args.model)?;
    let reference = file.quant.clone();
    let mut images: Vec<PathBuf> = std::fs::read_dir(&args.images)
        .with_context(|| {
            format!("reading {} (run from the repository root, or pass --images)", args.images.display())
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "png"))
        .collect();
    images.sort();
    if images.is_empty() {
        bail!("no PNG images in {}", args.images.display());
    }
    let name = args.model.file_stem().and_then(|s| s.to_str()).unwrap_or("model").to_string();
    let policy = KeyPolicy::admitting(args.bits);
    let config = ServerConfig {
        key_bits: vec![args.bits],
        key_policy: policy,
        modes: vec![Mode::Private, Mode::Fast],
        ..ServerConfig::default()
    };
    let svc = service(vec![ServedModel { name: name.clone(), file }], config)?;
    runtime()?.block_on(async move {
        let server = LocalServer::start(svc, None, Duration::from_secs(5)).await?;
        let url = format!("http://{}", server.addr());
        println!("ppdnn demo: server on {url} serving {name} in both modes; client key {} bits", args.bits);
        let mut summaries = Vec::new();
        for mode in [Mode::Private, Mode::Fast] {
            summaries.push(demo_mode(&url, &name, mode, &images, &reference, args.bits, policy).await?);
        }
        println!(
            "\n{:<8} {:>8} {:>6} {:>15} {:>14}  what the client learns",
            "mode", "correct", "exact", "median latency", "traffic/image"
        );
        for (mode, s) in [Mode::Private, Mode::Fast].iter().zip(&summaries) {
            println!(
                "{:<8} {:>5}/{:<2} {:>3}/{:<2} {:>14.3}s {:>10.1} MiB  {}",
                mode.name(),
                s.correct,
                s.n,
                s.exact,
                s.n,
                s.median,
                s.bytes_per_image / (1 << 20) as f64,
                match mode {
                    Mode::Private => "the logits only, whatever its client does (docs/SECURITY.md)",
                    Mode::Fast => "every layer's accumulators (enough to recover the weights)",
                }
            );
        }
        server.stop().await?;
        anyhow::Ok(())
    })
}

struct DemoSummary {
    n: usize,
    correct: usize,
    exact: usize,
    median: f64,
    bytes_per_image: f64,
}

/// The demo's images through one mode.
async fn demo_mode(
    url: &str,
    name: &str,
    mode: Mode,
    images: &[PathBuf],
    reference: &ppdnn_model::quant::QuantModel,
    bits: u32,
    policy: KeyPolicy,
) -> Result<DemoSummary> {
    let t = Instant::now();
    let p = prepare(url, None, bits, policy, &measuring(name, mode)).await?;
    let encryptions = p.plan().client_encryptions() * images.len();
    let pool = p.pool().clone();
    tokio::task::spawn_blocking(move || pool.fill(encryptions)).await??;
    println!(
        "\n{} mode: key generation, plan{} and offline randomness for {} images: {:.2} s",
        mode.name(),
        if mode == Mode::Private { ", circuits" } else { "" },
        images.len(),
        t.elapsed().as_secs_f64()
    );
    println!(
        "{:<16} {:>5} {:>9} {:>7} {:>9} {:>10}",
        "image", "true", "predicted", "exact", "latency", "traffic"
    );
    let (mut correct, mut exact, mut latencies, mut bytes) = (0, 0, Vec::new(), 0usize);
    for path in images {
        let pixels = load_png(path)?;
        let c = p.classify(pixels.clone()).await?.classification;
        let label = c.label;
        let truth = true_label(path);
        let same = reference.logits(&pixels)? == c.logits;
        correct += usize::from(truth == Some(label));
        exact += usize::from(same);
        latencies.push(c.duration.as_secs_f64());
        let traffic = c.bytes_sent + c.bytes_received;
        bytes += traffic;
        println!(
            "{:<16} {:>5} {:>9} {:>7} {:>8.3}s {:>7.0} KiB",
            path.file_name().and_then(|s| s.to_str()).unwrap_or("?"),
            truth.map(|t| t.to_string()).unwrap_or_else(|| "?".into()),
            format!("{label} ({})", p.classes().get(label).map(String::as_str).unwrap_or("?")),
            if same { "yes" } else { "NO" },
            c.duration.as_secs_f64(),
            traffic as f64 / 1024.0
        );
    }
    latencies.sort_by(f64::total_cmp);
    let n = images.len();
    Ok(DemoSummary { n, correct, exact, median: latencies[n / 2], bytes_per_image: bytes as f64 / n as f64 })
}

/// The label in a file name of the form INDEX-LABEL.png.
fn true_label(path: &Path) -> Option<usize> {
    path.file_stem()?.to_str()?.rsplit('-').next()?.parse().ok()
}

/// Resident memory of this process, in MiB (Linux; 0 elsewhere).
pub(crate) fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1).and_then(|p| p.parse::<f64>().ok()))
        .map(|pages| pages * 4096.0 / (1 << 20) as f64)
        .unwrap_or(0.0)
}

/// `--ot-group-bits`: one of the widths a private plan may state.
pub(crate) fn parse_group_bits(s: &str) -> std::result::Result<u32, String> {
    s.parse().ok().filter(|k| ppdnn_protocol::OT_GROUP_BITS.contains(k)).ok_or_else(|| {
        format!("{s:?}: SoftSpokenOT's group width is one of {:?}", ppdnn_protocol::OT_GROUP_BITS)
    })
}
