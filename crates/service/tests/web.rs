//! What browsers use: InferStep (an inference as unary calls) in both
//! modes, gRPC-web on the gRPC port, CORS only for the origins named, and
//! the page only when asked for.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ppdnn_paillier::RandomnessPool;
use ppdnn_protocol::{ClientSession, Mode, Output, Packing, SessionPlan};
use ppdnn_service::http::{HttpOptions, WebPage};
use ppdnn_service::pb;
use ppdnn_service::steps::{StepError, infer_by_steps, session_name};
use ppdnn_service::{RemoteClient, ServedModel, ServerConfig, serve_service_with, service};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::Code;

mod common;
use common::{BITS, test_config};

use ppdnn_model::testing::{mnist_test_set as test_set, shipped_model as model};

/// A server on a free loopback port with these settings; its address.
async fn start_with(config: ServerConfig, http: HttpOptions) -> std::net::SocketAddr {
    let models = vec![ServedModel { name: "lenet5-mnist".into(), file: model().clone() }];
    let svc = service(models, config).unwrap();
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

/// The test server with these HTTP settings.
async fn start(http: HttpOptions) -> std::net::SocketAddr {
    start_with(test_config(), http).await
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

/// A gRPC client of the server at `addr` whose calls come from `local`
/// (another loopback address).
async fn client_from(
    addr: std::net::SocketAddr,
    local: &str,
) -> pb::inference_client::InferenceClient<tonic::transport::Channel> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .local_address(Some(local.parse().unwrap()))
        .connect()
        .await
        .unwrap();
    pb::inference_client::InferenceClient::new(channel)
}

fn step(session: &str, request: Option<pb::InferRequest>, receive: bool) -> pb::InferStepRequest {
    pb::InferStepRequest { session: session.into(), request, receive }
}

fn fast_start(key: &ppdnn_paillier::KeyPair) -> pb::InferRequest {
    pb::InferRequest {
        kind: Some(pb::infer_request::Kind::Start(pb::Start {
            key: Some(ppdnn_service::convert::key_to_pb(key.public())),
            mode: pb::Mode::Fast as i32,
            ..Default::default()
        })),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn infer_step_refuses_unknown_sessions_bad_names_and_a_second_start() {
    let addr = start(HttpOptions::default()).await;
    let mut grpc = ppdnn_service::client::grpc_client(&format!("http://{addr}")).await.unwrap();
    let err = grpc.infer_step(step(&"ab".repeat(16), None, true)).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    assert!(err.message().contains("no open session"), "{}", err.message());
    let err = grpc.infer_step(step("not-hex", None, true)).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("lowercase hex"), "{}", err.message());
    // A refused Start (a bad key) that asked for nothing: its status, the
    // one Infer gives, comes back on the session's next call, not a vague
    // "no such session".
    let bad_start = pb::InferRequest {
        kind: Some(pb::infer_request::Kind::Start(pb::Start {
            key: Some(pb::PublicKey { n: vec![0x80; 128], hn: Vec::new() }),
            ..Default::default()
        })),
    };
    let name = session_name().unwrap();
    assert!(grpc.infer_step(step(&name, Some(bad_start), false)).await.is_ok());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let round0 = pb::InferRequest { kind: Some(pb::infer_request::Kind::Round(pb::Round::default())) };
    let err = grpc.infer_step(step(&name, Some(round0), true)).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    // Then the session is gone.
    let err = grpc.infer_step(step(&name, None, true)).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    // An open session cannot be started again (taken over) under its name,
    // nor continued from another address.
    let key = ppdnn_paillier::testing::test_keypair(BITS);
    let name = session_name().unwrap();
    assert!(
        grpc.infer_step(step(&name, Some(fast_start(key)), false))
            .await
            .unwrap()
            .into_inner()
            .round
            .is_none()
    );
    let err = grpc.infer_step(step(&name, Some(fast_start(key)), false)).await.unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists, "{err:?}");
    let mut from_elsewhere = client_from(addr, "127.0.0.2").await;
    let err = from_elsewhere.infer_step(step(&name, None, true)).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_whose_answers_are_never_read_is_forgotten() {
    let quick = ServerConfig {
        idle_timeout: Duration::from_millis(500),
        start_timeout: Duration::from_millis(500),
        session_deadline: Duration::from_secs(2),
        ..test_config()
    };
    let addr = start_with(quick, HttpOptions::default()).await;
    let mut grpc = ppdnn_service::client::grpc_client(&format!("http://{addr}")).await.unwrap();
    let key = ppdnn_paillier::testing::test_keypair(BITS);
    let name = session_name().unwrap();
    grpc.infer_step(step(&name, Some(fast_start(key)), false)).await.unwrap();
    // Calls that keep the session busy cannot keep its entry beyond the
    // deadline plus the start and idle timeouts: it is forgotten.
    let until = Instant::now() + Duration::from_secs(6);
    let mut last = Ok(());
    while Instant::now() < until {
        last = grpc.infer_step(step(&name, None, false)).await.map(|_| ());
        if last.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let err = last.expect_err("the session outlived its deadline");
    assert!(matches!(err.code(), Code::NotFound | Code::DeadlineExceeded), "{err:?}");
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
    // Served either way, the page is cross-origin isolated, so that its
    // workers may share memory (the threaded client).
    for addr in [with, built] {
        let (head, _) = http(addr, &get(addr), b"").await;
        assert!(head.contains("cross-origin-opener-policy: same-origin"), "{head}");
        assert!(head.contains("cross-origin-embedder-policy: require-corp"), "{head}");
        assert!(head.contains("content-security-policy: frame-ancestors 'self'"), "{head}");
    }
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

/// One HTTP/2 POST (prior knowledge, as over TLS with ALPN h2) of an
/// empty gRPC frame with this content type; the response status.
async fn h2_post(addr: std::net::SocketAddr, content_type: &str) -> u16 {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (client, conn) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(conn);
    let mut client = client.ready().await.unwrap();
    let req = http::Request::post(format!("http://{addr}/ppdnn.v1.Inference/ListModels"))
        .header("content-type", content_type)
        .header("te", "trailers")
        .header("origin", "https://evil.example")
        .body(())
        .unwrap();
    let (resp, mut body) = client.send_request(req, false).unwrap();
    body.send_data(bytes::Bytes::from_static(&[0, 0, 0, 0, 0]), true).unwrap();
    resp.await.unwrap().status().as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_without_a_grpc_content_type_is_refused_even_over_http2() {
    let addr = start(HttpOptions::default()).await;
    // A page of any origin may send text/plain without a CORS preflight:
    // such a call must not reach the service.
    assert_eq!(h2_post(addr, "text/plain").await, 415);
    // Control: the same call as gRPC is served.
    assert_eq!(h2_post(addr, "application/grpc").await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_cannot_fill_the_session_table() {
    let addr = start_with(ServerConfig { max_sessions: 2, ..test_config() }, HttpOptions::default()).await;
    let mut grpc = ppdnn_service::client::grpc_client(&format!("http://{addr}")).await.unwrap();
    let key = ppdnn_paillier::testing::test_keypair(BITS);
    for _ in 0..2 {
        grpc.infer_step(step(&session_name().unwrap(), Some(fast_start(key)), false)).await.unwrap();
    }
    let err =
        grpc.infer_step(step(&session_name().unwrap(), Some(fast_start(key)), false)).await.unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    assert!(err.message().contains("this address"), "{}", err.message());
    // Another address still gets its share.
    let mut elsewhere = client_from(addr, "127.0.0.2").await;
    elsewhere.infer_step(step(&session_name().unwrap(), Some(fast_start(key)), false)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_that_have_ended_do_not_hold_the_table() {
    // Refused Starts (no key: they end at once and cost the server nothing)
    // must not keep a client, or everyone, out of the table.
    let addr = start_with(ServerConfig { max_sessions: 2, ..test_config() }, HttpOptions::default()).await;
    let mut grpc = ppdnn_service::client::grpc_client(&format!("http://{addr}")).await.unwrap();
    let refused = pb::InferRequest { kind: Some(pb::infer_request::Kind::Start(pb::Start::default())) };
    let names: Vec<String> = (0..12).map(|_| session_name().unwrap()).collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    for name in &names {
        // While the last ones have not ended yet, this address's share may
        // be full for a moment; not for long (entries that are kept stay
        // for the idle and start timeouts, 40 s).
        while let Err(e) = grpc.infer_step(step(name, Some(refused.clone()), false)).await {
            assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
            assert!(Instant::now() < deadline, "refused Starts hold the table: {e:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    // The refused sessions end within moments (on a loaded machine, give
    // them a few seconds); their entries would otherwise stay for the idle
    // and start timeouts (40 s).
    let key = ppdnn_paillier::testing::test_keypair(BITS);
    for _ in 0..2 {
        loop {
            match grpc.infer_step(step(&session_name().unwrap(), Some(fast_start(key)), false)).await {
                Ok(_) => break,
                Err(e) if e.code() == Code::ResourceExhausted && Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await
                }
                Err(e) => panic!("a Start after refused ones: {e:?}"),
            }
        }
    }
    // Live sessions still count: the address's share (2) is taken.
    let err =
        grpc.infer_step(step(&session_name().unwrap(), Some(fast_start(key)), false)).await.unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
}
