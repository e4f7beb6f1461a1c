//! Reading and writing the values of [`TensorProto`]s held inside the model file.

use crate::proto::{DATA_LOCATION_EXTERNAL, TensorProto, data_type};

/// A tensor whose values cannot be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("tensor `{name}`: {reason}")]
pub struct TensorError {
    pub name: String,
    pub reason: String,
}

fn fail(t: &TensorProto, reason: impl Into<String>) -> TensorError {
    TensorError { name: t.label().to_owned(), reason: reason.into() }
}

/// The dimensions as `usize`, rejecting negative values and element counts that overflow.
pub fn dims(t: &TensorProto) -> Result<Vec<usize>, TensorError> {
    let dims = t
        .dims
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| fail(t, format!("negative dimension {d}"))))
        .collect::<Result<Vec<_>, _>>()?;
    element_count(&dims).ok_or_else(|| fail(t, "element count overflows"))?;
    Ok(dims)
}

/// Product of `dims` (1 for a scalar), `None` on overflow.
pub fn element_count(dims: &[usize]) -> Option<usize> {
    dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))
}

fn check_inline(t: &TensorProto) -> Result<(), TensorError> {
    if t.data_location == Some(DATA_LOCATION_EXTERNAL) || !t.external_data.is_empty() {
        return Err(fail(t, "external data is not supported"));
    }
    if t.segment.is_some() {
        return Err(fail(t, "segmented tensors are not supported"));
    }
    Ok(())
}

fn check_len(t: &TensorProto, expected: usize, actual: usize) -> Result<(), TensorError> {
    if expected == actual { Ok(()) } else { Err(fail(t, format!("holds {actual} values, its shape needs {expected}"))) }
}

/// Values of an integer tensor of 16 bits or fewer (`INT8`, `UINT8`, `INT16`, `UINT16`, `INT4`,
/// `UINT4`) or `INT32`, widened to `i32`. 4-bit values are unpacked low nibble first.
pub fn integer_values(t: &TensorProto) -> Result<Vec<i32>, TensorError> {
    check_inline(t)?;
    let dt = t.data_type.unwrap_or(0);
    let n = element_count(&dims(t)?).ok_or_else(|| fail(t, "element count overflows"))?;
    let values: Vec<i32> = match (dt, t.raw_data.as_deref()) {
        (data_type::INT8, Some(raw)) => raw.iter().map(|&b| i32::from(b as i8)).collect(),
        (data_type::UINT8, Some(raw)) => raw.iter().map(|&b| i32::from(b)).collect(),
        (data_type::INT16, Some(raw)) => {
            raw.chunks_exact(2).map(|c| i32::from(i16::from_le_bytes([c[0], c[1]]))).collect()
        }
        (data_type::UINT16, Some(raw)) => {
            raw.chunks_exact(2).map(|c| i32::from(u16::from_le_bytes([c[0], c[1]]))).collect()
        }
        (data_type::INT32, Some(raw)) => {
            raw.chunks_exact(4).map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
        }
        (data_type::INT4 | data_type::UINT4, Some(raw)) => {
            check_len(t, n.div_ceil(2), raw.len())?;
            unpack_nibbles(raw.iter().map(|&b| i32::from(b)), n, dt == data_type::INT4)
        }
        (data_type::INT4 | data_type::UINT4, None) => {
            check_len(t, n.div_ceil(2), t.int32_data.len())?;
            unpack_nibbles(t.int32_data.iter().copied(), n, dt == data_type::INT4)
        }
        (data_type::INT8, None) => t.int32_data.iter().map(|&v| i32::from(v as i8)).collect(),
        (data_type::UINT8, None) => t.int32_data.iter().map(|&v| i32::from(v as u8)).collect(),
        (data_type::INT16, None) => t.int32_data.iter().map(|&v| i32::from(v as i16)).collect(),
        (data_type::UINT16, None) => t.int32_data.iter().map(|&v| i32::from(v as u16)).collect(),
        (data_type::INT32, None) => t.int32_data.clone(),
        _ => return Err(fail(t, format!("expected an integer type, found {}", data_type::name(dt)))),
    };
    check_len(t, n, values.len())?;
    Ok(values)
}

/// Splits bytes (or `int32_data` entries holding one byte) into 4-bit values, low nibble first.
fn unpack_nibbles(bytes: impl Iterator<Item = i32>, n: usize, signed: bool) -> Vec<i32> {
    let nibble = |v: i32| if signed && v >= 8 { v - 16 } else { v };
    bytes.flat_map(|b| [nibble(b & 0x0f), nibble((b >> 4) & 0x0f)]).take(n).collect()
}

/// Values of a `FLOAT` tensor.
pub fn float_values(t: &TensorProto) -> Result<Vec<f32>, TensorError> {
    check_inline(t)?;
    let dt = t.data_type.unwrap_or(0);
    if dt != data_type::FLOAT {
        return Err(fail(t, format!("expected FLOAT, found {}", data_type::name(dt))));
    }
    let n = element_count(&dims(t)?).ok_or_else(|| fail(t, "element count overflows"))?;
    let values: Vec<f32> = match t.raw_data.as_deref() {
        Some(raw) => {
            check_len(t, n * 4, raw.len())?;
            raw.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
        }
        None => t.float_data.clone(),
    };
    check_len(t, n, values.len())?;
    Ok(values)
}

/// Values of an `INT64` tensor.
pub fn int64_values(t: &TensorProto) -> Result<Vec<i64>, TensorError> {
    check_inline(t)?;
    let dt = t.data_type.unwrap_or(0);
    if dt != data_type::INT64 {
        return Err(fail(t, format!("expected INT64, found {}", data_type::name(dt))));
    }
    let n = element_count(&dims(t)?).ok_or_else(|| fail(t, "element count overflows"))?;
    let values: Vec<i64> = match t.raw_data.as_deref() {
        Some(raw) => {
            check_len(t, n * 8, raw.len())?;
            raw.chunks_exact(8).map(|c| i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]])).collect()
        }
        None => t.int64_data.clone(),
    };
    check_len(t, n, values.len())?;
    Ok(values)
}

/// A `FLOAT` tensor named `name` holding `values` (little-endian `raw_data`).
pub fn float_tensor(name: &str, dims: &[usize], values: &[f32]) -> TensorProto {
    let mut raw = Vec::with_capacity(values.len() * 4);
    for v in values {
        raw.extend_from_slice(&v.to_le_bytes());
    }
    TensorProto {
        dims: dims.iter().map(|&d| d as i64).collect(),
        data_type: Some(data_type::FLOAT),
        name: Some(name.to_owned()),
        raw_data: Some(raw),
        ..Default::default()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn tensor(dt: i32, dims: &[i64], raw: Option<Vec<u8>>, int32: Vec<i32>) -> TensorProto {
        TensorProto {
            dims: dims.to_vec(),
            data_type: Some(dt),
            name: Some("t".into()),
            raw_data: raw,
            int32_data: int32,
            ..Default::default()
        }
    }

    #[test]
    fn int8_raw_and_int32_data() {
        let raw = tensor(data_type::INT8, &[3], Some(vec![0xff, 0x7f, 0x80]), vec![]);
        assert_eq!(integer_values(&raw), Ok(vec![-1, 127, -128]));
        let typed = tensor(data_type::INT8, &[3], None, vec![-1, 127, -128]);
        assert_eq!(integer_values(&typed), Ok(vec![-1, 127, -128]));
        let uint = tensor(data_type::UINT8, &[2], Some(vec![0xff, 1]), vec![]);
        assert_eq!(integer_values(&uint), Ok(vec![255, 1]));
    }

    #[test]
    fn int4_unpacks_low_nibble_first() {
        // 0x9f: low 0xf = -1, high 0x9 = -7; 0x07: low 7, high (padding) dropped.
        let t = tensor(data_type::INT4, &[3], Some(vec![0x9f, 0x07]), vec![]);
        assert_eq!(integer_values(&t), Ok(vec![-1, -7, 7]));
        let u = tensor(data_type::UINT4, &[3], None, vec![0x9f, 0x07]);
        assert_eq!(integer_values(&u), Ok(vec![15, 9, 7]));
    }

    #[test]
    fn length_mismatch_is_an_error() {
        let t = tensor(data_type::INT8, &[4], Some(vec![1, 2, 3]), vec![]);
        assert!(integer_values(&t).is_err());
        let f = TensorProto {
            dims: vec![2],
            data_type: Some(data_type::FLOAT),
            float_data: vec![1.0],
            ..Default::default()
        };
        assert!(float_values(&f).is_err());
    }

    #[test]
    fn float_round_trip() {
        let t = float_tensor("w", &[2, 2], &[1.0, -2.5, 3.25, 0.0]);
        assert_eq!(float_values(&t), Ok(vec![1.0, -2.5, 3.25, 0.0]));
        assert_eq!(t.dims, vec![2, 2]);
    }
}
