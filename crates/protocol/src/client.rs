//! The client: encrypts its input, and between rounds decrypts, applies the
//! public between-layer step, and encrypts the next layer's input.

use std::sync::Arc;

use ppdnn_model::network::{Linear, activate_int};
use ppdnn_paillier::{Integer, PrivateKey, RandomnessPool};

use crate::error::{Error, Result, msg};
use crate::message::RoundMessage;
use crate::plan::{Packing, Plan, PlanLayer};

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

/// One inference on the client side.
pub struct ClientSession {
    plan: Arc<Plan>,
    key: Arc<PrivateKey>,
    pool: Arc<RandomnessPool>,
    /// The round whose answer is awaited; None before `start` and after the end.
    awaiting: Option<usize>,
}

impl std::fmt::Debug for ClientSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientSession").field("awaiting", &self.awaiting).finish_non_exhaustive()
    }
}

impl ClientSession {
    /// A session for a (validated) plan, with the client's key pair and a
    /// randomness pool for its public key.
    pub fn new(plan: Arc<Plan>, key: Arc<PrivateKey>, pool: Arc<RandomnessPool>) -> Result<Self> {
        check_session(&plan, &key, &pool)?;
        Ok(ClientSession { plan, key, pool, awaiting: None })
    }

    /// Encrypts an image (pixels 0..255, channel-major) as round 0's message.
    pub fn start(&mut self, image: &[u8]) -> Result<RoundMessage> {
        if self.awaiting.is_some() {
            return Err(Error::State("the session has already started".into()));
        }
        let want: usize = self.plan.input_shape.iter().product();
        if image.len() != want {
            return Err(Error::State(format!(
                "the input has {} values, the model takes {want}",
                image.len()
            )));
        }
        let x: Vec<i64> = image.iter().map(|&p| p as i64).collect();
        self.encrypt_round(0, &x)
    }

    /// Handles the server's answer to the round in progress.
    pub fn receive(&mut self, answer: &RoundMessage) -> Result<ClientStep> {
        let Some(round) = self.awaiting else {
            return Err(Error::State("no round is in progress".into()));
        };
        let pl = &self.plan.layers[round];
        let pk = self.key.public_key();
        let cts = answer.ciphertexts(pk, round, pl.output_ciphertexts)?;
        let plain: Vec<Integer> = self.key.decrypt_many(&cts);
        let acc = unpack_outputs(self.plan.packing, pl, pk.bits(), &plain).map_err(|e| match e {
            Error::Message { .. } => e,
            Error::State(m) => msg(round, m),
            other => msg(round, other.to_string()),
        })?;
        // unsigned_abs: i64::MIN has no positive counterpart and must not slip through.
        if let Some(bad) = acc.iter().position(|a| a.unsigned_abs() > pl.accumulator_bound.unsigned_abs()) {
            return Err(msg(
                round,
                format!(
                    "accumulator {bad} is {}, beyond the plan's bound {}",
                    acc[bad], pl.accumulator_bound
                ),
            ));
        }
        let next = activate_int(pl.relu, pl.pool.as_ref(), pl.output, pl.requant, &acc);
        if round + 1 == self.plan.layers.len() {
            self.awaiting = None;
            return Ok(ClientStep::Done(next));
        }
        Ok(ClientStep::Send(self.encrypt_round(round + 1, &next)?))
    }

    fn encrypt_round(&mut self, round: usize, x: &[i64]) -> Result<RoundMessage> {
        let pl = &self.plan.layers[round];
        let pk = self.key.public_key();
        let plain = pack_inputs(self.plan.packing, pl, pk.bits(), x)?;
        let cts = self.pool.encrypt_many(&plain)?;
        self.awaiting = Some(round);
        Ok(RoundMessage::from_ciphertexts(pk, round, &cts))
    }
}

/// What a client session of either mode checks first: a valid plan for the
/// key's size, and a randomness pool of that key.
pub(crate) fn check_session(plan: &Plan, key: &PrivateKey, pool: &RandomnessPool) -> Result<()> {
    plan.validate()?;
    if key.public_key().bits() != plan.key_bits {
        return Err(Error::Plan(format!(
            "the plan is for {}-bit keys but the client's key has {} bits",
            plan.key_bits,
            key.public_key().bits()
        )));
    }
    if pool.key() != key.public_key() {
        return Err(Error::State("the randomness pool belongs to another key".into()));
    }
    Ok(())
}

/// The plaintexts the client encrypts for a layer whose inputs are `x`.
pub fn pack_inputs(packing: Packing, pl: &PlanLayer, key_bits: u32, x: &[i64]) -> Result<Vec<Integer>> {
    if x.len() != pl.input.len() {
        return Err(Error::State(format!("{}: {} inputs, expected {}", pl.name, x.len(), pl.input.len())));
    }
    match (packing, pl.linear) {
        (Packing::Packed, Linear::Conv2d { .. }) => {
            let codec = pl.codec(key_bits)?;
            input_slots(pl, x).iter().map(|slots| Ok(codec.encode(slots)?)).collect()
        }
        _ => Ok(x.iter().map(|&v| Integer::from(v)).collect()),
    }
}

/// A packed convolution's input ciphertexts as slot vectors: for each kernel
/// offset (ic, ky, kx) and each chunk j of S positions, the input values
/// under that offset (0 in the padding). `x` must have the layer's input length.
pub(crate) fn input_slots(pl: &PlanLayer, x: &[i64]) -> Vec<Vec<i64>> {
    let Linear::Conv2d { kernel: [kh, kw], stride: [sy, sx], padding: [top, left, ..], .. } = pl.linear
    else {
        return x.iter().map(|&v| vec![v]).collect();
    };
    let (ih, iw) = (pl.input.height, pl.input.width);
    let ow = pl.output.width;
    let positions = pl.positions();
    let chunks = pl.chunks();
    let mut out = Vec::with_capacity(pl.input_ciphertexts);
    for ic in 0..pl.input.channels {
        for ky in 0..kh {
            for kx in 0..kw {
                for j in 0..chunks {
                    out.push(
                        (j * pl.slots..positions.min((j + 1) * pl.slots))
                            .map(|p| {
                                let iy = ((p / ow) * sy + ky).checked_sub(top).filter(|&y| y < ih);
                                let ix = ((p % ow) * sx + kx).checked_sub(left).filter(|&v| v < iw);
                                match (iy, ix) {
                                    (Some(iy), Some(ix)) => x[(ic * ih + iy) * iw + ix],
                                    _ => 0,
                                }
                            })
                            .collect(),
                    );
                }
            }
        }
    }
    out
}

/// The layer's accumulators, in channel-major order, from the decrypted outputs.
pub fn unpack_outputs(
    packing: Packing,
    pl: &PlanLayer,
    key_bits: u32,
    plain: &[Integer],
) -> Result<Vec<i64>> {
    let total = pl.output.len();
    if packing == Packing::Unpacked {
        return plain
            .iter()
            .enumerate()
            .map(|(i, m)| m.to_i64().ok_or_else(|| Error::State(format!("output {i} does not fit 64 bits"))))
            .collect();
    }
    let codec = pl.codec(key_bits)?;
    let slots = pl.slots;
    let positions = pl.positions();
    let mut acc = vec![0i64; total];
    // Ciphertext i covers `positions` outputs per channel in chunks of S (a
    // dense layer is a single "channel" of `outputs` positions).
    let chunks = positions.div_ceil(slots);
    for (i, m) in plain.iter().enumerate() {
        let values = codec.decode(m).map_err(|e| Error::State(format!("output ciphertext {i}: {e}")))?;
        let (channel, j) = (i / chunks, i % chunks);
        let used = slots.min(positions - j * slots);
        if let Some(s) = (used..slots).find(|&s| values[s] != 0) {
            return Err(Error::State(format!("output ciphertext {i}: unused slot {s} holds {}", values[s])));
        }
        for (s, &v) in values[..used].iter().enumerate() {
            acc[channel * positions + j * slots + s] = v;
        }
    }
    Ok(acc)
}
