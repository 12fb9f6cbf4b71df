//! Integrated Gradients (Sundararajan et al., 2017), as TorchServe's vision handlers compute it with
//! Captum: `IntegratedGradients(model).attribute(input, target=t, n_steps=15)`, a zero baseline in
//! the normalised input space, the path integral taken by Gauss-Legendre quadrature (Captum's
//! default), all steps in one batch. The attribution has the input's shape: how much each input
//! value moved output column `target` (the logit of a binary model, a class's logit otherwise) from
//! the baseline's. Gradients run through the module as saved, not the frozen inference graph.

use super::model::{Model, ModelError};

/// TorchServe's image_classifier steps.
pub(crate) const STEPS: usize = 15;

/// Gauss-Legendre nodes and weights on [0, 1] (numpy's `leggauss(n)` mapped as Captum maps it:
/// alpha = (1 + x) / 2, step = w / 2), in ascending order.
pub(crate) fn gauss_legendre(n: usize) -> Vec<(f64, f64)> {
    let mut nodes = Vec::with_capacity(n);
    for i in 0..n {
        // Newton's method on P_n from Tricomi's initial guess; the roots of P_n, ascending.
        let mut x = -(std::f64::consts::PI * (i as f64 + 0.75) / (n as f64 + 0.5)).cos();
        let mut derivative = 0.0;
        for _ in 0..100 {
            let (mut p0, mut p1) = (1.0, x);
            for k in 2..=n {
                let k = k as f64;
                (p0, p1) = (p1, ((2.0 * k - 1.0) * x * p1 - (k - 1.0) * p0) / k);
            }
            let p = if n == 0 { 1.0 } else { p1 };
            let previous = if n == 0 { 0.0 } else { p0 };
            derivative = n as f64 * (x * p - previous) / (x * x - 1.0);
            let dx = p / derivative;
            x -= dx;
            if dx.abs() < 1e-16 {
                break;
            }
        }
        let weight = 2.0 / ((1.0 - x * x) * derivative * derivative);
        nodes.push((0.5 * (1.0 + x), 0.5 * weight));
    }
    nodes
}

/// The attribution of `input` (`[C, H, W]`, normalised) towards output column `target`.
pub(crate) fn integrated_gradients(
    model: &Model,
    input: &[f32],
    shape: [usize; 3],
    target: usize,
    steps: usize,
) -> Result<Vec<f32>, ModelError> {
    let [c, h, w] = shape;
    let n = input.len();
    let nodes = gauss_legendre(steps);
    // baseline + alpha * (input - baseline), with a zero baseline, as float32 like Captum's.
    let mut batch = Vec::with_capacity(steps * n);
    for &(alpha, _) in &nodes {
        let alpha = alpha as f32;
        batch.extend(input.iter().map(|&v| alpha * v));
    }
    let grads = model.gradient(&batch, [steps, c, h, w], target)?;
    let mut total = vec![0f32; n];
    for (k, &(_, step)) in nodes.iter().enumerate() {
        let step = step as f32;
        for (t, g) in total.iter_mut().zip(&grads[k * n..(k + 1) * n]) {
            *t += g * step;
        }
    }
    Ok(total.iter().zip(input).map(|(g, v)| g * v).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_and_weights_are_numpys() {
        // numpy.polynomial.legendre.leggauss(3): x = -sqrt(3/5), 0, sqrt(3/5); w = 5/9, 8/9, 5/9.
        let nodes = gauss_legendre(3);
        let r = (0.6f64).sqrt();
        for ((a, s), (x, w)) in
            nodes
                .iter()
                .zip([(-r, 5.0 / 9.0), (0.0, 8.0 / 9.0), (r, 5.0 / 9.0)])
        {
            assert!((a - 0.5 * (1.0 + x)).abs() < 1e-15, "{a}");
            assert!((s - 0.5 * w).abs() < 1e-15, "{s}");
        }
        // Any n: weights sum to 1 and integrate t^k exactly up to degree 2n - 1.
        let nodes = gauss_legendre(15);
        let total: f64 = nodes.iter().map(|(_, s)| s).sum();
        assert!((total - 1.0).abs() < 1e-14);
        let moment: f64 = nodes.iter().map(|(a, s)| s * a.powi(29)).sum();
        assert!((moment - 1.0 / 30.0).abs() < 1e-14, "{moment}");
    }
}
