//! Dot products of one query against rows of the row-major feature matrix: the whole of search's
//! arithmetic. A portable kernel in safe Rust that the compiler vectorises for the baseline target
//! (SSE2 on x86-64), and on x86-64 an AVX2+FMA kernel written with intrinsics, chosen at run time.
//!
//! Why the intrinsics (the crate's only `unsafe`): on the 2-core AMD EPYC (Zen 3) dev machine,
//! `cargo bench -p frs-index` measures the AVX2+FMA kernel 1.1–1.25× faster than the portable one on an
//! unfiltered 100,000 × 128 scan (memory-bound, ~12 vs ~14 GB/s) and 1.35–1.55× faster on the scattered
//! rows of a 10 % filter. Compiling the portable source under `#[target_feature(enable = "avx2,fma")]`
//! instead was *slower* than SSE2 (0.8–0.9×): LLVM's SLP vectoriser left most of it scalar.

/// A dot-product implementation. [`Kernel::detect`] picks the fastest the CPU supports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kernel {
    /// Safe Rust for the compilation target's baseline features.
    Portable,
    /// AVX2+FMA intrinsics (x86-64 CPUs that have both).
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
            Kernel::Portable => dots::<4>(query, rows, out),
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2Fma(token) => token.dots(query, rows, out),
        }
    }

    /// `out[i] = query · row(slots[i])` of the row-major `features` (`dim = query.len()`).
    #[inline]
    pub(crate) fn gather(self, query: &[f32], features: &[f32], slots: &[u32], out: &mut [f32]) {
        match self {
            Kernel::Portable => gather::<4>(query, features, slots, out),
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
/// Rows whose partial sums are kept on the stack at a time.
const CHUNK: usize = 64;

/// The dot product as `W` partial sums: 16 independent lane sums over 16-element chunks, folded
/// pairwise to `W` lanes, with the sequential tail added to lane 0.
///
/// NOTE: the shape is chosen for LLVM's SLP vectoriser. Folding all the way to one scalar here made it
/// pair lanes two by two (64-bit vectors); storing `W` partial sums per row and finishing them in a
/// separate loop ([`finish`]) keeps the arithmetic 4 wide and nearly halves the in-cache time.
#[inline(always)]
fn partial<const W: usize>(a: &[f32], b: &[f32]) -> [f32; W] {
    let (a_chunks, a_tail) = a.as_chunks::<LANES>();
    let (b_chunks, b_tail) = b.as_chunks::<LANES>();
    let mut acc = [0.0f32; LANES];
    for (x, y) in a_chunks.iter().zip(b_chunks) {
        for j in 0..LANES {
            acc[j] += x[j] * y[j];
        }
    }
    let mut width = LANES / 2;
    while width >= W {
        for j in 0..width {
            acc[j] += acc[j + width];
        }
        width /= 2;
    }
    let mut tail = 0.0f32;
    for (x, y) in a_tail.iter().zip(b_tail) {
        tail += x * y;
    }
    let mut out = [0.0f32; W];
    out.copy_from_slice(&acc[..W]);
    out[0] += tail;
    out
}

/// The pairwise sum of the partial sums.
#[inline(always)]
fn finish<const W: usize>(mut p: [f32; W]) -> f32 {
    let mut width = W / 2;
    while width > 0 {
        for j in 0..width {
            p[j] += p[j + width];
        }
        width /= 2;
    }
    p[0]
}

#[inline(always)]
fn dots<const W: usize>(query: &[f32], rows: &[f32], out: &mut [f32]) {
    let dim = query.len();
    assert!(dim > 0 && rows.len() == dim * out.len());
    let mut partials = [[0.0f32; W]; CHUNK];
    for (out, rows) in out.chunks_mut(CHUNK).zip(rows.chunks(CHUNK * dim)) {
        let partials = &mut partials[..out.len()];
        for (p, row) in partials.iter_mut().zip(rows.chunks_exact(dim)) {
            *p = partial::<W>(query, row);
        }
        for (o, p) in out.iter_mut().zip(partials.iter()) {
            *o = finish(*p);
        }
    }
}

#[inline(always)]
fn gather<const W: usize>(query: &[f32], features: &[f32], slots: &[u32], out: &mut [f32]) {
    let dim = query.len();
    assert!(dim > 0 && slots.len() == out.len());
    let mut partials = [[0.0f32; W]; CHUNK];
    for (out, slots) in out.chunks_mut(CHUNK).zip(slots.chunks(CHUNK)) {
        let partials = &mut partials[..out.len()];
        for (p, &slot) in partials.iter_mut().zip(slots) {
            let start = slot as usize * dim;
            *p = partial::<W>(query, &features[start..start + dim]);
        }
        for (o, p) in out.iter_mut().zip(partials.iter()) {
            *o = finish(*p);
        }
    }
}

/// The only place the crate uses `unsafe`: AVX2+FMA intrinsics, and calling them.
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod x86 {
    use std::arch::x86_64::{
        __m256, _mm_add_ps, _mm_add_ss, _mm_cvtss_f32, _mm_movehl_ps, _mm_shuffle_ps, _mm256_add_ps,
        _mm256_castps256_ps128, _mm256_extractf128_ps, _mm256_fmadd_ps, _mm256_loadu_ps, _mm256_setzero_ps,
    };

    /// Proof that the CPU has AVX2 and FMA: only [`Avx2Fma::new`] makes one, after checking.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Avx2Fma(());

    impl Avx2Fma {
        pub(super) fn new() -> Option<Avx2Fma> {
            (is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")).then_some(Avx2Fma(()))
        }

        #[inline]
        pub(super) fn dots(self, query: &[f32], rows: &[f32], out: &mut [f32]) {
            let dim = query.len();
            assert!(dim > 0 && rows.len() == dim * out.len());
            // SAFETY: `self` exists only if the CPU has AVX2 and FMA (checked in `new`), the features
            // `dots` is compiled for.
            unsafe { dots(query, rows, out) }
        }

        #[inline]
        pub(super) fn gather(self, query: &[f32], features: &[f32], slots: &[u32], out: &mut [f32]) {
            assert!(!query.is_empty() && slots.len() == out.len());
            // SAFETY: as in `Avx2Fma::dots`: the token proves AVX2 and FMA.
            unsafe { gather(query, features, slots, out) }
        }
    }

    #[target_feature(enable = "avx2,fma")]
    fn dots(query: &[f32], rows: &[f32], out: &mut [f32]) {
        for (o, row) in out.iter_mut().zip(rows.chunks_exact(query.len())) {
            *o = dot(query, row);
        }
    }

    #[target_feature(enable = "avx2,fma")]
    fn gather(query: &[f32], features: &[f32], slots: &[u32], out: &mut [f32]) {
        let dim = query.len();
        for (o, &slot) in out.iter_mut().zip(slots) {
            let start = slot as usize * dim;
            *o = dot(query, &features[start..start + dim]);
        }
    }

    /// `a · b` over `min(a.len(), b.len())` elements: four 8-lane FMA accumulators over 32-element
    /// chunks, then 8-element chunks into the first, a fixed horizontal sum, and a scalar tail.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    fn dot(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let [mut acc0, mut acc1, mut acc2, mut acc3]: [__m256; 4] = [_mm256_setzero_ps(); 4];
        let mut i = 0;
        while i + 32 <= n {
            // SAFETY: `i + 32 <= n` and `n` is at most either slice's length, so the four 8-float
            // unaligned loads from each pointer, at `i`, `i + 8`, `i + 16` and `i + 24`, stay inside it.
            unsafe {
                acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)), acc0);
                acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i + 8)), _mm256_loadu_ps(pb.add(i + 8)), acc1);
                acc2 = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i + 16)), _mm256_loadu_ps(pb.add(i + 16)), acc2);
                acc3 = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i + 24)), _mm256_loadu_ps(pb.add(i + 24)), acc3);
            }
            i += 32;
        }
        while i + 8 <= n {
            // SAFETY: `i + 8 <= n`: the 8-float loads at `i` stay inside both slices.
            unsafe {
                acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)), acc0);
            }
            i += 8;
        }
        let v = _mm256_add_ps(_mm256_add_ps(acc0, acc1), _mm256_add_ps(acc2, acc3));
        let v = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
        let v = _mm_add_ps(v, _mm_movehl_ps(v, v));
        let mut sum = _mm_cvtss_f32(_mm_add_ss(v, _mm_shuffle_ps::<0b01>(v, v)));
        for (x, y) in a[i..n].iter().zip(&b[i..n]) {
            sum = x.mul_add(*y, sum);
        }
        sum
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
