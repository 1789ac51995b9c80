//! The private mode's sizes per layer for the shipped LeNet-5 at 2048 bits,
//! as docs/PROTOCOL.md 7.7 gives them (run from the repository root:
//! `cargo run --release -p ppdnn-protocol --example private_sizes`).
use std::sync::Arc;

use ppdnn_model::modelfile::ModelFile;
use ppdnn_protocol::private::{PrivateCircuits, Schedule};
use ppdnn_protocol::{Mode, Output, Packing, Plan};

fn main() {
    let m = ModelFile::load(std::path::Path::new("models/lenet5-mnist.safetensors")).expect("model");
    let plan = Arc::new(Plan::for_mode(&m.quant, 2048, Packing::Packed, Mode::Private).expect("plan"));
    let circuits = PrivateCircuits::for_plan(&plan).expect("circuits");
    println!("| layer | B | S | cts in | cts out | tags | OTs | AND gates | tables (bytes) | pads (bytes) |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let label = Schedule::new(&plan, &circuits, Output::Label);
    for (l, pl) in plan.layers.iter().enumerate() {
        let (ands, tables, outputs) = match (&pl.circuit, l + 1 == plan.layers.len()) {
            (Some(c), _) => (c.and_gates, c.garbled_bytes, c.outputs),
            (None, true) => {
                let a = plan.argmax.as_ref().expect("a private plan has an argmax");
                (a.and_gates, a.garbled_bytes, 0)
            }
            (None, false) => (0, 0, 0),
        };
        let note = if l + 1 == plan.layers.len() { " (argmax: label mode)" } else { "" };
        println!(
            "| {}{note} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            pl.name,
            pl.slot_bits,
            pl.slots,
            pl.input_ciphertexts,
            pl.output_ciphertexts,
            label.tags(l),
            label.layer_ots(l),
            ands,
            tables,
            ppdnn_protocol::private::OUTPUT_PAD_BYTES * outputs,
        );
    }
    for output in [Output::Logits, Output::Label] {
        let s = Schedule::new(&plan, &circuits, output);
        let up: usize = (0..s.client_rounds()).map(|k| s.client_message(k).1).sum();
        let down: usize = (0..=s.client_rounds()).map(|k| s.server_message(k).1).sum();
        let cts = s.client_ciphertexts() + s.server_ciphertexts();
        let ct_bytes = 2 * s.n_bytes();
        println!(
            "{}: {} OTs, {} client rounds, {} ciphertexts ({} bytes), material {} bytes up and {} down: {} bytes in all",
            output.name(),
            s.total_ots(),
            s.client_rounds(),
            cts,
            cts * ct_bytes,
            up,
            down,
            cts * ct_bytes + up + down
        );
    }
}
