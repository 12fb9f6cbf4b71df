//! A forward pass's output, wherever it lives: a libtorch tensor (TorchScript, AOTInductor), whose
//! activations run in libtorch so that probabilities are PyTorch's own to the bit, or values in host
//! memory (ONNX Runtime), whose activations run here, within a few 1e-8 of PyTorch's.

use super::onnx::OnnxError;
pub(crate) use super::tensor::HostTensor;
use super::torch::{Op, Tensor, TorchError};

/// A call into an engine failed: its own message.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub(crate) enum RuntimeError {
    #[error(transparent)]
    Torch(#[from] TorchError),
    #[error(transparent)]
    Onnx(#[from] OnnxError),
}

pub(crate) enum Output {
    Torch(Tensor),
    Host(HostTensor),
}

impl Output {
    pub(crate) fn dims(&self) -> Vec<usize> {
        match self {
            Output::Torch(t) => t.dims(),
            Output::Host(h) => h.dims.clone(),
        }
    }

    /// This output with zero rows appended along dimension 0 up to `rows`: post-processing then
    /// runs at one shape whatever the batch.
    pub(crate) fn pad_rows(self, rows: usize) -> Result<Output, RuntimeError> {
        Ok(match self {
            Output::Torch(t) => Output::Torch(t.pad_rows(rows)?),
            Output::Host(h) => Output::Host(padded(h, rows)),
        })
    }

    /// The values after `op` (none: as they are), contiguous.
    pub(crate) fn values(&self, op: Option<Op>) -> Result<Vec<f32>, RuntimeError> {
        match (self, op) {
            (Output::Torch(t), Some(op)) => Ok(t.apply(op).and_then(|t| t.to_vec())?),
            (Output::Torch(t), None) => Ok(t.to_vec()?),
            (Output::Host(h), op) => Ok(host_apply(h, op)),
        }
    }
}

/// `op` on host values, as PyTorch defines it (dimension 1 is the class dimension).
fn host_apply(h: &HostTensor, op: Option<Op>) -> Vec<f32> {
    let sigmoid = |x: f32| 1.0 / (1.0 + (-x).exp());
    match op {
        None => h.values.clone(),
        Some(Op::Sigmoid) => h.values.iter().map(|&x| sigmoid(x)).collect(),
        Some(Op::SigmoidAbove(threshold)) => h
            .values
            .iter()
            .map(|&x| f32::from(u8::from(sigmoid(x) > threshold)))
            .collect(),
        Some(Op::Softmax) => along_classes(h, |column, out| {
            let max = column.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let exps: Vec<f32> = column.iter().map(|&x| (x - max).exp()).collect();
            let sum: f32 = exps.iter().sum();
            out.extend(exps.iter().map(|e| e / sum));
        }),
        Some(Op::Argmax) => {
            let (rows, classes, inner) = split(&h.dims);
            let mut out = Vec::with_capacity(rows * inner);
            for row in h.values.chunks_exact((classes * inner).max(1)) {
                for k in 0..inner {
                    // The first of equal maxima, as torch.argmax; NaN wins, as in PyTorch.
                    let mut best = 0;
                    for c in 1..classes {
                        let (v, b) = (row[c * inner + k], row[best * inner + k]);
                        if !b.is_nan() && (v > b || v.is_nan()) {
                            best = c;
                        }
                    }
                    out.push(best as f32);
                }
            }
            out
        }
        Some(Op::PadRows(rows)) => padded(h.clone(), rows).values,
    }
}

/// `h` with zero rows appended along dimension 0 up to `rows`.
fn padded(mut h: HostTensor, rows: usize) -> HostTensor {
    let have = h.dims.first().copied().unwrap_or(0);
    if have < rows && !h.dims.is_empty() {
        let per_row: usize = h.dims[1..].iter().product();
        h.values.resize(rows * per_row, 0.0);
        h.dims[0] = rows;
    }
    h
}

/// (rows, classes, values per class per row) of a `[N, C, ...]` shape.
fn split(dims: &[usize]) -> (usize, usize, usize) {
    let rows = dims.first().copied().unwrap_or(1);
    let classes = dims.get(1).copied().unwrap_or(1);
    let inner = dims.iter().skip(2).product();
    (rows, classes, inner)
}

/// `f` on each row's and position's values along dimension 1 (gathered contiguous), its results
/// put back in place.
fn along_classes(h: &HostTensor, f: impl Fn(&[f32], &mut Vec<f32>)) -> Vec<f32> {
    let (_, classes, inner) = split(&h.dims);
    let mut out = vec![0f32; h.values.len()];
    let (mut column, mut result) = (Vec::with_capacity(classes), Vec::with_capacity(classes));
    for (row, done) in h
        .values
        .chunks_exact((classes * inner).max(1))
        .zip(out.chunks_exact_mut((classes * inner).max(1)))
    {
        for k in 0..inner {
            column.clear();
            column.extend((0..classes).map(|c| row[c * inner + k]));
            result.clear();
            f(&column, &mut result);
            for (c, &v) in result.iter().enumerate() {
                done[c * inner + k] = v;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(dims: &[usize], values: &[f32]) -> Output {
        Output::Host(HostTensor {
            dims: dims.to_vec(),
            values: values.to_vec(),
        })
    }

    #[test]
    fn host_activations_are_pytorchs() {
        let logits = host(&[2, 1], &[0.0, 2.0]);
        let p = logits.values(Some(Op::Sigmoid)).unwrap();
        assert_eq!(p[0], 0.5);
        assert!((p[1] - 0.880_797_1).abs() < 1e-7);
        assert_eq!(
            logits.values(Some(Op::SigmoidAbove(0.6))).unwrap(),
            [0.0, 1.0]
        );
        // torch.softmax(torch.tensor([[1., 2., 3.], [1000., 0., 0.]]), 1)
        let classes = host(&[2, 3], &[1.0, 2.0, 3.0, 1000.0, 0.0, 0.0]);
        let p = classes.values(Some(Op::Softmax)).unwrap();
        for (got, want) in p
            .iter()
            .zip([0.090_030_57, 0.244_728_48, 0.665_240_94, 1.0, 0.0, 0.0])
        {
            assert!((got - want).abs() < 1e-7, "{p:?}");
        }
        // Softmax and argmax over the channels of a [1, 2, 1, 2] map: per pixel.
        let map = host(&[1, 2, 1, 2], &[0.0, 5.0, 1.0, 5.0]);
        let p = map.values(Some(Op::Softmax)).unwrap();
        assert!((p[0] - 0.268_941_43).abs() < 1e-7 && (p[2] - 0.731_058_6).abs() < 1e-7);
        assert_eq!((p[1], p[3]), (0.5, 0.5));
        assert_eq!(map.values(Some(Op::Argmax)).unwrap(), [1.0, 0.0]);
    }

    #[test]
    fn padding_appends_zero_rows_only_when_short() {
        let out = host(&[1, 2], &[1.0, 2.0]).pad_rows(3).unwrap();
        assert_eq!(out.dims(), [3, 2]);
        assert_eq!(out.values(None).unwrap(), [1.0, 2.0, 0.0, 0.0, 0.0, 0.0]);
        let same = host(&[2, 1], &[1.0, 2.0]).pad_rows(1).unwrap();
        assert_eq!(same.dims(), [2, 1]);
    }
}
