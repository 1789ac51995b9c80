//! IDX reading against the real MNIST files and corrupted ones; PNG loading.

use std::path::{Path, PathBuf};

use ppdnn_model::dataset::{Dataset, DatasetKind, PIXELS, Split};
use ppdnn_model::idx::{parse_images, parse_labels};
use ppdnn_model::image_io::{load_png, save_png, to_mnist};

fn mnist_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/mnist")
}

#[test]
fn reads_the_real_mnist_files_and_checks_their_sums() {
    let test = Dataset::load(&mnist_dir(), DatasetKind::Mnist, Split::Test).unwrap();
    assert_eq!(test.len(), 10_000);
    assert_eq!(test.pixels.len(), 10_000 * PIXELS);
    // The first test digits of MNIST are 7, 2, 1, 0, 4.
    assert_eq!(&test.labels[..5], &[7, 2, 1, 0, 4]);
    let train = Dataset::load(&mnist_dir(), DatasetKind::Mnist, Split::Train).unwrap();
    assert_eq!(train.len(), 60_000);
    assert_eq!(&train.labels[..3], &[5, 0, 4]);
}

fn images_bytes(count: u32, rows: u32, cols: u32, body: usize) -> Vec<u8> {
    let mut b = vec![0, 0, 8, 3];
    for x in [count, rows, cols] {
        b.extend(x.to_be_bytes());
    }
    b.extend(vec![7u8; body]);
    b
}

#[test]
fn corrupted_idx_files_are_rejected_with_reasons() {
    assert!(parse_images(&images_bytes(2, 28, 28, 2 * 784), "x").is_ok());
    let e = parse_images(&images_bytes(2, 28, 28, 784 + 5), "x").unwrap_err().to_string();
    assert!(e.contains("truncated"), "{e}");
    let mut wrong_magic = images_bytes(1, 28, 28, 784);
    wrong_magic[3] = 1;
    assert!(parse_images(&wrong_magic, "x").unwrap_err().to_string().contains("magic"));
    assert!(parse_images(&[0, 0, 8], "x").unwrap_err().to_string().contains("too short"));
    assert!(
        parse_labels(&[0, 0, 8, 1, 0, 0, 0, 3, 1, 2], "y").unwrap_err().to_string().contains("truncated")
    );
    assert_eq!(parse_labels(&[0, 0, 8, 1, 0, 0, 0, 2, 1, 2], "y").unwrap(), vec![1, 2]);
}

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    std::fs::write(dir.join(name), bytes).unwrap();
}

#[test]
fn mismatched_counts_missing_files_and_bad_sums_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "t10k-images-idx3-ubyte", &images_bytes(3, 28, 28, 3 * 784));
    write(dir.path(), "t10k-labels-idx1-ubyte", &[0, 0, 8, 1, 0, 0, 0, 2, 1, 2]);
    let e = Dataset::load(dir.path(), DatasetKind::Mnist, Split::Test).unwrap_err().to_string();
    assert!(e.contains("3 images") && e.contains("2 labels"), "{e}");
    let e = Dataset::load(dir.path(), DatasetKind::Mnist, Split::Train).unwrap_err().to_string();
    assert!(e.contains("not found") && e.contains("PPDNN_DATA"), "{e}");
    // A checksum file that disagrees.
    write(dir.path(), "t10k-labels-idx1-ubyte", &[0, 0, 8, 1, 0, 0, 0, 3, 1, 2, 3]);
    write(dir.path(), "SHA256SUMS.raw", format!("{}  t10k-labels-idx1-ubyte\n", "0".repeat(64)).as_bytes());
    let e = Dataset::load(dir.path(), DatasetKind::Mnist, Split::Test).unwrap_err().to_string();
    assert!(e.contains("SHA-256"), "{e}");
}

#[test]
fn png_round_trip_and_conventions() {
    let dir = tempfile::tempdir().unwrap();
    let test = Dataset::load(&mnist_dir(), DatasetKind::Mnist, Split::Test).unwrap();
    let path = dir.path().join("seven.png");
    save_png(&path, test.image(0)).unwrap();
    assert_eq!(load_png(&path).unwrap(), test.image(0), "28x28 grey PNG round trip");

    // A dark digit on white paper, larger and in colour, becomes white on black 28x28.
    let mut big = image::RgbImage::from_pixel(84, 56, image::Rgb([250, 250, 250]));
    for y in 10..46 {
        for x in 38..46 {
            big.put_pixel(x, y, image::Rgb([10, 10, 10]));
        }
    }
    let path = dir.path().join("bar.png");
    big.save(&path).unwrap();
    let px = load_png(&path).unwrap();
    assert_eq!(px.len(), PIXELS);
    assert!(px[0] < 10, "background is black");
    assert!(px[14 * 28 + 14] > 200, "the stroke is white");

    // Not an image.
    let path = dir.path().join("junk.png");
    std::fs::write(&path, b"not a png").unwrap();
    assert!(load_png(&path).unwrap_err().to_string().contains("junk.png"));
    // Grey conversion of an already-MNIST image is the identity.
    let g = image::GrayImage::from_raw(28, 28, test.image(1).to_vec()).unwrap();
    assert_eq!(to_mnist(&g), test.image(1));
}

#[test]
fn pngs_are_read_in_the_models_input_shape() {
    use ppdnn_model::image_io::load_png_as;
    let dir = tempfile::tempdir().unwrap();
    // A 6x4 colour image: red, green and blue planes in that order.
    let mut img = image::RgbImage::new(6, 4);
    for (x, y, p) in img.enumerate_pixels_mut() {
        *p = image::Rgb([(10 * x) as u8, (20 * y) as u8, 200]);
    }
    let path = dir.path().join("rgb.png");
    img.save(&path).unwrap();
    let v = load_png_as(&path, [3, 4, 6]).unwrap();
    assert_eq!(v.len(), 72);
    assert_eq!((v[5], v[24 + 18], v[48]), (50, 60, 200), "channel-major planes");
    // The same aspect ratio is resized; another is refused with both sizes named.
    assert_eq!(load_png_as(&path, [3, 8, 12]).unwrap().len(), 3 * 96);
    assert_eq!(load_png_as(&path, [1, 2, 3]).unwrap().len(), 6);
    let e = load_png_as(&path, [3, 6, 6]).unwrap_err().to_string();
    assert!(e.contains("6x4") && e.contains("6x6") && e.contains("rgb.png"), "{e}");
    let e = load_png_as(&path, [2, 4, 6]).unwrap_err().to_string();
    assert!(e.contains("1 or 3 channels"), "{e}");
}
