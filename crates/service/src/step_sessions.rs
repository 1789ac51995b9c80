//! InferStep: an inference as a sequence of unary calls, for clients that
//! cannot stream requests (browsers, over gRPC-web). Each session is the
//! same session an Infer stream runs ([`InferenceService::infer_stream`]),
//! fed through a channel; the calls deliver its messages and take its
//! answers one chunk at a time.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use crate::pb;
use crate::server::{InferenceService, RoundStream};

/// Shortest and longest session names, in hex digits.
const NAME_DIGITS: std::ops::RangeInclusive<usize> = 32..=64;

/// One open session: where its messages go and where its answers come from.
struct Open {
    inbound: mpsc::Sender<Result<pb::InferRequest, Status>>,
    answers: Arc<tokio::sync::Mutex<RoundStream>>,
    last_used: Instant,
}

/// The open InferStep sessions of a server, by name.
#[derive(Clone, Default)]
pub(crate) struct StepSessions {
    open: Arc<Mutex<HashMap<String, Open>>>,
}

impl StepSessions {
    /// Forgets sessions unused for longer than `idle` (their session task
    /// has ended on its own idle timeout by then).
    fn sweep(&self, idle: Duration) {
        let mut open = self.open.lock().expect("no thread panics holding the step table");
        open.retain(|_, s| s.last_used.elapsed() <= idle && !s.inbound.is_closed());
    }

    fn forget(&self, name: &str) {
        self.open.lock().expect("no thread panics holding the step table").remove(name);
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

impl InferenceService {
    /// Delivers `req`'s messages to its session (opening it on Start) and,
    /// if asked, returns the server's next chunk.
    pub(crate) async fn run_step(
        &self,
        req: pb::InferStepRequest,
        ip: Option<IpAddr>,
    ) -> Result<pb::InferStepResponse, Status> {
        check_name(&req.session)?;
        let steps = &self.steps;
        steps.sweep(self.config.idle_timeout + self.config.start_timeout);
        let (inbound, answers) = self.step_session(&req, ip)?;
        for message in req.requests {
            if inbound.send(Ok(message)).await.is_err() {
                steps.forget(&req.session);
                return Err(Status::failed_precondition("the session has ended"));
            }
        }
        if !req.receive {
            return Ok(pb::InferStepResponse { round: None });
        }
        let next = answers.lock().await.next().await;
        match next {
            // After the session's last answer its task ends and closes the
            // channel; the next sweep forgets the session.
            Some(Ok(round)) => Ok(pb::InferStepResponse { round: Some(round) }),
            Some(Err(status)) => {
                steps.forget(&req.session);
                Err(status)
            }
            None => {
                steps.forget(&req.session);
                Err(Status::failed_precondition("the session has ended: no more answers"))
            }
        }
    }

    /// The session `req` names: the open one, or a new one when `req`
    /// begins with Start.
    #[allow(clippy::type_complexity)]
    fn step_session(
        &self,
        req: &pb::InferStepRequest,
        ip: Option<IpAddr>,
    ) -> Result<(mpsc::Sender<Result<pb::InferRequest, Status>>, Arc<tokio::sync::Mutex<RoundStream>>), Status>
    {
        let mut open = self.steps.open.lock().expect("no thread panics holding the step table");
        let starts = matches!(
            req.requests.first(),
            Some(pb::InferRequest { kind: Some(pb::infer_request::Kind::Start(_)) })
        );
        if let Some(s) = open.get_mut(&req.session) {
            if starts {
                return Err(Status::already_exists("InferStep.session names a session that has started"));
            }
            s.last_used = Instant::now();
            return Ok((s.inbound.clone(), s.answers.clone()));
        }
        if !starts {
            return Err(Status::not_found(
                "InferStep.session names no open session (it ended, timed out, or never began with Start)",
            ));
        }
        if open.len() >= 4 * self.config.max_sessions {
            return Err(Status::resource_exhausted("too many InferStep sessions are open; try again later"));
        }
        let (tx, rx) = mpsc::channel(16);
        let answers = Arc::new(tokio::sync::Mutex::new(self.infer_stream(ReceiverStream::new(rx), ip)?));
        open.insert(
            req.session.clone(),
            Open { inbound: tx.clone(), answers: answers.clone(), last_used: Instant::now() },
        );
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
