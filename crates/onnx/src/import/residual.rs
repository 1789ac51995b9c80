//! Residual Adds: the pending convolution's output plus a shortcut, the
//! activation of an earlier layer or a 1x1 convolution of one (with its
//! batch normalization), as PyTorch exports ResNet's basic blocks.

use ppdnn_model::network::{FloatParams, Linear, Shape, Shortcut};

use super::Importer;
use super::layer::Pending;
use crate::error::{Refusal, Result};
use crate::graph::Projection;

impl Importer<'_> {
    /// Whether the node is an Add of two computed values (not of a constant).
    pub(super) fn joins_branches(&self) -> bool {
        let node = self.node;
        node.op_type() == "Add"
            && node.input.len() == 2
            && node.input.iter().all(|x| !x.is_empty() && !self.consts.contains_key(x))
    }

    /// Adds the Add's shortcut to the pending convolution: the Add reads
    /// the data path's last value (the convolution's output, after its
    /// batch normalization) and, as its other input, an earlier layer's
    /// activation or the projection the wiring found.
    pub(super) fn residual_add(&mut self) -> Result<()> {
        match self.node.output.len() {
            0 => return Err(self.unsupported(Refusal::NoOutput)),
            1 => {}
            _ => return Err(self.unsupported(Refusal::SeveralOutputs)),
        }
        let inputs = self.node.input.clone();
        let projection = self.wiring.projections.get(&self.index).cloned();
        let main = match &projection {
            Some(p) => 1 - p.input,
            None => inputs.iter().position(|x| *x == self.current).unwrap_or(0),
        };
        if inputs[main] != self.current {
            return Err(self.unsupported(Refusal::AddInputs { inputs, previous: self.current.clone() }));
        }
        let output = self.shortcut_target()?;
        let (shortcut, params, added) = match projection {
            Some(p) => self.projection(&p)?,
            None => {
                let (from, source) = self.source(&inputs[1 - main])?;
                (Shortcut { from, projection: None }, None, source)
            }
        };
        if added != output {
            return Err(self.unsupported(Refusal::ShortcutShape { added, output }));
        }
        if let Some(p) = self.pending.as_mut() {
            p.shortcut = Some((shortcut, params));
        }
        Ok(())
    }

    /// The accumulators' shape of the pending layer, which must be a
    /// convolution with nothing but its bias and batch normalization yet.
    fn shortcut_target(&self) -> Result<Shape> {
        match &self.pending {
            Some(p) if p.shortcut.is_some() => Err(self.unsupported(Refusal::SecondShortcut)),
            Some(p) if p.is_linear() && matches!(p.linear, Linear::Conv2d { .. }) => self.pending_output(),
            _ => Err(self.unsupported(Refusal::ShortcutPlacement)),
        }
    }

    /// The layer whose activation `tensor` is, and the activation's shape.
    fn source(&self, tensor: &str) -> Result<(String, Shape)> {
        let &(layer, shape) = self
            .activations
            .get(tensor)
            .ok_or_else(|| self.unsupported(Refusal::ShortcutSource { input: tensor.to_string() }))?;
        Ok((self.layers[layer].0.name.clone(), shape))
    }

    /// Reads a projection's nodes (messages name them), then returns to
    /// the Add: the shortcut, its parameters and the shape it adds.
    fn projection(&mut self, p: &Projection) -> Result<(Shortcut, Option<FloatParams>, Shape)> {
        let add = self.index;
        self.enter(p.conv);
        let input = self.node.input.first().cloned().unwrap_or_default();
        let (from, source) = self.source(&input)?;
        let conv = self.conv_params(source.channels)?;
        if conv.kernel != [1, 1] || conv.padding != [0; 4] {
            return Err(
                self.unsupported(Refusal::ProjectionKernel { kernel: conv.kernel, padding: conv.padding })
            );
        }
        let (stride, out_channels) = (conv.stride, conv.bias.len());
        let mut branch = Pending::new(self.label.clone(), conv.linear(), conv.weight, conv.bias);
        for &step in &p.steps {
            self.enter(step);
            self.projection_step(&mut branch)?;
        }
        self.enter(add);
        let shortcut = Shortcut { from, projection: Some(stride) };
        let added = match shortcut.projection_layer(&branch.name, out_channels) {
            Some(layer) => layer.output_shape(source)?,
            None => source,
        };
        Ok((shortcut, Some(FloatParams::new(branch.weight, branch.bias)), added))
    }

    /// A step after a projection's convolution: a batch normalization or
    /// a bias folded in, an Identity or Dropout passed.
    fn projection_step(&mut self, branch: &mut Pending) -> Result<()> {
        self.check_domain()?;
        match self.node.op_type() {
            "BatchNormalization" => {
                let bn = self.batch_norm_params()?;
                branch.fold(&bn).map_err(|why| self.unsupported(why))?;
                self.notes.push(format!(
                    "folded batch normalization {:?} into {:?} (a projection shortcut)",
                    self.label, branch.name
                ));
            }
            "Add" => {
                let values = self.constant(1)?.floats.clone();
                branch.add_bias(&values, None).map_err(|why| self.unsupported(why))?;
            }
            _ => {}
        }
        Ok(())
    }
}
