//! `ppdnn serve` in one process, `ppdnn classify` in another: the encrypted
//! answers equal the plaintext `ppdnn predict` ones.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod common;

fn ppdnn() -> Command {
    common::ppdnn_command()
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// `ppdnn serve` on a free loopback port with 1024-bit test keys and
/// `extra` arguments, once it accepts connections; its URL.
fn serve(extra: &[&str]) -> (Server, String) {
    let addr = format!("127.0.0.1:{}", free_port());
    let mut args = vec!["serve", "--listen", &addr, "--key-bits", "1024", "--insecure-small-keys"];
    args.extend(extra);
    let server = Server(ppdnn().args(&args).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap());
    let start = Instant::now();
    while std::net::TcpStream::connect(&addr).is_err() {
        assert!(start.elapsed() < Duration::from_secs(30), "the server did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    (server, format!("http://{addr}"))
}

fn json(out: std::process::Output) -> serde_json::Value {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn classify_through_a_server_matches_predict() {
    let (server, url) = serve(&["--modes", "private,fast"]);
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key.json");
    let out = ppdnn()
        .args(["key", "generate", "--bits", "1024", "--insecure-small-keys", "--out", key.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success());
    let images = ["examples/digits/0000-7.png", "examples/digits/0008-5.png"];
    let mut args =
        vec!["classify", "--server", &url, "--key", key.to_str().unwrap(), "--insecure-small-keys", "--json"];
    args.extend(images);
    let mut plain_args = vec!["predict", "--json"];
    plain_args.extend(images);
    let plain = json(ppdnn().args(&plain_args).output().unwrap());
    // The default is the private mode when the server offers it; then each mode forced.
    for mode in [None, Some("private"), Some("fast")] {
        let mut a = args.clone();
        if let Some(m) = mode {
            a.extend(["--mode", m]);
        }
        let encrypted = json(ppdnn().args(&a).output().unwrap());
        assert_eq!(encrypted, plain, "classify --json ({mode:?}) and predict --json agree exactly");
    }
    // Label only: the same labels, and nothing else.
    let mut a = args.clone();
    a.extend(["--mode", "private", "--output", "label"]);
    let labels = json(ppdnn().args(&a).output().unwrap());
    for (got, want) in labels.as_array().unwrap().iter().zip(plain.as_array().unwrap()) {
        assert_eq!(got["label"], want["label"]);
        assert_eq!(got["logits"], serde_json::json!([]), "label-only output carries no logits");
        assert_eq!(got["scores"], serde_json::json!([]), "label-only output carries no scores");
    }

    // An unknown model is a clear error, and the server goes on serving.
    let out = ppdnn()
        .args([
            "classify",
            "--server",
            &url,
            "--bits",
            "1024",
            "--insecure-small-keys",
            "--model",
            "nope",
            images[0],
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown model"));
    let out = ppdnn().args(["classify", "--server", "http://127.0.0.1:1", images[0]]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot connect"));
    drop(server);
}

/// A model file of a network other than LeNet-5: 3x12x10 colour input, a
/// stride-2 convolution with asymmetric padding, 3x3/2 max pooling, a 1x1
/// convolution with 2x2 average pooling, dense layers, four classes.
fn write_colour_model(path: &std::path::Path) {
    use ppdnn_model::float::FloatModel;
    use ppdnn_model::network::{FloatParams, Layer, Linear, Network, Pool, PoolKind, Shape};
    let conv = |name: &str, out_channels, kernel, stride, padding, pool| Layer {
        name: name.into(),
        linear: Linear::Conv2d { out_channels, kernel, stride, padding },
        relu: true,
        pool,
        shortcut: None,
    };
    let layers = vec![
        conv(
            "stem",
            6,
            [3, 3],
            [2, 2],
            [1, 1, 0, 1],
            Some(Pool { kind: PoolKind::Max, window: [3, 3], stride: [2, 1] }),
        ),
        conv(
            "mix",
            4,
            [1, 1],
            [1, 1],
            [0; 4],
            Some(Pool { kind: PoolKind::Average, window: [1, 2], stride: [1, 2] }),
        ),
        Layer {
            name: "fc1".into(),
            linear: Linear::Dense { outputs: 8 },
            relu: true,
            pool: None,
            shortcut: None,
        },
        Layer {
            name: "out".into(),
            linear: Linear::Dense { outputs: 4 },
            relu: false,
            pool: None,
            shortcut: None,
        },
    ];
    let network = Network::new(Shape::new(3, 12, 10), layers).unwrap();
    let mut rng = ppdnn_model::testing::Rng(0x9e3779b97f4a7c15);
    let mut next = move || rng.float();
    let params = network
        .layers()
        .iter()
        .zip(network.shapes())
        .map(|(l, sh)| {
            FloatParams::new(
                (0..l.weight_shape(sh.input).iter().product::<usize>()).map(|_| next()).collect(),
                (0..l.bias_len()).map(|_| next() * 0.2).collect(),
            )
        })
        .collect();
    save_random_model(path, FloatModel::new(network, params).unwrap());
}

/// Quantizes `float` (random weights, a 3x12x10 input) on fixed pixels and
/// saves it as a model file at `path`.
fn save_random_model(path: &std::path::Path, float: ppdnn_model::float::FloatModel) {
    let calibration: Vec<u8> = (0..16 * 360).map(|i| (i * 37 % 256) as u8).collect();
    let quant = ppdnn_model::quant::QuantModel::quantize(&float, &calibration).unwrap();
    let file = ppdnn_model::modelfile::ModelFile {
        dataset: ppdnn_model::dataset::DatasetKind::Mnist,
        float,
        quant,
        float_accuracy: 0.0,
        quantized_accuracy: 0.0,
        training: serde_json::json!({"note": "random weights, for tests"}),
    };
    file.save(path).unwrap();
}

#[test]
fn a_colour_network_with_strides_and_max_pooling_is_served_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("colour.safetensors");
    write_colour_model(&model);
    // Inputs: an RGB PNG of the model's size, one twice as large, and a .npy batch.
    let mut img = image::RgbImage::new(10, 12);
    for (x, y, p) in img.enumerate_pixels_mut() {
        *p = image::Rgb([(25 * x) as u8, (20 * y) as u8, ((x * y) % 256) as u8]);
    }
    let png = dir.path().join("small.png");
    img.save(&png).unwrap();
    let big = dir.path().join("big.png");
    image::imageops::resize(&img, 20, 24, image::imageops::FilterType::Nearest).save(&big).unwrap();
    let pixels: Vec<u8> = (0..2 * 360).map(|i| (i * 91 % 256) as u8).collect();
    let npy = dir.path().join("batch.npy");
    std::fs::write(&npy, ppdnn_model::npy::to_npy_u8(&[2, 3, 12, 10], &pixels)).unwrap();
    let inputs = [png.to_str().unwrap(), big.to_str().unwrap(), npy.to_str().unwrap()];
    let model_arg = model.to_str().unwrap();

    let mut predict = vec!["predict", "--model", model_arg, "--json"];
    predict.extend(inputs);
    let plain = json(ppdnn().args(&predict).output().unwrap());
    let plain = plain.as_array().unwrap();
    assert_eq!(plain.len(), 4, "a PNG, a resized PNG and a batch of two");
    assert_eq!(plain[0]["logits"].as_array().unwrap().len(), 4, "four classes");
    // A PNG of another aspect ratio is refused, naming both sizes.
    let square = dir.path().join("square.png");
    image::RgbImage::new(8, 8).save(&square).unwrap();
    let out = ppdnn().args(["predict", "--model", model_arg, square.to_str().unwrap()]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("8x8") && err.contains("10x12"), "{err}");

    let (_server, url) = serve(&["--model", model_arg, "--modes", "private,fast"]);
    for mode in ["private", "fast"] {
        let mut a = vec![
            "classify",
            "--server",
            &url,
            "--bits",
            "1024",
            "--insecure-small-keys",
            "--model",
            "colour",
            "--mode",
            mode,
            "--json",
        ];
        a.extend(inputs);
        let encrypted = json(ppdnn().args(&a).output().unwrap());
        assert_eq!(encrypted.as_array().unwrap(), plain, "{mode}: classify and predict agree exactly");
    }
}

/// A residual network (ResNet-style: identity and stride-2 projection
/// shortcuts, global average pooling) on 3x12x10 colour input with random
/// weights: served in both modes, `classify` equals `predict` exactly; a
/// server whose garbled-material cap is too small for it refuses to start,
/// before it says it is serving, naming the model, the mode and the limit.
#[test]
fn a_residual_network_is_served_exactly_and_refused_where_it_cannot_be() {
    use ppdnn_model::network::Shape;
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("resnet.safetensors");
    let network = ppdnn_model::zoo::resnet(Shape::new(3, 12, 10), &[4, 8], 2, 5);
    save_random_model(&model, ppdnn_model::testing::random_float_model(network, 0x5eed));
    let pixels: Vec<u8> = (0..3 * 360).map(|i| (i * 91 % 256) as u8).collect();
    let npy = dir.path().join("batch.npy");
    std::fs::write(&npy, ppdnn_model::npy::to_npy_u8(&[3, 3, 12, 10], &pixels)).unwrap();
    let (model_arg, npy_arg) = (model.to_str().unwrap(), npy.to_str().unwrap());
    let plain = json(ppdnn().args(["predict", "--model", model_arg, "--json", npy_arg]).output().unwrap());

    let (_server, url) = serve(&["--model", model_arg, "--modes", "fast,private"]);
    for mode in ["fast", "private"] {
        let classify = [
            "classify",
            "--server",
            &url,
            "--bits",
            "1024",
            "--insecure-small-keys",
            "--model",
            "resnet",
            "--mode",
            mode,
            "--json",
        ];
        let encrypted = json(ppdnn().args(classify).arg(npy_arg).output().unwrap());
        assert_eq!(encrypted, plain, "{mode}: classify and predict agree exactly");
    }

    let addr = format!("127.0.0.1:{}", free_port());
    let out = ppdnn()
        .args(["serve", "--listen", &addr, "--key-bits", "1024", "--insecure-small-keys"])
        .args(["--model", model_arg, "--modes", "fast,private", "--max-garbled-mib", "1"])
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success());
    assert!(!stdout.contains("serving") && !stderr.contains("serving"), "{stdout}{stderr}");
    assert!(
        stderr.contains("resnet") && stderr.contains("private mode") && stderr.contains("--max-garbled-mib"),
        "{stderr}"
    );
}
