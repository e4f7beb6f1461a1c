//! Search's `sort` parameter (§3.13).

use serde_json::Value;

use crate::schema::Schema;

/// One sort key of search's `sort`: a numeric custom field (by schema position) and its direction.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SortKey {
    /// Schema position of an integer, long, float or double field.
    pub field: usize,
    /// Largest first.
    pub descending: bool,
}

/// Why a `sort` was rejected.
#[derive(Debug, thiserror::Error)]
pub enum SortError {
    /// A key names an unknown or non-numeric (string, boolean) field (FRS.0032).
    #[error("sort field {0}")]
    Unsupported(String),
    /// Not an array of single-key objects with `"asc"`/`"desc"` values (FRS.0012).
    #[error("{0}")]
    Malformed(String),
}

/// Parses `[{"timestamp": "desc"}, {"rowkey": "asc"}]`: a JSON array of single-key objects whose value
/// is `"asc"` or `"desc"` in any ASCII case; `null` and `[]` mean no sort.
///
/// An unknown or non-numeric (string/boolean) field is [`SortError::Unsupported`] (FRS.0032); anything
/// malformed is [`SortError::Malformed`] (FRS.0012), checked per entry in order. A repeated field
/// overwrites the earlier entry's direction, keeping the earlier position.
pub fn parse_sort(value: &Value, schema: &Schema) -> Result<Vec<SortKey>, SortError> {
    let items = match value {
        Value::Null => return Ok(Vec::new()),
        Value::Array(items) => items,
        other => return Err(SortError::Malformed(format!("sort must be a JSON array, got {other}"))),
    };
    let mut keys: Vec<SortKey> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let (name, direction) = match item {
            Value::Object(map) if map.len() == 1 => map.iter().next().ok_or_else(|| {
                SortError::Malformed(format!("sort entry {i} must be an object with exactly one field"))
            })?,
            _ => {
                return Err(SortError::Malformed(format!(
                    "sort entry {i} must be an object with exactly one field, got {item}"
                )));
            }
        };
        let descending = match direction.as_str() {
            Some(d) if d.eq_ignore_ascii_case("desc") => true,
            Some(d) if d.eq_ignore_ascii_case("asc") => false,
            _ => {
                return Err(SortError::Malformed(format!(
                    "sort direction of {name:?} must be \"asc\" or \"desc\", got {direction}"
                )));
            }
        };
        let field = match schema.field(name) {
            Some((position, field_type)) if field_type.is_numeric() => position,
            Some((_, field_type)) => {
                return Err(SortError::Unsupported(format!(
                    "{name:?} is a {} field, only numeric fields can be sorted",
                    field_type.as_str()
                )));
            }
            None => return Err(SortError::Unsupported(format!("{name:?} is not defined in the face set"))),
        };
        match keys.iter_mut().find(|k| k.field == field) {
            Some(earlier) => earlier.descending = descending,
            None => keys.push(SortKey { field, descending }),
        }
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn schema() -> Schema {
        Schema::parse(&json!({
            "timestamp": {"type": "long"}, "rowkey": {"type": "integer"}, "score": {"type": "float"},
            "weight": {"type": "double"}, "name": {"type": "string"}, "male": {"type": "boolean"}
        }))
        .expect("valid")
    }

    fn pos(s: &Schema, name: &str) -> usize {
        s.field(name).expect("declared").0
    }

    #[test]
    fn parses_keys_in_order() {
        let s = schema();
        let keys =
            parse_sort(&json!([{"timestamp": "desc"}, {"rowkey": "ASC"}, {"score": "Desc"}, {"weight": "asc"}]), &s)
                .expect("valid");
        assert_eq!(
            keys,
            vec![
                SortKey { field: pos(&s, "timestamp"), descending: true },
                SortKey { field: pos(&s, "rowkey"), descending: false },
                SortKey { field: pos(&s, "score"), descending: true },
                SortKey { field: pos(&s, "weight"), descending: false },
            ]
        );
        assert!(parse_sort(&json!([]), &s).expect("empty").is_empty());
        assert!(parse_sort(&Value::Null, &s).expect("null").is_empty());
    }

    #[test]
    fn repeated_field_overwrites_direction_in_place() {
        let s = schema();
        let keys =
            parse_sort(&json!([{"timestamp": "desc"}, {"rowkey": "asc"}, {"timestamp": "asc"}]), &s).expect("valid");
        assert_eq!(
            keys,
            vec![
                SortKey { field: pos(&s, "timestamp"), descending: false },
                SortKey { field: pos(&s, "rowkey"), descending: false },
            ]
        );
    }

    #[test]
    fn unknown_and_non_numeric_fields_are_unsupported() {
        let s = schema();
        for bad in
            [json!([{"name": "asc"}]), json!([{"male": "desc"}]), json!([{"nope": "asc"}]), json!([{"face_id": "asc"}])]
        {
            assert!(matches!(parse_sort(&bad, &s), Err(SortError::Unsupported(_))), "{bad}");
        }
        let err = parse_sort(&json!([{"name": "asc"}]), &s).expect_err("string");
        assert!(err.to_string().contains("name"), "{err}");
    }

    #[test]
    fn malformed_input() {
        let s = schema();
        for bad in [
            json!({"timestamp": "desc"}),
            json!("timestamp"),
            json!([{"timestamp": "down"}]),
            json!([{"timestamp": 1}]),
            json!([{"timestamp": "desc", "rowkey": "asc"}]),
            json!([{}]),
            json!(["timestamp"]),
            json!([[{"timestamp": "desc"}]]),
            json!([{"nope": "sideways"}]),
        ] {
            assert!(matches!(parse_sort(&bad, &s), Err(SortError::Malformed(_))), "{bad}");
        }
    }
}
