//! The model's output tensor -> one prediction per image, as the handler configuration's output kind
//! says. Activations (sigmoid, softmax, argmax) run where the output is (see `output`): in libtorch
//! for libtorch's models, so probabilities are computed by the same kernels as in PyTorch.

use super::handler_config::HandlerConfig;
use super::output::{Output, RuntimeError};
use super::torch::Op;
use crate::records::{
    ClassPrediction, OutputKind, Prediction, RawPrediction, SegmentationPrediction,
};

/// Why a model's output gives no predictions.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub(crate) enum OutputError {
    /// The output's shape does not fit the configured kind: the shape and what was expected.
    #[error("model output shape [{shown}] does not fit kind = \"{kind}\" (expected {expected})", shown = shown(.shape))]
    Shape {
        shape: Vec<usize>,
        kind: OutputKind,
        expected: String,
    },
    /// An activation, run in the output's engine, failed.
    #[error("forward failed: {0}")]
    Tensor(RuntimeError),
}

/// `[1, 2]` as `1, 2`.
fn shown(shape: &[usize]) -> String {
    format!("{shape:?}").replace(']', "").replace('[', "")
}

#[derive(Debug, Clone)]
pub(crate) struct Postprocessor {
    kind: OutputKind,
    threshold: f32,
    top_k: usize,
    labels: Option<Vec<String>>,
}

impl Postprocessor {
    pub(crate) fn new(config: &HandlerConfig) -> Self {
        Postprocessor {
            kind: config.output.kind,
            threshold: config.threshold(),
            top_k: config.top_k(),
            labels: config.output.labels.clone(),
        }
    }

    /// The label of class `class`: its name, or the index itself as TorchServe prints it.
    pub(crate) fn label(&self, class: usize) -> String {
        match &self.labels {
            Some(labels) if class < labels.len() => labels[class].clone(),
            _ => class.to_string(),
        }
    }

    /// Checks that an output of `shape` fits the configured kind for a batch of `n`; the message
    /// names the shape and what was expected.
    pub(crate) fn check_shape(&self, shape: &[usize], n: usize) -> Result<(), OutputError> {
        let labels = self.labels.as_ref().map(Vec::len);
        let fail = |expect: &str| {
            Err(OutputError::Shape {
                shape: shape.to_vec(),
                kind: self.kind,
                expected: expect.to_owned(),
            })
        };
        if shape.first() != Some(&n) {
            return fail(&format!("a first dimension of {n}, the batch size"));
        }
        match self.kind {
            OutputKind::Binary if !(shape.len() == 1 || shape.len() == 2 && shape[1] == 1) => {
                fail("[N, 1]: one logit per image")
            }
            OutputKind::Multiclass if shape.len() != 2 || shape[1] < 2 => {
                fail("[N, C] with C >= 2 logits per image")
            }
            OutputKind::Multiclass if labels.is_some_and(|l| l != shape[1]) => fail(&format!(
                "[N, {}] to match the {} labels",
                labels.unwrap_or(0),
                labels.unwrap_or(0)
            )),
            OutputKind::Segmentation if shape.len() != 4 || shape[1] > 256 => {
                fail("[N, C, H, W] per-pixel logits with C <= 256")
            }
            OutputKind::Segmentation
                if labels.is_some_and(|l| l != shape[1] && !(shape[1] == 1 && l == 2)) =>
            {
                fail(&format!(
                    "{} channels to match the labels",
                    labels.unwrap_or(0)
                ))
            }
            _ => Ok(()),
        }
    }

    /// Turns the raw output of a batch of `n` images into `n` predictions.
    pub(crate) fn predictions(
        &self,
        output: &Output,
        n: usize,
    ) -> Result<Vec<Prediction>, OutputError> {
        let shape = output.dims();
        self.check_shape(&shape, n)?;
        let host = |op: Option<Op>| output.values(op).map_err(OutputError::Tensor);
        Ok(match self.kind {
            OutputKind::Binary => host(Some(Op::Sigmoid))?
                .into_iter()
                .map(|p| Prediction::Class(self.binary(p)))
                .collect(),
            OutputKind::Multiclass => host(Some(Op::Softmax))?
                .chunks_exact(shape[1])
                .map(|p| Prediction::Class(self.multiclass(p)))
                .collect(),
            OutputKind::Segmentation => {
                let (classes, height, width) = (shape[1], shape[2], shape[3]);
                let mask = host(Some(if classes == 1 {
                    Op::SigmoidAbove(self.threshold)
                } else {
                    Op::Argmax
                }))?;
                mask.chunks_exact(height * width)
                    .map(|m| {
                        Prediction::Segmentation(segmentation(m, classes.max(2), width, height))
                    })
                    .collect()
            }
            OutputKind::Raw => {
                let values = host(None)?;
                let per = values.len() / n.max(1);
                values
                    .chunks_exact(per.max(1))
                    .map(|v| {
                        Prediction::Raw(RawPrediction {
                            shape: shape[1..].to_vec(),
                            values: v.to_vec(),
                        })
                    })
                    .collect()
            }
        })
    }

    pub(crate) fn binary(&self, p: f32) -> ClassPrediction {
        let class = usize::from(p > self.threshold);
        ClassPrediction {
            class,
            label: self.label(class),
            score: if class == 1 { p } else { 1.0 - p },
            probabilities: vec![1.0 - p, p],
            ranked: if class == 1 { vec![1, 0] } else { vec![0, 1] },
        }
    }

    pub(crate) fn multiclass(&self, p: &[f32]) -> ClassPrediction {
        let mut ranked: Vec<usize> = (0..p.len()).collect();
        // Stable: equal probabilities keep class order, like torch.topk on CPU.
        ranked.sort_by(|&a, &b| p[b].total_cmp(&p[a]));
        ranked.truncate(self.top_k.min(p.len()));
        let class = ranked[0];
        ClassPrediction {
            class,
            label: self.label(class),
            score: p[class],
            probabilities: p.to_vec(),
            ranked,
        }
    }
}

pub(crate) fn segmentation(
    mask: &[f32],
    classes: usize,
    width: usize,
    height: usize,
) -> SegmentationPrediction {
    let mask: Vec<u8> = mask.iter().map(|&c| c as u8).collect();
    let mut counts = vec![0usize; classes];
    for &c in &mask {
        counts[c as usize] += 1;
    }
    let total = mask.len().max(1) as f32;
    SegmentationPrediction {
        width,
        height,
        mask,
        fractions: counts.iter().map(|&c| c as f32 / total).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post(kind: &str, labels: &str) -> Postprocessor {
        let text = format!("[input]\nheight = 8\nwidth = 8\n[output]\nkind = \"{kind}\"\n{labels}");
        Postprocessor::new(&HandlerConfig::from_toml(&text).unwrap())
    }

    #[test]
    fn an_output_of_the_wrong_shape_says_what_was_expected() {
        let binary = post("binary", "");
        assert_eq!(binary.check_shape(&[4, 1], 4), Ok(()));
        assert_eq!(binary.check_shape(&[4], 4), Ok(()));
        assert_eq!(
            binary.check_shape(&[4, 2], 4).unwrap_err().to_string(),
            "model output shape [4, 2] does not fit kind = \"binary\" (expected [N, 1]: one logit per image)"
        );
        assert_eq!(
            binary.check_shape(&[2, 1], 4).unwrap_err().to_string(),
            "model output shape [2, 1] does not fit kind = \"binary\" (expected a first dimension of 4, the batch size)"
        );
        let labelled = post("multiclass", "labels = [\"a\", \"b\", \"c\"]\n");
        assert_eq!(labelled.check_shape(&[1, 3], 1), Ok(()));
        assert_eq!(
            labelled.check_shape(&[1, 4], 1).unwrap_err().to_string(),
            "model output shape [1, 4] does not fit kind = \"multiclass\" (expected [N, 3] to match the 3 labels)"
        );
        let segmentation = post("segmentation", "");
        assert!(matches!(
            segmentation.check_shape(&[1, 2, 8], 1),
            Err(OutputError::Shape { .. })
        ));
    }
}
