//! The model crate's error types: [`Error`], wrapping one typed error per
//! area ([`IdxError`], [`DatasetError`], [`ImageError`], [`ModelError`] with
//! [`LayerError`], [`InputError`]). Every message comes from the variants'
//! `#[error(...)]` attributes, built from their fields.

use thiserror::Error;

use crate::shape::Shape;

/// Everything that can go wrong reading data or models, quantizing or evaluating.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// An I/O failure on a named file.
    #[error("{path}: {source}")]
    Io {
        /// The file concerned.
        path: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A malformed IDX file.
    #[error("{path}: {source}")]
    Idx {
        /// The file concerned (or the name it is known by).
        path: String,
        /// What is wrong with it.
        #[source]
        source: IdxError,
    },
    /// A data set that cannot be found or does not hold together.
    #[error("{0}")]
    Dataset(#[from] DatasetError),
    /// An image (or `.npy` array) that cannot be read or written.
    #[error("{path}: {source}")]
    Image {
        /// The file concerned.
        path: String,
        /// What is wrong with it.
        #[source]
        source: ImageError,
    },
    /// A model file that is malformed or does not match the architecture.
    #[error("model: {0}")]
    Model(#[from] ModelError),
    /// An input of the wrong shape or range.
    #[error("input: {0}")]
    Input(#[from] InputError),
}

/// Shorthand for results of this crate.
pub type Result<T> = std::result::Result<T, Error>;

pub(crate) fn io_error(path: &std::path::Path, source: std::io::Error) -> Error {
    Error::Io { path: path.display().to_string(), source }
}

/// Why an IDX file (see [`crate::idx`]) does not parse.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum IdxError {
    /// The file starts like gzip but does not decompress.
    #[error("bad gzip data: {source}")]
    Gzip {
        /// The decompressor's error.
        #[source]
        source: std::io::Error,
    },
    /// Fewer bytes than an image file's 16-byte header.
    #[error("{len} bytes is too short for an IDX image header (16)")]
    ImagesHeader {
        /// The file's length in bytes.
        len: usize,
    },
    /// Fewer bytes than a label file's 8-byte header.
    #[error("{len} bytes is too short for an IDX label header (8)")]
    LabelsHeader {
        /// The file's length in bytes.
        len: usize,
    },
    /// An image file whose magic number is not [`crate::idx::IMAGES_MAGIC`].
    #[error("magic number {found:#010x}, expected {expected:#010x} (images)")]
    ImagesMagic {
        /// The magic number found.
        found: u32,
        /// The image files' magic number.
        expected: u32,
    },
    /// A label file whose magic number is not [`crate::idx::LABELS_MAGIC`].
    #[error("magic number {found:#010x}, expected {expected:#010x} (labels)")]
    LabelsMagic {
        /// The magic number found.
        found: u32,
        /// The label files' magic number.
        expected: u32,
    },
    /// Image dimensions whose product overflows.
    #[error("dimensions overflow")]
    DimensionsOverflow {
        /// Images the header announces.
        count: usize,
        /// Rows per image.
        rows: usize,
        /// Columns per image.
        cols: usize,
    },
    /// An image file whose body is not the size its header says.
    #[error(
        "header says {count} images of {rows}x{cols} ({expected} bytes) but the file holds {got} bytes{}",
        truncated(*.got, *.expected)
    )]
    ImagesLength {
        /// Images the header announces.
        count: usize,
        /// Rows per image.
        rows: usize,
        /// Columns per image.
        cols: usize,
        /// Bytes the header implies.
        expected: usize,
        /// Bytes after the header.
        got: usize,
    },
    /// A label file whose body is not the size its header says.
    #[error("header says {count} labels but the file holds {got}{}", truncated(*.got, *.count))]
    LabelsLength {
        /// Labels the header announces.
        count: usize,
        /// Bytes after the header.
        got: usize,
    },
}

/// The suffix of a length mismatch that is a truncation.
fn truncated(got: usize, expected: usize) -> &'static str {
    if got < expected { ": truncated" } else { "" }
}

/// Why a data set cannot be loaded.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum DatasetError {
    /// A data set name ppdnn does not know.
    #[error("unknown data set {name:?} (known: mnist, fashion-mnist)")]
    UnknownName {
        /// The name given.
        name: String,
    },
    /// One of the IDX files is in neither form in the folder.
    #[error(
        "{file}(.gz) not found in {dir}. Put the four {} IDX files there \
         (train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, \
         t10k-labels-idx1-ubyte, gzipped or not), or point --data or {} at their folder. {}.",
        .dataset,
        .env_var,
        .origin
    )]
    NotFound {
        /// The file looked for (without `.gz`).
        file: String,
        /// The folder looked in.
        dir: String,
        /// The data set's name.
        dataset: &'static str,
        /// The environment variable that names its folder.
        env_var: &'static str,
        /// Where the files can be had.
        origin: &'static str,
    },
    /// A file whose decompressed bytes do not match `SHA256SUMS.raw`.
    #[error("{path}: SHA-256 of the decompressed data is {got}, but SHA256SUMS.raw says {expected}")]
    Checksum {
        /// The file concerned.
        path: String,
        /// Its SHA-256, lowercase hex.
        got: String,
        /// The SHA-256 that `SHA256SUMS.raw` lists, lowercase hex.
        expected: String,
    },
    /// Images of another size than the data sets'.
    #[error("{file}: images are {rows}x{cols}, expected {side}x{side}")]
    ImageSize {
        /// The image file.
        file: String,
        /// Rows per image.
        rows: usize,
        /// Columns per image.
        cols: usize,
        /// The side the data sets have.
        side: usize,
    },
    /// Image and label files of different counts.
    #[error("{images_file} has {images} images but {labels_file} has {labels} labels")]
    CountMismatch {
        /// The image file.
        images_file: String,
        /// Its number of images.
        images: usize,
        /// The label file.
        labels_file: String,
        /// Its number of labels.
        labels: usize,
    },
    /// A label outside 0..9.
    #[error("{file}: label {label} is not in 0..9")]
    Label {
        /// The label file.
        file: String,
        /// The first label out of range.
        label: u8,
    },
}

/// Why an image (or a `.npy` array of inputs) cannot be read or written.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ImageError {
    /// The file cannot be read.
    #[error("{source}")]
    Read {
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The bytes are not an image the `image` crate decodes.
    #[error("not a readable image: {source}")]
    Decode {
        /// The decoder's error.
        #[source]
        source: image::ImageError,
    },
    /// An image of no pixels.
    #[error("the image is empty")]
    Empty,
    /// A model input shape that no image has.
    #[error("a model input of {channels}x{height}x{width} is not an image (1 or 3 channels)")]
    NotAnImageShape {
        /// The input's channels.
        channels: usize,
        /// Its height.
        height: usize,
        /// Its width.
        width: usize,
    },
    /// An image whose aspect ratio is not the model's.
    #[error(
        "the image is {width}x{height} (width x height); the model takes {model_width}x{model_height}, and a different aspect ratio is not resized"
    )]
    AspectRatio {
        /// The image's width.
        width: usize,
        /// The image's height.
        height: usize,
        /// The model input's width.
        model_width: usize,
        /// The model input's height.
        model_height: usize,
    },
    /// Pixels to save that are not one 28x28 image.
    #[error("{got} pixels, expected {expected}")]
    PixelCount {
        /// Pixels given.
        got: usize,
        /// Pixels of a 28x28 image.
        expected: usize,
    },
    /// A pixel buffer that does not make a 28x28 image.
    #[error("pixel buffer does not match 28x28")]
    PixelBuffer,
    /// The image cannot be encoded or written.
    #[error("{source}")]
    Write {
        /// The encoder's error.
        #[source]
        source: image::ImageError,
    },
    /// A `.npy` array that is not the model's inputs.
    #[error("{0}")]
    Npy(#[from] NpyError),
}

/// Why a network, a model or a model file is refused.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ModelError {
    /// A network of no layers.
    #[error("a network needs at least one layer")]
    NoLayers,
    /// An input shape out of the [`crate::network::limits`].
    #[error("input shape {shape:?}: each side 1 to {max_side}, at most {max_values} values")]
    InputShape {
        /// The shape given.
        shape: Shape,
        /// Largest side.
        max_side: usize,
        /// Largest number of values.
        max_values: usize,
    },
    /// One layer that is refused.
    #[error("layer {layer}: {source}")]
    Layer {
        /// The layer's name.
        layer: String,
        /// What is wrong with it.
        #[source]
        source: LayerError,
    },
    /// JSON that is not a network description.
    #[error("not a network description: {source}")]
    NetworkJson {
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// Float parameters for another number of layers.
    #[error("{sets} parameter sets for {layers} layers")]
    ParamSets {
        /// Parameter sets given.
        sets: usize,
        /// Layers of the network.
        layers: usize,
    },
    /// A requantization factor that is zero, negative or not finite.
    #[error("requantization factor {factor} is not a positive number")]
    RequantFactor {
        /// The factor.
        factor: f64,
    },
    /// A requantization multiplier width outside 1 to 31 bits.
    #[error("a requantization multiplier of {bits} bits (1 to 31)")]
    MultiplierBits {
        /// The width asked for.
        bits: u32,
    },
    /// A requantization whose multiplier or shift is out of range.
    #[error("requantization multiplier {multiplier} / shift {shift} out of range")]
    RequantRange {
        /// The multiplier.
        multiplier: i64,
        /// The shift.
        shift: u32,
    },
    /// Integer parameters for another number of layers.
    #[error("{quantized} quantized layers for a network of {layers}")]
    QuantLayers {
        /// Quantized layers given.
        quantized: usize,
        /// Layers of the network.
        layers: usize,
    },
    /// A quantized layer whose weight or bias count does not fit it.
    #[error(
        "{layer}: {weights} integer weights and {biases} biases, expected {expected_weights} and {expected_biases}"
    )]
    QuantParams {
        /// The layer's name.
        layer: String,
        /// Integer weights given.
        weights: usize,
        /// Integer biases given.
        biases: usize,
        /// Weights the layer has.
        expected_weights: usize,
        /// Biases the layer has (one per output channel).
        expected_biases: usize,
    },
    /// An integer weight beyond the 8-bit range.
    #[error("{layer}: an integer weight exceeds +-{max}")]
    WeightRange {
        /// The layer's name.
        layer: String,
        /// The largest weight magnitude.
        max: i64,
    },
    /// A shortcut's integer form on a layer without a shortcut, or none on a layer with one.
    #[error("{layer}: the integer model's shortcut does not match the architecture's")]
    ShortcutPresence {
        /// The layer's name.
        layer: String,
    },
    /// Shortcut factors out of range.
    #[error("{layer}: shortcut factors {main_factor} and {factor} (each must be 1 to 2^24)")]
    ShortcutFactors {
        /// The layer's name.
        layer: String,
        /// a.
        main_factor: i64,
        /// c.
        factor: i64,
    },
    /// A ratio of shortcut scales beyond what integer factors can hold.
    #[error("the ratio of a shortcut's two scales is {ratio}, not a positive number")]
    ShortcutRatio {
        /// The ratio.
        ratio: f64,
    },
    /// Activation scales that do not fit the network.
    #[error(
        "{given} activation scales given, expected {expected} positive numbers (one per layer but the last)"
    )]
    CalibratedScales {
        /// Scales given.
        given: usize,
        /// Scales expected.
        expected: usize,
    },
    /// Requantization styles in the wrong number.
    #[error("{given} requantization styles given, expected {expected} (one per layer but the last)")]
    RequantStyles {
        /// Styles given.
        given: usize,
        /// Styles expected.
        expected: usize,
    },
    /// An integer bias beyond 2^40.
    #[error("{layer}: an integer bias exceeds 2^40")]
    BiasRange {
        /// The layer's name.
        layer: String,
    },
    /// A weight or input scale that is not a positive number.
    #[error("{layer}: scales must be positive numbers")]
    Scales {
        /// The layer's name.
        layer: String,
        /// Its weight scale.
        weight_scale: f64,
        /// Its input scale.
        input_scale: f64,
    },
    /// A layer's requantization step that is refused.
    #[error("{layer}: {source}")]
    Requant {
        /// The layer's name.
        layer: String,
        /// What is wrong with its requantization.
        #[source]
        source: Box<Error>,
    },
    /// A requantization step on the last layer, or none on another.
    #[error("{layer}: requantization present on the wrong layers")]
    RequantPlacement {
        /// The layer's name.
        layer: String,
    },
    /// A model whose float and integer parts have different networks.
    #[error("the float and integer models have different architectures")]
    ArchitectureMismatch,
    /// A layer whose float and integer biases have different counts.
    #[error("{layer}: float and integer biases differ in shape")]
    BiasShapes {
        /// The layer's name.
        layer: String,
    },
    /// A tensor that safetensors refuses to describe.
    #[error("{tensor}: {source}")]
    TensorView {
        /// The tensor's name.
        tensor: String,
        /// The safetensors error.
        #[source]
        source: safetensors::SafeTensorError,
    },
    /// The quantization metadata does not serialize.
    #[error("{source}")]
    SerializeQuantization {
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// The safetensors file does not serialize.
    #[error("{source}")]
    Serialize {
        /// The safetensors error.
        #[source]
        source: safetensors::SafeTensorError,
    },
    /// A model file that is refused.
    #[error("{path}: {source}")]
    File {
        /// The file.
        path: String,
        /// What is wrong with it.
        #[source]
        source: Box<Error>,
    },
    /// Bytes that are not a safetensors file.
    #[error("not safetensors: {source}")]
    NotSafetensors {
        /// The safetensors error.
        #[source]
        source: safetensors::SafeTensorError,
    },
    /// A metadata key that is missing.
    #[error("metadata lacks {key:?}")]
    MissingMetadata {
        /// The key.
        key: &'static str,
    },
    /// A `format` metadata value that is not ppdnn's.
    #[error("format is not {expected:?}")]
    Format {
        /// The value found.
        found: String,
        /// The value of ppdnn's model files.
        expected: &'static str,
    },
    /// A version 1 file that does not hold LeNet-5 with average pooling.
    #[error("a version 1 model file holds LeNet-5 with average pooling")]
    Version1Architecture,
    /// An `architecture` metadata value that is not a valid network.
    #[error("metadata \"architecture\": {source}")]
    Architecture {
        /// Why the network is refused.
        #[source]
        source: Box<Error>,
    },
    /// A model file version this build does not read.
    #[error("model file version {version} (this build reads 1 and 2)")]
    Version {
        /// The version found.
        version: String,
    },
    /// A metadata value that should be a number.
    #[error("metadata {key:?} is not a number")]
    MetadataNumber {
        /// The key.
        key: &'static str,
        /// The parse error.
        #[source]
        source: std::num::ParseFloatError,
    },
    /// A `quantization` metadata value that does not parse.
    #[error("metadata \"quantization\": {source}")]
    QuantizationJson {
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// Quantization metadata for another number of layers.
    #[error("quantization metadata lists {listed} layers, the network has {layers}")]
    QuantizationLayers {
        /// Layers listed.
        listed: usize,
        /// Layers of the network.
        layers: usize,
    },
    /// Quantization metadata that names another layer than the network's.
    #[error("quantization metadata names {found:?} where {expected:?} belongs")]
    QuantizationName {
        /// The name listed.
        found: String,
        /// The network's layer at that place.
        expected: String,
    },
    /// A tensor the file does not hold.
    #[error("tensor {tensor} is missing")]
    MissingTensor {
        /// The tensor's name.
        tensor: String,
        /// The safetensors error.
        #[source]
        source: safetensors::SafeTensorError,
    },
    /// A tensor of another type or shape than its layer's.
    #[error("tensor {tensor} is {dtype:?} {shape:?}, expected {expected_dtype:?} {expected_shape:?}")]
    TensorType {
        /// The tensor's name.
        tensor: String,
        /// Its element type.
        dtype: safetensors::Dtype,
        /// Its shape.
        shape: Vec<usize>,
        /// The element type expected.
        expected_dtype: safetensors::Dtype,
        /// The shape expected.
        expected_shape: Vec<usize>,
    },
}

/// Why one layer of a network is refused (see [`ModelError::Layer`]).
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum LayerError {
    /// A convolution's input or output channels out of range.
    #[error("channels must be 1 to {max}")]
    Channels {
        /// Input channels.
        in_channels: usize,
        /// Output channels.
        out_channels: usize,
        /// Largest channel count.
        max: usize,
    },
    /// A kernel side out of range.
    #[error("kernel {kernel:?}: each side 1 to {max}")]
    Kernel {
        /// Kernel height and width.
        kernel: [usize; 2],
        /// Largest side.
        max: usize,
    },
    /// A convolution stride out of range.
    #[error("stride {stride:?}: 1 to {max}")]
    Stride {
        /// Vertical and horizontal stride.
        stride: [usize; 2],
        /// Largest stride.
        max: usize,
    },
    /// Padding out of range.
    #[error("padding {padding:?}: at most {max}")]
    Padding {
        /// Top, left, bottom, right.
        padding: [usize; 4],
        /// Largest padding.
        max: usize,
    },
    /// A kernel larger than the padded input.
    #[error("a {}x{} kernel does not fit the padded {height}x{width} input", .kernel[0], .kernel[1])]
    KernelFit {
        /// Kernel height and width.
        kernel: [usize; 2],
        /// The padded input's height.
        height: usize,
        /// The padded input's width.
        width: usize,
    },
    /// A dense layer's output count out of range.
    #[error("{outputs} outputs: 1 to {max}")]
    Outputs {
        /// Outputs given.
        outputs: usize,
        /// Largest count.
        max: usize,
    },
    /// A pooling window or stride out of range.
    #[error("pooling window {window:?} and stride {stride:?}: 1 to {max}")]
    PoolLimits {
        /// Window height and width.
        window: [usize; 2],
        /// Vertical and horizontal stride.
        stride: [usize; 2],
        /// Largest window side or stride.
        max: usize,
    },
    /// A pooling window larger than its input.
    #[error("a {}x{} pooling window does not fit {height}x{width}", .window[0], .window[1])]
    PoolFit {
        /// Window height and width.
        window: [usize; 2],
        /// The input's height.
        height: usize,
        /// The input's width.
        width: usize,
    },
    /// An empty name, or one another layer has.
    #[error("layer names must be non-empty and distinct")]
    Name,
    /// Pooling after a dense layer.
    #[error("pooling after a dense layer")]
    PoolAfterDense,
    /// More outputs or weights than the limit.
    #[error("more than {max} outputs or weights")]
    TooLarge {
        /// Largest count.
        max: usize,
    },
    /// ReLU or pooling after the last layer.
    #[error("the last layer's accumulators are the logits: no ReLU or pooling after it")]
    LastLayer,
    /// A shortcut into a dense layer.
    #[error("a shortcut (residual sum) can only feed a convolution")]
    ShortcutOnDense,
    /// A shortcut from a layer that is not an earlier one.
    #[error("its shortcut adds the activation of {from:?}, which is not an earlier layer")]
    ShortcutSource {
        /// The name given.
        from: String,
    },
    /// A shortcut whose sum does not fit the accumulators.
    #[error("its shortcut from {from:?} adds a {added} tensor to {output} accumulators")]
    ShortcutShape {
        /// The source layer.
        from: String,
        /// The shape the shortcut adds.
        added: Shape,
        /// The layer's accumulators' shape.
        output: Shape,
    },
    /// Shortcut parameters that do not fit: projection weights for an
    /// identity shortcut, or none for a projection.
    #[error(
        "its shortcut has {weights} weights and {biases} biases, expected {expected_weights} and {expected_biases}"
    )]
    ShortcutParams {
        /// Weights given.
        weights: usize,
        /// Biases given.
        biases: usize,
        /// Weights expected.
        expected_weights: usize,
        /// Biases expected.
        expected_biases: usize,
    },
    /// Float parameters whose weight or bias count does not fit the layer.
    #[error("{weights} weights and {biases} biases, expected {expected_weights} and {expected_biases}")]
    Params {
        /// Weights given.
        weights: usize,
        /// Biases given.
        biases: usize,
        /// Weights the layer has.
        expected_weights: usize,
        /// Biases the layer has (one per output channel).
        expected_biases: usize,
    },
    /// A float parameter that is infinite or NaN.
    #[error("a parameter is not a finite number")]
    NonFinite,
}

/// Why an input, or a set of them, does not fit the model.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum InputError {
    /// Inputs that do not match their labels' count.
    #[error("{labels} labels need {expected} input values of {per_input} each, got {got}")]
    LabelCount {
        /// Labels given.
        labels: usize,
        /// Input values they need.
        expected: usize,
        /// Values in one input.
        per_input: usize,
        /// Input values given.
        got: usize,
    },
    /// Calibration data that is empty or not whole inputs.
    #[error("calibration needs whole inputs of {per_input} values")]
    Calibration {
        /// Values in one input.
        per_input: usize,
        /// Values given.
        got: usize,
    },
    /// A layer's input of the wrong length.
    #[error("{layer}: {got} inputs, expected {expected}")]
    LayerInputs {
        /// The layer's name.
        layer: String,
        /// Values given.
        got: usize,
        /// Values the layer takes.
        expected: usize,
    },
    /// A layer's accumulators of the wrong length.
    #[error("{layer}: {got} accumulators, expected {expected}")]
    Accumulators {
        /// The layer's name.
        layer: String,
        /// Accumulators given.
        got: usize,
        /// Accumulators the layer has.
        expected: usize,
    },
    /// A layer index beyond the network.
    #[error("no layer {index}")]
    NoLayer {
        /// The index given.
        index: usize,
    },
    /// An input of the wrong length for the integer model.
    #[error("an input has {expected} values, got {got}")]
    Length {
        /// Values in one input.
        expected: usize,
        /// Values given.
        got: usize,
    },
    /// An input of the wrong length for the float model.
    #[error("{got} input values, the network takes {shape:?}")]
    Shape {
        /// Values given.
        got: usize,
        /// The network's input shape.
        shape: Shape,
    },
}

/// Why a `.npy` array is not the model's inputs; each message says what to change.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NpyError {
    /// Bytes that are not a `.npy` file.
    #[error("not a .npy array: {0}")]
    NotNpy(#[source] std::io::Error),
    /// A Fortran-order array.
    #[error("the array is in Fortran order: save np.ascontiguousarray(x)")]
    FortranOrder,
    /// An axis too long for this machine.
    #[error("an axis of length {0}")]
    AxisLength(u64),
    /// A shape that is neither one input nor a batch of them.
    #[error("an array of shape {shape:?}; the model takes {input_shape:?} (or a batch of them)")]
    Shape {
        /// The array's shape.
        shape: Vec<usize>,
        /// The model's input shape.
        input_shape: Vec<usize>,
    },
    /// A value outside 0..255.
    #[error("value {value} at flat index {index}: pixels are 0..255")]
    Pixel {
        /// The value.
        value: i64,
        /// Its flat index.
        index: usize,
    },
    /// Fewer values than the shape says.
    #[error("the array holds fewer values than its shape says")]
    Truncated,
    /// A structured array.
    #[error("a structured array; pixels are a plain integer array (np.uint8)")]
    Structured,
    /// Data that does not read.
    #[error("reading the array: {0}")]
    Read(#[source] std::io::Error),
    /// A float array.
    #[error(
        "a float array ({0}); pixels are integers 0..255: convert with (x * 255).round().astype(np.uint8) if it holds 0..1"
    )]
    Float(String),
    /// Another element type.
    #[error("an array of {0}; pixels are integers 0..255 (np.uint8)")]
    ElementType(String),
}
