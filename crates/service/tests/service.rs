//! The server over real loopback gRPC: correct answers, a clear status for
//! every kind of bad input, limits, and a server that keeps serving.

mod common;

use std::sync::Arc;
use std::time::Duration;

use ppdnn_model::network::argmax;
use ppdnn_paillier::{Integer, KeyPair, KeyPolicy, RandomnessPool, generate_keypair, to_fixed_bytes};
use ppdnn_protocol::Output;
use ppdnn_protocol::{Mode, Packing, Plan, SessionPlan, fast::FastClientSession};
use ppdnn_service::pb::{self, infer_request};
use ppdnn_service::{
    Classifier, ClassifierOptions, LocalServer, RemoteClient, RetryPolicy, ServedModel, ServerConfig,
    SessionGauge, service_with_gauge,
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Code;

use common::{BITS, test_config};

use ppdnn_model::testing::{mnist_test_set as test_set, shipped_model as model};

/// The test key (1024 bits), with its re-randomization table.
fn key() -> &'static KeyPair {
    let k = ppdnn_paillier::testing::test_keypair(1024);
    k.public().precompute_randomness(6);
    k
}

struct Server {
    url: String,
    gauge: SessionGauge,
    _server: LocalServer,
}

async fn start(max_sessions: usize, idle: Duration) -> Server {
    start_with(ServerConfig { max_sessions, idle_timeout: idle, ..test_config() }).await
}

async fn start_with(config: ServerConfig) -> Server {
    let models = vec![ServedModel { name: "lenet5-mnist".into(), file: model().clone() }];
    let (svc, gauge) = service_with_gauge(models, config).unwrap();
    let server = LocalServer::start(svc, None, Duration::from_secs(1)).await.unwrap();
    Server { url: format!("http://{}", server.addr()), gauge, _server: server }
}

async fn plan(url: &str) -> Plan {
    let mut c = RemoteClient::connect(url, 1 << 20).await.unwrap();
    c.describe("lenet5-mnist", BITS, Packing::Packed, Mode::Fast).await.unwrap().1
}

/// A correct inference of test image `i` through the library client.
async fn good_inference(url: &str, i: usize) {
    let mut c = RemoteClient::connect(url, 1 << 20).await.unwrap();
    let plan = Arc::new(plan(url).await);
    let pool = Arc::new(RandomnessPool::new(key().public()));
    let image = test_set().image(i).to_vec();
    let plan = SessionPlan::new(plan).unwrap();
    let out = c
        .infer("", &plan, Arc::new(key().private.clone()), pool, Output::Logits, image.clone())
        .await
        .unwrap();
    assert_eq!(out.logits, model().quant.logits(&image).unwrap(), "image {i}");
}

fn start_msg(n: Vec<u8>, hn: Vec<u8>, model: &str) -> pb::InferRequest {
    pb::InferRequest {
        kind: Some(infer_request::Kind::Start(pb::Start {
            model: model.into(),
            key: Some(pb::PublicKey { n, hn }),
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

fn good_start() -> pb::InferRequest {
    let pk = key().public();
    start_msg(to_fixed_bytes(pk.n(), 128), to_fixed_bytes(pk.hn().unwrap(), 256), "")
}

fn round(r: u32, data: Vec<u8>) -> pb::InferRequest {
    chunk(r, data, true)
}

fn chunk(r: u32, data: Vec<u8>, last: bool) -> pb::InferRequest {
    pb::InferRequest {
        kind: Some(infer_request::Kind::Round(pb::Round {
            round: r,
            ciphertexts: data,
            last,
            material: Vec::new(),
        })),
    }
}

/// Round 0's genuine ciphertexts for test image 0.
async fn round0(url: &str) -> Vec<u8> {
    let plan = Arc::new(plan(url).await);
    let pool = Arc::new(RandomnessPool::new(key().public()));
    let mut s = FastClientSession::new(plan, Arc::new(key().private.clone()), pool).unwrap();
    s.start(test_set().image(0)).unwrap().data
}

/// Sends `msgs` (keeping the stream open for `hold` afterwards) and returns
/// the first error status, or Ok with the number of round chunks received.
async fn raw(url: &str, msgs: Vec<pb::InferRequest>, hold: Duration) -> Result<usize, tonic::Status> {
    let mut client =
        ppdnn_service::client::grpc_client(url).await.unwrap().max_encoding_message_size(64 << 20);
    let (tx, rx) = mpsc::channel(16);
    for m in msgs {
        tx.send(m).await.unwrap();
    }
    let keep = tokio::spawn(async move {
        tokio::time::sleep(hold).await;
        drop(tx);
    });
    let mut stream = client.infer(ReceiverStream::new(rx)).await?.into_inner();
    let mut n = 0;
    let result = loop {
        match stream.message().await {
            Ok(Some(_)) => n += 1,
            Ok(None) => break Ok(n),
            Err(s) => break Err(s),
        }
    };
    keep.abort();
    result
}

fn expect(result: Result<usize, tonic::Status>, code: Code, words: &[&str]) {
    let status = result.expect_err("an error status");
    assert_eq!(status.code(), code, "{}", status.message());
    for w in words {
        assert!(status.message().contains(w), "{:?} lacks {w:?}", status.message());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_clear_statuses_and_the_server_keeps_serving() {
    // The idle timeout leaves room for a slow machine: the tests in this file
    // run at once on two cores, and a good inference must not time out.
    let server = start(4, Duration::from_secs(5)).await;
    let url = server.url.as_str();
    let hold = Duration::from_millis(300);
    good_inference(url, 0).await;

    // Keys: too small, even, malformed, missing.
    let small = generate_keypair(512, KeyPolicy::INSECURE_TESTING).unwrap();
    let sp = small.public();
    expect(
        raw(url, vec![start_msg(to_fixed_bytes(sp.n(), 64), vec![], "")], hold).await,
        Code::InvalidArgument,
        &["key size 512"],
    );
    let even = Integer::from(key().public().n() + 1u32);
    expect(
        raw(url, vec![start_msg(to_fixed_bytes(&even, 128), vec![], "")], hold).await,
        Code::InvalidArgument,
        &["even"],
    );
    expect(raw(url, vec![start_msg(vec![], vec![], "")], hold).await, Code::InvalidArgument, &["no n"]);
    expect(
        raw(url, vec![start_msg(vec![0xff; 2000], vec![], "")], hold).await,
        Code::InvalidArgument,
        &["larger"],
    );
    // Unknown model.
    let pk = key().public();
    let unknown = start_msg(to_fixed_bytes(pk.n(), 128), vec![], "resnet");
    expect(raw(url, vec![unknown], hold).await, Code::NotFound, &["resnet", "lenet5-mnist"]);
    // A round before Start.
    expect(raw(url, vec![round(0, vec![1])], hold).await, Code::InvalidArgument, &["Start"]);

    let data = round0(url).await;
    let width = 256;
    // Out of range, and not coprime to n.
    let mut bad = data.clone();
    bad[width..2 * width].fill(0xff);
    expect(
        raw(url, vec![good_start(), round(0, bad)], hold).await,
        Code::InvalidArgument,
        &["ciphertext 1", "n^2"],
    );
    let mut bad = data.clone();
    bad[..width].copy_from_slice(&to_fixed_bytes(pk.n(), width));
    expect(raw(url, vec![good_start(), round(0, bad)], hold).await, Code::InvalidArgument, &["factor"]);
    // Too few and too many ciphertexts.
    let few = data[..data.len() - width].to_vec();
    expect(
        raw(url, vec![good_start(), round(0, few)], hold).await,
        Code::InvalidArgument,
        &["the plan says"],
    );
    let mut many = data.clone();
    many.extend_from_slice(&data[..width]);
    expect(raw(url, vec![good_start(), round(0, many)], hold).await, Code::InvalidArgument, &["more than"]);
    // Wrong round.
    expect(
        raw(url, vec![good_start(), round(1, data.clone())], hold).await,
        Code::InvalidArgument,
        &["round 1"],
    );
    // Oversized message (the server accepts 1 MiB).
    let huge = round(0, vec![7u8; 2 << 20]);
    expect(
        raw(url, vec![good_start(), huge], hold).await,
        Code::ResourceExhausted,
        &["limit of 1048576 bytes"],
    );

    // A client that goes silent mid-inference is dropped after the idle
    // timeout; meanwhile another client's inference succeeds.
    let silent = tokio::spawn({
        let (url, data) = (url.to_string(), data.clone());
        async move { raw(&url, vec![good_start(), round(0, data)], Duration::from_secs(8)).await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(server.gauge.active(), 1, "the silent session is in progress");
    good_inference(url, 3).await;
    expect(silent.await.unwrap(), Code::DeadlineExceeded, &["round 1"]);
    // A client that disconnects mid-inference.
    let mut c = ppdnn_service::client::grpc_client(url).await.unwrap();
    let (tx, rx) = mpsc::channel(4);
    tx.send(good_start()).await.unwrap();
    tx.send(round(0, data.clone())).await.unwrap();
    let mut stream = c.infer(ReceiverStream::new(rx)).await.unwrap().into_inner();
    let _ = stream.message().await;
    drop(stream);
    drop(tx);
    drop(c);

    // The server still answers correctly, and every session is gone.
    good_inference(url, 1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(server.gauge.active(), 0, "sessions left behind");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_beyond_the_limit_get_resource_exhausted() {
    let server = start(1, Duration::from_secs(3)).await;
    let url = server.url.clone();
    // One session holds the only slot (Start sent, then silence).
    let holder = tokio::spawn({
        let url = url.clone();
        async move { raw(&url, vec![good_start()], Duration::from_secs(2)).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let status = raw(&url, vec![good_start()], Duration::from_millis(100)).await.expect_err("busy");
    assert_eq!(status.code(), Code::ResourceExhausted, "{}", status.message());
    assert!(status.message().contains("limit of 1"));
    let _ = holder.await;
    good_inference(&url, 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_classifier_retries_a_busy_server_and_says_so() {
    let server = start(1, Duration::from_secs(3)).await;
    let url = server.url.clone();
    let options = ClassifierOptions {
        mode: Some(Mode::Fast),
        retry: RetryPolicy {
            attempts: 6,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(1),
        },
        ..ClassifierOptions::default()
    };
    let classifier = Classifier::connect(&url, key().private.clone(), &options).await.unwrap();
    // Another session holds the only slot for about a second.
    let holder = tokio::spawn({
        let url = url.clone();
        async move { raw(&url, vec![good_start()], Duration::from_millis(1000)).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let image = test_set().image(5).to_vec();
    let answer = classifier.classify(image.clone()).await.unwrap();
    assert_eq!(answer.classification.logits, model().quant.logits(&image).unwrap());
    assert!(!answer.retried.is_empty(), "the first attempt met a busy server");
    assert!(answer.retried.iter().all(|why| why.contains("ResourceExhausted")), "{:?}", answer.retried);
    let _ = holder.await;
    // Without retries the same situation is an error, and a refusal is never retried.
    let once = ClassifierOptions { retry: RetryPolicy::NONE, ..options.clone() };
    let classifier = Classifier::connect(&url, key().private.clone(), &once).await.unwrap();
    let holder = tokio::spawn({
        let url = url.clone();
        async move { raw(&url, vec![good_start()], Duration::from_millis(800)).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let e = classifier.classify(image.clone()).await.unwrap_err();
    assert!(e.to_string().contains("ResourceExhausted"), "{e}");
    let _ = holder.await;
    let e = classifier.classify(vec![0; 10]).await.unwrap_err();
    assert!(e.to_string().contains("784"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_health_says_serving_for_the_server_and_the_inference_service() {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
    let server = start(2, Duration::from_secs(5)).await;
    let channel =
        tonic::transport::Channel::from_shared(server.url.clone()).unwrap().connect().await.unwrap();
    let mut health = HealthClient::new(channel);
    // "" is what a Kubernetes gRPC readiness probe asks by default.
    for service in ["", "ppdnn.v1.Inference"] {
        let r = health.check(HealthCheckRequest { service: service.into() }).await.unwrap().into_inner();
        assert_eq!(r.status, ServingStatus::Serving as i32, "{service:?}");
    }
    let e = health.check(HealthCheckRequest { service: "no.such.Service".into() }).await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_concurrent_clients_three_images_each() {
    let server = start(8, Duration::from_secs(30)).await;
    let url = server.url.clone();
    let tasks: Vec<_> = (0..8)
        .map(|c| {
            let url = url.clone();
            tokio::spawn(async move {
                for k in 0..3 {
                    good_inference(&url, c * 3 + k).await;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(server.gauge.active(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_and_describe() {
    let server = start(2, Duration::from_secs(5)).await;
    let mut c = RemoteClient::connect(&server.url, 1 << 20).await.unwrap();
    let models = c.list_models().await.unwrap();
    assert_eq!(models.len(), 1);
    assert_eq!(models[0].name, "lenet5-mnist");
    let (desc, plan) = c.describe("", BITS, Packing::Packed, Mode::Fast).await.unwrap();
    assert_eq!(desc.input_shape, vec![1, 28, 28]);
    assert_eq!(desc.classes.len(), 10);
    assert_eq!(plan.model_digest, desc.digest);
    let e = c.describe("", 2048, Packing::Packed, Mode::Fast).await.unwrap_err().to_string();
    assert!(e.contains("2048"), "{e}");
    assert!(RemoteClient::connect("http://127.0.0.1:1", 1 << 20).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_a_private_ca() {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let tls = ppdnn_service::ServerTls {
        cert_pem: cert.cert.pem().into_bytes(),
        key_pem: cert.signing_key.serialize_pem().into_bytes(),
    };
    let config = ServerConfig {
        key_bits: vec![BITS],
        key_policy: KeyPolicy::INSECURE_TESTING,
        modes: vec![Mode::Fast],
        ..ServerConfig::default()
    };
    let models = vec![ServedModel { name: "m".into(), file: model().clone() }];
    let (svc, _) = service_with_gauge(models, config).unwrap();
    let server = LocalServer::start(svc, Some(tls), Duration::from_secs(1)).await.unwrap();
    let url = format!("https://localhost:{}", server.addr().port());
    let ca = cert.cert.pem().into_bytes();
    let mut c = RemoteClient::connect_with(&url, 1 << 20, Some(&ca)).await.unwrap();
    let (_, plan) = c.describe("m", BITS, Packing::Packed, Mode::Fast).await.unwrap();
    let pool = Arc::new(RandomnessPool::new(key().public()));
    let image = test_set().image(4).to_vec();
    let out = c
        .infer(
            "m",
            &SessionPlan::new(Arc::new(plan)).unwrap(),
            Arc::new(key().private.clone()),
            pool,
            Output::Logits,
            image.clone(),
        )
        .await
        .unwrap();
    assert_eq!(out.logits, model().quant.logits(&image).unwrap());
    // Trusting another CA only: the handshake fails.
    let other = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let other_ca = other.cert.pem().into_bytes();
    match RemoteClient::connect_with(&url, 1 << 20, Some(&other_ca)).await {
        Err(e) => assert!(e.to_string().contains("cannot connect"), "{e}"),
        Ok(mut c) => {
            let e = c.list_models().await.expect_err("a server whose certificate is not trusted");
            assert!(!e.to_string().is_empty());
        }
    }
    // In plaintext, the server is unreachable.
    let plain = format!("http://localhost:{}", server.addr().port());
    match RemoteClient::connect(&plain, 1 << 20).await {
        Err(_) => {}
        Ok(mut c) => assert!(c.list_models().await.is_err()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunks_must_hold_whole_ciphertexts_and_only_the_last_may_be_empty() {
    let server = start(4, Duration::from_secs(5)).await;
    let url = server.url.as_str();
    let hold = Duration::from_millis(300);
    let data = round0(url).await;
    let width = 256;
    // Split in the middle of a ciphertext: refused, though the bytes add up.
    let (a, b) = data.split_at(width + 17);
    expect(
        raw(url, vec![good_start(), chunk(0, a.to_vec(), false), chunk(0, b.to_vec(), true)], hold).await,
        Code::InvalidArgument,
        &["not a whole number of 256-byte ciphertexts"],
    );
    // An empty chunk that is not the last: refused at once.
    expect(
        raw(url, vec![good_start(), chunk(0, vec![], false)], hold).await,
        Code::InvalidArgument,
        &["empty chunk"],
    );
    // Whole ciphertexts in several chunks, the last one empty: accepted.
    let (a, b) = data.split_at(10 * width);
    let msgs =
        vec![good_start(), chunk(0, a.to_vec(), false), chunk(0, b.to_vec(), false), chunk(0, vec![], true)];
    let got = raw(url, msgs, Duration::from_millis(2000)).await;
    // The stream closes (client end) while the server waits for round 1.
    expect(got, Code::Cancelled, &["round 1"]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(server.gauge.active(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_cannot_be_held_forever() {
    // Each message arrives well within the idle timeout, but the whole
    // session exceeds its deadline.
    let config = ServerConfig {
        idle_timeout: Duration::from_secs(2),
        session_deadline: Duration::from_secs(3),
        ..test_config()
    };
    let server = start_with(config).await;
    let url = server.url.clone();
    let data = round0(&url).await;
    let width = 256;
    let mut client = ppdnn_service::client::grpc_client(&url).await.unwrap();
    let (tx, rx) = mpsc::channel(16);
    tx.send(good_start()).await.unwrap();
    let trickle = tokio::spawn(async move {
        for piece in data.chunks(width) {
            tokio::time::sleep(Duration::from_millis(500)).await;
            if tx.send(chunk(0, piece.to_vec(), false)).await.is_err() {
                break;
            }
        }
    });
    let started = std::time::Instant::now();
    let mut stream = client.infer(ReceiverStream::new(rx)).await.unwrap().into_inner();
    let status = loop {
        match stream.message().await {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("the stream ended without an error"),
            Err(s) => break s,
        }
    };
    trickle.abort();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{}", status.message());
    assert!(status.message().contains("deadline of 3 s per session"), "{}", status.message());
    assert!(started.elapsed() < Duration::from_secs(6), "dropped after {:?}", started.elapsed());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(server.gauge.active(), 0, "the permit was given back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_that_never_start_hold_no_permit() {
    let config = ServerConfig { max_sessions: 1, start_timeout: Duration::from_secs(2), ..test_config() };
    let server = start_with(config).await;
    let url = server.url.clone();
    // Three streams open and say nothing; the only session permit stays free.
    let mut idle = Vec::new();
    for _ in 0..3 {
        let url = url.clone();
        idle.push(tokio::spawn(async move { raw(&url, vec![], Duration::from_secs(4)).await }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(server.gauge.active(), 0);
    good_inference(&url, 5).await;
    for t in idle {
        expect(t.await.unwrap(), Code::DeadlineExceeded, &["Start"]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_address_gets_its_share_and_no_more() {
    let config = ServerConfig { max_sessions: 4, max_sessions_per_client: Some(1), ..test_config() };
    let server = start_with(config).await;
    let url = server.url.clone();
    let holder = tokio::spawn({
        let url = url.clone();
        async move { raw(&url, vec![good_start()], Duration::from_secs(2)).await }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    expect(
        raw(&url, vec![good_start()], Duration::from_millis(100)).await,
        Code::ResourceExhausted,
        &["share"],
    );
    let _ = holder.await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    good_inference(&url, 6).await;
}

/// Streams that have not sent Start wait in a bounded pool (4 x
/// max_sessions places). With a per-client share, an address keeps no more
/// of them waiting than its share of sessions, so silent streams from one
/// address cannot fill the pool and turn every other address away. The
/// control: without the share, the same second silent stream is let in to
/// wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_keeps_no_more_streams_waiting_than_its_share() {
    for share in [Some(1), None] {
        let config = ServerConfig { max_sessions: 2, max_sessions_per_client: share, ..test_config() };
        let server = start_with(config).await;
        let url = server.url.clone();
        let holder = tokio::spawn({
            let url = url.clone();
            async move { raw(&url, vec![], Duration::from_secs(2)).await }
        });
        tokio::time::sleep(Duration::from_millis(500)).await;
        let second = raw(&url, vec![], Duration::from_millis(200)).await;
        match share {
            Some(_) => expect(second, Code::ResourceExhausted, &["waiting to start", "share"]),
            None => assert!(
                second.as_ref().err().is_none_or(|s| s.code() != Code::ResourceExhausted),
                "without a share the second stream waits: {second:?}"
            ),
        }
        let _ = holder.await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_must_have_the_documented_widths_and_a_sound_base() {
    let server = start(4, Duration::from_secs(5)).await;
    let url = server.url.as_str();
    let hold = Duration::from_millis(300);
    let pk = key().public();
    // n with a leading zero byte.
    let mut n = vec![0u8];
    n.extend_from_slice(&to_fixed_bytes(pk.n(), 128));
    expect(raw(url, vec![start_msg(n, vec![], "")], hold).await, Code::InvalidArgument, &["leading zero"]);
    // h^n one byte short of 2 * 128.
    let hn = pk.hn().unwrap().to_digits::<u8>(ppdnn_paillier::int::Order::Msf);
    let short = hn[hn.len() - 255..].to_vec();
    expect(
        raw(url, vec![start_msg(to_fixed_bytes(pk.n(), 128), short, "")], hold).await,
        Code::InvalidArgument,
        &["exactly 256"],
    );
    // Degenerate bases: 1 and n^2 - 1.
    let n2m1 = Integer::from(pk.n_squared() - 1u32);
    for (base, words) in [(Integer::from(1u32), "+-1"), (n2m1, "+-1")] {
        expect(
            raw(url, vec![start_msg(to_fixed_bytes(pk.n(), 128), to_fixed_bytes(&base, 256), "")], hold)
                .await,
            Code::InvalidArgument,
            &[words],
        );
    }
    // Client strings are shown bounded and escaped.
    let long = format!("evil\nline{}", "x".repeat(500));
    let status =
        raw(url, vec![start_msg(to_fixed_bytes(pk.n(), 128), vec![], &long)], hold).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    assert!(status.message().contains("evil\\nline") && status.message().len() < 300, "{}", status.message());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_unpacked_layout_is_off_unless_enabled() {
    let server = start(2, Duration::from_secs(5)).await;
    let mut c = RemoteClient::connect(&server.url, 1 << 20).await.unwrap();
    let e = c.describe("", BITS, Packing::Unpacked, Mode::Fast).await.unwrap_err().to_string();
    assert!(e.contains("unpacked") && e.contains("FailedPrecondition"), "{e}");
    let (desc, _) = c.describe("", BITS, Packing::Packed, Mode::Fast).await.unwrap();
    assert!(!desc.limits.unwrap().unpacked_offered);
    let on = start_with(ServerConfig { allow_unpacked: true, ..test_config() }).await;
    let mut c = RemoteClient::connect(&on.url, 1 << 20).await.unwrap();
    let (desc, plan) = c.describe("", BITS, Packing::Unpacked, Mode::Fast).await.unwrap();
    assert!(desc.limits.unwrap().unpacked_offered);
    assert_eq!(plan.packing, Packing::Unpacked);
}

/// Sends raw bytes as gRPC messages, bypassing protobuf encoding.
mod raw_codec {
    use tonic::Status;
    use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};

    #[derive(Debug, Default, Clone)]
    pub struct RawCodec;

    impl Codec for RawCodec {
        type Encode = Vec<u8>;
        type Decode = Vec<u8>;
        type Encoder = RawCodec;
        type Decoder = RawCodec;
        fn encoder(&mut self) -> RawCodec {
            RawCodec
        }
        fn decoder(&mut self) -> RawCodec {
            RawCodec
        }
    }

    impl Encoder for RawCodec {
        type Item = Vec<u8>;
        type Error = Status;
        fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
            bytes::BufMut::put_slice(dst, &item);
            Ok(())
        }
    }

    impl Decoder for RawCodec {
        type Item = Vec<u8>;
        type Error = Status;
        fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
            let n = bytes::Buf::remaining(src);
            Ok(Some(bytes::Buf::copy_to_bytes(src, n).to_vec()))
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_bytes_get_invalid_argument() {
    let server = start(2, Duration::from_secs(5)).await;
    let channel =
        tonic::transport::Channel::from_shared(server.url.clone()).unwrap().connect().await.unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let path = tonic::codegen::http::uri::PathAndQuery::from_static("/ppdnn.v1.Inference/Infer");
    // 0xff 0xff ...: a field tag whose varint never ends.
    let messages = tokio_stream::iter(vec![vec![0xffu8; 12]]);
    let response = grpc.streaming(tonic::Request::new(messages), path, raw_codec::RawCodec).await;
    let status = match response {
        Err(s) => s,
        Ok(r) => {
            let mut stream = r.into_inner();
            loop {
                match stream.message().await {
                    Ok(Some(_)) => continue,
                    Ok(None) => panic!("no error for undecodable bytes"),
                    Err(s) => break s,
                }
            }
        }
    };
    assert_eq!(status.code(), Code::InvalidArgument, "{}", status.message());
    assert!(status.message().contains("undecodable"), "{}", status.message());
}

/// A private-mode inference of test image `i` through the library client.
async fn private_inference(url: &str, i: usize, output: Output) -> ppdnn_service::Classification {
    let mut c = RemoteClient::connect(url, 1 << 20).await.unwrap();
    let (_, plan) = c.describe("lenet5-mnist", BITS, Packing::Packed, Mode::Private).await.unwrap();
    let plan = SessionPlan::new(Arc::new(plan)).unwrap();
    let pool = Arc::new(RandomnessPool::new(key().public()));
    let image = test_set().image(i).to_vec();
    let sk = Arc::new(key().private.clone());
    c.infer("", &plan, sk, pool, output, image).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_concurrent_private_clients_every_answer_exact() {
    let server = start(8, Duration::from_secs(30)).await;
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let url = server.url.clone();
            tokio::spawn(async move { (i, private_inference(&url, i, Output::Logits).await) })
        })
        .collect();
    for t in tasks {
        let (i, out) = t.await.unwrap();
        let want = model().quant.logits(test_set().image(i)).unwrap();
        assert_eq!(out.logits, want, "image {i}");
        assert_eq!(out.mode, Mode::Private);
        assert!(out.garbled_bytes > 0);
    }
    let label = private_inference(&server.url, 9, Output::Label).await;
    assert!(label.logits.is_empty(), "label-only answers carry no logits");
    assert_eq!(label.label, argmax(&model().quant.logits(test_set().image(9)).unwrap()));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(server.gauge.active(), 0, "every session returned its permit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_can_choose_the_ot_group_width() {
    let default = start_with(test_config()).await;
    let mut c = RemoteClient::connect(&default.url, 1 << 20).await.unwrap();
    let (_, plan) = c.describe("lenet5-mnist", BITS, Packing::Packed, Mode::Private).await.unwrap();
    assert_eq!(plan.ot_group_bits, Some(4), "LeNet-5 is a small session");
    let wide = start_with(ServerConfig { ot_group_bits: Some(8), ..test_config() }).await;
    let mut c = RemoteClient::connect(&wide.url, 1 << 20).await.unwrap();
    let (_, plan) = c.describe("lenet5-mnist", BITS, Packing::Packed, Mode::Private).await.unwrap();
    assert_eq!(plan.ot_group_bits, Some(8));
    for output in [Output::Logits, Output::Label] {
        let out = private_inference(&wide.url, 3, output).await;
        let want = model().quant.logits(test_set().image(3)).unwrap();
        assert_eq!(out.label, argmax(&want), "{output:?}");
        if output == Output::Logits {
            assert_eq!(out.logits, want);
        }
    }
    let models = vec![ServedModel { name: "lenet5-mnist".into(), file: model().clone() }];
    let Err(e) = service_with_gauge(models, ServerConfig { ot_group_bits: Some(5), ..test_config() }) else {
        panic!("a width of 5 was accepted");
    };
    assert!(e.to_string().contains("ot_group_bits must be 4 or 8"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_offers_only_the_modes_its_operator_chose() {
    // The default is private only.
    let private_only =
        start_with(ServerConfig { modes: ServerConfig::default().modes, ..test_config() }).await;
    let mut c = RemoteClient::connect(&private_only.url, 1 << 20).await.unwrap();
    let models = c.list_models().await.unwrap();
    assert_eq!(models[0].modes, vec![pb::Mode::Private as i32]);
    let e = c.describe("", BITS, Packing::Packed, Mode::Fast).await.unwrap_err().to_string();
    assert!(e.contains("does not offer the fast mode") && e.contains("FailedPrecondition"), "{e}");
    // A fast Start (what an old client sends) is refused the same way.
    expect(
        raw(&private_only.url, vec![good_start()], Duration::ZERO).await,
        Code::FailedPrecondition,
        &["fast"],
    );
    let out = private_inference(&private_only.url, 1, Output::Logits).await;
    assert_eq!(out.logits, model().quant.logits(test_set().image(1)).unwrap());

    let fast_only = start_with(ServerConfig { modes: vec![Mode::Fast], ..test_config() }).await;
    let mut c = RemoteClient::connect(&fast_only.url, 1 << 20).await.unwrap();
    let e = c.describe("", BITS, Packing::Packed, Mode::Private).await.unwrap_err().to_string();
    assert!(e.contains("does not offer the private mode"), "{e}");
}

/// The server's factor-proof parameters (from DescribeModel).
async fn factor_params(url: &str) -> ppdnn_paillier::RingPedersen {
    let mut c = ppdnn_service::client::grpc_client(url).await.unwrap();
    let req = pb::DescribeModelRequest {
        model: String::new(),
        key_bits: BITS,
        packing: pb::Packing::Packed as i32,
        mode: pb::Mode::Private as i32,
    };
    let desc = c.describe_model(req).await.unwrap().into_inner();
    ppdnn_paillier::RingPedersen::from_bytes(&desc.factor_params).unwrap()
}

/// The test key's factor proof against the server's parameters.
async fn factor_proof(url: &str) -> Vec<u8> {
    let params = factor_params(url).await;
    key().private.prove_factors(&params).unwrap().to_bytes(key().public(), &params)
}

/// Sends a private Start and `rounds` raw rounds; returns the server's answer or status.
async fn raw_private(url: &str, rounds: Vec<pb::Round>) -> Result<usize, tonic::Status> {
    let pb::InferRequest { kind: Some(infer_request::Kind::Start(mut start)) } = good_start() else {
        unreachable!("good_start is a Start")
    };
    start.mode = pb::Mode::Private as i32;
    start.modulus_proof = key().private.modulus_proof().unwrap().to_bytes(key().public());
    start.factor_proof = factor_proof(url).await;
    let mut msgs = vec![pb::InferRequest { kind: Some(infer_request::Kind::Start(start)) }];
    msgs.extend(rounds.into_iter().map(|r| pb::InferRequest { kind: Some(infer_request::Kind::Round(r)) }));
    raw(url, msgs, Duration::from_millis(500)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_private_rounds_get_clear_statuses_and_the_server_keeps_serving() {
    let server = start(4, Duration::from_secs(5)).await;
    let data = round0(&server.url).await;
    let r =
        |ciphertexts: Vec<u8>, material: Vec<u8>| pb::Round { round: 0, ciphertexts, last: true, material };
    // Round 0 is the base-OT point alone: ciphertexts are refused.
    expect(
        raw_private(&server.url, vec![r(data[..key().public().ciphertext_bytes()].to_vec(), vec![7u8; 32])])
            .await,
        Code::InvalidArgument,
        &["ciphertexts"],
    );
    // A truncated point.
    expect(
        raw_private(&server.url, vec![r(Vec::new(), vec![7u8; 31])]).await,
        Code::InvalidArgument,
        &["material"],
    );
    // Too much material is refused as it arrives.
    expect(
        raw_private(&server.url, vec![r(Vec::new(), vec![7u8; 33])]).await,
        Code::InvalidArgument,
        &["material"],
    );
    // A point of the right size that is not a curve point.
    expect(
        raw_private(&server.url, vec![r(Vec::new(), vec![0xffu8; 32])]).await,
        Code::InvalidArgument,
        &["base OT"],
    );
    // The server goes on serving.
    let out = private_inference(&server.url, 2, Output::Logits).await;
    assert_eq!(out.logits, model().quant.logits(test_set().image(2)).unwrap());
}

/// A private inference of test image `i` through a raw stream, driven by the
/// protocol's own client session, with `tamper` free to change each client
/// message before it is sent (a cheating client); the server's status on failure.
async fn private_session_with(
    url: &str,
    i: usize,
    tamper: impl Fn(&mut ppdnn_protocol::RoundMessage),
) -> Result<ppdnn_protocol::ClientStep, tonic::Status> {
    use ppdnn_protocol::{ClientSession, ClientStep, RoundMessage};
    let mut c = RemoteClient::connect(url, 64 << 20).await.unwrap();
    let (_, plan) = c.describe("", BITS, Packing::Packed, Mode::Private).await.unwrap();
    let plan = SessionPlan::new(Arc::new(plan)).unwrap();
    let pb::InferRequest { kind: Some(infer_request::Kind::Start(mut start)) } = good_start() else {
        unreachable!("good_start is a Start")
    };
    start.mode = pb::Mode::Private as i32;
    start.modulus_proof = key().private.modulus_proof().unwrap().to_bytes(key().public());
    start.factor_proof = factor_proof(url).await;
    let mut grpc = ppdnn_service::client::grpc_client(url)
        .await
        .unwrap()
        .max_encoding_message_size(64 << 20)
        .max_decoding_message_size(64 << 20);
    let (tx, rx) = mpsc::channel(16);
    tx.send(pb::InferRequest { kind: Some(infer_request::Kind::Start(start)) }).await.unwrap();
    let mut stream = grpc.infer(ReceiverStream::new(rx)).await?.into_inner();
    let pool = Arc::new(RandomnessPool::new(key().public()));
    let mut session =
        ClientSession::new(&plan, Arc::new(key().private.clone()), pool, Output::Logits).unwrap();
    assert!(session.start(test_set().image(i)).unwrap().is_none(), "the server opens a private session");
    let width = key().public().ciphertext_bytes();
    loop {
        let mut answer = RoundMessage { round: 0, data: Vec::new(), material: Vec::new() };
        loop {
            let Some(chunk) = stream.message().await? else { panic!("the stream ended without a status") };
            answer.round = chunk.round as usize;
            answer.data.extend(chunk.ciphertexts);
            answer.material.extend(chunk.material);
            if chunk.last {
                break;
            }
        }
        match session.receive(&answer).unwrap() {
            ClientStep::Send(mut m) => {
                tamper(&mut m);
                for chunk in ppdnn_service::convert::chunks(&m, width, 1 << 19) {
                    let _ = tx.send(pb::InferRequest { kind: Some(infer_request::Kind::Round(chunk)) }).await;
                }
            }
            done => return Ok(done),
        }
    }
}

/// A fast inference of test image `i` with `pair`'s key; the server's status on failure.
async fn fast_inference_with(url: &str, pair: &KeyPair, i: usize) -> Result<Vec<i64>, tonic::Status> {
    let mut c = RemoteClient::connect(url, 1 << 20).await.unwrap();
    let plan = SessionPlan::new(Arc::new(plan(url).await)).unwrap();
    let pool = Arc::new(RandomnessPool::new(pair.public()));
    let sk = Arc::new(pair.private.clone());
    match c.infer("", &plan, sk, pool, Output::Logits, test_set().image(i).to_vec()).await {
        Ok(out) => Ok(out.logits),
        Err(ppdnn_service::ClientError::Status(status)) => Err(status),
        Err(other) => panic!("not a server status: {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_budgets_count_completed_inferences_per_key_and_per_address() {
    let budget = ppdnn_service::QueryBudget { queries: 3, period: Duration::from_secs(3600) };
    let server = start_with(ServerConfig { query_budget: Some(budget), ..test_config() }).await;
    let mut c = RemoteClient::connect(&server.url, 1 << 20).await.unwrap();
    let (desc, _) = c.describe("", BITS, Packing::Packed, Mode::Fast).await.unwrap();
    let limits = desc.limits.unwrap();
    assert_eq!((limits.query_budget, limits.budget_period_ms), (3, 3_600_000));
    // A private session that fails on a message's form does not count.
    let bad = pb::Round { round: 0, ciphertexts: vec![1; 7], last: true, material: Vec::new() };
    expect(raw_private(&server.url, vec![bad]).await, Code::InvalidArgument, &[]);
    // A fast one counts from its Start: its client learns every layer as it goes.
    expect(
        raw(&server.url, vec![good_start(), round(0, vec![1; 7])], Duration::ZERO).await,
        Code::InvalidArgument,
        &[],
    );
    // A private one whose checks fail (here its OT check's answer) counts:
    // an honest client never gets there, and free aborts would be free probes.
    let aborted = private_session_with(&server.url, 0, |m| {
        if m.round == 2 {
            m.material[3] ^= 1;
        }
    })
    .await
    .unwrap_err();
    assert_eq!(aborted.code(), Code::InvalidArgument, "{}", aborted.message());
    assert_eq!(aborted.message(), ppdnn_protocol::ABORTED);
    let pair = key();
    let logits = fast_inference_with(&server.url, pair, 1).await.unwrap();
    assert_eq!(logits, model().quant.logits(test_set().image(1)).unwrap());
    // The key's budget is spent: refused, with the wait in the metadata.
    let status = fast_inference_with(&server.url, pair, 2).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{}", status.message());
    assert!(status.message().contains("key's query budget"), "{}", status.message());
    let wait: u64 = status.metadata().get("retry-after-ms").unwrap().to_str().unwrap().parse().unwrap();
    assert!((1_100_000..=1_200_000).contains(&wait), "{wait} ms to wait for a third of a 3-per-hour bucket");
    // A fresh key from the same address: the address's budget is spent too.
    let fresh = generate_keypair(BITS, KeyPolicy::INSECURE_TESTING).unwrap();
    let status = fast_inference_with(&server.url, &fresh, 3).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{}", status.message());
    assert!(status.message().contains("address's query budget"), "{}", status.message());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_releases_only_labels_refuses_logits() {
    let config = ServerConfig { modes: vec![Mode::Private], outputs: vec![Output::Label], ..test_config() };
    let server = start_with(config.clone()).await;
    let mut c = RemoteClient::connect(&server.url, 1 << 20).await.unwrap();
    let (desc, plan) = c.describe("", BITS, Packing::Packed, Mode::Private).await.unwrap();
    assert_eq!(desc.outputs, vec![pb::Output::Label as i32]);
    let plan = SessionPlan::new(Arc::new(plan)).unwrap();
    let run = |output| {
        let (url, plan) = (server.url.clone(), plan.clone());
        async move {
            let mut c = RemoteClient::connect(&url, 1 << 20).await.unwrap();
            let pool = Arc::new(RandomnessPool::new(key().public()));
            let sk = Arc::new(key().private.clone());
            c.infer("", &plan, sk, pool, output, test_set().image(4).to_vec()).await
        }
    };
    match run(Output::Logits).await {
        Err(ppdnn_service::ClientError::Status(s)) => {
            assert_eq!(s.code(), Code::FailedPrecondition, "{}", s.message());
            assert!(s.message().contains("does not release the logits"), "{}", s.message());
        }
        other => panic!("logits were not refused: {other:?}"),
    }
    let label = run(Output::Label).await.unwrap();
    assert_eq!(label.label, argmax(&model().quant.logits(test_set().image(4)).unwrap()));
    assert!(label.logits.is_empty());
    // The fast mode gives the logits (and more) away: not with labels only.
    let models = vec![ServedModel { name: "m".into(), file: model().clone() }];
    let fast = ServerConfig { modes: vec![Mode::Fast, Mode::Private], ..config };
    let e = service_with_gauge(models, fast).err().expect("refused").to_string();
    assert!(e.contains("fast mode") && e.contains("only labels"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_starts_need_a_modulus_proof_that_verifies() {
    let server = start(4, Duration::from_secs(5)).await;
    let good_factors = factor_proof(&server.url).await;
    let private_start_for = |proof: Vec<u8>, factors: &Vec<u8>, params_digest: Vec<u8>| {
        let pb::InferRequest { kind: Some(infer_request::Kind::Start(mut start)) } = good_start() else {
            unreachable!("good_start is a Start")
        };
        start.mode = pb::Mode::Private as i32;
        start.modulus_proof = proof;
        start.factor_proof = factors.clone();
        start.factor_params_digest = params_digest;
        pb::InferRequest { kind: Some(infer_request::Kind::Start(start)) }
    };
    let private_start = |proof: Vec<u8>, factors: &Vec<u8>| private_start_for(proof, factors, Vec::new());
    // No proof: refused at Start, before any work.
    expect(
        raw(&server.url, vec![private_start(Vec::new(), &good_factors)], Duration::ZERO).await,
        Code::InvalidArgument,
        &["modulus proof"],
    );
    // Another key's proof (of the right size) is refused: it does not verify,
    // or (when the other n is larger) holds numbers not below this n.
    let other = generate_keypair(BITS, KeyPolicy::INSECURE_TESTING).unwrap();
    let theirs = other.private.modulus_proof().unwrap().to_bytes(other.public());
    expect(
        raw(&server.url, vec![private_start(theirs, &good_factors)], Duration::ZERO).await,
        Code::InvalidArgument,
        &["the key's modulus proof"],
    );
    // The key's own modulus proof without its factor proof, or with another key's.
    let mine = key().private.modulus_proof().unwrap().to_bytes(key().public());
    expect(
        raw(&server.url, vec![private_start(mine.clone(), &Vec::new())], Duration::ZERO).await,
        Code::InvalidArgument,
        &["factor proof"],
    );
    let params = factor_params(&server.url).await;
    let theirs = other.private.prove_factors(&params).unwrap().to_bytes(other.public(), &params);
    let r = raw(&server.url, vec![private_start(mine.clone(), &theirs)], Duration::ZERO).await;
    assert!(matches!(&r, Err(s) if s.code() == Code::InvalidArgument), "{r:?}");
    // Proofs made for other parameters than the server's (as after a
    // restart without --factor-params): FAILED_PRECONDITION, and the
    // metadata that tells the client to describe the model again.
    let status =
        raw(&server.url, vec![private_start_for(mine.clone(), &good_factors, vec![7; 32])], Duration::ZERO)
            .await
            .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition, "{}", status.message());
    assert_eq!(status.metadata().get(ppdnn_service::status::REFRESH).unwrap(), "factor-params");
    // Both of the key's own proofs: the session goes on (and answers the setup).
    let r = raw(&server.url, vec![private_start(mine, &good_factors)], Duration::from_millis(200)).await;
    assert!(!matches!(&r, Err(s) if s.code() == Code::InvalidArgument), "{r:?}");
    // And a whole private inference through the library client sends it.
    let out = private_inference(&server.url, 5, Output::Logits).await;
    assert_eq!(out.logits, model().quant.logits(test_set().image(5)).unwrap());
}
