//! Sign codes: a few bytes per face from which a search estimates the cosine of every face of a
//! large set in one streaming pass, so that only the faces that can be in the top are scored on their
//! stored features (RaBitQ's 1-bit estimator: Gao & Long, SIGMOD 2024, with a 4-bit query).
//!
//! Face `x` (one row of features) is kept as the signs of `u = R(x − c)`, where `c` is the mean of the
//! set's features when its codes were made and `R` a fixed random rotation (one bit per component),
//! and two half-precision factors: `scale = |u|²/|u|₁` and `offset = ⟨x − c, c⟩`. A query `q` is
//! rotated the same way, `v = R(q − c)`, and held as 4-bit levels `v ≈ low + step·level`. Then
//! `⟨x, q⟩ = ⟨u, v⟩ + offset + ⟨c, q⟩` and `⟨u, v⟩ ≈ scale·⟨sign(u), v⟩`, where
//! `⟨sign(u), v⟩ = 2·Σ_{bits set} v − Σ v` is computed from popcounts. The estimate omits the
//! query's own constant `⟨c, q⟩`: it ranks faces, it is never returned as a score.
//!
//! Contracts: codes are kept per slot in step with the feature matrix (push, swap-remove); the
//! estimate is only used to choose which faces are scored, so a wrong estimate can lose a face
//! from the results (recall), never change a returned score.

use std::borrow::Cow;

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use crate::bits::Bits;
use crate::kernel::{Kernel, f16_to_f32, f32_to_f16};

/// Seed of the rotation: fixed, so codes are reproducible.
const ROTATION_SEED: u64 = 0x5eed_c0de;
/// Faces whose estimates are sampled to set a search's threshold: about this many.
const SAMPLE: usize = 16_384;

/// The codes of one face set, by slot.
#[derive(Clone, Debug)]
pub(crate) struct SignCodes {
    dim: usize,
    /// Faces whose mean `mean` is.
    fitted: usize,
    mean: Vec<f32>,
    /// `dim`×`dim` row-major orthogonal matrix.
    rotation: Vec<f32>,
    /// `words[w][slot]`: bits `64w..64w+64` of the face's code (bit set ⇔ component > 0).
    words: Vec<Vec<u64>>,
    /// `scale` and `offset` of each face as IEEE half-precision bit patterns.
    scale: Vec<u16>,
    offset: Vec<u16>,
    #[cfg(target_arch = "x86_64")]
    avx512: Option<x86::Avx512Popcnt>,
}

/// A query rotated and quantised for [`SignCodes`].
pub(crate) struct CodeQuery {
    /// `planes[w][p]`: bit `p` of the 4-bit level of components `64w..64w+64`.
    planes: Vec<[u64; 4]>,
    low: f32,
    step: f32,
    sum: f32,
}

impl SignCodes {
    /// Codes of the `count` features `row(0..count)` (`dim` each), centred on their mean.
    pub(crate) fn build<'a>(
        dim: usize,
        count: usize,
        row: impl Fn(usize) -> Cow<'a, [f32]>,
        kernel: Kernel,
    ) -> SignCodes {
        let mut mean = vec![0.0f64; dim];
        for slot in 0..count {
            mean.iter_mut().zip(row(slot).iter()).for_each(|(m, &x)| *m += f64::from(x));
        }
        let mean = mean.into_iter().map(|m| if count > 0 { (m / count as f64) as f32 } else { 0.0 }).collect();
        let mut codes = SignCodes {
            dim,
            fitted: count,
            mean,
            rotation: random_rotation(dim),
            words: vec![Vec::with_capacity(count); dim.div_ceil(64)],
            scale: Vec::with_capacity(count),
            offset: Vec::with_capacity(count),
            #[cfg(target_arch = "x86_64")]
            avx512: x86::Avx512Popcnt::new(),
        };
        for slot in 0..count {
            codes.push(&row(slot), kernel, 0);
        }
        codes
    }

    /// Number of faces the centre was fitted on.
    pub(crate) fn fitted(&self) -> usize {
        self.fitted
    }

    /// Number of faces.
    pub(crate) fn len(&self) -> usize {
        self.scale.len()
    }

    /// `R(x − c)` of `x`.
    fn rotate(&self, x: &[f32], kernel: Kernel) -> (Vec<f32>, Vec<f32>) {
        let centred: Vec<f32> = x.iter().zip(&self.mean).map(|(x, m)| x - m).collect();
        let mut rotated = vec![0.0; self.dim];
        kernel.dots(&centred, &self.rotation, &mut rotated);
        (centred, rotated)
    }

    /// Appends the code of `feature`, growing by [`crate::index::grow`]'s steps of at least `min_rows`.
    pub(crate) fn push(&mut self, feature: &[f32], kernel: Kernel, min_rows: usize) {
        let (centred, u) = self.rotate(feature, kernel);
        for (w, chunk) in u.chunks(64).enumerate() {
            let word = chunk.iter().enumerate().fold(0u64, |word, (k, &x)| word | u64::from(x > 0.0) << k);
            crate::index::grow(&mut self.words[w], 1, min_rows);
            self.words[w].push(word);
        }
        let l1: f32 = u.iter().map(|x| x.abs()).sum();
        let scale = if l1 > 0.0 { u.iter().map(|x| x * x).sum::<f32>() / l1 } else { 0.0 };
        let offset: f32 = centred.iter().zip(&self.mean).map(|(x, m)| x * m).sum();
        crate::index::grow(&mut self.scale, 1, min_rows);
        self.scale.push(f32_to_f16(scale));
        crate::index::grow(&mut self.offset, 1, min_rows);
        self.offset.push(f32_to_f16(offset));
    }

    /// Moves the last face's code into `slot` and drops the last (as `Vec::swap_remove`).
    pub(crate) fn swap_remove(&mut self, slot: usize) {
        for words in &mut self.words {
            words.swap_remove(slot);
        }
        self.scale.swap_remove(slot);
        self.offset.swap_remove(slot);
    }

    pub(crate) fn reserve_exact(&mut self, additional: usize) {
        for words in &mut self.words {
            words.reserve_exact(additional);
        }
        self.scale.reserve_exact(additional);
        self.offset.reserve_exact(additional);
    }

    pub(crate) fn shrink_to(&mut self, rows: usize) {
        for words in &mut self.words {
            words.shrink_to(rows);
        }
        self.scale.shrink_to(rows);
        self.offset.shrink_to(rows);
    }

    /// Heap bytes: the codes, factors, mean and rotation.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.words.iter().map(|w| w.capacity() * 8).sum::<usize>()
            + (self.scale.capacity() + self.offset.capacity()) * 2
            + (self.mean.capacity() + self.rotation.capacity()) * 4
    }

    /// `q` rotated and quantised to 4 bits per component.
    pub(crate) fn query(&self, q: &[f32], kernel: Kernel) -> CodeQuery {
        let (_, v) = self.rotate(q, kernel);
        let low = v.iter().copied().fold(f32::INFINITY, f32::min);
        let high = v.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let step = if high > low { (high - low) / 15.0 } else { 1.0 };
        let mut planes = vec![[0u64; 4]; self.words.len()];
        for (k, x) in v.iter().enumerate() {
            let level = ((x - low) / step).round().clamp(0.0, 15.0) as u64;
            for (p, plane) in planes[k / 64].iter_mut().enumerate() {
                *plane |= (level >> p & 1) << (k % 64);
            }
        }
        CodeQuery { planes, low, step, sum: v.iter().sum() }
    }

    /// The estimated cosine of face `slot` minus the query's constant `⟨c, q⟩`.
    fn estimate(&self, q: &CodeQuery, slot: usize) -> f32 {
        let (mut ones, mut levels) = (0u32, 0u32);
        for (words, planes) in self.words.iter().zip(&q.planes) {
            let code = words[slot];
            ones += code.count_ones();
            levels += planes.iter().enumerate().map(|(p, &plane)| (code & plane).count_ones() << p).sum::<u32>();
        }
        let inner = 2.0 * (q.low * ones as f32 + q.step * levels as f32) - q.sum;
        f16_to_f32(self.scale[slot]) * inner + f16_to_f32(self.offset[slot])
    }

    /// About `wanted` of the `count` faces `filter` passes (every face without one), those with the
    /// highest estimates, in ascending slot order, into `out` (cleared first). The cut is the
    /// estimate ranked in proportion on a sample of ~[`SAMPLE`] faces: evenly spaced blocks of 8.
    pub(crate) fn candidates(
        &self,
        q: &CodeQuery,
        wanted: usize,
        count: usize,
        filter: Option<&Bits>,
        out: &mut Vec<u32>,
    ) {
        out.clear();
        let blocks = self.len().div_ceil(8);
        let stride = (blocks / (SAMPLE / 8)).max(1);
        let mut sample = Vec::with_capacity(SAMPLE + 8);
        #[cfg(target_arch = "x86_64")]
        let done = self.avx512.map_or(0, |token| token.sample(self, q, stride, filter, &mut sample));
        #[cfg(not(target_arch = "x86_64"))]
        let done = 0;
        for first in (0..blocks).step_by(stride).map(|block| block * 8).filter(|&first| first >= done) {
            let slots = first..(first + 8).min(self.len());
            sample.extend(
                slots.filter(|&slot| filter.is_none_or(|bits| bits.get(slot))).map(|slot| self.estimate(q, slot)),
            );
        }
        let threshold = if wanted >= count || sample.is_empty() {
            f32::NEG_INFINITY
        } else {
            let rank = (wanted * sample.len() / count).min(sample.len() - 1);
            *sample.select_nth_unstable_by(rank, |a, b| b.total_cmp(a)).1
        };
        self.scan(q, threshold, filter, out);
    }

    /// Appends the faces `filter` passes whose estimate is at least `threshold`, in slot order.
    fn scan(&self, q: &CodeQuery, threshold: f32, filter: Option<&Bits>, out: &mut Vec<u32>) {
        #[cfg(target_arch = "x86_64")]
        let done = self.avx512.map_or(0, |token| token.scan(self, q, threshold, filter, out));
        #[cfg(not(target_arch = "x86_64"))]
        let done = 0;
        out.extend(
            (done..self.len())
                .filter(|&slot| filter.is_none_or(|bits| bits.get(slot)) && self.estimate(q, slot) >= threshold)
                .map(|slot| slot as u32),
        );
    }
}

/// A uniformly random `dim`×`dim` orthogonal matrix (Gram–Schmidt on Gaussian rows), the same for
/// every set of this dimension.
fn random_rotation(dim: usize) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(ROTATION_SEED);
    let mut rows: Vec<Vec<f64>> = Vec::with_capacity(dim);
    while rows.len() < dim {
        // Box–Muller normals.
        let mut row: Vec<f64> = (0..dim)
            .map(|_| {
                let (a, b): (f64, f64) = (rng.random(), rng.random());
                (-2.0 * (1.0 - a).ln()).sqrt() * (std::f64::consts::TAU * b).cos()
            })
            .collect();
        for done in &rows {
            let along: f64 = row.iter().zip(done).map(|(r, d)| r * d).sum();
            row.iter_mut().zip(done).for_each(|(r, d)| *r -= along * d);
        }
        let norm = row.iter().map(|r| r * r).sum::<f64>().sqrt();
        if norm > 1e-6 {
            rows.push(row.into_iter().map(|r| r / norm).collect());
        }
    }
    rows.into_iter().flatten().map(|r| r as f32).collect()
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)] // AVX-512 popcount intrinsics behind run-time detection.
mod x86 {
    use std::arch::x86_64::*;

    use super::{CodeQuery, SignCodes};
    use crate::bits::Bits;

    /// Proof that the CPU has AVX-512 F/VL/DQ, VPOPCNTDQ and F16C (made only by [`Avx512Popcnt::new`]).
    #[derive(Clone, Copy, Debug)]
    pub(super) struct Avx512Popcnt(());

    impl Avx512Popcnt {
        pub(super) fn new() -> Option<Avx512Popcnt> {
            let ok = std::is_x86_feature_detected!("avx512f")
                && std::is_x86_feature_detected!("avx512vl")
                && std::is_x86_feature_detected!("avx512dq")
                && std::is_x86_feature_detected!("avx512vpopcntdq")
                && std::is_x86_feature_detected!("f16c")
                && std::is_x86_feature_detected!("fma");
            ok.then_some(Avx512Popcnt(()))
        }

        /// [`SignCodes::scan`] over the first multiple of 8 faces; returns how many it covered (0
        /// for codes of more than 8 words, left to the scalar loop).
        pub(super) fn scan(
            self,
            codes: &SignCodes,
            q: &CodeQuery,
            threshold: f32,
            filter: Option<&Bits>,
            out: &mut Vec<u32>,
        ) -> usize {
            // SAFETY: the token proves the target features are present; `W` is the codes' word count.
            by_words!(codes.words.len(), W => unsafe { scan::<W>(codes, q, threshold, filter, out) }, _ => 0)
        }

        /// The estimates of the faces `filter` passes in every `stride`-th block of 8 faces, over the
        /// first multiple of 8 faces; returns how many faces that covers (0 for codes of more than 8
        /// words, left to the scalar loop).
        pub(super) fn sample(
            self,
            codes: &SignCodes,
            q: &CodeQuery,
            stride: usize,
            filter: Option<&Bits>,
            out: &mut Vec<f32>,
        ) -> usize {
            // SAFETY: the token proves the target features are present; `W` is the codes' word count.
            by_words!(codes.words.len(), W => unsafe { sample::<W>(codes, q, stride, filter, out) }, _ => 0)
        }
    }

    /// `$body` with the constant `$w` equal to `$words` for 1–8 words, else `$other`: one
    /// monomorphised scan per code width, so its arrays live in registers.
    macro_rules! by_words {
        ($words:expr, $w:ident => $body:expr, _ => $other:expr) => {
            by_words!(@arms $words, $w, $body, $other; 1 2 3 4 5 6 7 8)
        };
        (@arms $words:expr, $w:ident, $body:expr, $other:expr; $($n:literal)*) => {
            match $words {
                $($n => {
                    const $w: usize = $n;
                    $body
                })*
                _ => $other,
            }
        };
    }
    use by_words;

    /// A query's constants in registers and the codes' arrays as pointers, for codes of `W` words
    /// (a constant, so the compiler keeps all of it in registers across the scan).
    struct Prepared<'a, const W: usize> {
        words: [*const u64; W],
        scale: *const u16,
        offset: *const u16,
        len: usize,
        planes: [[__m512i; 4]; W],
        two_step: __m256,
        two_low: __m256,
        sum: __m256,
        _codes: std::marker::PhantomData<&'a SignCodes>,
    }

    impl<'a, const W: usize> Prepared<'a, W> {
        /// Panics unless the codes have `W` words.
        #[target_feature(enable = "avx512f")]
        fn new(codes: &'a SignCodes, q: &CodeQuery) -> Prepared<'a, W> {
            assert_eq!(codes.words.len(), W);
            Prepared {
                words: std::array::from_fn(|w| codes.words[w].as_ptr()),
                scale: codes.scale.as_ptr(),
                offset: codes.offset.as_ptr(),
                len: codes.len(),
                planes: std::array::from_fn(|w| std::array::from_fn(|p| _mm512_set1_epi64(q.planes[w][p] as i64))),
                two_step: _mm256_set1_ps(2.0 * q.step),
                two_low: _mm256_set1_ps(2.0 * q.low),
                sum: _mm256_set1_ps(q.sum),
                _codes: std::marker::PhantomData,
            }
        }

        /// The estimates of slots `first..first + 8`.
        ///
        /// # Safety
        /// `first + 8 ≤ len`, and the CPU has the target features.
        #[inline]
        #[target_feature(enable = "avx512f,avx512vl,avx512dq,avx512vpopcntdq,f16c,fma")]
        unsafe fn estimates(&self, first: usize) -> __m256 {
            debug_assert!(first + 8 <= self.len);
            let (mut ones, mut levels) = (_mm512_setzero_si512(), _mm512_setzero_si512());
            for (words, planes) in self.words.iter().zip(&self.planes) {
                // SAFETY: first + 8 ≤ len, the length of every word array (the caller's contract).
                let code = unsafe { _mm512_loadu_si512(words.add(first).cast()) };
                ones = _mm512_add_epi64(ones, _mm512_popcnt_epi64(code));
                let count = |p: usize| _mm512_popcnt_epi64(_mm512_and_si512(code, planes[p]));
                let mut weighted = count(3);
                for p in (0..3).rev() {
                    weighted = _mm512_add_epi64(_mm512_slli_epi64::<1>(weighted), count(p));
                }
                levels = _mm512_add_epi64(levels, weighted);
            }
            let ones = _mm256_cvtepi32_ps(_mm512_cvtepi64_epi32(ones));
            let levels = _mm256_cvtepi32_ps(_mm512_cvtepi64_epi32(levels));
            let inner =
                _mm256_sub_ps(_mm256_fmadd_ps(self.two_step, levels, _mm256_mul_ps(self.two_low, ones)), self.sum);
            // SAFETY: first + 8 ≤ len, the factors' length (the caller's contract).
            let (scale, offset) = unsafe {
                (
                    _mm256_cvtph_ps(_mm_loadu_si128(self.scale.add(first).cast())),
                    _mm256_cvtph_ps(_mm_loadu_si128(self.offset.add(first).cast())),
                )
            };
            _mm256_fmadd_ps(scale, inner, offset)
        }
    }

    /// Which of slots `first..first + 8` the filter passes, as a bit mask.
    fn allowed(filter: Option<&[u64]>, first: usize) -> u8 {
        filter.map_or(0xff, |words| (words[first / 64] >> (first % 64)) as u8)
    }

    /// Hands `visit` the estimates of every `step`-th slot's block of 8 (`step` a multiple of 8)
    /// with the mask of slots `filter` passes, skipping blocks it passes none of, over the first
    /// multiple of 8 faces; returns how many faces that covers.
    ///
    /// # Safety
    /// The CPU has the target features; the codes have `W` words.
    #[inline]
    #[target_feature(enable = "avx512f,avx512vl,avx512dq,avx512vpopcntdq,f16c,fma")]
    unsafe fn for_each_block<const W: usize>(
        codes: &SignCodes,
        q: &CodeQuery,
        step: usize,
        filter: Option<&Bits>,
        mut visit: impl FnMut(usize, __m256, u8),
    ) -> usize {
        let whole = codes.len() / 8 * 8;
        let prepared = Prepared::<W>::new(codes, q);
        let allowed_words = filter.map(Bits::words);
        let mut first = 0;
        while first < whole {
            let allowed = allowed(allowed_words, first);
            if allowed != 0 {
                // SAFETY: first + 8 ≤ whole ≤ codes.len().
                visit(first, unsafe { prepared.estimates(first) }, allowed);
            }
            first += step;
        }
        whole
    }

    /// # Safety
    /// The CPU has the target features; the codes have `W` words.
    #[target_feature(enable = "avx512f,avx512vl,avx512dq,avx512vpopcntdq,f16c,fma")]
    unsafe fn sample<const W: usize>(
        codes: &SignCodes,
        q: &CodeQuery,
        stride: usize,
        filter: Option<&Bits>,
        out: &mut Vec<f32>,
    ) -> usize {
        let mut estimates = [0.0f32; 8];
        // SAFETY: the caller's contract.
        unsafe {
            for_each_block::<W>(codes, q, 8 * stride, filter, |_, block, allowed| {
                _mm256_storeu_ps(estimates.as_mut_ptr(), block);
                out.extend((0..8).filter(|k| allowed >> k & 1 == 1).map(|k| estimates[k]));
            })
        }
    }

    /// # Safety
    /// The CPU has the target features; the codes have `W` words.
    #[target_feature(enable = "avx512f,avx512vl,avx512dq,avx512vpopcntdq,f16c,fma")]
    unsafe fn scan<const W: usize>(
        codes: &SignCodes,
        q: &CodeQuery,
        threshold: f32,
        filter: Option<&Bits>,
        out: &mut Vec<u32>,
    ) -> usize {
        let threshold = _mm256_set1_ps(threshold);
        // SAFETY: the caller's contract.
        unsafe {
            for_each_block::<W>(codes, q, 8, filter, |first, block, allowed| {
                let mut passed = _mm256_cmp_ps_mask::<_CMP_GE_OQ>(block, threshold) & allowed;
                while passed != 0 {
                    out.push((first + passed.trailing_zeros() as usize) as u32);
                    passed &= passed - 1;
                }
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(rng: &mut StdRng, dim: usize) -> Vec<f32> {
        let v: Vec<f32> = (0..dim).map(|_| rng.random::<f32>() - 0.5).collect();
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.into_iter().map(|x| x / norm).collect()
    }

    #[test]
    fn rotation_is_orthogonal() {
        let dim = 96;
        let r = random_rotation(dim);
        for i in 0..dim {
            for j in 0..dim {
                let d: f32 = (0..dim).map(|k| r[i * dim + k] * r[j * dim + k]).sum();
                let want = if i == j { 1.0 } else { 0.0 };
                assert!((d - want).abs() < 1e-5, "row {i} · row {j} = {d}");
            }
        }
    }

    /// The estimate tracks the cosine and every scan finds what the
    /// scalar estimate passes, with and without a filter, for a dimension that is not a multiple of 64.
    #[test]
    fn estimates_track_cosines_and_scans_agree() {
        for dim in [128, 100] {
            let mut rng = StdRng::seed_from_u64(3);
            let n = 1003;
            let rows: Vec<f32> = (0..n).flat_map(|_| unit(&mut rng, dim)).collect();
            let kernel = Kernel::detect();
            let codes = SignCodes::build(dim, n, |s| Cow::Borrowed(&rows[s * dim..(s + 1) * dim]), kernel);
            let q = unit(&mut rng, dim);
            let query = codes.query(&q, kernel);
            let pairs: Vec<(f64, f64)> = (0..n)
                .map(|slot| {
                    let cosine: f32 = rows[slot * dim..(slot + 1) * dim].iter().zip(&q).map(|(a, b)| a * b).sum();
                    (f64::from(codes.estimate(&query, slot)), f64::from(cosine))
                })
                .collect();
            // RaBitQ's error for unit vectors is ~0.8/sqrt(dim), a little under the spread of the
            // cosines themselves (1/sqrt(dim)): a correlation near 0.8; a wrong sign or factor
            // leaves about none.
            let mean = |f: &dyn Fn(&(f64, f64)) -> f64| pairs.iter().map(f).sum::<f64>() / n as f64;
            let (me, mc) = (mean(&|p| p.0), mean(&|p| p.1));
            let covariance = mean(&|p| (p.0 - me) * (p.1 - mc));
            let correlation = covariance / (mean(&|p| (p.0 - me).powi(2)) * mean(&|p| (p.1 - mc).powi(2))).sqrt();
            assert!(correlation > 0.7, "dim {dim}: estimate/cosine correlation {correlation}");
            let filter = Bits::from_values(&(0..n).collect::<Vec<_>>(), |slot| slot % 3 != 0);
            for filter in [None, Some(&filter)] {
                let threshold = 0.02;
                let mut scanned = Vec::new();
                codes.scan(&query, threshold, filter, &mut scanned);
                let expected: Vec<u32> = (0..n)
                    .filter(|&s| filter.is_none_or(|b| b.get(s)) && codes.estimate(&query, s) >= threshold)
                    .map(|s| s as u32)
                    .collect();
                assert_eq!(scanned, expected, "dim {dim}");
                assert!(!expected.is_empty() && expected.len() < n / 2);
            }
        }
    }

    #[test]
    fn candidates_keep_about_the_wanted_share_and_swap_remove_keeps_slots() {
        let dim = 128;
        let mut rng = StdRng::seed_from_u64(5);
        let n = 40_000;
        let rows: Vec<f32> = (0..n).flat_map(|_| unit(&mut rng, dim)).collect();
        let kernel = Kernel::detect();
        let mut codes = SignCodes::build(dim, n, |s| Cow::Borrowed(&rows[s * dim..(s + 1) * dim]), kernel);
        let query = codes.query(&unit(&mut rng, dim), kernel);
        let mut out = Vec::new();
        codes.candidates(&query, 2_000, n, None, &mut out);
        assert!((1_500..2_500).contains(&out.len()), "{} candidates", out.len());
        assert!(out.windows(2).all(|w| w[0] < w[1]));
        codes.candidates(&query, n, n, None, &mut out);
        assert_eq!(out.len(), n);

        let before = codes.estimate(&query, n - 1);
        codes.swap_remove(7);
        assert_eq!(codes.len(), n - 1);
        assert_eq!(codes.estimate(&query, 7), before);
    }
}
