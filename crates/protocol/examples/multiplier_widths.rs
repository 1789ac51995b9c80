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
        // The real factor of each step, from the stored scales (as quantization computes it).
        let reals: Vec<Option<f64>> = (0..q.layers.len())
            .map(|l| {
                let (this, next) = (&q.layers[l], q.layers.get(l + 1)?);
                let pool = match q.network.layers()[l].pool {
                    Some(p) if p.kind == ppdnn_model::network::PoolKind::Average => {
                        (p.window[0] * p.window[1]) as f64
                    }
                    _ => 1.0,
                };
                Some(this.weight_scale * this.input_scale / (pool * next.input_scale))
            })
            .collect();
        for (l, real) in q.layers.iter_mut().zip(reals) {
            if let Some(real) = real {
                l.requant = Some(Requant::from_real_bits(real, bits).expect("a positive factor"));
            }
        }
        let acc = q.accuracy(&test.pixels, &test.labels).expect("accuracy");
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
