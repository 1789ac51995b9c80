//! `ppdnn._native`: the Rust half of the ppdnn Python SDK.
//!
//! The encoding, packing and protocol are the Rust crates' own (one source of
//! truth); this module only converts between Python values and theirs, and
//! releases the GIL while the client computes or waits for the server. The
//! Python package `ppdnn` (python/ppdnn/__init__.py) gives it its idiom.

use std::sync::OnceLock;

use pyo3::prelude::*;
use pyo3::types::PyInt;

mod client;
mod errors;
mod paillier;

/// The tokio runtime every client of this process shares (two workers: the
/// Paillier arithmetic runs on rayon's threads, not on these).
pub(crate) fn runtime() -> PyResult<&'static tokio::runtime::Runtime> {
    static RUNTIME: OnceLock<std::io::Result<tokio::runtime::Runtime>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("ppdnn-client")
                .enable_all()
                .build()
        })
        .as_ref()
        .map_err(|e| errors::Error::new_err(format!("cannot start the client runtime: {e}")))
}

/// A Python int from a GMP integer (through its hexadecimal digits).
pub(crate) fn to_py_int<'py>(py: Python<'py>, x: &ppdnn_paillier::Integer) -> PyResult<Bound<'py, PyAny>> {
    py.get_type::<PyInt>().call1((x.to_string_radix(16), 16))
}

/// A GMP integer from a Python int; anything else is a TypeError.
pub(crate) fn from_py_int(x: &Bound<'_, PyAny>, what: &str) -> PyResult<ppdnn_paillier::Integer> {
    if !x.is_instance_of::<PyInt>() || x.is_instance_of::<pyo3::types::PyBool>() {
        return Err(pyo3::exceptions::PyTypeError::new_err(format!(
            "{what} must be an int, not {}",
            x.get_type().name()?
        )));
    }
    let hex: String = x.call_method1("__format__", ("x",))?.extract()?;
    ppdnn_paillier::Integer::from_str_radix(&hex, 16)
        .map_err(|e| pyo3::exceptions::PyValueError::new_err(format!("{what}: {e}")))
}

/// Reads a PNG as a model input of `shape` (channels, height, width): the
/// 28x28 grey pixels of the shipped models by default, or grey / RGB planes.
#[pyfunction]
#[pyo3(signature = (path, shape = (1, 28, 28)))]
fn load_png(py: Python<'_>, path: std::path::PathBuf, shape: (usize, usize, usize)) -> PyResult<Vec<u8>> {
    py.detach(|| ppdnn_model::image_io::load_png_as(&path, [shape.0, shape.1, shape.2]))
        .map_err(|e| errors::Error::new_err(e.to_string()))
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    errors::register(m)?;
    m.add_class::<paillier::Key>()?;
    m.add_class::<paillier::PublicKey>()?;
    m.add_class::<paillier::Ciphertext>()?;
    m.add_class::<client::Client>()?;
    m.add_function(wrap_pyfunction!(load_png, m)?)?;
    Ok(())
}
