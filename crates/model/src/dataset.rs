//! MNIST-format data sets: where they are, and loading them.

use std::path::{Path, PathBuf};

use crate::error::{DatasetError, Result};
use crate::idx::{parse_images, parse_labels, read_maybe_gzip, sha256_hex};

/// Image side length of the data sets ppdnn reads.
pub const SIDE: usize = 28;
/// Pixels per image.
pub const PIXELS: usize = SIDE * SIDE;

/// The data sets ppdnn knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatasetKind {
    /// Handwritten digits (LeCun, Cortes, Burges).
    Mnist,
    /// Zalando's clothing images.
    FashionMnist,
}

impl DatasetKind {
    /// The name used on the command line and in model files.
    pub fn name(self) -> &'static str {
        match self {
            DatasetKind::Mnist => "mnist",
            DatasetKind::FashionMnist => "fashion-mnist",
        }
    }

    /// Parses a data set name.
    pub fn from_name(name: &str) -> Result<Self> {
        match name {
            "mnist" => Ok(DatasetKind::Mnist),
            "fashion-mnist" | "fashion_mnist" | "fashion" => Ok(DatasetKind::FashionMnist),
            other => Err(DatasetError::UnknownName { name: other.to_string() }.into()),
        }
    }

    /// Class names, index = label.
    pub fn class_names(self) -> [&'static str; 10] {
        match self {
            DatasetKind::Mnist => ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"],
            DatasetKind::FashionMnist => [
                "T-shirt/top",
                "Trouser",
                "Pullover",
                "Dress",
                "Coat",
                "Sandal",
                "Shirt",
                "Sneaker",
                "Bag",
                "Ankle boot",
            ],
        }
    }

    /// The environment variable that names this data set's folder.
    pub fn env_var(self) -> &'static str {
        match self {
            DatasetKind::Mnist => "PPDNN_DATA",
            DatasetKind::FashionMnist => "PPDNN_FASHION_DATA",
        }
    }

    /// The folder used when neither --data nor the environment names one.
    pub fn default_dir(self) -> PathBuf {
        match self {
            DatasetKind::Mnist => PathBuf::from("data/mnist"),
            DatasetKind::FashionMnist => PathBuf::from("/usr/share/datasets/fashion-mnist"),
        }
    }

    /// Where the files come from, for error messages.
    pub(crate) fn origin(self) -> &'static str {
        match self {
            DatasetKind::Mnist => {
                "MNIST is published by Yann LeCun, Corinna Cortes and Chris Burges; any public MNIST mirror has the four files"
            }
            DatasetKind::FashionMnist => {
                "Fashion-MNIST is the Debian package dataset-fashion-mnist (apt-get install dataset-fashion-mnist)"
            }
        }
    }
}

/// Resolves the data folder: an explicit `--data`, else the data set's
/// environment variable, else its default folder.
pub fn resolve_data_dir(explicit: Option<&Path>, kind: DatasetKind) -> PathBuf {
    if let Some(p) = explicit {
        return p.to_path_buf();
    }
    match std::env::var_os(kind.env_var()) {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => kind.default_dir(),
    }
}

/// The training or the test part of a data set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// 60,000 training images.
    Train,
    /// 10,000 test images.
    Test,
}

impl Split {
    fn prefix(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Test => "t10k",
        }
    }
}

/// Labelled 28x28 grey images, one byte a pixel (0 black .. 255 white).
#[derive(Debug, Clone)]
pub struct Dataset {
    /// Which data set.
    pub kind: DatasetKind,
    /// All pixels, image after image (PIXELS bytes each).
    pub pixels: Vec<u8>,
    /// Labels 0..9.
    pub labels: Vec<u8>,
}

impl Dataset {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The pixels of image `i`.
    pub fn image(&self, i: usize) -> &[u8] {
        &self.pixels[i * PIXELS..(i + 1) * PIXELS]
    }

    /// Keeps the first `n` images.
    pub fn truncate(&mut self, n: usize) {
        if n < self.len() {
            self.labels.truncate(n);
            self.pixels.truncate(n * PIXELS);
        }
    }

    /// Loads one split from `dir`, which holds the four IDX files (gzipped or
    /// not). If `dir` has a SHA256SUMS.raw file, the decompressed bytes are checked against it.
    pub fn load(dir: &Path, kind: DatasetKind, split: Split) -> Result<Self> {
        let images_name = format!("{}-images-idx3-ubyte", split.prefix());
        let labels_name = format!("{}-labels-idx1-ubyte", split.prefix());
        let sums = read_sums(dir)?;
        let read = |name: &str| -> Result<Vec<u8>> {
            let path = find_file(dir, name, kind)?;
            let bytes = read_maybe_gzip(&path)?;
            if let Some(want) = sums.iter().find(|(_, n)| n == name).map(|(h, _)| h) {
                let got = sha256_hex(&bytes);
                if &got != want {
                    return Err(DatasetError::Checksum {
                        path: path.display().to_string(),
                        got,
                        expected: want.clone(),
                    }
                    .into());
                }
            }
            Ok(bytes)
        };
        let images = parse_images(&read(&images_name)?, &images_name)?;
        let labels = parse_labels(&read(&labels_name)?, &labels_name)?;
        if images.rows != SIDE || images.cols != SIDE {
            return Err(DatasetError::ImageSize {
                file: images_name,
                rows: images.rows,
                cols: images.cols,
                side: SIDE,
            }
            .into());
        }
        if images.count != labels.len() {
            return Err(DatasetError::CountMismatch {
                images_file: images_name,
                images: images.count,
                labels_file: labels_name,
                labels: labels.len(),
            }
            .into());
        }
        if let Some(bad) = labels.iter().find(|&&l| l > 9) {
            return Err(DatasetError::Label { file: labels_name, label: *bad }.into());
        }
        Ok(Dataset { kind, pixels: images.pixels, labels })
    }
}

fn find_file(dir: &Path, name: &str, kind: DatasetKind) -> Result<PathBuf> {
    for candidate in [dir.join(format!("{name}.gz")), dir.join(name)] {
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    Err(DatasetError::NotFound {
        file: name.to_string(),
        dir: dir.display().to_string(),
        dataset: kind.name(),
        env_var: kind.env_var(),
        origin: kind.origin(),
    }
    .into())
}

/// Reads `SHA256SUMS.raw` (lines of "hex  name") if the folder has one.
fn read_sums(dir: &Path) -> Result<Vec<(String, String)>> {
    let path = dir.join("SHA256SUMS.raw");
    if !path.is_file() {
        return Ok(Vec::new());
    }
    let text = std::fs::read_to_string(&path).map_err(|e| crate::error::io_error(&path, e))?;
    Ok(text
        .lines()
        .filter_map(|l| {
            let mut parts = l.split_whitespace();
            Some((parts.next()?.to_lowercase(), parts.next()?.trim_start_matches('*').to_string()))
        })
        .collect())
}
