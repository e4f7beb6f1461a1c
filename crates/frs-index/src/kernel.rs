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
    pub fn gather(self, query: &[f32], features: &[f32], slots: &[u32], out: &mut [f32]) {
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

    /// `query · row` where `row` holds IEEE half-precision bit patterns (`row.len() == query.len()`):
    /// each half widened to `f32` exactly, products summed in `f32`.
    #[inline]
    pub(crate) fn dot_f16(self, query: &[f32], row: &[u16]) -> f32 {
        debug_assert_eq!(query.len(), row.len());
        match self {
            Kernel::Portable => widened_dot(query, row, |&h| f16_to_f32(h)),
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2Fma(token) => token.dot_f16(query, row),
        }
    }

    /// `query · row` for signed 8-bit codes widened to `f32` (`row.len() == query.len()`); the caller
    /// multiplies by the row's scale.
    #[inline]
    pub(crate) fn dot_i8(self, query: &[f32], row: &[i8]) -> f32 {
        debug_assert_eq!(query.len(), row.len());
        match self {
            Kernel::Portable => widened_dot(query, row, |&c| f32::from(c)),
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2Fma(token) => token.dot_i8(query, row),
        }
    }
}

/// Elements widened at a time by the portable compact-vector dots.
const WIDEN: usize = 64;

/// The portable `query · row` of a compact row: `WIDEN` elements at a time widened to `f32` by
/// `widen`, then the same 4-lane partial sums as the `f32` dot.
fn widened_dot<T>(query: &[f32], row: &[T], widen: impl Fn(&T) -> f32) -> f32 {
    let mut widened = [0.0f32; WIDEN];
    let mut sum = [0.0f32; 4];
    for (q, r) in query.chunks(WIDEN).zip(row.chunks(WIDEN)) {
        let w = &mut widened[..r.len()];
        for (w, x) in w.iter_mut().zip(r) {
            *w = widen(x);
        }
        let p = partial::<4>(q, w);
        for j in 0..4 {
            sum[j] += p[j];
        }
    }
    finish(sum)
}

/// The `f32` value of an IEEE 754 binary16 bit pattern (exact: every half is an `f32`).
pub(crate) fn f16_to_f32(h: u16) -> f32 {
    let sign = u32::from(h & 0x8000) << 16;
    let exponent = u32::from(h >> 10) & 0x1f;
    let mantissa = u32::from(h) & 0x3ff;
    let bits = match (exponent, mantissa) {
        (0, 0) => sign,
        (0, m) => {
            // Subnormal half: m · 2^-24, normal as an f32.
            let shift = m.leading_zeros() - 21; // brings the leading 1 to bit 10
            let m = (m << shift) & 0x3ff;
            sign | ((127 - 15 + 1 - shift) << 23) | (m << 13)
        }
        (0x1f, 0) => sign | 0x7f80_0000,
        (0x1f, m) => sign | 0x7fc0_0000 | (m << 13),
        (e, m) => sign | ((e + 127 - 15) << 23) | (m << 13),
    };
    f32::from_bits(bits)
}

/// The nearest IEEE 754 binary16 of `x` (ties to even); overflow gives ±infinity, NaN stays NaN.
pub(crate) fn f32_to_f16(x: f32) -> u16 {
    let bits = x.to_bits();
    let sign = ((bits >> 16) & 0x8000) as u16;
    let exponent = ((bits >> 23) & 0xff) as i32;
    let mantissa = bits & 0x7f_ffff;
    if exponent == 0xff {
        return sign | if mantissa == 0 { 0x7c00 } else { 0x7e00 };
    }
    let e = exponent - 127 + 15;
    if e >= 0x1f {
        return sign | 0x7c00;
    }
    if e <= 0 {
        // Subnormal or zero half: the value is (1.m) · 2^(exponent-127), in units of 2^-24.
        if e < -10 {
            return sign;
        }
        let m = mantissa | 0x80_0000;
        let shift = (14 - e) as u32; // 24-bit significand → units of 2^-24
        let half = m >> shift;
        let rest = m & ((1 << shift) - 1);
        let midpoint = 1 << (shift - 1);
        let round = rest > midpoint || (rest == midpoint && half & 1 == 1);
        return sign | (half + u32::from(round)) as u16;
    }
    let half = ((e as u32) << 10) | (mantissa >> 13);
    let rest = mantissa & 0x1fff;
    let round = rest > 0x1000 || (rest == 0x1000 && half & 1 == 1);
    // A carry out of the mantissa correctly bumps the exponent (up to infinity).
    sign | (half + u32::from(round)) as u16
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
        __m128i, __m256, _MM_HINT_T0, _mm_add_ps, _mm_add_ss, _mm_cvtss_f32, _mm_loadl_epi64, _mm_loadu_si128,
        _mm_movehl_ps, _mm_prefetch, _mm_shuffle_ps, _mm256_add_ps, _mm256_castps256_ps128, _mm256_cvtepi8_epi32,
        _mm256_cvtepi32_ps, _mm256_cvtph_ps, _mm256_extractf128_ps, _mm256_fmadd_ps, _mm256_loadu_ps,
        _mm256_setzero_ps,
    };

    /// Proof that the CPU has AVX2, FMA and F16C (every AVX2 CPU so far has F16C): only
    /// [`Avx2Fma::new`] makes one, after checking.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Avx2Fma(());

    impl Avx2Fma {
        pub(super) fn new() -> Option<Avx2Fma> {
            (is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") && is_x86_feature_detected!("f16c"))
                .then_some(Avx2Fma(()))
        }

        #[inline]
        pub(super) fn dot_f16(self, query: &[f32], row: &[u16]) -> f32 {
            // SAFETY: the token proves AVX2, FMA and F16C, the features `dot_f16` is compiled for.
            unsafe { dot_f16(query, row) }
        }

        #[inline]
        pub(super) fn dot_i8(self, query: &[f32], row: &[i8]) -> f32 {
            // SAFETY: the token proves AVX2 and FMA, the features `dot_i8` is compiled for.
            unsafe { dot_i8(query, row) }
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

    /// Rows ahead whose cache lines `gather` requests before scoring the current one: scattered rows
    /// miss every cache, and the hardware prefetcher cannot guess them (1M faces, a code search
    /// re-scoring 10,000 rows, alternating runs: p50 2.19–2.26 ms with 4–8 rows ahead, 2.42–2.43 ms
    /// without).
    const GATHER_AHEAD: usize = 8;

    #[target_feature(enable = "avx2,fma")]
    fn gather(query: &[f32], features: &[f32], slots: &[u32], out: &mut [f32]) {
        let dim = query.len();
        for (i, (o, &slot)) in out.iter_mut().zip(slots).enumerate() {
            if let Some(&ahead) = slots.get(i + GATHER_AHEAD) {
                // A hint only: the address may lie anywhere (`wrapping_add`), a prefetch never faults.
                let row = features.as_ptr().wrapping_add(ahead as usize * dim).cast::<i8>();
                for line in 0..(dim * 4).div_ceil(64) {
                    _mm_prefetch::<_MM_HINT_T0>(row.wrapping_add(line * 64));
                }
            }
            let start = slot as usize * dim;
            *o = dot(query, &features[start..start + dim]);
        }
    }

    /// `query · row` over `min` of the lengths, `row` as binary16 bits widened by F16C; as [`dot`].
    #[target_feature(enable = "avx2,fma,f16c")]
    #[inline]
    fn dot_f16(query: &[f32], row: &[u16]) -> f32 {
        let n = query.len().min(row.len());
        let (pq, pr) = (query.as_ptr(), row.as_ptr());
        let [mut acc0, mut acc1]: [__m256; 2] = [_mm256_setzero_ps(); 2];
        let mut i = 0;
        while i + 16 <= n {
            // SAFETY: `i + 16 <= n`: the 8-float loads at `i` and `i + 8` of `query` and the two 16-byte
            // (8-half) loads at the same element offsets of `row` stay inside both slices.
            unsafe {
                let r0 = _mm256_cvtph_ps(_mm_loadu_si128(pr.add(i).cast::<__m128i>()));
                let r1 = _mm256_cvtph_ps(_mm_loadu_si128(pr.add(i + 8).cast::<__m128i>()));
                acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(pq.add(i)), r0, acc0);
                acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(pq.add(i + 8)), r1, acc1);
            }
            i += 16;
        }
        let mut sum = hsum(_mm256_add_ps(acc0, acc1));
        for (x, &h) in query[i..n].iter().zip(&row[i..n]) {
            sum = x.mul_add(super::f16_to_f32(h), sum);
        }
        sum
    }

    /// `query · row` over `min` of the lengths, `row` as i8 codes widened to f32; as [`dot`].
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    fn dot_i8(query: &[f32], row: &[i8]) -> f32 {
        let n = query.len().min(row.len());
        let (pq, pr) = (query.as_ptr(), row.as_ptr());
        let [mut acc0, mut acc1]: [__m256; 2] = [_mm256_setzero_ps(); 2];
        let mut i = 0;
        while i + 16 <= n {
            // SAFETY: `i + 16 <= n`: the 8-float loads at `i` and `i + 8` of `query` and the two 8-byte
            // loads at the same offsets of `row` stay inside both slices.
            unsafe {
                let r0 = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(pr.add(i).cast::<__m128i>())));
                let r1 = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(pr.add(i + 8).cast::<__m128i>())));
                acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(pq.add(i)), r0, acc0);
                acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(pq.add(i + 8)), r1, acc1);
            }
            i += 16;
        }
        let mut sum = hsum(_mm256_add_ps(acc0, acc1));
        for (x, &c) in query[i..n].iter().zip(&row[i..n]) {
            sum = x.mul_add(f32::from(c), sum);
        }
        sum
    }

    /// The fixed horizontal sum of 8 lanes [`dot`] uses.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    fn hsum(v: __m256) -> f32 {
        let v = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
        let v = _mm_add_ps(v, _mm_movehl_ps(v, v));
        _mm_cvtss_f32(_mm_add_ss(v, _mm_shuffle_ps::<0b01>(v, v)))
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
                let halves: Vec<u16> = rows[..dim].iter().map(|&x| f32_to_f16(x)).collect();
                let widened: Vec<f32> = halves.iter().map(|&h| f16_to_f32(h)).collect();
                let got = kernel.dot_f16(&query, &halves);
                assert!((f64::from(got) - reference(&query, &widened)).abs() < 1e-5, "{} f16 dim {dim}", kernel.name());
                let codes: Vec<i8> = (0..dim).map(|i| ((i * 37) % 255) as i32 - 127).map(|c| c as i8).collect();
                let as_f32: Vec<f32> = codes.iter().map(|&c| f32::from(c)).collect();
                let got = kernel.dot_i8(&query, &codes);
                assert!((f64::from(got) - reference(&query, &as_f32)).abs() < 1e-3, "{} i8 dim {dim}", kernel.name());
            }
        }
    }

    #[test]
    fn half_conversions_round_trip_and_round_to_nearest_even() {
        // Every finite half widens and narrows back to itself.
        for h in 0..=u16::MAX {
            let x = f16_to_f32(h);
            if x.is_nan() {
                assert!(f16_to_f32(f32_to_f16(x)).is_nan());
            } else {
                assert_eq!(f32_to_f16(x), h, "{h:#06x} = {x}");
            }
        }
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0x0001), 2f32.powi(-24));
        assert_eq!(f32_to_f16(65520.0), 0x7c00, "rounds up to infinity");
        assert_eq!(f32_to_f16(1.0 + 2f32.powi(-11)), 0x3c00, "tie to even (down)");
        assert_eq!(f32_to_f16(1.0 + 3.0 * 2f32.powi(-11)), 0x3c02, "tie to even (up)");
        assert_eq!(f32_to_f16(2f32.powi(-25)), 0, "tie to even at the smallest subnormal");
        assert_eq!(f32_to_f16(1.5 * 2f32.powi(-24)), 0x0002);
        // Nearest: for random floats in the unit range, no half is closer than the one chosen.
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..100_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let x = (seed >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0;
            let h = f32_to_f16(x);
            let err = (f16_to_f32(h) - x).abs();
            for neighbour in [h.wrapping_sub(1), h.wrapping_add(1)] {
                let y = f16_to_f32(neighbour);
                if y.is_finite() {
                    assert!(err <= (y - x).abs(), "{x}: {h:#06x}");
                }
            }
        }
    }
}
