//! Writes the seed inputs of the fuzz corpora (`fuzz/corpus/<target>/seed-*`):
//! real messages from a real protocol run, so that the fuzzers start from
//! inputs that pass validation and explore what lies behind it.
//!
//! `cargo run --release -p ppdnn-fuzz-targets --example make-seeds`

use std::path::PathBuf;
use std::sync::Arc;

use ppdnn_fuzz_targets::{BITS, join_messages, model, plan, test_key};
use ppdnn_paillier::keyfile::{private_key_to_json, public_key_to_json};
use ppdnn_paillier::{RandomnessPool, to_fixed_bytes};
use ppdnn_protocol::{ClientStep, Packing, Plan, RoundMessage, fast::FastClientSession};
use ppdnn_service::pb::{self, infer_request};
use prost::Message;

fn write(target: &str, name: &str, data: &[u8]) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus").join(target);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("seed-{name}")), data).unwrap();
}

fn main() {
    let key = test_key();
    let pk = key.public_key();
    let plan = plan();
    let width = pk.ciphertext_bytes();

    // plan_json: the real plans, and a one-layer variant.
    write("plan_json", "lenet5-512", plan.to_json().as_bytes());
    let p2048 = Plan::new(&model().quant, 2048, Packing::Packed).unwrap();
    write("plan_json", "lenet5-2048", p2048.to_json().as_bytes());
    let unpacked = Plan::new(&model().quant, BITS, Packing::Unpacked).unwrap();
    write("plan_json", "lenet5-512-unpacked", unpacked.to_json().as_bytes());

    // key_decoders: public and private key files, and the wire key.
    write("key_decoders", "public", &[&[0u8][..], public_key_to_json(pk).as_bytes()].concat());
    write("key_decoders", "private", &[&[1u8][..], private_key_to_json(key).as_bytes()].concat());
    let wire =
        pb::PublicKey { n: to_fixed_bytes(pk.n(), width / 2), hn: to_fixed_bytes(pk.hn().unwrap(), width) };
    write("key_decoders", "wire", &[&[2u8][..], &wire.encode_to_vec()[..]].concat());

    // round_message: the server's genuine answers for every round, from an
    // in-process run of the protocol on test image 0's pixels (all 0..255).
    let ev = ppdnn_protocol::Evaluator::new(Arc::new(model().quant.clone()), BITS, Packing::Packed).unwrap();
    let mut server = ev.session(pk.clone()).unwrap();
    let pool = Arc::new(RandomnessPool::new(pk));
    let mut client = FastClientSession::new(plan.clone(), Arc::new(key.clone()), pool).unwrap();
    let image: Vec<u8> = (0..784).map(|i| ((i * 7) % 256) as u8).collect();
    let first = client.start(&image).unwrap();
    let mut outgoing = first.clone();
    loop {
        let answer = server.handle(&outgoing).unwrap();
        write(
            "round_message",
            &format!("round{}", answer.round),
            &[&[answer.round as u8][..], &answer.data[..]].concat(),
        );
        match client.receive(&answer).unwrap() {
            ClientStep::Send(next) => outgoing = next,
            ClientStep::Done(_) | ClientStep::Label(_) => break,
        }
    }

    // server_stream: Start alone; Start and a genuine round 0 in one chunk;
    // the same in chunks of 100 ciphertexts.
    let start = pb::InferRequest {
        kind: Some(infer_request::Kind::Start(pb::Start {
            model: String::new(),
            key: Some(wire.clone()),
            packing: pb::Packing::Packed as i32,
            model_digest: plan.model_digest.clone(),
            mode: pb::Mode::Fast as i32,
            output: pb::Output::Logits as i32,
            modulus_proof: Vec::new(),
            factor_proof: Vec::new(),
            factor_params_digest: Vec::new(),
        })),
    };
    let round = |data: &[u8], last: bool| {
        pb::InferRequest {
            kind: Some(infer_request::Kind::Round(pb::Round {
                round: 0,
                ciphertexts: data.to_vec(),
                last,
                material: Vec::new(),
            })),
        }
        .encode_to_vec()
    };
    write("server_stream", "start", &join_messages(&[start.encode_to_vec()]));
    write("server_stream", "round0", &join_messages(&[start.encode_to_vec(), round(&first.data, true)]));
    let mut chunked = vec![start.encode_to_vec()];
    let pieces: Vec<&[u8]> = first.data.chunks(100 * width).collect();
    for (i, piece) in pieces.iter().enumerate() {
        chunked.push(round(piece, i + 1 == pieces.len()));
    }
    write("server_stream", "round0-chunked", &join_messages(&chunked));

    // private_rounds: the genuine messages of the first rounds in both
    // directions, and a private Start for the server stream.
    let ev = ppdnn_fuzz_targets::private_evaluator();
    let circuits = ev.circuits().unwrap().clone();
    let sk = Arc::new(key.clone());
    let pool = Arc::new(RandomnessPool::new(pk));
    let mut client = ppdnn_protocol::private::PrivateClientSession::new(
        ev.plan().clone(),
        circuits,
        sk,
        pool,
        ppdnn_protocol::Output::Logits,
    )
    .unwrap();
    client.start(&[0u8; 784]).unwrap();
    let (mut server, mut incoming) = ev.private_session(pk.clone(), ppdnn_protocol::Output::Logits).unwrap();
    let seed = |selector: u8, m: &RoundMessage| {
        let len = (m.material.len().min(u16::MAX as usize) as u16).to_le_bytes();
        [&[selector][..], &len[..], &m.material[..len_of(m)], &m.data[..]].concat()
    };
    for k in 0..3u8 {
        write("private_rounds", &format!("client-round{k}"), &seed(2 * k + 1, &incoming));
        let ClientStep::Send(m) = client.receive(&incoming).unwrap() else { panic!("round {k} is sent") };
        write("private_rounds", &format!("server-round{k}"), &seed(2 * k, &m));
        incoming = server.handle(&m).unwrap();
    }
    let mut private_start = start.clone();
    if let Some(infer_request::Kind::Start(s)) = private_start.kind.as_mut() {
        s.mode = pb::Mode::Private as i32;
    }
    write("server_stream", "private-start", &join_messages(&[private_start.encode_to_vec()]));
    println!("seeds written");
}

/// Material bytes a seed keeps (its length field is 16 bits).
fn len_of(m: &RoundMessage) -> usize {
    m.material.len().min(u16::MAX as usize)
}
