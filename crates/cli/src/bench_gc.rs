//! `ppdnn bench gc`: garbling, evaluation, correlated OT and base OT rates.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use ppdnn_gc::{Builder, Circuit, CotReceiver, CotSender, Evaluator, Garbler, GroupBits, Wire, base_ot};
use serde::Serialize;

/// The figures, per second (for `threads` threads together), as the issue names them.
#[derive(Serialize)]
pub struct GcReport {
    threads: usize,
    and_garble: f64,
    and_eval: f64,
    /// COTs per second with SoftSpokenOT's k = 4 (the sender's side).
    cot_send: f64,
    /// With k = 4, the receiver's side.
    cot_recv: f64,
    /// With k = 8 (large private sessions), the sender's side.
    cot_send_k8: f64,
    /// With k = 8, the receiver's side.
    cot_recv_k8: f64,
    base_ot_ms: f64,
    bytes_per_and: f64,
}

/// The shape of the model-private circuits: many independent lanes (slots),
/// each a chain of ripple subtractions, all on evaluator-dependent wires (full
/// AND gates): 512 lanes x 16 chained 32-bit subtractions = 262,144 ANDs.
fn lanes_circuit() -> Circuit {
    let mut b = Builder::new();
    for _ in 0..512 {
        let mut x: Vec<Wire> = b.evaluator_inputs(32);
        let y: Vec<Wire> = b.evaluator_inputs(32);
        for _ in 0..16 {
            x = ppdnn_gc::gadgets::sub(&mut b, &x, &y).0;
        }
        b.outputs(&x);
    }
    b.build()
}

/// On each of `threads` threads: `setup` once (not timed), then `work`
/// (which returns how many units it did) until `budget` has passed after
/// every thread's setup. Units per second, all threads together.
fn rate<S, F, W>(threads: usize, budget: Duration, setup: F, work: W) -> Result<f64>
where
    F: Fn() -> Result<S> + Sync,
    W: Fn(&mut S) -> Result<usize> + Sync,
{
    let barrier = std::sync::Barrier::new(threads);
    let results: Vec<Result<(usize, Duration)>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| -> Result<(usize, Duration)> {
                    let state = setup();
                    barrier.wait();
                    let mut state = state?;
                    let started = Instant::now();
                    let mut done = 0;
                    while started.elapsed() < budget {
                        done += work(&mut state)?;
                    }
                    Ok((done, started.elapsed()))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err(anyhow::anyhow!("a bench thread panicked"))))
            .collect()
    });
    let mut total = 0.0;
    for r in results {
        let (done, took) = r?;
        total += done as f64 / took.as_secs_f64();
    }
    Ok(total)
}

/// Measures everything; `seconds` per figure.
pub fn bench_gc(threads: usize, seconds: f64) -> Result<GcReport> {
    if !(0.05..=60.0).contains(&seconds) || threads == 0 || threads > 256 {
        bail!("--seconds 0.05 to 60 and --threads 1 to 256");
    }
    let budget = Duration::from_secs_f64(seconds);
    let circuit = lanes_circuit();
    let ands = circuit.and_gates();
    let and_garble = rate(
        threads,
        budget,
        || {
            let mut g = Garbler::new()?;
            let zero = g.fresh_labels(circuit.evaluator_inputs());
            Ok((g, zero))
        },
        |(g, zero)| {
            std::hint::black_box(g.garble(&circuit, &[], zero)?);
            Ok(ands)
        },
    )?;
    let mut g = Garbler::new()?;
    let zero = g.fresh_labels(circuit.evaluator_inputs());
    let (garbled, _) = g.garble(&circuit, &[], &zero)?;
    let bytes_per_and = garbled.tables_to_bytes().len() as f64 / circuit.and_gates() as f64;
    let and_eval = rate(
        threads,
        budget,
        || Ok(Evaluator::new()),
        |ev| {
            std::hint::black_box(ev.evaluate(&circuit, &garbled, &zero)?);
            Ok(ands)
        },
    )?;
    // Base OT: both sides in one thread, 128 instances.
    let t = Instant::now();
    let reps = 5;
    for _ in 0..reps {
        let (sender, a) = base_ot::BaseOtSender::new()?;
        let (_, msg) = base_ot::receive(&a, &[true; 128])?;
        std::hint::black_box(sender.finish(&msg, 128)?);
    }
    let base_ot_ms = t.elapsed().as_secs_f64() * 1000.0 / reps as f64;
    let (cot_send, cot_recv) = cot_rates(threads, budget, GroupBits::FOUR)?;
    let (cot_send_k8, cot_recv_k8) = cot_rates(threads, budget, GroupBits::EIGHT)?;
    Ok(GcReport {
        threads,
        and_garble,
        and_eval,
        cot_send,
        cot_recv,
        cot_send_k8,
        cot_recv_k8,
        base_ot_ms,
        bytes_per_and,
    })
}

/// COTs per second, (sender, receiver), with groups of k bits: extensions
/// of 2^16 at a time, each side timed on its own.
fn cot_rates(threads: usize, budget: Duration, k: GroupBits) -> Result<(f64, f64)> {
    const COTS: usize = 1 << 16;
    let choices: Vec<bool> = (0..COTS).map(|j| j % 3 == 0).collect();
    let cot_recv = rate(
        threads,
        budget,
        || Ok(cot_pair(k)?.1),
        |receiver| {
            std::hint::black_box(receiver.extend(&choices));
            Ok(COTS)
        },
    )?;
    let cot_send = rate(
        threads,
        budget,
        || {
            let (sender, mut receiver) = cot_pair(k)?;
            let (_, msg) = receiver.extend(&choices);
            Ok((sender, msg))
        },
        |(sender, msg)| {
            // Re-using one message leaves the PRG streams out of step with a
            // receiver's, which does not change the work measured here.
            std::hint::black_box(sender.extend(COTS, msg)?);
            Ok(COTS)
        },
    )?;
    Ok((cot_send, cot_recv))
}

fn cot_pair(k: GroupBits) -> Result<(CotSender, CotReceiver)> {
    let (setup, a) = CotReceiver::start(k)?;
    let (mut sender, answer) = CotSender::start(&a, k)?;
    let (receiver, trees) = setup.finish(&answer)?;
    sender.puncture(&trees)?;
    Ok((sender, receiver))
}

/// Prints the report as a table.
pub fn print(r: &GcReport) {
    println!("garbled circuits and OT, {} thread(s)", r.threads);
    println!("  AND gates garbled      {:>14.0} /s", r.and_garble);
    println!("  AND gates evaluated    {:>14.0} /s", r.and_eval);
    println!("  COT, sender (k = 4)    {:>14.0} /s", r.cot_send);
    println!("  COT, receiver (k = 4)  {:>14.0} /s", r.cot_recv);
    println!("  COT, sender (k = 8)    {:>14.0} /s", r.cot_send_k8);
    println!("  COT, receiver (k = 8)  {:>14.0} /s", r.cot_recv_k8);
    println!("  128 base OTs           {:>14.2} ms", r.base_ot_ms);
    println!("  bytes per AND gate     {:>14.1}", r.bytes_per_and);
}
