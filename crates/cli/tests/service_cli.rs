//! `ppdnn serve` in one process, `ppdnn classify` in another: the encrypted
//! answers equal the plaintext `ppdnn predict` ones.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn ppdnn() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ppdnn"));
    c.current_dir(root());
    c
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

fn json(out: std::process::Output) -> serde_json::Value {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn classify_through_a_server_matches_predict() {
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let server = Server(
        ppdnn()
            .args([
                "serve",
                "--listen",
                &addr,
                "--key-bits",
                "1024",
                "--insecure-small-keys",
                "--modes",
                "private,fast",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let start = Instant::now();
    while std::net::TcpStream::connect(&addr).is_err() {
        assert!(start.elapsed() < Duration::from_secs(30), "the server did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key.json");
    let out = ppdnn()
        .args(["key", "generate", "--bits", "1024", "--insecure-small-keys", "--out", key.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success());
    let images = ["examples/digits/0000-7.png", "examples/digits/0008-5.png"];
    let url = format!("http://{addr}");
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
