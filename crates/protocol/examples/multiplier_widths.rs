//! The private mode's requantization multiplier: its width against the
//! integer model's accuracy and the garbled circuits' size (run from the
//! repository root: `cargo run --release -p ppdnn-protocol --example multiplier_widths`).
use ppdnn_model::dataset::{Dataset, DatasetKind, Split};
use ppdnn_model::modelfile::ModelFile;
use ppdnn_model::quant::Requant;
use ppdnn_protocol::{Mode, Packing, Plan};

fn main() {
    let m = ModelFile::load(std::path::Path::new("models/lenet5-mnist.safetensors")).expect("model");
    let test =
        Dataset::load(std::path::Path::new("data/mnist"), DatasetKind::Mnist, Split::Test).expect("data");
    for bits in [31u32, 16, 12, 10, 8, 6] {
        let mut q = m.quant.clone();
        for l in q.layers.iter_mut() {
            if let Some(r) = l.requant {
                let real = r.real();
                let shift = (bits as i32 - real.log2().ceil() as i32).clamp(1, 62);
                let multiplier = (real * 2f64.powi(shift)).round() as i64;
                l.requant = Some(Requant { multiplier, shift: shift as u32 });
            }
        }
        let acc = q.accuracy(&test.pixels, &test.labels);
        let p = Plan::for_mode(&q, 2048, Packing::Packed, Mode::Private).expect("plan");
        let ands: usize = p.layers.iter().filter_map(|l| l.circuit.as_ref()).map(|c| c.and_gates).sum();
        let bytes: usize = p.layers.iter().filter_map(|l| l.circuit.as_ref()).map(|c| c.garbled_bytes).sum();
        println!(
            "{bits:>2}-bit multipliers: accuracy {:.4}, {ands} AND, {:.1} MB garbled",
            acc,
            bytes as f64 / 1e6
        );
    }
}
