//! Values in host memory that an engine hands back: what ONNX Runtime's outputs are copied into.

/// Contiguous `f32` values of a shape.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct HostTensor {
    pub(crate) dims: Vec<usize>,
    pub(crate) values: Vec<f32>,
}
