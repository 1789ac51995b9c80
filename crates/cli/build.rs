//! Compiles the web page (web/dist, made by scripts/build-web.sh) into the
//! binary for `ppdnn serve --web`, when it has been built; otherwise the
//! binary has no page and `--web` without a folder says how to get one.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut entries: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            files(&path, out);
        } else {
            out.push(path);
        }
    }
}

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let dist = manifest.join("../../web/dist");
    println!("cargo:rerun-if-changed={}", dist.display());
    let mut found = Vec::new();
    if dist.join("index.html").is_file() {
        files(&dist, &mut found);
    }
    let mut code = String::from(
        "/// The page's files (web/dist at build time).\npub const FILES: &[(&str, &[u8])] = &[\n",
    );
    for path in &found {
        println!("cargo:rerun-if-changed={}", path.display());
        let name = path.strip_prefix(&dist).expect("found under dist").to_string_lossy().replace('\\', "/");
        let abs = path.canonicalize().expect("a file just listed");
        writeln!(code, "    ({name:?}, include_bytes!({:?})),", abs.display().to_string())
            .expect("writing to a String");
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("embedded_web.rs");
    std::fs::write(out, code).expect("writing the embedded page list");
}
