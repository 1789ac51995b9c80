//! NumPy `.npy` arrays as model inputs: pixels 0..255 in the model's input
//! layout, one input or a batch of them.

use std::path::Path;

use npyz::{DType, NpyFile, Order, TypeChar};

use crate::error::{Error, ImageError, Result};

pub use crate::error::NpyError;

/// The inputs a `.npy` array holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NpyInputs {
    /// Each input's pixels, in the model's input layout (C order).
    pub inputs: Vec<Vec<u8>>,
    /// Whether the array had a batch axis (so inputs are named by index).
    pub batched: bool,
}

/// Reads a `.npy` file whose array is one input of `input_shape` (for
/// instance (1, 28, 28), or (28, 28): axes of length 1 may be left out) or a
/// batch of them ((N, 1, 28, 28) or (N, 28, 28)). Pixels are integers 0..255
/// of any integer dtype; floats, other values and Fortran order are refused
/// with a message saying what to change.
pub fn load_npy(path: &Path, input_shape: &[usize]) -> Result<NpyInputs> {
    let err = |source: ImageError| Error::Image { path: path.display().to_string(), source };
    let bytes = std::fs::read(path).map_err(|source| err(ImageError::Read { source }))?;
    inputs_from_npy(&bytes, input_shape).map_err(|e| err(ImageError::Npy(e)))
}

/// [`load_npy`] on the file's bytes; the error says what is wrong.
pub fn inputs_from_npy(bytes: &[u8], input_shape: &[usize]) -> std::result::Result<NpyInputs, NpyError> {
    let npy = NpyFile::new(bytes).map_err(NpyError::NotNpy)?;
    if npy.order() == Order::Fortran {
        return Err(NpyError::FortranOrder);
    }
    let shape: Vec<usize> = npy
        .shape()
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| NpyError::AxisLength(d)))
        .collect::<std::result::Result<_, _>>()?;
    let per_input: usize = input_shape.iter().product();
    let batched = batch_of(&shape, input_shape)
        .ok_or_else(|| NpyError::Shape { shape: shape.clone(), input_shape: input_shape.to_vec() })?;
    let values = integer_values(npy)?;
    if let Some((index, &value)) = values.iter().enumerate().find(|(_, v)| !(0..=255).contains(*v)) {
        return Err(NpyError::Pixel { value, index });
    }
    if values.len() != shape.iter().product::<usize>() || per_input == 0 {
        return Err(NpyError::Truncated);
    }
    let inputs = values.chunks(per_input).map(|c| c.iter().map(|&v| v as u8).collect()).collect();
    Ok(NpyInputs { inputs, batched: batched.is_some() })
}

/// Some(N) when `shape` is a batch of N inputs, None (inside Some) when it is
/// one input, and None when it is neither. Axes of length 1 in the input
/// shape may be missing from `shape`.
fn batch_of(shape: &[usize], input_shape: &[usize]) -> Option<Option<usize>> {
    let squeeze = |s: &[usize]| s.iter().copied().filter(|&d| d != 1).collect::<Vec<_>>();
    let input = squeeze(input_shape);
    if shape == input_shape || squeeze(shape) == input {
        return Some(None);
    }
    let (&n, rest) = shape.split_first()?;
    (rest == input_shape || rest == input.as_slice()).then_some(Some(n))
}

/// Every value of an integer array, as i64 (any byte order and width).
fn integer_values(npy: NpyFile<&[u8]>) -> std::result::Result<Vec<i64>, NpyError> {
    let DType::Plain(ts) = npy.dtype() else {
        return Err(NpyError::Structured);
    };
    let read = |r: std::io::Result<Vec<i64>>| r.map_err(NpyError::Read);
    match (ts.type_char(), ts.size_field()) {
        (TypeChar::Uint, 1) => read(npy.into_vec::<u8>().map(|v| v.into_iter().map(i64::from).collect())),
        (TypeChar::Uint, 2) => read(npy.into_vec::<u16>().map(|v| v.into_iter().map(i64::from).collect())),
        (TypeChar::Uint, 4) => read(npy.into_vec::<u32>().map(|v| v.into_iter().map(i64::from).collect())),
        (TypeChar::Uint, 8) => read(
            npy.into_vec::<u64>().map(|v| v.into_iter().map(|x| i64::try_from(x).unwrap_or(-1)).collect()),
        ),
        (TypeChar::Int, 1) => read(npy.into_vec::<i8>().map(|v| v.into_iter().map(i64::from).collect())),
        (TypeChar::Int, 2) => read(npy.into_vec::<i16>().map(|v| v.into_iter().map(i64::from).collect())),
        (TypeChar::Int, 4) => read(npy.into_vec::<i32>().map(|v| v.into_iter().map(i64::from).collect())),
        (TypeChar::Int, 8) => read(npy.into_vec::<i64>()),
        (TypeChar::Float, _) => Err(NpyError::Float(ts.to_string())),
        _ => Err(NpyError::ElementType(ts.to_string())),
    }
}

/// Pixels as a `.npy` file (format 1.0, uint8, C order) of the given shape,
/// as `numpy.save` writes it; [`load_npy`] reads it back.
pub fn to_npy_u8(shape: &[usize], pixels: &[u8]) -> Vec<u8> {
    npy_file("|u1", false, shape, pixels)
}

/// A .npy file (format 1.0) with the given header fields and data bytes.
fn npy_file(descr: &str, fortran: bool, shape: &[usize], data: &[u8]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape = if dims.len() == 1 { format!("({},)", dims[0]) } else { format!("({})", dims.join(", ")) };
    let mut header = format!(
        "{{'descr': '{descr}', 'fortran_order': {}, 'shape': {shape}, }}",
        if fortran { "True" } else { "False" }
    );
    // numpy pads the header with spaces so that the data starts 64-aligned.
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHAPE: [usize; 3] = [1, 2, 3];

    #[test]
    fn one_input_or_a_batch_in_any_integer_dtype() {
        let pixels: Vec<u8> = (0..6).map(|i| i * 50).collect();
        for shape in [&[1, 2, 3][..], &[2, 3]] {
            let got = inputs_from_npy(&npy_file("|u1", false, shape, &pixels), &SHAPE).unwrap();
            assert_eq!(got, NpyInputs { inputs: vec![pixels.clone()], batched: false });
        }
        let two: Vec<u8> = pixels.iter().chain(pixels.iter().rev()).copied().collect();
        for shape in [&[2, 1, 2, 3][..], &[2, 2, 3]] {
            let got = inputs_from_npy(&npy_file("|u1", false, shape, &two), &SHAPE).unwrap();
            assert_eq!(got.inputs, vec![pixels.clone(), pixels.iter().rev().copied().collect::<Vec<_>>()]);
            assert!(got.batched);
        }
        let wide: Vec<u8> = pixels.iter().flat_map(|&p| (p as i64).to_le_bytes()).collect();
        assert_eq!(
            inputs_from_npy(&npy_file("<i8", false, &[2, 3], &wide), &SHAPE).unwrap().inputs,
            vec![pixels.clone()]
        );
        let big: Vec<u8> = pixels.iter().flat_map(|&p| (p as u16).to_be_bytes()).collect();
        assert_eq!(
            inputs_from_npy(&npy_file(">u2", false, &[2, 3], &big), &SHAPE).unwrap().inputs,
            vec![pixels]
        );
    }

    #[test]
    fn wrong_shapes_values_types_and_files_are_refused_with_reasons() {
        let e = inputs_from_npy(&npy_file("|u1", false, &[3, 2], &[0; 6]), &SHAPE).unwrap_err().to_string();
        assert!(e.contains("[3, 2]") && e.contains("[1, 2, 3]"), "{e}");
        let over: Vec<u8> = [0i16, 1, 2, 3, 256, 5].iter().flat_map(|v| v.to_le_bytes()).collect();
        let e = inputs_from_npy(&npy_file("<i2", false, &[2, 3], &over), &SHAPE).unwrap_err().to_string();
        assert!(e.contains("256") && e.contains("0..255"), "{e}");
        let neg: Vec<u8> = [0i16, -1, 2, 3, 4, 5].iter().flat_map(|v| v.to_le_bytes()).collect();
        assert!(
            inputs_from_npy(&npy_file("<i2", false, &[2, 3], &neg), &SHAPE)
                .unwrap_err()
                .to_string()
                .contains("-1")
        );
        let floats: Vec<u8> = [0.5f32; 6].iter().flat_map(|v| v.to_le_bytes()).collect();
        assert!(
            inputs_from_npy(&npy_file("<f4", false, &[2, 3], &floats), &SHAPE)
                .unwrap_err()
                .to_string()
                .contains("float")
        );
        assert!(
            inputs_from_npy(&npy_file("|u1", true, &[2, 3], &[0; 6]), &SHAPE)
                .unwrap_err()
                .to_string()
                .contains("Fortran")
        );
        assert!(inputs_from_npy(&npy_file("|u1", false, &[2, 3], &[0; 5]), &SHAPE).is_err());
        assert!(inputs_from_npy(b"\x89PNG not an array", &SHAPE).unwrap_err().to_string().contains(".npy"));
        assert!(inputs_from_npy(&npy_file("|b1", false, &[2, 3], &[0; 6]), &SHAPE).is_err());
    }
}
