//! `ppdnn`: privacy-preserving neural-network inference on Paillier encryption.

#![forbid(unsafe_code)]

mod bench;
mod bench_gc;
mod bench_network;
mod bench_service;
mod crypto_cmds;
mod encrypted_eval;
mod model_cmds;
mod onnx_cmds;
mod service_cmds;
mod soak;
#[cfg(feature = "train")]
mod train_cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Privacy-preserving neural-network inference: the server classifies your
/// encrypted input without seeing it; only you can read the answer.
#[derive(Parser)]
#[command(name = "ppdnn", version, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate Paillier key pairs and extract public keys.
    #[command(subcommand)]
    Key(crypto_cmds::KeyCommand),
    /// Encrypt signed integers under a public key (one ciphertext per line).
    Encrypt(crypto_cmds::EncryptArgs),
    /// Decrypt ciphertexts with a private key (one integer per line).
    Decrypt(crypto_cmds::DecryptArgs),
    /// Add two ciphertexts homomorphically (prints Enc(a + b)).
    Add(crypto_cmds::AddArgs),
    /// Multiply a ciphertext by a signed integer homomorphically (prints Enc(k * a)).
    Multiply(crypto_cmds::MultiplyArgs),
    /// Train LeNet-5 on MNIST or Fashion-MNIST, quantize it, and write a model file.
    #[cfg(feature = "train")]
    Train(train_cmd::TrainArgs),
    /// Accuracy of a model on the test set: plaintext (float and integer), or
    /// with --encrypted the full protocol in-process, timed.
    Eval {
        #[command(flatten)]
        args: model_cmds::EvalArgs,
        /// Run the encrypted protocol (client and server in this process).
        #[arg(long)]
        encrypted: bool,
        /// Key size for --encrypted.
        #[arg(long, default_value_t = 2048, requires = "encrypted")]
        bits: u32,
        /// With --encrypted: one value per ciphertext everywhere (the baseline packing is measured against).
        #[arg(long, requires = "encrypted")]
        no_packing: bool,
        /// With --encrypted: allow keys below 2048 bits (tests only).
        #[arg(long, requires = "encrypted")]
        insecure_small_keys: bool,
        /// With --encrypted: the protocol mode, fast (2P-DNN: the client sees
        /// every layer's accumulators) or private (garbled activations: the
        /// client learns only the answer).
        #[arg(long, default_value = "fast", requires = "encrypted")]
        mode: ppdnn_protocol::Mode,
        /// With --mode private: what the client learns, logits or label.
        #[arg(long, default_value = "logits", requires = "encrypted")]
        output: ppdnn_protocol::Output,
    },
    /// Classify PNG images in plaintext with the integer model (the baseline for classify).
    Predict(model_cmds::PredictArgs),
    /// Import an ONNX model: read the network, quantize it on calibration data, write a model file.
    Import(onnx_cmds::ImportArgs),
    /// Write a model file's float network as ONNX.
    ExportOnnx(onnx_cmds::ExportOnnxArgs),
    /// Write the first test images of a data set as PNG files (INDEX-LABEL.png).
    Export(model_cmds::ExportArgs),
    /// Serve models over gRPC: clients send encrypted inputs, the server never sees them.
    Serve(service_cmds::ServeArgs),
    /// Classify PNG images through a ppdnn server, encrypted.
    Classify(service_cmds::ClassifyArgs),
    /// Start a server on loopback and classify the shipped example digits through it.
    Demo(service_cmds::DemoArgs),
    /// Measure performance (release build recommended).
    #[command(subcommand)]
    Bench(bench::BenchCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // PPDNN_ARITH picks the arithmetic backend (gmp, ifma or portable); a value that is
    // not one, or ifma on a CPU without it, is refused here, not ignored.
    if let Err(e) = ppdnn_paillier::Backend::from_env() {
        eprintln!("error: {e}");
        return ExitCode::FAILURE;
    }
    let result = match cli.command {
        Command::Key(cmd) => crypto_cmds::key(cmd),
        Command::Encrypt(args) => crypto_cmds::encrypt(args),
        Command::Decrypt(args) => crypto_cmds::decrypt(args),
        Command::Add(args) => crypto_cmds::add(args),
        Command::Multiply(args) => crypto_cmds::multiply(args),
        Command::Bench(cmd) => bench::run(cmd),
        Command::Eval { args, encrypted: false, .. } => model_cmds::eval_plain(args),
        Command::Eval { args, encrypted: true, bits, no_packing, insecure_small_keys, mode, output } => {
            let opts = encrypted_eval::EncryptedOpts { bits, no_packing, insecure_small_keys, mode, output };
            encrypted_eval::eval_encrypted(args, opts)
        }
        Command::Predict(args) => model_cmds::predict(args),
        Command::Export(args) => model_cmds::export(args),
        Command::Import(args) => onnx_cmds::import_cmd(args),
        Command::ExportOnnx(args) => onnx_cmds::export_onnx_cmd(args),
        Command::Serve(args) => service_cmds::serve_cmd(args),
        Command::Classify(args) => service_cmds::classify(args),
        Command::Demo(args) => service_cmds::demo(args),
        #[cfg(feature = "train")]
        Command::Train(args) => train_cmd::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
