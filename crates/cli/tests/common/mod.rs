//! Helpers shared by the binary's tests: the `ppdnn` binary, run from the
//! repository's root with the shipped MNIST files as its data.

#![allow(dead_code)] // each test binary uses its own share of the helpers

use std::process::{Command, Output};

pub use ppdnn_model::testing::repo_root as root;

/// The `ppdnn` binary as a command, in the repository's root.
pub fn ppdnn_command() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ppdnn"));
    c.current_dir(root()).env("PPDNN_DATA", root().join("data/mnist"));
    c
}

/// Runs `ppdnn` with `args` to completion.
pub fn ppdnn(args: &[&str]) -> Output {
    ppdnn_command().args(args).output().expect("run ppdnn")
}
