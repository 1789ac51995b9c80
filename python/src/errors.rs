//! The SDK's exceptions, and the one place client errors become them.

use ppdnn_service::client::ClientError;
use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;

create_exception!(
    ppdnn,
    Error,
    PyException,
    "Anything ppdnn could not do; the base of its other exceptions."
);
create_exception!(ppdnn, ConnectError, Error, "The server could not be reached.");
create_exception!(
    ppdnn,
    ServerError,
    Error,
    "The server answered with an error status: `code` (e.g. 'UNAVAILABLE') and `message`."
);
create_exception!(
    ppdnn,
    ProtocolError,
    Error,
    "The protocol failed on the client: an answer that does not fit the plan, for instance."
);

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("Error", py.get_type::<Error>())?;
    m.add("ConnectError", py.get_type::<ConnectError>())?;
    m.add("ServerError", py.get_type::<ServerError>())?;
    m.add("ProtocolError", py.get_type::<ProtocolError>())?;
    Ok(())
}

/// The gRPC status name of a code, as the gRPC specification spells it.
fn code_name(code: tonic::Code) -> String {
    let camel = format!("{code:?}");
    let mut name = String::new();
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            name.push('_');
        }
        name.push(c.to_ascii_uppercase());
    }
    name
}

/// The Python exception for a client error; a server status carries its
/// `code` and `message` as attributes.
pub(crate) fn client_error(py: Python<'_>, e: ClientError) -> PyErr {
    match e {
        ClientError::Connect { .. } => ConnectError::new_err(e.to_string()),
        ClientError::Status(status) => {
            let code = code_name(status.code());
            let message = status.message().to_string();
            let err = ServerError::new_err(format!("{code}: {message}"));
            let value = err.value(py);
            // Setting attributes on a fresh exception instance cannot fail.
            let _ = value.setattr("code", code);
            let _ = value.setattr("message", message);
            err
        }
        ClientError::Protocol(p) => ProtocolError::new_err(p.to_string()),
        other => Error::new_err(other.to_string()),
    }
}
