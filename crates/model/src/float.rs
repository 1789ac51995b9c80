//! A network's float model: the architecture and its trained parameters.
//! Inputs are pixels 0..255; the float model sees pixel / 255.

use rayon::prelude::*;

use crate::error::{InputError, Result};
use crate::network::argmax;
use crate::network::{FloatParams, Network};

/// A network with float parameters, checked against its architecture.
#[derive(Debug, Clone, PartialEq)]
pub struct FloatModel {
    /// The architecture.
    pub network: Network,
    /// One parameter set per layer, in order.
    pub layers: Vec<FloatParams>,
}

impl FloatModel {
    /// Pairs an architecture with its parameters, checking counts and values.
    pub fn new(network: Network, layers: Vec<FloatParams>) -> Result<Self> {
        let model = FloatModel { network, layers };
        model.validate()?;
        Ok(model)
    }

    /// Checks every layer's parameter counts against the architecture and
    /// that every parameter is finite.
    pub fn validate(&self) -> Result<()> {
        self.network.check_params(&self.layers)
    }

    /// Values in one input.
    pub fn input_len(&self) -> usize {
        self.network.input().len()
    }

    /// Float logits for one input of pixels 0..255.
    pub fn logits(&self, input: &[u8]) -> Result<Vec<f32>> {
        Ok(self.activations(input)?.pop().unwrap_or_default())
    }

    /// Every layer's float output after its ReLU and pooling (the last one:
    /// logits) for one input of pixels 0..255.
    pub fn activations(&self, input: &[u8]) -> Result<Vec<Vec<f32>>> {
        let x: Vec<f32> = input.iter().map(|&p| p as f32 / 255.0).collect();
        self.network.float_activations(&self.layers, &x)
    }

    /// Accuracy over a data set (inputs back to back), in parallel.
    pub fn accuracy(&self, inputs: &[u8], labels: &[u8]) -> Result<f64> {
        accuracy_of(self.input_len(), inputs, labels, |x| Ok(argmax(&self.logits(x)?)))
    }
}

/// The share of `inputs` (of `n` values each, back to back) that `predict`
/// gives their label, computed in parallel.
pub(crate) fn accuracy_of(
    n: usize,
    inputs: &[u8],
    labels: &[u8],
    predict: impl Fn(&[u8]) -> Result<usize> + Sync,
) -> Result<f64> {
    if inputs.len() != labels.len() * n {
        return Err(InputError::LabelCount {
            labels: labels.len(),
            expected: labels.len() * n,
            per_input: n,
            got: inputs.len(),
        }
        .into());
    }
    let correct = inputs
        .par_chunks(n)
        .zip(labels.par_iter())
        .map(|(x, &l)| Ok(usize::from(predict(x)? == l as usize)))
        .sum::<Result<usize>>()?;
    Ok(correct as f64 / labels.len().max(1) as f64)
}
