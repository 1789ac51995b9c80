//! How quantization chooses each requantization step: one style for every
//! layer, or per layer on the calibration inputs ([`RequantChoice::Auto`]):
//! powers of two wherever they keep the model's answers.

use rayon::prelude::*;

use crate::error::{InputError, Result};
use crate::float::FloatModel;
use crate::network::argmax;
use crate::quant::{QuantModel, RequantStyle, calibrated_scales};

/// Calibration inputs [`RequantChoice::Auto`] compares on (the first ones).
pub const AUTO_INPUTS: usize = 1000;

/// How much of the calibration inputs' agreement with the float model
/// [`RequantChoice::Auto`] may give up against 8-bit multipliers: 0.2%.
pub const AUTO_TOLERANCE: f64 = 0.002;

/// The requantization of a whole model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequantChoice {
    /// Every step in one style.
    All(RequantStyle),
    /// Per step, greedily in layer order: a power of two where the
    /// quantized model's top-1 answers on the first [`AUTO_INPUTS`]
    /// calibration inputs still agree with the float model's within
    /// [`AUTO_TOLERANCE`] of what 8-bit multipliers everywhere give, an
    /// 8-bit multiplier elsewhere. Needs no labels.
    Auto,
}

impl RequantChoice {
    /// The choice's name on the command line: fixed, pow2 or auto.
    pub fn name(self) -> &'static str {
        match self {
            RequantChoice::All(style) => style.name(),
            RequantChoice::Auto => "auto",
        }
    }

    /// The choice called `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "auto" => Some(RequantChoice::Auto),
            _ => RequantStyle::from_name(name).map(RequantChoice::All),
        }
    }
}

/// A model quantized by a [`RequantChoice`], with what the choice found.
#[derive(Debug, Clone)]
pub struct Chosen {
    /// The quantized model.
    pub model: QuantModel,
    /// The style of each requantization step (one per layer but the last).
    pub styles: Vec<RequantStyle>,
    /// With [`RequantChoice::Auto`]: the calibration inputs compared, and
    /// how many of them the chosen model and the all-fixed one answer as
    /// the float model does.
    pub agreement: Option<Agreement>,
}

/// Top-1 agreement with the float model on calibration inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Agreement {
    /// Inputs compared.
    pub inputs: usize,
    /// Agreeing with 8-bit multipliers everywhere.
    pub fixed: usize,
    /// Agreeing with the chosen styles.
    pub chosen: usize,
}

impl Chosen {
    /// The styles' names, in layer order (for model files and reports).
    pub fn style_names(&self) -> Vec<&'static str> {
        self.styles.iter().map(|s| s.name()).collect()
    }
}

impl QuantModel {
    /// Quantizes a float model, calibrating on `calibration` (inputs of
    /// pixels 0..255, back to back), with the requantization `choice`.
    pub fn quantize_choosing(
        float: &FloatModel,
        calibration: &[u8],
        choice: RequantChoice,
    ) -> Result<Chosen> {
        let scales = calibrated_scales(float, calibration)?;
        match choice {
            RequantChoice::All(style) => {
                let model = QuantModel::from_scales(float, &scales, style)?;
                Ok(Chosen { model, styles: vec![style; scales.len()], agreement: None })
            }
            RequantChoice::Auto => Self::choose_requant(float, &scales, calibration),
        }
    }

    /// [`RequantChoice::Auto`] on given activation scales (one per layer
    /// but the last), comparing on the first [`AUTO_INPUTS`] calibration inputs.
    pub fn choose_requant(float: &FloatModel, scales: &[f64], calibration: &[u8]) -> Result<Chosen> {
        let n = float.network.input().len();
        let inputs = &calibration[..calibration.len().min(AUTO_INPUTS * n)];
        if inputs.is_empty() {
            return Err(InputError::Calibration { per_input: n, got: calibration.len() }.into());
        }
        let reference: Vec<usize> =
            inputs.par_chunks(n).map(|x| float.logits(x).map(|l| argmax(&l))).collect::<Result<_>>()?;
        let agree = |model: &QuantModel| -> Result<usize> {
            let hits: Vec<bool> = inputs
                .par_chunks(n)
                .zip(&reference)
                .map(|(x, &want)| model.predict(x).map(|got| got == want))
                .collect::<Result<_>>()?;
            Ok(hits.into_iter().filter(|&h| h).count())
        };
        let mut styles = vec![RequantStyle::Fixed; scales.len()];
        let mut model = QuantModel::from_scales_styled(float, scales, &styles)?;
        let fixed = agree(&model)?;
        let count = reference.len();
        let floor = fixed.saturating_sub((AUTO_TOLERANCE * count as f64).floor() as usize);
        let mut chosen = fixed;
        for l in 0..styles.len() {
            styles[l] = RequantStyle::PowerOfTwo;
            let candidate = QuantModel::from_scales_styled(float, scales, &styles)?;
            let hits = agree(&candidate)?;
            if hits >= floor {
                (model, chosen) = (candidate, hits);
            } else {
                styles[l] = RequantStyle::Fixed;
            }
        }
        Ok(Chosen { model, styles, agreement: Some(Agreement { inputs: count, fixed, chosen }) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{random_float_model, random_inputs, random_network, shipped_model};

    #[test]
    fn names_round_trip() {
        for c in [
            RequantChoice::Auto,
            RequantChoice::All(RequantStyle::Fixed),
            RequantChoice::All(RequantStyle::PowerOfTwo),
        ] {
            assert_eq!(RequantChoice::from_name(c.name()), Some(c));
        }
        assert_eq!(RequantChoice::from_name("pow3"), None);
    }

    #[test]
    fn one_style_for_all_is_from_scales() {
        let float = random_float_model(random_network(3), 3);
        let x = random_inputs(4, 20, float.network.input().len());
        for style in [RequantStyle::Fixed, RequantStyle::PowerOfTwo] {
            let chosen = QuantModel::quantize_choosing(&float, &x, RequantChoice::All(style)).unwrap();
            let scales = calibrated_scales(&float, &x).unwrap();
            assert_eq!(chosen.model, QuantModel::from_scales(&float, &scales, style).unwrap());
            assert!(chosen.styles.iter().all(|&s| s == style) && chosen.agreement.is_none());
        }
    }

    /// Auto keeps the agreement within the tolerance, and its model is the
    /// one its styles give; on random models and on the shipped LeNet-5
    /// (whose powers of two lose nothing on MNIST: all of them chosen).
    #[test]
    fn auto_keeps_the_answers_and_its_model_is_its_styles() {
        let shipped = shipped_model();
        let mnist = crate::testing::mnist_test_set();
        let random = random_float_model(random_network(5), 5);
        let random_x = random_inputs(6, 60, random.network.input().len());
        let cases = [(random, random_x), (shipped.float.clone(), mnist.pixels[..AUTO_INPUTS * 784].to_vec())];
        for (i, (float, x)) in cases.into_iter().enumerate() {
            let chosen = QuantModel::quantize_choosing(&float, &x, RequantChoice::Auto).unwrap();
            let a = chosen.agreement.expect("auto reports its agreement");
            assert!(a.chosen as f64 >= a.fixed as f64 - AUTO_TOLERANCE * a.inputs as f64, "case {i}: {a:?}");
            let scales = calibrated_scales(&float, &x).unwrap();
            assert_eq!(
                chosen.model,
                QuantModel::from_scales_styled(&float, &scales, &chosen.styles).unwrap()
            );
            if i == 1 {
                assert!(chosen.styles.iter().all(|&s| s == RequantStyle::PowerOfTwo), "{:?}", chosen.styles);
            }
        }
    }

    #[test]
    fn auto_refuses_empty_calibration_and_styles_must_match() {
        let float = random_float_model(random_network(7), 7);
        assert!(QuantModel::quantize_choosing(&float, &[], RequantChoice::Auto).is_err());
        let x = random_inputs(8, 5, float.network.input().len());
        let scales = calibrated_scales(&float, &x).unwrap();
        let err = QuantModel::from_scales_styled(&float, &scales, &[]).unwrap_err().to_string();
        assert!(err.contains("requantization styles"), "{err}");
    }
}
