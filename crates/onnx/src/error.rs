//! Errors of ONNX import and export: one [`Error`] whose variants say what
//! went wrong, with the values concerned as fields; the messages come from
//! `Display` and name the node, operator or tensor of the file.

use ppdnn_model::network::Shape;

use crate::proto::tensor_proto::DataType;

/// What can go wrong reading an ONNX model.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The bytes are not an ONNX model.
    #[error("not an ONNX model: {0}")]
    Decode(#[from] DecodeError),
    /// A node ppdnn cannot serve, named as in the file.
    #[error("node {node:?} ({op}): {why}")]
    Unsupported {
        /// The node's name (or its operator and index when it has none).
        node: String,
        /// Its operator.
        op: String,
        /// Why it is refused.
        why: Refusal,
    },
    /// The graph is an ONNX model, but not a sequential network ppdnn can read.
    #[error("{0}")]
    Graph(#[from] GraphError),
    /// The network read is not a valid ppdnn network.
    #[error(transparent)]
    Model(#[from] ppdnn_model::Error),
}

/// Why the bytes are not an ONNX model.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The bytes are not a `ModelProto` in protobuf wire format.
    #[error("{0}")]
    Protobuf(#[from] prost::DecodeError),
    /// A model without a graph.
    #[error("the model has no graph")]
    NoGraph,
}

impl From<prost::DecodeError> for Error {
    fn from(e: prost::DecodeError) -> Self {
        Error::Decode(DecodeError::Protobuf(e))
    }
}

/// Why an ONNX graph (its inputs, outputs or constant tensors), or the
/// options given to read it, do not make a network ppdnn can read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GraphError {
    /// A constant tensor whose data is in an external file.
    #[error(
        "tensor {tensor:?} keeps its data in an external file, which ppdnn does not read (save the model with its weights inside)"
    )]
    ExternalData {
        /// The tensor's name, as in the file.
        tensor: Option<String>,
    },
    /// A constant tensor with a negative dimension.
    #[error("tensor {tensor:?}: dimension {dim}")]
    Dimension {
        /// The tensor's name, as in the file.
        tensor: Option<String>,
        /// The dimension.
        dim: i64,
    },
    /// A constant tensor of more values than ppdnn reads (2^26).
    #[error("tensor {tensor:?} is too large: {dims:?}")]
    TooLarge {
        /// The tensor's name, as in the file.
        tensor: Option<String>,
        /// Its dimensions.
        dims: Vec<usize>,
    },
    /// A constant tensor of an element type other than float, double, int32
    /// and int64.
    #[error(
        "tensor {tensor:?} has element type {:?}; ppdnn reads float, double, int32 and int64 tensors",
        DataType::try_from(*.data_type)
    )]
    ElementType {
        /// The tensor's name, as in the file.
        tensor: Option<String>,
        /// Its `data_type` code, as in the file (0, undefined, when absent).
        data_type: i32,
    },
    /// A constant tensor whose number of values disagrees with its dimensions.
    #[error("tensor {tensor:?} holds {values} values for dimensions {dims:?}")]
    ValueCount {
        /// The tensor's name, as in the file.
        tensor: Option<String>,
        /// The values it holds.
        values: usize,
        /// Its dimensions.
        dims: Vec<usize>,
    },
    /// A graph of other than one data input (inputs that are not initializers).
    #[error(
        "the graph has {} data inputs ({}); ppdnn serves networks of one input",
        .inputs.len(),
        .inputs.join(", ")
    )]
    InputCount {
        /// The data inputs' names.
        inputs: Vec<String>,
    },
    /// An input shape given in the options with another number of values than
    /// the graph's input.
    #[error(
        "--input-shape {}x{}x{} has {} values, the graph's input {input} has {}",
        .given.channels,
        .given.height,
        .given.width,
        .given.len(),
        .graph.len()
    )]
    InputShape {
        /// The shape given.
        given: Shape,
        /// The graph's input's name.
        input: String,
        /// The graph's input shape.
        graph: Shape,
    },
    /// A graph input that is not a tensor.
    #[error("input {input:?} is not a tensor")]
    InputNotTensor {
        /// The input's name.
        input: String,
    },
    /// A graph input of a rank ppdnn does not read, or with unknown sizes.
    #[error(
        "input {input:?} has shape {dims:?}; ppdnn needs [batch, channels, height, width], [batch, height, width] or [batch, features] with known sizes"
    )]
    InputDims {
        /// The input's name.
        input: String,
        /// Its dimensions (`None` where the size is not a number).
        dims: Vec<Option<i64>>,
    },
    /// Input means given in the options, neither one nor one per channel.
    #[error("--input-mean has {values} values for {channels} input channels")]
    MeanCount {
        /// The means given.
        values: usize,
        /// The input's channels.
        channels: usize,
    },
    /// Input standard deviations given in the options, neither one nor one
    /// per channel.
    #[error("--input-std has {values} values for {channels} input channels")]
    StdCount {
        /// The standard deviations given.
        values: usize,
        /// The input's channels.
        channels: usize,
    },
    /// An input mean or standard deviation that is infinite or NaN.
    #[error("input normalization value {value} is not a number")]
    NormalizationNotFinite {
        /// The value.
        value: f32,
    },
    /// An input standard deviation that is zero or negative.
    #[error("--input-std values must be positive")]
    StdNotPositive,
    /// Graph outputs other than the end of the data path.
    #[error("the graph's outputs {outputs:?} are not the end of its single data path ({end:?})")]
    Outputs {
        /// The graph's outputs' names.
        outputs: Vec<String>,
        /// The name of the data path's last value.
        end: String,
    },
    /// A graph without a convolution or dense layer.
    #[error("the graph has no convolution or dense layer")]
    NoLayer,
}

/// Why a node is refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// A required attribute that is absent.
    #[error("attribute {attribute} is required")]
    MissingAttribute {
        /// The attribute's name.
        attribute: String,
    },
    /// A list attribute of the wrong length, or with a negative or huge value.
    #[error("attribute {attribute} = {values:?}: {expected} non-negative values expected")]
    AttributeValues {
        /// The attribute's name.
        attribute: String,
        /// Its values.
        values: Vec<i64>,
        /// The number of values expected.
        expected: usize,
    },
    /// An attribute ppdnn does not read.
    #[error("attribute {attribute} is not supported")]
    UnknownAttribute {
        /// The attribute's name.
        attribute: String,
    },
    /// An input the node needs that is absent.
    #[error("input {index} is missing")]
    MissingInput {
        /// The input's position.
        index: usize,
    },
    /// An input that must be a constant and is not.
    #[error("input {input:?} must be a constant (an initializer)")]
    NotConstant {
        /// The input's name.
        input: String,
    },
    /// A node after the final softmax.
    #[error("comes after the final {op}; nothing may follow it")]
    AfterEnd {
        /// The operator the message names: the refused node's own.
        op: String,
    },
    /// A Constant node other than one tensor in `value`.
    #[error("a Constant node ppdnn reads holds one tensor in `value`")]
    ConstantValue,
    /// An operator of another domain than the default one.
    #[error("operators of domain {domain:?} are not supported")]
    Domain {
        /// The node's domain.
        domain: String,
    },
    /// A node that does not read the previous step's output.
    #[error("reads {input:?}, not the previous step's output {previous:?}: ppdnn serves sequential networks")]
    NotSequential {
        /// The node's first input.
        input: String,
        /// The previous step's output.
        previous: String,
    },
    /// A node that reads an earlier value of the data path than the last,
    /// outside a residual block's shortcut.
    #[error(
        "reads {input:?}, an earlier value than the previous step's output {previous:?}: ppdnn reads a branch only as a residual shortcut, an earlier layer's activation added to a convolution's output directly or through one 1x1 convolution (with its batch normalization)"
    )]
    SideBranch {
        /// The node's first input.
        input: String,
        /// The previous step's output.
        previous: String,
    },
    /// A node without inputs.
    #[error("has no input")]
    NoInput,
    /// A node without outputs.
    #[error("has no output")]
    NoOutput,
    /// A node with several outputs, of an operator that must have one.
    #[error("has more than one output")]
    SeveralOutputs,
    /// An operator ppdnn does not read.
    #[error(
        "operator not supported (ppdnn reads Conv, Gemm, MatMul, Add, BatchNormalization, Relu, MaxPool, AveragePool, GlobalAveragePool, Flatten, Reshape, Identity, Dropout, Softmax, and Sub/Mul/Div on the input)"
    )]
    Operator,
    /// A Flatten on another axis than 1.
    #[error("axis {axis}: only Flatten(axis=1) keeps the batch apart")]
    FlattenAxis {
        /// The axis.
        axis: i64,
    },
    /// A Reshape to other than [batch, features].
    #[error("reshapes to {shape:?}; only a flattening to [batch, features] is supported")]
    Reshape {
        /// The shape it reshapes to.
        shape: Vec<i64>,
    },
    /// A node that needs a convolution or dense layer before it, with none.
    #[error("no layer before it")]
    NoLayerBefore,
    /// A convolution after a flattening or a dense layer.
    #[error("a convolution after a flattening or a dense layer")]
    ConvAfterDense,
    /// A grouped convolution.
    #[error("grouped (depthwise) convolutions are not supported")]
    Grouped,
    /// A dilated convolution.
    #[error("dilated convolutions are not supported")]
    Dilated,
    /// A convolution with an `auto_pad` other than NOTSET or VALID.
    #[error("auto_pad {auto_pad}: give the padding explicitly in pads")]
    ConvAutoPad {
        /// The `auto_pad` value.
        auto_pad: String,
    },
    /// Convolution weights that are not 4-D floats.
    #[error("weights of shape {dims:?}; 2-D convolutions only")]
    ConvWeights {
        /// The weights' dimensions.
        dims: Vec<usize>,
    },
    /// Convolution weights for another number of input channels.
    #[error("weights {dims:?} for an input of {channels} channels")]
    WeightChannels {
        /// The weights' dimensions.
        dims: Vec<usize>,
        /// The input's channels.
        channels: usize,
    },
    /// A `kernel_shape` that disagrees with the weights.
    #[error("kernel_shape {kernel:?} disagrees with the weights {dims:?}")]
    KernelShape {
        /// The `kernel_shape` attribute.
        kernel: Vec<usize>,
        /// The weights' dimensions.
        dims: Vec<usize>,
    },
    /// A convolution bias of other than one value per output channel.
    #[error("bias of shape {dims:?} for {channels} channels")]
    ConvBias {
        /// The bias's dimensions.
        dims: Vec<usize>,
        /// The output channels.
        channels: usize,
    },
    /// Dense weights that do not fit the outputs and the input.
    #[error("{weights} weights for {outputs} outputs of an input of {inputs} values")]
    DenseWeights {
        /// The number of weights.
        weights: usize,
        /// The outputs.
        outputs: usize,
        /// The input's values.
        inputs: usize,
    },
    /// A Gemm with its first operand transposed.
    #[error("transA = 1 is not supported")]
    TransA,
    /// Gemm or MatMul weights that are not a float matrix.
    #[error("weights of shape {dims:?}; a matrix expected")]
    MatrixWeights {
        /// The weights' dimensions.
        dims: Vec<usize>,
    },
    /// A Gemm bias of other than one value or one per output.
    #[error("bias of shape {dims:?} for {outputs} outputs")]
    DenseBias {
        /// The bias's dimensions.
        dims: Vec<usize>,
        /// The outputs.
        outputs: usize,
    },
    /// An elementwise operator whose constant operand is not float.
    #[error("a float constant operand is required")]
    FloatOperand,
    /// An elementwise operator on the input with neither one value nor one
    /// per channel.
    #[error("{values} values: only a scalar or per-channel {op} on the input can be folded")]
    InputOperand {
        /// The operand's values.
        values: usize,
        /// The operator.
        op: String,
    },
    /// A Div on the input by zero.
    #[error("division by zero")]
    DivisionByZero,
    /// An Add after a layer with neither one value nor one per output
    /// channel (or per accumulator of a convolution).
    #[error("adds {values} values to {outputs} outputs; a bias per output channel is expected")]
    BiasValues {
        /// The operand's values.
        values: usize,
        /// The layer's outputs.
        outputs: usize,
    },
    /// An elementwise operator elsewhere than on the input or, for Add, as a
    /// bias.
    #[error(
        "{op} is supported on the input (normalization) and, for Add, as the bias of the layer just before"
    )]
    Elementwise {
        /// The operator.
        op: String,
    },
    /// A batch normalization that does not follow a linear layer directly.
    #[error("a batch normalization must follow a convolution or dense layer directly")]
    BatchNormPlacement,
    /// Batch normalization parameters of other than one value per channel.
    #[error("its parameters do not have one value per channel ({channels})")]
    BatchNormParams {
        /// The channels of the layer before.
        channels: usize,
    },
    /// A ReLU without a linear layer before it.
    #[error("a ReLU must follow a convolution or dense layer")]
    ReluPlacement,
    /// A ReLU after average pooling.
    #[error("a ReLU after average pooling: ppdnn applies ReLU before pooling")]
    ReluAfterAveragePool,
    /// Pooling with padding.
    #[error("padded pooling is not supported")]
    PaddedPool,
    /// Pooling with `ceil_mode` or dilations.
    #[error("ceil_mode and dilations are not supported")]
    PoolCeilOrDilation,
    /// Pooling with an `auto_pad` other than NOTSET or VALID.
    #[error("auto_pad {auto_pad} is not supported")]
    PoolAutoPad {
        /// The `auto_pad` value.
        auto_pad: String,
    },
    /// Pooling without a convolution before it.
    #[error("pooling must follow a convolution")]
    PoolPlacement,
    /// A second pooling after the same convolution.
    #[error("a second pooling after the same convolution")]
    SecondPool,
    /// An Add of two computed values, neither of which is the data path's last.
    #[error("adds {inputs:?}, neither of which is the previous step's output {previous:?}")]
    AddInputs {
        /// The Add's inputs.
        inputs: Vec<String>,
        /// The previous step's output.
        previous: String,
    },
    /// A residual Add elsewhere than after a convolution and its batch normalization.
    #[error(
        "a residual Add must follow a convolution (and its batch normalization) directly, before its ReLU and pooling"
    )]
    ShortcutPlacement,
    /// A second residual Add on the same convolution.
    #[error("a second residual Add on the same convolution")]
    SecondShortcut,
    /// A shortcut that is not an earlier layer's activation.
    #[error(
        "the shortcut {input:?} is not an earlier layer's activation (its output after ReLU and pooling), nor one 1x1 convolution of one"
    )]
    ShortcutSource {
        /// The value added.
        input: String,
    },
    /// A shortcut of another shape than the convolution's output.
    #[error("adds a {added} shortcut to a {output} output")]
    ShortcutShape {
        /// The shortcut's shape.
        added: Shape,
        /// The convolution's output shape.
        output: Shape,
    },
    /// A projection shortcut other than a 1x1 convolution without padding.
    #[error(
        "a projection shortcut must be a 1x1 convolution without padding; this one has kernel {kernel:?} and pads {padding:?}"
    )]
    ProjectionKernel {
        /// The kernel's height and width.
        kernel: [usize; 2],
        /// The padding: top, left, bottom, right.
        padding: [usize; 4],
    },
}

/// Results of this crate.
pub type Result<T> = std::result::Result<T, Error>;

#[cfg(test)]
mod tests {
    use super::*;

    fn unsupported(why: Refusal) -> String {
        Error::Unsupported { node: "n".into(), op: "Op".into(), why }.to_string()
    }

    /// The messages are those the string-carrying variants they replace
    /// were given, built here as they were.
    #[test]
    fn messages_are_unchanged() {
        let name = Some("w".to_string());
        let dims = vec![2usize, 3];
        let graph: Vec<(GraphError, String)> = vec![
            (
                GraphError::ExternalData { tensor: name.clone() },
                format!(
                    "tensor {name:?} keeps its data in an external file, which ppdnn does not read (save the model with its weights inside)"
                ),
            ),
            (
                GraphError::Dimension { tensor: name.clone(), dim: -1 },
                format!("tensor {name:?}: dimension {}", -1),
            ),
            (
                GraphError::TooLarge { tensor: None, dims: dims.clone() },
                format!("tensor {:?} is too large: {dims:?}", None::<String>),
            ),
            (
                GraphError::ElementType { tensor: name.clone(), data_type: 2 },
                format!(
                    "tensor {name:?} has element type {:?}; ppdnn reads float, double, int32 and int64 tensors",
                    DataType::try_from(2)
                ),
            ),
            (
                GraphError::ElementType { tensor: name.clone(), data_type: 99 },
                format!(
                    "tensor {name:?} has element type {:?}; ppdnn reads float, double, int32 and int64 tensors",
                    DataType::try_from(99)
                ),
            ),
            (
                GraphError::ValueCount { tensor: name.clone(), values: 5, dims: dims.clone() },
                format!("tensor {name:?} holds {} values for dimensions {dims:?}", 5),
            ),
            (
                GraphError::InputCount { inputs: vec!["a".into(), "b".into()] },
                "the graph has 2 data inputs (a, b); ppdnn serves networks of one input".into(),
            ),
            (
                GraphError::InputShape {
                    given: Shape::new(1, 28, 28),
                    input: "x".into(),
                    graph: Shape::vector(10),
                },
                "--input-shape 1x28x28 has 784 values, the graph's input x has 10".into(),
            ),
            (GraphError::InputNotTensor { input: "x".into() }, format!("input {:?} is not a tensor", "x")),
            (
                GraphError::InputDims { input: "x".into(), dims: vec![Some(1), None] },
                format!(
                    "input {:?} has shape {:?}; ppdnn needs [batch, channels, height, width], [batch, height, width] or [batch, features] with known sizes",
                    "x",
                    vec![Some(1i64), None]
                ),
            ),
            (
                GraphError::MeanCount { values: 2, channels: 3 },
                "--input-mean has 2 values for 3 input channels".into(),
            ),
            (
                GraphError::StdCount { values: 2, channels: 1 },
                "--input-std has 2 values for 1 input channels".into(),
            ),
            (
                GraphError::NormalizationNotFinite { value: f32::NAN },
                format!("input normalization value {} is not a number", f32::NAN),
            ),
            (GraphError::StdNotPositive, "--input-std values must be positive".into()),
            (
                GraphError::Outputs { outputs: vec!["y".into(), "z".into()], end: "y".into() },
                format!(
                    "the graph's outputs {:?} are not the end of its single data path ({:?})",
                    vec!["y", "z"],
                    "y"
                ),
            ),
            (GraphError::NoLayer, "the graph has no convolution or dense layer".into()),
        ];
        for (e, want) in graph {
            assert_eq!(Error::from(e).to_string(), want);
        }
        assert_eq!(
            Error::from(DecodeError::NoGraph).to_string(),
            "not an ONNX model: the model has no graph"
        );
        let prost = <crate::proto::ModelProto as prost::Message>::decode(&[0xff_u8][..]).unwrap_err();
        assert_eq!(Error::from(prost.clone()).to_string(), format!("not an ONNX model: {prost}"));

        let refusals: Vec<(Refusal, &str)> = vec![
            (
                Refusal::MissingAttribute { attribute: "kernel_shape".into() },
                "attribute kernel_shape is required",
            ),
            (
                Refusal::AttributeValues { attribute: "pads".into(), values: vec![1, -1], expected: 4 },
                "attribute pads = [1, -1]: 4 non-negative values expected",
            ),
            (Refusal::UnknownAttribute { attribute: "foo".into() }, "attribute foo is not supported"),
            (Refusal::MissingInput { index: 1 }, "input 1 is missing"),
            (Refusal::NotConstant { input: "w".into() }, "input \"w\" must be a constant (an initializer)"),
            (Refusal::AfterEnd { op: "Relu".into() }, "comes after the final Relu; nothing may follow it"),
            (Refusal::ConstantValue, "a Constant node ppdnn reads holds one tensor in `value`"),
            (Refusal::Domain { domain: "com.x".into() }, "operators of domain \"com.x\" are not supported"),
            (
                Refusal::NotSequential { input: "a".into(), previous: "b".into() },
                "reads \"a\", not the previous step's output \"b\": ppdnn serves sequential networks",
            ),
            (Refusal::NoInput, "has no input"),
            (Refusal::SeveralOutputs, "has more than one output"),
            (
                Refusal::Operator,
                "operator not supported (ppdnn reads Conv, Gemm, MatMul, Add, BatchNormalization, Relu, MaxPool, AveragePool, GlobalAveragePool, Flatten, Reshape, Identity, Dropout, Softmax, and Sub/Mul/Div on the input)",
            ),
            (Refusal::FlattenAxis { axis: 2 }, "axis 2: only Flatten(axis=1) keeps the batch apart"),
            (
                Refusal::Reshape { shape: vec![1, 2, 3] },
                "reshapes to [1, 2, 3]; only a flattening to [batch, features] is supported",
            ),
            (Refusal::NoLayerBefore, "no layer before it"),
            (Refusal::ConvAfterDense, "a convolution after a flattening or a dense layer"),
            (Refusal::Grouped, "grouped (depthwise) convolutions are not supported"),
            (Refusal::Dilated, "dilated convolutions are not supported"),
            (
                Refusal::ConvAutoPad { auto_pad: "SAME_UPPER".into() },
                "auto_pad SAME_UPPER: give the padding explicitly in pads",
            ),
            (Refusal::ConvWeights { dims: vec![3, 3] }, "weights of shape [3, 3]; 2-D convolutions only"),
            (
                Refusal::WeightChannels { dims: vec![4, 3, 3, 3], channels: 1 },
                "weights [4, 3, 3, 3] for an input of 1 channels",
            ),
            (
                Refusal::KernelShape { kernel: vec![5, 5], dims: vec![4, 1, 3, 3] },
                "kernel_shape [5, 5] disagrees with the weights [4, 1, 3, 3]",
            ),
            (Refusal::ConvBias { dims: vec![3], channels: 4 }, "bias of shape [3] for 4 channels"),
            (
                Refusal::DenseWeights { weights: 10, outputs: 3, inputs: 4 },
                "10 weights for 3 outputs of an input of 4 values",
            ),
            (Refusal::TransA, "transA = 1 is not supported"),
            (Refusal::MatrixWeights { dims: vec![2, 2, 2] }, "weights of shape [2, 2, 2]; a matrix expected"),
            (Refusal::DenseBias { dims: vec![3], outputs: 4 }, "bias of shape [3] for 4 outputs"),
            (Refusal::FloatOperand, "a float constant operand is required"),
            (
                Refusal::InputOperand { values: 2, op: "Sub".into() },
                "2 values: only a scalar or per-channel Sub on the input can be folded",
            ),
            (Refusal::DivisionByZero, "division by zero"),
            (
                Refusal::BiasValues { values: 3, outputs: 4 },
                "adds 3 values to 4 outputs; a bias per output channel is expected",
            ),
            (
                Refusal::Elementwise { op: "Mul".into() },
                "Mul is supported on the input (normalization) and, for Add, as the bias of the layer just before",
            ),
            (
                Refusal::BatchNormPlacement,
                "a batch normalization must follow a convolution or dense layer directly",
            ),
            (
                Refusal::BatchNormParams { channels: 8 },
                "its parameters do not have one value per channel (8)",
            ),
            (Refusal::ReluPlacement, "a ReLU must follow a convolution or dense layer"),
            (
                Refusal::ReluAfterAveragePool,
                "a ReLU after average pooling: ppdnn applies ReLU before pooling",
            ),
            (Refusal::PaddedPool, "padded pooling is not supported"),
            (Refusal::PoolCeilOrDilation, "ceil_mode and dilations are not supported"),
            (Refusal::PoolAutoPad { auto_pad: "SAME_LOWER".into() }, "auto_pad SAME_LOWER is not supported"),
            (Refusal::PoolPlacement, "pooling must follow a convolution"),
            (Refusal::SecondPool, "a second pooling after the same convolution"),
        ];
        for (why, want) in refusals {
            assert_eq!(unsupported(why), format!("node \"n\" (Op): {want}"));
        }
    }

    /// The refusals of graphs with branches name what the node reads.
    #[test]
    fn branch_messages() {
        let refusals: Vec<(Refusal, &str)> = vec![
            (
                Refusal::SideBranch { input: "a".into(), previous: "b".into() },
                "reads \"a\", an earlier value than the previous step's output \"b\": ppdnn reads a branch only as a residual shortcut, an earlier layer's activation added to a convolution's output directly or through one 1x1 convolution (with its batch normalization)",
            ),
            (Refusal::NoOutput, "has no output"),
            (
                Refusal::AddInputs { inputs: vec!["a".into(), "c".into()], previous: "b".into() },
                "adds [\"a\", \"c\"], neither of which is the previous step's output \"b\"",
            ),
            (
                Refusal::ShortcutPlacement,
                "a residual Add must follow a convolution (and its batch normalization) directly, before its ReLU and pooling",
            ),
            (Refusal::SecondShortcut, "a second residual Add on the same convolution"),
            (
                Refusal::ShortcutSource { input: "x".into() },
                "the shortcut \"x\" is not an earlier layer's activation (its output after ReLU and pooling), nor one 1x1 convolution of one",
            ),
            (
                Refusal::ShortcutShape { added: Shape::new(4, 8, 8), output: Shape::new(8, 4, 4) },
                "adds a 4x8x8 shortcut to a 8x4x4 output",
            ),
            (
                Refusal::ProjectionKernel { kernel: [3, 3], padding: [1; 4] },
                "a projection shortcut must be a 1x1 convolution without padding; this one has kernel [3, 3] and pads [1, 1, 1, 1]",
            ),
        ];
        for (why, want) in refusals {
            assert_eq!(unsupported(why), format!("node \"n\" (Op): {want}"));
        }
    }
}
