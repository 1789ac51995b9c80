//! Runs the `ppdnn` binary: eval (plain and encrypted), predict, export.

use std::process::Command;

mod common;

use common::{ppdnn, root};

fn ok_json(args: &[&str]) -> serde_json::Value {
    let out = ppdnn(args);
    assert!(out.status.success(), "ppdnn {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("JSON")
}

#[test]
fn plain_eval_json() {
    let v = ok_json(&["eval", "--limit", "300", "--json"]);
    assert_eq!(v["dataset"], "mnist");
    assert_eq!(v["images"], 300);
    assert!(v["float_accuracy"].as_f64().unwrap() > 0.97);
    assert!(v["quantized_accuracy"].as_f64().unwrap() > 0.97);
}

#[test]
fn encrypted_eval_json_agrees_with_the_integer_model() {
    let v = ok_json(&[
        "eval",
        "--encrypted",
        "--bits",
        "1024",
        "--insecure-small-keys",
        "--limit",
        "3",
        "--json",
    ]);
    assert_eq!(v["images"], 3);
    assert_eq!(v["agreement"], 3);
    assert_eq!(v["bits"], 1024);
    assert_eq!(v["rounds"], 5);
    for f in ["latency_s_median", "latency_s_mean", "client_s", "server_s", "offline_s", "bytes_per_image"] {
        assert!(v[f].as_f64().unwrap() > 0.0, "{f}");
    }
    // 1024-bit keys are refused without the flag.
    let out = ppdnn(&["eval", "--encrypted", "--bits", "1024", "--limit", "1"]);
    assert!(!out.status.success());
}

#[test]
fn predict_shipped_digits_and_bad_files() {
    let v = ok_json(&["predict", "--json", "examples/digits/0000-7.png", "examples/digits/0001-2.png"]);
    let list = v.as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["label"], 7);
    assert_eq!(list[1]["label"], 2);
    let scores: Vec<f64> =
        list[0]["scores"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
    assert_eq!(scores.len(), 10);
    assert!((scores.iter().sum::<f64>() - 1.0).abs() < 1e-9);
    let out = ppdnn(&["predict", "Cargo.toml"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Cargo.toml"));
    let out = ppdnn(&["predict", "--model", "nope.safetensors", "examples/digits/0000-7.png"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope.safetensors"));
}

#[test]
fn export_writes_pngs_that_predict_reads() {
    let dir = tempfile::tempdir().unwrap();
    let out = ppdnn(&["export", "--count", "3", "--out", dir.path().to_str().unwrap()]);
    assert!(out.status.success());
    let png = dir.path().join("0002-1.png");
    assert!(png.is_file());
    let v = ok_json(&["predict", "--json", png.to_str().unwrap()]);
    assert_eq!(v[0]["label"], 1);
}

#[test]
fn missing_data_says_where_to_put_it() {
    let out = Command::new(env!("CARGO_BIN_EXE_ppdnn"))
        .current_dir(root())
        .env_remove("PPDNN_DATA")
        .args(["eval", "--data", "/nonexistent/mnist", "--limit", "1"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("/nonexistent/mnist") && err.contains("PPDNN_DATA"), "{err}");
}

#[test]
fn predict_reads_npy_inputs_and_batches_as_the_pngs_they_hold() {
    let pngs = ["examples/digits/0000-7.png", "examples/digits/0001-2.png", "examples/digits/0002-1.png"];
    let from_png = ok_json(&["predict", "--json", pngs[0], pngs[1], pngs[2]]);
    let pixels: Vec<Vec<u8>> =
        pngs.iter().map(|p| ppdnn_model::image_io::load_png(&root().join(p)).unwrap()).collect();
    let dir = tempfile::tempdir().unwrap();
    let one = dir.path().join("one.npy");
    std::fs::write(&one, ppdnn_model::npy::to_npy_u8(&[1, 28, 28], &pixels[0])).unwrap();
    let batch = dir.path().join("batch.npy");
    std::fs::write(&batch, ppdnn_model::npy::to_npy_u8(&[3, 28, 28], &pixels.concat())).unwrap();
    let v = ok_json(&["predict", "--json", one.to_str().unwrap(), batch.to_str().unwrap()]);
    let list = v.as_array().unwrap();
    assert_eq!(list.len(), 4);
    assert_eq!(list[0]["file"], one.to_str().unwrap());
    assert_eq!(list[0]["logits"], from_png[0]["logits"]);
    for i in 0..3 {
        assert_eq!(list[1 + i]["file"], format!("{}[{i}]", batch.display()));
        assert_eq!(list[1 + i]["logits"], from_png[i]["logits"]);
    }
    let wrong = dir.path().join("wrong.npy");
    std::fs::write(&wrong, ppdnn_model::npy::to_npy_u8(&[28, 27], &[0; 28 * 27])).unwrap();
    let out = ppdnn(&["predict", wrong.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("wrong.npy") && err.contains("[28, 27]"), "{err}");
}

#[test]
fn export_onnx_then_import_gives_the_same_model_and_predictions() {
    let dir = tempfile::tempdir().unwrap();
    let onnx = dir.path().join("lenet.onnx");
    let back = dir.path().join("lenet.safetensors");
    let (onnx_s, back_s) = (onnx.to_str().unwrap(), back.to_str().unwrap());
    let out = ppdnn(&["export-onnx", "models/lenet5-mnist.safetensors", "--out", onnx_s]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v = ok_json(&["import", onnx_s, "--calibration", "data/mnist", "--out", back_s, "--json"]);
    assert_eq!(v["layers"], 5);
    assert_eq!(v["classes"], 10);
    assert_eq!(v["input_shape"], serde_json::json!([1, 28, 28]));
    assert_eq!(v["accuracy_inputs"], 10000);
    assert!((v["quantized_accuracy"].as_f64().unwrap() - 0.9905).abs() < 1e-9, "{v}");
    // The re-imported model is the shipped one: the same integer logits.
    let digits: Vec<String> = std::fs::read_dir(root().join("examples/digits"))
        .unwrap()
        .map(|e| e.unwrap().path().display().to_string())
        .collect();
    let mut shipped = vec!["predict", "--json"];
    shipped.extend(digits.iter().map(String::as_str));
    let mut imported = vec!["predict", "--json", "--model", back_s];
    imported.extend(digits.iter().map(String::as_str));
    assert_eq!(ok_json(&shipped), ok_json(&imported));
    // --out is not overwritten without --force; an unsupported operator is refused by name.
    let again = ppdnn(&["import", onnx_s, "--calibration", "data/mnist", "--out", back_s]);
    assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));
    let sigmoid = "crates/onnx/tests/data/unsupported_sigmoid.onnx";
    let out = ppdnn(&["import", sigmoid, "--calibration", "data/mnist", "--out", back_s, "--force"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("\"squash\" (Sigmoid)"), "{err}");
    let out = ppdnn(&["import", "no-such.onnx", "--calibration", "data/mnist", "--out", back_s, "--force"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no-such.onnx"));
    // --requant auto: a style per step, chosen on the calibration inputs'
    // agreement with the float model, reported; LeNet-5's powers of two
    // keep its accuracy on MNIST, so auto takes them all.
    let auto =
        ["import", onnx_s, "--calibration", "data/mnist", "--out", back_s, "--force", "--json", "--requant"];
    let v = ok_json(&[&auto[..], &["auto"]].concat());
    assert_eq!(v["requant"], "auto");
    assert_eq!(v["requant_steps"], serde_json::json!(["pow2", "pow2", "pow2", "pow2"]), "{v}");
    let a = &v["requant_agreement"];
    assert_eq!(a["inputs"], 1000);
    assert!(a["chosen"].as_u64().unwrap() + 2 >= a["fixed"].as_u64().unwrap(), "{a}");
    assert!((v["quantized_accuracy"].as_f64().unwrap() - 0.9905).abs() < 1e-9, "{v}");
    let out = ppdnn(&[&auto[..], &["pow3"]].concat());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("choose fixed, pow2 or auto"), "{err}");
}

#[test]
fn an_mlp_imports_with_an_image_shape_and_npy_labels() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("mlp.safetensors");
    let pixels: Vec<u8> = (0..8 * 784).map(|i| (i * 131 % 256) as u8).collect();
    let x = dir.path().join("x.npy");
    std::fs::write(&x, ppdnn_model::npy::to_npy_u8(&[8, 784], &pixels)).unwrap();
    let y = dir.path().join("y.npy");
    std::fs::write(&y, ppdnn_model::npy::to_npy_u8(&[8], &[0, 1, 2, 3, 4, 5, 6, 7])).unwrap();
    let mlp = "crates/onnx/tests/data/mlp.onnx";
    let (m, xs, ys) = (model.to_str().unwrap(), x.to_str().unwrap(), y.to_str().unwrap());
    // The graph takes 784 values; as 1x28x28 it reads images too.
    let v = ok_json(&[
        "import",
        mlp,
        "--calibration",
        xs,
        "--labels",
        ys,
        "--out",
        m,
        "--input-shape",
        "1x28x28",
        "--json",
    ]);
    assert_eq!(v["input_shape"], serde_json::json!([1, 28, 28]));
    assert_eq!(v["accuracy_inputs"], 8);
    let p = ok_json(&["predict", "--model", m, "--json", "examples/digits/0000-7.png"]);
    assert_eq!(p[0]["logits"].as_array().unwrap().len(), 10);
    let out = ppdnn(&["import", mlp, "--calibration", xs, "--out", m, "--force", "--input-shape", "3x28x28"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("2352") && err.contains("784"), "{err}");
}
