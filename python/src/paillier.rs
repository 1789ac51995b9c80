//! Keys and ciphertexts for Python: the key files of the CLI, and Paillier
//! used directly as python-paillier (phe) is used.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ppdnn_paillier::{KeyPolicy, PrivateKey, keyfile};
use pyo3::exceptions::{PyOSError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::{from_py_int, to_py_int};

/// A Paillier error as the Python exception a caller expects: a file that
/// cannot be read or written is an OSError, anything else a ValueError.
pub(crate) fn paillier_error(e: ppdnn_paillier::Error) -> PyErr {
    match e {
        ppdnn_paillier::Error::Io { .. } => PyOSError::new_err(e.to_string()),
        _ => PyValueError::new_err(e.to_string()),
    }
}

/// A key file's text; a file that cannot be read is an OSError.
fn read(path: &Path) -> PyResult<String> {
    std::fs::read_to_string(path).map_err(|e| PyOSError::new_err(format!("{}: {e}", path.display())))
}

/// A key file whose content is refused: a ValueError naming the file.
fn in_file(path: &Path, e: ppdnn_paillier::Error) -> PyErr {
    PyValueError::new_err(format!("{}: {e}", path.display()))
}

fn policy(insecure: bool) -> KeyPolicy {
    KeyPolicy::insecure_if(insecure)
}

/// A private key (with its public half). Only its holder can decrypt; it
/// never leaves this process except through `save`.
#[pyclass(module = "ppdnn", frozen)]
#[derive(Clone)]
pub struct Key {
    pub(crate) inner: Arc<PrivateKey>,
}

#[pymethods]
impl Key {
    /// Generates a key of `bits` bits (as the key policy allows: 2048 to
    /// 4096 in multiples of 16, smaller sizes only with `insecure=True`, for
    /// tests), with Blum primes (a private-mode server asks for the proof
    /// they allow).
    #[staticmethod]
    #[pyo3(signature = (bits = 2048, insecure = false))]
    pub(crate) fn generate(py: Python<'_>, bits: u32, insecure: bool) -> PyResult<Key> {
        let pair =
            py.detach(|| ppdnn_paillier::generate_keypair(bits, policy(insecure))).map_err(paillier_error)?;
        Ok(Key { inner: Arc::new(pair.private) })
    }

    /// Reads a private key file (the JSON of `ppdnn key generate`).
    #[staticmethod]
    #[pyo3(signature = (path, insecure = false))]
    fn load(py: Python<'_>, path: PathBuf, insecure: bool) -> PyResult<Key> {
        let text = zeroize::Zeroizing::new(read(&path)?);
        let key = py
            .detach(|| keyfile::private_key_from_json(&text, policy(insecure)))
            .map_err(|e| in_file(&path, e))?;
        Ok(Key { inner: Arc::new(key) })
    }

    /// Writes the private key file, readable by its owner only.
    fn save(&self, path: PathBuf) -> PyResult<()> {
        keyfile::write_private_key(&path, &self.inner).map_err(paillier_error)
    }

    /// The public key, to share with whoever encrypts for this key.
    fn public(&self) -> PublicKey {
        PublicKey { inner: self.inner.public_key().clone() }
    }

    /// The size of n in bits.
    #[getter]
    fn bits(&self) -> u32 {
        self.inner.public_key().bits()
    }

    /// The modulus n.
    #[getter]
    fn n<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py_int(py, self.inner.public_key().n())
    }

    /// Encrypts a signed int in (-n/2, n/2] under the public half.
    fn encrypt(&self, py: Python<'_>, m: &Bound<'_, PyAny>) -> PyResult<Ciphertext> {
        self.public().encrypt(py, m)
    }

    /// Decrypts to the signed int in (-n/2, n/2].
    fn decrypt<'py>(&self, py: Python<'py>, c: &Ciphertext) -> PyResult<Bound<'py, PyAny>> {
        if c.key != *self.inner.public_key() {
            return Err(PyValueError::new_err("the ciphertext is under another key"));
        }
        let m = py.detach(|| self.inner.decrypt(&c.inner));
        to_py_int(py, &m)
    }

    fn __repr__(&self) -> String {
        format!("Key(bits={})", self.bits())
    }
}

/// A public key: encrypts, and reads ciphertexts under it.
#[pyclass(module = "ppdnn", frozen, eq)]
#[derive(Clone, PartialEq)]
pub struct PublicKey {
    pub(crate) inner: ppdnn_paillier::PublicKey,
}

#[pymethods]
impl PublicKey {
    /// Reads a public key file (a private key file yields its public half).
    #[staticmethod]
    #[pyo3(signature = (path, insecure = false))]
    fn load(path: PathBuf, insecure: bool) -> PyResult<PublicKey> {
        let inner =
            keyfile::public_key_from_json(&read(&path)?, policy(insecure)).map_err(|e| in_file(&path, e))?;
        Ok(PublicKey { inner })
    }

    /// Writes the public key file.
    fn save(&self, path: PathBuf) -> PyResult<()> {
        keyfile::write_public_key(&path, &self.inner).map_err(paillier_error)
    }

    /// The size of n in bits.
    #[getter]
    fn bits(&self) -> u32 {
        self.inner.bits()
    }

    /// The modulus n (the same n as python-paillier's `PaillierPublicKey.n`).
    #[getter]
    fn n<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py_int(py, self.inner.n())
    }

    /// Encrypts a signed int in (-n/2, n/2] with fresh randomness.
    fn encrypt(&self, py: Python<'_>, m: &Bound<'_, PyAny>) -> PyResult<Ciphertext> {
        let m = from_py_int(m, "the plaintext")?;
        let inner = py.detach(|| self.inner.encrypt(&m)).map_err(paillier_error)?;
        Ok(Ciphertext { key: self.inner.clone(), inner })
    }

    /// A ciphertext from its fixed-width big-endian bytes (`Ciphertext.to_bytes`).
    fn ciphertext_from_bytes(&self, data: &Bound<'_, PyBytes>) -> PyResult<Ciphertext> {
        let inner = self.inner.ciphertext_from_bytes(data.as_bytes()).map_err(paillier_error)?;
        Ok(Ciphertext { key: self.inner.clone(), inner })
    }

    /// A ciphertext from its value c in Z*_{n^2} (python-paillier's
    /// `EncryptedNumber.ciphertext()`, for instance); checked to be a unit.
    fn ciphertext_from_int(&self, value: &Bound<'_, PyAny>) -> PyResult<Ciphertext> {
        let c = from_py_int(value, "the ciphertext")?;
        let inner = self.inner.ciphertext(c).map_err(paillier_error)?;
        Ok(Ciphertext { key: self.inner.clone(), inner })
    }

    fn __repr__(&self) -> String {
        format!("PublicKey(bits={})", self.inner.bits())
    }
}

/// A Paillier ciphertext. `a + b`, `a + 3`, `a - b`, `-a` and `a * 5` are
/// computed on the ciphertexts and decrypt to the same operations on the
/// plaintexts (results wrap modulo n, as plaintexts do).
#[pyclass(module = "ppdnn", frozen)]
#[derive(Clone)]
pub struct Ciphertext {
    key: ppdnn_paillier::PublicKey,
    inner: ppdnn_paillier::Ciphertext,
}

impl Ciphertext {
    fn with(&self, inner: ppdnn_paillier::Ciphertext) -> Ciphertext {
        Ciphertext { key: self.key.clone(), inner }
    }

    /// The other operand as a ciphertext under the same key, or None for an int.
    fn operand(&self, other: &Bound<'_, PyAny>) -> PyResult<Option<Ciphertext>> {
        if let Ok(c) = other.cast::<Ciphertext>() {
            let c = c.get().clone();
            if c.key != self.key {
                return Err(PyValueError::new_err("the ciphertexts are under different keys"));
            }
            return Ok(Some(c));
        }
        Ok(None)
    }
}

#[pymethods]
impl Ciphertext {
    /// The fixed-width big-endian bytes (2 * bits / 8 of them), as on the wire.
    fn to_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &self.key.ciphertext_to_bytes(&self.inner))
    }

    /// The value c in Z*_{n^2} (what python-paillier calls the ciphertext).
    #[getter]
    fn value<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py_int(py, self.inner.value())
    }

    /// The public key it is under.
    #[getter]
    fn public_key(&self) -> PublicKey {
        PublicKey { inner: self.key.clone() }
    }

    fn __add__(&self, other: &Bound<'_, PyAny>) -> PyResult<Ciphertext> {
        match self.operand(other)? {
            Some(c) => Ok(self.with(self.key.add(&self.inner, &c.inner))),
            None => {
                let m = from_py_int(other, "the other operand of +")?;
                Ok(self.with(self.key.add_plain(&self.inner, &m).map_err(paillier_error)?))
            }
        }
    }

    fn __radd__(&self, other: &Bound<'_, PyAny>) -> PyResult<Ciphertext> {
        self.__add__(other)
    }

    fn __neg__(&self) -> Ciphertext {
        self.with(self.key.neg(&self.inner))
    }

    fn __sub__(&self, other: &Bound<'_, PyAny>) -> PyResult<Ciphertext> {
        match self.operand(other)? {
            Some(c) => Ok(self.with(self.key.sub(&self.inner, &c.inner))),
            None => {
                let m = from_py_int(other, "the other operand of -")?;
                Ok(self.with(self.key.add_plain(&self.inner, &-m).map_err(paillier_error)?))
            }
        }
    }

    fn __rsub__(&self, other: &Bound<'_, PyAny>) -> PyResult<Ciphertext> {
        self.__neg__().__add__(other)
    }

    fn __mul__(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<Ciphertext> {
        if other.cast::<Ciphertext>().is_ok() {
            return Err(PyTypeError::new_err(
                "a ciphertext can be multiplied by an int only (Paillier has no product of two ciphertexts)",
            ));
        }
        let k = from_py_int(other, "the factor")?;
        Ok(self.with(py.detach(|| self.key.mul(&self.inner, &k))))
    }

    fn __rmul__(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyResult<Ciphertext> {
        self.__mul__(py, other)
    }

    fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
        other.cast::<Ciphertext>().is_ok_and(|c| {
            let c = c.get();
            c.key == self.key && c.inner == self.inner
        })
    }

    fn __hash__(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.inner.value().to_string_radix(16).hash(&mut h);
        h.finish()
    }

    fn __repr__(&self) -> String {
        format!("Ciphertext(bits={})", self.key.bits())
    }
}
