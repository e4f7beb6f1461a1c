//! The FRS filter language (§3.12): Lucene-like `field:value` terms joined by `&&`, `||`, `!` and
//! parentheses, parsed into a tree bound to one face set's schema.

use crate::index::FaceEntry;
use crate::schema::{FieldType, FieldValue, Schema};

/// Longest accepted expression, in bytes.
pub const MAX_FILTER_LEN: usize = 4096;
/// Deepest accepted nesting of parentheses and `!`.
pub const MAX_FILTER_DEPTH: usize = 64;

/// Why a filter expression was rejected (FRS.0029). Positions are byte offsets into the expression.
#[derive(Debug, thiserror::Error)]
pub enum FilterError {
    /// The expression is empty or only whitespace.
    #[error("the filter expression is empty")]
    Empty,
    /// The expression is longer than [`MAX_FILTER_LEN`] bytes.
    #[error("the filter expression is {len} bytes long, at most {max} are allowed", max = MAX_FILTER_LEN)]
    TooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// Parentheses and `!` nest deeper than [`MAX_FILTER_DEPTH`].
    #[error("the filter expression nests deeper than {max} levels at byte {at}", max = MAX_FILTER_DEPTH)]
    TooDeep {
        /// Where the limit was crossed.
        at: usize,
    },
    /// Malformed syntax: unbalanced parentheses, a dangling operator, a missing `:` or `TO`, ...
    #[error("filter syntax error at byte {at}: {message}")]
    Syntax {
        /// Where.
        at: usize,
        /// What was expected and found.
        message: String,
    },
    /// A term names a field that is neither a custom field nor `external_image_id`/`face_id`.
    #[error("filter field {field:?} at byte {at} is not defined in the face set")]
    UnknownField {
        /// Where the field name starts.
        at: usize,
        /// The name.
        field: String,
    },
    /// A value does not fit its field's type (bad literal, type suffix, range on a string, ...).
    #[error("filter value for field {field:?} at byte {at}: {message}")]
    InvalidValue {
        /// Where the value starts.
        at: usize,
        /// The field.
        field: String,
        /// What is wrong.
        message: String,
    },
}

/// A parsed FRS filter expression (§3.12), bound to the schema it was parsed against.
///
/// Grammar (whitespace is free between tokens; `!` binds tightest, then `&&`, then `||`):
/// ```text
/// or      := and ( "||" and )*
/// and     := unary ( "&&" unary )*
/// unary   := "!" unary | "(" or ")" | term
/// term    := FIELD ":" ( VALUE | QUOTED | range )
/// range   := ( "[" | "{" ) bound "TO" bound ( "]" | "}" )      bound := VALUE | "*"
/// ```
/// `[`/`]` include an end, `{`/`}` exclude it, `*` leaves it open. A VALUE is a run of characters other
/// than whitespace and `: ( ) [ ] { } & | ! "`; a QUOTED value is `"..."` with `\"` and `\\` escapes.
/// The spec writes NOT inside parentheses (`(!color:brown)`); a bare `!term` is accepted too.
///
/// Fields: the schema's custom fields, then the built-ins `external_image_id` and `face_id` (strings).
/// Values are typed by the field: integer/long need an integer literal (`-12`), float/double a decimal
/// (`1`, `-2.5`, `1e3`), boolean `true`/`false` (any ASCII case); type suffixes (`1.0f`, `100L`) are
/// rejected, and so are ranges on string and boolean fields, empty values and a bare `*` value. Strings
/// compare by exact equality. A face without a value for a field never matches a term on that field,
/// so `!field:x` matches it. Limits: [`MAX_FILTER_LEN`] bytes and [`MAX_FILTER_DEPTH`] levels.
///
/// A filter must only be used with an index of the schema it was parsed against.
#[derive(Clone, Debug)]
pub struct Filter {
    pub(crate) root: Node,
}

/// A node of the filter tree.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Node {
    And(Vec<Node>),
    Or(Vec<Node>),
    Not(Box<Node>),
    Term(Term),
}

/// One `field:value` or `field:range` term.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Term {
    pub(crate) target: Target,
    pub(crate) predicate: Predicate,
}

/// What a term looks at.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Target {
    /// The custom field at this schema position.
    Field(usize),
    ExternalImageId,
    FaceId,
}

/// What a term requires of the value.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Predicate {
    /// String equality.
    Str(Box<str>),
    /// `lo <= v <= hi` on integer/long values (exclusive ends are folded in; empty when `lo > hi`).
    IntRange { lo: i64, hi: i64 },
    /// A range on float/double values; an open end is an infinity.
    FloatRange { lo: f64, lo_inclusive: bool, hi: f64, hi_inclusive: bool },
    /// Boolean equality.
    Bool(bool),
}

impl Predicate {
    /// Whether the (present) value satisfies the predicate; a value of another type never does.
    pub(crate) fn matches(&self, value: &FieldValue) -> bool {
        match (self, value) {
            (Predicate::Str(s), FieldValue::String(v)) => s == v,
            (Predicate::IntRange { lo, hi }, FieldValue::Integer(v)) => lo <= v && v <= hi,
            (Predicate::FloatRange { .. }, FieldValue::Float(v)) => self.matches_float(*v),
            // As the index's float columns take an integer in a float field (see `FaceSetIndex`).
            (Predicate::FloatRange { .. }, FieldValue::Integer(v)) => self.matches_float(*v as f64),
            (Predicate::Bool(b), FieldValue::Boolean(v)) => b == v,
            _ => false,
        }
    }

    #[inline]
    pub(crate) fn matches_float(&self, v: f64) -> bool {
        match *self {
            Predicate::FloatRange { lo, lo_inclusive, hi, hi_inclusive } => {
                (if lo_inclusive { lo <= v } else { lo < v }) && (if hi_inclusive { v <= hi } else { v < hi })
            }
            _ => false,
        }
    }
}

impl Filter {
    /// Parses `expression` against `schema`; see the type's documentation for the language.
    pub fn parse(expression: &str, schema: &Schema) -> Result<Filter, FilterError> {
        if expression.len() > MAX_FILTER_LEN {
            return Err(FilterError::TooLong { len: expression.len() });
        }
        if expression.trim().is_empty() {
            return Err(FilterError::Empty);
        }
        let tokens = lex(expression)?;
        let mut parser = Parser { tokens, pos: 0, schema, depth: 0 };
        let root = parser.or()?;
        let next = parser.peek();
        match next.kind {
            Kind::End => Ok(Filter { root }),
            Kind::RParen => Err(syntax(next.at, "unbalanced ')'".into())),
            _ => Err(syntax(next.at, format!("expected '&&', '||' or the end of the expression, found {}", next.kind))),
        }
    }

    /// The filter `field:value` used by delete-faces-by-custom-field (`DELETE ...faces?name=zhangsan`).
    ///
    /// `value` is the raw query value, typed by the field's type as a filter literal would be (no
    /// tokenising or quoting: the whole text is the value). Fields as in [`Filter::parse`]. Errors carry
    /// byte offset 0.
    pub fn field_equals(field: &str, value: &str, schema: &Schema) -> Result<Filter, FilterError> {
        let (target, field_type) =
            resolve_field(field, schema).ok_or_else(|| FilterError::UnknownField { at: 0, field: field.into() })?;
        let predicate = single_value(field_type, value, true).map_err(|message| FilterError::InvalidValue {
            at: 0,
            field: field.into(),
            message,
        })?;
        Ok(Filter { root: Node::Term(Term { target, predicate }) })
    }

    /// Whether one face matches, evaluated directly on its entry (the index evaluates filters on its
    /// columns instead; both give the same answer).
    pub fn matches(&self, entry: &FaceEntry) -> bool {
        node_matches(&self.root, entry)
    }
}

fn node_matches(node: &Node, entry: &FaceEntry) -> bool {
    match node {
        Node::And(items) => items.iter().all(|n| node_matches(n, entry)),
        Node::Or(items) => items.iter().any(|n| node_matches(n, entry)),
        Node::Not(inner) => !node_matches(inner, entry),
        Node::Term(Term { target, predicate }) => match (target, predicate) {
            (Target::Field(p), _) => entry.fields.get(*p).is_some_and(|v| predicate.matches(v)),
            (Target::ExternalImageId, Predicate::Str(s)) => *entry.external_image_id == **s,
            (Target::FaceId, Predicate::Str(s)) => entry.face_id.as_str() == &**s,
            _ => false,
        },
    }
}

/// The target and type of a field name: custom fields first, then the built-ins.
fn resolve_field(name: &str, schema: &Schema) -> Option<(Target, FieldType)> {
    if let Some((position, field_type)) = schema.field(name) {
        return Some((Target::Field(position), field_type));
    }
    match name {
        "external_image_id" => Some((Target::ExternalImageId, FieldType::String)),
        "face_id" => Some((Target::FaceId, FieldType::String)),
        _ => None,
    }
}

fn syntax(at: usize, message: String) -> FilterError {
    FilterError::Syntax { at, message }
}

// ---------------------------------------------------------------------------------------------------
// Lexer

#[derive(Clone, Debug, PartialEq)]
enum Kind<'a> {
    LParen,
    RParen,
    LBracket,
    RBracket,
    LBrace,
    RBrace,
    Colon,
    And,
    Or,
    Not,
    Word(&'a str),
    Quoted(String),
    End,
}

impl std::fmt::Display for Kind<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Kind::LParen => f.write_str("'('"),
            Kind::RParen => f.write_str("')'"),
            Kind::LBracket => f.write_str("'['"),
            Kind::RBracket => f.write_str("']'"),
            Kind::LBrace => f.write_str("'{'"),
            Kind::RBrace => f.write_str("'}'"),
            Kind::Colon => f.write_str("':'"),
            Kind::And => f.write_str("'&&'"),
            Kind::Or => f.write_str("'||'"),
            Kind::Not => f.write_str("'!'"),
            Kind::Word(w) => write!(f, "{w:?}"),
            Kind::Quoted(q) => write!(f, "quoted {q:?}"),
            Kind::End => f.write_str("the end of the expression"),
        }
    }
}

#[derive(Clone, Debug)]
struct Token<'a> {
    kind: Kind<'a>,
    at: usize,
}

fn is_word_char(c: char) -> bool {
    !(c.is_whitespace() || matches!(c, ':' | '(' | ')' | '[' | ']' | '{' | '}' | '&' | '|' | '!' | '"'))
}

fn lex(text: &str) -> Result<Vec<Token<'_>>, FilterError> {
    let mut tokens = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        let kind = match c {
            c if c.is_whitespace() => continue,
            '(' => Kind::LParen,
            ')' => Kind::RParen,
            '[' => Kind::LBracket,
            ']' => Kind::RBracket,
            '{' => Kind::LBrace,
            '}' => Kind::RBrace,
            ':' => Kind::Colon,
            '!' => Kind::Not,
            '&' | '|' => {
                if chars.next_if(|&(_, next)| next == c).is_none() {
                    return Err(syntax(at, format!("expected '{c}{c}', found a single '{c}'")));
                }
                if c == '&' { Kind::And } else { Kind::Or }
            }
            '"' => {
                let mut value = String::new();
                loop {
                    match chars.next() {
                        None => return Err(syntax(at, "unterminated quoted value".into())),
                        Some((_, '"')) => break,
                        Some((escape_at, '\\')) => match chars.next() {
                            Some((_, e @ ('"' | '\\'))) => value.push(e),
                            _ => return Err(syntax(escape_at, "only \\\" and \\\\ escapes are allowed".into())),
                        },
                        Some((_, c)) => value.push(c),
                    }
                }
                Kind::Quoted(value)
            }
            _ => {
                let mut end = at + c.len_utf8();
                while let Some((i, c)) = chars.next_if(|&(_, c)| is_word_char(c)) {
                    end = i + c.len_utf8();
                }
                Kind::Word(&text[at..end])
            }
        };
        tokens.push(Token { kind, at });
    }
    tokens.push(Token { kind: Kind::End, at: text.len() });
    Ok(tokens)
}

// ---------------------------------------------------------------------------------------------------
// Parser

struct Parser<'a, 's> {
    tokens: Vec<Token<'a>>,
    pos: usize,
    schema: &'s Schema,
    depth: usize,
}

impl<'a> Parser<'a, '_> {
    fn peek(&self) -> &Token<'a> {
        // NOTE: the token list always ends with `End`, which is never consumed.
        &self.tokens[self.pos.min(self.tokens.len() - 1)]
    }

    fn advance(&mut self) -> Token<'a> {
        let token = self.peek().clone();
        if token.kind != Kind::End {
            self.pos += 1;
        }
        token
    }

    fn enter(&mut self, at: usize) -> Result<(), FilterError> {
        self.depth += 1;
        if self.depth > MAX_FILTER_DEPTH { Err(FilterError::TooDeep { at }) } else { Ok(()) }
    }

    fn or(&mut self) -> Result<Node, FilterError> {
        let mut items = vec![self.and()?];
        while self.peek().kind == Kind::Or {
            self.advance();
            items.push(self.and()?);
        }
        Ok(if items.len() == 1 { items.swap_remove(0) } else { Node::Or(items) })
    }

    fn and(&mut self) -> Result<Node, FilterError> {
        let mut items = vec![self.unary()?];
        while self.peek().kind == Kind::And {
            self.advance();
            items.push(self.unary()?);
        }
        Ok(if items.len() == 1 { items.swap_remove(0) } else { Node::And(items) })
    }

    fn unary(&mut self) -> Result<Node, FilterError> {
        let token = self.advance();
        match token.kind {
            Kind::Not => {
                self.enter(token.at)?;
                let inner = self.unary()?;
                self.depth -= 1;
                Ok(Node::Not(Box::new(inner)))
            }
            Kind::LParen => {
                self.enter(token.at)?;
                let inner = self.or()?;
                let close = self.advance();
                match close.kind {
                    Kind::RParen => {}
                    Kind::End => return Err(syntax(token.at, "unbalanced '(': it is never closed".into())),
                    other => {
                        return Err(syntax(close.at, format!("expected '&&', '||' or ')', found {other}")));
                    }
                }
                self.depth -= 1;
                Ok(inner)
            }
            Kind::Word(field) => self.term(field, token.at),
            Kind::RParen => Err(syntax(token.at, "unbalanced ')' (or an empty pair of parentheses)".into())),
            other => Err(syntax(token.at, format!("expected a field:value term, found {other}"))),
        }
    }

    fn term(&mut self, field: &'a str, field_at: usize) -> Result<Node, FilterError> {
        let colon = self.advance();
        if colon.kind != Kind::Colon {
            return Err(syntax(colon.at, format!("expected ':' after the field name {field:?}, found {}", colon.kind)));
        }
        let (target, field_type) = resolve_field(field, self.schema)
            .ok_or_else(|| FilterError::UnknownField { at: field_at, field: field.into() })?;
        let value = self.advance();
        let invalid = |at: usize, message: String| FilterError::InvalidValue { at, field: field.into(), message };
        let predicate = match value.kind {
            Kind::Word(text) => single_value(field_type, text, false).map_err(|m| invalid(value.at, m))?,
            Kind::Quoted(text) => single_value(field_type, &text, true).map_err(|m| invalid(value.at, m))?,
            Kind::LBracket | Kind::LBrace => {
                let lo_inclusive = value.kind == Kind::LBracket;
                let lo = self.bound()?;
                let to = self.advance();
                if to.kind != Kind::Word("TO") {
                    return Err(syntax(to.at, format!("expected 'TO' in the range, found {}", to.kind)));
                }
                let hi = self.bound()?;
                let close = self.advance();
                let hi_inclusive = match close.kind {
                    Kind::RBracket => true,
                    Kind::RBrace => false,
                    other => {
                        return Err(syntax(close.at, format!("expected ']' or '}}' to end the range, found {other}")));
                    }
                };
                range(field_type, lo, lo_inclusive, hi, hi_inclusive).map_err(|(at, m)| invalid(at, m))?
            }
            other => return Err(syntax(value.at, format!("expected a value after '{field}:', found {other}"))),
        };
        Ok(Node::Term(Term { target, predicate }))
    }

    /// A range bound: a value word or `*` (`None`), with its offset.
    fn bound(&mut self) -> Result<(usize, Option<&'a str>), FilterError> {
        let token = self.advance();
        match token.kind {
            Kind::Word("*") => Ok((token.at, None)),
            Kind::Word("TO") => Err(syntax(token.at, "expected a range bound before 'TO'".into())),
            Kind::Word(text) => Ok((token.at, Some(text))),
            other => Err(syntax(token.at, format!("expected a number or '*' as a range bound, found {other}"))),
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// Literals

/// The predicate of a single value for a field of `field_type`. `quoted` values may be `*`.
fn single_value(field_type: FieldType, text: &str, quoted: bool) -> Result<Predicate, String> {
    if text.is_empty() {
        return Err("empty values are not supported".into());
    }
    if text == "*" && !quoted {
        return Err("wildcards are not supported".into());
    }
    match field_type {
        FieldType::String => Ok(Predicate::Str(text.into())),
        FieldType::Integer | FieldType::Long => int_literal(text).map(|v| Predicate::IntRange { lo: v, hi: v }),
        FieldType::Float | FieldType::Double => {
            float_literal(text).map(|v| Predicate::FloatRange { lo: v, lo_inclusive: true, hi: v, hi_inclusive: true })
        }
        FieldType::Boolean => {
            if text.eq_ignore_ascii_case("true") {
                Ok(Predicate::Bool(true))
            } else if text.eq_ignore_ascii_case("false") {
                Ok(Predicate::Bool(false))
            } else {
                Err(format!("expected true or false, got {text:?}"))
            }
        }
    }
}

type Bound<'a> = (usize, Option<&'a str>);

fn range(
    field_type: FieldType,
    (lo_at, lo): Bound<'_>,
    lo_inclusive: bool,
    (hi_at, hi): Bound<'_>,
    hi_inclusive: bool,
) -> Result<Predicate, (usize, String)> {
    match field_type {
        FieldType::String | FieldType::Boolean => {
            Err((lo_at, format!("ranges are only supported on numeric fields, this one is {}", field_type.as_str())))
        }
        FieldType::Integer | FieldType::Long => {
            // Exclusive ends fold into inclusive ones; `{MAX TO ..` and `.. TO MIN}` select nothing.
            let lo = match lo {
                None => Some(i64::MIN),
                Some(text) => {
                    let v = int_literal(text).map_err(|m| (lo_at, m))?;
                    if lo_inclusive { Some(v) } else { v.checked_add(1) }
                }
            };
            let hi = match hi {
                None => Some(i64::MAX),
                Some(text) => {
                    let v = int_literal(text).map_err(|m| (hi_at, m))?;
                    if hi_inclusive { Some(v) } else { v.checked_sub(1) }
                }
            };
            Ok(match (lo, hi) {
                (Some(lo), Some(hi)) => Predicate::IntRange { lo, hi },
                _ => Predicate::IntRange { lo: 1, hi: 0 },
            })
        }
        FieldType::Float | FieldType::Double => {
            let lo = match lo {
                None => (f64::NEG_INFINITY, true),
                Some(text) => (float_literal(text).map_err(|m| (lo_at, m))?, lo_inclusive),
            };
            let hi = match hi {
                None => (f64::INFINITY, true),
                Some(text) => (float_literal(text).map_err(|m| (hi_at, m))?, hi_inclusive),
            };
            Ok(Predicate::FloatRange { lo: lo.0, lo_inclusive: lo.1, hi: hi.0, hi_inclusive: hi.1 })
        }
    }
}

/// `[+-]?digits` within `i64`.
fn int_literal(text: &str) -> Result<i64, String> {
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse().map_err(|_| format!("{text:?} is outside the 64-bit integer range"));
    }
    if has_type_suffix(text) {
        return Err(format!("numeric literals must not carry a type suffix, got {text:?}"));
    }
    Err(format!("expected an integer, got {text:?}"))
}

/// `[+-]? (digits [. digits*] | . digits) ([eE] [+-]? digits)?`, finite.
fn float_literal(text: &str) -> Result<f64, String> {
    if is_decimal(text) {
        return match text.parse::<f64>() {
            Ok(v) if v.is_finite() => Ok(v),
            _ => Err(format!("{text:?} is outside the double range")),
        };
    }
    if has_type_suffix(text) {
        return Err(format!("numeric literals must not carry a type suffix, got {text:?}"));
    }
    Err(format!("expected a number, got {text:?}"))
}

fn has_type_suffix(text: &str) -> bool {
    text.strip_suffix(['f', 'F', 'd', 'D', 'l', 'L']).is_some_and(is_decimal)
}

fn is_decimal(text: &str) -> bool {
    let b = text.as_bytes();
    let mut i = usize::from(matches!(b.first(), Some(b'+' | b'-')));
    let digits = |i: &mut usize| {
        let start = *i;
        while b.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i - start
    };
    let int_digits = digits(&mut i);
    let mut frac_digits = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        frac_digits = digits(&mut i);
    }
    if int_digits + frac_digits == 0 {
        return false;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::face_id::FaceId;
    use crate::schema::FieldValues;

    fn schema() -> Schema {
        Schema::parse(&json!({
            "number": {"type": "integer"}, "rowkey": {"type": "long"}, "title": {"type": "string"},
            "id": {"type": "string"}, "color": {"type": "string"}, "externalImageID": {"type": "string"},
            "timestamp": {"type": "long"}, "male": {"type": "boolean"}, "score": {"type": "float"},
            "weight": {"type": "double"}
        }))
        .expect("valid")
    }

    fn parse(text: &str) -> Filter {
        Filter::parse(text, &schema()).unwrap_or_else(|e| panic!("{text:?}: {e}"))
    }

    fn error(text: &str) -> FilterError {
        match Filter::parse(text, &schema()) {
            Ok(filter) => panic!("{text:?} parsed as {filter:?}"),
            Err(e) => e,
        }
    }

    fn face(values: serde_json::Value) -> FaceEntry {
        FaceEntry {
            face_id: FaceId::parse("PexOpqRj").expect("valid"),
            external_image_id: "img-1".into(),
            bbox: [0; 4],
            fields: schema().parse_values(&values).expect("valid values"),
        }
    }

    fn matches(text: &str, values: serde_json::Value) -> bool {
        parse(text).matches(&face(values))
    }

    fn pos(name: &str) -> usize {
        schema().field(name).expect("declared").0
    }

    fn term(name: &str, predicate: Predicate) -> Node {
        Node::Term(Term { target: Target::Field(pos(name)), predicate })
    }

    fn int(v: i64) -> Predicate {
        Predicate::IntRange { lo: v, hi: v }
    }

    #[test]
    fn spec_table_constructs() {
        assert_eq!(parse("number:10").root, term("number", int(10)));
        assert_eq!(parse("rowkey:[1 TO 10]").root, term("rowkey", Predicate::IntRange { lo: 1, hi: 10 }));
        assert_eq!(parse("rowkey:[1 TO *]").root, term("rowkey", Predicate::IntRange { lo: 1, hi: i64::MAX }));
        assert_eq!(parse("rowkey:[* TO 1]").root, term("rowkey", Predicate::IntRange { lo: i64::MIN, hi: 1 }));
        assert_eq!(parse("rowkey:{1 TO 10}").root, term("rowkey", Predicate::IntRange { lo: 2, hi: 9 }));
        assert_eq!(parse("rowkey:[1 TO 10}").root, term("rowkey", Predicate::IntRange { lo: 1, hi: 9 }));
        assert_eq!(parse("rowkey:{1 TO 10]").root, term("rowkey", Predicate::IntRange { lo: 2, hi: 10 }));
        assert_eq!(parse("title:quick").root, term("title", Predicate::Str("quick".into())));
        assert_eq!(parse("id:zhangsan").root, term("id", Predicate::Str("zhangsan".into())));
        assert_eq!(
            parse("title:quick && color:brown").root,
            Node::And(vec![
                term("title", Predicate::Str("quick".into())),
                term("color", Predicate::Str("brown".into()))
            ])
        );
        assert_eq!(
            parse("(rowkey:[1 TO *] && externalImageID:1) || timestamp:1000").root,
            Node::Or(vec![
                Node::And(vec![
                    term("rowkey", Predicate::IntRange { lo: 1, hi: i64::MAX }),
                    term("externalImageID", Predicate::Str("1".into()))
                ]),
                term("timestamp", int(1000)),
            ])
        );
        assert_eq!(
            parse("externalImageID:1 && (!rowkey:2)").root,
            Node::And(vec![
                term("externalImageID", Predicate::Str("1".into())),
                Node::Not(Box::new(term("rowkey", int(2))))
            ])
        );
        assert_eq!(parse("(!color:brown)").root, Node::Not(Box::new(term("color", Predicate::Str("brown".into())))));
        assert_eq!(parse("male:true").root, term("male", Predicate::Bool(true)));
        assert_eq!(parse("male:FALSE").root, term("male", Predicate::Bool(false)));
    }

    #[test]
    fn spec_examples() {
        let s = Schema::parse(&json!({"dept_no": {"type": "integer"}, "status": {"type": "string"}})).expect("valid");
        let f = Filter::parse("dept_no:[1 TO 20] && (!status:left)", &s).expect("search example");
        let entry = |values| FaceEntry {
            face_id: FaceId::parse("PexOpqRj").expect("valid"),
            external_image_id: "e".into(),
            bbox: [0; 4],
            fields: s.parse_values(&values).expect("valid"),
        };
        assert!(f.matches(&entry(json!({"dept_no": 20, "status": "active"}))));
        assert!(f.matches(&entry(json!({"dept_no": 1}))));
        assert!(!f.matches(&entry(json!({"dept_no": 21}))));
        assert!(!f.matches(&entry(json!({"dept_no": 5, "status": "left"}))));

        let s = Schema::parse(&json!({"timestamp": {"type": "long"}, "male": {"type": "boolean"}})).expect("valid");
        let f = Filter::parse("timestamp:[* TO 1690000000] && (!male:true)", &s).expect("batch delete example");
        let entry = |values| FaceEntry {
            face_id: FaceId::parse("PexOpqRj").expect("valid"),
            external_image_id: "e".into(),
            bbox: [0; 4],
            fields: s.parse_values(&values).expect("valid"),
        };
        assert!(f.matches(&entry(json!({"timestamp": 1690000000, "male": false}))));
        assert!(f.matches(&entry(json!({"timestamp": -5}))));
        assert!(!f.matches(&entry(json!({"timestamp": 1690000001, "male": false}))));
        assert!(!f.matches(&entry(json!({"timestamp": 1, "male": true}))));
        assert!(!f.matches(&entry(json!({"male": false}))), "absent timestamp never matches");
    }

    #[test]
    fn precedence_not_and_or() {
        let (a, b, c) = (term("number", int(1)), term("rowkey", int(2)), term("timestamp", int(3)));
        let not = |n: Node| Node::Not(Box::new(n));
        assert_eq!(
            parse("number:1 || rowkey:2 && !timestamp:3").root,
            Node::Or(vec![a.clone(), Node::And(vec![b.clone(), not(c.clone())])])
        );
        assert_eq!(
            parse("!number:1 && rowkey:2 || timestamp:3").root,
            Node::Or(vec![Node::And(vec![not(a.clone()), b.clone()]), c.clone()])
        );
        assert_eq!(
            parse("!(number:1 || rowkey:2) && timestamp:3").root,
            Node::And(vec![not(Node::Or(vec![a.clone(), b.clone()])), c.clone()])
        );
        assert_eq!(parse("!!number:1").root, not(not(a.clone())));
        assert_eq!(parse("((number:1))").root, a);
        // Whitespace is free around operators and inside ranges.
        assert_eq!(parse("number:1&&rowkey:2").root, parse(" number : 1 &&\trowkey:2 ").root);
        assert_eq!(parse("rowkey:[1TO 2]".replace("1TO", "1 TO").as_str()).root, parse("rowkey:[ 1  TO  2 ]").root);
        assert_eq!(parse("(!number:1)||(!rowkey:2)").root, Node::Or(vec![not(a), not(b)]));
    }

    #[test]
    fn evaluation() {
        assert!(matches("number:10", json!({"number": 10})));
        assert!(!matches("number:10", json!({"number": 11})));
        assert!(!matches("number:10", json!({})));
        assert!(matches("!number:10", json!({})), "absent never matches, so its negation does");
        assert!(matches("rowkey:{1 TO 10}", json!({"rowkey": 9})));
        assert!(!matches("rowkey:{1 TO 10}", json!({"rowkey": 10})));
        assert!(!matches("rowkey:{1 TO 10}", json!({"rowkey": 1})));
        assert!(matches("rowkey:[* TO *]", json!({"rowkey": i64::MIN})));
        assert!(!matches("rowkey:[* TO *]", json!({})));
        assert!(!matches("rowkey:{9223372036854775807 TO *]", json!({"rowkey": i64::MAX})));
        assert!(!matches("rowkey:[* TO -9223372036854775808}", json!({"rowkey": i64::MIN})));
        assert!(matches("rowkey:[* TO -9223372036854775808]", json!({"rowkey": i64::MIN})));
        assert!(!matches("rowkey:[5 TO 1]", json!({"rowkey": 3})));
        assert!(matches("score:1.5", json!({"score": 1.5})));
        assert!(matches("weight:2", json!({"weight": 2})));
        assert!(matches("weight:{1 TO 2.5}", json!({"weight": 2.4})));
        assert!(!matches("weight:{1 TO 2.5}", json!({"weight": 2.5})));
        assert!(!matches("weight:{1 TO 2.5}", json!({"weight": 1})));
        assert!(matches("weight:[1e0 TO *]", json!({"weight": 1e300})));
        assert!(matches("weight:[-2.5 TO -.5]", json!({"weight": -1})));
        assert!(matches("male:false", json!({"male": false})));
        assert!(!matches("male:false", json!({})));
        assert!(matches("title:quick && color:brown", json!({"title": "quick", "color": "brown"})));
        assert!(!matches("title:quick && color:brown", json!({"title": "quick"})));
        assert!(matches("title:张三", json!({"title": "张三"})));
        assert!(matches("title:\"张三\"", json!({"title": "张三"})));
        assert!(matches("external_image_id:img-1", json!({})));
        assert!(!matches("external_image_id:img-2", json!({})));
        assert!(matches("face_id:PexOpqRj", json!({})));
        assert!(!matches("face_id:pexopqrj", json!({})));
        assert!(matches("number:\"10\"", json!({"number": 10})), "quoting only groups characters");
    }

    #[test]
    fn quoted_values() {
        assert_eq!(parse(r#"title:"a b""#).root, term("title", Predicate::Str("a b".into())));
        assert_eq!(parse(r#"title:"say \"hi\" \\o/""#).root, term("title", Predicate::Str(r#"say "hi" \o/"#.into())));
        assert_eq!(parse(r#"title:"*""#).root, term("title", Predicate::Str("*".into())));
        assert_eq!(parse(r#"title:"&&:()""#).root, term("title", Predicate::Str("&&:()".into())));
        assert!(matches!(error(r#"title:"abc"#), FilterError::Syntax { at: 6, .. }));
        assert!(matches!(error(r#"title:"a\nb""#), FilterError::Syntax { at: 8, .. }));
        assert!(matches!(error(r#"title:"""#), FilterError::InvalidValue { at: 6, .. }));
    }

    #[test]
    fn literals_are_typed_by_the_field() {
        for ok in [
            "number:-12",
            "number:+7",
            "rowkey:9223372036854775807",
            "score:1",
            "score:-2.5",
            "score:1e3",
            "score:.5",
            "score:5.",
            "weight:1E-3",
            "number:99999999999",
        ] {
            parse(ok);
        }
        for (bad, at) in [
            ("number:1.0", 7),
            ("number:1e3", 7),
            ("number:abc", 7),
            ("number:1.0f", 7),
            ("number:100L", 7),
            ("rowkey:100l", 7),
            ("score:1.0f", 6),
            ("score:1.0d", 6),
            ("weight:1.0D", 7),
            ("score:abc", 6),
            ("score:1e999", 6),
            ("score:nan", 6),
            ("score:inf", 6),
            ("rowkey:9223372036854775808", 7),
            ("male:yes", 5),
            ("male:1", 5),
            ("title:*", 6),
            ("title:[a TO b]", 7),
            ("male:[true TO false]", 6),
            ("external_image_id:[1 TO 2]", 19),
            ("rowkey:[1.5 TO 2]", 8),
            ("rowkey:[1 TO 2x]", 13),
            ("score:[1 TO 2f]", 12),
        ] {
            match error(bad) {
                FilterError::InvalidValue { at: got, field, message } => {
                    assert_eq!(got, at, "{bad}: {message}");
                    assert!(bad.starts_with(&field), "{bad}: {field}");
                }
                other => panic!("{bad}: {other}"),
            }
        }
        let suffix = error("number:100L").to_string();
        assert!(suffix.contains("suffix") && suffix.contains("number") && suffix.contains("byte 7"), "{suffix}");
    }

    #[test]
    fn syntax_errors_say_where() {
        for (bad, at) in [
            ("(number:1", 0),
            ("number:1)", 8),
            ("()", 1),
            ("number:1 &&", 11),
            ("&& number:1", 0),
            ("number:1 || || rowkey:2", 12),
            ("number:1 & rowkey:2", 9),
            ("number:1 | rowkey:2", 9),
            ("number:1 rowkey:2", 9),
            ("number 1", 7),
            ("number:", 7),
            ("number::1", 7),
            ("!", 1),
            ("(!)", 2),
            ("rowkey:[1 10]", 10),
            ("rowkey:[1 TO 10", 15),
            ("rowkey:[1 TO 10)", 15),
            ("rowkey:[TO 10]", 8),
            ("rowkey:[1 to 10]", 10),
            ("rowkey:[\"1\" TO 10]", 8),
            ("number:1 (rowkey:2)", 9),
            ("number:1 !rowkey:2", 9),
            ("title:a:b", 7),
        ] {
            match error(bad) {
                FilterError::Syntax { at: got, message } => assert_eq!(got, at, "{bad}: {message}"),
                other => panic!("{bad}: {other}"),
            }
        }
        let message = error("(number:1").to_string();
        assert!(message.contains("byte 0") && message.contains("unbalanced"), "{message}");
    }

    #[test]
    fn unknown_fields_empty_and_long() {
        assert!(matches!(error("nope:1"), FilterError::UnknownField { at: 0, ref field } if field == "nope"));
        assert!(matches!(error("number:1 && Number:1"), FilterError::UnknownField { at: 12, .. }));
        assert!(matches!(error("similarity:1"), FilterError::UnknownField { .. }));
        assert!(matches!(error(""), FilterError::Empty));
        assert!(matches!(error(" \t\n"), FilterError::Empty));
        let long = vec!["number:1"; 500].join(" || ");
        assert!(long.len() > MAX_FILTER_LEN);
        assert!(matches!(error(&long), FilterError::TooLong { .. }));
        let fits = vec!["number:1"; 300].join("||");
        assert!(fits.len() <= MAX_FILTER_LEN);
        parse(&fits);
    }

    #[test]
    fn nesting_is_capped() {
        let nested = |depth: usize| format!("{}number:1{}", "(".repeat(depth), ")".repeat(depth));
        assert_eq!(parse(&nested(MAX_FILTER_DEPTH)).root, term("number", int(1)));
        assert!(matches!(error(&nested(MAX_FILTER_DEPTH + 1)), FilterError::TooDeep { at: 64 }));
        assert!(matches!(error(&nested(2000)), FilterError::TooDeep { .. }));
        assert!(matches!(error(&"(".repeat(4096)), FilterError::TooDeep { .. }));
        assert!(matches!(error(&format!("{}number:1", "!".repeat(4000))), FilterError::TooDeep { .. }));
        assert!(matches!(error(&"(!".repeat(2000)), FilterError::TooDeep { .. }));
        parse(&format!("{}number:1", "!".repeat(MAX_FILTER_DEPTH)));
        // Depth is nesting, not count: many sibling groups are fine.
        parse(&vec!["(number:1)"; 200].join("&&"));
    }

    #[test]
    fn field_equals_types_the_value() {
        let s = schema();
        let f = Filter::field_equals("number", "10", &s).expect("integer");
        assert_eq!(f.root, term("number", int(10)));
        let f = Filter::field_equals("title", "a b:c", &s).expect("raw string");
        assert_eq!(f.root, term("title", Predicate::Str("a b:c".into())));
        let f = Filter::field_equals("male", "true", &s).expect("boolean");
        assert_eq!(f.root, term("male", Predicate::Bool(true)));
        let f = Filter::field_equals("external_image_id", "img-1", &s).expect("built-in");
        assert!(f.matches(&face(json!({}))));
        let f = Filter::field_equals("face_id", "PexOpqRj", &s).expect("built-in");
        assert!(f.matches(&face(json!({}))));
        assert!(matches!(Filter::field_equals("number", "1.5", &s), Err(FilterError::InvalidValue { at: 0, .. })));
        assert!(matches!(Filter::field_equals("title", "", &s), Err(FilterError::InvalidValue { .. })));
        assert!(matches!(Filter::field_equals("nope", "1", &s), Err(FilterError::UnknownField { .. })));
        let f = Filter::field_equals("score", "0.1", &s).expect("float");
        let entry = FaceEntry { fields: FieldValues(vec![]), ..face(json!({"score": 0.1})) };
        assert!(!f.matches(&entry));
        assert!(f.matches(&face(json!({"score": 0.1}))));
    }
}
