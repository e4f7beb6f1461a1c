//! The feature matrix of one face set, by slot, in the precision its settings ask for.
//!
//! - `F32`: the features as given; every score is the `f32` dot product of the query and the feature.
//! - `F16`: each component rounded to the nearest IEEE binary16 (relative error ≤ 2⁻¹¹); a score is the
//!   `f32` dot product of the query and the stored half-precision feature widened exactly to `f32`.
//! - `I8`: each feature as 8-bit codes `round(x / s)` with one `f32` scale `s = max|x| / 127` per
//!   face; a score is `s · (query · codes)` computed in `f32`.
//!
//! Exact search and code search score the same stored vectors through the same kernels, so both
//! paths give a face the very same score.

use std::borrow::Cow;

use crate::kernel::{Kernel, f16_to_f32, f32_to_f16};
use crate::settings::Precision;

/// Rows of features, `dim` components each.
#[derive(Clone, Debug)]
pub(crate) enum Vectors {
    F32(Vec<f32>),
    F16(Vec<u16>),
    I8 { codes: Vec<i8>, scales: Vec<f32> },
}

impl Vectors {
    pub(crate) fn new(precision: Precision) -> Vectors {
        match precision {
            Precision::F32 => Vectors::F32(Vec::new()),
            Precision::F16 => Vectors::F16(Vec::new()),
            Precision::I8 => Vectors::I8 { codes: Vec::new(), scales: Vec::new() },
        }
    }

    pub(crate) fn precision(&self) -> Precision {
        match self {
            Vectors::F32(_) => Precision::F32,
            Vectors::F16(_) => Precision::F16,
            Vectors::I8 { .. } => Precision::I8,
        }
    }

    /// Appends one row (`feature.len() == dim`), growing by [`crate::index::grow`]'s small steps.
    pub(crate) fn push(&mut self, feature: &[f32], min_rows: usize) {
        let dim = feature.len();
        let capacity = self.heap_bytes();
        match self {
            Vectors::F32(v) => {
                crate::index::grow(v, dim, min_rows * dim);
                v.extend_from_slice(feature);
            }
            Vectors::F16(v) => {
                crate::index::grow(v, dim, min_rows * dim);
                v.extend(feature.iter().map(|&x| f32_to_f16(x)));
            }
            Vectors::I8 { codes, scales } => {
                let max = feature.iter().fold(0.0f32, |m, x| m.max(x.abs()));
                let scale = if max > 0.0 && max.is_finite() { max / 127.0 } else { 1.0 };
                crate::index::grow(codes, dim, min_rows * dim);
                codes.extend(feature.iter().map(|&x| (x / scale).round().clamp(-127.0, 127.0) as i8));
                crate::index::grow(scales, 1, min_rows);
                scales.push(scale);
            }
        }
        if self.heap_bytes() != capacity {
            self.advise_huge_pages();
        }
    }

    /// Asks Linux to back a large feature matrix with transparent huge pages (where THP is
    /// `madvise` or `always`): code search re-scores rows at scattered slots, and with 4 KiB pages
    /// nearly every row costs a TLB miss (measured at 1M `f32` faces: re-scoring 10,000 rows took
    /// ~0.8 ms instead of ~1.1 ms). A hint: contents are unchanged, and a refusal changes nothing.
    fn advise_huge_pages(&self) {
        match self {
            Vectors::F32(v) => huge_pages::advise(v),
            Vectors::F16(v) => huge_pages::advise(v),
            Vectors::I8 { codes, .. } => huge_pages::advise(codes),
        }
    }

    /// Moves row `last` into row `slot` and drops the last row (as `Vec::swap_remove`).
    pub(crate) fn swap_remove(&mut self, slot: usize, dim: usize) {
        fn move_last<T: Copy>(v: &mut Vec<T>, slot: usize, width: usize) {
            let last = v.len() / width - 1;
            if slot != last {
                v.copy_within(last * width..(last + 1) * width, slot * width);
            }
            v.truncate(last * width);
        }
        match self {
            Vectors::F32(v) => move_last(v, slot, dim),
            Vectors::F16(v) => move_last(v, slot, dim),
            Vectors::I8 { codes, scales } => {
                move_last(codes, slot, dim);
                move_last(scales, slot, 1);
            }
        }
    }

    /// Row `slot` as `f32` (borrowed for `F32`, widened otherwise).
    pub(crate) fn row(&self, slot: usize, dim: usize) -> Cow<'_, [f32]> {
        match self {
            Vectors::F32(v) => Cow::Borrowed(&v[slot * dim..(slot + 1) * dim]),
            Vectors::F16(v) => Cow::Owned(v[slot * dim..(slot + 1) * dim].iter().map(|&h| f16_to_f32(h)).collect()),
            Vectors::I8 { codes, scales } => {
                let scale = scales[slot];
                Cow::Owned(codes[slot * dim..(slot + 1) * dim].iter().map(|&c| f32::from(c) * scale).collect())
            }
        }
    }

    /// The score of row `slot` for `query` (`query.len() == dim`), as the module documents.
    #[inline]
    pub(crate) fn score(&self, kernel: Kernel, query: &[f32], slot: usize) -> f32 {
        let dim = query.len();
        match self {
            Vectors::F32(v) => kernel.dot(query, &v[slot * dim..(slot + 1) * dim]),
            Vectors::F16(v) => kernel.dot_f16(query, &v[slot * dim..(slot + 1) * dim]),
            Vectors::I8 { codes, scales } => kernel.dot_i8(query, &codes[slot * dim..(slot + 1) * dim]) * scales[slot],
        }
    }

    /// `out[i]` = score of row `first + i`.
    #[inline]
    pub(crate) fn scores_range(&self, kernel: Kernel, query: &[f32], first: usize, out: &mut [f32]) {
        let dim = query.len();
        match self {
            Vectors::F32(v) => kernel.dots(query, &v[first * dim..(first + out.len()) * dim], out),
            _ => {
                for (i, o) in out.iter_mut().enumerate() {
                    *o = self.score(kernel, query, first + i);
                }
            }
        }
    }

    /// `out[i]` = score of row `slots[i]`.
    #[inline]
    pub(crate) fn scores_gather(&self, kernel: Kernel, query: &[f32], slots: &[u32], out: &mut [f32]) {
        match self {
            Vectors::F32(v) => kernel.gather(query, v, slots, out),
            _ => {
                for (o, &slot) in out.iter_mut().zip(slots) {
                    *o = self.score(kernel, query, slot as usize);
                }
            }
        }
    }

    pub(crate) fn reserve_exact(&mut self, rows: usize, dim: usize) {
        match self {
            Vectors::F32(v) => v.reserve_exact(rows * dim),
            Vectors::F16(v) => v.reserve_exact(rows * dim),
            Vectors::I8 { codes, scales } => {
                codes.reserve_exact(rows * dim);
                scales.reserve_exact(rows);
            }
        }
        self.advise_huge_pages();
    }

    pub(crate) fn shrink_to(&mut self, rows: usize, dim: usize) {
        match self {
            Vectors::F32(v) => v.shrink_to(rows * dim),
            Vectors::F16(v) => v.shrink_to(rows * dim),
            Vectors::I8 { codes, scales } => {
                codes.shrink_to(rows * dim);
                scales.shrink_to(rows);
            }
        }
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        match self {
            Vectors::F32(v) => v.capacity() * 4,
            Vectors::F16(v) => v.capacity() * 2,
            Vectors::I8 { codes, scales } => codes.capacity() + scales.capacity() * 4,
        }
    }
}

#[cfg(target_os = "linux")]
#[allow(unsafe_code)] // one madvise(2) call.
mod huge_pages {
    /// Buffers smaller than this keep normal pages.
    const MIN_BYTES: usize = 4 << 20;
    const PAGE: usize = 4096;

    /// `madvise(MADV_HUGEPAGE)` over the whole pages inside `v`'s allocation.
    pub(super) fn advise<T>(v: &Vec<T>) {
        let bytes = v.capacity() * std::mem::size_of::<T>();
        if bytes < MIN_BYTES {
            return;
        }
        let start = v.as_ptr() as usize;
        let first = start.next_multiple_of(PAGE);
        let len = (start + bytes - first) / PAGE * PAGE;
        // SAFETY: [first, first + len) lies inside the vector's live allocation; MADV_HUGEPAGE only
        // changes how the kernel backs those pages, never their contents or the mapping's validity.
        unsafe { libc::madvise(first as *mut libc::c_void, len, libc::MADV_HUGEPAGE) };
    }
}

#[cfg(not(target_os = "linux"))]
mod huge_pages {
    pub(super) fn advise<T>(_: &Vec<T>) {}
}
