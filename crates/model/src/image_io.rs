//! PNG images to and from a model's input: 28x28 grey in MNIST's convention
//! (white digit on black) for the shipped models, or any channels x height
//! x width of grey (1 channel) or colour (3) for other networks.

use std::path::Path;

use image::imageops::FilterType;
use image::{GrayImage, Luma};

use crate::dataset::{PIXELS, SIDE};
use crate::error::{Error, ImageError, Result};

/// Reads an image (PNG; any size, colour or grey) as 28x28 grey pixels in
/// MNIST's convention. A non-square image is padded to a square with its
/// border colour, then resized; an image whose border is light (a dark digit
/// on white paper) is inverted.
pub fn load_png(path: &Path) -> Result<Vec<u8>> {
    load_png_as(path, [1, SIDE, SIDE])
}

/// Reads an image as the input of a model whose input shape is `shape`
/// (see [`decode_png_as`]).
pub fn load_png_as(path: &Path, shape: [usize; 3]) -> Result<Vec<u8>> {
    let bytes = std::fs::read(path).map_err(|source| Error::Image {
        path: path.display().to_string(),
        source: ImageError::Read { source },
    })?;
    decode_png_as(&bytes, shape).map_err(|e| match e {
        Error::Image { source, .. } => Error::Image { path: path.display().to_string(), source },
        other => other,
    })
}

/// Decodes an image (PNG bytes) as the input of a model whose input shape
/// is `shape` (channels, height, width): MNIST's convention for 1x28x28
/// (see [`load_png`]); otherwise grey (1 channel) or RGB (3 channels,
/// planes in that order) pixels 0..255, resized when the image has another
/// size of the same aspect ratio, refused when its aspect ratio differs.
/// The browser client prepares its inputs with this too, so that a page
/// and `ppdnn predict` see the same pixels.
pub fn decode_png_as(bytes: &[u8], shape: [usize; 3]) -> Result<Vec<u8>> {
    let err = |source: ImageError| Error::Image { path: "the image".to_string(), source };
    let img = image::load_from_memory(bytes).map_err(|source| err(ImageError::Decode { source }))?;
    if shape == [1, SIDE, SIDE] {
        let grey = img.to_luma8();
        if grey.width() == 0 || grey.height() == 0 {
            return Err(err(ImageError::Empty));
        }
        return Ok(to_mnist(&grey));
    }
    let [channels, height, width] = shape;
    if !matches!(channels, 1 | 3) || height == 0 || width == 0 || height > 4096 || width > 4096 {
        return Err(err(ImageError::NotAnImageShape { channels, height, width }));
    }
    let (w, h) = (img.width() as usize, img.height() as usize);
    if w == 0 || h == 0 {
        return Err(err(ImageError::Empty));
    }
    // Same aspect ratio within one pixel of the model's size.
    if (w * height).abs_diff(h * width) > w.max(h) {
        return Err(err(ImageError::AspectRatio {
            width: w,
            height: h,
            model_width: width,
            model_height: height,
        }));
    }
    let img = if (w, h) == (width, height) {
        img
    } else {
        img.resize_exact(width as u32, height as u32, FilterType::Triangle)
    };
    Ok(if channels == 1 {
        img.to_luma8().into_raw()
    } else {
        let rgb = img.to_rgb8();
        (0..3).flat_map(|c| rgb.pixels().map(move |p| p.0[c])).collect()
    })
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
    let err = |source: ImageError| Error::Image { path: path.display().to_string(), source };
    if pixels.len() != PIXELS {
        return Err(err(ImageError::PixelCount { got: pixels.len(), expected: PIXELS }));
    }
    let img = GrayImage::from_raw(SIDE as u32, SIDE as u32, pixels.to_vec())
        .ok_or_else(|| err(ImageError::PixelBuffer))?;
    img.save(path).map_err(|source| err(ImageError::Write { source }))
}
