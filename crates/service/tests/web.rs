//! What browsers use: InferStep (an inference as unary calls) in both
//! modes, gRPC-web on the gRPC port, CORS only for the origins named, and
//! the page only when asked for.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ppdnn_paillier::{KeyPolicy, RandomnessPool};
use ppdnn_protocol::{ClientSession, Mode, Output, Packing, SessionPlan};
use ppdnn_service::http::{HttpOptions, WebPage};
use ppdnn_service::pb;
use ppdnn_service::steps::{StepError, infer_by_steps, session_name};
use ppdnn_service::{RemoteClient, ServedModel, ServerConfig, serve_service_with, service};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::Code;

use ppdnn_model::testing::{mnist_test_set as test_set, shipped_model as model};

const BITS: u32 = 1024;

fn config() -> ServerConfig {
    ServerConfig {
        max_message_bytes: 1 << 20,
        max_chunk_bytes: 64 << 10,
        key_bits: vec![BITS],
        key_policy: KeyPolicy::INSECURE_TESTING,
        modes: vec![Mode::Fast, Mode::Private],
        ..ServerConfig::default()
    }
}

/// A server on a free loopback port with these HTTP settings; its address.
async fn start(http: HttpOptions) -> std::net::SocketAddr {
    let models = vec![ServedModel { name: "lenet5-mnist".into(), file: model().clone() }];
    let svc = service(models, config()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve_service_with(
        listener,
        svc,
        None,
        http,
        std::future::pending(),
        Duration::from_secs(1),
    ));
    addr
}

/// One inference of test image `i` by InferStep calls over native gRPC.
async fn by_steps(url: &str, mode: Mode, i: usize) -> Result<ppdnn_service::steps::StepOutcome, StepError> {
    let key = ppdnn_paillier::testing::test_keypair(BITS);
    let mut remote = RemoteClient::connect(url, 1 << 20).await.unwrap();
    let (desc, plan) = remote.describe("lenet5-mnist", BITS, Packing::Packed, mode).await.unwrap();
    let plan = SessionPlan::new(Arc::new(plan)).unwrap();
    let pool = Arc::new(RandomnessPool::new(key.public()));
    let private = Arc::new(key.private.clone());
    let session = ClientSession::new(&plan, private.clone(), pool, Output::Logits).unwrap();
    let (modulus_proof, factor_proof, factor_params_digest) = match mode {
        Mode::Fast => (Vec::new(), Vec::new(), Vec::new()),
        Mode::Private => {
            let params = ppdnn_paillier::RingPedersen::from_bytes(&desc.factor_params).unwrap();
            let factors = private.prove_factors(&params).unwrap().to_bytes(key.public(), &params);
            (private.modulus_proof().unwrap().to_bytes(key.public()), factors, params.digest().to_vec())
        }
    };
    let start = pb::Start {
        model: "lenet5-mnist".into(),
        key: Some(ppdnn_service::convert::key_to_pb(key.public())),
        packing: pb::Packing::Packed as i32,
        model_digest: desc.digest.clone(),
        mode: ppdnn_service::convert::mode_to_pb(mode),
        output: pb::Output::Logits as i32,
        modulus_proof,
        factor_proof,
        factor_params_digest,
    };
    let grpc = ppdnn_service::client::grpc_client(url).await.unwrap();
    let name = session_name().unwrap();
    let clock = Instant::now();
    let call = |req: pb::InferStepRequest| {
        let mut g = grpc.clone();
        async move { g.infer_step(req).await.map(tonic::Response::into_inner) }
    };
    let width = key.public().ciphertext_bytes();
    infer_by_steps(&name, start, session, test_set().image(i), width, 60 << 10, call, || {
        clock.elapsed().as_secs_f64() * 1e3
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn infer_step_gives_the_exact_logits_in_both_modes() {
    let addr = start(HttpOptions::default()).await;
    let url = format!("http://{addr}");
    for (mode, image) in [(Mode::Fast, 0), (Mode::Private, 1)] {
        let out = by_steps(&url, mode, image).await.unwrap();
        let want = model().quant.logits(test_set().image(image)).unwrap();
        assert_eq!(out.logits, want, "{mode:?}");
        assert!(out.calls >= 4 && out.bytes_sent > 0 && out.bytes_received > 0, "{out:?}");
        assert_eq!(out.first_ciphertext_bytes.len(), 64);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn infer_step_refuses_unknown_sessions_bad_names_and_a_second_start() {
    let addr = start(HttpOptions::default()).await;
    let mut grpc = ppdnn_service::client::grpc_client(&format!("http://{addr}")).await.unwrap();
    let step = |session: &str, requests: Vec<pb::InferRequest>| pb::InferStepRequest {
        session: session.into(),
        requests,
        receive: true,
    };
    let err = grpc.infer_step(step(&"ab".repeat(16), Vec::new())).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    assert!(err.message().contains("no open session"), "{}", err.message());
    let err = grpc.infer_step(step("not-hex", Vec::new())).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("lowercase hex"), "{}", err.message());
    // A Start with a bad key ends the session with the same status Infer gives.
    let bad_start = pb::InferRequest {
        kind: Some(pb::infer_request::Kind::Start(pb::Start {
            key: Some(pb::PublicKey { n: vec![0x80; 128], hn: Vec::new() }),
            ..Default::default()
        })),
    };
    let name = session_name().unwrap();
    let err = grpc.infer_step(step(&name, vec![bad_start.clone()])).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    // The session is gone: its name is unknown now.
    let err = grpc.infer_step(step(&name, Vec::new())).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    // An open session cannot be started again (taken over) by whoever sends
    // a Start under its name.
    let key = ppdnn_paillier::testing::test_keypair(BITS);
    let good_start = pb::InferRequest {
        kind: Some(pb::infer_request::Kind::Start(pb::Start {
            key: Some(ppdnn_service::convert::key_to_pb(key.public())),
            mode: pb::Mode::Fast as i32,
            ..Default::default()
        })),
    };
    let name = session_name().unwrap();
    let open =
        pb::InferStepRequest { session: name.clone(), requests: vec![good_start.clone()], receive: false };
    assert!(grpc.infer_step(open.clone()).await.unwrap().into_inner().round.is_none());
    let err = grpc.infer_step(open).await.unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists, "{err:?}");
}

/// One raw HTTP/1.1 exchange; the response's head and body.
async fn http(addr: std::net::SocketAddr, request: &str, body: &[u8]) -> (String, Vec<u8>) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    s.write_all(body).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
    let split = out.windows(4).position(|w| w == b"\r\n\r\n").map_or(out.len(), |p| p + 4);
    (String::from_utf8_lossy(&out[..split]).to_lowercase(), out[split..].to_vec())
}

fn preflight(addr: std::net::SocketAddr, origin: &str) -> String {
    format!(
        "OPTIONS /ppdnn.v1.Inference/ListModels HTTP/1.1\r\nHost: {addr}\r\nOrigin: {origin}\r\nAccess-Control-Request-Method: POST\r\nAccess-Control-Request-Headers: content-type,x-grpc-web\r\nConnection: close\r\n\r\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_admits_only_the_origins_named() {
    let allowed = "http://allowed.example:8080";
    let open = start(HttpOptions { cors_origins: vec![allowed.into()], web: None }).await;
    let (head, _) = http(open, &preflight(open, allowed), b"").await;
    assert!(head.contains(&format!("access-control-allow-origin: {allowed}")), "{head}");
    assert!(head.contains("x-grpc-web"), "{head}");
    let (head, _) = http(open, &preflight(open, "http://evil.example"), b"").await;
    assert!(!head.contains("access-control-allow-origin"), "{head}");
    // Control: without --cors-origin no origin is admitted, not even that one.
    let closed = start(HttpOptions::default()).await;
    let (head, _) = http(closed, &preflight(closed, allowed), b"").await;
    assert!(!head.contains("access-control-allow-origin"), "{head}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_web_is_answered_on_the_grpc_port() {
    let addr = start(HttpOptions::default()).await;
    // An empty ListModelsRequest in a gRPC-web frame: flag 0, length 0.
    let frame = [0u8; 5];
    let request = format!(
        "POST /ppdnn.v1.Inference/ListModels HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/grpc-web+proto\r\nX-Grpc-Web: 1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        frame.len()
    );
    let (head, body) = http(addr, &request, &frame).await;
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(head.contains("application/grpc-web"), "{head}");
    assert!(body.windows(12).any(|w| w == b"lenet5-mnist"), "{body:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_is_served_only_when_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("index.html"), "<title>ppdnn page</title>").unwrap();
    let get = |addr| format!("GET / HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    let with =
        start(HttpOptions { cors_origins: Vec::new(), web: Some(WebPage::Dir(dir.path().into())) }).await;
    let (head, body) = http(with, &get(with), b"").await;
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert_eq!(body, b"<title>ppdnn page</title>");
    let files: ppdnn_service::http::EmbeddedFiles = &[("index.html", b"<title>built in</title>")];
    let built = start(HttpOptions { cors_origins: Vec::new(), web: Some(WebPage::Embedded(files)) }).await;
    let (head, body) = http(built, &get(built), b"").await;
    assert!(head.starts_with("http/1.1 200") && head.contains("text/html"), "{head}");
    assert_eq!(body, b"<title>built in</title>");
    let without = start(HttpOptions::default()).await;
    let (head, body) = http(without, &get(without), b"").await;
    assert!(
        !head.starts_with("http/1.1 200") || !String::from_utf8_lossy(&body).contains("<title>"),
        "{head}"
    );
    // A folder without index.html is refused before serving.
    let empty = tempfile::tempdir().unwrap();
    let bad = HttpOptions { cors_origins: Vec::new(), web: Some(WebPage::Dir(empty.path().into())) };
    assert!(bad.check().unwrap_err().to_string().contains("no index.html"));
}
