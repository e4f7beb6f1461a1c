//! Random features shared by the `search` and `ann` benches.

use rand::RngExt;
use rand::rngs::StdRng;

/// A standard normal sample (Box–Muller).
pub fn gaussian(rng: &mut StdRng) -> f32 {
    let u1: f64 = rng.random_range(f64::EPSILON..1.0);
    let u2: f64 = rng.random_range(0.0..1.0);
    ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
}

/// `v` scaled to unit length.
pub fn normalise(mut v: Vec<f32>) -> Vec<f32> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter_mut().for_each(|x| *x /= norm);
    v
}

/// A direction uniform on the unit sphere of `dim` dimensions.
pub fn random_unit(rng: &mut StdRng, dim: usize) -> Vec<f32> {
    normalise((0..dim).map(|_| gaussian(rng)).collect())
}
