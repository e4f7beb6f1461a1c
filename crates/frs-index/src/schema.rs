//! Custom-field schemas (`external_fields` of create-face-set) and the typed values of one face.

use serde_json::{Map, Number, Value};

/// Most custom fields a face set may declare (FRS §5.3).
pub const MAX_FIELDS: usize = 10;
/// Longest custom-field name, in characters (FRS §5.3).
pub const MAX_FIELD_NAME_LEN: usize = 36;
/// Longest string value, in characters (FRS §5.3).
pub const MAX_STRING_VALUE_LEN: usize = 256;
/// Names a custom field may not take: FRS's built-in fields and its search engine's meta fields.
pub const RESERVED_NAMES: [&str; 9] =
    ["external_image_id", "bounding_box", "similarity", "face_id", "create_time", "vector", "_id", "_all", "_source"];

/// The type of a custom field. Wire names are lower case: `"string"`, `"integer"`, `"long"`, `"float"`,
/// `"double"`, `"boolean"`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum FieldType {
    /// Text of 1–256 letters, digits, `_` or `-`.
    String,
    /// A 32-bit signed integer.
    Integer,
    /// A 64-bit signed integer.
    Long,
    /// A finite number within `f32`'s range (kept as the `f64` given, not rounded to `f32`).
    Float,
    /// A finite `f64`.
    Double,
    /// `true` or `false`.
    Boolean,
}

impl FieldType {
    /// The lower-case wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            FieldType::String => "string",
            FieldType::Integer => "integer",
            FieldType::Long => "long",
            FieldType::Float => "float",
            FieldType::Double => "double",
            FieldType::Boolean => "boolean",
        }
    }

    /// The type named `name`, in any ASCII case.
    pub fn from_name(name: &str) -> Option<FieldType> {
        [
            FieldType::String,
            FieldType::Integer,
            FieldType::Long,
            FieldType::Float,
            FieldType::Double,
            FieldType::Boolean,
        ]
        .into_iter()
        .find(|t| t.as_str().eq_ignore_ascii_case(name))
    }

    /// Integer, long, float or double: the types search can sort by and filter by range.
    pub fn is_numeric(self) -> bool {
        matches!(self, FieldType::Integer | FieldType::Long | FieldType::Float | FieldType::Double)
    }
}

/// The value of one custom field. `Integer` holds integer and long fields, `Float` float and double fields.
#[derive(Clone, Debug, PartialEq)]
pub enum FieldValue {
    /// A string field's value.
    String(Box<str>),
    /// An integer or long field's value.
    Integer(i64),
    /// A float or double field's value (always finite).
    Float(f64),
    /// A boolean field's value.
    Boolean(bool),
}

impl FieldValue {
    /// The JSON form: a string, number or boolean.
    pub fn to_json(&self) -> Value {
        match self {
            FieldValue::String(s) => Value::String(s.to_string()),
            FieldValue::Integer(i) => Value::Number(Number::from(*i)),
            FieldValue::Float(f) => Number::from_f64(*f).map_or(Value::Null, Value::Number),
            FieldValue::Boolean(b) => Value::Bool(*b),
        }
    }
}

/// Values of one face, by schema position; `None` (or a position past the end) is an absent value.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct FieldValues(pub Vec<Option<FieldValue>>);

impl FieldValues {
    /// `self` with every value present in `update` replaced (FRS update-face merges): positions `update`
    /// leaves absent keep `self`'s value. The result is as long as the longer of the two.
    pub fn merged(&self, update: &FieldValues) -> FieldValues {
        let len = self.0.len().max(update.0.len());
        FieldValues(
            (0..len)
                .map(|i| match update.0.get(i) {
                    Some(Some(value)) => Some(value.clone()),
                    _ => self.0.get(i).cloned().flatten(),
                })
                .collect(),
        )
    }

    /// The value at schema position `position`, if present.
    pub fn get(&self, position: usize) -> Option<&FieldValue> {
        self.0.get(position).and_then(Option::as_ref)
    }
}

/// Why a schema or a face's field values were rejected. Each message names the field.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    /// `external_fields` (or a field's type declaration) is not a JSON object.
    #[error("{0} must be a JSON object")]
    NotAnObject(String),
    /// More than [`MAX_FIELDS`] fields declared.
    #[error("at most {max} custom fields may be declared, got {got}", max = MAX_FIELDS)]
    TooManyFields {
        /// How many were declared.
        got: usize,
    },
    /// A field name is empty, longer than 36 characters, or has a character other than `[0-9A-Za-z_-]`.
    #[error("custom field name {0:?} must be 1-36 characters of letters, digits, '_' or '-'")]
    InvalidName(String),
    /// A field name is one of [`RESERVED_NAMES`].
    #[error("custom field name {0:?} is reserved")]
    ReservedName(String),
    /// A field's declaration has no string `type` or an unknown one.
    #[error("custom field {field:?}: {reason}")]
    InvalidType {
        /// The field.
        field: String,
        /// What is wrong, e.g. `unknown type "int"`.
        reason: String,
    },
    /// A value names a field the schema does not declare (also an unknown `return_fields` entry, FRS.0030).
    #[error("custom field {0:?} is not defined in the face set")]
    UnknownField(String),
    /// A value does not fit its field's type or limits.
    #[error("custom field {field:?}: {reason}")]
    InvalidValue {
        /// The field.
        field: String,
        /// What is wrong, e.g. `expected an integer within 32 bits, got 3000000000`.
        reason: String,
    },
}

/// The custom-field schema of a face set: at most 10 named, typed fields in declaration order.
///
/// Declaration order is the iteration order of the `serde_json::Map` given to [`Schema::parse`]: the
/// order of the JSON text if serde_json's `preserve_order` feature is on in the build, else name order
/// (this crate does not turn the feature on). Positions index [`FieldValues`]; they are only meaningful
/// in memory, so persist values by name ([`Schema::values_to_json`]) and the schema through
/// [`Schema::to_json`], which round-trips through [`Schema::parse`] in either build.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Schema {
    fields: Vec<(Box<str>, FieldType)>,
}

impl Schema {
    /// A schema without custom fields.
    pub fn empty() -> Schema {
        Schema::default()
    }

    /// Parses the `external_fields` object of create-face-set: `{"name": {"type": "integer"}, ...}`.
    ///
    /// Rules (FRS §3.12, §5.3): at most 10 fields; names of 1–36 characters of `[0-9A-Za-z_-]`, none of
    /// [`RESERVED_NAMES`]; each declaration an object whose `"type"` is a string naming a [`FieldType`] in
    /// any ASCII case (other keys of the declaration are ignored). `null` gives the empty schema. A name
    /// repeated in the JSON text keeps its last declaration (serde_json's map already does this).
    pub fn parse(value: &Value) -> Result<Schema, SchemaError> {
        let map = match value {
            Value::Null => return Ok(Schema::empty()),
            Value::Object(map) => map,
            _ => return Err(SchemaError::NotAnObject("external_fields".into())),
        };
        if map.len() > MAX_FIELDS {
            return Err(SchemaError::TooManyFields { got: map.len() });
        }
        let mut fields = Vec::with_capacity(map.len());
        for (name, declaration) in map {
            if !valid_field_name(name) {
                return Err(SchemaError::InvalidName(name.clone()));
            }
            if RESERVED_NAMES.contains(&name.as_str()) {
                return Err(SchemaError::ReservedName(name.clone()));
            }
            let Value::Object(declaration) = declaration else {
                return Err(SchemaError::NotAnObject(format!("the declaration of custom field {name:?}")));
            };
            let field_type = match declaration.get("type") {
                None => return Err(invalid_type(name, "missing \"type\"".into())),
                Some(Value::String(t)) => {
                    FieldType::from_name(t).ok_or_else(|| invalid_type(name, format!("unknown type {t:?}")))?
                }
                Some(other) => return Err(invalid_type(name, format!("\"type\" must be a string, got {other}"))),
            };
            fields.push((name.as_str().into(), field_type));
        }
        Ok(Schema { fields })
    }

    /// The wire form, `{"name": {"type": "integer"}, ...}`, built as a `serde_json::Map` in declaration
    /// order (which the map keeps only with serde_json's `preserve_order`; see the type's doc).
    pub fn to_json(&self) -> Value {
        Value::Object(
            self.fields
                .iter()
                .map(|(name, t)| {
                    let mut declaration = Map::new();
                    declaration.insert("type".into(), Value::String(t.as_str().into()));
                    (name.to_string(), Value::Object(declaration))
                })
                .collect(),
        )
    }

    /// Number of custom fields.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// Whether the schema has no custom fields.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// Position and type of the field named `name` (exact, case-sensitive match).
    pub fn field(&self, name: &str) -> Option<(usize, FieldType)> {
        self.fields.iter().position(|(n, _)| &**n == name).map(|i| (i, self.fields[i].1))
    }

    /// Name and type of the field at `position`.
    pub fn field_at(&self, position: usize) -> Option<(&str, FieldType)> {
        self.fields.get(position).map(|(n, t)| (&**n, *t))
    }

    /// Every field, in declaration order.
    pub fn fields(&self) -> impl Iterator<Item = (&str, FieldType)> {
        self.fields.iter().map(|(n, t)| (&**n, *t))
    }

    /// Typed values of one face from its `external_fields` JSON object (`null` = no values).
    ///
    /// An unknown name or a value of the wrong JSON type is an error. `integer` needs an integral JSON
    /// number within `i32` (`5.0` and `5e2` count as integral), `long` one within `i64`; `float` and
    /// `double` any number (integers accepted; `float` also within `f32`'s range); `boolean` a JSON bool;
    /// `string` a JSON string of 1–256 characters, each `char::is_alphanumeric()`, `_` or `-` (Unicode
    /// letters allowed on purpose, so names like 张三 work; spaces, `:` and brackets are not, which also
    /// keeps every value writable as an unquoted filter term). Fields not given, or given as `null`, are
    /// absent. The result has one position per schema field.
    pub fn parse_values(&self, value: &Value) -> Result<FieldValues, SchemaError> {
        let mut values = vec![None; self.fields.len()];
        let map = match value {
            Value::Null => return Ok(FieldValues(values)),
            Value::Object(map) => map,
            _ => return Err(SchemaError::NotAnObject("external_fields".into())),
        };
        for (name, value) in map {
            let (position, field_type) = self.field(name).ok_or_else(|| SchemaError::UnknownField(name.clone()))?;
            if value.is_null() {
                continue;
            }
            let typed = parse_value(field_type, value)
                .map_err(|reason| SchemaError::InvalidValue { field: name.clone(), reason })?;
            values[position] = Some(typed);
        }
        Ok(FieldValues(values))
    }

    /// JSON object of the present values, by field name; with `only`, just those schema positions (for
    /// `return_fields`; positions out of range are skipped).
    pub fn values_to_json(&self, values: &FieldValues, only: Option<&[usize]>) -> Map<String, Value> {
        let entry = |position: usize| {
            let (name, _) = self.fields.get(position)?;
            let value = values.get(position)?;
            Some((name.to_string(), value.to_json()))
        };
        match only {
            Some(positions) => positions.iter().filter_map(|&p| entry(p)).collect(),
            None => (0..self.fields.len()).filter_map(entry).collect(),
        }
    }

    /// Positions of the named fields, in the order given, for `return_fields`; an unknown name is
    /// [`SchemaError::UnknownField`] (FRS.0030).
    pub fn positions(&self, names: &[String]) -> Result<Vec<usize>, SchemaError> {
        names
            .iter()
            .map(|name| self.field(name).map(|(p, _)| p).ok_or_else(|| SchemaError::UnknownField(name.clone())))
            .collect()
    }
}

fn invalid_type(field: &str, reason: String) -> SchemaError {
    SchemaError::InvalidType { field: field.into(), reason }
}

/// 1–36 characters of `[0-9A-Za-z_-]`.
pub(crate) fn valid_field_name(name: &str) -> bool {
    (1..=MAX_FIELD_NAME_LEN).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Whether `s` is a valid string value: 1–256 characters, each alphanumeric (Unicode), `_` or `-`.
pub fn valid_string_value(s: &str) -> bool {
    let mut count = 0;
    for c in s.chars() {
        count += 1;
        if count > MAX_STRING_VALUE_LEN || !(c.is_alphanumeric() || c == '_' || c == '-') {
            return false;
        }
    }
    count > 0
}

fn parse_value(field_type: FieldType, value: &Value) -> Result<FieldValue, String> {
    match field_type {
        FieldType::String => match value {
            Value::String(s) if valid_string_value(s) => Ok(FieldValue::String(s.as_str().into())),
            Value::String(s) => {
                Err(format!("a string value must be 1-{MAX_STRING_VALUE_LEN} letters, digits, '_' or '-', got {s:?}"))
            }
            other => Err(format!("expected a string, got {other}")),
        },
        FieldType::Integer => integral(value, i64::from(i32::MIN), i64::from(i32::MAX))
            .map(FieldValue::Integer)
            .ok_or_else(|| format!("expected an integer within 32 bits, got {value}")),
        FieldType::Long => integral(value, i64::MIN, i64::MAX)
            .map(FieldValue::Integer)
            .ok_or_else(|| format!("expected an integer within 64 bits, got {value}")),
        FieldType::Float => match value.as_f64() {
            Some(f) if (f as f32).is_finite() => Ok(FieldValue::Float(f)),
            _ => Err(format!("expected a number within the float range, got {value}")),
        },
        FieldType::Double => match value.as_f64() {
            Some(f) if f.is_finite() => Ok(FieldValue::Float(f)),
            _ => Err(format!("expected a number, got {value}")),
        },
        FieldType::Boolean => {
            value.as_bool().map(FieldValue::Boolean).ok_or_else(|| format!("expected true or false, got {value}"))
        }
    }
}

/// The JSON number as an integer in `min..=max`, if it is integral.
fn integral(value: &Value, min: i64, max: i64) -> Option<i64> {
    let Value::Number(n) = value else { return None };
    let i = if let Some(i) = n.as_i64() {
        i
    } else if n.is_u64() {
        return None; // beyond i64::MAX
    } else {
        let f = n.as_f64()?;
        // 2^63 is exactly representable; every f64 in [-2^63, 2^63) converts exactly when integral.
        if f.fract() != 0.0 || !(-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&f) {
            return None;
        }
        f as i64
    };
    (min..=max).contains(&i).then_some(i)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn schema(value: Value) -> Schema {
        Schema::parse(&value).expect("valid schema")
    }

    #[test]
    fn parses_every_type_in_any_case() {
        let s = schema(json!({
            "timestamp": {"type": "integer"}, "location": {"type": "LONG"}, "male": {"type": "Boolean"},
            "name": {"type": "string"}, "weight": {"type": "double"}, "score": {"type": "Float"}
        }));
        assert_eq!(s.len(), 6);
        assert_eq!(s.field("timestamp").map(|f| f.1), Some(FieldType::Integer));
        assert_eq!(s.field("location").map(|f| f.1), Some(FieldType::Long));
        assert_eq!(s.field("male").map(|f| f.1), Some(FieldType::Boolean));
        assert_eq!(s.field("name").map(|f| f.1), Some(FieldType::String));
        assert_eq!(s.field("weight").map(|f| f.1), Some(FieldType::Double));
        assert_eq!(s.field("score").map(|f| f.1), Some(FieldType::Float));
        assert_eq!(s.field("Name"), None);
        let (p, _) = s.field("score").expect("declared");
        assert_eq!(s.field_at(p), Some(("score", FieldType::Float)));
        assert_eq!(s.fields().count(), 6);
    }

    #[test]
    fn null_and_empty_give_the_empty_schema() {
        assert!(schema(Value::Null).is_empty());
        assert!(schema(json!({})).is_empty());
        assert_eq!(Schema::empty(), schema(json!({})));
    }

    #[test]
    fn to_json_round_trips() {
        let s = schema(json!({"a": {"type": "integer"}, "b-2": {"type": "STRING"}, "c_3": {"type": "double", "x": 1}}));
        let wire = s.to_json();
        assert_eq!(wire, json!({"a": {"type": "integer"}, "b-2": {"type": "string"}, "c_3": {"type": "double"}}));
        assert_eq!(Schema::parse(&wire).expect("round trip"), s);
        let text = serde_json::to_string(&wire).expect("serialise");
        assert_eq!(Schema::parse(&serde_json::from_str(&text).expect("parse")).expect("round trip"), s);
    }

    #[test]
    fn ten_fields_accepted_eleven_rejected() {
        let decl = |n: usize| -> Value {
            Value::Object((0..n).map(|i| (format!("f{i}"), json!({"type": "integer"}))).collect())
        };
        assert_eq!(schema(decl(10)).len(), 10);
        assert!(matches!(Schema::parse(&decl(11)), Err(SchemaError::TooManyFields { got: 11 })));
    }

    #[test]
    fn names_are_checked() {
        let long = "a".repeat(36);
        assert_eq!(schema(json!({ long.clone(): {"type": "long"} })).field(&long).map(|f| f.0), Some(0));
        for bad in ["", &"a".repeat(37), "has space", "dot.ted", "colon:", "张三", "a!"] {
            let err = Schema::parse(&json!({ bad: {"type": "long"} })).expect_err(bad);
            assert!(matches!(err, SchemaError::InvalidName(ref n) if n == bad), "{bad:?}: {err}");
        }
        for reserved in RESERVED_NAMES {
            let err = Schema::parse(&json!({ reserved: {"type": "string"} })).expect_err(reserved);
            assert!(matches!(err, SchemaError::ReservedName(ref n) if n == reserved), "{err}");
            assert!(err.to_string().contains(reserved));
        }
        // Only the exact spelling is reserved.
        assert_eq!(schema(json!({"Face_ID": {"type": "string"}})).len(), 1);
    }

    #[test]
    fn types_are_checked() {
        for bad in [json!({"type": "int"}), json!({"type": 1}), json!({}), json!({"type": null}), json!({"type": ""})] {
            let err = Schema::parse(&json!({ "f": bad })).expect_err("bad type");
            assert!(matches!(err, SchemaError::InvalidType { ref field, .. } if field == "f"), "{err}");
        }
        for bad in [json!("integer"), json!(["integer"]), json!(null)] {
            let err = Schema::parse(&json!({ "f": bad })).expect_err("not an object");
            assert!(matches!(err, SchemaError::NotAnObject(_)), "{err}");
            assert!(err.to_string().contains("\"f\""), "{err}");
        }
        for bad in [json!([]), json!("x"), json!(1)] {
            assert!(matches!(Schema::parse(&bad), Err(SchemaError::NotAnObject(_))));
        }
    }

    fn all_types() -> Schema {
        schema(json!({
            "i": {"type": "integer"}, "l": {"type": "long"}, "f": {"type": "float"},
            "d": {"type": "double"}, "b": {"type": "boolean"}, "s": {"type": "string"}
        }))
    }

    fn value_of(s: &Schema, field: &str, v: Value) -> Result<Option<FieldValue>, SchemaError> {
        let (p, _) = s.field(field).expect("declared");
        s.parse_values(&json!({ field: v })).map(|mut values| values.0[p].take())
    }

    #[test]
    fn integer_values() {
        let s = all_types();
        let ok = |v: Value| value_of(&s, "i", v).expect("valid");
        assert_eq!(ok(json!(5)), Some(FieldValue::Integer(5)));
        assert_eq!(ok(json!(-5)), Some(FieldValue::Integer(-5)));
        assert_eq!(ok(json!(5.0)), Some(FieldValue::Integer(5)));
        assert_eq!(ok(json!(i32::MAX)), Some(FieldValue::Integer(i64::from(i32::MAX))));
        assert_eq!(ok(json!(i32::MIN)), Some(FieldValue::Integer(i64::from(i32::MIN))));
        assert_eq!(ok(Value::Null), None);
        for bad in [json!(i64::from(i32::MAX) + 1), json!(i64::from(i32::MIN) - 1), json!(5.5), json!("5"), json!(true)]
        {
            let err = value_of(&s, "i", bad.clone()).expect_err("invalid");
            assert!(matches!(err, SchemaError::InvalidValue { ref field, .. } if field == "i"), "{bad}: {err}");
        }
    }

    #[test]
    fn long_values() {
        let s = all_types();
        let ok = |v: Value| value_of(&s, "l", v).expect("valid");
        assert_eq!(ok(json!(i64::MAX)), Some(FieldValue::Integer(i64::MAX)));
        assert_eq!(ok(json!(i64::MIN)), Some(FieldValue::Integer(i64::MIN)));
        assert_eq!(ok(json!(1700000000000i64)), Some(FieldValue::Integer(1_700_000_000_000)));
        assert_eq!(ok(json!(-(2f64.powi(63)))), Some(FieldValue::Integer(i64::MIN)));
        for bad in [json!(u64::MAX), json!(i64::MAX as u64 + 1), json!(9.3e18), json!(0.5), json!("1")] {
            assert!(value_of(&s, "l", bad.clone()).is_err(), "{bad}");
        }
    }

    #[test]
    fn float_values() {
        let s = all_types();
        assert_eq!(value_of(&s, "f", json!(1.5)).expect("valid"), Some(FieldValue::Float(1.5)));
        assert_eq!(value_of(&s, "f", json!(2)).expect("valid"), Some(FieldValue::Float(2.0)));
        assert_eq!(value_of(&s, "d", json!(-3)).expect("valid"), Some(FieldValue::Float(-3.0)));
        assert_eq!(value_of(&s, "d", json!(1e300)).expect("valid"), Some(FieldValue::Float(1e300)));
        assert!(value_of(&s, "f", json!(1e300)).is_err(), "beyond f32");
        for bad in [json!("1.5"), json!(true), json!([1.0])] {
            assert!(value_of(&s, "f", bad.clone()).is_err(), "{bad}");
            assert!(value_of(&s, "d", bad.clone()).is_err(), "{bad}");
        }
    }

    #[test]
    fn boolean_values() {
        let s = all_types();
        assert_eq!(value_of(&s, "b", json!(true)).expect("valid"), Some(FieldValue::Boolean(true)));
        assert_eq!(value_of(&s, "b", json!(false)).expect("valid"), Some(FieldValue::Boolean(false)));
        for bad in [json!("true"), json!(1), json!(0)] {
            assert!(value_of(&s, "b", bad.clone()).is_err(), "{bad}");
        }
    }

    #[test]
    fn string_values() {
        let s = all_types();
        for good in ["zhangsan", "张三", "a", "Zoë_O-Brien", "x1", &"z".repeat(256), &"张".repeat(256)] {
            assert_eq!(value_of(&s, "s", json!(good)).expect(good), Some(FieldValue::String(good.into())));
        }
        for bad in ["", "zhang san", "a:b", "(x)", "[x]", "{x}", "a\"b", "x*", "tab\t", &"z".repeat(257), "a&&b"] {
            let err = value_of(&s, "s", json!(bad)).expect_err(bad);
            assert!(err.to_string().contains("\"s\""), "{err}");
        }
        assert!(value_of(&s, "s", json!(5)).is_err());
    }

    #[test]
    fn unknown_fields_and_shapes_are_rejected() {
        let s = all_types();
        let err = s.parse_values(&json!({"nope": 1})).expect_err("unknown");
        assert!(matches!(err, SchemaError::UnknownField(ref n) if n == "nope"));
        assert!(matches!(s.parse_values(&json!([1])), Err(SchemaError::NotAnObject(_))));
        assert_eq!(s.parse_values(&Value::Null).expect("null").0, vec![None; 6]);
        assert!(Schema::empty().parse_values(&json!({"a": 1})).is_err());
    }

    #[test]
    fn values_to_json_and_positions() {
        let s = all_types();
        let input = json!({"i": 7, "s": "张三", "b": false, "d": 2.5, "l": null});
        let values = s.parse_values(&input).expect("valid");
        let out = s.values_to_json(&values, None);
        assert_eq!(Value::Object(out), json!({"i": 7, "s": "张三", "b": false, "d": 2.5}));
        let only = s.positions(&["s".into(), "l".into()]).expect("known");
        assert_eq!(Value::Object(s.values_to_json(&values, Some(&only))), json!({"s": "张三"}));
        let err = s.positions(&["s".into(), "zz".into()]).expect_err("unknown");
        assert!(matches!(err, SchemaError::UnknownField(ref n) if n == "zz"));
        // Short value vectors (e.g. FieldValues::default()) are fine.
        assert!(s.values_to_json(&FieldValues::default(), None).is_empty());
    }

    #[test]
    fn merged_replaces_present_values_only() {
        let old = FieldValues(vec![Some(FieldValue::Integer(1)), Some(FieldValue::Boolean(true)), None]);
        let update = FieldValues(vec![None, Some(FieldValue::Boolean(false)), Some(FieldValue::Float(2.0))]);
        assert_eq!(
            old.merged(&update).0,
            vec![Some(FieldValue::Integer(1)), Some(FieldValue::Boolean(false)), Some(FieldValue::Float(2.0))]
        );
        assert_eq!(FieldValues::default().merged(&old), old);
        assert_eq!(old.merged(&FieldValues::default()), old);
    }
}
