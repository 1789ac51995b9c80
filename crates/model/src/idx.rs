//! The IDX format of MNIST and Fashion-MNIST (gzipped or raw).

use std::io::Read;
use std::path::Path;

use flate2::read::GzDecoder;
use sha2::{Digest, Sha256};

use crate::error::{Error, IdxError, Result, io_error};

/// Magic number of an IDX file of unsigned bytes with 3 dimensions (images).
pub const IMAGES_MAGIC: u32 = 0x0000_0803;
/// Magic number of an IDX file of unsigned bytes with 1 dimension (labels).
pub const LABELS_MAGIC: u32 = 0x0000_0801;

/// Reads a whole file, decompressing it if it starts with the gzip magic bytes.
pub fn read_maybe_gzip(path: &Path) -> Result<Vec<u8>> {
    let raw = std::fs::read(path).map_err(|e| io_error(path, e))?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        GzDecoder::new(&raw[..]).read_to_end(&mut out).map_err(|source| Error::Idx {
            path: path.display().to_string(),
            source: IdxError::Gzip { source },
        })?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

fn be_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

/// Images from an IDX file: `count` images of `rows` x `cols` bytes, row-major.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxImages {
    /// Number of images.
    pub count: usize,
    /// Rows per image.
    pub rows: usize,
    /// Columns per image.
    pub cols: usize,
    /// All pixels, image after image.
    pub pixels: Vec<u8>,
}

/// Parses decompressed IDX image bytes; `name` is used in errors.
pub fn parse_images(bytes: &[u8], name: &str) -> Result<IdxImages> {
    let err = |source: IdxError| Error::Idx { path: name.to_string(), source };
    if bytes.len() < 16 {
        return Err(err(IdxError::ImagesHeader { len: bytes.len() }));
    }
    let magic = be_u32(bytes, 0);
    if magic != IMAGES_MAGIC {
        return Err(err(IdxError::ImagesMagic { found: magic, expected: IMAGES_MAGIC }));
    }
    let (count, rows, cols) =
        (be_u32(bytes, 4) as usize, be_u32(bytes, 8) as usize, be_u32(bytes, 12) as usize);
    let want = count
        .checked_mul(rows)
        .and_then(|x| x.checked_mul(cols))
        .ok_or_else(|| err(IdxError::DimensionsOverflow { count, rows, cols }))?;
    let body = &bytes[16..];
    if body.len() != want {
        return Err(err(IdxError::ImagesLength { count, rows, cols, expected: want, got: body.len() }));
    }
    Ok(IdxImages { count, rows, cols, pixels: body.to_vec() })
}

/// Parses decompressed IDX label bytes; `name` is used in errors.
pub fn parse_labels(bytes: &[u8], name: &str) -> Result<Vec<u8>> {
    let err = |source: IdxError| Error::Idx { path: name.to_string(), source };
    if bytes.len() < 8 {
        return Err(err(IdxError::LabelsHeader { len: bytes.len() }));
    }
    let magic = be_u32(bytes, 0);
    if magic != LABELS_MAGIC {
        return Err(err(IdxError::LabelsMagic { found: magic, expected: LABELS_MAGIC }));
    }
    let count = be_u32(bytes, 4) as usize;
    let body = &bytes[8..];
    if body.len() != count {
        return Err(err(IdxError::LabelsLength { count, got: body.len() }));
    }
    Ok(body.to_vec())
}

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}
