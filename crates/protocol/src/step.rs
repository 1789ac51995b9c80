//! What every client session shares, whatever its mode: the step it takes
//! after a server message, and the checks it makes on its key, its input
//! and what it decrypts.

use ppdnn_paillier::{PrivateKey, RandomnessPool};

use crate::error::{MessageError, PlanError, Result, StateError, msg};
use crate::message::RoundMessage;
use crate::plan::Plan;

/// What the client does after a server message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientStep {
    /// Send this message for the next round.
    Send(RoundMessage),
    /// The inference is over: the integer logits.
    Done(Vec<i64>),
    /// A label-only private inference is over: the class.
    Label(usize),
}

/// What a client session of either mode checks first: a key of the plan's
/// size, and a randomness pool of that key.
pub(crate) fn check_client(plan: &Plan, key: &PrivateKey, pool: &RandomnessPool) -> Result<()> {
    let bits = key.public_key().bits();
    if bits != plan.key_bits {
        return Err(PlanError::KeySize { plan: plan.key_bits, key: bits }.into());
    }
    if pool.key() != key.public_key() {
        return Err(StateError::OtherKeysPool.into());
    }
    Ok(())
}

/// An image's pixels as the first layer's input values, if it has the
/// plan's input size.
pub(crate) fn image_values(plan: &Plan, image: &[u8]) -> Result<Vec<i64>> {
    let expected: usize = plan.input_shape.iter().product();
    if image.len() != expected {
        return Err(StateError::InputSize { got: image.len(), expected }.into());
    }
    Ok(image.iter().map(|&p| i64::from(p)).collect())
}

/// Refuses decrypted values beyond the plan's worst case `bound` (not the
/// plan's computation); `what` names them ("accumulator", "logit").
pub(crate) fn check_bound(round: usize, what: &'static str, values: &[i64], bound: i64) -> Result<()> {
    // unsigned_abs: i64::MIN has no positive counterpart and must not slip through.
    match values.iter().position(|a| a.unsigned_abs() > bound.unsigned_abs()) {
        Some(index) => Err(msg(round, MessageError::OutOfBound { what, index, value: values[index], bound })),
        None => Ok(()),
    }
}
