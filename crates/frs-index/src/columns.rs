//! Per-field columns of a face set, so a filter scan reads compact arrays instead of chasing a
//! pointer per face: numbers as `i64`/`f64` arrays with presence bits, booleans as two bit vectors,
//! strings (and `external_image_id`) as 32-bit hashes confirmed against the entry on a hash match.

use crate::bits::Bits;
use crate::filter::Predicate;
use crate::index::grow;
use crate::schema::{FieldType, FieldValue};

/// One custom field's values, by slot.
#[derive(Clone, Debug)]
pub(crate) enum Column {
    Int {
        values: Vec<i64>,
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

/// A number read from a column, for sorting.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Number {
    Int(i64),
    Float(f64),
}

impl Column {
    pub(crate) fn new(field_type: FieldType) -> Column {
        match field_type {
            FieldType::Integer | FieldType::Long => Column::Int { values: Vec::new(), present: Bits::default() },
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
                grow(values, 1, 256);
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
                values[slot] = v.unwrap_or(0);
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
            Column::Int { values, present } => values.capacity() * 8 + present.heap_bytes(),
            Column::Float { values, present } => values.capacity() * 8 + present.heap_bytes(),
            Column::Bool { values, present } => values.heap_bytes() + present.heap_bytes(),
            Column::Str { hashes } => hashes.capacity() * 4,
        }
    }

    /// The numeric value of a slot, for sorting; `None` if absent or not numeric.
    #[inline]
    pub(crate) fn number(&self, slot: usize) -> Option<Number> {
        match self {
            Column::Int { values, present } => present.get(slot).then(|| Number::Int(values[slot])),
            Column::Float { values, present } => present.get(slot).then(|| Number::Float(values[slot])),
            Column::Bool { .. } | Column::Str { .. } => None,
        }
    }

    /// Slots whose value satisfies `predicate`. For string columns the result holds every slot whose
    /// hash matches: the caller confirms those against the entries.
    pub(crate) fn scan(&self, predicate: &Predicate, len: usize) -> Bits {
        match (self, predicate) {
            (Column::Int { values, present }, &Predicate::IntRange { lo, hi }) => {
                let mut bits = Bits::from_values(&values[..len], |&v| (lo <= v) & (v <= hi));
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
