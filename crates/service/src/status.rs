//! Why a call or an inference stream failed, and the one place where that
//! is turned into a gRPC status: the client's fault (INVALID_ARGUMENT,
//! NOT_FOUND, FAILED_PRECONDITION), a resource limit (RESOURCE_EXHAUSTED,
//! DEADLINE_EXCEEDED), the client going away (CANCELLED), or the server's
//! own fault (INTERNAL). docs/PROTOCOL.md lists them for clients.

use tonic::{Code, Status};

use crate::budget::QueryBudget;
use crate::convert::{WireError, shown};

/// A failed DescribeModel call or Infer stream.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    /// More streams are waiting for their Start than the server allows.
    #[error("too many streams are opening at once; try again later")]
    TooManyOpening,
    /// The server is at its session limit.
    #[error("the server is at its limit of {max} concurrent inferences; try again later")]
    Busy {
        /// The limit.
        max: usize,
    },
    /// The client's address has its whole share of streams waiting for Start.
    #[error("this client address already has {max} streams waiting to start, its share of the server")]
    OpeningShare {
        /// The share.
        max: usize,
    },
    /// The client's address has its whole share of sessions.
    #[error("this client address already has {max} inferences in progress, its share of the server")]
    ClientShare {
        /// The share.
        max: usize,
    },
    /// The server has no model.
    #[error("no models")]
    NoModels,
    /// A model name the server does not have.
    #[error("unknown model {} (this server has: {})", shown(.name), .available.join(", "))]
    UnknownModel {
        /// The name asked for.
        name: String,
        /// The names there are.
        available: Vec<String>,
    },
    /// A key size the server has no plans for.
    #[error("key size {bits} is not accepted (accepted: {} bits)", .served.iter().map(u32::to_string).collect::<Vec<_>>().join(", "))]
    KeyNotServed {
        /// The key's size.
        bits: u32,
        /// The sizes served.
        served: Vec<u32>,
    },
    /// An output the server does not release.
    #[error("this server does not release the {output} (it releases: {})", .offered.join(", "))]
    OutputNotOffered {
        /// The output asked for.
        output: &'static str,
        /// The outputs released.
        offered: Vec<&'static str>,
    },
    /// A query budget with no inference left for now.
    #[error(
        "the client {which}'s query budget ({budget}) is spent; the next inference may start in {:.1} s",
        .wait.as_secs_f64()
    )]
    BudgetExhausted {
        /// "key" or "address".
        which: &'static str,
        /// The budget.
        budget: QueryBudget,
        /// How long until the next inference may start.
        wait: std::time::Duration,
    },
    /// A mode the server does not offer.
    #[error("this server does not offer the {mode} mode (it offers: {})", .offered.join(", "))]
    ModeNotOffered {
        /// The mode asked for.
        mode: &'static str,
        /// The modes offered.
        offered: Vec<&'static str>,
    },
    /// The private mode with the unpacked layout.
    #[error("the private mode uses the packed layout only")]
    PrivateUnpacked,
    /// The unpacked layout on a server that does not offer it.
    #[error(
        "this server does not offer the unpacked layout (its operator can enable it with serve --allow-unpacked)"
    )]
    UnpackedNotOffered,
    /// A model digest other than the served model's.
    #[error("model {model} has digest {digest}, not the {} the client expects", shown(.expected))]
    DigestMismatch {
        /// The model.
        model: String,
        /// Its digest.
        digest: String,
        /// The digest the client sent.
        expected: String,
    },
    /// A wire value that does not decode, or a refused key.
    #[error(transparent)]
    Wire(#[from] WireError),
    /// A private-mode Start without the key's modulus proof.
    #[error(
        "the private mode needs the key's modulus proof (Start.modulus_proof): a proof that n is a Paillier-Blum modulus"
    )]
    NoModulusProof,
    /// A private-mode Start without the key's factor proof.
    #[error(
        "the private mode needs the key's factor proof (Start.factor_proof): a proof that n has no small factor, against the server's factor_params"
    )]
    NoFactorProof,
    /// A factor proof made against parameters this server does not have.
    #[error(
        "the factor proof was made for other factor-proof parameters than this server's (a server that restarts without --factor-params makes new ones): describe the model again"
    )]
    FactorParamsChanged,
    /// A modulus proof that does not parse or does not verify.
    #[error("the key's {0}")]
    ModulusProof(ppdnn_paillier::Error),
    /// A first message that is not Start.
    #[error("the first message of an inference must be Start")]
    NotStart,
    /// A Start without a key.
    #[error("Start carries no public key")]
    NoKey,
    /// A Start in the middle of an inference.
    #[error("a second Start arrived in round {round}")]
    SecondStart {
        /// The round in progress.
        round: usize,
    },
    /// A message with no content.
    #[error("an empty message")]
    EmptyMessage,
    /// A chunk that does not fit the round.
    #[error("round {round}: {problem}")]
    Chunk {
        /// The round in progress.
        round: usize,
        /// What is wrong with the chunk.
        problem: ChunkError,
    },
    /// A message over the size limit.
    #[error("a message exceeds the server's limit of {max} bytes")]
    TooLarge {
        /// The limit.
        max: usize,
    },
    /// Bytes that do not decode as a message.
    #[error("an undecodable message: {}", shown(.detail))]
    Undecodable {
        /// The decoder's words.
        detail: String,
    },
    /// The protocol refused a message (or failed on the server's side).
    #[error(transparent)]
    Protocol(#[from] ppdnn_protocol::Error),
    /// The client was silent too long.
    #[error("no message for {seconds} s while waiting for {what}; the session was dropped")]
    Idle {
        /// The idle limit.
        seconds: f64,
        /// What the server waited for.
        what: String,
    },
    /// The inference took longer than the session deadline.
    #[error("the inference exceeded the server's deadline of {seconds} s per session and was dropped")]
    Deadline {
        /// The deadline.
        seconds: f64,
    },
    /// The client closed its stream early.
    #[error("the client closed the stream while the server waited for {what}")]
    ClientClosed {
        /// What the server waited for.
        what: String,
    },
    /// The client stopped reading the answers.
    #[error("the client went away in round {round}")]
    ClientGone {
        /// The round being answered.
        round: usize,
    },
    /// A status that the client's stream itself reported.
    #[error("{}", .0.message())]
    Stream(Status),
    /// A round's material over the cap that start-up checked.
    #[error("a round's material exceeds the server's cap")]
    GarbledCap,
    /// No evaluator for a key size, packing and mode that were accepted.
    #[error("no evaluator for an accepted key size")]
    NoEvaluator,
    /// A task of the server's own failed (a bug).
    #[error("{0}")]
    Task(#[from] tokio::task::JoinError),
}

/// A chunk that does not fit its round.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChunkError {
    /// A chunk for another round.
    #[error("a message for round {got} arrived where round {expected} was expected")]
    WrongRound {
        /// The round the chunk names.
        got: u32,
        /// The round in progress.
        expected: usize,
    },
    /// Ciphertext bytes that do not divide into ciphertexts.
    #[error("a chunk of {bytes} bytes is not a whole number of {width}-byte ciphertexts")]
    Ragged {
        /// Bytes of the chunk.
        bytes: usize,
        /// Bytes of one ciphertext.
        width: usize,
    },
    /// An empty chunk before the last.
    #[error("an empty chunk that is not the last; every chunk but the last carries ciphertexts or material")]
    EmptyNotLast,
    /// Ciphertexts sent after material.
    #[error("ciphertexts after material: a round sends its ciphertexts first")]
    CiphertextsAfterMaterial,
    /// More ciphertexts than the plan's.
    #[error("more than the plan's {count} ciphertexts ({bytes} bytes)")]
    TooManyCiphertexts {
        /// The plan's count.
        count: usize,
        /// Their bytes.
        bytes: usize,
    },
    /// More material than the plan's.
    #[error("more than the plan's {bytes} bytes of material")]
    TooMuchMaterial {
        /// The plan's bytes.
        bytes: usize,
    },
}

impl CallError {
    /// The status code: whose fault it is, decided here and only here.
    pub fn code(&self) -> Code {
        use CallError::*;
        match self {
            TooManyOpening
            | OpeningShare { .. }
            | Busy { .. }
            | ClientShare { .. }
            | TooLarge { .. }
            | BudgetExhausted { .. } => Code::ResourceExhausted,
            NoModels | UnknownModel { .. } => Code::NotFound,
            ModeNotOffered { .. }
            | OutputNotOffered { .. }
            | UnpackedNotOffered
            | DigestMismatch { .. }
            | FactorParamsChanged => Code::FailedPrecondition,
            Idle { .. } | Deadline { .. } => Code::DeadlineExceeded,
            ClientClosed { .. } | ClientGone { .. } => Code::Cancelled,
            Stream(status) => status.code(),
            Protocol(e) if e.is_internal() => Code::Internal,
            Wire(WireError::Key(ppdnn_paillier::Error::Random(_))) => Code::Internal,
            GarbledCap | NoEvaluator | Task(_) => Code::Internal,
            KeyNotServed { .. }
            | PrivateUnpacked
            | Wire(_)
            | NotStart
            | NoKey
            | NoModulusProof
            | NoFactorProof
            | ModulusProof(_)
            | SecondStart { .. }
            | EmptyMessage
            | Chunk { .. }
            | Undecodable { .. }
            | Protocol(_) => Code::InvalidArgument,
        }
    }
}

/// The metadata key of a FAILED_PRECONDITION status that asks the client to
/// read the model's description again (value `factor-params`).
pub const REFRESH: &str = "ppdnn-refresh";

/// The metadata key of a RESOURCE_EXHAUSTED status for a spent query
/// budget: milliseconds until the next inference may start.
pub const RETRY_AFTER_MS: &str = "retry-after-ms";

impl From<CallError> for Status {
    fn from(e: CallError) -> Self {
        match e {
            CallError::Stream(status) => status,
            CallError::FactorParamsChanged => {
                let mut status = Status::new(e.code(), e.to_string());
                status
                    .metadata_mut()
                    .insert(REFRESH, "factor-params".parse().expect("ASCII is valid metadata"));
                status
            }
            CallError::BudgetExhausted { wait, .. } => {
                let mut status = Status::new(e.code(), e.to_string());
                let ms = wait.as_millis().max(1).to_string();
                status.metadata_mut().insert(RETRY_AFTER_MS, ms.parse().expect("digits are valid metadata"));
                status
            }
            e => Status::new(e.code(), e.to_string()),
        }
    }
}

impl From<ppdnn_paillier::Error> for CallError {
    fn from(e: ppdnn_paillier::Error) -> Self {
        CallError::Wire(WireError::Key(e))
    }
}
