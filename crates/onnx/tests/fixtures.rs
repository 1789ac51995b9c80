//! The ONNX fixtures (made by scripts/onnx_fixtures.py with the `onnx`
//! package, expected outputs from onnxruntime): each imports to a float
//! network whose outputs equal onnxruntime's to 1e-4, exports and imports
//! back unchanged, and as an integer model is served exactly in both
//! protocol modes (the residual networks too); graphs ppdnn does not read
//! are refused naming the node.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ppdnn_model::quant::{QuantModel, softmax};
use ppdnn_onnx::{Error, ImportOptions, InputScale, import};
use ppdnn_paillier::{KeyPair, KeyPolicy, RandomnessPool, generate_keypair};
use ppdnn_protocol::Output;
use ppdnn_protocol::private::PrivateClientSession;
use ppdnn_protocol::{ClientStep, Evaluator, Mode, Packing, fast::FastClientSession};

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

struct Fixture {
    name: String,
    bytes: Vec<u8>,
    meta: serde_json::Value,
}

impl Fixture {
    fn options(&self) -> ImportOptions {
        let byte = self.meta["byte"].as_bool().unwrap_or(false);
        let floats =
            |k: &str| -> Vec<f32> { serde_json::from_value(self.meta[k].clone()).unwrap_or_default() };
        ImportOptions {
            input_shape: None,
            input_scale: if byte { InputScale::Byte } else { InputScale::Unit },
            mean: floats("mean"),
            std: floats("std"),
        }
    }

    fn pixels(&self) -> Vec<Vec<u8>> {
        serde_json::from_value(self.meta["pixels"].clone()).unwrap()
    }
}

fn fixtures() -> Vec<Fixture> {
    let mut names: Vec<String> = std::fs::read_dir(data())
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok()?.strip_suffix(".onnx").map(str::to_string))
        .collect();
    names.sort();
    assert!(names.len() >= 10, "the fixtures are in the repository: {names:?}");
    names
        .into_iter()
        .map(|name| Fixture {
            bytes: std::fs::read(data().join(format!("{name}.onnx"))).unwrap(),
            meta: serde_json::from_str(
                &std::fs::read_to_string(data().join(format!("{name}.json"))).unwrap(),
            )
            .unwrap(),
            name,
        })
        .collect()
}

fn key() -> &'static KeyPair {
    ppdnn_paillier::testing::test_keypair(1024)
}

#[test]
fn imported_networks_compute_what_onnxruntime_computes() {
    for f in fixtures().iter().filter(|f| f.meta.get("refused").is_none()) {
        let imported = import(&f.bytes, &f.options()).unwrap_or_else(|e| panic!("{}: {e}", f.name));
        let expected: Vec<Vec<f64>> = serde_json::from_value(f.meta["expected"].clone()).unwrap();
        for (pixels, want) in f.pixels().iter().zip(&expected) {
            let logits = imported.model.logits(pixels).unwrap();
            let got: Vec<f64> = if f.meta["softmax"].as_bool().unwrap_or(false) {
                softmax(&logits.iter().map(|&v| v as f64).collect::<Vec<_>>())
            } else {
                logits.iter().map(|&v| v as f64).collect()
            };
            assert_eq!(got.len(), want.len(), "{}", f.name);
            for (g, w) in got.iter().zip(want) {
                assert!(
                    (g - w).abs() <= 1e-4 * w.abs().max(1.0),
                    "{}: {got:?} vs onnxruntime {want:?}",
                    f.name
                );
            }
        }
    }
}

#[test]
fn exported_networks_import_back_unchanged() {
    for f in fixtures().iter().filter(|f| f.meta.get("refused").is_none()) {
        let model = import(&f.bytes, &f.options()).unwrap().model;
        let again = import(&ppdnn_onnx::export(&model), &ImportOptions::default()).unwrap();
        assert_eq!(again.model, model, "{}", f.name);
        assert!(again.notes.is_empty(), "{}: {:?}", f.name, again.notes);
    }
}

/// Every fixture marked "refused" (an unsupported operator, a Concat of
/// branches, a shortcut of two layers, an Add after a ReLU) is refused
/// naming the node its metadata names.
#[test]
fn refused_fixtures_name_their_node() {
    let refused: Vec<Fixture> = fixtures().into_iter().filter(|f| f.meta.get("refused").is_some()).collect();
    assert!(refused.len() >= 4, "{}", refused.len());
    for f in refused {
        match import(&f.bytes, &f.options()) {
            Err(Error::Unsupported { node, .. }) => assert_eq!(node, f.meta["refused"], "{}", f.name),
            other => panic!("{}: {other:?}", f.name),
        }
    }
}

/// The residual fixtures import with their shortcuts: identity or
/// projection (stride 2 to more channels, or stride 1), from the block's
/// input, on the block's second convolution.
#[test]
fn residual_fixtures_import_their_shortcuts() {
    use ppdnn_model::network::Shortcut;
    // Per fixture: the layers with a shortcut, its source and projection.
    type Shortcuts = &'static [(&'static str, &'static str, Option<[usize; 2]>)];
    let cases: [(&str, Shortcuts); 3] = [
        ("residual_identity_maxpool", &[("block.conv2", "stem", None)]),
        (
            "residual_projection_stride2",
            &[("layer1.0.conv2", "stem", None), ("layer2.0.conv2", "layer1.0.conv2", Some([2, 2]))],
        ),
        ("residual_projection_first", &[("b1.conv2", "stem", Some([1, 1])), ("b2.conv2", "b1.conv2", None)]),
    ];
    for (name, want) in cases {
        let f = fixtures().into_iter().find(|f| f.name == name).unwrap();
        let net = import(&f.bytes, &f.options()).unwrap().model.network;
        let with_shortcut: Vec<_> = net.layers().iter().filter(|l| l.shortcut.is_some()).collect();
        let got: Vec<(&str, Option<Shortcut>)> =
            with_shortcut.iter().map(|l| (l.name.as_str(), l.shortcut.clone())).collect();
        let want: Vec<(&str, Option<Shortcut>)> = want
            .iter()
            .map(|&(layer, from, projection)| (layer, Some(Shortcut { from: from.into(), projection })))
            .collect();
        assert_eq!(got, want, "{name}");
        assert!(with_shortcut.iter().all(|l| l.relu), "{name}: the ReLU after the Add");
    }
}

#[test]
fn unsupported_operators_are_refused_by_name() {
    let f = fixtures().into_iter().find(|f| f.name == "unsupported_sigmoid").unwrap();
    let e = import(&f.bytes, &ImportOptions::default()).unwrap_err().to_string();
    assert!(e.contains("squash") && e.contains("Sigmoid") && e.contains("not supported"), "{e}");
    assert!(
        import(b"not a model", &ImportOptions::default())
            .unwrap_err()
            .to_string()
            .contains("not an ONNX model")
    );
    // A mean before a zero-padded first convolution becomes a bias map, one per accumulator.
    let padded = fixtures().into_iter().find(|f| f.name == "conv_stride_pad").unwrap();
    let options = ImportOptions { mean: vec![0.1307], std: vec![0.3081], ..ImportOptions::default() };
    let imported = import(&padded.bytes, &options).unwrap();
    assert_eq!(imported.model.layers[0].bias.len(), imported.model.network.shapes()[0].output.len());
    assert!(imported.notes.iter().any(|n| n.contains("bias map")), "{:?}", imported.notes);
    // Normalization values must fit the input's channels.
    let two = ImportOptions { mean: vec![0.1, 0.2], ..ImportOptions::default() };
    let e = import(&padded.bytes, &two).unwrap_err().to_string();
    assert!(e.contains("2 values for 1 input channels"), "{e}");
    let zero = ImportOptions { std: vec![0.0], ..ImportOptions::default() };
    assert!(import(&padded.bytes, &zero).unwrap_err().to_string().contains("positive"));
}

fn served(ev: &Evaluator, input: &[u8], private: bool) -> ClientStep {
    served_with(ev, key(), input, private)
}

fn served_with(ev: &Evaluator, pair: &KeyPair, input: &[u8], private: bool) -> ClientStep {
    let sk = Arc::new(pair.private.clone());
    let pool = Arc::new(RandomnessPool::new(pair.public()));
    if private {
        let circuits = ev.circuits().unwrap().clone();
        let mut client =
            PrivateClientSession::new(ev.plan().clone(), circuits, sk, pool, Output::Logits).unwrap();
        let (mut server, mut answer) = ev.private_session(pair.public().clone(), Output::Logits).unwrap();
        client.start(input).unwrap();
        loop {
            match client.receive(&answer).unwrap() {
                ClientStep::Send(next) => answer = server.handle(&next).unwrap(),
                done => return done,
            }
        }
    }
    let mut client = FastClientSession::new(ev.plan().clone(), sk, pool).unwrap();
    let mut server = ev.session(pair.public().clone()).unwrap();
    let mut msg = client.start(input).unwrap();
    loop {
        match client.receive(&server.handle(&msg).unwrap()).unwrap() {
            ClientStep::Send(next) => msg = next,
            done => return done,
        }
    }
}

#[test]
fn imported_integer_models_are_served_exactly_in_both_modes() {
    for f in fixtures().iter().filter(|f| f.meta.get("refused").is_none()) {
        let float = import(&f.bytes, &f.options()).unwrap().model;
        let pixels = f.pixels();
        let quant = Arc::new(QuantModel::quantize(&float, &pixels.concat()).unwrap());
        let input = &pixels[0];
        let want = ClientStep::Done(quant.logits(input).unwrap());
        let fast = Evaluator::new(quant.clone(), 1024, Packing::Packed).unwrap();
        assert_eq!(served(&fast, input, false), want, "{} fast", f.name);
        let private = Evaluator::for_mode(quant.clone(), 1024, Packing::Packed, Mode::Private).unwrap();
        assert_eq!(served(&private, input, true), want, "{} private", f.name);
    }
}

/// A few 2048-bit cases: the whole fixture networks (max pooling and
/// stride-2 convolutions; three channels with batch norm and both poolings)
/// at the production key size, both modes.
#[test]
fn whole_fixture_networks_at_2048_bits() {
    let pair = generate_keypair(2048, KeyPolicy::INSECURE_TESTING).unwrap();
    for f in fixtures().iter().filter(|f| ["cnn_maxpool_stride2", "rgb_cnn"].contains(&f.name.as_str())) {
        let float = import(&f.bytes, &f.options()).unwrap().model;
        let pixels = f.pixels();
        let quant = Arc::new(QuantModel::quantize(&float, &pixels.concat()).unwrap());
        for input in &pixels[..2] {
            let want = ClientStep::Done(quant.logits(input).unwrap());
            for mode in [Mode::Fast, Mode::Private] {
                let ev = Evaluator::for_mode(quant.clone(), 2048, Packing::Packed, mode).unwrap();
                assert_eq!(
                    served_with(&ev, &pair, input, mode == Mode::Private),
                    want,
                    "{} {mode:?}",
                    f.name
                );
            }
        }
    }
}
