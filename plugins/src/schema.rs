//! JSON Schema for plugin config, action and process schemas: the `jsonschema` crate validates;
//! this module is what we keep around it.
//!
//! Plugins describe their settings and the parameters of their actions and processes with JSON
//! Schema (draft 2020-12 unless a schema's `$schema` says otherwise; `$ref`, `pattern` and
//! `format` included), and every request body is checked against those schemas before a plugin
//! sees it. The registry compiles each schema once, at load ([`Schema::compile`]); requests
//! only run the compiled validator. Around the crate we keep:
//!
//! - **Field paths and messages.** Every violation carries a JSON-path style location such as
//!   `parameters.options[1]` (built from the crate's instance path; a missing required property
//!   and an unexpected additional one are reported at that property, because that is the field
//!   a client has to fix) and a Python-flavoured message (`'x' is not of type 'integer'`), the
//!   wording plugin authors know from Metagov. Violations come in a fixed order whatever the
//!   order the crate finds them in.
//! - **Defaults** ([`apply_defaults`]): JSON Schema does not fill them, Metagov does.
//! - **Integers** ([`Schema::check`]): a value the schema types `integer` is handed to the plugin
//!   as a 64-bit integer: `1e3` becomes `1000`, and one that does not fit (`2^64-1`, or a float
//!   beyond 2^53 that no longer says which integer it meant) is a violation, never a default.
//! - **A depth bound against hostile input.** The crate recurses over schemas and, for `const`,
//!   `enum`, `uniqueItems` and the errors of combinators, over instances. A schema is compiled at
//!   most `MAX_DEPTH` levels deep (deeper subschemas fail closed when reached), and an instance
//!   nested `MAX_DEPTH` levels or more is refused before the crate sees it. The helpers here that
//!   walk whole values (equality, hashing, cloning) use explicit stacks.
//! - **`format: "uri"`** keeps our meaning: an http(s) URL with a host, because every `uri`
//!   setting is an endpoint Agora calls. Every other format is the crate's.
//! - **A registration gate** ([`check_supported`]): a schema with an unknown keyword (a typo such
//!   as `maxLenght` would otherwise be ignored), a malformed keyword value, a pattern that does
//!   not compile or a `$ref` that does not resolve locally is refused when the plugin loads.
//!   Patterns use the `regex` engine: linear time, no backtracking to exploit.
//!
//! `x-secret` masking lives with the audit log (`actors/src/audit.rs`); `x-*` keywords are
//! annotations for the crate.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasher, Hash, Hasher};

use jsonschema::error::{TypeKind, ValidationErrorKind};
use jsonschema::paths::{Location, LocationSegment};
use jsonschema::{PatternOptions, ValidationError, Validator};
use serde_json::{Map, Number, Value};

/// How many schema levels are compiled, and how deeply an instance may nest. Real plugin
/// schemas are a handful of levels deep; the limit exists so a hostile or buggy document cannot
/// exhaust the stack.
const MAX_DEPTH: usize = 64;

/// Kept as one constant because the combinators recognise it: a branch that could not be
/// evaluated must not count as "failed" under `not`, `anyOf` or `oneOf`, or the depth limit
/// would turn into a way to sneak values through.
const TOO_DEEP: &str = "value is nested too deeply to validate (more than 64 levels)";

/// The keyword a subschema past `MAX_DEPTH` is replaced by: it fails with [`TOO_DEEP`]
/// wherever validation reaches it. Not an `x-` name, so [`check_supported`] refuses a plugin
/// schema that spells it.
const TOO_DEEP_KEYWORD: &str = "agoraTooDeep";

/// The largest magnitude at which every integer is an f64: a float beyond it no longer says
/// which integer the client meant.
const EXACT_FLOAT_INTEGER: f64 = 9_007_199_254_740_992.0;

/// Messages quote the offending value; a multi-megabyte string or array must not end up in an
/// error body or a log line.
const RENDER_MAX_BYTES: usize = 80;
const RENDER_MAX_DEPTH: usize = 3;

/// Keywords whose value is one subschema.
const SCHEMA_KEYWORDS: &[&str] = &[
    "additionalProperties",
    "additionalItems",
    "propertyNames",
    "not",
    "if",
    "then",
    "else",
    "contains",
    "unevaluatedItems",
    "unevaluatedProperties",
    "contentSchema",
];

/// Keywords whose value is an object of subschemas.
const SCHEMA_MAP_KEYWORDS: &[&str] = &[
    "properties",
    "patternProperties",
    "$defs",
    "definitions",
    "dependentSchemas",
    "dependencies",
];

/// Keywords whose value is an array of subschemas.
const SCHEMA_LIST_KEYWORDS: &[&str] = &["allOf", "anyOf", "oneOf", "prefixItems"];

/// Keywords that constrain or identify without holding subschemas (drafts 7 to 2020-12), and
/// annotations. `x-*` keys are accepted on top of these.
const OTHER_KEYWORDS: &[&str] = &[
    "type",
    "enum",
    "const",
    "multipleOf",
    "maximum",
    "exclusiveMaximum",
    "minimum",
    "exclusiveMinimum",
    "maxLength",
    "minLength",
    "pattern",
    "maxItems",
    "minItems",
    "uniqueItems",
    "maxContains",
    "minContains",
    "maxProperties",
    "minProperties",
    "required",
    "dependentRequired",
    "format",
    "contentEncoding",
    "contentMediaType",
    "$schema",
    "$id",
    "$ref",
    "$anchor",
    "$dynamicRef",
    "$dynamicAnchor",
    "$recursiveRef",
    "$recursiveAnchor",
    "$vocabulary",
    "$comment",
    "title",
    "description",
    "default",
    "examples",
    "deprecated",
    "readOnly",
    "writeOnly",
];

/// One violation: `path` is where in the instance it is ("" for the root, then `a.b[2].c`
/// style: object keys joined by '.', array indexes in brackets), `message` is a human sentence
/// like "'x' is not of type 'integer'".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaViolation {
    pub path: String,
    pub message: String,
}

impl fmt::Display for SchemaViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// A schema compiled once, validated against many times.
pub struct Schema {
    doc: Value,
    compiled: Result<Validator, String>,
}

impl fmt::Debug for Schema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Schema")
            .field("doc", &self.doc)
            .field("compiled", &self.compiled.is_ok())
            .finish()
    }
}

impl Schema {
    /// Compiles `doc` after [`check_supported`]; the error names the first problem.
    pub fn compile(doc: &Value) -> Result<Schema, String> {
        check_supported(doc)?;
        let schema = Schema::compile_unchecked(doc);
        if let Err(message) = &schema.compiled {
            return Err(message.clone());
        }
        Ok(schema)
    }

    /// Compiles whatever `doc` is: a schema that cannot compile fails every validation with a
    /// violation saying why (fail closed).
    fn compile_unchecked(doc: &Value) -> Schema {
        let (bounded, compiled) = match bounded_copy(doc, 0) {
            Bounded::Schema(bounded, _) => {
                let compiled = options()
                    .build(&bounded)
                    .map_err(|error| invalid_schema(&bounded, &error));
                (bounded, compiled)
            }
            Bounded::Malformed => (
                Value::Bool(false),
                Err("invalid schema: a schema must be an object or a boolean".into()),
            ),
        };
        Schema {
            doc: bounded,
            compiled,
        }
    }

    /// The schema as compiled: the plugin's document within the depth bound.
    pub fn doc(&self) -> &Value {
        &self.doc
    }

    /// Validates `instance`. Returns every violation found, in a fixed order: keywords as
    /// JSON Schema lists them (type, enum, const, the type-specific keywords, then the
    /// combinators), object keys sorted, array items by index.
    pub fn validate(&self, instance: &Value) -> Result<(), Vec<SchemaViolation>> {
        let validator = match &self.compiled {
            Ok(validator) => validator,
            Err(message) => {
                return Err(vec![SchemaViolation {
                    path: String::new(),
                    message: message.clone(),
                }])
            }
        };
        if let Some(path) = too_deep_at(instance) {
            return Err(vec![SchemaViolation {
                path,
                message: TOO_DEEP.to_owned(),
            }]);
        }
        if validator.is_valid(instance) {
            return Ok(());
        }
        let mut found: Vec<(Vec<SortPart>, SchemaViolation)> = Vec::new();
        for error in validator.iter_errors(instance) {
            describe(&self.doc, &error, &mut found);
        }
        found.sort_by(|a, b| a.0.cmp(&b.0));
        Err(found.into_iter().map(|(_, violation)| violation).collect())
    }

    /// Fills defaults, validates, and hands integers over as integers: what a plugin receives.
    /// The first violation is the error, its path prefixed with `at` (`parameters.low`).
    pub fn check(&self, value: &Value, at: &str) -> Result<Value, SchemaViolation> {
        let mut filled = apply_defaults(&self.doc, value);
        let prefixed = |mut violation: SchemaViolation| {
            violation.path = match (at.is_empty(), violation.path.is_empty()) {
                (true, _) => violation.path,
                (false, true) => at.to_owned(),
                (false, false) => format!("{at}.{}", violation.path),
            };
            violation
        };
        if let Err(mut violations) = self.validate(&filled) {
            return Err(prefixed(violations.swap_remove(0)));
        }
        integers(&self.doc, &mut filled, String::new(), 0).map_err(prefixed)?;
        Ok(filled)
    }
}

/// Where `schema` types a value `integer`, makes `value` hold it as an i64 (`1e3` becomes
/// `1000`); a value outside i64, or a float beyond 2^53, is the violation. For inputs checked by
/// hand rather than through [`Schema::check`] (vote specs).
pub fn integers_as_i64(schema: &Value, value: &mut Value) -> Result<(), SchemaViolation> {
    integers(schema, value, String::new(), 0)
}

/// Validates `instance` against `schema`, compiling it for this one call (tests and cold
/// paths; requests use a [`Schema`] compiled at load). A schema that does not compile is one
/// violation at the root.
pub fn validate(schema: &Value, instance: &Value) -> Result<(), Vec<SchemaViolation>> {
    Schema::compile_unchecked(schema).validate(instance)
}

/// Returns `instance` with `default` values from `properties` filled in for missing keys
/// (recursively for nested objects that are present or that themselves get a default).
/// Non-object instances are returned unchanged.
pub fn apply_defaults(schema: &Value, instance: &Value) -> Value {
    fill_defaults(schema, instance, 0)
}

/// Checks that a schema is one we enforce as written: at most `MAX_DEPTH` levels, only
/// JSON Schema keywords (and `x-*` extensions), well-formed keyword values, patterns that
/// compile and local references that resolve. Returns `Err(message)` naming the first problem
/// and its location as a JSON pointer into the schema (`#/properties/a`).
pub fn check_supported(schema: &Value) -> Result<(), String> {
    check_keywords(schema, "#", 0)?;
    match bounded_copy(schema, 0) {
        Bounded::Schema(_, true) => Err(format!(
            "a value in the schema at # is nested too deeply (more than {MAX_DEPTH} levels)"
        )),
        Bounded::Schema(prepared, false) => options()
            .build(&prepared)
            .map(|_| ())
            .map_err(|error| unsupported(schema, &error)),
        Bounded::Malformed => Err("schema at # must be an object or a boolean".to_owned()),
    }
}

fn options() -> jsonschema::ValidationOptions<'static> {
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .should_validate_formats(true)
        .should_ignore_unknown_formats(true)
        .with_format("uri", is_http_uri)
        .with_pattern_options(PatternOptions::regex())
        .with_keyword(TOO_DEEP_KEYWORD, |_, _, _| Ok(Box::new(TooDeep)))
}

struct TooDeep;

impl<'i> jsonschema::Keyword<'i> for TooDeep {
    fn validate(&self, _: &'i Value) -> Result<(), ValidationError<'i>> {
        Err(ValidationError::custom(TOO_DEEP))
    }
    fn is_valid(&self, _: &'i Value) -> bool {
        false
    }
}

// ---------------------------------------------------------------------------
// the depth bound

enum Bounded {
    /// The copy, and whether something below was cut.
    Schema(Value, bool),
    Malformed,
}

/// A copy of `schema` at most `MAX_DEPTH` subschema levels deep: a deeper subschema becomes
/// the [`TOO_DEEP_KEYWORD`] sentinel. Under `not` and `oneOf` a cut would let validation guess
/// (a branch that could not be evaluated neither matches nor fails), so a cut below them fails
/// the whole keyword instead. Recursion stops at `MAX_DEPTH`, so any input is safe.
fn bounded_copy(schema: &Value, depth: usize) -> Bounded {
    let keywords = match schema {
        Value::Bool(_) => return Bounded::Schema(schema.clone(), false),
        Value::Object(keywords) => keywords,
        _ => return Bounded::Malformed,
    };
    if depth >= MAX_DEPTH {
        return Bounded::Schema(sentinel(), true);
    }
    let mut out = Map::new();
    let mut cut = false;
    let mut poisoned = false;
    let sub = |value: &Value| -> (Value, bool) {
        match bounded_copy(value, depth + 1) {
            Bounded::Schema(copy, cut) => (copy, cut),
            // Left as written: the crate refuses it with its own message.
            Bounded::Malformed => (value.clone(), false),
        }
    };
    for (keyword, value) in keywords {
        let (copy, below) = if SCHEMA_KEYWORDS.contains(&keyword.as_str())
            || (keyword == "items" && value.is_object())
        {
            sub(value)
        } else if SCHEMA_MAP_KEYWORDS.contains(&keyword.as_str()) && value.is_object() {
            let mut below = false;
            let mut map = Map::new();
            for (name, subschema) in value.as_object().into_iter().flatten() {
                let (copy, c) = if subschema.is_array() {
                    // draft 7 `dependencies`: a list of property names.
                    (subschema.clone(), false)
                } else {
                    sub(subschema)
                };
                below |= c;
                map.insert(name.clone(), copy);
            }
            (Value::Object(map), below)
        } else if (SCHEMA_LIST_KEYWORDS.contains(&keyword.as_str()) || keyword == "items")
            && value.is_array()
        {
            let mut below = false;
            let mut list = Vec::new();
            for subschema in value.as_array().into_iter().flatten() {
                let (copy, c) = sub(subschema);
                below |= c;
                list.push(copy);
            }
            (Value::Array(list), below)
        } else if too_deep_at(value).is_some() {
            // A value no schema level bounds (`const`, `enum`, an annotation) nested past the
            // limit: comparing or cloning it could exhaust the stack. An assertion fails closed;
            // an annotation is dropped (defaults are filled from the plugin's own document).
            if keyword == "const" || keyword == "enum" {
                poisoned = true;
            }
            continue;
        } else {
            (deep_clone(value), false)
        };
        if below && (keyword == "not" || keyword == "oneOf") {
            poisoned = true;
            continue;
        }
        cut |= below;
        out.insert(keyword.clone(), copy);
    }
    if poisoned {
        out.insert(TOO_DEEP_KEYWORD.to_owned(), Value::Bool(true));
        cut = true;
    }
    Bounded::Schema(Value::Object(out), cut)
}

fn sentinel() -> Value {
    let mut map = Map::new();
    map.insert(TOO_DEEP_KEYWORD.to_owned(), Value::Bool(true));
    Value::Object(map)
}

/// The path of the first value (keys sorted) nested `MAX_DEPTH` levels deep, if any.
fn too_deep_at(instance: &Value) -> Option<String> {
    let mut pending: Vec<(&Value, usize, String)> = vec![(instance, 0, String::new())];
    while let Some((value, depth, path)) = pending.pop() {
        if depth >= MAX_DEPTH {
            return Some(path);
        }
        match value {
            Value::Array(items) => {
                for (index, item) in items.iter().enumerate().rev() {
                    pending.push((item, depth + 1, index_path(&path, index)));
                }
            }
            Value::Object(fields) => {
                for (name, field) in sorted_entries(fields).into_iter().rev() {
                    pending.push((field, depth + 1, key_path(&path, name)));
                }
            }
            _ => {}
        }
    }
    None
}

// ---------------------------------------------------------------------------
// integers

/// Where `schema` types a value `integer` (through `properties`, `items`, `prefixItems`,
/// `additionalProperties` and `allOf`), makes it an i64: an integral float within 2^53 becomes
/// the integer, anything outside i64 is a violation. The value already passed validation.
fn integers(
    schema: &Value,
    value: &mut Value,
    path: String,
    depth: usize,
) -> Result<(), SchemaViolation> {
    let Value::Object(keywords) = schema else {
        return Ok(());
    };
    if depth >= MAX_DEPTH {
        return Ok(());
    }
    let integer = match keywords.get("type") {
        Some(Value::String(name)) => name == "integer",
        Some(Value::Array(names)) => {
            names.iter().any(|n| n == "integer") && !names.iter().any(|n| n == "number")
        }
        _ => false,
    };
    if integer {
        if let Value::Number(number) = value {
            *value = Value::Number(as_i64(number).ok_or_else(|| SchemaViolation {
                path: path.clone(),
                message: format!(
                    "{} is outside the range of a 64-bit integer",
                    render(&Value::Number(number.clone()))
                ),
            })?);
        }
    }
    for branch in keywords
        .get("allOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        integers(branch, value, path.clone(), depth + 1)?;
    }
    match value {
        Value::Object(fields) => {
            let properties = keywords.get("properties").and_then(Value::as_object);
            let additional = keywords.get("additionalProperties");
            for (name, field) in fields.iter_mut() {
                let sub = match properties.and_then(|p| p.get(name)) {
                    Some(sub) => Some(sub),
                    None => additional,
                };
                if let Some(sub) = sub {
                    integers(sub, field, key_path(&path, name), depth + 1)?;
                }
            }
        }
        Value::Array(items) => {
            let prefix = keywords.get("prefixItems").and_then(Value::as_array);
            let rest = keywords.get("items").filter(|items| items.is_object());
            for (index, item) in items.iter_mut().enumerate() {
                let sub = match prefix.and_then(|p| p.get(index)) {
                    Some(sub) => Some(sub),
                    None => rest,
                };
                if let Some(sub) = sub {
                    integers(sub, item, index_path(&path, index), depth + 1)?;
                }
            }
        }
        _ => {}
    }
    Ok(())
}

fn as_i64(number: &Number) -> Option<Number> {
    if let Some(int) = number.as_i64() {
        return Some(Number::from(int));
    }
    if number.is_u64() {
        return None;
    }
    let float = number.as_f64()?;
    (float.fract() == 0.0 && float.abs() <= EXACT_FLOAT_INTEGER).then(|| Number::from(float as i64))
}

// ---------------------------------------------------------------------------
// errors: the crate's kinds in our words, at our paths

/// One step of a violation's sort key: keywords by their place in [`KEYWORD_ORDER`], property
/// names and indexes by value.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum SortPart {
    Keyword(usize),
    Index(usize),
    Name(String),
}

/// The order violations are reported in at one schema level.
const KEYWORD_ORDER: &[&str] = &[
    "type",
    "enum",
    "const",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "minLength",
    "maxLength",
    "pattern",
    "format",
    "contentEncoding",
    "contentMediaType",
    "minItems",
    "maxItems",
    "uniqueItems",
    "prefixItems",
    "items",
    "additionalItems",
    "contains",
    "minContains",
    "maxContains",
    "unevaluatedItems",
    "required",
    "dependentRequired",
    "properties",
    "patternProperties",
    "additionalProperties",
    "propertyNames",
    "minProperties",
    "maxProperties",
    "dependentSchemas",
    "dependencies",
    "unevaluatedProperties",
    "allOf",
    "anyOf",
    "oneOf",
    "not",
    "if",
    "then",
    "else",
    "$ref",
    "$dynamicRef",
    "$recursiveRef",
    TOO_DEEP_KEYWORD,
];

fn keyword_rank(keyword: &str) -> usize {
    KEYWORD_ORDER
        .iter()
        .position(|k| *k == keyword)
        .unwrap_or(KEYWORD_ORDER.len())
}

/// Builds the sort key of an error from its evaluation path (keywords, with `$ref` hops) and
/// its instance path: a keyword that descends into the instance consumes the next instance
/// segment, so items sort by index and properties by name.
fn sort_key(evaluation: &Location, instance: &Location) -> Vec<SortPart> {
    let mut key = Vec::new();
    let mut instance_segments = instance.iter();
    let mut schema_segments = evaluation.iter().peekable();
    while let Some(segment) = schema_segments.next() {
        let keyword = match &segment {
            LocationSegment::Property(keyword) => keyword.to_string(),
            LocationSegment::Index(index) => {
                key.push(SortPart::Index(*index));
                continue;
            }
        };
        key.push(SortPart::Keyword(keyword_rank(&keyword)));
        match keyword.as_str() {
            "properties" | "patternProperties" | "prefixItems" | "dependentSchemas" => {
                // The schema segment names the property (or position); the instance segment is
                // the same field.
                schema_segments.next();
                if let Some(field) = instance_segments.next() {
                    key.push(segment_part(&field));
                }
            }
            "items"
            | "additionalItems"
            | "additionalProperties"
            | "unevaluatedItems"
            | "unevaluatedProperties"
            | "contains" => {
                if let Some(field) = instance_segments.next() {
                    key.push(segment_part(&field));
                }
            }
            "$defs" | "definitions" => {
                schema_segments.next();
            }
            _ => {}
        }
    }
    key
}

fn segment_part(segment: &LocationSegment<'_>) -> SortPart {
    match segment {
        LocationSegment::Property(name) => SortPart::Name(name.to_string()),
        LocationSegment::Index(index) => SortPart::Index(*index),
    }
}

fn path_of(location: &Location) -> String {
    let mut path = String::new();
    for segment in location.iter() {
        match segment {
            LocationSegment::Property(name) => path = key_path(&path, &name),
            LocationSegment::Index(index) => path = index_path(&path, index),
        }
    }
    path
}

/// Turns one crate error into our violations (one per missing or unexpected property).
fn describe(
    doc: &Value,
    error: &ValidationError<'_>,
    out: &mut Vec<(Vec<SortPart>, SchemaViolation)>,
) {
    let path = path_of(error.instance_path());
    let key = sort_key(error.evaluation_path(), error.instance_path());
    let instance = error.instance().as_ref();
    let mut push = |key: Vec<SortPart>, path: String, message: String| {
        out.push((key, SchemaViolation { path, message }));
    };
    match error.kind() {
        ValidationErrorKind::Required { property } => {
            let name = property.as_str().unwrap_or_default();
            push(
                key,
                key_path(&path, name),
                format!("{} is a required property", quote(name)),
            );
        }
        ValidationErrorKind::AdditionalProperties { unexpected } => {
            let mut names: Vec<&String> = unexpected.iter().collect();
            names.sort();
            for name in names {
                let mut key = key.clone();
                key.push(SortPart::Name(name.clone()));
                push(
                    key,
                    key_path(&path, name),
                    format!(
                        "Additional properties are not allowed ({} was unexpected)",
                        quote(name)
                    ),
                );
            }
        }
        ValidationErrorKind::PropertyNames { error: inner } => {
            let name = inner.instance().as_str().unwrap_or_default().to_owned();
            let message = match message(doc, inner) {
                m if m == TOO_DEEP => m,
                m => format!("property name {m}"),
            };
            // Sorted by the name first, then by the keyword it broke.
            let mut key = key;
            let at = key
                .iter()
                .rposition(|part| *part == SortPart::Keyword(keyword_rank("propertyNames")))
                .map_or(key.len(), |at| at + 1);
            key.insert(at, SortPart::Name(name.clone()));
            push(key, key_path(&path, &name), message);
        }
        ValidationErrorKind::AnyOf { context } | ValidationErrorKind::OneOfNotValid { context } => {
            match first_too_deep(context) {
                Some((too_deep_path, too_deep_key)) => {
                    push(too_deep_key, too_deep_path, TOO_DEEP.to_owned())
                }
                None => push(
                    key,
                    path,
                    format!(
                        "{} is not valid under any of the given schemas",
                        render(instance)
                    ),
                ),
            }
        }
        _ => push(key, path, message(doc, error)),
    }
}

/// The first [`TOO_DEEP`] among a combinator's branch errors, with its path and sort key.
fn first_too_deep(context: &[Vec<ValidationError<'static>>]) -> Option<(String, Vec<SortPart>)> {
    let mut pending: Vec<&ValidationError<'static>> = context.iter().flatten().rev().collect();
    while let Some(error) = pending.pop() {
        match error.kind() {
            ValidationErrorKind::Custom { message, .. } if message == TOO_DEEP => {
                return Some((
                    path_of(error.instance_path()),
                    sort_key(error.evaluation_path(), error.instance_path()),
                ))
            }
            ValidationErrorKind::AnyOf { context }
            | ValidationErrorKind::OneOfNotValid { context }
            | ValidationErrorKind::OneOfMultipleValid { context } => {
                pending.extend(context.iter().flatten().rev());
            }
            _ => {}
        }
    }
    None
}

/// The message of one error about the value at its instance path.
fn message(doc: &Value, error: &ValidationError<'_>) -> String {
    let instance = error.instance().as_ref();
    let shown = || render(instance);
    match error.kind() {
        ValidationErrorKind::Type { kind } => {
            // The schema's own list, in its order; the crate's set when it cannot be found.
            let names: Vec<String> = match doc.pointer(error.schema_path().as_str()) {
                Some(Value::String(name)) => vec![quote(name)],
                Some(Value::Array(names)) => {
                    names.iter().filter_map(Value::as_str).map(quote).collect()
                }
                _ => match kind {
                    TypeKind::Single(t) => vec![quote(&t.to_string())],
                    TypeKind::Multiple(set) => set.iter().map(|t| quote(&t.to_string())).collect(),
                },
            };
            format!("{} is not of type {}", shown(), names.join(", "))
        }
        ValidationErrorKind::Enum { options } => {
            format!("{} is not one of {}", shown(), render(options))
        }
        ValidationErrorKind::Constant { expected_value } => {
            format!("{} was expected", render(expected_value))
        }
        ValidationErrorKind::Minimum { limit } => {
            format!("{} is less than the minimum of {}", shown(), render(limit))
        }
        ValidationErrorKind::Maximum { limit } => {
            format!(
                "{} is greater than the maximum of {}",
                shown(),
                render(limit)
            )
        }
        ValidationErrorKind::ExclusiveMinimum { limit } => format!(
            "{} is less than or equal to the minimum of {}",
            shown(),
            render(limit)
        ),
        ValidationErrorKind::ExclusiveMaximum { limit } => format!(
            "{} is greater than or equal to the maximum of {}",
            shown(),
            render(limit)
        ),
        ValidationErrorKind::MultipleOf { multiple_of } => {
            format!("{} is not a multiple of {multiple_of}", shown())
        }
        ValidationErrorKind::MinLength { limit } => format!(
            "{} is too short: expected at least {}",
            shown(),
            plural(*limit, "character")
        ),
        ValidationErrorKind::MaxLength { limit } => format!(
            "{} is too long: expected at most {}",
            shown(),
            plural(*limit, "character")
        ),
        ValidationErrorKind::Pattern { pattern } => {
            format!("{} does not match {}", shown(), quote(pattern))
        }
        ValidationErrorKind::Format { format } => {
            format!("{} is not a {}", shown(), quote(format))
        }
        ValidationErrorKind::MinItems { limit } => format!(
            "{} is too short: expected at least {}",
            shown(),
            plural(*limit, "item")
        ),
        ValidationErrorKind::MaxItems { limit } => format!(
            "{} is too long: expected at most {}",
            shown(),
            plural(*limit, "item")
        ),
        ValidationErrorKind::UniqueItems => {
            match instance.as_array().and_then(|a| first_duplicate(a)) {
                Some((first, second)) => format!(
                    "{} has non-unique elements (items {first} and {second} are equal)",
                    shown()
                ),
                None => format!("{} has non-unique elements", shown()),
            }
        }
        ValidationErrorKind::MinProperties { limit } => format!(
            "{} does not have enough properties: expected at least {}",
            shown(),
            plural(*limit, "property")
        ),
        ValidationErrorKind::MaxProperties { limit } => format!(
            "{} has too many properties: expected at most {}",
            shown(),
            plural(*limit, "property")
        ),
        ValidationErrorKind::FalseSchema => format!("False schema does not allow {}", shown()),
        ValidationErrorKind::Not { schema } => {
            format!("{} should not be valid under {}", shown(), render(schema))
        }
        ValidationErrorKind::OneOfMultipleValid { context } => {
            let valid: Vec<usize> = context
                .iter()
                .enumerate()
                .filter(|(_, errors)| errors.is_empty())
                .map(|(index, _)| index)
                .collect();
            match valid.as_slice() {
                [first, second, ..] => format!(
                    "{} is valid under more than one of the given schemas (schemas {first} and {second})",
                    shown()
                ),
                _ => format!("{} is valid under more than one of the given schemas", shown()),
            }
        }
        ValidationErrorKind::Custom { message, .. } => message.clone(),
        // The rest (contains, dependencies, unevaluated*, content*) in the crate's words.
        _ => error.to_string(),
    }
}

/// A compile error, as a violation message for [`validate`].
fn invalid_schema(doc: &Value, error: &ValidationError<'_>) -> String {
    let location = error.instance_path();
    let (keyword, value) = keyword_at(doc, location);
    match (keyword.as_deref(), value) {
        (Some("type"), Some(Value::String(name))) => {
            format!("invalid schema: unknown type {}", quote(name))
        }
        (Some(keyword), _) => format!(
            "invalid schema: '{keyword}' must be {}",
            expected_shape(keyword)
        ),
        (None, _) => format!("invalid schema: {error}"),
    }
}

/// A compile error, as a [`check_supported`] message.
fn unsupported(doc: &Value, error: &ValidationError<'_>) -> String {
    let location = error.instance_path();
    let pointer = format!("#{}", location.as_str());
    if let ValidationErrorKind::Referencing(reference) = error.kind() {
        return format!("a reference in the schema does not resolve: {reference}");
    }
    let (keyword, value) = keyword_at(doc, location);
    let tuple = keyword.as_deref() == Some("items") && value.is_some_and(Value::is_array);
    // The location names a subschema that is not one.
    if !tuple
        && matches!(error.kind(), ValidationErrorKind::Type { .. })
        && is_schema_position(location)
        && doc
            .pointer(location.as_str())
            .is_some_and(|v| !v.is_object() && !v.is_boolean())
    {
        return format!("schema at {pointer} must be an object or a boolean");
    }
    match keyword {
        Some(keyword) => {
            let parent = parent_pointer(doc, location);
            let detail = match error.kind() {
                ValidationErrorKind::Format { format } if format == "regex" => {
                    "a regular expression the regex engine accepts".to_owned()
                }
                _ => expected_shape(&keyword).to_owned(),
            };
            format!("keyword '{keyword}' at {parent} must be {detail}")
        }
        None => format!("schema at {pointer} is not supported: {error}"),
    }
}

/// Whether a pointer into a schema names a subschema position (`/properties/a`, `/allOf/1`,
/// `/not`) rather than a keyword's value.
fn is_schema_position(location: &Location) -> bool {
    let segments: Vec<String> = location.iter().map(|s| s.to_string()).collect();
    let mut index = 0;
    let mut at_schema = true;
    while index < segments.len() {
        let keyword = segments[index].as_str();
        if SCHEMA_KEYWORDS.contains(&keyword) || keyword == "items" {
            index += 1;
            at_schema = true;
            // `items` as an array (draft 7) is followed by an index.
            if keyword == "items"
                && segments
                    .get(index)
                    .is_some_and(|s| s.parse::<usize>().is_ok())
            {
                index += 1;
            }
        } else if SCHEMA_MAP_KEYWORDS.contains(&keyword) || SCHEMA_LIST_KEYWORDS.contains(&keyword)
        {
            if index + 1 >= segments.len() {
                return false;
            }
            index += 2;
            at_schema = true;
        } else {
            return false;
        }
    }
    at_schema
}

/// The keyword a pointer into a schema falls under (`/properties/a/type/0` → `type`), with its
/// value.
fn keyword_at<'a>(doc: &'a Value, location: &Location) -> (Option<String>, Option<&'a Value>) {
    let segments: Vec<String> = location.iter().map(|s| s.to_string()).collect();
    let mut index = 0;
    let mut pointer = String::new();
    while index < segments.len() {
        let keyword = segments[index].clone();
        let descends = SCHEMA_KEYWORDS.contains(&keyword.as_str())
            || SCHEMA_MAP_KEYWORDS.contains(&keyword.as_str())
            || SCHEMA_LIST_KEYWORDS.contains(&keyword.as_str())
            || keyword == "items";
        let here = format!("{pointer}/{}", escape(&keyword));
        let steps = if SCHEMA_MAP_KEYWORDS.contains(&keyword.as_str())
            || SCHEMA_LIST_KEYWORDS.contains(&keyword.as_str())
            || (keyword == "items" && doc.pointer(&here).is_some_and(Value::is_array))
        {
            2
        } else {
            1
        };
        if !descends || index + steps >= segments.len() {
            return (Some(keyword), doc.pointer(&here));
        }
        for segment in &segments[index..index + steps] {
            pointer.push('/');
            pointer.push_str(&escape(segment));
        }
        index += steps;
    }
    (None, None)
}

/// `#` plus the pointer of the schema object that holds the keyword `location` falls under.
fn parent_pointer(doc: &Value, location: &Location) -> String {
    let segments: Vec<String> = location.iter().map(|s| s.to_string()).collect();
    let (keyword, _) = keyword_at(doc, location);
    let Some(keyword) = keyword else {
        return "#".to_owned();
    };
    // The last occurrence of the keyword at a schema position is where it sits.
    let mut pointer = String::from("#");
    let mut last = String::from("#");
    for segment in &segments {
        if *segment == keyword {
            last = pointer.clone();
        }
        pointer.push('/');
        pointer.push_str(&escape(segment));
    }
    last
}

fn escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// What a keyword's value must be, for messages.
fn expected_shape(keyword: &str) -> &'static str {
    match keyword {
        "type" => "one of null, boolean, object, array, number, string, integer or a non-empty array of them",
        "items" => "a schema (the tuple form is `prefixItems` in draft 2020-12)",
        "exclusiveMinimum" | "exclusiveMaximum" => {
            "a number (the draft-04 boolean form is not supported)"
        }
        "minimum" | "maximum" => "a number",
        "multipleOf" => "a number greater than 0",
        "minItems" | "maxItems" | "minLength" | "maxLength" | "minProperties"
        | "maxProperties" | "minContains" | "maxContains" => "a non-negative integer",
        "required" => "an array of strings",
        "allOf" | "anyOf" | "oneOf" | "prefixItems" => "a non-empty array of schemas",
        "properties" | "patternProperties" | "$defs" | "definitions" | "dependentSchemas" => {
            "an object mapping names to schemas"
        }
        "uniqueItems" => "a boolean",
        "enum" => "an array",
        "format" | "pattern" | "$ref" | "$schema" | "$id" | "$anchor" | "$comment" => "a string",
        "dependentRequired" => "an object mapping property names to arrays of strings",
        _ => "a schema",
    }
}

/// Refuses keywords JSON Schema does not define (typos would otherwise be ignored) and
/// schemas nested deeper than `MAX_DEPTH`; the first problem in key order, depth first.
fn check_keywords(schema: &Value, location: &str, depth: usize) -> Result<(), String> {
    if depth >= MAX_DEPTH {
        return Err(format!(
            "schema at {location} is nested too deeply (more than {MAX_DEPTH} levels)"
        ));
    }
    let Value::Object(keywords) = schema else {
        return Ok(());
    };
    for (keyword, value) in sorted_entries(keywords) {
        let here = pointer(location, keyword);
        if keyword.starts_with("x-") || OTHER_KEYWORDS.contains(&keyword.as_str()) {
            continue;
        }
        if SCHEMA_KEYWORDS.contains(&keyword.as_str()) || (keyword == "items" && !value.is_array())
        {
            check_keywords(value, &here, depth + 1)?;
        } else if SCHEMA_MAP_KEYWORDS.contains(&keyword.as_str()) {
            for (name, subschema) in value.as_object().map(sorted_entries).unwrap_or_default() {
                check_keywords(subschema, &pointer(&here, name), depth + 1)?;
            }
        } else if SCHEMA_LIST_KEYWORDS.contains(&keyword.as_str()) || keyword == "items" {
            for (index, subschema) in value.as_array().into_iter().flatten().enumerate() {
                check_keywords(subschema, &pointer(&here, &index.to_string()), depth + 1)?;
            }
        } else {
            return Err(format!("unsupported keyword '{keyword}' at {location}"));
        }
    }
    Ok(())
}

/// Appends one RFC 6901 reference token.
fn pointer(location: &str, token: &str) -> String {
    format!("{location}/{}", escape(token))
}

fn key_path(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_owned()
    } else {
        format!("{parent}.{key}")
    }
}

fn index_path(parent: &str, index: usize) -> String {
    format!("{parent}[{index}]")
}

/// Map iteration order is not something to rely on should `preserve_order` ever be turned on
/// somewhere in the dependency graph.
fn sorted_entries(map: &Map<String, Value>) -> Vec<(&String, &Value)> {
    let mut entries: Vec<_> = map.iter().collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    entries
}

fn plural(count: u64, noun: &str) -> String {
    match (count, noun) {
        (1, _) => format!("1 {noun}"),
        (_, "property") => format!("{count} properties"),
        _ => format!("{count} {noun}s"),
    }
}

// ---------------------------------------------------------------------------
// numbers and equality

/// JSON Schema compares numbers by value, so `1` and `1.0` are the same
/// number. Integer-valued floats are folded into `Int` so that equality and
/// hashing agree with each other.
#[derive(Clone, Copy)]
enum Canonical {
    Int(i128),
    Float(f64),
}

fn canonical(number: &Number) -> Canonical {
    if let Some(int) = number.as_i64() {
        return Canonical::Int(i128::from(int));
    }
    if let Some(int) = number.as_u64() {
        return Canonical::Int(i128::from(int));
    }
    match number.as_f64() {
        Some(float) if float.fract() == 0.0 && float.abs() < 2f64.powi(127) => {
            Canonical::Int(float as i128)
        }
        Some(float) => Canonical::Float(float),
        None => Canonical::Float(f64::NAN),
    }
}

fn numbers_equal(a: &Number, b: &Number) -> bool {
    match (canonical(a), canonical(b)) {
        (Canonical::Int(a), Canonical::Int(b)) => a == b,
        (Canonical::Float(a), Canonical::Float(b)) => a == b,
        _ => false,
    }
}

/// JSON Schema equality (numbers by value, objects regardless of key order).
/// Iterative because `serde_json`'s own `==` recurses and the values compared
/// here come straight from clients.
fn json_equal(a: &Value, b: &Value) -> bool {
    let mut pending = vec![(a, b)];
    while let Some(pair) = pending.pop() {
        match pair {
            (Value::Null, Value::Null) => {}
            (Value::Bool(a), Value::Bool(b)) if a == b => {}
            (Value::Number(a), Value::Number(b)) if numbers_equal(a, b) => {}
            (Value::String(a), Value::String(b)) if a == b => {}
            (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
                pending.extend(a.iter().zip(b));
            }
            (Value::Object(a), Value::Object(b)) if a.len() == b.len() => {
                for (key, a_value) in a {
                    match b.get(key) {
                        Some(b_value) => pending.push((a_value, b_value)),
                        None => return false,
                    }
                }
            }
            _ => return false,
        }
    }
    true
}

/// A hash consistent with [`json_equal`], so `uniqueItems` only compares
/// candidates that can be equal instead of every pair (quadratic on a large
/// hostile array). Seeded per call so collisions cannot be precomputed.
fn structural_hash(value: &Value, state: &RandomState) -> u64 {
    enum Token<'a> {
        Value(&'a Value),
        Key(&'a str),
    }
    let mut hasher = state.build_hasher();
    let mut pending = vec![Token::Value(value)];
    while let Some(token) = pending.pop() {
        let value = match token {
            Token::Key(key) => {
                key.hash(&mut hasher);
                continue;
            }
            Token::Value(value) => value,
        };
        match value {
            Value::Null => 0u8.hash(&mut hasher),
            Value::Bool(flag) => (1u8, flag).hash(&mut hasher),
            Value::Number(number) => match canonical(number) {
                Canonical::Int(int) => (2u8, int).hash(&mut hasher),
                Canonical::Float(float) => (3u8, float.to_bits()).hash(&mut hasher),
            },
            Value::String(text) => (4u8, text).hash(&mut hasher),
            Value::Array(items) => {
                (5u8, items.len()).hash(&mut hasher);
                pending.extend(items.iter().rev().map(Token::Value));
            }
            Value::Object(fields) => {
                (6u8, fields.len()).hash(&mut hasher);
                // Sorted so that key order never changes the hash.
                for (key, field) in sorted_entries(fields).into_iter().rev() {
                    pending.push(Token::Value(field));
                    pending.push(Token::Key(key));
                }
            }
        }
    }
    hasher.finish()
}

fn first_duplicate(items: &[Value]) -> Option<(usize, usize)> {
    let state = RandomState::new();
    let mut buckets: HashMap<u64, Vec<usize>> = HashMap::new();
    for (index, item) in items.iter().enumerate() {
        let bucket = buckets.entry(structural_hash(item, &state)).or_default();
        let earlier = bucket.iter().copied().find(|&earlier| {
            items
                .get(earlier)
                .is_some_and(|earlier| json_equal(earlier, item))
        });
        if let Some(earlier) = earlier {
            return Some((earlier, index));
        }
        bucket.push(index);
    }
    None
}

// ---------------------------------------------------------------------------
// formats

/// Our `uri` settings are webhook and API endpoints, so the useful check is
/// "an http(s) URL with a host", not full RFC 3986 conformance.
fn is_http_uri(text: &str) -> bool {
    if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return false;
    }
    let Some(rest) = strip_prefix_ignore_case(text, "http://")
        .or_else(|| strip_prefix_ignore_case(text, "https://"))
    else {
        return false;
    };
    let authority = match rest.find(['/', '?', '#']) {
        Some(end) => rest.get(..end).unwrap_or_default(),
        None => rest,
    };
    let host_and_port = match authority.rfind('@') {
        Some(at) => authority.get(at + 1..).unwrap_or_default(),
        None => authority,
    };
    let (host, port) = if let Some(bracketed) = host_and_port.strip_prefix('[') {
        let Some((literal, tail)) = bracketed.split_once(']') else {
            return false;
        };
        if literal.is_empty()
            || !literal
                .chars()
                .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
        {
            return false;
        }
        let port = match tail.strip_prefix(':') {
            Some(port) => port,
            None if tail.is_empty() => "",
            None => return false,
        };
        (literal, port)
    } else {
        let (host, port) = host_and_port
            .rsplit_once(':')
            .unwrap_or((host_and_port, ""));
        // RFC 3986 reg-name: unreserved, percent-encoded and sub-delims; non-
        // ASCII letters are let through for internationalised domain names.
        if !host
            .chars()
            .all(|c| c.is_alphanumeric() || "-._~%!$&'()*+,;=".contains(c))
        {
            return false;
        }
        (host, port)
    };
    !host.is_empty() && port.chars().all(|c| c.is_ascii_digit())
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    if head.eq_ignore_ascii_case(prefix) {
        text.get(prefix.len()..)
    } else {
        None
    }
}

// ---------------------------------------------------------------------------
// rendering values for messages

fn render(value: &Value) -> String {
    let mut out = String::new();
    write_value(value, &mut out, 0);
    bounded(out)
}

fn quote(text: &str) -> String {
    let mut out = String::new();
    write_str(text, &mut out);
    bounded(out)
}

fn bounded(mut out: String) -> String {
    if out.len() > RENDER_MAX_BYTES {
        let mut cut = RENDER_MAX_BYTES;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
        out.push_str("...");
    }
    out
}

/// Python-flavoured (single-quoted strings) because that is what plugin
/// authors coming from Metagov recognise; stops early once the output is
/// long enough to be truncated anyway.
fn write_value(value: &Value, out: &mut String, depth: usize) {
    if out.len() > RENDER_MAX_BYTES {
        return;
    }
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(flag) => out.push_str(if *flag { "true" } else { "false" }),
        Value::Number(number) => out.push_str(&number.to_string()),
        Value::String(text) => write_str(text, out),
        Value::Array(items) => {
            if depth >= RENDER_MAX_DEPTH && !items.is_empty() {
                out.push_str("[...]");
                return;
            }
            out.push('[');
            for (index, item) in items.iter().enumerate() {
                if out.len() > RENDER_MAX_BYTES {
                    break;
                }
                if index > 0 {
                    out.push_str(", ");
                }
                write_value(item, out, depth + 1);
            }
            out.push(']');
        }
        Value::Object(fields) => {
            if depth >= RENDER_MAX_DEPTH && !fields.is_empty() {
                out.push_str("{...}");
                return;
            }
            out.push('{');
            for (index, (key, field)) in sorted_entries(fields).into_iter().enumerate() {
                if out.len() > RENDER_MAX_BYTES {
                    break;
                }
                if index > 0 {
                    out.push_str(", ");
                }
                write_str(key, out);
                out.push_str(": ");
                write_value(field, out, depth + 1);
            }
            out.push('}');
        }
    }
}

fn write_str(text: &str, out: &mut String) {
    out.push('\'');
    for c in text.chars() {
        if out.len() > RENDER_MAX_BYTES {
            break;
        }
        match c {
            '\'' => out.push_str("\\'"),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('\'');
}

// ---------------------------------------------------------------------------
// apply_defaults

fn fill_defaults(schema: &Value, instance: &Value, depth: usize) -> Value {
    let (Value::Object(fields), Some(Value::Object(properties))) =
        (instance, schema.get("properties"))
    else {
        return deep_clone(instance);
    };
    if depth >= MAX_DEPTH {
        return deep_clone(instance);
    }
    let mut filled = Map::new();
    for (name, value) in fields {
        let value = match properties.get(name) {
            Some(property_schema) => fill_defaults(property_schema, value, depth + 1),
            None => deep_clone(value),
        };
        filled.insert(name.clone(), value);
    }
    for (name, property_schema) in sorted_entries(properties) {
        if filled.contains_key(name) {
            continue;
        }
        if let Some(default) = property_schema.get("default") {
            // A defaulted object may itself lack keys its schema has defaults for.
            let value = fill_defaults(property_schema, default, depth + 1);
            filled.insert(name.clone(), value);
        }
    }
    Value::Object(filled)
}

/// `Value::clone` recurses once per nesting level; this does not, so a deeply
/// nested client value cannot overflow the stack while we copy it.
fn deep_clone(value: &Value) -> Value {
    enum Frame<'a> {
        Array(std::slice::Iter<'a, Value>, Vec<Value>),
        Object(serde_json::map::Iter<'a>, Map<String, Value>, String),
    }

    fn open<'a>(value: &'a Value, stack: &mut Vec<Frame<'a>>) -> Option<Value> {
        match value {
            Value::Array(items) => {
                stack.push(Frame::Array(items.iter(), Vec::with_capacity(items.len())));
                None
            }
            Value::Object(fields) => {
                stack.push(Frame::Object(fields.iter(), Map::new(), String::new()));
                None
            }
            scalar => Some(scalar.clone()),
        }
    }

    let mut stack = Vec::new();
    let mut finished = open(value, &mut stack);
    loop {
        if let Some(done) = finished.take() {
            match stack.last_mut() {
                None => return done,
                Some(Frame::Array(_, items)) => items.push(done),
                Some(Frame::Object(_, fields, key)) => {
                    fields.insert(std::mem::take(key), done);
                }
            }
        }
        let next = match stack.last_mut() {
            None => return Value::Null,
            Some(Frame::Array(items, _)) => items.next(),
            Some(Frame::Object(fields, _, pending_key)) => fields.next().map(|(key, field)| {
                pending_key.clone_from(key);
                field
            }),
        };
        finished = match next {
            Some(child) => open(child, &mut stack),
            None => match stack.pop() {
                Some(Frame::Array(_, items)) => Some(Value::Array(items)),
                Some(Frame::Object(_, fields, _)) => Some(Value::Object(fields)),
                None => Some(Value::Null),
            },
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn violations(schema: &Value, instance: &Value) -> Vec<(String, String)> {
        match validate(schema, instance) {
            Ok(()) => Vec::new(),
            Err(found) => found.into_iter().map(|v| (v.path, v.message)).collect(),
        }
    }

    fn messages(schema: &Value, instance: &Value) -> Vec<String> {
        violations(schema, instance)
            .into_iter()
            .map(|(_, message)| message)
            .collect()
    }

    fn one(path: &str, message: &str) -> Vec<(String, String)> {
        vec![(path.to_owned(), message.to_owned())]
    }

    fn nested_arrays(depth: usize) -> Value {
        let mut value = json!(1);
        for _ in 0..depth {
            value = Value::Array(vec![value]);
        }
        value
    }

    /// `json!` serialises interpolated values recursively, so deep test
    /// values are assembled by hand.
    fn object(entries: Vec<(&str, Value)>) -> Value {
        Value::Object(
            entries
                .into_iter()
                .map(|(key, value)| (key.to_owned(), value))
                .collect(),
        )
    }

    fn nested_schema(keyword: &str, depth: usize) -> Value {
        let mut schema = json!(true);
        for _ in 0..depth {
            schema = object(vec![(keyword, schema)]);
        }
        schema
    }

    /// Dropping a deeply nested `Value` recurses too; take it apart by hand
    /// so the tests exercise our code rather than serde_json's destructor.
    fn dismantle(value: Value) {
        let mut pending = vec![value];
        while let Some(value) = pending.pop() {
            match value {
                Value::Array(items) => pending.extend(items),
                Value::Object(fields) => pending.extend(fields.into_iter().map(|(_, v)| v)),
                _ => {}
            }
        }
    }

    #[test]
    fn type_keyword_accepts_and_rejects_each_type() {
        let cases = [
            ("null", json!(null), json!(0)),
            ("boolean", json!(true), json!("true")),
            ("object", json!({}), json!([])),
            ("array", json!([]), json!({})),
            ("number", json!(1.5), json!("1.5")),
            ("string", json!("x"), json!(1)),
            ("integer", json!(7), json!(7.5)),
        ];
        for (name, good, bad) in cases {
            let schema = json!({ "type": name });
            assert!(
                validate(&schema, &good).is_ok(),
                "{name} should accept {good}"
            );
            assert!(
                validate(&schema, &bad).is_err(),
                "{name} should reject {bad}"
            );
        }
    }

    #[test]
    fn type_message_uses_jsonschema_wording() {
        assert_eq!(
            violations(&json!({"type": "integer"}), &json!("x")),
            one("", "'x' is not of type 'integer'")
        );
        assert_eq!(
            messages(&json!({"type": ["string", "null"]}), &json!(3)),
            vec!["3 is not of type 'string', 'null'"]
        );
    }

    #[test]
    fn integer_means_no_fractional_part() {
        let schema = json!({"type": "integer"});
        assert!(validate(&schema, &json!(1)).is_ok());
        assert!(validate(&schema, &json!(-3)).is_ok());
        assert!(validate(&schema, &json!(1.0)).is_ok());
        assert!(validate(&schema, &json!(u64::MAX)).is_ok());
        assert!(validate(&schema, &json!(1e20)).is_ok());
        assert_eq!(
            messages(&schema, &json!(1.5)),
            vec!["1.5 is not of type 'integer'"]
        );
        // "number" includes integers.
        assert!(validate(&json!({"type": "number"}), &json!(3)).is_ok());
    }

    #[test]
    fn type_array_matches_any_listed_type() {
        let schema = json!({"type": ["integer", "null"]});
        assert!(validate(&schema, &json!(null)).is_ok());
        assert!(validate(&schema, &json!(2)).is_ok());
        assert!(validate(&schema, &json!("2")).is_err());
    }

    #[test]
    fn unknown_or_malformed_type_fails_closed() {
        assert_eq!(
            messages(&json!({"type": "interger"}), &json!(1)),
            vec!["invalid schema: unknown type 'interger'"]
        );
        assert!(validate(&json!({"type": 5}), &json!(1)).is_err());
        assert!(validate(&json!({"type": []}), &json!(1)).is_err());
        assert!(validate(&json!({"type": ["string", 1]}), &json!("a")).is_err());
    }

    #[test]
    fn properties_validate_present_keys_only() {
        let schema = json!({"properties": {"a": {"type": "string"}, "b": {"type": "integer"}}});
        assert!(validate(&schema, &json!({})).is_ok());
        assert!(validate(&schema, &json!({"a": "x", "b": 2, "c": null})).is_ok());
        assert_eq!(
            violations(&schema, &json!({"b": "two"})),
            one("b", "'two' is not of type 'integer'")
        );
        // Type-specific keywords do not apply to other types.
        assert!(validate(&schema, &json!("not an object")).is_ok());
    }

    #[test]
    fn required_reports_the_missing_field() {
        let schema = json!({"type": "object", "required": ["name", "age"]});
        assert!(validate(&schema, &json!({"name": "a", "age": 1})).is_ok());
        assert_eq!(
            violations(&schema, &json!({"age": 1})),
            one("name", "'name' is a required property")
        );
        let nested = json!({"properties": {"user": {"required": ["id"]}}});
        assert_eq!(
            violations(&nested, &json!({"user": {}})),
            one("user.id", "'id' is a required property")
        );
        assert!(validate(&json!({"required": "name"}), &json!({})).is_err());
    }

    #[test]
    fn additional_properties_false_names_each_unexpected_key() {
        let schema = json!({"properties": {"a": {}}, "additionalProperties": false});
        assert!(validate(&schema, &json!({"a": 1})).is_ok());
        assert_eq!(
            violations(&schema, &json!({"a": 1, "z": 2, "b": 3})),
            vec![
                (
                    "b".to_owned(),
                    "Additional properties are not allowed ('b' was unexpected)".to_owned()
                ),
                (
                    "z".to_owned(),
                    "Additional properties are not allowed ('z' was unexpected)".to_owned()
                ),
            ]
        );
    }

    #[test]
    fn additional_properties_schema_applies_to_extra_keys() {
        let schema = json!({
            "properties": {"name": {"type": "string"}},
            "additionalProperties": {"type": "integer"}
        });
        assert!(validate(&schema, &json!({"name": "n", "x": 1, "y": 2})).is_ok());
        assert_eq!(
            violations(&schema, &json!({"name": "n", "x": "1"})),
            one("x", "'1' is not of type 'integer'")
        );
        assert!(validate(&json!({"additionalProperties": true}), &json!({"q": 1})).is_ok());
        // Without `properties`, every key is additional.
        assert!(validate(&json!({"additionalProperties": false}), &json!({"q": 1})).is_err());
    }

    #[test]
    fn items_validate_every_element_with_index_paths() {
        let schema = json!({"type": "array", "items": {"type": "string"}});
        assert!(validate(&schema, &json!([])).is_ok());
        assert!(validate(&schema, &json!(["a", "b"])).is_ok());
        assert_eq!(
            violations(&schema, &json!(["a", 1, "c", false])),
            vec![
                ("[1]".to_owned(), "1 is not of type 'string'".to_owned()),
                ("[3]".to_owned(), "false is not of type 'string'".to_owned()),
            ]
        );
        assert!(validate(&json!({"items": [{"type": "string"}]}), &json!(["a"])).is_err());
    }

    #[test]
    fn nested_paths_join_keys_with_dots_and_indexes_with_brackets() {
        let schema = json!({
            "type": "object",
            "properties": {
                "parameters": {
                    "type": "object",
                    "properties": {
                        "options": {"type": "array", "items": {"type": "string"}},
                        "rows": {
                            "type": "array",
                            "items": {"type": "array", "items": {
                                "type": "object",
                                "properties": {"id": {"type": "integer"}}
                            }}
                        }
                    }
                }
            }
        });
        let instance = json!({
            "parameters": {
                "options": ["yes", 2, "no"],
                "rows": [[{"id": 1}], [{"id": 2}, {"id": "three"}]]
            }
        });
        assert_eq!(
            violations(&schema, &instance),
            vec![
                (
                    "parameters.options[1]".to_owned(),
                    "2 is not of type 'string'".to_owned()
                ),
                (
                    "parameters.rows[1][1].id".to_owned(),
                    "'three' is not of type 'integer'".to_owned()
                ),
            ]
        );
        assert_eq!(
            violations(&json!({"items": {"type": "integer"}}), &json!([1, "x"])),
            one("[1]", "'x' is not of type 'integer'")
        );
    }

    #[test]
    fn min_and_max_items() {
        let schema = json!({"minItems": 1, "maxItems": 2});
        assert!(validate(&schema, &json!([1])).is_ok());
        assert!(validate(&schema, &json!([1, 2])).is_ok());
        assert_eq!(
            messages(&schema, &json!([])),
            vec!["[] is too short: expected at least 1 item"]
        );
        assert_eq!(
            messages(&schema, &json!([1, 2, 3])),
            vec!["[1, 2, 3] is too long: expected at most 2 items"]
        );
        assert!(validate(&json!({"minItems": 2.0}), &json!([1, 2])).is_ok());
        assert!(validate(&json!({"minItems": -1}), &json!([])).is_err());
        assert!(validate(&json!({"maxItems": "2"}), &json!([])).is_err());
    }

    #[test]
    fn unique_items_compares_by_json_value() {
        let schema = json!({"uniqueItems": true});
        assert!(validate(&schema, &json!([1, 2, "1", [1], {"a": 1}, {"a": 2}])).is_ok());
        assert_eq!(
            messages(&schema, &json!([1, 2, 1])),
            vec!["[1, 2, 1] has non-unique elements (items 0 and 2 are equal)"]
        );
        // 1 and 1.0 are the same number; key order does not matter.
        assert!(validate(&schema, &json!([1, 1.0])).is_err());
        assert!(validate(&schema, &json!([{"a": 1, "b": [2]}, {"b": [2.0], "a": 1}])).is_err());
        assert!(validate(&json!({"uniqueItems": false}), &json!([1, 1])).is_ok());
        assert!(validate(&json!({"uniqueItems": "yes"}), &json!([1])).is_err());
    }

    #[test]
    fn unique_items_handles_many_elements() {
        let items: Vec<Value> = (0..20_000).map(|i| json!({"id": i})).collect();
        assert!(validate(&json!({"uniqueItems": true}), &Value::Array(items.clone())).is_ok());
        let mut with_duplicate = items;
        with_duplicate.push(json!({"id": 19_999.0}));
        let found = messages(&json!({"uniqueItems": true}), &Value::Array(with_duplicate));
        assert_eq!(found.len(), 1);
        assert!(
            found[0].ends_with("(items 19999 and 20000 are equal)"),
            "{found:?}"
        );
    }

    #[test]
    fn enum_and_const() {
        let schema = json!({"enum": ["a", "b", 3]});
        assert!(validate(&schema, &json!("a")).is_ok());
        assert!(validate(&schema, &json!(3.0)).is_ok());
        assert_eq!(
            messages(&schema, &json!("c")),
            vec!["'c' is not one of ['a', 'b', 3]"]
        );
        assert!(validate(&json!({"enum": [{"x": [1]}]}), &json!({"x": [1]})).is_ok());
        assert!(validate(&json!({"enum": "a"}), &json!("a")).is_err());

        let schema = json!({"const": {"kind": "vote"}});
        assert!(validate(&schema, &json!({"kind": "vote"})).is_ok());
        assert_eq!(
            messages(&schema, &json!({"kind": "poll"})),
            vec!["{'kind': 'vote'} was expected"]
        );
        assert!(validate(&json!({"const": null}), &json!(null)).is_ok());
        assert!(validate(&json!({"const": null}), &json!(false)).is_err());
    }

    #[test]
    fn minimum_and_maximum_are_inclusive() {
        let schema = json!({"minimum": 1, "maximum": 10});
        for good in [json!(1), json!(1.0), json!(5.5), json!(10)] {
            assert!(validate(&schema, &good).is_ok(), "{good}");
        }
        assert_eq!(
            messages(&schema, &json!(0)),
            vec!["0 is less than the minimum of 1"]
        );
        assert_eq!(
            messages(&schema, &json!(10.5)),
            vec!["10.5 is greater than the maximum of 10"]
        );
        // Numeric keywords ignore non-numbers.
        assert!(validate(&schema, &json!("0")).is_ok());
    }

    #[test]
    fn exclusive_bounds_use_draft6_number_semantics() {
        let schema = json!({"exclusiveMinimum": 0, "exclusiveMaximum": 1.5});
        assert!(validate(&schema, &json!(0.5)).is_ok());
        assert!(validate(&schema, &json!(1)).is_ok());
        assert_eq!(
            messages(&schema, &json!(0)),
            vec!["0 is less than or equal to the minimum of 0"]
        );
        assert_eq!(
            messages(&schema, &json!(1.5)),
            vec!["1.5 is greater than or equal to the maximum of 1.5"]
        );
        assert!(validate(&json!({"exclusiveMinimum": true}), &json!(5)).is_err());
    }

    #[test]
    fn numeric_bounds_are_exact_for_large_integers() {
        let schema = json!({"maximum": u64::MAX - 1});
        assert!(validate(&schema, &json!(u64::MAX - 1)).is_ok());
        assert!(validate(&schema, &json!(u64::MAX)).is_err());
        assert!(validate(&json!({"minimum": -5}), &json!(i64::MIN)).is_err());
    }

    #[test]
    fn string_lengths_count_characters_not_bytes() {
        let schema = json!({"minLength": 2, "maxLength": 3});
        assert!(validate(&schema, &json!("ab")).is_ok());
        assert!(validate(&schema, &json!("héé")).is_ok());
        assert!(validate(&schema, &json!("🗳️")).is_ok());
        assert_eq!(
            messages(&schema, &json!("a")),
            vec!["'a' is too short: expected at least 2 characters"]
        );
        assert_eq!(
            messages(&schema, &json!("abcd")),
            vec!["'abcd' is too long: expected at most 3 characters"]
        );
        assert!(validate(&json!({"maxLength": 1}), &json!("é")).is_ok());
        assert!(validate(&json!({"minLength": "1"}), &json!("é")).is_err());
    }

    #[test]
    fn min_and_max_properties() {
        let schema = json!({"minProperties": 1, "maxProperties": 2});
        assert!(validate(&schema, &json!({"a": 1})).is_ok());
        assert_eq!(
            messages(&schema, &json!({})),
            vec!["{} does not have enough properties: expected at least 1 property"]
        );
        assert_eq!(
            messages(&schema, &json!({"a": 1, "b": 2, "c": 3})),
            vec!["{'a': 1, 'b': 2, 'c': 3} has too many properties: expected at most 2 properties"]
        );
    }

    #[test]
    fn date_time_format() {
        let schema = json!({"type": "string", "format": "date-time"});
        for good in [
            "2024-05-01T12:30:00Z",
            "2024-05-01t12:30:00z",
            "2024-05-01T12:30:00.123456+02:00",
            "2024-02-29T00:00:00-05:30",
            "2000-02-29T23:59:60Z",
            "1999-12-31T23:59:59.9Z",
        ] {
            assert!(validate(&schema, &json!(good)).is_ok(), "{good}");
        }
        for bad in [
            "",
            "2024-05-01",
            "2024-05-01 12:30:00Z",
            "2024-05-01T12:30:00",
            "2024-05-01T12:30Z",
            "2023-02-29T00:00:00Z",
            "1900-02-29T00:00:00Z",
            "2024-13-01T00:00:00Z",
            "2024-04-31T00:00:00Z",
            "2024-05-00T00:00:00Z",
            "2024-05-01T24:00:00Z",
            "2024-05-01T12:60:00Z",
            "2024-05-01T12:30:61Z",
            "2024-05-01T12:30:00.Z",
            "2024-05-01T12:30:00+0200",
            "2024-05-01T12:30:00+24:00",
            "2024-05-01T12:30:00+02:00x",
            "2024-05-01T12:30:00Zjunk",
            "２０２４-05-01T12:30:00Z",
            "24-05-01T12:30:00Z",
        ] {
            assert!(validate(&schema, &json!(bad)).is_err(), "{bad}");
        }
        assert_eq!(
            messages(&schema, &json!("yesterday")),
            vec!["'yesterday' is not a 'date-time'"]
        );
    }

    #[test]
    fn uri_format_requires_http_scheme_and_host() {
        let schema = json!({"format": "uri"});
        for good in [
            "http://example.com",
            "https://example.com/hook?x=1#top",
            "HTTPS://Example.com:8443/path",
            "https://user:pw@example.com/",
            "http://[::1]:8080/",
            "http://127.0.0.1",
            "https://bücher.example/",
        ] {
            assert!(validate(&schema, &json!(good)).is_ok(), "{good}");
        }
        for bad in [
            "",
            "example.com",
            "ftp://example.com",
            "http://",
            "https:///path",
            "http://:80/",
            "http://exa mple.com",
            "http://example.com:80x/",
            "http://[::1",
            "http://[]/",
            "http://example.com/\npath",
            "http://user@/",
        ] {
            assert!(validate(&schema, &json!(bad)).is_err(), "{bad}");
        }
        assert_eq!(
            messages(&schema, &json!("mailto:a@b.c")),
            vec!["'mailto:a@b.c' is not a 'uri'"]
        );
    }

    #[test]
    fn unknown_formats_and_non_strings_are_ignored() {
        assert!(validate(&json!({"format": "colour"}), &json!("not a colour")).is_ok());
        assert!(validate(&json!({"format": "date-time"}), &json!(42)).is_ok());
        assert!(validate(&json!({"format": 7}), &json!("x")).is_err());
    }

    #[test]
    fn all_of_reports_every_branch_violation() {
        let schema = json!({"allOf": [{"type": "integer"}, {"minimum": 10}]});
        assert!(validate(&schema, &json!(12)).is_ok());
        assert_eq!(
            messages(&schema, &json!(2.5)),
            vec![
                "2.5 is not of type 'integer'",
                "2.5 is less than the minimum of 10"
            ]
        );
    }

    #[test]
    fn any_of_needs_one_matching_branch() {
        let schema = json!({"anyOf": [{"type": "string"}, {"minimum": 0}]});
        assert!(validate(&schema, &json!("x")).is_ok());
        assert!(validate(&schema, &json!(5)).is_ok());
        assert_eq!(
            messages(&schema, &json!(-1)),
            vec!["-1 is not valid under any of the given schemas"]
        );
        assert!(validate(&json!({"anyOf": []}), &json!(1)).is_err());
    }

    #[test]
    fn one_of_needs_exactly_one_matching_branch() {
        let schema = json!({"oneOf": [{"type": "integer"}, {"minimum": 10}]});
        assert!(validate(&schema, &json!(3)).is_ok());
        assert!(validate(&schema, &json!(10.5)).is_ok());
        assert_eq!(
            messages(&schema, &json!(12)),
            vec!["12 is valid under more than one of the given schemas (schemas 0 and 1)"]
        );
        assert_eq!(
            messages(&schema, &json!(2.5)),
            vec!["2.5 is not valid under any of the given schemas"]
        );
        assert!(validate(&json!({"oneOf": {"type": "string"}}), &json!("a")).is_err());
    }

    #[test]
    fn not_inverts_its_schema() {
        let schema = json!({"not": {"type": "null"}});
        assert!(validate(&schema, &json!(0)).is_ok());
        assert_eq!(
            messages(&schema, &json!(null)),
            vec!["null should not be valid under {'type': 'null'}"]
        );
    }

    #[test]
    fn property_names_apply_to_every_key() {
        let schema = json!({"propertyNames": {"maxLength": 3, "enum": ["abc", "de", "toolong"]}});
        assert!(validate(&schema, &json!({"abc": 1, "de": 2})).is_ok());
        assert_eq!(
            violations(&schema, &json!({"toolong": 1, "x": 2})),
            vec![
                (
                    "toolong".to_owned(),
                    "property name 'toolong' is too long: expected at most 3 characters".to_owned()
                ),
                (
                    "x".to_owned(),
                    "property name 'x' is not one of ['abc', 'de', 'toolong']".to_owned()
                ),
            ]
        );
    }

    #[test]
    fn boolean_schemas() {
        assert!(validate(&json!(true), &json!({"anything": [1, 2]})).is_ok());
        assert_eq!(
            violations(&json!(false), &json!(1)),
            one("", "False schema does not allow 1")
        );
        let schema = json!({"properties": {"forbidden": false}});
        assert!(validate(&schema, &json!({})).is_ok());
        assert_eq!(
            violations(&schema, &json!({"forbidden": "x"})),
            one("forbidden", "False schema does not allow 'x'")
        );
        assert!(validate(&json!({"items": false}), &json!([])).is_ok());
        assert!(validate(&json!({"items": false}), &json!([1])).is_err());
    }

    #[test]
    fn reports_multiple_violations_in_a_stable_order() {
        let schema = json!({
            "type": "object",
            "required": ["c", "a"],
            "properties": {
                "b": {"type": "string", "minLength": 2},
                "a": {"type": "integer"}
            },
            "additionalProperties": false,
            "maxProperties": 1
        });
        let expected = vec![
            ("c".to_owned(), "'c' is a required property".to_owned()),
            ("a".to_owned(), "'x' is not of type 'integer'".to_owned()),
            (
                "b".to_owned(),
                "'y' is too short: expected at least 2 characters".to_owned(),
            ),
            (
                "d".to_owned(),
                "Additional properties are not allowed ('d' was unexpected)".to_owned(),
            ),
            (
                String::new(),
                "{'a': 'x', 'b': 'y', 'd': 0} has too many properties: expected at most 1 property"
                    .to_owned(),
            ),
        ];
        let instance = json!({"d": 0, "b": "y", "a": "x"});
        assert_eq!(violations(&schema, &instance), expected);
        // Same input, same output.
        assert_eq!(violations(&schema, &instance), expected);
    }

    #[test]
    fn malformed_schemas_produce_violations_instead_of_panicking() {
        let schemas = [
            json!(null),
            json!(1),
            json!("string"),
            json!([]),
            json!({"properties": []}),
            json!({"properties": {"a": 3}}),
            json!({"items": "x"}),
            json!({"additionalProperties": 1}),
            json!({"propertyNames": []}),
            json!({"minimum": "0", "maximum": null}),
            json!({"minLength": 1.5, "maxLength": -2}),
            json!({"minProperties": {}, "maxProperties": []}),
            json!({"required": [1, 2]}),
            json!({"not": 5}),
            json!({"allOf": "x", "anyOf": [], "oneOf": null}),
            json!({"anyOf": [1, 2]}),
            json!({"format": null}),
            json!({"uniqueItems": 1}),
            json!({"enum": {}}),
            json!({"type": {}}),
        ];
        let instances = [
            json!(null),
            json!(true),
            json!(-0.0),
            json!(1e308),
            json!(""),
            json!("\u{0}\u{7f}'\\"),
            json!([1, [2, [3]]]),
            json!({"a": {"b": []}}),
        ];
        for schema in &schemas {
            assert!(
                check_supported(schema).is_err(),
                "{schema} should be rejected"
            );
            for instance in &instances {
                let _ = validate(schema, instance);
                let _ = apply_defaults(schema, instance);
            }
        }
        assert!(validate(&json!({"properties": {"a": 3}}), &json!({"a": 1})).is_err());
        assert!(validate(&json!(null), &json!(1)).is_err());
    }

    #[test]
    fn long_values_are_truncated_in_messages() {
        let long = "x".repeat(10_000);
        let found = messages(&json!({"type": "integer"}), &json!(long));
        assert_eq!(found.len(), 1);
        assert!(found[0].len() < 150, "{}", found[0]);
        assert!(found[0].contains("..."));

        let wide: Vec<Value> = (0..100_000).map(|i| json!(i)).collect();
        let found = messages(&json!({"maxItems": 1}), &Value::Array(wide));
        assert!(found[0].len() < 200, "{}", found[0]);

        // Truncation must respect UTF-8 boundaries.
        let found = messages(&json!({"type": "integer"}), &json!("é".repeat(100)));
        assert!(found[0].starts_with("'éé"));
    }

    #[test]
    fn violation_display_includes_the_path() {
        let root = SchemaViolation {
            path: String::new(),
            message: "m".to_owned(),
        };
        let field = SchemaViolation {
            path: "a[0]".to_owned(),
            message: "m".to_owned(),
        };
        assert_eq!(root.to_string(), "m");
        assert_eq!(field.to_string(), "a[0]: m");
    }

    #[test]
    fn defaults_fill_missing_keys_only() {
        let schema = json!({
            "type": "object",
            "properties": {
                "quorum": {"type": "integer", "default": 3},
                "title": {"type": "string", "default": "Untitled"},
                "note": {"type": "string"}
            }
        });
        assert_eq!(
            apply_defaults(&schema, &json!({"quorum": 5, "extra": true})),
            json!({"quorum": 5, "title": "Untitled", "extra": true})
        );
        // An explicit null is a value, not a missing key.
        assert_eq!(
            apply_defaults(&schema, &json!({"title": null})),
            json!({"quorum": 3, "title": null})
        );
    }

    #[test]
    fn defaults_apply_recursively() {
        let schema = json!({
            "properties": {
                "present": {
                    "type": "object",
                    "properties": {"depth": {"default": 1}, "keep": {"default": "d"}}
                },
                "defaulted": {
                    "type": "object",
                    "default": {"given": true},
                    "properties": {"inner": {"default": [1, 2]}, "given": {"default": false}}
                },
                "absent": {
                    "type": "object",
                    "properties": {"never": {"default": 0}}
                },
                "list": {"type": "array", "items": {"properties": {"x": {"default": 1}}}}
            }
        });
        assert_eq!(
            apply_defaults(&schema, &json!({"present": {"keep": "mine"}, "list": [{}]})),
            json!({
                "present": {"depth": 1, "keep": "mine"},
                "defaulted": {"given": true, "inner": [1, 2]},
                "list": [{}]
            })
        );
    }

    #[test]
    fn defaults_leave_non_objects_and_plain_schemas_alone() {
        let schema = json!({"properties": {"a": {"default": 1}}});
        for instance in [json!(null), json!(5), json!("s"), json!([{}])] {
            assert_eq!(apply_defaults(&schema, &instance), instance);
        }
        assert_eq!(
            apply_defaults(&json!(true), &json!({"b": 2})),
            json!({"b": 2})
        );
        assert_eq!(
            apply_defaults(&json!({"properties": 3}), &json!({"b": 2})),
            json!({"b": 2})
        );
    }

    #[test]
    fn check_supported_accepts_the_supported_subset() {
        let schema = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": "https://agora.example/plugins/loomio/config",
            "$comment": "config",
            "title": "Config",
            "description": "Plugin settings",
            "type": "object",
            "required": ["api_key"],
            "additionalProperties": false,
            "minProperties": 1,
            "maxProperties": 10,
            "propertyNames": {"minLength": 1},
            "properties": {
                "api_key": {"type": "string", "x-secret": true, "writeOnly": true},
                "url": {"type": "string", "format": "uri", "default": "https://x.example"},
                "since": {"type": ["string", "null"], "format": "date-time", "readOnly": true},
                "choices": {
                    "type": "array",
                    "items": {"enum": ["a", "b"]},
                    "minItems": 1,
                    "maxItems": 3,
                    "uniqueItems": true,
                    "examples": [["a"]]
                },
                "size": {
                    "type": "number",
                    "minimum": 0,
                    "maximum": 10,
                    "exclusiveMinimum": -1,
                    "exclusiveMaximum": 11.5,
                    "deprecated": true
                },
                "name": {"minLength": 0, "maxLength": 40, "const": "n"},
                "mode": {
                    "oneOf": [{"const": 1}, true],
                    "anyOf": [{"type": "integer"}],
                    "allOf": [{}],
                    "not": false
                },
                "$ref": {"description": "a property that happens to be called $ref"}
            },
            "x-ui-order": ["api_key", "url"],
            "x-anything": {"$ref": "ignored inside extensions"}
        });
        assert_eq!(check_supported(&schema), Ok(()));
        assert_eq!(check_supported(&json!(true)), Ok(()));
        assert_eq!(check_supported(&json!({})), Ok(()));
    }

    #[test]
    fn local_refs_resolve_and_others_are_refused_at_load() {
        let schema = json!({
            "$defs": {"count": {"type": "integer", "minimum": 0}},
            "properties": {"a/b": {"items": {"$ref": "#/$defs/count"}}}
        });
        assert_eq!(check_supported(&schema), Ok(()));
        assert!(validate(&schema, &json!({"a/b": [1, 2]})).is_ok());
        assert_eq!(
            violations(&schema, &json!({"a/b": [1, "x", -1]})),
            vec![
                (
                    "a/b[1]".to_owned(),
                    "'x' is not of type 'integer'".to_owned()
                ),
                (
                    "a/b[2]".to_owned(),
                    "-1 is less than the minimum of 0".to_owned()
                ),
            ]
        );
        // A recursive definition: a tree of integers.
        let tree = json!({
            "$defs": {"node": {"type": ["integer", "array"], "items": {"$ref": "#/$defs/node"}}},
            "$ref": "#/$defs/node"
        });
        assert_eq!(check_supported(&tree), Ok(()));
        assert!(validate(&tree, &json!([1, [2, [3]]])).is_ok());
        assert_eq!(
            violations(&tree, &json!([1, [2, ["x"]]])),
            one("[1][1][0]", "'x' is not of type 'integer', 'array'")
        );
        // Nothing is fetched: a reference must resolve inside the schema itself.
        let missing = json!({"properties": {"a": {"$ref": "#/$defs/x"}}});
        let error = check_supported(&missing).unwrap_err();
        assert!(error.contains("/$defs/x"), "{error}");
        assert!(check_supported(&json!({"$ref": "https://example.com/schema.json"})).is_err());
        assert!(validate(&missing, &json!({"a": 1})).is_err());
    }

    #[test]
    fn pattern_matches_anywhere_unless_anchored() {
        let schema = json!({"type": "string", "pattern": "^[a-z][a-z0-9-]*$"});
        assert_eq!(check_supported(&schema), Ok(()));
        assert!(validate(&schema, &json!("my-repo-2")).is_ok());
        assert_eq!(
            violations(&schema, &json!({"not": "a string"})),
            one("", "{'not': 'a string'} is not of type 'string'")
        );
        assert_eq!(
            messages(&schema, &json!("My Repo")),
            vec!["'My Repo' does not match '^[a-z][a-z0-9-]*$'"]
        );
        assert!(validate(&json!({"pattern": "b"}), &json!("abc")).is_ok());
        let properties = json!({"patternProperties": {"^x-": {"type": "string"}}});
        assert_eq!(
            violations(&properties, &json!({"x-a": "ok", "x-b": 2, "y": 3})),
            one("x-b", "2 is not of type 'string'")
        );
        // A pattern the engine cannot compile is refused when the plugin loads.
        let error =
            check_supported(&json!({"properties": {"p": {"pattern": "(unclosed"}}})).unwrap_err();
        assert!(error.contains("'pattern' at #/properties/p"), "{error}");
        // Look-around needs backtracking, which we do not run on client input.
        assert!(check_supported(&json!({"pattern": "a(?=b)"})).is_err());
    }

    #[test]
    fn known_formats_are_asserted() {
        let email = json!({"type": "string", "format": "email"});
        assert!(validate(&email, &json!("ana@example.org")).is_ok());
        assert_eq!(
            messages(&email, &json!("not an email")),
            vec!["'not an email' is not a 'email'"]
        );
        let uuid = json!({"format": "uuid"});
        assert!(validate(&uuid, &json!("67e55044-10b1-426f-9247-bb680e5fe0c8")).is_ok());
        assert!(validate(&uuid, &json!("67e55044")).is_err());
        assert!(validate(&json!({"format": "ipv4"}), &json!("10.0.0.256")).is_err());
    }

    #[test]
    fn check_supported_rejects_unknown_keywords() {
        for keyword in ["X-upper", "maxLenght", "requried", "agoraTooDeep"] {
            let mut schema = Map::new();
            schema.insert(keyword.to_owned(), json!({}));
            let error = check_supported(&Value::Object(schema)).unwrap_err();
            assert_eq!(error, format!("unsupported keyword '{keyword}' at #"));
        }
        let error = check_supported(&json!({"anyOf": [{}, {"patern": "^a"}]})).unwrap_err();
        assert_eq!(error, "unsupported keyword 'patern' at #/anyOf/1");
        // Everything JSON Schema defines is enforced, not only a subset.
        let schema = json!({
            "$defs": {"a": {"type": "string"}},
            "definitions": {"b": {}},
            "patternProperties": {"^a": {}},
            "if": {"required": ["a"]},
            "then": {"required": ["b"]},
            "contains": {"type": "integer"},
            "prefixItems": [{"type": "string"}],
            "multipleOf": 2,
            "dependentRequired": {"a": ["b"]},
            "pattern": "^a"
        });
        assert_eq!(check_supported(&schema), Ok(()));
        assert_eq!(
            violations(&json!({"multipleOf": 2}), &json!(3)),
            one("", "3 is not a multiple of 2")
        );
    }

    #[test]
    fn check_supported_reports_the_first_problem_in_key_order() {
        let schema = json!({"zzz": 1, "aaa": 1});
        assert_eq!(
            check_supported(&schema),
            Err("unsupported keyword 'aaa' at #".to_owned())
        );
    }

    #[test]
    fn check_supported_rejects_malformed_keyword_values() {
        let cases = [
            (json!({"type": "interger"}), "keyword 'type' at #"),
            (json!({"type": []}), "keyword 'type' at #"),
            (json!({"items": [{}]}), "tuple form"),
            (json!({"exclusiveMinimum": true}), "draft-04"),
            (json!({"minimum": "1"}), "must be a number"),
            (json!({"maxLength": -1}), "non-negative integer"),
            (json!({"required": [1]}), "array of strings"),
            (json!({"properties": {"a": 1}}), "schema at #/properties/a"),
            (json!({"oneOf": []}), "non-empty array"),
            (json!({"uniqueItems": "true"}), "boolean"),
            (json!({"format": 1}), "string"),
            (json!({"enum": 1}), "array"),
            (json!(42), "schema at # must be"),
        ];
        for (schema, expected) in cases {
            let error = check_supported(&schema).unwrap_err();
            assert!(error.contains(expected), "{schema}: {error}");
        }
    }

    #[test]
    fn depth_limit_reports_instead_of_recursing() {
        let mut schema = json!({"type": "integer"});
        for _ in 0..100 {
            schema = json!({"type": "array", "items": schema});
        }
        let found = violations(&schema, &nested_arrays(100));
        assert_eq!(found, one(&"[0]".repeat(MAX_DEPTH), TOO_DEEP));
        assert!(TOO_DEEP.contains(&MAX_DEPTH.to_string()));

        // Within the limit everything is validated normally.
        let mut shallow = json!({"type": "integer"});
        for _ in 0..10 {
            shallow = json!({"type": "array", "items": shallow});
        }
        assert!(validate(&shallow, &nested_arrays(10)).is_ok());
        assert!(validate(&shallow, &nested_arrays(9)).is_err());
    }

    #[test]
    fn depth_limit_is_not_a_way_around_not() {
        // If the depth limit counted as "invalid", `not` would accept this.
        let schema = nested_schema("not", 200);
        let found = violations(&schema, &json!(1));
        assert_eq!(found, one("", TOO_DEEP));
        let schema = json!({"anyOf": [nested_schema("not", 200), true]});
        assert!(validate(&schema, &json!(1)).is_ok());
        let schema = json!({"anyOf": [nested_schema("not", 200), false]});
        assert_eq!(violations(&schema, &json!(1)), one("", TOO_DEEP));
        let schema = json!({"oneOf": [nested_schema("not", 200), true]});
        assert_eq!(violations(&schema, &json!(1)), one("", TOO_DEEP));
    }

    #[test]
    fn hostile_nesting_does_not_overflow_the_stack() {
        const DEPTH: usize = 100_000;

        let deep_schema = nested_schema("not", DEPTH);
        assert!(check_supported(&deep_schema)
            .unwrap_err()
            .contains("nested too deeply"));
        assert_eq!(violations(&deep_schema, &json!(1)), one("", TOO_DEEP));
        assert_eq!(
            apply_defaults(&deep_schema, &json!({"a": 1})),
            json!({"a": 1})
        );
        dismantle(deep_schema);

        let deep_properties = {
            let mut schema = json!({"default": 1});
            for _ in 0..DEPTH {
                schema = object(vec![("properties", object(vec![("a", schema)]))]);
            }
            schema
        };
        assert!(check_supported(&deep_properties).is_err());
        let filled = apply_defaults(&deep_properties, &json!({"a": {"a": {}}}));
        assert_eq!(filled, json!({"a": {"a": {}}}));
        dismantle(deep_properties);

        // Deep instances: the crate compares (`const`, `enum`, `uniqueItems`) and clones
        // (combinator errors) recursively, so an instance nested past the bound is refused,
        // at the first value past it, before the crate sees it, whatever the schema. Our own
        // cloning, hashing and defaults walk it with explicit stacks.
        let deep = nested_arrays(DEPTH);
        let at_limit = "[0]".repeat(MAX_DEPTH);
        let pair = Value::Array(vec![deep_clone(&deep), deep_clone(&deep)]);
        let found = violations(&json!({"uniqueItems": true, "maxItems": 1}), &pair);
        assert_eq!(found, one(&at_limit, TOO_DEEP));
        let shallow_schema = json!({"type": "array", "items": {"type": "array"}});
        assert_eq!(violations(&shallow_schema, &deep), one(&at_limit, TOO_DEEP));
        assert!(first_duplicate(pair.as_array().unwrap_or(&Vec::new())).is_some());
        // A schema whose `const` nests past the bound fails closed and is refused at load.
        let enum_schema = object(vec![("enum", json!([1])), ("const", deep_clone(&deep))]);
        assert_eq!(violations(&enum_schema, &json!(1)), one("", TOO_DEEP));
        assert!(check_supported(&enum_schema)
            .unwrap_err()
            .contains("nested too deeply"));
        let holder = object(vec![("deep", deep_clone(&deep))]);
        let filled = apply_defaults(&json!({"properties": {"x": {"default": 0}}}), &holder);
        assert_eq!(filled.get("x"), Some(&json!(0)));
        for value in [filled, holder, enum_schema, pair, deep] {
            dismantle(value);
        }
    }

    #[test]
    fn deep_clone_matches_clone() {
        let value = json!({"a": [1, {"b": null, "c": [true, "s", 2.5]}], "d": {}, "e": []});
        assert_eq!(deep_clone(&value), value);
        assert_eq!(deep_clone(&json!(7)), json!(7));
        assert_eq!(deep_clone(&json!([])), json!([]));
    }
}
