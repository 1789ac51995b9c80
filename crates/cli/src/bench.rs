//! `ppdnn bench`: throughput of the building blocks, on all cores by default.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Subcommand;
use ppdnn_paillier::{
    Backend, Ciphertext, Integer, KeyPolicy, PublicKey, RandomnessPool, generate_keypair, random_bits,
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
        /// Arithmetic backend to measure: gmp, ifma or portable (pure-Rust
        /// Montgomery arithmetic, the browser client's). ifma or portable is
        /// measured with gmp in the same run, with their ratios. Default:
        /// ifma and gmp when the CPU has IFMA, else gmp.
        #[arg(long, value_parser = parse_backend)]
        backend: Option<Backend>,
    },
    /// Load on a loopback server: concurrent clients, each with its own key,
    /// classifying test images; throughput, latency, correctness, memory.
    Service(crate::bench_service::BenchServiceArgs),
    /// One network's encrypted inference in-process on random images: time
    /// and bytes per layer, checked exact (ResNet-20's shape, the VGG-style
    /// network on 3x32x32 or LeNet-5 with random weights, or a model file).
    Network(crate::bench_network::BenchNetworkArgs),
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

fn parse_backend(s: &str) -> std::result::Result<Backend, String> {
    Backend::parse(s).map_err(|e| e.to_string())
}

#[derive(Serialize)]
struct PaillierReport {
    bits: u32,
    threads: usize,
    /// The backend of `ops`.
    backend: &'static str,
    ops: Ops,
    /// The other backend's figures, when both were measured.
    #[serde(skip_serializing_if = "Option::is_none")]
    gmp: Option<Ops>,
    /// ops / gmp, per operation, when both were measured.
    #[serde(skip_serializing_if = "Option::is_none")]
    speedup: Option<Ops>,
}

#[derive(Serialize, Default, Clone)]
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
    /// Packing a dense layer's outputs: as many 22-bit slots as the key
    /// holds (93 at 2048 bits) into one ciphertext by Horner's rule.
    pack_slots: f64,
    modmul: f64,
    /// Proofs that n is a Paillier-Blum modulus (128 challenges), made by
    /// the key's holder once per key (GMP on every backend).
    prove_modulus: f64,
    /// The same proofs verified, as a server does once per key.
    verify_modulus: f64,
    /// Proofs that n has no small factor (Pi^fac), against ring-Pedersen
    /// parameters of the key's size, made once per key and server.
    prove_factors: f64,
    /// The same proofs verified, as a server does once per key.
    verify_factors: f64,
}

impl Ops {
    /// self / other, operation by operation.
    fn ratio(&self, other: &Ops) -> Ops {
        let r = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
        Ops {
            keygen: r(self.keygen, other.keygen),
            encrypt: r(self.encrypt, other.encrypt),
            encrypt_online: r(self.encrypt_online, other.encrypt_online),
            decrypt: r(self.decrypt, other.decrypt),
            add: r(self.add, other.add),
            mul_small: r(self.mul_small, other.mul_small),
            rerandomize: r(self.rerandomize, other.rerandomize),
            lincomb400: r(self.lincomb400, other.lincomb400),
            lincomb400_naive: r(self.lincomb400_naive, other.lincomb400_naive),
            pack_slots: r(self.pack_slots, other.pack_slots),
            modmul: r(self.modmul, other.modmul),
            prove_modulus: r(self.prove_modulus, other.prove_modulus),
            verify_modulus: r(self.verify_modulus, other.verify_modulus),
            prove_factors: r(self.prove_factors, other.prove_factors),
            verify_factors: r(self.verify_factors, other.verify_factors),
        }
    }
}

pub fn run(cmd: BenchCommand) -> Result<()> {
    match cmd {
        BenchCommand::Paillier { bits, threads, seconds, json, backend } => {
            if !(0.05..=60.0).contains(&seconds) {
                anyhow::bail!("--seconds {seconds}: choose between 0.05 and 60");
            }
            if let Some(b) = backend {
                b.check()?;
            }
            let threads = threads.unwrap_or_else(rayon::current_num_threads).max(1);
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build()?;
            let budget = Duration::from_secs_f64(seconds);
            let report = pool.install(|| -> Result<PaillierReport> {
                let first =
                    backend.unwrap_or(if Backend::ifma_available() { Backend::Ifma } else { Backend::Gmp });
                let both = first != Backend::Gmp;
                let backends = if both { vec![first, Backend::Gmp] } else { vec![first] };
                if !json {
                    let names: Vec<&str> = backends.iter().map(|b| b.name()).collect();
                    eprintln!("measuring {} (operation by operation)", names.join(" and "));
                }
                let mut measured = bench_paillier(bits, threads, budget, &backends)?.into_iter();
                let ops = measured.next().context("the first backend was measured")?;
                let gmp = measured.next();
                let speedup = gmp.as_ref().map(|g| ops.ratio(g));
                Ok(PaillierReport { bits, threads, backend: first.name(), ops, gmp, speedup })
            })?;
            if json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                print_table(&report);
            }
            Ok(())
        }
        BenchCommand::Service(args) => crate::bench_service::bench_service(args),
        BenchCommand::Network(args) => crate::bench_network::bench_network(args),
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

/// Runs `op(k)` on batches of `batch` items until `budget` has passed;
/// returns items per second.
fn throughput_batched<F>(budget: Duration, batch: usize, op: F) -> Result<f64>
where
    F: Fn(usize) -> Result<()>,
{
    let start = Instant::now();
    let mut done = 0usize;
    while start.elapsed() < budget || done == 0 {
        op(batch)?;
        done += batch;
    }
    Ok(done as f64 / start.elapsed().as_secs_f64())
}

/// Measures every operation on each of `backends` (one key for all), the
/// backends one after the other for each operation, so that a ratio
/// compares two measurements taken moments apart on this shared machine.
fn bench_paillier(bits: u32, threads: usize, budget: Duration, backends: &[Backend]) -> Result<Vec<Ops>> {
    let policy = KeyPolicy::admitting(bits);
    let mut all = vec![Ops::default(); backends.len()];
    // Runs `measure` on every backend in turn, with that backend in use.
    let each = |all: &mut Vec<Ops>, measure: &mut dyn FnMut(&mut Ops, Backend) -> Result<()>| -> Result<()> {
        for (ops, &b) in all.iter_mut().zip(backends) {
            ppdnn_paillier::set_backend(b)?;
            measure(ops, b)?;
        }
        Ok(())
    };
    let keygen_budget = budget.max(Duration::from_secs(2));
    let mut keys = Vec::new();
    each(&mut all, &mut |ops, _| {
        let start = Instant::now();
        let mut made = 0usize;
        while start.elapsed() < keygen_budget || made == 0 {
            let batch: Vec<_> =
                (0..threads).into_par_iter().map(|_| generate_keypair(bits, policy)).collect();
            for k in batch {
                keys.push(k.context("key generation")?);
                made += 1;
            }
        }
        ops.keygen = made as f64 / start.elapsed().as_secs_f64();
        Ok(())
    })?;
    let pair = keys.swap_remove(0);
    let sk = &pair.private;
    let pk: &PublicKey = pair.public();
    // Each backend's fixed-base table, outside the timed loops.
    each(&mut all, &mut |_, _| {
        pk.precompute_randomness(8);
        pk.random_rn_many(1)?;
        Ok(())
    })?;

    let batch = 64 * threads;
    let m = |i: usize| Integer::from(i as i64 * 7919 - 1_000_000);
    // Fresh randomness for each, batched on the backend (as a pool fills).
    each(&mut all, &mut |ops, _| {
        ops.encrypt = throughput_batched(budget, batch, |k| {
            let rns = pk.random_rn_many(k)?;
            rns.par_iter().enumerate().try_for_each(|(i, rn)| pk.encrypt_with_rn(&m(i), rn).map(|_| ()))?;
            Ok(())
        })?;
        Ok(())
    })?;
    // Online encryption: the pool is filled beforehand (offline, untimed).
    each(&mut all, &mut |ops, _| {
        let pool = RandomnessPool::new(pk);
        let online_count = ((ops.encrypt * budget.as_secs_f64() * 20.0) as usize).clamp(1_000, 200_000);
        pool.fill(online_count)?;
        let rns = pool.take_many(online_count)?;
        let start = Instant::now();
        rns.par_iter().enumerate().for_each(|(i, rn)| {
            let _ = pk.encrypt_with_rn(&m(i), rn);
        });
        ops.encrypt_online = online_count as f64 / start.elapsed().as_secs_f64();
        Ok(())
    })?;

    let cts: Vec<Ciphertext> =
        (0..256).into_par_iter().map(|i| pk.encrypt(&m(i))).collect::<ppdnn_paillier::Result<_>>()?;
    let ct = |i: usize| &cts[i % cts.len()];
    each(&mut all, &mut |ops, _| {
        ops.decrypt = throughput_batched(budget, cts.len(), |_| {
            let _ = sk.decrypt_many(&cts);
            Ok(())
        })?;
        Ok(())
    })?;
    each(&mut all, &mut |ops, _| {
        ops.add = throughput(budget, batch * 16, |i| {
            let _ = pk.add(ct(i), ct(i + 1));
        });
        Ok(())
    })?;
    let scalars: Vec<i64> = (0..256).map(|i| 1 + (i * 37) % 255).collect();
    each(&mut all, &mut |ops, _| {
        ops.mul_small = throughput(budget, batch * 4, |i| {
            let _ = pk.mul_i64(ct(i), scalars[i % 256]);
        });
        Ok(())
    })?;
    each(&mut all, &mut |ops, _| {
        ops.rerandomize = throughput_batched(budget, cts.len(), |_| {
            pk.rerandomize_many(&cts)?;
            Ok(())
        })?;
        Ok(())
    })?;

    let bases: Vec<Ciphertext> = (0..400).map(|i| ct(i).clone()).collect();
    let weights: Vec<i64> = (0..400).map(|_| random_signed_8bit()).collect::<Result<_>>()?;
    each(&mut all, &mut |ops, _| {
        ops.lincomb400 = throughput(budget, threads, |_| {
            let _ = pk.linear_combination(&bases, &weights);
        });
        Ok(())
    })?;
    each(&mut all, &mut |ops, _| {
        ops.lincomb400_naive = throughput(budget, threads, |_| {
            let _ = pk.linear_combination_naive(&bases, &weights);
        });
        Ok(())
    })?;

    // The slots LeNet's fc1 packs: 22 bits each, as many as fit.
    let slots = ((bits - 2) / 22) as usize;
    let to_pack: Vec<Ciphertext> = (0..slots).map(|i| ct(i).clone()).collect();
    each(&mut all, &mut |ops, _| {
        ops.pack_slots = throughput(budget, threads, |_| {
            let _ = pk.pack_slots(&to_pack, 22);
        });
        Ok(())
    })?;

    // Chains of 1,000 products of eight values (one IFMA batch, or eight GMP
    // chains), one chain per thread at a time.
    let n2 = pk.n_squared();
    let eight: Vec<Integer> = (0..8).map(|i| ct(i).value().clone()).collect();
    each(&mut all, &mut |ops, backend| {
        ops.modmul = throughput(budget, threads, |_| {
            let _ = ppdnn_paillier::arith::product_chain_with(backend, &eight, n2, 1000);
        }) * 8000.0;
        Ok(())
    })?;

    let proof = sk.prove_modulus()?;
    each(&mut all, &mut |ops, _| {
        ops.prove_modulus = throughput(budget, threads, |_| {
            let _ = sk.prove_modulus();
        });
        ops.verify_modulus = throughput(budget, threads, |_| {
            let _ = pk.verify_modulus_proof(&proof);
        });
        Ok(())
    })?;
    let params = ppdnn_paillier::RingPedersen::generate(bits.max(2048).next_multiple_of(2))?;
    let factors = sk.prove_factors(&params)?;
    each(&mut all, &mut |ops, _| {
        ops.prove_factors = throughput(budget, threads, |_| {
            let _ = sk.prove_factors(&params);
        });
        ops.verify_factors = throughput(budget, threads, |_| {
            let _ = pk.verify_factors_proof(&params, &factors);
        });
        Ok(())
    })?;
    Ok(all)
}

fn print_table(r: &PaillierReport) {
    println!("Paillier, {}-bit n, {} thread(s), {} backend", r.bits, r.threads, r.backend);
    let with_gmp = r.gmp.is_some();
    if with_gmp {
        println!(
            "{:<34} {:>14} {:>14} {:>14} {:>8}",
            "operation", "ops/s", "us/op/thread", "gmp ops/s", "ratio"
        );
    } else {
        println!("{:<34} {:>14} {:>14}", "operation", "ops/s", "us/op/thread");
    }
    let field = |o: &Ops, name: &str| -> f64 {
        match name {
            "keygen" => o.keygen,
            "encrypt" => o.encrypt,
            "encrypt_online" => o.encrypt_online,
            "decrypt" => o.decrypt,
            "add" => o.add,
            "mul_small" => o.mul_small,
            "rerandomize" => o.rerandomize,
            "lincomb400" => o.lincomb400,
            "lincomb400_naive" => o.lincomb400_naive,
            "pack_slots" => o.pack_slots,
            "prove_modulus" => o.prove_modulus,
            "verify_modulus" => o.verify_modulus,
            "prove_factors" => o.prove_factors,
            "verify_factors" => o.verify_factors,
            _ => o.modmul,
        }
    };
    let names = [
        ("keygen", "keygen"),
        ("encrypt", "encrypt (DJN, fixed-base table)"),
        ("encrypt_online", "encrypt_online (pooled r^n)"),
        ("decrypt", "decrypt (CRT, constant-time)"),
        ("add", "add"),
        ("mul_small", "mul_small (8-bit scalar)"),
        ("rerandomize", "rerandomize"),
        ("lincomb400", "lincomb400 (multi-exponentiation)"),
        ("lincomb400_naive", "lincomb400_naive"),
        ("pack_slots", "pack_slots (22-bit slots, Horner)"),
        ("modmul", "modmul mod n^2"),
        ("prove_modulus", "prove_modulus (Paillier-Blum, 128)"),
        ("verify_modulus", "verify_modulus (once per key)"),
        ("prove_factors", "prove_factors (Pi^fac)"),
        ("verify_factors", "verify_factors (once per key)"),
    ];
    for (key, label) in names {
        let x = field(&r.ops, key);
        match &r.gmp {
            Some(g) => {
                let y = field(g, key);
                println!(
                    "{:<34} {:>14.1} {:>14.2} {:>14.1} {:>7.1}x",
                    label,
                    x,
                    r.threads as f64 * 1e6 / x,
                    y,
                    x / y
                );
            }
            None => println!("{:<34} {:>14.1} {:>14.2}", label, x, r.threads as f64 * 1e6 / x),
        }
    }
    let o = &r.ops;
    println!("lincomb400 speed-up over naive: {:.1}x", o.lincomb400 / o.lincomb400_naive);
}
