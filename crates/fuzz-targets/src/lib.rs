//! # ppdnn-fuzz-targets
//!
//! The bodies of ppdnn's fuzz targets: every decoder of input from outside,
//! driven by arbitrary bytes. cargo-fuzz (`fuzz/`, nightly) calls these
//! functions; the `replay` test of this crate runs every file of the stored
//! corpora (`fuzz/corpus/<target>/`) and of the found crashes
//! (`fuzz/regressions/<target>/`) through them on the stable toolchain, so
//! the README's test command replays them.
//!
//! Each function must return normally on any input: an error is a result,
//! a panic, an abort or a hang is a bug.
//!
//! Fixtures: a 512-bit test key (`data/key-512.json`, made for this purpose,
//! never for real use) and the shipped LeNet-5 model, loaded once.
#![forbid(unsafe_code)]

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use ppdnn_model::modelfile::ModelFile;
use ppdnn_paillier::keyfile::{private_key_from_json, public_key_from_json};
use ppdnn_paillier::{Integer, KeyPolicy, PrivateKey, RandomnessPool};
use ppdnn_protocol::Output;
use ppdnn_protocol::private::PrivateClientSession;
use ppdnn_protocol::{
    ClientStep, Evaluator, Mode, Packing, Plan, RoundMessage, fast::FastClientSession, pack_inputs,
    unpack_outputs,
};
use ppdnn_service::pb;
use ppdnn_service::{InferenceService, ServedModel, ServerConfig, inference_service};
use prost::Message;
use tokio_stream::StreamExt;

/// The names of the targets, as cargo-fuzz and the corpus folders know them.
pub const TARGETS: [&str; 6] =
    ["round_message", "key_decoders", "plan_json", "server_stream", "private_rounds", "onnx_import"];

/// Runs target `name` on `data`; false if there is no such target.
pub fn run(name: &str, data: &[u8]) -> bool {
    match name {
        "round_message" => round_message(data),
        "key_decoders" => key_decoders(data),
        "plan_json" => plan_json(data),
        "server_stream" => server_stream(data),
        "private_rounds" => private_rounds(data),
        "onnx_import" => onnx_import(data),
        _ => return false,
    }
    true
}

/// The key size of the fixtures.
pub const BITS: u32 = 512;

/// The 512-bit test key pair.
pub fn test_key() -> &'static PrivateKey {
    static KEY: OnceLock<PrivateKey> = OnceLock::new();
    KEY.get_or_init(|| {
        private_key_from_json(include_str!("../data/key-512.json"), KeyPolicy::INSECURE_TESTING)
            .expect("the shipped 512-bit test key is valid")
    })
}

/// The shipped LeNet-5 model.
pub fn model() -> &'static ModelFile {
    static MODEL: OnceLock<ModelFile> = OnceLock::new();
    MODEL.get_or_init(|| {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../models/lenet5-mnist.safetensors");
        ModelFile::load(std::path::Path::new(path)).expect("the shipped model loads")
    })
}

/// The model's packed plan for 512-bit keys.
pub fn plan() -> &'static Arc<Plan> {
    static PLAN: OnceLock<Arc<Plan>> = OnceLock::new();
    PLAN.get_or_init(|| {
        Arc::new(Plan::new(&model().quant, BITS, Packing::Packed).expect("a plan for 512 bits"))
    })
}

/// The model's private-mode evaluator for 512-bit keys (plan and circuits).
pub fn private_evaluator() -> &'static Evaluator {
    static EV: OnceLock<Evaluator> = OnceLock::new();
    EV.get_or_init(|| {
        Evaluator::for_mode(Arc::new(model().quant.clone()), BITS, Packing::Packed, Mode::Private)
            .expect("a private plan for 512 bits")
    })
}

/// A private client that has encrypted test image 0, and the server's
/// genuine setup for it.
fn private_pair(
    output: Output,
) -> (PrivateClientSession, ppdnn_protocol::private::PrivateServerSession, RoundMessage) {
    let ev = private_evaluator();
    let key = Arc::new(test_key().clone());
    let pool = Arc::new(RandomnessPool::new(key.public_key()));
    let circuits = ev.circuits().expect("a private evaluator has circuits").clone();
    let mut client = PrivateClientSession::new(ev.plan().clone(), circuits, key.clone(), pool, output)
        .expect("a session for the evaluator's own plan");
    client.start(&[0u8; 784]).expect("a blank image encrypts");
    let (server, setup) =
        ev.private_session(key.public_key().clone(), output).expect("a session for a valid key");
    (client, server, setup)
}

/// The private mode's messages: an honest session runs up to a message
/// chosen by the first byte (bit 0: 0 for one the server receives, 1 for
/// one the client receives; the rest: its round, 0 to 5), which is replaced
/// by the fuzzed one: two bytes of material length, the material, then
/// ciphertext bytes. Both sides must refuse bad messages cleanly.
pub fn private_rounds(data: &[u8]) {
    let Some((&selector, payload)) = data.split_first() else { return };
    let Some((len, rest)) = payload.split_first_chunk::<2>() else { return };
    let len = (u16::from_le_bytes(*len) as usize).min(rest.len());
    let (material, ciphertexts) = rest.split_at(len);
    let to_server = selector & 1 == 0;
    let target = (selector >> 1) as usize % 6;
    let fuzzed = |round| RoundMessage { round, data: ciphertexts.to_vec(), material: material.to_vec() };
    let (mut client, mut server, mut incoming) = private_pair(Output::Logits);
    for k in 0..=target {
        if !to_server && k == target {
            let _ = client.receive(&fuzzed(k));
            return;
        }
        let Ok(ClientStep::Send(m)) = client.receive(&incoming) else { return };
        if to_server && k == target {
            let _ = server.handle(&fuzzed(k));
            return;
        }
        let Ok(answer) = server.handle(&m) else { return };
        incoming = answer;
    }
}

/// A server's answer as the client decodes it: the first byte picks the
/// round, the rest is the round's payload. Validation, decryption, slot
/// unpacking and the accumulator bound check must reject bad data cleanly.
pub fn round_message(data: &[u8]) {
    let Some((&selector, payload)) = data.split_first() else { return };
    let plan = plan();
    let round = selector as usize % plan.layers.len();
    let layer = &plan.layers[round];
    let key = test_key();
    let message = RoundMessage { round, data: payload.to_vec(), material: Vec::new() };
    let Ok(cts) = message.ciphertexts(key.public_key(), round, layer.output_ciphertexts) else { return };
    let plain: Vec<Integer> = cts.iter().map(|c| key.decrypt(c)).collect();
    if let Ok(acc) = unpack_outputs(plan.packing, layer, BITS, &plain) {
        let _ = acc.iter().any(|a| a.unsigned_abs() > layer.accumulator_bound.unsigned_abs());
    }
}

/// Key decoders: the first byte picks public key file, private key file or
/// the wire form of a public key (a protobuf `PublicKey`).
pub fn key_decoders(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else { return };
    match selector % 3 {
        0 => {
            if let Ok(text) = std::str::from_utf8(rest) {
                let _ = public_key_from_json(text, KeyPolicy::INSECURE_TESTING);
            }
        }
        1 => {
            if let Ok(text) = std::str::from_utf8(rest) {
                let _ = private_key_from_json(text, KeyPolicy::INSECURE_TESTING);
            }
        }
        _ => {
            if let Ok(key) = pb::PublicKey::decode(rest) {
                let _ = ppdnn_service::convert::key_from_pb(&key, KeyPolicy::INSECURE_TESTING);
            }
        }
    }
}

/// A plan from a server, as a client receives it: parsed and validated, then
/// used (a session for the test key, the derived counts, the input packing).
pub fn plan_json(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(plan) = Plan::from_json(text) else { return };
    let _ = (plan.client_encryptions(), plan.server_ciphertexts(), plan.rounds());
    for layer in &plan.layers {
        let _ = (layer.positions(), layer.chunks(), layer.codec(plan.key_bits));
    }
    let plan = Arc::new(plan);
    let key = Arc::new(test_key().clone());
    let pool = Arc::new(RandomnessPool::new(key.public_key()));
    let _ = FastClientSession::new(plan.clone(), key, pool);
    // Packing a zero input exercises every index of the first layer's layout;
    // it is bounded by the plan limits, and kept small here for speed.
    let first = &plan.layers[0];
    if first.input.len() <= 1 << 16 && first.input_ciphertexts <= 1 << 12 && plan.key_bits <= 4096 {
        let _ = pack_inputs(plan.packing, first, plan.key_bits, &vec![0; first.input.len()]);
    }
}

fn server() -> &'static (tokio::runtime::Runtime, InferenceService) {
    static SERVER: OnceLock<(tokio::runtime::Runtime, InferenceService)> = OnceLock::new();
    SERVER.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let config = ServerConfig {
            key_bits: vec![BITS],
            key_policy: KeyPolicy::INSECURE_TESTING,
            idle_timeout: Duration::from_millis(200),
            start_timeout: Duration::from_millis(200),
            session_deadline: Duration::from_secs(5),
            allow_unpacked: true,
            modes: vec![ppdnn_protocol::Mode::Fast, ppdnn_protocol::Mode::Private],
            ..ServerConfig::default()
        };
        let models = vec![ServedModel { name: "lenet5-mnist".into(), file: model().clone() }];
        let (svc, _) = inference_service(models, config).expect("the service builds");
        (runtime, svc)
    })
}

/// Splits `data` into messages: a 3-byte big-endian length, then that many
/// bytes, repeated; a length past the end takes what is left.
pub fn split_messages(data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut rest = data;
    while rest.len() >= 3 {
        let len = (rest[0] as usize) << 16 | (rest[1] as usize) << 8 | rest[2] as usize;
        rest = &rest[3..];
        let take = len.min(rest.len());
        out.push(&rest[..take]);
        rest = &rest[take..];
    }
    out
}

/// Joins messages in the form [`split_messages`] reads (for making seeds).
pub fn join_messages(messages: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for m in messages {
        let len = m.len();
        assert!(len < 1 << 24, "a message over 16 MiB");
        out.extend_from_slice(&[(len >> 16) as u8, (len >> 8) as u8, len as u8]);
        out.extend_from_slice(m);
    }
    out
}

/// The server's handling of a stream of arbitrary Infer messages: each
/// length-prefixed piece of `data` is decoded as an `InferRequest` (a piece
/// that does not decode arrives as tonic reports it, an INTERNAL status)
/// and fed to the real session logic; the answers are drained.
pub fn server_stream(data: &[u8]) {
    let (runtime, svc) = server();
    let messages: Vec<Result<pb::InferRequest, tonic::Status>> = split_messages(data)
        .into_iter()
        .map(|m| pb::InferRequest::decode(m).map_err(|e| tonic::Status::internal(e.to_string())))
        .collect();
    runtime.block_on(async {
        let Ok(mut answers) = svc.infer_stream(tokio_stream::iter(messages), None) else { return };
        while let Some(answer) = answers.next().await {
            if answer.is_err() {
                break;
            }
        }
    });
}

/// ONNX import of arbitrary bytes (a provider's model file, or anything):
/// an error or a model, never a panic or a hang; a model that imports
/// exports and imports back unchanged.
pub fn onnx_import(data: &[u8]) {
    let options = ppdnn_onnx::ImportOptions::default();
    if let Ok(imported) = ppdnn_onnx::import(data, &options) {
        let again = ppdnn_onnx::import(&ppdnn_onnx::export(&imported.model), &options)
            .expect("an exported model imports");
        assert_eq!(again.model, imported.model, "export then import is the identity");
    }
}
