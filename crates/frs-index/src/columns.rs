//! Per-field columns of a face set, so a filter scan reads compact arrays instead of chasing a
//! pointer per face: numbers as `i32`-or-`i64`/`f64` arrays with presence bits, booleans as two bit vectors,
//! strings (and `external_image_id`) as 32-bit hashes confirmed against the entry on a hash match.

use crate::bits::Bits;
use crate::filter::Predicate;
use crate::index::grow;
use crate::schema::{FieldType, FieldValue};

/// One custom field's values, by slot.
#[derive(Clone, Debug)]
pub(crate) enum Column {
    Int {
        values: IntValues,
        present: Bits,
    },
    Float {
        values: Vec<f64>,
        present: Bits,
    },
    Bool {
        values: Bits,
        present: Bits,
    },
    /// [`str_hash`] of the value; 0 = absent.
    Str {
        hashes: Vec<u32>,
    },
}

/// An integer column's values: `i32` while every value fits, `i64` from the first that does not
/// (a range filter over a large set then reads half the bytes).
#[derive(Clone, Debug)]
pub(crate) enum IntValues {
    Narrow(Vec<i32>),
    Wide(Vec<i64>),
}

impl IntValues {
    fn push(&mut self, v: i64) {
        if let IntValues::Narrow(narrow) = self
            && let Ok(v) = i32::try_from(v)
        {
            grow(narrow, 1, 256);
            narrow.push(v);
            return;
        }
        let wide = self.widen();
        grow(wide, 1, 256);
        wide.push(v);
    }

    fn set(&mut self, slot: usize, v: i64) {
        if let IntValues::Narrow(narrow) = self
            && let Ok(v) = i32::try_from(v)
        {
            narrow[slot] = v;
            return;
        }
        self.widen()[slot] = v;
    }

    /// The values as `i64` (converted once, when the first value too large for `i32` arrives).
    fn widen(&mut self) -> &mut Vec<i64> {
        if let IntValues::Narrow(narrow) = self {
            *self = IntValues::Wide(narrow.iter().map(|&v| i64::from(v)).collect());
        }
        match self {
            IntValues::Wide(wide) => wide,
            IntValues::Narrow(_) => unreachable!("widened above"),
        }
    }

    fn get(&self, slot: usize) -> i64 {
        match self {
            IntValues::Narrow(narrow) => i64::from(narrow[slot]),
            IntValues::Wide(wide) => wide[slot],
        }
    }

    /// Slots `0..len` whose value lies in `lo..=hi`.
    fn scan(&self, lo: i64, hi: i64, len: usize) -> Bits {
        match self {
            IntValues::Narrow(narrow) => {
                if lo > i64::from(i32::MAX) || hi < i64::from(i32::MIN) {
                    return Bits::zeros(len);
                }
                let (lo, hi) = (lo.max(i64::from(i32::MIN)) as i32, hi.min(i64::from(i32::MAX)) as i32);
                Bits::from_values(&narrow[..len], |&v| (lo <= v) & (v <= hi))
            }
            IntValues::Wide(wide) => Bits::from_values(&wide[..len], |&v| (lo <= v) & (v <= hi)),
        }
    }

    fn swap_remove(&mut self, slot: usize) {
        match self {
            IntValues::Narrow(narrow) => {
                narrow.swap_remove(slot);
            }
            IntValues::Wide(wide) => {
                wide.swap_remove(slot);
            }
        }
    }

    fn reserve_exact(&mut self, additional: usize) {
        match self {
            IntValues::Narrow(narrow) => narrow.reserve_exact(additional),
            IntValues::Wide(wide) => wide.reserve_exact(additional),
        }
    }

    fn shrink_to(&mut self, len: usize) {
        match self {
            IntValues::Narrow(narrow) => narrow.shrink_to(len),
            IntValues::Wide(wide) => wide.shrink_to(len),
        }
    }

    fn heap_bytes(&self) -> usize {
        match self {
            IntValues::Narrow(narrow) => narrow.capacity() * 4,
            IntValues::Wide(wide) => wide.capacity() * 8,
        }
    }
}

/// A number read from a column, for sorting.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Number {
    Int(i64),
    Float(f64),
}

impl Column {
    pub(crate) fn new(field_type: FieldType) -> Column {
        match field_type {
            FieldType::Integer | FieldType::Long => {
                Column::Int { values: IntValues::Narrow(Vec::new()), present: Bits::default() }
            }
            FieldType::Float | FieldType::Double => Column::Float { values: Vec::new(), present: Bits::default() },
            FieldType::Boolean => Column::Bool { values: Bits::default(), present: Bits::default() },
            FieldType::String => Column::Str { hashes: Vec::new() },
        }
    }

    /// Appends a slot. A value of another type than the column's is stored as absent, except that an
    /// integer in a float column is converted.
    pub(crate) fn push(&mut self, value: Option<&FieldValue>) {
        match self {
            Column::Int { values, present } => {
                let v = match value {
                    Some(FieldValue::Integer(i)) => Some(*i),
                    _ => None,
                };
                values.push(v.unwrap_or(0));
                present.push(v.is_some());
            }
            Column::Float { values, present } => {
                let v = float_of(value);
                grow(values, 1, 256);
                values.push(v.unwrap_or(0.0));
                present.push(v.is_some());
            }
            Column::Bool { values, present } => {
                let v = match value {
                    Some(FieldValue::Boolean(b)) => Some(*b),
                    _ => None,
                };
                values.push(v.unwrap_or(false));
                present.push(v.is_some());
            }
            Column::Str { hashes } => {
                grow(hashes, 1, 256);
                hashes.push(match value {
                    Some(FieldValue::String(s)) => str_hash(s),
                    _ => 0,
                });
            }
        }
    }

    /// Overwrites one slot (rules as in [`Column::push`]).
    pub(crate) fn set(&mut self, slot: usize, value: Option<&FieldValue>) {
        match self {
            Column::Int { values, present } => {
                let v = match value {
                    Some(FieldValue::Integer(i)) => Some(*i),
                    _ => None,
                };
                values.set(slot, v.unwrap_or(0));
                present.set(slot, v.is_some());
            }
            Column::Float { values, present } => {
                let v = float_of(value);
                values[slot] = v.unwrap_or(0.0);
                present.set(slot, v.is_some());
            }
            Column::Bool { values, present } => {
                let v = match value {
                    Some(FieldValue::Boolean(b)) => Some(*b),
                    _ => None,
                };
                values.set(slot, v.unwrap_or(false));
                present.set(slot, v.is_some());
            }
            Column::Str { hashes } => {
                hashes[slot] = match value {
                    Some(FieldValue::String(s)) => str_hash(s),
                    _ => 0,
                };
            }
        }
    }

    pub(crate) fn swap_remove(&mut self, slot: usize) {
        match self {
            Column::Int { values, present } => {
                values.swap_remove(slot);
                present.swap_remove(slot);
            }
            Column::Float { values, present } => {
                values.swap_remove(slot);
                present.swap_remove(slot);
            }
            Column::Bool { values, present } => {
                values.swap_remove(slot);
                present.swap_remove(slot);
            }
            Column::Str { hashes } => {
                hashes.swap_remove(slot);
            }
        }
    }

    pub(crate) fn reserve_exact(&mut self, additional: usize) {
        match self {
            Column::Int { values, present } => {
                values.reserve_exact(additional);
                present.reserve_exact(additional);
            }
            Column::Float { values, present } => {
                values.reserve_exact(additional);
                present.reserve_exact(additional);
            }
            Column::Bool { values, present } => {
                values.reserve_exact(additional);
                present.reserve_exact(additional);
            }
            Column::Str { hashes } => hashes.reserve_exact(additional),
        }
    }

    pub(crate) fn shrink_to(&mut self, len: usize) {
        match self {
            Column::Int { values, present } => {
                values.shrink_to(len);
                present.shrink_to(len);
            }
            Column::Float { values, present } => {
                values.shrink_to(len);
                present.shrink_to(len);
            }
            Column::Bool { values, present } => {
                values.shrink_to(len);
                present.shrink_to(len);
            }
            Column::Str { hashes } => hashes.shrink_to(len),
        }
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        match self {
            Column::Int { values, present } => values.heap_bytes() + present.heap_bytes(),
            Column::Float { values, present } => values.capacity() * 8 + present.heap_bytes(),
            Column::Bool { values, present } => values.heap_bytes() + present.heap_bytes(),
            Column::Str { hashes } => hashes.capacity() * 4,
        }
    }

    /// The numeric value of a slot, for sorting; `None` if absent or not numeric.
    #[inline]
    pub(crate) fn number(&self, slot: usize) -> Option<Number> {
        match self {
            Column::Int { values, present } => present.get(slot).then(|| Number::Int(values.get(slot))),
            Column::Float { values, present } => present.get(slot).then(|| Number::Float(values[slot])),
            Column::Bool { .. } | Column::Str { .. } => None,
        }
    }

    /// Slots whose value satisfies `predicate`. For string columns the result holds every slot whose
    /// hash matches: the caller confirms those against the entries.
    pub(crate) fn scan(&self, predicate: &Predicate, len: usize) -> Bits {
        match (self, predicate) {
            (Column::Int { values, present }, &Predicate::IntRange { lo, hi }) => {
                let mut bits = values.scan(lo, hi, len);
                bits.and_with(present);
                bits
            }
            (Column::Float { values, present }, predicate @ Predicate::FloatRange { .. }) => {
                let mut bits = Bits::from_values(&values[..len], |&v| predicate.matches_float(v));
                bits.and_with(present);
                bits
            }
            (Column::Bool { values, present }, &Predicate::Bool(wanted)) => {
                let mut bits = values.clone();
                if !wanted {
                    bits.negate();
                }
                bits.and_with(present);
                bits
            }
            (Column::Str { hashes }, Predicate::Str(s)) => hash_scan(hashes, str_hash(s), len),
            _ => Bits::zeros(len),
        }
    }
}

/// Slots whose hash is `wanted`.
pub(crate) fn hash_scan(hashes: &[u32], wanted: u32, len: usize) -> Bits {
    Bits::from_values(&hashes[..len], |&h| h == wanted)
}

fn float_of(value: Option<&FieldValue>) -> Option<f64> {
    match value {
        Some(FieldValue::Float(f)) => Some(*f),
        Some(FieldValue::Integer(i)) => Some(*i as f64),
        _ => None,
    }
}

/// FNV-1a of the bytes, never 0 (0 marks an absent value).
pub(crate) fn str_hash(s: &str) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for &b in s.as_bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values stay `i32` until one does not fit, then every value is kept; range scans give the
    /// same slots at either width, bounds beyond `i32` included.
    #[test]
    fn int_values_widen_on_the_first_large_value_and_scan_alike() {
        let small: Vec<i64> = (0..300).map(|i| (i * 7919) % 1000 - 500).collect();
        let mut values = IntValues::Narrow(Vec::new());
        for &v in &small {
            values.push(v);
        }
        assert!(matches!(values, IntValues::Narrow(_)));
        let ranges = [(-100, 100), (i64::MIN, 0), (0, i64::MAX), (i64::from(i32::MAX) + 1, i64::MAX), (5, 4)];
        let expected = |values: &[i64], (lo, hi): (i64, i64)| -> Vec<bool> {
            values.iter().map(|&v| lo <= v && v <= hi).collect()
        };
        let bits_of = |values: &IntValues, (lo, hi): (i64, i64), len: usize| -> Vec<bool> {
            let bits = values.scan(lo, hi, len);
            (0..len).map(|i| bits.get(i)).collect()
        };
        for range in ranges {
            assert_eq!(bits_of(&values, range, small.len()), expected(&small, range), "{range:?}");
        }
        values.set(3, 1 << 40);
        values.push(-(1 << 41));
        assert!(matches!(values, IntValues::Wide(_)));
        let mut all = small.clone();
        all[3] = 1 << 40;
        all.push(-(1 << 41));
        assert_eq!((0..all.len()).map(|i| values.get(i)).collect::<Vec<_>>(), all);
        for range in ranges {
            assert_eq!(bits_of(&values, range, all.len()), expected(&all, range), "{range:?}");
        }
    }
}
