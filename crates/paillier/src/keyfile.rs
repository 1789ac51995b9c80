//! Key files: JSON with decimal numbers and a format version.
//!
//! Public key: `{"format": "ppdnn-paillier-public-key", "version": 1,
//! "bits": 2048, "n": "...", "hn": "..."}` (`hn` may be absent: classic
//! randomness). Private key: `{"format": "ppdnn-paillier-private-key",
//! "version": 1, "bits": 2048, "n": "...", "hn": "...", "p": "...", "q": "..."}`,
//! written with mode 0600.

use std::path::Path;

use crate::int::Integer;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::ciphertext::parse_decimal;
use crate::error::{Error, FormatError, PrivateKeyError, Result};
use crate::keys::{PrivateKey, PublicKey};
use crate::policy::KeyPolicy;

/// The `format` field of a public key file.
pub const PUBLIC_FORMAT: &str = "ppdnn-paillier-public-key";
/// The `format` field of a private key file.
pub const PRIVATE_FORMAT: &str = "ppdnn-paillier-private-key";
/// The key file format version this crate writes and reads.
pub const VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
struct KeyFile {
    format: String,
    version: u32,
    bits: u32,
    n: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    hn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    p: Option<Zeroizing<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    q: Option<Zeroizing<String>>,
}

impl KeyFile {
    fn parse(text: &str) -> Result<Self> {
        // serde_json's messages can quote the offending value, which in a
        // private key file may be a prime: say where, not what.
        let f: KeyFile = serde_json::from_str(text).map_err(|e| {
            let what = match e.classify() {
                serde_json::error::Category::Io => "unreadable",
                serde_json::error::Category::Syntax => "malformed JSON",
                serde_json::error::Category::Data => "a field of the wrong type or a missing field",
                serde_json::error::Category::Eof => "truncated JSON",
            };
            Error::Format(FormatError::NotAKeyFile { what, line: e.line(), column: e.column() })
        })?;
        if f.format != PUBLIC_FORMAT && f.format != PRIVATE_FORMAT {
            return Err(Error::Format(FormatError::UnknownFormat {
                found: f.format.clone(),
                public: PUBLIC_FORMAT,
                private: PRIVATE_FORMAT,
            }));
        }
        if f.version != VERSION {
            return Err(Error::Format(FormatError::Version { found: f.version, reads: VERSION }));
        }
        Ok(f)
    }

    fn public_key(&self, policy: KeyPolicy) -> Result<PublicKey> {
        let n = parse_decimal(&self.n, "n")?;
        let hn = self.hn.as_deref().map(|h| parse_decimal(h, "hn")).transpose()?;
        let key = PublicKey::new(n, hn, policy)?;
        if key.bits() != self.bits {
            return Err(Error::Format(FormatError::Bits { stated: self.bits, actual: key.bits() }));
        }
        Ok(key)
    }
}

/// The public key as key-file JSON.
pub fn public_key_to_json(key: &PublicKey) -> String {
    let f = KeyFile {
        format: PUBLIC_FORMAT.into(),
        version: VERSION,
        bits: key.bits(),
        n: key.n().to_string(),
        hn: key.hn().map(|h| h.to_string()),
        p: None,
        q: None,
    };
    to_pretty(&f)
}

/// The private key as key-file JSON. The string holds secrets: wipe it after use.
pub fn private_key_to_json(key: &PrivateKey) -> Zeroizing<String> {
    let public = key.public_key();
    let f = KeyFile {
        format: PRIVATE_FORMAT.into(),
        version: VERSION,
        bits: public.bits(),
        n: public.n().to_string(),
        hn: public.hn().map(|h| h.to_string()),
        p: Some(Zeroizing::new(key.p().to_string())),
        q: Some(Zeroizing::new(key.q().to_string())),
    };
    // Serialized into a buffer large enough for any key (a 4096-bit key's
    // file is under 6 KiB), so that no partial copy is left behind by a
    // reallocation; the buffer becomes the returned string without copying.
    let mut buf = Vec::with_capacity(32 << 10);
    serde_json::to_writer_pretty(&mut buf, &f).expect("a struct of strings and numbers always serializes");
    buf.push(b'\n');
    Zeroizing::new(String::from_utf8(buf).expect("serde_json writes UTF-8"))
}

fn to_pretty(f: &KeyFile) -> String {
    let mut s = serde_json::to_string_pretty(f).expect("a struct of strings and numbers always serializes");
    s.push('\n');
    s
}

/// Reads a public key from key-file JSON; a private key file yields its public half.
pub fn public_key_from_json(text: &str, policy: KeyPolicy) -> Result<PublicKey> {
    KeyFile::parse(text)?.public_key(policy)
}

/// Reads a private key from key-file JSON, checking that n = p*q.
pub fn private_key_from_json(text: &str, policy: KeyPolicy) -> Result<PrivateKey> {
    let f = KeyFile::parse(text)?;
    if f.format != PRIVATE_FORMAT {
        return Err(Error::Format(FormatError::PublicOnly));
    }
    let (Some(p), Some(q)) = (&f.p, &f.q) else {
        return Err(Error::Format(FormatError::MissingFactor));
    };
    let p = parse_secret_decimal(p, "p")?;
    let q = parse_secret_decimal(q, "q")?;
    let hn = f.hn.as_deref().map(|h| parse_decimal(h, "hn")).transpose()?;
    let n = parse_decimal(&f.n, "n")?;
    let key = PrivateKey::from_primes(p, q, hn, policy)?;
    if key.public_key().n() != &n {
        return Err(Error::InvalidPrivateKey(PrivateKeyError::WrongModulus));
    }
    if key.public_key().bits() != f.bits {
        return Err(Error::Format(FormatError::Bits { stated: f.bits, actual: key.public_key().bits() }));
    }
    Ok(key)
}

/// Parses a secret decimal number; the error never shows the text.
fn parse_secret_decimal(text: &str, what: &'static str) -> Result<Integer> {
    let digits = text.trim();
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::Format(FormatError::NotSecretDecimal(what)));
    }
    Integer::from_str_radix(digits, 10).map_err(|_| Error::Format(FormatError::NotSecretDecimal(what)))
}

fn io_err(path: &Path, e: std::io::Error) -> Error {
    Error::Io { path: path.display().to_string(), message: e.to_string() }
}

/// Reads a public key file (or the public half of a private key file).
pub fn read_public_key(path: &Path, policy: KeyPolicy) -> Result<PublicKey> {
    let text = std::fs::read_to_string(path).map_err(|e| io_err(path, e))?;
    public_key_from_json(&text, policy).map_err(|e| in_file(path, e))
}

/// Reads a private key file.
pub fn read_private_key(path: &Path, policy: KeyPolicy) -> Result<PrivateKey> {
    let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| io_err(path, e))?);
    private_key_from_json(&text, policy).map_err(|e| in_file(path, e))
}

fn in_file(path: &Path, e: Error) -> Error {
    Error::Io { path: path.display().to_string(), message: e.to_string() }
}

/// Writes a public key file (atomically, see [`write_private_key`]).
pub fn write_public_key(path: &Path, key: &PublicKey) -> Result<()> {
    write_atomically(path, public_key_to_json(key).as_bytes(), 0o644)
}

/// Writes a private key file, readable and writable by its owner only (0600 on Unix).
///
/// The file is written whole to a new temporary file beside `path` (created
/// exclusively, so no symbolic link is followed), flushed to disk, then
/// renamed over `path`: a failed write leaves any old key as it was, and a
/// link at `path` is replaced rather than written through.
pub fn write_private_key(path: &Path, key: &PrivateKey) -> Result<()> {
    write_atomically(path, private_key_to_json(key).as_bytes(), 0o600)
}

fn write_atomically(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    use std::io::Write;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let name = path.file_name().ok_or_else(|| io_err(path, std::io::Error::other("not a file name")))?;
    let mut suffix = [0u8; 6];
    getrandom::fill(&mut suffix)?;
    let tmp_name: String = suffix.iter().map(|b| format!("{b:02x}")).collect();
    let tmp = dir.join(format!(".{}.{tmp_name}.tmp", name.to_string_lossy()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let result = (|| {
        let mut file = options.open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(io_err(path, e));
    }
    Ok(())
}

/// Converts a decimal plaintext or ciphertext argument to an Integer.
pub fn decimal(text: &str, what: &str) -> Result<Integer> {
    parse_decimal(text, what)
}
