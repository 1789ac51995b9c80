//! The private mode: exact logits and labels, what the client sees, and
//! what each side does with malformed messages.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use ppdnn_model::dataset::{Dataset, DatasetKind, Split};
use ppdnn_model::lenet::argmax;
use ppdnn_model::modelfile::ModelFile;
use ppdnn_paillier::{KeyPair, KeyPolicy, RandomnessPool, generate_keypair};
use ppdnn_protocol::private::Output;
use ppdnn_protocol::private::client::PrivateClientSession;
use ppdnn_protocol::{ClientStep, Evaluator, Mode, Packing};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn model() -> &'static ModelFile {
    static M: OnceLock<ModelFile> = OnceLock::new();
    M.get_or_init(|| ModelFile::load(&root().join("models/lenet5-mnist.safetensors")).expect("shipped model"))
}

fn test_set() -> &'static Dataset {
    static D: OnceLock<Dataset> = OnceLock::new();
    D.get_or_init(|| Dataset::load(&root().join("data/mnist"), DatasetKind::Mnist, Split::Test).unwrap())
}

fn key(bits: u32) -> &'static KeyPair {
    static K1: OnceLock<KeyPair> = OnceLock::new();
    static K2: OnceLock<KeyPair> = OnceLock::new();
    let cell = if bits == 2048 { &K2 } else { &K1 };
    cell.get_or_init(|| generate_keypair(bits, KeyPolicy::INSECURE_TESTING).unwrap())
}

fn evaluator(bits: u32) -> Evaluator {
    Evaluator::for_mode(Arc::new(model().quant.clone()), bits, Packing::Packed, Mode::Private).unwrap()
}

/// Runs one private inference in process.
fn run(ev: &Evaluator, pair: &KeyPair, image: &[u8], output: Output) -> ClientStep {
    let sk = Arc::new(pair.private.clone());
    let pool = Arc::new(RandomnessPool::new(pair.public()));
    let circuits = ev.circuits().unwrap().clone();
    let mut client = PrivateClientSession::new(ev.plan().clone(), circuits, sk, pool, output).unwrap();
    let (mut server, mut answer) = ev.private_session(pair.public().clone(), output).unwrap();
    client.start(image).unwrap();
    loop {
        match client.receive(&answer).unwrap() {
            ClientStep::Send(next) => answer = server.handle(&next).unwrap(),
            done => {
                assert!(server.finished());
                return done;
            }
        }
    }
}

#[test]
fn private_logits_and_labels_equal_the_plaintext_models_at_1024_bits() {
    let ev = evaluator(1024);
    let pair = key(1024);
    let data = test_set();
    for i in 0..3 {
        let image = data.image(i);
        let want = model().quant.logits(image).unwrap();
        let t = Instant::now();
        assert_eq!(run(&ev, pair, image, Output::Logits), ClientStep::Done(want.clone()), "image {i}");
        eprintln!("image {i}: {:?}", t.elapsed());
        assert_eq!(run(&ev, pair, image, Output::Label), ClientStep::Label(argmax(&want)), "image {i}");
    }
}
