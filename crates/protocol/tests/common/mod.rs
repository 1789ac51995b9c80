//! Helpers shared by the protocol's integration tests: the shipped model and
//! data and the test keys come from the crates' own test support
//! (`ppdnn_model::testing`, `ppdnn_paillier::testing`).

#![allow(dead_code, unused_imports)] // each test binary uses its own share of the helpers

use ppdnn_model::dataset::Dataset;
use ppdnn_model::modelfile::ModelFile;
use ppdnn_model::network::Network;
use ppdnn_model::quant::QuantModel;
use ppdnn_paillier::KeyPair;

pub use ppdnn_model::testing::{random_inputs, random_network, random_quant_model};

/// The shipped MNIST model.
pub fn model() -> &'static ModelFile {
    ppdnn_model::testing::shipped_model()
}

/// The MNIST test set shipped in data/mnist.
pub fn test_set() -> &'static Dataset {
    ppdnn_model::testing::mnist_test_set()
}

/// A test key pair of `bits` bits, made once per size.
pub fn key(bits: u32) -> &'static KeyPair {
    ppdnn_paillier::testing::test_keypair(bits)
}

/// A LeNet-5 with random weights (xorshift from `seed`), quantized on one
/// image of `data`.
pub fn random_model(seed: u64, data: &Dataset) -> QuantModel {
    random_quant_model(Network::lenet5(), seed, data.image(100))
}

/// Runs one inference in this process, in the evaluator's mode, through
/// the one session interface; checks that the server is done too.
pub fn run(
    ev: &ppdnn_protocol::Evaluator,
    pair: &KeyPair,
    image: &[u8],
    output: ppdnn_protocol::Output,
) -> ppdnn_protocol::ClientStep {
    use std::sync::Arc;
    let sk = Arc::new(pair.private.clone());
    let pool = Arc::new(ppdnn_paillier::RandomnessPool::new(pair.public()));
    let mut client = ppdnn_protocol::ClientSession::new(ev.session_plan(), sk, pool, output).unwrap();
    let (mut server, opening) = ev.start(pair.public().clone(), output).unwrap();
    let run = ppdnn_protocol::run_in_process(&mut client, &mut server, opening, image).unwrap();
    assert!(server.finished(), "the client finished before the server");
    run.outcome
}

/// Which way a message travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    /// Client to server.
    ToServer,
    /// Server to client.
    ToClient,
}

/// What a session driven by [`drive`] did.
#[derive(Debug, Default)]
pub struct Trace {
    /// The client's result, if it got one.
    pub outcome: Option<ppdnn_protocol::ClientStep>,
    /// The server's refusal: the client round it refused and its message.
    pub refused: Option<(usize, String)>,
    /// The client's own error, if it stopped.
    pub client_error: Option<String>,
    /// Every message the server sent (as delivered).
    pub server_messages: Vec<ppdnn_protocol::RoundMessage>,
    /// Every message the client sent (as delivered).
    pub client_messages: Vec<ppdnn_protocol::RoundMessage>,
}

/// Runs one session of the evaluator's mode through the real session code,
/// with `hook` seeing (and free to change) every message before it is
/// delivered: a cheating client is the honest one plus one change made here.
pub fn drive(
    ev: &ppdnn_protocol::Evaluator,
    pair: &KeyPair,
    image: &[u8],
    output: ppdnn_protocol::Output,
    hook: impl FnMut(Dir, &mut ppdnn_protocol::RoundMessage),
) -> Trace {
    drive_weakened(ev, pair, image, output, &[], hook)
}

/// [`drive`] against a weaker server, with `left_out` left out of its
/// verdict: the control that shows an attack test would catch the attack.
#[allow(dead_code)] // not every test binary has controls
pub fn drive_weakened(
    ev: &ppdnn_protocol::Evaluator,
    pair: &KeyPair,
    image: &[u8],
    output: ppdnn_protocol::Output,
    left_out: &[ppdnn_protocol::private::LeftOut],
    mut hook: impl FnMut(Dir, &mut ppdnn_protocol::RoundMessage),
) -> Trace {
    use ppdnn_protocol::ClientStep;
    use std::sync::Arc;
    let sk = Arc::new(pair.private.clone());
    let pool = Arc::new(ppdnn_paillier::RandomnessPool::new(pair.public()));
    let mut client = ppdnn_protocol::ClientSession::new(ev.session_plan(), sk, pool, output).unwrap();
    let (mut server, opening) = ev.start(pair.public().clone(), output).unwrap();
    if let ppdnn_protocol::ServerSession::Private(s) = &mut server {
        for &check in left_out {
            s.hazmat_leave_out(check);
        }
    }
    let mut trace = Trace::default();
    let mut incoming = match client.start(image).unwrap() {
        Some(mut first) => {
            hook(Dir::ToServer, &mut first);
            trace.client_messages.push(first.clone());
            server.handle(&first).unwrap()
        }
        None => opening.expect("a mode where the server speaks first opens"),
    };
    loop {
        hook(Dir::ToClient, &mut incoming);
        trace.server_messages.push(incoming.clone());
        match client.receive(&incoming) {
            Err(e) => {
                trace.client_error = Some(e.to_string());
                return trace;
            }
            Ok(ClientStep::Send(mut m)) => {
                hook(Dir::ToServer, &mut m);
                trace.client_messages.push(m.clone());
                match server.handle(&m) {
                    Ok(a) => incoming = a,
                    Err(e) => {
                        trace.refused = Some((m.round, e.to_string()));
                        return trace;
                    }
                }
            }
            Ok(step) => {
                trace.outcome = Some(step);
                return trace;
            }
        }
    }
}

/// The attack tests' small CNN: conv 1->2 (3x3) on 1x6x6, ReLU, dense 3. Two layers: the
/// client rounds are 0 (base OT), 1 (extension), 2 (layer 0's input), 3
/// (tau_0, layer 0's OT choices), 4 (layer 1's input, layer 0's MACs), 5
/// (tau_1 [, layer 1's OT choices]), 6 ([layer 1's MACs,] D).
pub fn small_cnn() -> Network {
    let layers = vec![
        ppdnn_model::network::Layer {
            name: "conv1".into(),
            linear: ppdnn_model::network::Linear::Conv2d {
                out_channels: 2,
                kernel: [3, 3],
                stride: [1, 1],
                padding: [0; 4],
            },
            relu: true,
            pool: None,
            shortcut: None,
        },
        ppdnn_model::network::Layer {
            name: "out".into(),
            linear: ppdnn_model::network::Linear::Dense { outputs: 3 },
            relu: false,
            pool: None,
            shortcut: None,
        },
    ];
    Network::new(ppdnn_model::network::Shape::new(1, 6, 6), layers).expect("a valid network")
}
