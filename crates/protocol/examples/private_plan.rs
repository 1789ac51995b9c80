//! Prints the private plan's circuit shapes for the shipped model.
use ppdnn_model::modelfile::ModelFile;
use ppdnn_protocol::{Mode, Packing, Plan};

fn main() {
    let m = ModelFile::load(std::path::Path::new("models/lenet5-mnist.safetensors")).expect("model");
    let p = Plan::for_mode(&m.quant, 2048, Packing::Packed, Mode::Private).expect("plan");
    for l in &p.layers {
        println!(
            "{} B={} S={} cts={} req={:?} {:?}",
            l.name, l.slot_bits, l.slots, l.output_ciphertexts, l.requant, l.circuit
        );
    }
    println!("{:?}", p.argmax);
}
