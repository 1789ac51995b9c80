//! The client of a ppdnn server, for Python: one connection, one key, and a
//! checked plan per model, built on `ppdnn_service::Classifier`.

use std::collections::HashMap;
use std::sync::Mutex;

use ppdnn_protocol::Mode;
use ppdnn_protocol::Output;
use ppdnn_service::classifier::{Answer, Classifier, ClassifierOptions, RetryPolicy};
use ppdnn_service::{RemoteClient, convert};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList};

use crate::errors::client_error;
use crate::paillier::Key;
use crate::runtime;

/// A connection to a ppdnn server with the key that encrypts the inputs.
#[pyclass(module = "ppdnn", frozen)]
pub struct Client {
    url: String,
    key: Key,
    options: ClassifierOptions,
    remote: RemoteClient,
    /// One classifier (plan, circuits, randomness) per model name asked for.
    classifiers: Mutex<HashMap<String, Classifier>>,
}

#[pymethods]
impl Client {
    /// Connects to `url`; a fresh key of `bits` bits is generated when `key` is None.
    #[new]
    #[pyo3(signature = (url, key = None, mode = None, output = "logits", ca_pem = None, attempts = 4, bits = 2048, insecure = false, max_message_mib = 4))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        url: String,
        key: Option<&Bound<'_, Key>>,
        mode: Option<&str>,
        output: &str,
        ca_pem: Option<&Bound<'_, PyBytes>>,
        attempts: u32,
        bits: u32,
        insecure: bool,
        max_message_mib: usize,
    ) -> PyResult<Client> {
        let mode =
            mode.map(str::parse::<Mode>).transpose().map_err(|e| PyValueError::new_err(e.to_string()))?;
        let output = output.parse::<Output>().map_err(|e| PyValueError::new_err(e.to_string()))?;
        if !(1..=20).contains(&attempts) {
            return Err(PyValueError::new_err(format!("attempts={attempts}: choose 1 to 20")));
        }
        if !(1..=1024).contains(&max_message_mib) {
            return Err(PyValueError::new_err(format!(
                "max_message_mib={max_message_mib}: choose 1 to 1024"
            )));
        }
        let options = ClassifierOptions {
            model: String::new(),
            mode,
            output,
            max_message: max_message_mib << 20,
            ca_pem: ca_pem.map(|b| b.as_bytes().to_vec()),
            retry: RetryPolicy { attempts, ..RetryPolicy::default() },
            ..ClassifierOptions::default()
        };
        let key = match key {
            Some(k) => k.get().clone(),
            None => Key::generate(py, bits, insecure)?,
        };
        let rt = runtime()?;
        let remote = py
            .detach(|| {
                rt.block_on(RemoteClient::connect_with(&url, options.max_message, options.ca_pem.as_deref()))
            })
            .map_err(|e| client_error(py, e))?;
        Ok(Client { url, key, options, remote, classifiers: Mutex::new(HashMap::new()) })
    }

    /// The key that encrypts this client's inputs.
    #[getter]
    fn key(&self) -> Key {
        self.key.clone()
    }

    /// The server's address.
    #[getter]
    fn url(&self) -> &str {
        &self.url
    }

    /// The models the server serves: name, dataset, digest and modes of each.
    fn models<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let mut remote = self.remote.clone();
        let rt = runtime()?;
        let models = py.detach(|| rt.block_on(remote.list_models())).map_err(|e| client_error(py, e))?;
        let list = PyList::empty(py);
        for m in models {
            let d = PyDict::new(py);
            d.set_item("name", &m.name)?;
            d.set_item("dataset", &m.dataset)?;
            d.set_item("digest", &m.digest)?;
            let modes: Vec<&str> =
                m.modes.iter().filter_map(|&v| convert::mode_from_pb(v).ok()).map(Mode::name).collect();
            d.set_item("modes", modes)?;
            list.append(d)?;
        }
        Ok(list)
    }

    /// A model's description as this client will use it: name, digest,
    /// input shape, classes, mode, output and key size.
    #[pyo3(signature = (model = None))]
    fn describe<'py>(&self, py: Python<'py>, model: Option<String>) -> PyResult<Bound<'py, PyDict>> {
        let c = self.classifier(py, model)?;
        let d = PyDict::new(py);
        d.set_item("name", c.model())?;
        d.set_item("digest", &c.plan().model_digest)?;
        d.set_item("input_shape", c.input_shape().to_vec())?;
        d.set_item("classes", c.classes().to_vec())?;
        d.set_item("mode", c.mode().name())?;
        d.set_item("output", c.output().name())?;
        d.set_item("key_bits", c.plan().key_bits)?;
        Ok(d)
    }

    /// Classifies one input: the model's pixels (0..255) as bytes in its input layout.
    #[pyo3(signature = (pixels, model = None))]
    fn classify<'py>(
        &self,
        py: Python<'py>,
        pixels: &Bound<'py, PyBytes>,
        model: Option<String>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let c = self.classifier(py, model)?;
        let pixels = pixels.as_bytes().to_vec();
        let rt = runtime()?;
        let answer = py.detach(|| rt.block_on(c.classify(pixels))).map_err(|e| client_error(py, e))?;
        result(py, &c, answer)
    }

    /// Classifies several inputs one after the other, with a progress bar
    /// on standard error when `progress` is true.
    #[pyo3(signature = (inputs, model = None, progress = false))]
    fn classify_many<'py>(
        &self,
        py: Python<'py>,
        inputs: Vec<Bound<'py, PyBytes>>,
        model: Option<String>,
        progress: bool,
    ) -> PyResult<Bound<'py, PyList>> {
        let c = self.classifier(py, model)?;
        let inputs: Vec<Vec<u8>> = inputs.iter().map(|b| b.as_bytes().to_vec()).collect();
        let rt = runtime()?;
        let bar = if progress {
            indicatif::ProgressBar::new(inputs.len() as u64)
        } else {
            indicatif::ProgressBar::hidden()
        };
        let answers = py.detach(|| {
            rt.block_on(async {
                let mut out = Vec::with_capacity(inputs.len());
                for (i, pixels) in inputs.into_iter().enumerate() {
                    match c.classify(pixels).await {
                        Ok(a) => out.push(a),
                        Err(e) => return Err((i, e)),
                    }
                    bar.inc(1);
                }
                bar.finish_and_clear();
                Ok(out)
            })
        });
        let answers = answers.map_err(|(i, e)| {
            let err = client_error(py, e);
            // Which input failed; setting an attribute on a fresh exception cannot fail.
            let _ = err.value(py).setattr("index", i);
            err
        })?;
        let list = PyList::empty(py);
        for a in answers {
            list.append(result(py, &c, a)?)?;
        }
        Ok(list)
    }

    fn __repr__(&self) -> String {
        format!("Client({:?}, key_bits={})", self.url, self.key.inner.public_key().bits())
    }
}

impl Client {
    /// The classifier for `model` (the server's first when None), connected
    /// once and kept. The lock is never held while the GIL is released.
    fn classifier(&self, py: Python<'_>, model: Option<String>) -> PyResult<Classifier> {
        let name = model.unwrap_or_default();
        if let Some(c) = self.lock().get(&name) {
            return Ok(c.clone());
        }
        let options = ClassifierOptions { model: name.clone(), ..self.options.clone() };
        let key = (*self.key.inner).clone();
        let rt = runtime()?;
        let c = py
            .detach(|| rt.block_on(Classifier::with_client(self.remote.clone(), key, &options)))
            .map_err(|e| client_error(py, e))?;
        self.lock().insert(name, c.clone());
        Ok(c)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Classifier>> {
        // A poisoned map still holds valid classifiers.
        self.classifiers.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One answer as a dict for the Python layer.
fn result<'py>(py: Python<'py>, c: &Classifier, answer: Answer) -> PyResult<Bound<'py, PyDict>> {
    let r = answer.classification;
    let d = PyDict::new(py);
    d.set_item("label", r.label)?;
    d.set_item("class_name", c.classes().get(r.label).cloned().unwrap_or_default())?;
    d.set_item("scores", c.scores(&r.logits))?;
    d.set_item("logits", r.logits)?;
    d.set_item("model", c.model())?;
    d.set_item("mode", r.mode.name())?;
    d.set_item("output", c.output().name())?;
    d.set_item("seconds", r.duration.as_secs_f64())?;
    d.set_item("client_seconds", r.client_compute.as_secs_f64())?;
    d.set_item("bytes_sent", r.bytes_sent)?;
    d.set_item("bytes_received", r.bytes_received)?;
    d.set_item("garbled_bytes", r.garbled_bytes)?;
    d.set_item("retries", answer.retried)?;
    Ok(d)
}
