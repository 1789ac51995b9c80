//! One session shape for both modes: a [`ClientSession`] and a
//! [`ServerSession`] (enums over the modes' own sessions) with one
//! start / receive -> step interface, and the [`Evaluator`] that starts
//! server sessions. A transport (the gRPC service, the in-process
//! [`run_in_process`]) drives these and never the modes' own types, so a
//! new mode touches this crate and one match arm per caller.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ppdnn_model::quant::QuantModel;
use ppdnn_paillier::{PrivateKey, PublicKey, RandomnessPool};

use crate::error::{PlanError, Result, StateError};
use crate::fast::{FastClientSession, FastServerSession};
use crate::key_cache::KeyCache;
use crate::message::RoundMessage;
use crate::plan::{Mode, Output, Packing, Plan};
use crate::private::{GarblingStats, PrivateCircuits, PrivateClientSession, PrivateServerSession};
use crate::step::ClientStep;

/// A checked plan with what both sides derive from it once: in the private
/// mode, its circuits (checked against the plan's stated shapes).
#[derive(Debug, Clone)]
pub struct SessionPlan {
    plan: Arc<Plan>,
    circuits: Option<Arc<PrivateCircuits>>,
}

impl SessionPlan {
    /// Builds what the plan's mode needs (the private mode's circuits).
    pub fn new(plan: Arc<Plan>) -> Result<Self> {
        let circuits = match plan.mode {
            Mode::Fast => None,
            Mode::Private => Some(PrivateCircuits::for_plan(&plan)?),
        };
        Ok(SessionPlan { plan, circuits })
    }

    /// The plan.
    pub fn plan(&self) -> &Arc<Plan> {
        &self.plan
    }

    /// The private mode's circuits (None for a fast plan).
    pub fn circuits(&self) -> Option<&Arc<PrivateCircuits>> {
        self.circuits.as_ref()
    }

    /// The same plan with SoftSpokenOT's group width `k`, keeping the
    /// circuits (the width changes the OT extension, not the circuits).
    fn with_ot_group_bits(&self, k: u32) -> Result<Self> {
        let mut plan = self.plan.as_ref().clone().into_unchecked();
        plan.ot_group_bits = Some(k);
        Ok(SessionPlan { plan: Arc::new(Plan::check(plan)?), circuits: self.circuits.clone() })
    }

    fn private_circuits(&self) -> Result<Arc<PrivateCircuits>> {
        self.circuits.clone().ok_or_else(|| PlanError::WrongMode(Mode::Private.name()).into())
    }
}

/// One inference on the client side, in the plan's mode.
#[derive(Debug)]
pub enum ClientSession {
    /// The fast mode.
    Fast(FastClientSession),
    /// The model-private mode (boxed: it holds the garbling state).
    Private(Box<PrivateClientSession>),
}

impl ClientSession {
    /// A session in the plan's mode, with the client's key pair and a
    /// randomness pool for its public key; `output` is what a private
    /// session asks to learn (the fast mode always ends with the logits).
    pub fn new(
        plan: &SessionPlan,
        key: Arc<PrivateKey>,
        pool: Arc<RandomnessPool>,
        output: Output,
    ) -> Result<Self> {
        Ok(match plan.plan.mode {
            Mode::Fast => ClientSession::Fast(FastClientSession::new(plan.plan.clone(), key, pool)?),
            Mode::Private => ClientSession::Private(Box::new(PrivateClientSession::new(
                plan.plan.clone(),
                plan.private_circuits()?,
                key,
                pool,
                output,
            )?)),
        })
    }

    /// Encrypts the input (pixels 0..255, channel-major). Returns the first
    /// message to send, or None where the server speaks first (the private
    /// mode's setup: the input then goes out with the answer to it).
    pub fn start(&mut self, image: &[u8]) -> Result<Option<RoundMessage>> {
        match self {
            ClientSession::Fast(s) => s.start(image).map(Some),
            ClientSession::Private(s) => s.start(image).map(|()| None),
        }
    }

    /// The server round awaited and its size: (round, ciphertexts, material
    /// bytes). The plan fixes both; a transport accepts nothing beyond them.
    pub fn expected_answer(&self) -> (usize, usize, usize) {
        match self {
            ClientSession::Fast(s) => s.expected_answer(),
            ClientSession::Private(s) => s.expected_answer(),
        }
    }

    /// Handles the server's answer to the round in progress.
    pub fn receive(&mut self, answer: &RoundMessage) -> Result<ClientStep> {
        match self {
            ClientSession::Fast(s) => s.receive(answer),
            ClientSession::Private(s) => s.receive(answer),
        }
    }

    /// The session's mode.
    pub fn mode(&self) -> Mode {
        match self {
            ClientSession::Fast(_) => Mode::Fast,
            ClientSession::Private(_) => Mode::Private,
        }
    }

    /// What garbling has cost so far (nothing in the fast mode).
    pub fn stats(&self) -> GarblingStats {
        match self {
            ClientSession::Fast(_) => GarblingStats::default(),
            ClientSession::Private(s) => s.stats(),
        }
    }
}

/// One inference on the server side, in the evaluator's mode.
#[derive(Debug)]
pub enum ServerSession {
    /// The fast mode.
    Fast(FastServerSession),
    /// The model-private mode (boxed: it holds the OT and circuit state).
    Private(Box<PrivateServerSession>),
}

impl ServerSession {
    /// The client round expected next.
    pub fn next_round(&self) -> usize {
        match self {
            ServerSession::Fast(s) => s.next_round(),
            ServerSession::Private(s) => s.next_round(),
        }
    }

    /// (ciphertexts, material bytes) the next client round must carry.
    pub fn expected(&self) -> (usize, usize) {
        match self {
            ServerSession::Fast(s) => s.expected(),
            ServerSession::Private(s) => s.expected(),
        }
    }

    /// Whether every round has been served.
    pub fn finished(&self) -> bool {
        match self {
            ServerSession::Fast(s) => s.finished(),
            ServerSession::Private(s) => s.finished(),
        }
    }

    /// Handles the client's round and returns the server's answer.
    pub fn handle(&mut self, input: &RoundMessage) -> Result<RoundMessage> {
        match self {
            ServerSession::Fast(s) => s.handle(input),
            ServerSession::Private(s) => s.handle(input),
        }
    }

    /// The client's public key.
    pub fn key(&self) -> &PublicKey {
        match self {
            ServerSession::Fast(s) => s.key(),
            ServerSession::Private(s) => s.key(),
        }
    }

    /// The session's stock of re-randomizers, to fill ahead of the rounds
    /// (with [`ServerSession::randomness_needed`] values) in idle time.
    pub fn randomness(&self) -> &Arc<RandomnessPool> {
        match self {
            ServerSession::Fast(s) => s.randomness(),
            ServerSession::Private(s) => s.randomness(),
        }
    }

    /// Re-randomizers the rounds not yet served use.
    pub fn randomness_needed(&self) -> usize {
        match self {
            ServerSession::Fast(s) => s.randomness_needed(),
            ServerSession::Private(s) => s.randomness_needed(),
        }
    }

    /// Whether the stock of re-randomizers may be filled in the background
    /// now. The fast mode's stock uses a table of the client's key, which is
    /// built only once the first round's ciphertexts have passed validation
    /// (a Start alone costs the server nothing); the private mode's once
    /// the client's first round (its base-OT point) has.
    pub fn may_fill_ahead(&self) -> bool {
        match self {
            ServerSession::Fast(s) => s.next_round() > 0,
            // Not before the client's first round (its base-OT point) has
            // passed validation.
            ServerSession::Private(s) => s.next_round() > 0,
        }
    }
}

/// A model with its checked plan, ready to serve sessions.
#[derive(Debug, Clone)]
pub struct Evaluator {
    model: Arc<QuantModel>,
    plan: SessionPlan,
    /// Recently seen client keys with their fixed-base tables: a performance
    /// cache only (a fresh replica without it serves the same answers).
    keys: Arc<KeyCache>,
}

impl Evaluator {
    /// Pairs a model with the fast mode's plan for `key_bits` and `packing`.
    pub fn new(model: Arc<QuantModel>, key_bits: u32, packing: Packing) -> Result<Self> {
        Self::for_mode(model, key_bits, packing, Mode::Fast)
    }

    /// Pairs a model with the plan of `mode` for `key_bits` and `packing`.
    pub fn for_mode(model: Arc<QuantModel>, key_bits: u32, packing: Packing, mode: Mode) -> Result<Self> {
        let plan = Plan::for_mode(&model, key_bits, packing, mode)?;
        Self::from_checked_plan(model, plan)
    }

    /// Pairs a model with a given plan, refusing a plan that is not exactly
    /// the model's own (a wrong bound or layout would overflow slots).
    pub fn with_plan(model: Arc<QuantModel>, plan: Plan) -> Result<Self> {
        plan.check_against(&model)?;
        Self::from_checked_plan(model, plan)
    }

    fn from_checked_plan(model: Arc<QuantModel>, plan: Plan) -> Result<Self> {
        Ok(Evaluator { model, plan: SessionPlan::new(Arc::new(plan))?, keys: Arc::default() })
    }

    /// The same model and plan with SoftSpokenOT's group width set to `k`
    /// (4 or 8) instead of the planner's choice: private plans only (a
    /// fast plan with a width is refused, as is any other width).
    pub fn with_ot_group_bits(self, k: u32) -> Result<Self> {
        Ok(Evaluator { plan: self.plan.with_ot_group_bits(k)?, ..self })
    }

    /// Uses `cache` for client keys (a server shares one cache among all its
    /// evaluators, so that its memory budget holds for the whole server).
    pub fn with_key_cache(mut self, cache: Arc<KeyCache>) -> Self {
        self.keys = cache;
        self
    }

    /// The public plan.
    pub fn plan(&self) -> &Arc<Plan> {
        self.plan.plan()
    }

    /// The plan with what the sessions derive from it (a client in this
    /// process can share it).
    pub fn session_plan(&self) -> &SessionPlan {
        &self.plan
    }

    /// The private mode's circuits, for a private plan.
    pub fn circuits(&self) -> Option<&Arc<PrivateCircuits>> {
        self.plan.circuits()
    }

    /// The model.
    pub fn model(&self) -> &Arc<QuantModel> {
        &self.model
    }

    /// Starts a session in the plan's mode for a client's public key
    /// (already validated, of the plan's size). Returns it and the server's
    /// opening message where the mode has one (the private mode's setup).
    /// `output` is what the client asks to learn in the private mode.
    pub fn start(&self, key: PublicKey, output: Output) -> Result<(ServerSession, Option<RoundMessage>)> {
        let plan = self.plan.plan();
        if key.bits() != plan.key_bits {
            return Err(PlanError::KeySize { plan: plan.key_bits, key: key.bits() }.into());
        }
        let key = self.keys.get(key);
        Ok(match plan.mode {
            Mode::Fast => {
                (ServerSession::Fast(FastServerSession::new(self.model.clone(), plan.clone(), key)), None)
            }
            Mode::Private => {
                let circuits = self.plan.private_circuits()?;
                let (s, setup) =
                    PrivateServerSession::start(self.model.clone(), plan.clone(), circuits, key, output)?;
                (ServerSession::Private(Box::new(s)), Some(setup))
            }
        })
    }

    /// Starts a fast session (see [`Evaluator::start`]).
    pub fn session(&self, key: PublicKey) -> Result<FastServerSession> {
        match self.start(key, Output::Logits)? {
            (ServerSession::Fast(s), _) => Ok(s),
            (ServerSession::Private(_), _) => Err(PlanError::WrongMode(Mode::Fast.name()).into()),
        }
    }

    /// Starts a private session (see [`Evaluator::start`]); returns it and
    /// the server's setup message.
    pub fn private_session(
        &self,
        key: PublicKey,
        output: Output,
    ) -> Result<(PrivateServerSession, RoundMessage)> {
        if self.plan.plan().mode != Mode::Private {
            return Err(PlanError::ModeNotServed(Mode::Private.name()).into());
        }
        match self.start(key, output)? {
            (ServerSession::Private(s), Some(setup)) => Ok((*s, setup)),
            _ => unreachable!("a private plan starts a private session with a setup message"),
        }
    }
}

/// What one inference run in this process cost, each side timed apart.
#[derive(Debug, Clone)]
pub struct LocalRun {
    /// How the client's session ended.
    pub outcome: ClientStep,
    /// Time in the client's session.
    pub client: Duration,
    /// Time in the server's session.
    pub server: Duration,
    /// Bytes exchanged, both ways.
    pub bytes: usize,
    /// What garbling cost (nothing in the fast mode).
    pub stats: GarblingStats,
}

/// Runs one inference with both sides in this process: the client's
/// session against a server session just started, message by message.
pub fn run_in_process(
    client: &mut ClientSession,
    server: &mut ServerSession,
    opening: Option<RoundMessage>,
    image: &[u8],
) -> Result<LocalRun> {
    let (mut client_t, mut server_t) = (Duration::ZERO, Duration::ZERO);
    let mut bytes = opening.as_ref().map_or(0, RoundMessage::len_bytes);
    let t = Instant::now();
    let mut outgoing = client.start(image)?;
    client_t += t.elapsed();
    let mut incoming = opening;
    loop {
        if let Some(message) = outgoing.take() {
            bytes += message.len_bytes();
            let t = Instant::now();
            let answer = server.handle(&message)?;
            server_t += t.elapsed();
            bytes += answer.len_bytes();
            incoming = Some(answer);
        }
        let answer = incoming.take().ok_or(StateError::NoRound)?;
        let t = Instant::now();
        let step = client.receive(&answer)?;
        client_t += t.elapsed();
        match step {
            ClientStep::Send(next) => outgoing = Some(next),
            outcome => {
                return Ok(LocalRun {
                    outcome,
                    client: client_t,
                    server: server_t,
                    bytes,
                    stats: client.stats(),
                });
            }
        }
    }
}
