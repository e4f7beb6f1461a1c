//! `DequantizeLinear` (opset 21) evaluated on constant tensors.
//!
//! `y = (x - zero_point) * scale`, computed as `((x - zp) as f32) * scale` exactly as ONNX
//! Runtime's and OpenCV's kernels do, so a folded weight is bit-identical to the one those
//! runtimes would compute at load time.

use crate::tensor::element_count;

/// How scale and zero point map onto the quantized input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Granularity {
    /// One scale for the whole tensor.
    PerTensor,
    /// One scale per index along `axis` (1-D scale).
    PerAxis { axis: usize },
    /// One scale per `block_size` consecutive indices along `axis` (scale of the same rank as x).
    Blocked { axis: usize, block_size: usize },
}

/// Shapes that do not form a valid `DequantizeLinear`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DequantizeError {
    #[error("axis {axis} is out of range for an input of rank {rank}")]
    Axis { axis: i64, rank: usize },
    #[error("block_size {0} is negative")]
    BlockSize(i64),
    #[error("scale shape {scale:?} does not fit input shape {input:?} ({granularity})")]
    ScaleShape { scale: Vec<usize>, input: Vec<usize>, granularity: String },
    #[error("zero point shape {zero_point:?} differs from scale shape {scale:?}")]
    ZeroPointShape { zero_point: Vec<usize>, scale: Vec<usize> },
    #[error("{what} holds {actual} values, its shape needs {expected}")]
    Length { what: &'static str, expected: usize, actual: usize },
}

/// Decides the granularity of a `DequantizeLinear` from its attributes and the shapes involved.
///
/// `axis` may be negative (counted from the end); `block_size` 0 means not blocked. A scale with
/// one element and rank 0 or 1 is per-tensor unless blocked.
pub fn granularity(
    input_dims: &[usize],
    scale_dims: &[usize],
    axis: i64,
    block_size: i64,
) -> Result<Granularity, DequantizeError> {
    if block_size < 0 {
        return Err(DequantizeError::BlockSize(block_size));
    }
    let rank = input_dims.len();
    let scale_len = element_count(scale_dims).unwrap_or(usize::MAX);
    if block_size == 0 && scale_dims.len() <= 1 && scale_len == 1 {
        return Ok(Granularity::PerTensor);
    }
    let normalized = if axis < 0 { axis + rank as i64 } else { axis };
    if normalized < 0 || normalized >= rank as i64 {
        return Err(DequantizeError::Axis { axis, rank });
    }
    let axis_u = normalized as usize;
    let shape_error = |granularity: String| DequantizeError::ScaleShape {
        scale: scale_dims.to_vec(),
        input: input_dims.to_vec(),
        granularity,
    };
    if block_size == 0 {
        if scale_dims.len() != 1 || scale_dims[0] != input_dims[axis_u] {
            return Err(shape_error(format!("per-axis on axis {axis_u}")));
        }
        return Ok(Granularity::PerAxis { axis: axis_u });
    }
    let block = block_size as usize;
    let fits = scale_dims.len() == rank
        && scale_dims.iter().zip(input_dims).enumerate().all(
            |(i, (&s, &x))| {
                if i == axis_u { s == x.div_ceil(block) } else { s == x }
            },
        );
    if !fits {
        return Err(shape_error(format!("blocks of {block} on axis {axis_u}")));
    }
    Ok(Granularity::Blocked { axis: axis_u, block_size: block })
}

/// Dequantizes `x` (shape `input_dims`) with `scale` (shape `scale_dims`) and an optional zero
/// point of the scale's shape (default 0).
pub fn dequantize(
    x: &[i32],
    input_dims: &[usize],
    scale: &[f32],
    scale_dims: &[usize],
    zero_point: Option<(&[i32], &[usize])>,
    axis: i64,
    block_size: i64,
) -> Result<Vec<f32>, DequantizeError> {
    let length = |what, expected: Option<usize>, actual: usize| match expected {
        Some(e) if e == actual => Ok(()),
        e => Err(DequantizeError::Length { what, expected: e.unwrap_or(usize::MAX), actual }),
    };
    length("input", element_count(input_dims), x.len())?;
    length("scale", element_count(scale_dims), scale.len())?;
    if let Some((zp, zp_dims)) = zero_point {
        let same_shape = zp_dims == scale_dims || (zp.len() == 1 && scale.len() == 1 && zp_dims.len() <= 1);
        if !same_shape {
            return Err(DequantizeError::ZeroPointShape { zero_point: zp_dims.to_vec(), scale: scale_dims.to_vec() });
        }
        length("zero point", element_count(zp_dims), zp.len())?;
    }
    let zp_at = |k: usize| zero_point.map_or(0, |(zp, _)| zp[k]);
    let value = |q: i32, k: usize| (q - zp_at(k)) as f32 * scale[k];

    let granularity = granularity(input_dims, scale_dims, axis, block_size)?;
    let out = match granularity {
        Granularity::PerTensor => x.iter().map(|&q| value(q, 0)).collect(),
        Granularity::PerAxis { axis } => {
            let inner: usize = input_dims[axis + 1..].iter().product();
            let d = input_dims[axis];
            x.iter().enumerate().map(|(i, &q)| value(q, (i / inner) % d)).collect()
        }
        Granularity::Blocked { axis, block_size } => {
            let inner: usize = input_dims[axis + 1..].iter().product();
            let d = input_dims[axis];
            let blocks = scale_dims[axis];
            x.iter()
                .enumerate()
                .map(|(i, &q)| {
                    let outer = i / (inner * d);
                    let a = (i / inner) % d;
                    let k = i % inner;
                    value(q, (outer * blocks + a / block_size) * inner + k)
                })
                .collect()
        }
    };
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn per_tensor_scalar_and_one_element() {
        let y = dequantize(&[-2, 0, 5], &[3], &[0.5], &[], Some((&[1], &[])), 1, 0).unwrap();
        assert_eq!(y, vec![-1.5, -0.5, 2.0]);
        let y = dequantize(&[-2, 0, 5], &[3], &[0.5], &[1], None, 0, 0).unwrap();
        assert_eq!(y, vec![-1.0, 0.0, 2.5]);
    }

    #[test]
    fn per_axis_default_and_negative_axis() {
        // x: 2x3, per-axis on axis 1 (the default).
        let x = [1, 2, 3, 4, 5, 6];
        let y = dequantize(&x, &[2, 3], &[1.0, 10.0, 100.0], &[3], Some((&[0, 1, 2], &[3])), 1, 0).unwrap();
        assert_eq!(y, vec![1.0, 10.0, 100.0, 4.0, 40.0, 400.0]);
        // Same with axis -2 => axis 0 (2 scales).
        let y = dequantize(&x, &[2, 3], &[1.0, -1.0], &[2], None, -2, 0).unwrap();
        assert_eq!(y, vec![1.0, 2.0, 3.0, -4.0, -5.0, -6.0]);
    }

    #[test]
    fn blocked_on_last_axis_with_partial_block() {
        // x: 2x5, blocks of 2 along axis 1 => scale 2x3, last block holds one element.
        let x = [1, 1, 1, 1, 1, 2, 2, 2, 2, 2];
        let scale = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let zp = [0, 1, 0, 0, 0, 1];
        let y = dequantize(&x, &[2, 5], &scale, &[2, 3], Some((&zp, &[2, 3])), 1, 2).unwrap();
        assert_eq!(y, vec![1.0, 1.0, 0.0, 0.0, 3.0, 8.0, 8.0, 10.0, 10.0, 6.0]);
    }

    #[test]
    fn blocked_on_first_axis_of_rank_three() {
        // x: 4x1x2, blocks of 3 along axis 0 => scale 2x1x2.
        let x: Vec<i32> = (1..=8).collect();
        let scale = [1.0, 10.0, 100.0, 1000.0];
        let y = dequantize(&x, &[4, 1, 2], &scale, &[2, 1, 2], None, 0, 3).unwrap();
        assert_eq!(y, vec![1.0, 20.0, 3.0, 40.0, 5.0, 60.0, 700.0, 8000.0]);
        // The same with a negative axis.
        let y2 = dequantize(&x, &[4, 1, 2], &scale, &[2, 1, 2], None, -3, 3).unwrap();
        assert_eq!(y, y2);
    }

    #[test]
    fn blocked_one_dimensional_like_a_bias() {
        // SFace's pre_fc1 bias: x [128], scale [2], blocks of 64 on axis 0.
        let x = vec![2; 128];
        let y = dequantize(&x, &[128], &[0.5, 0.25], &[2], Some((&[0, 1], &[2])), 0, 64).unwrap();
        assert!(y[..64].iter().all(|&v| v == 1.0));
        assert!(y[64..].iter().all(|&v| v == 0.25));
    }

    #[test]
    fn int8_extremes_do_not_overflow() {
        let y = dequantize(&[-128, 127], &[2], &[1.0], &[], Some((&[127], &[])), 0, 0).unwrap();
        assert_eq!(y, vec![-255.0, 0.0]);
    }

    #[test]
    fn rejects_bad_shapes() {
        assert_eq!(dequantize(&[1, 2], &[2], &[1.0], &[1], None, 3, 0), Ok(vec![1.0, 2.0]), "per-tensor ignores axis");
        assert!(matches!(
            dequantize(&[1, 2, 3, 4], &[2, 2], &[1.0, 1.0], &[2], None, 2, 0),
            Err(DequantizeError::Axis { .. })
        ));
        assert!(matches!(
            dequantize(&[1, 2, 3, 4], &[2, 2], &[1.0, 1.0, 1.0], &[3], None, 1, 0),
            Err(DequantizeError::ScaleShape { .. })
        ));
        assert!(matches!(
            dequantize(&[1, 2, 3, 4], &[2, 2], &[1.0, 1.0], &[2, 1], None, 1, 1),
            Err(DequantizeError::ScaleShape { .. })
        ));
        assert!(matches!(
            dequantize(&[1, 2, 3, 4], &[2, 2], &[1.0, 1.0], &[2, 1], Some((&[0], &[1])), 1, 2),
            Err(DequantizeError::ZeroPointShape { .. })
        ));
        assert!(matches!(dequantize(&[1], &[2], &[1.0], &[], None, 0, 0), Err(DequantizeError::Length { .. })));
        assert!(matches!(dequantize(&[1], &[1], &[1.0], &[], None, 0, -1), Err(DequantizeError::BlockSize(-1))));
    }
}
