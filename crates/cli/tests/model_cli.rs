//! Runs the `ppdnn` binary: eval (plain and encrypted), predict, export.

use std::path::PathBuf;
use std::process::{Command, Output};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn ppdnn(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ppdnn"))
        .current_dir(root())
        .env("PPDNN_DATA", root().join("data/mnist"))
        .args(args)
        .output()
        .expect("run ppdnn")
}

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
