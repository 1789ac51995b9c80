//! Runs the `ppdnn` binary: key generation, encrypt, add, multiply, decrypt.

use std::path::Path;
use std::process::Command;

mod common;

use common::ppdnn;

fn ok(args: &[&str]) -> String {
    let out = ppdnn(args);
    assert!(out.status.success(), "ppdnn {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf-8")
}

fn lines(s: &str) -> Vec<String> {
    s.lines().map(str::to_string).collect()
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

#[test]
fn encrypt_add_multiply_decrypt() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key.json");
    let public = dir.path().join("pub.json");
    ok(&["key", "generate", "--bits", "1024", "--insecure-small-keys", "--out", s(&key)]);
    ok(&["key", "public", s(&key), "--out", s(&public), "--insecure-small-keys"]);
    let pub_text = std::fs::read_to_string(&public).unwrap();
    assert!(pub_text.contains("ppdnn-paillier-public-key") && !pub_text.contains("\"p\""));

    let cts = lines(&ok(&["encrypt", "--key", s(&public), "--insecure-small-keys", "17", "-5", "0"]));
    assert_eq!(cts.len(), 3);
    let sum = ok(&["add", "--key", s(&public), "--insecure-small-keys", &cts[0], &cts[1]]);
    let prod = ok(&["multiply", "--key", s(&public), "--insecure-small-keys", &cts[1], "-7"]);
    let plain = lines(&ok(&[
        "decrypt",
        "--key",
        s(&key),
        "--insecure-small-keys",
        &cts[0],
        &cts[1],
        &cts[2],
        sum.trim(),
        prod.trim(),
    ]));
    assert_eq!(plain, ["17", "-5", "0", "12", "35"]);
}

#[test]
fn production_policy_refuses_small_keys_and_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key.json");
    ok(&["key", "generate", "--bits", "1024", "--insecure-small-keys", "--out", s(&key)]);
    // Without the flag, a 1024-bit key is refused with a message that says why.
    let out = ppdnn(&["encrypt", "--key", s(&key), "1"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("1024 bits"));
    // A ciphertext that is not a number, and one out of range.
    let out = ppdnn(&["decrypt", "--key", s(&key), "--insecure-small-keys", "abc"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("ciphertext 1"));
    let out = ppdnn(&["decrypt", "--key", s(&key), "--insecure-small-keys", "0"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid ciphertext"));
    // Generating an unsupported production size.
    let out = ppdnn(&["key", "generate", "--bits", "1024", "--out", s(&key)]);
    assert!(!out.status.success());
    // A missing key file names the file.
    let out = ppdnn(&["encrypt", "--key", "/nonexistent/key.json", "1"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/key.json"));
}

#[test]
fn bench_json_has_every_field() {
    let out = ok(&["bench", "paillier", "--bits", "512", "--seconds", "0.05", "--json", "--threads", "1"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["bits"], 512);
    assert_eq!(v["threads"], 1);
    for field in [
        "encrypt",
        "encrypt_online",
        "decrypt",
        "add",
        "mul_small",
        "rerandomize",
        "lincomb400",
        "lincomb400_naive",
        "modmul",
        "keygen",
    ] {
        assert!(v["ops"][field].as_f64().unwrap() > 0.0, "{field}");
    }
}

#[test]
fn the_arithmetic_backend_is_chosen_by_ppdnn_arith_and_checked() {
    let out = Command::new(env!("CARGO_BIN_EXE_ppdnn"))
        .env("PPDNN_ARITH", "avx9000")
        .args(["bench", "gc", "--seconds", "0.05"])
        .output()
        .expect("run ppdnn");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("PPDNN_ARITH") && err.contains("\"avx9000\"") && err.contains("gmp, ifma or portable"),
        "{err}"
    );
    // Both backends bench and report which one ran.
    for backend in ["gmp", "ifma"] {
        let out = ppdnn(&[
            "bench",
            "paillier",
            "--bits",
            "1024",
            "--seconds",
            "0.05",
            "--json",
            "--backend",
            backend,
        ]);
        let text = String::from_utf8_lossy(&out.stdout);
        let cpu_has_ifma = std::fs::read_to_string("/proc/cpuinfo").is_ok_and(|c| c.contains("avx512ifma"));
        if backend == "ifma" && !cpu_has_ifma {
            eprintln!(
                "this CPU has no AVX-512 IFMA: --backend ifma must be refused, and is checked for that"
            );
            assert!(!out.status.success());
            continue;
        }
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(text.contains(&format!("\"backend\":\"{backend}\"")), "{text}");
    }
}
