//! 5-point similarity alignment onto the 112×112 template SFace and ArcFace were trained with.

use image::RgbImage;

use crate::Point;

/// Side of the aligned face crop.
pub const CROP_SIDE: usize = 112;

/// Where the five landmarks (eye, eye, nose, mouth corner, mouth corner, image left to right)
/// land in the 112×112 crop: the standard ArcFace template OpenCV's `FaceRecognizerSF` uses.
pub const TEMPLATE: [[f32; 2]; 5] =
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]];

/// A 2-D similarity transform `[a -b tx; b a ty]`: rotation and uniform scale, then translation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Similarity {
    pub a: f64,
    pub b: f64,
    pub tx: f64,
    pub ty: f64,
}

impl Similarity {
    /// Applies the transform to a point.
    pub fn apply(&self, [x, y]: [f64; 2]) -> [f64; 2] {
        [self.a * x - self.b * y + self.tx, self.b * x + self.a * y + self.ty]
    }

    /// The inverse transform, or `None` when degenerate (zero scale).
    pub fn inverse(&self) -> Option<Similarity> {
        let det = self.a * self.a + self.b * self.b;
        if det <= f64::EPSILON {
            return None;
        }
        let (a, b) = (self.a / det, -self.b / det);
        Some(Similarity { a, b, tx: -(a * self.tx - b * self.ty), ty: -(b * self.tx + a * self.ty) })
    }

    /// The least-squares similarity mapping `src` onto `dst` (Umeyama 1991, no reflection).
    pub fn estimate(src: &[[f64; 2]], dst: &[[f64; 2]]) -> Option<Similarity> {
        let n = src.len().min(dst.len()) as f64;
        if n < 2.0 {
            return None;
        }
        let mean = |pts: &[[f64; 2]]| {
            let (sx, sy) = pts.iter().fold((0.0, 0.0), |(sx, sy), p| (sx + p[0], sy + p[1]));
            [sx / n, sy / n]
        };
        let (ms, md) = (mean(src), mean(dst));
        // With centred points, the optimal rotation+scale for the complex-number model
        // d = (a + ib) s minimises Σ|d - (a+ib)s|², giving (a + ib) = Σ conj(s)·d / Σ|s|².
        let (mut dot, mut cross, mut norm) = (0.0, 0.0, 0.0);
        for (s, d) in src.iter().zip(dst) {
            let (sx, sy) = (s[0] - ms[0], s[1] - ms[1]);
            let (dx, dy) = (d[0] - md[0], d[1] - md[1]);
            dot += sx * dx + sy * dy;
            cross += sx * dy - sy * dx;
            norm += sx * sx + sy * sy;
        }
        if norm <= f64::EPSILON {
            return None;
        }
        let (a, b) = (dot / norm, cross / norm);
        Some(Similarity { a, b, tx: md[0] - (a * ms[0] - b * ms[1]), ty: md[1] - (b * ms[0] + a * ms[1]) })
    }
}

/// The transform taking a face's landmarks onto [`TEMPLATE`].
pub fn landmarks_to_template(landmarks: &[Point; 5]) -> Option<Similarity> {
    let src = landmarks.map(|p| [f64::from(p.x), f64::from(p.y)]);
    let dst = TEMPLATE.map(|[x, y]| [f64::from(x), f64::from(y)]);
    Similarity::estimate(&src, &dst)
}

/// Writes the 112×112 crop `to_crop` selects from `image` as planar RGB f32 (0–255) into `out`
/// (length 3·112·112), bilinear, zero outside the image — OpenCV's `warpAffine` defaults.
pub fn warp_to_planar_rgb(image: &RgbImage, to_crop: &Similarity, out: &mut [f32]) -> Option<()> {
    let inv = to_crop.inverse()?;
    let (w, h) = (image.width() as i64, image.height() as i64);
    let raw = image.as_raw();
    let plane = CROP_SIDE * CROP_SIDE;
    let pixel = |x: i64, y: i64| -> [f32; 3] {
        if x < 0 || y < 0 || x >= w || y >= h {
            return [0.0; 3];
        }
        let i = ((y * w + x) * 3) as usize;
        [f32::from(raw[i]), f32::from(raw[i + 1]), f32::from(raw[i + 2])]
    };
    for v in 0..CROP_SIDE {
        for u in 0..CROP_SIDE {
            let [sx, sy] = inv.apply([u as f64, v as f64]);
            let (x0, y0) = (sx.floor(), sy.floor());
            let (fx, fy) = ((sx - x0) as f32, (sy - y0) as f32);
            let (x0, y0) = (x0 as i64, y0 as i64);
            let (p00, p10, p01, p11) = (pixel(x0, y0), pixel(x0 + 1, y0), pixel(x0, y0 + 1), pixel(x0 + 1, y0 + 1));
            let o = v * CROP_SIDE + u;
            for c in 0..3 {
                let top = p00[c] + (p10[c] - p00[c]) * fx;
                let bottom = p01[c] + (p11[c] - p01[c]) * fx;
                out[c * plane + o] = top + (bottom - top) * fy;
            }
        }
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn template() -> [[f64; 2]; 5] {
        TEMPLATE.map(|[x, y]| [f64::from(x), f64::from(y)])
    }

    #[test]
    fn the_template_maps_onto_itself() {
        let t = Similarity::estimate(&template(), &template()).expect("non-degenerate");
        assert!((t.a - 1.0).abs() < 1e-12 && t.b.abs() < 1e-12 && t.tx.abs() < 1e-9 && t.ty.abs() < 1e-9);
    }

    #[test]
    fn degenerate_inputs_give_none() {
        let same = [[3.0, 4.0]; 5];
        assert!(Similarity::estimate(&same, &template()).is_none());
        assert!(Similarity { a: 0.0, b: 0.0, tx: 1.0, ty: 1.0 }.inverse().is_none());
    }

    proptest! {
        #[test]
        fn a_known_similarity_is_recovered(
            angle in -3.1f64..3.1, scale in 0.05f64..20.0, tx in -500f64..500.0, ty in -500f64..500.0,
        ) {
            let truth = Similarity { a: scale * angle.cos(), b: scale * angle.sin(), tx, ty };
            let dst = template().map(|p| truth.apply(p));
            let got = Similarity::estimate(&template(), &dst).expect("non-degenerate");
            prop_assert!((got.a - truth.a).abs() < 1e-9 * scale.max(1.0));
            prop_assert!((got.b - truth.b).abs() < 1e-9 * scale.max(1.0));
            prop_assert!((got.tx - tx).abs() < 1e-6 && (got.ty - ty).abs() < 1e-6);
            let back = got.inverse().expect("invertible");
            for (p, q) in template().iter().zip(&dst) {
                let r = back.apply(*q);
                prop_assert!((r[0] - p[0]).abs() < 1e-6 && (r[1] - p[1]).abs() < 1e-6);
            }
        }

        #[test]
        fn least_squares_beats_any_perturbation(
            noise in proptest::collection::vec(-3f64..3.0, 10), da in -0.05f64..0.05, dtx in -2f64..2.0,
        ) {
            let src = template();
            let dst: Vec<[f64; 2]> =
                src.iter().enumerate().map(|(i, p)| [p[0] * 1.5 + 10.0 + noise[2 * i], p[1] * 1.5 - 4.0 + noise[2 * i + 1]]).collect();
            let best = Similarity::estimate(&src, &dst).expect("non-degenerate");
            let cost = |t: &Similarity| src.iter().zip(&dst).map(|(s, d)| {
                let m = t.apply(*s);
                (m[0] - d[0]).powi(2) + (m[1] - d[1]).powi(2)
            }).sum::<f64>();
            let worse = Similarity { a: best.a + da, tx: best.tx + dtx, ..best };
            prop_assert!(cost(&best) <= cost(&worse) + 1e-9);
        }
    }

    #[test]
    fn warping_an_identity_crop_copies_pixels() {
        let image = RgbImage::from_fn(112, 112, |x, y| image::Rgb([x as u8, y as u8, 7]));
        let mut out = vec![0.0; 3 * CROP_SIDE * CROP_SIDE];
        let identity = Similarity { a: 1.0, b: 0.0, tx: 0.0, ty: 0.0 };
        warp_to_planar_rgb(&image, &identity, &mut out).expect("invertible");
        assert_eq!(out[5 * CROP_SIDE + 9], 9.0);
        assert_eq!(out[CROP_SIDE * CROP_SIDE + 5 * CROP_SIDE + 9], 5.0);
        assert_eq!(out[2 * CROP_SIDE * CROP_SIDE + 100], 7.0);
    }
}
