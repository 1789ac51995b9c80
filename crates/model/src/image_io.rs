//! PNG images to and from the model's 28x28 grey input (white digit on black, as MNIST).

use std::path::Path;

use image::imageops::FilterType;
use image::{GrayImage, Luma};

use crate::dataset::{PIXELS, SIDE};
use crate::error::{Error, Result};

/// Reads an image (PNG; any size, colour or grey) as 28x28 grey pixels in
/// MNIST's convention. A non-square image is padded to a square with its
/// border colour, then resized; an image whose border is light (a dark digit
/// on white paper) is inverted.
pub fn load_png(path: &Path) -> Result<Vec<u8>> {
    let err = |message: String| Error::Image { path: path.display().to_string(), message };
    let bytes = std::fs::read(path).map_err(|e| err(e.to_string()))?;
    let img = image::load_from_memory(&bytes).map_err(|e| err(format!("not a readable image: {e}")))?;
    let grey = img.to_luma8();
    if grey.width() == 0 || grey.height() == 0 {
        return Err(err("the image is empty".into()));
    }
    Ok(to_mnist(&grey))
}

/// Converts any grey image to 28x28 white-on-black pixels.
pub fn to_mnist(grey: &GrayImage) -> Vec<u8> {
    let (w, h) = grey.dimensions();
    let border = border_mean(grey);
    let side = w.max(h);
    let mut square = GrayImage::from_pixel(side, side, Luma([border.round() as u8]));
    image::imageops::overlay(&mut square, grey, ((side - w) / 2) as i64, ((side - h) / 2) as i64);
    let small = if side as usize == SIDE {
        square
    } else {
        image::imageops::resize(&square, SIDE as u32, SIDE as u32, FilterType::Triangle)
    };
    let invert = border > 127.0;
    small.pixels().map(|p| if invert { 255 - p.0[0] } else { p.0[0] }).collect()
}

fn border_mean(img: &GrayImage) -> f64 {
    let (w, h) = img.dimensions();
    let mut sum = 0f64;
    let mut n = 0f64;
    for (x, y, p) in img.enumerate_pixels() {
        if x == 0 || y == 0 || x + 1 == w || y + 1 == h {
            sum += p.0[0] as f64;
            n += 1.0;
        }
    }
    sum / n.max(1.0)
}

/// Writes 28x28 grey pixels as a PNG.
pub fn save_png(path: &Path, pixels: &[u8]) -> Result<()> {
    let err = |message: String| Error::Image { path: path.display().to_string(), message };
    if pixels.len() != PIXELS {
        return Err(err(format!("{} pixels, expected {PIXELS}", pixels.len())));
    }
    let img = GrayImage::from_raw(SIDE as u32, SIDE as u32, pixels.to_vec())
        .ok_or_else(|| err("pixel buffer does not match 28x28".into()))?;
    img.save(path).map_err(|e| err(e.to_string()))
}
