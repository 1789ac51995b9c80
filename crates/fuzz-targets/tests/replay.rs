//! Replays every stored corpus file and every found crash through its target
//! (stable toolchain, part of the README's test command).

use std::path::PathBuf;

use ppdnn_fuzz_targets::{TARGETS, run};

fn fuzz_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

fn files(dir: &PathBuf) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut out: Vec<PathBuf> =
        entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_file()).collect();
    out.sort();
    out
}

#[test]
fn every_corpus_file_runs_through_its_target() {
    for target in TARGETS {
        let corpus = files(&fuzz_dir().join("corpus").join(target));
        assert!(corpus.len() >= 3, "{target}: the stored corpus has {} files", corpus.len());
        let regressions = files(&fuzz_dir().join("regressions").join(target));
        for path in corpus.iter().chain(&regressions) {
            let data = std::fs::read(path).unwrap();
            assert!(run(target, &data), "unknown target {target}");
        }
        println!("{target}: {} corpus files, {} regressions replayed", corpus.len(), regressions.len());
    }
}

#[test]
fn unknown_target_is_reported() {
    assert!(!run("no_such_target", b""));
}
