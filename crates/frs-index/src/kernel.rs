//! Dot products of one query against rows of the row-major feature matrix: the whole of search's
//! arithmetic. One portable kernel in safe Rust that the compiler vectorises for the baseline target
//! (SSE2 on x86-64), and on x86-64 the same source compiled for AVX2+FMA, chosen at run time.

/// A dot-product implementation. [`Kernel::detect`] picks the fastest the CPU supports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kernel {
    /// Safe Rust for the compilation target's baseline features.
    Portable,
    /// The same loop compiled with AVX2 and FMA enabled (x86-64 CPUs that have both).
    #[cfg(target_arch = "x86_64")]
    Avx2Fma(x86::Avx2Fma),
}

impl Kernel {
    /// The fastest kernel this CPU runs.
    pub fn detect() -> Kernel {
        #[cfg(target_arch = "x86_64")]
        if let Some(token) = x86::Avx2Fma::new() {
            return Kernel::Avx2Fma(token);
        }
        Kernel::Portable
    }

    /// Every kernel this CPU runs, portable first (for benchmarks and tests).
    pub fn available() -> Vec<Kernel> {
        let mut kernels = vec![Kernel::Portable];
        #[cfg(target_arch = "x86_64")]
        kernels.extend(x86::Avx2Fma::new().map(Kernel::Avx2Fma));
        kernels
    }

    /// A short name: `"portable"` or `"avx2+fma"`.
    pub fn name(self) -> &'static str {
        match self {
            Kernel::Portable => "portable",
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2Fma(_) => "avx2+fma",
        }
    }

    /// `out[i] = query · rows[i*dim..(i+1)*dim]` where `dim = query.len()` and `out.len()` rows.
    #[inline]
    pub(crate) fn dots(self, query: &[f32], rows: &[f32], out: &mut [f32]) {
        match self {
            Kernel::Portable => dots::<false>(query, rows, out),
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2Fma(token) => token.dots(query, rows, out),
        }
    }

    /// `out[i] = query · row(slots[i])` of the row-major `features` (`dim = query.len()`).
    #[inline]
    pub(crate) fn gather(self, query: &[f32], features: &[f32], slots: &[u32], out: &mut [f32]) {
        match self {
            Kernel::Portable => gather::<false>(query, features, slots, out),
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2Fma(token) => token.gather(query, features, slots, out),
        }
    }

    /// One dot product (`a.len() == b.len()`).
    pub fn dot(self, a: &[f32], b: &[f32]) -> f32 {
        let mut out = [0.0];
        self.dots(a, b, &mut out);
        out[0]
    }
}

const LANES: usize = 16;

/// The dot product with 16 independent lane sums over 16-element chunks, a fixed pairwise reduction
/// and a sequential tail: the shape LLVM turns into two 8-wide (or four 4-wide) vector accumulators.
/// `FMA` fuses each multiply-add (only worth it where the target has FMA instructions: elsewhere
/// `mul_add` is a libm call).
#[inline(always)]
fn dot<const FMA: bool>(a: &[f32], b: &[f32]) -> f32 {
    let (a_chunks, a_tail) = a.as_chunks::<LANES>();
    let (b_chunks, b_tail) = b.as_chunks::<LANES>();
    let mut acc = [0.0f32; LANES];
    for (x, y) in a_chunks.iter().zip(b_chunks) {
        for j in 0..LANES {
            acc[j] = if FMA { x[j].mul_add(y[j], acc[j]) } else { acc[j] + x[j] * y[j] };
        }
    }
    let mut width = LANES / 2;
    while width > 0 {
        for j in 0..width {
            acc[j] += acc[j + width];
        }
        width /= 2;
    }
    let mut sum = acc[0];
    for (x, y) in a_tail.iter().zip(b_tail) {
        sum = if FMA { x.mul_add(*y, sum) } else { sum + x * y };
    }
    sum
}

#[inline(always)]
fn dots<const FMA: bool>(query: &[f32], rows: &[f32], out: &mut [f32]) {
    let dim = query.len();
    assert!(dim > 0 && rows.len() == dim * out.len());
    for (o, row) in out.iter_mut().zip(rows.chunks_exact(dim)) {
        *o = dot::<FMA>(query, row);
    }
}

#[inline(always)]
fn gather<const FMA: bool>(query: &[f32], features: &[f32], slots: &[u32], out: &mut [f32]) {
    let dim = query.len();
    assert!(dim > 0 && slots.len() == out.len());
    for (o, &slot) in out.iter_mut().zip(slots) {
        let start = slot as usize * dim;
        *o = dot::<FMA>(query, &features[start..start + dim]);
    }
}

/// The only place the crate uses `unsafe`: calling the AVX2+FMA compilation of the loops above.
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod x86 {
    /// Proof that the CPU has AVX2 and FMA: only [`Avx2Fma::new`] makes one, after checking.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Avx2Fma(());

    impl Avx2Fma {
        pub(super) fn new() -> Option<Avx2Fma> {
            (is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")).then_some(Avx2Fma(()))
        }

        #[inline]
        pub(super) fn dots(self, query: &[f32], rows: &[f32], out: &mut [f32]) {
            // SAFETY: `self` exists only if the CPU supports AVX2 and FMA (checked in `new`), the features
            // `dots_avx2_fma` is compiled for; the function itself is safe Rust with checked indexing.
            unsafe { dots_avx2_fma(query, rows, out) }
        }

        #[inline]
        pub(super) fn gather(self, query: &[f32], features: &[f32], slots: &[u32], out: &mut [f32]) {
            // SAFETY: as in `dots`: the token proves AVX2 and FMA, and the callee is safe Rust.
            unsafe { gather_avx2_fma(query, features, slots, out) }
        }
    }

    #[target_feature(enable = "avx2,fma")]
    fn dots_avx2_fma(query: &[f32], rows: &[f32], out: &mut [f32]) {
        super::dots::<true>(query, rows, out)
    }

    #[target_feature(enable = "avx2,fma")]
    fn gather_avx2_fma(query: &[f32], features: &[f32], slots: &[u32], out: &mut [f32]) {
        super::gather::<true>(query, features, slots, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(a: &[f32], b: &[f32]) -> f64 {
        a.iter().zip(b).map(|(x, y)| f64::from(*x) * f64::from(*y)).sum()
    }

    #[test]
    fn kernels_agree_with_a_plain_loop() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        };
        for dim in [1, 3, 8, 15, 16, 17, 31, 32, 33, 100, 128, 512] {
            let query: Vec<f32> = (0..dim).map(|_| next()).collect();
            let rows: Vec<f32> = (0..dim * 5).map(|_| next()).collect();
            for kernel in Kernel::available() {
                let mut out = [0.0f32; 5];
                kernel.dots(&query, &rows, &mut out);
                let mut gathered = [0.0f32; 3];
                kernel.gather(&query, &rows, &[4, 0, 2], &mut gathered);
                for (i, row) in rows.chunks_exact(dim).enumerate() {
                    let expected = reference(&query, row);
                    assert!((f64::from(out[i]) - expected).abs() < 1e-5, "{} dim {dim}", kernel.name());
                    assert_eq!(kernel.dot(&query, row), out[i]);
                }
                assert_eq!(gathered, [out[4], out[0], out[2]]);
            }
        }
    }
}
