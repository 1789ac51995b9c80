//! Key management and single-value Paillier operations, in the spirit of
//! python-paillier's `pheutil`.

use std::io::{BufRead, Write};
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use ppdnn_paillier::keyfile::{self, decimal};
use ppdnn_paillier::{KeyPolicy, PublicKey, generate_keypair};

/// Key policy flags shared by every command that reads a key.
#[derive(Args, Clone, Copy)]
pub struct PolicyArgs {
    /// Accept keys below 2048 bits (down to 256). For tests and experiments
    /// only: such keys offer no real security.
    #[arg(long)]
    pub insecure_small_keys: bool,
}

impl PolicyArgs {
    pub fn policy(self) -> KeyPolicy {
        KeyPolicy::insecure_if(self.insecure_small_keys)
    }
}

#[derive(Subcommand)]
pub enum KeyCommand {
    /// Generate a key pair and write the private key file (mode 0600).
    Generate {
        /// Size of n in bits: 2048 (default) or 3072.
        #[arg(long, default_value_t = 2048)]
        bits: u32,
        /// Where to write the private key.
        #[arg(long, short)]
        out: PathBuf,
        /// Also write the public key here.
        #[arg(long)]
        public_out: Option<PathBuf>,
        #[command(flatten)]
        policy: PolicyArgs,
    },
    /// Make a server's factor-proof parameters (ring-Pedersen, public) for
    /// `serve --factor-params`, which replicas behind one balancer share.
    FactorParams {
        /// Size of their modulus in bits: at least the largest key served.
        #[arg(long, default_value_t = 3072)]
        bits: u32,
        /// Where to write them (refused if the file exists).
        #[arg(long, short)]
        out: PathBuf,
    },
    /// Extract the public key from a private key file.
    Public {
        /// The private key file.
        key: PathBuf,
        /// Where to write the public key (standard output if absent).
        #[arg(long, short)]
        out: Option<PathBuf>,
        #[command(flatten)]
        policy: PolicyArgs,
    },
}

/// Refuses a `--bits` the key policy does not let us generate, saying how
/// smaller test keys are allowed.
pub fn check_new_key_bits(bits: u32, policy: KeyPolicy) -> Result<()> {
    policy.check_new(bits).with_context(|| {
        let hint = if policy == KeyPolicy::PRODUCTION {
            " (keys below 2048 bits need --insecure-small-keys)"
        } else {
            ""
        };
        format!("--bits {bits}{hint}")
    })
}

pub fn key(cmd: KeyCommand) -> Result<()> {
    match cmd {
        KeyCommand::Generate { bits, out, public_out, policy } => {
            let policy = policy.policy();
            check_new_key_bits(bits, policy)?;
            let pair = generate_keypair(bits, policy)?;
            keyfile::write_private_key(&out, &pair.private)?;
            if let Some(p) = public_out {
                keyfile::write_public_key(&p, pair.public())?;
            }
            eprintln!("wrote a {bits}-bit private key to {}", out.display());
            Ok(())
        }
        KeyCommand::FactorParams { bits, out } => {
            if !(2048..=8192).contains(&bits) || !bits.is_multiple_of(2) {
                anyhow::bail!("--bits {bits}: choose an even size from 2048 to 8192");
            }
            let params = ppdnn_paillier::RingPedersen::generate(bits)?;
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&out)
                .with_context(|| format!("creating {}", out.display()))?;
            std::io::Write::write_all(&mut file, &params.to_bytes())
                .with_context(|| format!("writing {}", out.display()))?;
            eprintln!("wrote {bits}-bit factor-proof parameters to {}", out.display());
            Ok(())
        }
        KeyCommand::Public { key, out, policy } => {
            let pk = keyfile::read_public_key(&key, policy.policy())?;
            match out {
                Some(path) => keyfile::write_public_key(&path, &pk)?,
                None => print!("{}", keyfile::public_key_to_json(&pk)),
            }
            Ok(())
        }
    }
}

#[derive(Args)]
pub struct EncryptArgs {
    /// Public key file (a private key file works too).
    #[arg(long, short)]
    key: PathBuf,
    /// Signed integers to encrypt; read from standard input, one per line, if none are given.
    #[arg(allow_negative_numbers = true)]
    values: Vec<String>,
    #[command(flatten)]
    policy: PolicyArgs,
}

#[derive(Args)]
pub struct DecryptArgs {
    /// Private key file.
    #[arg(long, short)]
    key: PathBuf,
    /// Ciphertexts (decimal); read from standard input, one per line, if none are given.
    ciphertexts: Vec<String>,
    #[command(flatten)]
    policy: PolicyArgs,
}

#[derive(Args)]
pub struct AddArgs {
    /// Public key file.
    #[arg(long, short)]
    key: PathBuf,
    /// First ciphertext (decimal).
    c1: String,
    /// Second ciphertext (decimal).
    c2: String,
    #[command(flatten)]
    policy: PolicyArgs,
}

#[derive(Args)]
pub struct MultiplyArgs {
    /// Public key file.
    #[arg(long, short)]
    key: PathBuf,
    /// The ciphertext (decimal).
    ciphertext: String,
    /// The signed integer factor.
    #[arg(allow_negative_numbers = true)]
    factor: String,
    #[command(flatten)]
    policy: PolicyArgs,
}

/// The arguments, or standard input's non-empty lines if there are none.
fn args_or_stdin(args: Vec<String>) -> Result<Vec<String>> {
    if !args.is_empty() {
        return Ok(args);
    }
    let mut out = Vec::new();
    for line in std::io::stdin().lock().lines() {
        let line = line.context("reading standard input")?;
        if !line.trim().is_empty() {
            out.push(line.trim().to_string());
        }
    }
    Ok(out)
}

fn read_public(path: &std::path::Path, policy: PolicyArgs) -> Result<PublicKey> {
    Ok(keyfile::read_public_key(path, policy.policy())?)
}

pub fn encrypt(args: EncryptArgs) -> Result<()> {
    let pk = read_public(&args.key, args.policy)?;
    let mut out = std::io::stdout().lock();
    for (i, v) in args_or_stdin(args.values)?.iter().enumerate() {
        let m = decimal(v, &format!("value {}", i + 1))?;
        let c = pk.encrypt(&m).with_context(|| format!("value {}", i + 1))?;
        writeln!(out, "{}", c.value())?;
    }
    Ok(())
}

pub fn decrypt(args: DecryptArgs) -> Result<()> {
    let sk = keyfile::read_private_key(&args.key, args.policy.policy())?;
    let pk = sk.public_key();
    let mut out = std::io::stdout().lock();
    for (i, text) in args_or_stdin(args.ciphertexts)?.iter().enumerate() {
        let c = pk.ciphertext_from_decimal(text).with_context(|| format!("ciphertext {}", i + 1))?;
        writeln!(out, "{}", sk.decrypt(&c))?;
    }
    Ok(())
}

pub fn add(args: AddArgs) -> Result<()> {
    let pk = read_public(&args.key, args.policy)?;
    let a = pk.ciphertext_from_decimal(&args.c1).context("first ciphertext")?;
    let b = pk.ciphertext_from_decimal(&args.c2).context("second ciphertext")?;
    println!("{}", pk.add(&a, &b).value());
    Ok(())
}

pub fn multiply(args: MultiplyArgs) -> Result<()> {
    let pk = read_public(&args.key, args.policy)?;
    let c = pk.ciphertext_from_decimal(&args.ciphertext).context("ciphertext")?;
    let k = decimal(&args.factor, "factor")?;
    println!("{}", pk.mul(&c, &k).value());
    Ok(())
}
