//! Property tests: `FaceSetIndex` against a plain model of the same faces.
//!
//! Each case draws a schema, a feature dimension and a sequence of inserts (some with duplicate ids or
//! wrong dimensions), removals and updates (replacing or merging fields), applies them to the index and
//! to a `HashMap` model, and then checks every read (`len`, `get`, `select`, `with_external_image_id`)
//! and a few searches with random filters (generated as trees, printed to text, parsed by
//! `Filter::parse` and evaluated on the model by an independent evaluator), random sorts (built as
//! JSON for `parse_sort`), `top_n` and thresholds, on every available kernel.
//!
//! Two feature regimes:
//! - exact: components are multiples of 1/8 with small numerators, so every dot product is exact in
//!   `f32` whatever the summation order: results must equal the reference exactly (ids, order and
//!   cosines), and ties are frequent, which exercises the face-id tie-break;
//! - normalised: random unit vectors. The kernels sum in another order than the reference (f64), so
//!   cosines may differ by rounding; the check is then the specification itself with a tolerance of
//!   1e-5: each hit's cosine is within 1e-5 of the reference, the set of hits may differ from the
//!   reference only by faces whose reference cosine is within 2e-5 of the cut (the last hit's cosine
//!   or the threshold), and the order is exact with respect to the index's own cosines (and sort keys).

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};

use frs_index::{
    FaceEntry, FaceId, FaceSetIndex, FieldType, FieldValue, FieldValues, Filter, Hit, IndexError, Kernel, Schema,
    SearchParams, parse_sort,
};
use proptest::collection::vec as pvec;
use proptest::prelude::*;
use proptest::sample::select;
use serde_json::{Map, Value, json};

const TYPES: [FieldType; 6] =
    [FieldType::String, FieldType::Integer, FieldType::Long, FieldType::Float, FieldType::Double, FieldType::Boolean];
const EXT_IDS: [&str; 5] = ["img-1", "img-2", "张三", "e_3", "x"];
const STRINGS: [&str; 5] = ["a", "b", "张三", "x-1", "A_b"];
const FLOATS: [f64; 8] = [-2.5, -1.0, 0.0, 0.5, 1.0, 2.5, 1e10, -0.0];

// ---------------------------------------------------------------------------------------------------
// The model

#[derive(Clone, Debug)]
struct ModelFace {
    entry: FaceEntry,
    feature: Vec<f32>,
}

#[derive(Clone, Debug)]
struct Spec {
    /// Field names and types; names are `f0`, `f1`, ...
    fields: Vec<(String, FieldType)>,
    dim: usize,
    exact: bool,
}

impl Spec {
    fn schema(&self) -> Schema {
        let map: Map<String, Value> =
            self.fields.iter().map(|(name, t)| (name.clone(), json!({ "type": t.as_str() }))).collect();
        Schema::parse(&Value::Object(map)).expect("valid schema")
    }
}

/// A value for a field, by name (positions are the schema's business).
type Values = Vec<(String, Option<FieldValue>)>;

fn value_strategy(t: FieldType) -> BoxedStrategy<FieldValue> {
    match t {
        FieldType::String => select(STRINGS.to_vec()).prop_map(|s| FieldValue::String(s.into())).boxed(),
        FieldType::Integer => {
            prop_oneof![4 => -3i64..=3, 1 => Just(i64::from(i32::MAX)), 1 => Just(i64::from(i32::MIN))]
                .prop_map(FieldValue::Integer)
                .boxed()
        }
        FieldType::Long => {
            prop_oneof![4 => -3i64..=3, 1 => Just(i64::MAX), 1 => Just(i64::MIN)].prop_map(FieldValue::Integer).boxed()
        }
        FieldType::Float | FieldType::Double => select(FLOATS.to_vec()).prop_map(FieldValue::Float).boxed(),
        FieldType::Boolean => any::<bool>().prop_map(FieldValue::Boolean).boxed(),
    }
}

fn values_strategy(spec: &Spec) -> BoxedStrategy<Values> {
    let per_field: Vec<BoxedStrategy<(String, Option<FieldValue>)>> = spec
        .fields
        .iter()
        .map(|(name, t)| {
            let name = name.clone();
            proptest::option::weighted(0.7, value_strategy(*t)).prop_map(move |v| (name.clone(), v)).boxed()
        })
        .collect();
    per_field.prop_map(|v| v).boxed()
}

fn feature_strategy(dim: usize, exact: bool) -> BoxedStrategy<Vec<f32>> {
    if exact {
        // Small numerators over 8: many equal dot products.
        prop_oneof![pvec(-2i8..=2, dim), pvec(-8i8..=8, dim)]
            .prop_map(|v| v.into_iter().map(|k| f32::from(k) / 8.0).collect())
            .boxed()
    } else {
        pvec(-1.0f32..1.0, dim)
            .prop_map(|mut v| {
                let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
                if norm > 1e-3 {
                    v.iter_mut().for_each(|x| *x /= norm);
                }
                v
            })
            .boxed()
    }
}

#[derive(Clone, Debug)]
enum Op {
    Insert { id: usize, ext: usize, bbox: [i32; 4], values: Values, feature: Vec<f32> },
    InsertWrongDim { id: usize },
    Remove { id: usize },
    Update { id: usize, ext: Option<usize>, values: Option<Values>, merge: bool },
}

fn op_strategy(spec: &Spec, ids: usize) -> BoxedStrategy<Op> {
    let insert =
        (0..ids, 0..EXT_IDS.len(), any::<[i32; 4]>(), values_strategy(spec), feature_strategy(spec.dim, spec.exact))
            .prop_map(|(id, ext, bbox, values, feature)| Op::Insert { id, ext, bbox, values, feature });
    let update =
        (0..ids, proptest::option::of(0..EXT_IDS.len()), proptest::option::of(values_strategy(spec)), any::<bool>())
            .prop_map(|(id, ext, values, merge)| Op::Update { id, ext, values, merge });
    prop_oneof![
        6 => insert,
        2 => (0..ids).prop_map(|id| Op::Remove { id }),
        2 => update,
        1 => (0..ids).prop_map(|id| Op::InsertWrongDim { id }),
    ]
    .boxed()
}

// ---------------------------------------------------------------------------------------------------
// Filters as trees

#[derive(Clone, Debug)]
enum Field {
    Custom(String),
    ExternalImageId,
    FaceId,
}

#[derive(Clone, Debug)]
enum Lit {
    Int(i64),
    Float(f64),
    Bool(bool),
    Str(String),
}

#[derive(Clone, Debug)]
enum Ast {
    Eq(Field, Lit),
    Range { field: Field, lo: Option<Lit>, lo_inclusive: bool, hi: Option<Lit>, hi_inclusive: bool },
    Not(Box<Ast>),
    And(Vec<Ast>),
    Or(Vec<Ast>),
}

fn literal_strategy(t: FieldType) -> BoxedStrategy<Lit> {
    match t {
        FieldType::String => select(STRINGS.to_vec()).prop_map(|s| Lit::Str(s.into())).boxed(),
        FieldType::Integer | FieldType::Long => {
            prop_oneof![6 => -4i64..=4, 1 => Just(i64::MAX), 1 => Just(i64::MIN), 1 => Just(i64::from(i32::MAX))]
                .prop_map(Lit::Int)
                .boxed()
        }
        FieldType::Float | FieldType::Double => {
            prop_oneof![select(FLOATS.to_vec()), -3.0f64..3.0].prop_map(Lit::Float).boxed()
        }
        FieldType::Boolean => any::<bool>().prop_map(Lit::Bool).boxed(),
    }
}

fn leaf_strategy(spec: &Spec, id_pool: &[String]) -> BoxedStrategy<Ast> {
    let mut leaves: Vec<BoxedStrategy<Ast>> = vec![
        select(EXT_IDS.to_vec()).prop_map(|e| Ast::Eq(Field::ExternalImageId, Lit::Str(e.into()))).boxed(),
        select(id_pool.to_vec()).prop_map(|id| Ast::Eq(Field::FaceId, Lit::Str(id))).boxed(),
    ];
    for (name, t) in &spec.fields {
        let field = Field::Custom(name.clone());
        let f = field.clone();
        leaves.push(literal_strategy(*t).prop_map(move |lit| Ast::Eq(f.clone(), lit)).boxed());
        if t.is_numeric() {
            let lit = literal_strategy(*t);
            leaves.push(
                (
                    proptest::option::weighted(0.8, lit.clone()),
                    any::<bool>(),
                    proptest::option::weighted(0.8, lit),
                    any::<bool>(),
                )
                    .prop_map(move |(lo, lo_inclusive, hi, hi_inclusive)| Ast::Range {
                        field: field.clone(),
                        lo,
                        lo_inclusive,
                        hi,
                        hi_inclusive,
                    })
                    .boxed(),
            );
        }
    }
    proptest::strategy::Union::new(leaves).boxed()
}

fn filter_strategy(spec: &Spec, id_pool: &[String]) -> BoxedStrategy<Ast> {
    leaf_strategy(spec, id_pool)
        .prop_recursive(4, 24, 4, |inner| {
            prop_oneof![
                inner.clone().prop_map(|a| Ast::Not(Box::new(a))),
                pvec(inner.clone(), 2..4).prop_map(Ast::And),
                pvec(inner, 2..4).prop_map(Ast::Or),
            ]
        })
        .boxed()
}

/// How a tree is printed: with the fewest parentheses precedence allows, or every group wrapped.
#[derive(Clone, Copy, Debug)]
struct Style {
    minimal: bool,
    spaced: bool,
    quote_strings: bool,
}

fn print_literal(lit: &Lit, style: Style) -> String {
    match lit {
        Lit::Int(i) => i.to_string(),
        Lit::Float(f) => format!("{f:?}"),
        Lit::Bool(b) => b.to_string(),
        Lit::Str(s) if style.quote_strings => format!("\"{s}\""),
        Lit::Str(s) => s.clone(),
    }
}

fn field_name(field: &Field) -> &str {
    match field {
        Field::Custom(name) => name,
        Field::ExternalImageId => "external_image_id",
        Field::FaceId => "face_id",
    }
}

fn print(ast: &Ast, style: Style) -> String {
    let (and, or) = if style.spaced { (" && ", " || ") } else { ("&&", "||") };
    match ast {
        Ast::Eq(field, lit) => format!("{}:{}", field_name(field), print_literal(lit, style)),
        Ast::Range { field, lo, lo_inclusive, hi, hi_inclusive } => {
            let bound = |b: &Option<Lit>| b.as_ref().map_or("*".to_string(), |l| print_literal(l, style));
            format!(
                "{}:{}{} TO {}{}",
                field_name(field),
                if *lo_inclusive { '[' } else { '{' },
                bound(lo),
                bound(hi),
                if *hi_inclusive { ']' } else { '}' }
            )
        }
        Ast::Not(inner) if style.minimal => match **inner {
            Ast::Eq(..) | Ast::Range { .. } | Ast::Not(_) => format!("!{}", print(inner, style)),
            _ => format!("!({})", print(inner, style)),
        },
        Ast::Not(inner) => match **inner {
            Ast::Eq(..) | Ast::Range { .. } => format!("(!{})", print(inner, style)),
            _ => format!("(!({}))", print(inner, style)),
        },
        Ast::And(items) => {
            let parts: Vec<String> = items
                .iter()
                .map(|item| match item {
                    Ast::Or(_) => format!("({})", print(item, style)),
                    Ast::And(_) if !style.minimal => format!("({})", print(item, style)),
                    _ => print(item, style),
                })
                .collect();
            parts.join(and)
        }
        Ast::Or(items) => {
            let parts: Vec<String> = items
                .iter()
                .map(|item| match item {
                    Ast::And(_) | Ast::Or(_) if !style.minimal => format!("({})", print(item, style)),
                    _ => print(item, style),
                })
                .collect();
            parts.join(or)
        }
    }
}

/// The reference evaluator: straight from the specification, on the model's entry.
fn eval(ast: &Ast, entry: &FaceEntry, schema: &Schema) -> bool {
    let value = |field: &Field| -> Option<Lit> {
        match field {
            Field::ExternalImageId => Some(Lit::Str(entry.external_image_id.to_string())),
            Field::FaceId => Some(Lit::Str(entry.face_id.to_string())),
            Field::Custom(name) => {
                let (position, _) = schema.field(name)?;
                match entry.fields.0.get(position)?.as_ref()? {
                    FieldValue::String(s) => Some(Lit::Str(s.to_string())),
                    FieldValue::Integer(i) => Some(Lit::Int(*i)),
                    FieldValue::Float(f) => Some(Lit::Float(*f)),
                    FieldValue::Boolean(b) => Some(Lit::Bool(*b)),
                }
            }
        }
    };
    match ast {
        Ast::Eq(field, lit) => match (value(field), lit) {
            (Some(Lit::Str(v)), Lit::Str(l)) => v == *l,
            (Some(Lit::Int(v)), Lit::Int(l)) => v == *l,
            (Some(Lit::Float(v)), Lit::Float(l)) => v == *l,
            (Some(Lit::Bool(v)), Lit::Bool(l)) => v == *l,
            _ => false,
        },
        Ast::Range { field, lo, lo_inclusive, hi, hi_inclusive } => {
            let Some(v) = value(field) else { return false };
            let cmp = |bound: &Lit| -> Ordering {
                match (&v, bound) {
                    (Lit::Int(v), Lit::Int(b)) => v.cmp(b),
                    (Lit::Float(v), Lit::Float(b)) => v.partial_cmp(b).expect("finite"),
                    _ => panic!("range on a non-numeric field"),
                }
            };
            let above = lo.as_ref().is_none_or(|b| match cmp(b) {
                Ordering::Greater => true,
                Ordering::Equal => *lo_inclusive,
                Ordering::Less => false,
            });
            let below = hi.as_ref().is_none_or(|b| match cmp(b) {
                Ordering::Less => true,
                Ordering::Equal => *hi_inclusive,
                Ordering::Greater => false,
            });
            above && below
        }
        Ast::Not(inner) => !eval(inner, entry, schema),
        Ast::And(items) => items.iter().all(|a| eval(a, entry, schema)),
        Ast::Or(items) => items.iter().any(|a| eval(a, entry, schema)),
    }
}

// ---------------------------------------------------------------------------------------------------
// Queries

#[derive(Clone, Debug)]
enum Threshold {
    None,
    MinusOne,
    Fixed(f32),
    /// The cosine of the n-th live face (exercises `>=` at the boundary).
    OfFace(usize),
}

#[derive(Clone, Debug)]
struct Query {
    vector: Vec<f32>,
    top_n: usize,
    threshold: Threshold,
    filter: Option<(Ast, Style)>,
    /// (field name, descending) as given, repeats included.
    sort: Vec<(String, bool)>,
}

fn query_strategy(spec: &Spec, id_pool: &[String]) -> BoxedStrategy<Query> {
    let numeric: Vec<String> = spec.fields.iter().filter(|(_, t)| t.is_numeric()).map(|(n, _)| n.clone()).collect();
    let sort = if numeric.is_empty() {
        Just(Vec::new()).boxed()
    } else {
        pvec((select(numeric), any::<bool>()), 0..4).boxed()
    };
    let threshold = prop_oneof![
        Just(Threshold::None),
        Just(Threshold::MinusOne),
        (-1.0f32..1.0).prop_map(Threshold::Fixed),
        any::<usize>().prop_map(Threshold::OfFace),
    ];
    let style = (any::<bool>(), any::<bool>(), any::<bool>()).prop_map(|(minimal, spaced, quote_strings)| Style {
        minimal,
        spaced,
        quote_strings,
    });
    (
        feature_strategy(spec.dim, spec.exact),
        prop_oneof![4 => 0usize..12, 1 => Just(1000usize)],
        threshold,
        proptest::option::weighted(0.7, (filter_strategy(spec, id_pool), style)),
        sort,
    )
        .prop_map(|(vector, top_n, threshold, filter, sort)| Query { vector, top_n, threshold, filter, sort })
        .boxed()
}

#[derive(Clone, Debug)]
struct Case {
    spec: Spec,
    id_pool: Vec<String>,
    ops: Vec<Op>,
    queries: Vec<Query>,
}

/// `large` cases hold hundreds of faces, so scans span several 256-row blocks and 64-bit words.
fn case_strategy(exact: bool, large: bool) -> impl Strategy<Value = Case> {
    let dims = if exact { vec![1usize, 3, 8, 16, 17, 40, 64] } else { vec![8usize, 100, 128] };
    let (ids, ops) = if large { (400..700, 600..1200) } else { (1..40, 0..150) };
    (pvec(select(TYPES.to_vec()), 0..6), select(dims), pvec("[0-9A-Za-z]{8}", ids)).prop_flat_map(
        move |(types, dim, id_pool)| {
            let fields = types.iter().enumerate().map(|(i, t)| (format!("f{i}"), *t)).collect();
            let spec = Spec { fields, dim, exact };
            let ops = pvec(op_strategy(&spec, id_pool.len()), ops.clone());
            let queries = pvec(query_strategy(&spec, &id_pool), 1..6);
            (Just(spec), Just(id_pool), ops, queries).prop_map(|(spec, id_pool, ops, queries)| Case {
                spec,
                id_pool,
                ops,
                queries,
            })
        },
    )
}

// ---------------------------------------------------------------------------------------------------
// Running a case

fn to_field_values(schema: &Schema, values: &Values) -> FieldValues {
    // Through JSON and `parse_values`, checked against the direct construction.
    let map: Map<String, Value> = values
        .iter()
        .map(|(name, v)| {
            let json = match v {
                None => Value::Null,
                Some(FieldValue::String(s)) => json!(s.as_ref()),
                Some(FieldValue::Integer(i)) => json!(i),
                Some(FieldValue::Float(f)) => json!(f),
                Some(FieldValue::Boolean(b)) => json!(b),
            };
            (name.clone(), json)
        })
        .collect();
    let parsed = schema.parse_values(&Value::Object(map)).expect("generated values are valid");
    let mut direct = vec![None; schema.len()];
    for (name, v) in values {
        direct[schema.field(name).expect("declared").0] = v.clone();
    }
    assert_eq!(parsed.0, direct);
    parsed
}

fn apply(case: &Case, schema: &Schema, index: &mut FaceSetIndex, model: &mut HashMap<FaceId, ModelFace>) {
    let id_of = |i: usize| FaceId::parse(&case.id_pool[i]).expect("pool ids are valid");
    for op in &case.ops {
        match op {
            Op::Insert { id, ext, bbox, values, feature } => {
                let entry = FaceEntry {
                    face_id: id_of(*id),
                    external_image_id: EXT_IDS[*ext].into(),
                    bbox: *bbox,
                    fields: to_field_values(schema, values),
                };
                let result = index.insert(entry.clone(), feature);
                match model.entry(entry.face_id) {
                    std::collections::hash_map::Entry::Occupied(_) => {
                        assert!(matches!(result, Err(IndexError::DuplicateId(id)) if id == entry.face_id));
                    }
                    std::collections::hash_map::Entry::Vacant(vacant) => {
                        result.expect("insert");
                        vacant.insert(ModelFace { entry, feature: feature.clone() });
                    }
                }
            }
            Op::InsertWrongDim { id } => {
                let entry = FaceEntry {
                    face_id: id_of(*id),
                    external_image_id: "w".into(),
                    bbox: [0; 4],
                    fields: FieldValues::default(),
                };
                let result = index.insert(entry, &vec![0.5; case.spec.dim + 1]);
                assert!(matches!(result, Err(IndexError::WrongDimension { .. })));
            }
            Op::Remove { id } => {
                assert_eq!(index.remove(id_of(*id)), model.remove(&id_of(*id)).is_some());
            }
            Op::Update { id, ext, values, merge } => {
                let face_id = id_of(*id);
                let new_values = values.as_ref().map(|v| to_field_values(schema, v));
                let fields = match (&new_values, model.get(&face_id)) {
                    (Some(new), Some(face)) if *merge => Some(face.entry.fields.merged(new)),
                    (new, _) => new.clone(),
                };
                let updated = index.update(face_id, ext.map(|e| EXT_IDS[e].into()), fields);
                assert_eq!(updated, model.contains_key(&face_id));
                if let Some(face) = model.get_mut(&face_id) {
                    if let Some(e) = ext {
                        face.entry.external_image_id = EXT_IDS[*e].into();
                    }
                    if let Some(new) = new_values {
                        if *merge {
                            // The model's own merge: present values of the update win.
                            for (old, new) in face.entry.fields.0.iter_mut().zip(new.0) {
                                if new.is_some() {
                                    *old = new;
                                }
                            }
                        } else {
                            face.entry.fields = new;
                        }
                    }
                }
            }
        }
    }
}

fn check_reads(case: &Case, schema: &Schema, index: &FaceSetIndex, model: &HashMap<FaceId, ModelFace>) {
    assert_eq!(index.len(), model.len());
    assert_eq!(index.is_empty(), model.is_empty());
    for id in &case.id_pool {
        let id = FaceId::parse(id).expect("valid");
        match (index.get(id), model.get(&id)) {
            (None, None) => {}
            (Some((entry, feature)), Some(face)) => {
                assert_eq!(entry, &face.entry);
                assert_eq!(feature, face.feature.as_slice());
            }
            (got, want) => panic!("get({id}): index {got:?}, model {want:?}"),
        }
    }
    for ext in EXT_IDS {
        let mut got = index.with_external_image_id(ext);
        got.sort();
        let mut want: Vec<FaceId> =
            model.values().filter(|f| &*f.entry.external_image_id == ext).map(|f| f.entry.face_id).collect();
        want.sort();
        assert_eq!(got, want, "with_external_image_id({ext})");
    }
    assert!(index.heap_bytes() >= model.len() * case.spec.dim * 4);
    let _ = schema;
}

fn cosine_reference(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(x, y)| f64::from(*x) * f64::from(*y)).sum()
}

/// Sort keys as the specification says: in order, a repeated field overwriting the earlier direction.
fn reference_keys(sort: &[(String, bool)]) -> Vec<(String, bool)> {
    let mut keys: Vec<(String, bool)> = Vec::new();
    for (name, descending) in sort {
        match keys.iter_mut().find(|(n, _)| n == name) {
            Some(key) => key.1 = *descending,
            None => keys.push((name.clone(), *descending)),
        }
    }
    keys
}

fn compare_keys(keys: &[(String, bool)], schema: &Schema, a: &FaceEntry, b: &FaceEntry) -> Ordering {
    for (name, descending) in keys {
        let position = schema.field(name).expect("declared").0;
        let order = match (a.fields.0[position].as_ref(), b.fields.0[position].as_ref()) {
            (None, None) => Ordering::Equal,
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some(x), Some(y)) => {
                let order = match (x, y) {
                    (FieldValue::Integer(x), FieldValue::Integer(y)) => x.cmp(y),
                    (FieldValue::Float(x), FieldValue::Float(y)) => x.partial_cmp(y).expect("finite"),
                    _ => panic!("non-numeric sort"),
                };
                if *descending { order.reverse() } else { order }
            }
        };
        if order != Ordering::Equal {
            return order;
        }
    }
    Ordering::Equal
}

fn run_queries(case: &Case, schema: &Schema, index: &mut FaceSetIndex, model: &HashMap<FaceId, ModelFace>) {
    let mut faces: Vec<&ModelFace> = model.values().collect();
    faces.sort_by_key(|f| f.entry.face_id);
    for query in &case.queries {
        let filter_text = query.filter.as_ref().map(|(ast, style)| print(ast, *style));
        let filter = filter_text
            .as_ref()
            .map(|text| Filter::parse(text, schema).unwrap_or_else(|e| panic!("{text:?} does not parse: {e}")));
        let passes = |face: &ModelFace| query.filter.as_ref().is_none_or(|(ast, _)| eval(ast, &face.entry, schema));

        // Filter evaluation: on the columns (select), on one entry (matches), and by the reference.
        if let Some(filter) = &filter {
            let mut selected = index.select(filter);
            selected.sort();
            let want: Vec<FaceId> = faces.iter().filter(|f| passes(f)).map(|f| f.entry.face_id).collect();
            assert_eq!(selected, want, "select({:?})", filter_text);
            for face in &faces {
                assert_eq!(filter.matches(&face.entry), passes(face), "matches({:?})", filter_text);
            }
        }

        let sort_json = Value::Array(
            query.sort.iter().map(|(n, d)| json!({ n.clone(): if *d { "desc" } else { "ASC" } })).collect(),
        );
        let sort = parse_sort(&sort_json, schema).expect("numeric sort fields");
        let keys = reference_keys(&query.sort);
        assert_eq!(sort.len(), keys.len());

        let cosines: HashMap<FaceId, f64> =
            faces.iter().map(|f| (f.entry.face_id, cosine_reference(&query.vector, &f.feature))).collect();
        let min_cosine = match query.threshold {
            Threshold::None => -2.0,
            Threshold::MinusOne => -1.0,
            Threshold::Fixed(t) => t,
            Threshold::OfFace(i) if !faces.is_empty() => cosines[&faces[i % faces.len()].entry.face_id] as f32,
            Threshold::OfFace(_) => 0.0,
        };
        let min = if min_cosine <= -1.0 { f64::NEG_INFINITY } else { f64::from(min_cosine) };
        let params = SearchParams { top_n: query.top_n, min_cosine, filter: filter.as_ref(), sort: &sort };

        // The reference: filter, threshold, best top_n by (cosine desc, id asc), then stable sort.
        let mut expected: Vec<&ModelFace> =
            faces.iter().copied().filter(|f| passes(f) && cosines[&f.entry.face_id] >= min).collect();
        expected.sort_by(|a, b| {
            let (ca, cb) = (cosines[&a.entry.face_id], cosines[&b.entry.face_id]);
            cb.partial_cmp(&ca).expect("finite").then(a.entry.face_id.cmp(&b.entry.face_id))
        });
        expected.truncate(query.top_n);
        expected.sort_by(|a, b| compare_keys(&keys, schema, &a.entry, &b.entry));

        for kernel in Kernel::available() {
            index.set_kernel(kernel);
            let hits = index.search(&query.vector, &params);
            let context = format!("kernel {}, filter {:?}, query {query:?}", kernel.name(), filter_text);
            if case.spec.exact {
                let want: Vec<Hit> = expected
                    .iter()
                    .map(|f| Hit { face_id: f.entry.face_id, cosine: cosines[&f.entry.face_id] as f32 })
                    .collect();
                assert_eq!(hits, want, "{context}");
            } else {
                check_tolerant(&hits, &expected, &faces, &cosines, &passes, min, query.top_n, &keys, schema, &context);
            }
        }
    }
}

/// The specification with a tolerance, for cosines the kernels round differently from the reference.
#[allow(clippy::too_many_arguments)]
fn check_tolerant(
    hits: &[Hit],
    expected: &[&ModelFace],
    faces: &[&ModelFace],
    cosines: &HashMap<FaceId, f64>,
    passes: &dyn Fn(&ModelFace) -> bool,
    min: f64,
    top_n: usize,
    keys: &[(String, bool)],
    schema: &Schema,
    context: &str,
) {
    const EPS: f64 = 1e-5;
    let by_id: HashMap<FaceId, &ModelFace> = faces.iter().map(|f| (f.entry.face_id, *f)).collect();
    let mut seen = HashSet::new();
    for hit in hits {
        let face = by_id.get(&hit.face_id).unwrap_or_else(|| panic!("unknown hit {}: {context}", hit.face_id));
        assert!(seen.insert(hit.face_id), "duplicate hit: {context}");
        assert!(passes(face), "hit fails the filter: {context}");
        assert!((f64::from(hit.cosine) - cosines[&hit.face_id]).abs() <= EPS, "cosine off: {context}");
        assert!(f64::from(hit.cosine) >= min, "below the threshold: {context}");
    }
    assert!(hits.len() <= top_n);
    // Which faces: only near-cut faces may differ from the reference.
    let cut =
        if hits.len() == top_n { hits.iter().map(|h| cosines[&h.face_id]).fold(f64::INFINITY, f64::min) } else { min };
    let want: HashSet<FaceId> = expected.iter().map(|f| f.entry.face_id).collect();
    for id in want.symmetric_difference(&seen) {
        let c = cosines[id];
        let near_cut = (c - cut).abs() <= 2.0 * EPS || (c - min).abs() <= 2.0 * EPS;
        assert!(near_cut, "{id} (cosine {c}) differs from the reference away from the cut {cut}: {context}");
    }
    if hits.len() < top_n {
        // Every qualifying face clearly above the threshold is in.
        for face in faces {
            let c = cosines[&face.entry.face_id];
            if passes(face) && c >= min + 2.0 * EPS {
                assert!(seen.contains(&face.entry.face_id), "missing {}: {context}", face.entry.face_id);
            }
        }
    }
    // Order: by sort keys, then the index's own cosine (desc) and id (asc), exactly.
    for pair in hits.windows(2) {
        let (a, b) = (&by_id[&pair[0].face_id].entry, &by_id[&pair[1].face_id].entry);
        let order = compare_keys(keys, schema, a, b)
            .then_with(|| pair[1].cosine.partial_cmp(&pair[0].cosine).expect("finite").then(a.face_id.cmp(&b.face_id)));
        assert_eq!(order, Ordering::Less, "order: {context}");
    }
}

fn run_case(case: &Case) {
    let schema = case.spec.schema();
    let mut index = FaceSetIndex::new(schema.clone(), case.spec.dim);
    let mut model = HashMap::new();
    apply(case, &schema, &mut index, &mut model);
    check_reads(case, &schema, &index, &model);
    run_queries(case, &schema, &mut index, &model);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn search_matches_the_reference_exactly(case in case_strategy(true, false)) {
        run_case(&case);
    }

    #[test]
    fn search_matches_the_reference_on_unit_vectors(case in case_strategy(false, false)) {
        run_case(&case);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn search_matches_the_reference_on_large_sets(case in case_strategy(true, true)) {
        run_case(&case);
    }

    #[test]
    fn search_matches_the_reference_on_large_sets_of_unit_vectors(case in case_strategy(false, true)) {
        run_case(&case);
    }
}

#[test]
fn ties_are_broken_by_face_id_then_sorted_stably() {
    let schema = Schema::parse(&json!({"ts": {"type": "long"}})).expect("valid");
    let mut index = FaceSetIndex::new(schema.clone(), 2);
    let ids = ["zzzzzzzz", "00000001", "AAAAAAAA", "aaaaaaaa", "00000000"];
    for (i, id) in ids.iter().enumerate() {
        let fields = schema.parse_values(&json!({"ts": (i % 2) as i64})).expect("valid");
        let entry = FaceEntry {
            face_id: FaceId::parse(id).expect("valid"),
            external_image_id: "x".into(),
            bbox: [0; 4],
            fields,
        };
        index.insert(entry, &[0.6, 0.8]).expect("insert");
    }
    for kernel in Kernel::available() {
        index.set_kernel(kernel);
        let params = SearchParams { top_n: 3, min_cosine: -1.0, filter: None, sort: &[] };
        let got: Vec<String> = index.search(&[0.6, 0.8], &params).iter().map(|h| h.face_id.to_string()).collect();
        assert_eq!(got, ["00000000", "00000001", "AAAAAAAA"]);
        // ts: 00000000 → 4 % 2 = 0, 00000001 → 1, AAAAAAAA → 0; desc keeps cosine order among equals.
        let sort = parse_sort(&json!([{"ts": "desc"}]), &schema).expect("valid");
        let params = SearchParams { sort: &sort, ..params };
        let got: Vec<String> = index.search(&[0.6, 0.8], &params).iter().map(|h| h.face_id.to_string()).collect();
        assert_eq!(got, ["00000001", "00000000", "AAAAAAAA"]);
    }
}
