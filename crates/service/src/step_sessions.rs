//! InferStep: an inference as a sequence of unary calls, for clients that
//! cannot stream requests (browsers, over gRPC-web). Each session is the
//! same session an Infer stream runs ([`InferenceService::infer_stream`]),
//! fed through a channel; the calls deliver its messages and take its
//! answers one chunk at a time.
//!
//! Bounds: a session may be used only from the address that started it;
//! each wait (delivering a message, awaiting an answer) is bounded by the
//! idle timeout; an entry lives at most the session deadline plus the start
//! timeout (calls do not extend it) and is forgotten once idle for longer
//! than the idle timeout; a sweeper runs every few seconds.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use crate::pb;
use crate::server::{InferenceService, RoundStream};

/// Shortest and longest session names, in hex digits.
const NAME_DIGITS: std::ops::RangeInclusive<usize> = 32..=64;

/// How often the sweeper looks for sessions to forget.
const SWEEP_EVERY: Duration = Duration::from_secs(5);

type Answers = Arc<tokio::sync::Mutex<RoundStream>>;
type Inbound = mpsc::Sender<Result<pb::InferRequest, Status>>;

/// One open session: where its messages go, where its answers come from,
/// who started it and when.
struct Open {
    inbound: Inbound,
    answers: Answers,
    ip: Option<IpAddr>,
    created: Instant,
    last_used: Instant,
    /// Calls in progress: an entry is not idle while one waits (a slow
    /// round), only past its absolute lifetime.
    busy: usize,
}

/// The open InferStep sessions of a server, by name.
#[derive(Clone, Default)]
pub(crate) struct StepSessions {
    open: Arc<Mutex<HashMap<String, Open>>>,
    sweeper: Arc<std::sync::OnceLock<()>>,
}

/// When an entry is forgotten.
#[derive(Clone, Copy)]
struct Lifetimes {
    idle: Duration,
    whole: Duration,
}

impl StepSessions {
    fn table(&self) -> std::sync::MutexGuard<'_, HashMap<String, Open>> {
        self.open.lock().expect("no thread panics holding the step table")
    }

    fn sweep(open: &Mutex<HashMap<String, Open>>, life: Lifetimes) {
        let mut open = open.lock().expect("no thread panics holding the step table");
        open.retain(|_, s| {
            s.created.elapsed() <= life.whole && (s.busy > 0 || s.last_used.elapsed() <= life.idle)
        });
    }

    /// Starts the periodic sweep (once), from inside the runtime.
    fn start_sweeper(&self, life: Lifetimes) {
        let open: Weak<Mutex<HashMap<String, Open>>> = Arc::downgrade(&self.open);
        self.sweeper.get_or_init(|| {
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(SWEEP_EVERY).await;
                    let Some(open) = open.upgrade() else { return };
                    Self::sweep(&open, life);
                }
            });
        });
    }

    fn forget(&self, name: &str) {
        self.table().remove(name);
    }

    fn touch(&self, name: &str) {
        if let Some(s) = self.table().get_mut(name) {
            s.last_used = Instant::now();
        }
    }
}

/// Marks a call in progress on an entry; the mark goes when the call ends,
/// however it ends.
struct Busy<'a> {
    steps: &'a StepSessions,
    name: &'a str,
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        if let Some(s) = self.steps.table().get_mut(self.name) {
            s.busy = s.busy.saturating_sub(1);
            s.last_used = Instant::now();
        }
    }
}

/// Checks a session name: 32 to 64 lowercase hex digits.
fn check_name(name: &str) -> Result<(), Status> {
    let hex = name.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !hex || !NAME_DIGITS.contains(&name.len()) {
        return Err(Status::invalid_argument(format!(
            "InferStep.session must be {} to {} lowercase hex digits (got {} characters)",
            NAME_DIGITS.start(),
            NAME_DIGITS.end(),
            name.len()
        )));
    }
    Ok(())
}

fn is_start(request: &Option<pb::InferRequest>) -> bool {
    matches!(request, Some(pb::InferRequest { kind: Some(pb::infer_request::Kind::Start(_)) }))
}

impl InferenceService {
    fn lifetimes(&self) -> Lifetimes {
        let c = &self.config;
        Lifetimes {
            idle: c.idle_timeout + c.start_timeout,
            whole: c.session_deadline + c.start_timeout + c.idle_timeout,
        }
    }

    /// Delivers `req`'s message to its session (opening it on Start) and,
    /// if asked, returns the server's next chunk.
    pub(crate) async fn run_step(
        &self,
        req: pb::InferStepRequest,
        ip: Option<IpAddr>,
    ) -> Result<pb::InferStepResponse, Status> {
        check_name(&req.session)?;
        let life = self.lifetimes();
        self.steps.start_sweeper(life);
        StepSessions::sweep(&self.steps.open, life);
        let idle = self.config.idle_timeout;
        let (inbound, answers) = self.step_session(&req, ip)?;
        let _busy = Busy { steps: &self.steps, name: &req.session };
        if let Some(message) = req.request {
            match tokio::time::timeout(idle, inbound.send(Ok(message))).await {
                Ok(Ok(())) => {}
                // The session has ended: say why, with its own status.
                Ok(Err(_)) => return Err(self.final_status(&req.session, &answers).await),
                Err(_) => {
                    self.steps.forget(&req.session);
                    return Err(Status::deadline_exceeded(format!(
                        "the session took no message for {} s: it waits for its answers to be read (receive)",
                        idle.as_secs_f64()
                    )));
                }
            }
        }
        self.steps.touch(&req.session);
        if !req.receive {
            return Ok(pb::InferStepResponse { round: None });
        }
        let next = tokio::time::timeout(idle, async { answers.lock().await.next().await }).await;
        self.steps.touch(&req.session);
        match next {
            // After the session's last answer its entry idles out.
            Ok(Some(Ok(round))) => Ok(pb::InferStepResponse { round: Some(round) }),
            Ok(Some(Err(status))) => {
                self.steps.forget(&req.session);
                Err(status)
            }
            Ok(None) => {
                self.steps.forget(&req.session);
                Err(Status::failed_precondition("the session has ended: no more answers"))
            }
            Err(_) => Err(Status::deadline_exceeded(format!(
                "no answer from the session within {} s (it waits for the client's next message?)",
                idle.as_secs_f64()
            ))),
        }
    }

    /// The status a session ended with (its last answer, if an error),
    /// after which it is forgotten.
    async fn final_status(&self, name: &str, answers: &Answers) -> Status {
        let last = tokio::time::timeout(Duration::from_secs(1), async {
            let mut answers = answers.lock().await;
            while let Some(answer) = answers.next().await {
                if let Err(status) = answer {
                    return Some(status);
                }
            }
            None
        })
        .await;
        self.steps.forget(name);
        match last {
            Ok(Some(status)) => status,
            _ => Status::failed_precondition("the session has ended"),
        }
    }

    /// The session `req` names: the open one (from the address that
    /// started it), or a new one when `req` carries Start.
    fn step_session(
        &self,
        req: &pb::InferStepRequest,
        ip: Option<IpAddr>,
    ) -> Result<(Inbound, Answers), Status> {
        let mut open = self.steps.table();
        let starts = is_start(&req.request);
        if let Some(s) = open.get_mut(&req.session) {
            if starts {
                return Err(Status::already_exists("InferStep.session names a session that has started"));
            }
            if s.ip != ip {
                return Err(Status::permission_denied(
                    "InferStep.session belongs to another client address: a session is continued from the address that started it",
                ));
            }
            s.last_used = Instant::now();
            s.busy += 1;
            return Ok((s.inbound.clone(), s.answers.clone()));
        }
        if !starts {
            return Err(Status::not_found(
                "InferStep.session names no open session (it ended, timed out, or never began with Start)",
            ));
        }
        // A session that has ended keeps its entry (so that its next call
        // gets its status) only while the room is not needed: ended
        // sessions (a refused Start ends at once and costs nothing) must
        // not hold the table, or a few cheap calls would lock out everyone.
        let share = self.config.max_sessions_per_client.unwrap_or(self.config.max_sessions);
        let held = |open: &HashMap<String, Open>| open.values().filter(|s| s.ip == ip).count();
        if open.len() >= 4 * self.config.max_sessions || held(&open) >= share {
            open.retain(|_, s| s.busy > 0 || !s.inbound.is_closed());
        }
        if open.len() >= 4 * self.config.max_sessions {
            return Err(Status::resource_exhausted("too many InferStep sessions are open; try again later"));
        }
        // One address holds at most its share of the table (its session
        // share, else the session limit), so it cannot fill it for others.
        if held(&open) >= share {
            return Err(Status::resource_exhausted(
                "this address has as many InferStep sessions open as it may; finish or abandon one (it is forgotten after the idle timeout)",
            ));
        }
        let (tx, rx) = mpsc::channel(2);
        let answers = Arc::new(tokio::sync::Mutex::new(self.infer_stream(ReceiverStream::new(rx), ip)?));
        let now = Instant::now();
        let entry =
            Open { inbound: tx.clone(), answers: answers.clone(), ip, created: now, last_used: now, busy: 1 };
        open.insert(req.session.clone(), entry);
        Ok((tx, answers))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_names_are_hex_of_32_to_64_digits() {
        assert!(check_name(&"a".repeat(32)).is_ok());
        assert!(check_name(&"0123456789abcdef".repeat(4)).is_ok());
        for bad in
            ["", "abc", &"A".repeat(32), &"g".repeat(32), &"a".repeat(65), &format!("{}-", "a".repeat(31))]
        {
            let err = check_name(bad).unwrap_err();
            assert_eq!(err.code(), tonic::Code::InvalidArgument);
            assert!(err.message().contains("lowercase hex"), "{}", err.message());
        }
    }
}
