//! Rewrites model files' requantization steps with multipliers of
//! `quant::MULTIPLIER_BITS` bits, from the real factors the stored steps
//! approximate; weights, biases and scales are left as they are.
//!
//! `cargo run --release -p ppdnn-model --example requantize -- models/*.safetensors`

use ppdnn_model::modelfile::ModelFile;
use ppdnn_model::quant::Requant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let paths: Vec<String> = std::env::args().skip(1).collect();
    if paths.is_empty() {
        return Err("usage: requantize MODEL.safetensors...".into());
    }
    for path in paths {
        let path = std::path::Path::new(&path);
        let mut file = ModelFile::load(path)?;
        let names: Vec<String> = file.quant.network.layers().iter().map(|l| l.name.clone()).collect();
        for (layer, name) in file.quant.layers.iter_mut().zip(&names) {
            if let Some(r) = layer.requant {
                let new = Requant::from_real(r.real())?;
                println!(
                    "{} {}: {} >> {} -> {} >> {}",
                    path.display(),
                    name,
                    r.multiplier,
                    r.shift,
                    new.multiplier,
                    new.shift
                );
                layer.requant = Some(new);
            }
        }
        file.quant.validate()?;
        file.save(path)?;
    }
    Ok(())
}
