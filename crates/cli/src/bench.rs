//! `ppdnn bench`: throughput of the building blocks, on all cores by default.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Subcommand;
use ppdnn_paillier::{
    Ciphertext, Integer, KeyPolicy, PublicKey, RandomnessPool, generate_keypair, random_bits,
};
use rayon::prelude::*;
use serde::Serialize;

#[derive(Subcommand)]
pub enum BenchCommand {
    /// Paillier operations per second: keygen, encryption, decryption,
    /// homomorphic operations, linear combinations, and raw GMP modmul.
    Paillier {
        /// Key size in bits.
        #[arg(long, default_value_t = 2048)]
        bits: u32,
        /// Worker threads (default: all cores).
        #[arg(long)]
        threads: Option<usize>,
        /// Seconds to spend on each operation.
        #[arg(long, default_value_t = 1.0)]
        seconds: f64,
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Load on a loopback server: concurrent clients, each with its own key,
    /// classifying test images; throughput, latency, correctness, memory.
    Service(crate::service_cmds::LoadArgs),
    /// Garbled circuits and oblivious transfer: AND gates garbled and
    /// evaluated, correlated OTs (both sides) per second, 128 base OTs.
    Gc {
        /// Worker threads (default 1: the figures are per core).
        #[arg(long, default_value_t = 1)]
        threads: usize,
        /// Seconds to spend on each figure.
        #[arg(long, default_value_t = 2.0)]
        seconds: f64,
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Serialize)]
struct PaillierReport {
    bits: u32,
    threads: usize,
    ops: Ops,
}

#[derive(Serialize, Default)]
struct Ops {
    keygen: f64,
    encrypt: f64,
    encrypt_online: f64,
    decrypt: f64,
    add: f64,
    mul_small: f64,
    rerandomize: f64,
    lincomb400: f64,
    lincomb400_naive: f64,
    modmul: f64,
}

pub fn run(cmd: BenchCommand) -> Result<()> {
    match cmd {
        BenchCommand::Paillier { bits, threads, seconds, json } => {
            if !(0.05..=60.0).contains(&seconds) {
                anyhow::bail!("--seconds {seconds}: choose between 0.05 and 60");
            }
            let threads = threads.unwrap_or_else(rayon::current_num_threads).max(1);
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build()?;
            let report = pool.install(|| bench_paillier(bits, threads, Duration::from_secs_f64(seconds)))?;
            if json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                print_table(&report);
            }
            Ok(())
        }
        BenchCommand::Service(args) => crate::service_cmds::load(args),
        BenchCommand::Gc { threads, seconds, json } => {
            let report = crate::bench_gc::bench_gc(threads, seconds)?;
            if json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                crate::bench_gc::print(&report);
            }
            Ok(())
        }
    }
}

/// Runs `op(i)` in parallel batches until `budget` has passed; returns ops per second.
fn throughput<F>(budget: Duration, batch: usize, op: F) -> f64
where
    F: Fn(usize) + Sync,
{
    let start = Instant::now();
    let mut done = 0usize;
    while start.elapsed() < budget || done == 0 {
        (done..done + batch).into_par_iter().for_each(&op);
        done += batch;
    }
    done as f64 / start.elapsed().as_secs_f64()
}

fn random_signed_8bit() -> Result<i64> {
    let x = random_bits(8)?.to_i64().unwrap_or(0);
    Ok(x - 128)
}

fn bench_paillier(bits: u32, threads: usize, budget: Duration) -> Result<PaillierReport> {
    let policy = if bits < 2048 { KeyPolicy::INSECURE_TESTING } else { KeyPolicy::PRODUCTION };
    let mut ops = Ops::default();
    let keygen_budget = budget.max(Duration::from_secs(2));
    let keygen_start = Instant::now();
    let mut keys = Vec::new();
    while keygen_start.elapsed() < keygen_budget || keys.is_empty() {
        let batch: Vec<_> = (0..threads).into_par_iter().map(|_| generate_keypair(bits, policy)).collect();
        for k in batch {
            keys.push(k.context("key generation")?);
        }
    }
    ops.keygen = keys.len() as f64 / keygen_start.elapsed().as_secs_f64();
    let pair = keys.swap_remove(0);
    let sk = &pair.private;
    let pk: &PublicKey = pair.public();
    pk.precompute_randomness(8);

    let batch = 64 * threads;
    let m = |i: usize| Integer::from(i as i64 * 7919 - 1_000_000);
    ops.encrypt = throughput(budget, batch, |i| {
        let _ = pk.encrypt(&m(i));
    });

    // Online encryption: the pool is filled beforehand (offline, untimed).
    let pool = RandomnessPool::new(pk);
    let online_count = ((ops.encrypt * budget.as_secs_f64() * 20.0) as usize).clamp(1_000, 200_000);
    pool.fill(online_count)?;
    let rns = pool.take_many(online_count)?;
    let start = Instant::now();
    rns.par_iter().enumerate().for_each(|(i, rn)| {
        let _ = pk.encrypt_with_rn(&m(i), rn);
    });
    ops.encrypt_online = online_count as f64 / start.elapsed().as_secs_f64();

    let cts: Vec<Ciphertext> =
        (0..256).into_par_iter().map(|i| pk.encrypt(&m(i))).collect::<ppdnn_paillier::Result<_>>()?;
    let ct = |i: usize| &cts[i % cts.len()];
    ops.decrypt = throughput(budget, batch, |i| {
        let _ = sk.decrypt(ct(i));
    });
    ops.add = throughput(budget, batch * 16, |i| {
        let _ = pk.add(ct(i), ct(i + 1));
    });
    let scalars: Vec<i64> = (0..256).map(|i| 1 + (i * 37) % 255).collect();
    ops.mul_small = throughput(budget, batch * 4, |i| {
        let _ = pk.mul_i64(ct(i), scalars[i % 256]);
    });
    ops.rerandomize = throughput(budget, batch, |i| {
        let _ = pk.rerandomize(ct(i));
    });

    let bases: Vec<Ciphertext> = (0..400).map(|i| ct(i).clone()).collect();
    let weights: Vec<i64> = (0..400).map(|_| random_signed_8bit()).collect::<Result<_>>()?;
    ops.lincomb400 = throughput(budget, threads, |_| {
        let _ = pk.linear_combination(&bases, &weights);
    });
    ops.lincomb400_naive = throughput(budget, threads, |_| {
        let _ = pk.linear_combination_naive(&bases, &weights);
    });

    let n2 = pk.n_squared();
    ops.modmul = throughput(budget, threads, |i| {
        let mut acc = ct(i).value().clone();
        let x = ct(i + 1).value();
        for _ in 0..1000 {
            acc *= x;
            acc %= n2;
        }
    }) * 1000.0;

    Ok(PaillierReport { bits, threads, ops })
}

fn print_table(r: &PaillierReport) {
    println!("Paillier, {}-bit n, {} thread(s)", r.bits, r.threads);
    println!("{:<34} {:>14} {:>14}", "operation", "ops/s", "us/op/thread");
    let row = |name: &str, x: f64| {
        println!("{:<34} {:>14.1} {:>14.2}", name, x, r.threads as f64 * 1e6 / x);
    };
    let o = &r.ops;
    row("keygen", o.keygen);
    row("encrypt (DJN, fixed-base table)", o.encrypt);
    row("encrypt_online (pooled r^n)", o.encrypt_online);
    row("decrypt (CRT)", o.decrypt);
    row("add", o.add);
    row("mul_small (8-bit scalar)", o.mul_small);
    row("rerandomize", o.rerandomize);
    row("lincomb400 (multi-exponentiation)", o.lincomb400);
    row("lincomb400_naive", o.lincomb400_naive);
    row("modmul mod n^2 (GMP)", o.modmul);
    println!("lincomb400 speed-up over naive: {:.1}x", o.lincomb400 / o.lincomb400_naive);
}
