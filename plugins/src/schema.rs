//! JSON Schema validation for plugin config, action and process schemas.
//!
//! Plugins describe their settings and the parameters of their actions and
//! processes with JSON Schema, and every request body is checked against those
//! schemas before a plugin sees it. We validate with this small implementation
//! rather than the `jsonschema` crate because that crate pulls a regex engine,
//! `url` and more into an otherwise lean build, while plugin schemas only need
//! a well-defined subset of the draft 2020-12 / draft-07 keywords. Owning the
//! code also lets every violation carry a JSON-path style location such as
//! `parameters.options[1]`, which is exactly what the `field` of our
//! `{"error":{"code","message","field"}}` bodies needs.
//!
//! [`check_supported`] is meant to run when a plugin registers, so a schema
//! that relies on a keyword we do not implement (`$ref`, `pattern`, ...) is
//! refused up front instead of being silently half-enforced at request time.
//! Given that gate, [`validate`] ignores unknown keywords like JSON Schema
//! itself does, but it fails closed on malformed values of the keywords it
//! knows.
//!
//! Everything here must cope with hostile input: recursion is bounded by
//! `MAX_DEPTH`, and the helpers that walk whole instances (equality, hashing,
//! cloning) use explicit stacks so arbitrarily deep values cannot overflow ours.

use std::cmp::Ordering;
use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasher, Hash, Hasher};

use serde_json::{Map, Number, Value};

/// How many schema levels `validate`, `apply_defaults` and `check_supported`
/// descend before giving up. Real plugin schemas are a handful of levels deep;
/// the limit exists so a hostile or buggy document cannot exhaust the stack.
const MAX_DEPTH: usize = 64;

/// Kept as one constant because the combinators recognise it: a branch that
/// could not be evaluated must not count as "failed" under `not`, `anyOf` or
/// `oneOf`, or the depth limit would turn into a way to sneak values through.
const TOO_DEEP: &str = "value is nested too deeply to validate (more than 64 levels)";

/// Messages quote the offending value; a multi-megabyte string or array must
/// not end up in an error body or a log line.
const RENDER_MAX_BYTES: usize = 80;
const RENDER_MAX_DEPTH: usize = 3;

/// Keywords that carry information for humans and tools but never constrain a
/// value. `x-*` keys (such as `x-secret`) are accepted on top of these.
const ANNOTATIONS: &[&str] = &[
    "title",
    "description",
    "default",
    "examples",
    "$schema",
    "$id",
    "$comment",
    "deprecated",
    "readOnly",
    "writeOnly",
];

const TYPE_NAMES: &[&str] = &[
    "null", "boolean", "object", "array", "number", "string", "integer",
];

const TYPE_EXPECTED: &str = "a type name or a non-empty array of type names";

/// One violation: `path` is where in the instance it is ("" for the root, then
/// `a.b[2].c` style: object keys joined by '.', array indexes in brackets),
/// `message` is a human sentence like "'x' is not of type 'integer'".
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

/// Validates `instance` against `schema`. Returns every violation found, or
/// `Ok(())`.
///
/// The order is deterministic: keywords are evaluated in a fixed order (type,
/// enum, const, the type-specific keywords, then the combinators), and object
/// keys are visited sorted, whichever way `serde_json` happens to store maps.
/// A missing required property and an unexpected additional property are
/// reported at the path of that property, because that is the field a client
/// has to fix.
pub fn validate(schema: &Value, instance: &Value) -> Result<(), Vec<SchemaViolation>> {
    let mut out = Vec::new();
    validate_node(schema, instance, "", 0, &mut out);
    if out.is_empty() {
        Ok(())
    } else {
        Err(out)
    }
}

/// Returns `instance` with `default` values from `properties` filled in for
/// missing keys (recursively for nested objects that are present or that
/// themselves get a default). Non-object instances are returned unchanged.
pub fn apply_defaults(schema: &Value, instance: &Value) -> Value {
    fill_defaults(schema, instance, 0)
}

/// Checks that a schema only uses keywords this validator understands, with
/// values of the right shape. Returns `Err(message)` naming the first problem
/// and its location as a JSON pointer into the schema (`#/properties/a`).
pub fn check_supported(schema: &Value) -> Result<(), String> {
    check_schema(schema, "#", 0)
}

// ---------------------------------------------------------------------------
// validate

fn validate_node(
    schema: &Value,
    instance: &Value,
    path: &str,
    depth: usize,
    out: &mut Vec<SchemaViolation>,
) {
    if depth >= MAX_DEPTH {
        violation(out, path, TOO_DEEP.to_owned());
        return;
    }
    let keywords = match schema {
        Value::Bool(true) => return,
        Value::Bool(false) => {
            violation(
                out,
                path,
                format!("False schema does not allow {}", render(instance)),
            );
            return;
        }
        Value::Object(keywords) => keywords,
        _ => {
            violation(
                out,
                path,
                "invalid schema: a schema must be an object or a boolean".to_owned(),
            );
            return;
        }
    };

    check_type(keywords, instance, path, out);
    if let Some(allowed) = keywords.get("enum") {
        match allowed {
            Value::Array(options) => {
                if !options.iter().any(|option| json_equal(option, instance)) {
                    violation(
                        out,
                        path,
                        format!("{} is not one of {}", render(instance), render(allowed)),
                    );
                }
            }
            _ => schema_error(out, path, "enum", "an array"),
        }
    }
    if let Some(expected) = keywords.get("const") {
        if !json_equal(expected, instance) {
            violation(out, path, format!("{} was expected", render(expected)));
        }
    }
    match instance {
        Value::Number(number) => check_number(keywords, number, instance, path, out),
        Value::String(text) => check_string(keywords, text, instance, path, out),
        Value::Array(items) => check_array(keywords, items, instance, path, depth, out),
        Value::Object(fields) => check_object(keywords, fields, instance, path, depth, out),
        Value::Null | Value::Bool(_) => {}
    }
    check_combinators(keywords, instance, path, depth, out);
}

fn check_type(
    keywords: &Map<String, Value>,
    instance: &Value,
    path: &str,
    out: &mut Vec<SchemaViolation>,
) {
    let Some(spec) = keywords.get("type") else {
        return;
    };
    let names: Vec<&str> = match spec {
        Value::String(name) => vec![name.as_str()],
        Value::Array(list) if !list.is_empty() => {
            let mut names = Vec::with_capacity(list.len());
            for item in list {
                match item.as_str() {
                    Some(name) => names.push(name),
                    None => return schema_error(out, path, "type", TYPE_EXPECTED),
                }
            }
            names
        }
        _ => return schema_error(out, path, "type", TYPE_EXPECTED),
    };
    let mut matched = false;
    for name in &names {
        match type_matches(name, instance) {
            Some(is_match) => matched |= is_match,
            // Fail closed: a typo such as "interger" must not accept everything.
            None => {
                return violation(
                    out,
                    path,
                    format!("invalid schema: unknown type {}", quote(name)),
                )
            }
        }
    }
    if !matched {
        let expected: Vec<String> = names.iter().map(|name| quote(name)).collect();
        violation(
            out,
            path,
            format!(
                "{} is not of type {}",
                render(instance),
                expected.join(", ")
            ),
        );
    }
}

fn type_matches(name: &str, value: &Value) -> Option<bool> {
    Some(match name {
        "null" => value.is_null(),
        "boolean" => value.is_boolean(),
        "object" => value.is_object(),
        "array" => value.is_array(),
        "number" => value.is_number(),
        "string" => value.is_string(),
        "integer" => matches!(value, Value::Number(number) if is_integer(number)),
        _ => return None,
    })
}

fn check_number(
    keywords: &Map<String, Value>,
    number: &Number,
    instance: &Value,
    path: &str,
    out: &mut Vec<SchemaViolation>,
) {
    const BOUNDS: [(&str, &str); 4] = [
        ("minimum", "is less than the minimum of"),
        ("maximum", "is greater than the maximum of"),
        (
            "exclusiveMinimum",
            "is less than or equal to the minimum of",
        ),
        (
            "exclusiveMaximum",
            "is greater than or equal to the maximum of",
        ),
    ];
    for (keyword, complaint) in BOUNDS {
        let Some(limit) = keywords.get(keyword) else {
            continue;
        };
        let Value::Number(limit_number) = limit else {
            schema_error(out, path, keyword, "a number");
            continue;
        };
        // `None` only arises for numbers serde_json cannot represent as f64;
        // treating it as out of range keeps the check fail-closed.
        let ordering = compare_numbers(number, limit_number);
        let ok = match keyword {
            "minimum" => matches!(ordering, Some(Ordering::Greater | Ordering::Equal)),
            "maximum" => matches!(ordering, Some(Ordering::Less | Ordering::Equal)),
            "exclusiveMinimum" => ordering == Some(Ordering::Greater),
            _ => ordering == Some(Ordering::Less),
        };
        if !ok {
            violation(
                out,
                path,
                format!("{} {complaint} {}", render(instance), render(limit)),
            );
        }
    }
}

fn check_string(
    keywords: &Map<String, Value>,
    text: &str,
    instance: &Value,
    path: &str,
    out: &mut Vec<SchemaViolation>,
) {
    let min = count_keyword(keywords, "minLength", path, out);
    let max = count_keyword(keywords, "maxLength", path, out);
    if min.is_some() || max.is_some() {
        // JSON Schema counts characters (code points), not UTF-8 bytes.
        let length = text.chars().count() as u64;
        if let Some(min) = min.filter(|&min| length < min) {
            violation(
                out,
                path,
                format!(
                    "{} is too short: expected at least {}",
                    render(instance),
                    plural(min, "character")
                ),
            );
        }
        if let Some(max) = max.filter(|&max| length > max) {
            violation(
                out,
                path,
                format!(
                    "{} is too long: expected at most {}",
                    render(instance),
                    plural(max, "character")
                ),
            );
        }
    }
    if let Some(format) = keywords.get("format") {
        let valid = match format.as_str() {
            Some("date-time") => is_date_time(text),
            Some("uri") => is_http_uri(text),
            // Unknown formats are annotations in JSON Schema, not assertions.
            Some(_) => true,
            None => {
                schema_error(out, path, "format", "a string");
                true
            }
        };
        if !valid {
            violation(
                out,
                path,
                format!("{} is not a {}", render(instance), render(format)),
            );
        }
    }
}

fn check_array(
    keywords: &Map<String, Value>,
    items: &[Value],
    instance: &Value,
    path: &str,
    depth: usize,
    out: &mut Vec<SchemaViolation>,
) {
    let length = items.len() as u64;
    if let Some(min) = count_keyword(keywords, "minItems", path, out).filter(|&min| length < min) {
        violation(
            out,
            path,
            format!(
                "{} is too short: expected at least {}",
                render(instance),
                plural(min, "item")
            ),
        );
    }
    if let Some(max) = count_keyword(keywords, "maxItems", path, out).filter(|&max| length > max) {
        violation(
            out,
            path,
            format!(
                "{} is too long: expected at most {}",
                render(instance),
                plural(max, "item")
            ),
        );
    }
    match keywords.get("uniqueItems") {
        None | Some(Value::Bool(false)) => {}
        Some(Value::Bool(true)) => {
            if let Some((first, second)) = first_duplicate(items) {
                violation(
                    out,
                    path,
                    format!(
                        "{} has non-unique elements (items {first} and {second} are equal)",
                        render(instance)
                    ),
                );
            }
        }
        Some(_) => schema_error(out, path, "uniqueItems", "a boolean"),
    }
    if let Some(item_schema) = keywords.get("items") {
        if item_schema.is_array() {
            schema_error(
                out,
                path,
                "items",
                "a single schema (the tuple form is not supported)",
            );
        } else {
            for (index, item) in items.iter().enumerate() {
                validate_node(item_schema, item, &index_path(path, index), depth + 1, out);
            }
        }
    }
}

fn check_object(
    keywords: &Map<String, Value>,
    fields: &Map<String, Value>,
    instance: &Value,
    path: &str,
    depth: usize,
    out: &mut Vec<SchemaViolation>,
) {
    match keywords.get("required") {
        None => {}
        Some(Value::Array(names)) => {
            for name in names {
                let Value::String(name) = name else {
                    schema_error(out, path, "required", "an array of strings");
                    break;
                };
                if !fields.contains_key(name) {
                    violation(
                        out,
                        &key_path(path, name),
                        format!("{} is a required property", quote(name)),
                    );
                }
            }
        }
        Some(_) => schema_error(out, path, "required", "an array of strings"),
    }

    let properties = match keywords.get("properties") {
        None => None,
        Some(Value::Object(properties)) => Some(properties),
        Some(_) => {
            schema_error(out, path, "properties", "an object");
            None
        }
    };
    if let Some(properties) = properties {
        for (name, property_schema) in sorted_entries(properties) {
            if let Some(value) = fields.get(name) {
                validate_node(
                    property_schema,
                    value,
                    &key_path(path, name),
                    depth + 1,
                    out,
                );
            }
        }
    }

    if let Some(additional) = keywords.get("additionalProperties") {
        for (name, value) in sorted_entries(fields) {
            if properties.is_some_and(|properties| properties.contains_key(name)) {
                continue;
            }
            let field_path = key_path(path, name);
            if additional == &Value::Bool(false) {
                // More useful than the generic false-schema message, and it is
                // the wording plugin authors know from Python's jsonschema.
                violation(
                    out,
                    &field_path,
                    format!(
                        "Additional properties are not allowed ({} was unexpected)",
                        quote(name)
                    ),
                );
            } else {
                validate_node(additional, value, &field_path, depth + 1, out);
            }
        }
    }

    if let Some(names_schema) = keywords.get("propertyNames") {
        for (name, _) in sorted_entries(fields) {
            let mut found = Vec::new();
            let field_path = key_path(path, name);
            let key = Value::String(name.clone());
            validate_node(names_schema, &key, &field_path, depth + 1, &mut found);
            out.extend(found.into_iter().map(|mut found| {
                if found.message != TOO_DEEP {
                    found.message = format!("property name {}", found.message);
                }
                found
            }));
        }
    }

    let count = fields.len() as u64;
    if let Some(min) =
        count_keyword(keywords, "minProperties", path, out).filter(|&min| count < min)
    {
        violation(
            out,
            path,
            format!(
                "{} does not have enough properties: expected at least {}",
                render(instance),
                plural(min, "property")
            ),
        );
    }
    if let Some(max) =
        count_keyword(keywords, "maxProperties", path, out).filter(|&max| count > max)
    {
        violation(
            out,
            path,
            format!(
                "{} has too many properties: expected at most {}",
                render(instance),
                plural(max, "property")
            ),
        );
    }
}

fn check_combinators(
    keywords: &Map<String, Value>,
    instance: &Value,
    path: &str,
    depth: usize,
    out: &mut Vec<SchemaViolation>,
) {
    const LIST_EXPECTED: &str = "a non-empty array of schemas";

    if let Some(all) = keywords.get("allOf") {
        match schema_list(all) {
            Some(branches) => {
                for branch in branches {
                    validate_node(branch, instance, path, depth + 1, out);
                }
            }
            None => schema_error(out, path, "allOf", LIST_EXPECTED),
        }
    }

    if let Some(any) = keywords.get("anyOf") {
        match schema_list(any) {
            Some(branches) => {
                let mut too_deep = None;
                let mut matched = false;
                for branch in branches {
                    let found = collect(branch, instance, path, depth + 1);
                    if found.is_empty() {
                        matched = true;
                        break;
                    }
                    too_deep = too_deep.or_else(|| first_too_deep(found));
                }
                if !matched {
                    match too_deep {
                        Some(too_deep) => out.push(too_deep),
                        None => violation(
                            out,
                            path,
                            format!(
                                "{} is not valid under any of the given schemas",
                                render(instance)
                            ),
                        ),
                    }
                }
            }
            None => schema_error(out, path, "anyOf", LIST_EXPECTED),
        }
    }

    if let Some(one) = keywords.get("oneOf") {
        match schema_list(one) {
            Some(branches) => {
                let mut too_deep = None;
                let mut valid = Vec::new();
                for (index, branch) in branches.iter().enumerate() {
                    let found = collect(branch, instance, path, depth + 1);
                    if found.is_empty() {
                        valid.push(index);
                    } else {
                        too_deep = too_deep.or_else(|| first_too_deep(found));
                    }
                }
                // An unevaluated branch might have matched too, so "exactly
                // one" cannot be confirmed; refuse rather than guess.
                if let Some(too_deep) = too_deep {
                    out.push(too_deep);
                } else {
                    match valid.as_slice() {
                        [] => violation(
                            out,
                            path,
                            format!(
                                "{} is not valid under any of the given schemas",
                                render(instance)
                            ),
                        ),
                        [_] => {}
                        [first, second, ..] => violation(
                            out,
                            path,
                            format!(
                                "{} is valid under more than one of the given schemas \
                                 (schemas {first} and {second})",
                                render(instance)
                            ),
                        ),
                    }
                }
            }
            None => schema_error(out, path, "oneOf", LIST_EXPECTED),
        }
    }

    if let Some(negated) = keywords.get("not") {
        let found = collect(negated, instance, path, depth + 1);
        if found.is_empty() {
            violation(
                out,
                path,
                format!(
                    "{} should not be valid under {}",
                    render(instance),
                    render(negated)
                ),
            );
        } else if let Some(too_deep) = first_too_deep(found) {
            out.push(too_deep);
        }
    }
}

fn collect(schema: &Value, instance: &Value, path: &str, depth: usize) -> Vec<SchemaViolation> {
    let mut found = Vec::new();
    validate_node(schema, instance, path, depth, &mut found);
    found
}

fn first_too_deep(found: Vec<SchemaViolation>) -> Option<SchemaViolation> {
    found.into_iter().find(|found| found.message == TOO_DEEP)
}

fn schema_list(value: &Value) -> Option<&Vec<Value>> {
    match value {
        Value::Array(list) if !list.is_empty() => Some(list),
        _ => None,
    }
}

/// Reads a count keyword such as `minItems`, reporting a malformed value as a
/// violation so the check fails closed instead of being skipped.
fn count_keyword(
    keywords: &Map<String, Value>,
    keyword: &str,
    path: &str,
    out: &mut Vec<SchemaViolation>,
) -> Option<u64> {
    let value = keywords.get(keyword)?;
    let count = as_count(value);
    if count.is_none() {
        schema_error(out, path, keyword, "a non-negative integer");
    }
    count
}

fn as_count(value: &Value) -> Option<u64> {
    let Value::Number(number) = value else {
        return None;
    };
    if let Some(count) = number.as_u64() {
        return Some(count);
    }
    // Schemas written by hand or generated by tools sometimes say `3.0`.
    let float = number.as_f64()?;
    (float >= 0.0 && float.fract() == 0.0 && float <= u64::MAX as f64).then_some(float as u64)
}

fn violation(out: &mut Vec<SchemaViolation>, path: &str, message: String) {
    out.push(SchemaViolation {
        path: path.to_owned(),
        message,
    });
}

fn schema_error(out: &mut Vec<SchemaViolation>, path: &str, keyword: &str, expected: &str) {
    violation(
        out,
        path,
        format!("invalid schema: '{keyword}' must be {expected}"),
    );
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

/// serde_json may be built with `preserve_order` somewhere in the dependency
/// graph, so map iteration order is not something we can rely on.
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

fn is_integer(number: &Number) -> bool {
    number.is_i64()
        || number.is_u64()
        || number
            .as_f64()
            .is_some_and(|float| float.is_finite() && float.fract() == 0.0)
}

fn compare_numbers(a: &Number, b: &Number) -> Option<Ordering> {
    match (canonical(a), canonical(b)) {
        (Canonical::Int(a), Canonical::Int(b)) => Some(a.cmp(&b)),
        (Canonical::Float(a), Canonical::Float(b)) => a.partial_cmp(&b),
        (Canonical::Int(a), Canonical::Float(b)) => (a as f64).partial_cmp(&b),
        (Canonical::Float(a), Canonical::Int(b)) => a.partial_cmp(&(b as f64)),
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

/// RFC 3339 `date-time`, e.g. `2024-05-01T12:30:00.5+02:00`.
fn is_date_time(text: &str) -> bool {
    parse_date_time(text.as_bytes()).is_some()
}

fn parse_date_time(bytes: &[u8]) -> Option<()> {
    let year = digits(bytes, 0, 4)?;
    expect_byte(bytes, 4, b'-')?;
    let month = digits(bytes, 5, 2)?;
    expect_byte(bytes, 7, b'-')?;
    let day = digits(bytes, 8, 2)?;
    if !matches!(bytes.get(10), Some(b'T' | b't')) {
        return None;
    }
    let hour = digits(bytes, 11, 2)?;
    expect_byte(bytes, 13, b':')?;
    let minute = digits(bytes, 14, 2)?;
    expect_byte(bytes, 16, b':')?;
    // 60 is a leap second, which RFC 3339 allows.
    let second = digits(bytes, 17, 2)?;
    if !(1..=12).contains(&month)
        || day == 0
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut rest = bytes.get(19..)?;
    if let Some((b'.', fraction)) = rest.split_first() {
        let fraction_digits = fraction.iter().take_while(|b| b.is_ascii_digit()).count();
        if fraction_digits == 0 {
            return None;
        }
        rest = fraction.get(fraction_digits..)?;
    }
    match rest {
        [b'Z' | b'z'] => Some(()),
        [b'+' | b'-', ..] => {
            let offset_hour = digits(rest, 1, 2)?;
            expect_byte(rest, 3, b':')?;
            let offset_minute = digits(rest, 4, 2)?;
            (rest.len() == 6 && offset_hour <= 23 && offset_minute <= 59).then_some(())
        }
        _ => None,
    }
}

fn digits(bytes: &[u8], at: usize, len: usize) -> Option<u32> {
    let slice = bytes.get(at..at.checked_add(len)?)?;
    slice.iter().try_fold(0u32, |acc, &byte| {
        byte.is_ascii_digit()
            .then(|| acc * 10 + u32::from(byte - b'0'))
    })
}

fn expect_byte(bytes: &[u8], at: usize, wanted: u8) -> Option<()> {
    (bytes.get(at) == Some(&wanted)).then_some(())
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        // Matching on remainders keeps this within the workspace MSRV (1.85),
        // which predates `u32::is_multiple_of`.
        2 => match (year % 4, year % 100, year % 400) {
            (0, 0, 0) => 29,
            (0, 0, _) => 28,
            (0, _, _) => 29,
            _ => 28,
        },
        _ => 0,
    }
}

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

// ---------------------------------------------------------------------------
// check_supported

fn check_schema(schema: &Value, location: &str, depth: usize) -> Result<(), String> {
    if depth >= MAX_DEPTH {
        return Err(format!(
            "schema at {location} is nested too deeply (more than {MAX_DEPTH} levels)"
        ));
    }
    let keywords = match schema {
        Value::Bool(_) => return Ok(()),
        Value::Object(keywords) => keywords,
        _ => {
            return Err(format!(
                "schema at {location} must be an object or a boolean"
            ))
        }
    };
    for (keyword, value) in sorted_entries(keywords) {
        check_keyword(keyword, value, location, depth)?;
    }
    Ok(())
}

fn check_keyword(keyword: &str, value: &Value, location: &str, depth: usize) -> Result<(), String> {
    let malformed = |expected: &str| {
        Err(format!(
            "keyword '{keyword}' at {location} must be {expected}"
        ))
    };
    match keyword {
        "type" => {
            let known = |name: &Value| name.as_str().is_some_and(|name| TYPE_NAMES.contains(&name));
            let ok = match value {
                Value::String(_) => known(value),
                Value::Array(names) => !names.is_empty() && names.iter().all(known),
                _ => false,
            };
            if ok {
                Ok(())
            } else {
                malformed(&format!(
                    "one of {} or a non-empty array of them",
                    TYPE_NAMES.join(", ")
                ))
            }
        }
        "properties" => {
            let Value::Object(properties) = value else {
                return malformed("an object mapping property names to schemas");
            };
            let properties_location = pointer(location, keyword);
            for (name, property_schema) in sorted_entries(properties) {
                check_schema(
                    property_schema,
                    &pointer(&properties_location, name),
                    depth + 1,
                )?;
            }
            Ok(())
        }
        "required" => match value {
            Value::Array(names) if names.iter().all(Value::is_string) => Ok(()),
            _ => malformed("an array of strings"),
        },
        "items" if value.is_array() => {
            malformed("a single schema (the tuple form is not supported)")
        }
        "additionalProperties" | "items" | "propertyNames" | "not" => {
            check_schema(value, &pointer(location, keyword), depth + 1)
        }
        "allOf" | "anyOf" | "oneOf" => {
            let Some(branches) = schema_list(value) else {
                return malformed("a non-empty array of schemas");
            };
            let list_location = pointer(location, keyword);
            for (index, branch) in branches.iter().enumerate() {
                check_schema(
                    branch,
                    &pointer(&list_location, &index.to_string()),
                    depth + 1,
                )?;
            }
            Ok(())
        }
        "minItems" | "maxItems" | "minLength" | "maxLength" | "minProperties" | "maxProperties" => {
            match as_count(value) {
                Some(_) => Ok(()),
                None => malformed("a non-negative integer"),
            }
        }
        "exclusiveMinimum" | "exclusiveMaximum" if value.is_boolean() => {
            malformed("a number (the draft-04 boolean form is not supported)")
        }
        "minimum" | "maximum" | "exclusiveMinimum" | "exclusiveMaximum" => {
            if value.is_number() {
                Ok(())
            } else {
                malformed("a number")
            }
        }
        "uniqueItems" => {
            if value.is_boolean() {
                Ok(())
            } else {
                malformed("a boolean")
            }
        }
        "enum" => {
            if value.is_array() {
                Ok(())
            } else {
                malformed("an array")
            }
        }
        "format" => {
            if value.is_string() {
                Ok(())
            } else {
                malformed("a string")
            }
        }
        "const" => Ok(()),
        "$ref" => Err(format!(
            "unsupported keyword '$ref' at {location}: references are not supported, \
             inline the referenced schema instead"
        )),
        _ if ANNOTATIONS.contains(&keyword) || keyword.starts_with("x-") => Ok(()),
        _ => Err(format!("unsupported keyword '{keyword}' at {location}")),
    }
}

/// Appends one RFC 6901 reference token.
fn pointer(location: &str, token: &str) -> String {
    format!("{location}/{}", token.replace('~', "~0").replace('/', "~1"))
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
        assert!(validate(&json!({"format": "email"}), &json!("not an email")).is_ok());
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
    fn check_supported_rejects_ref_with_its_location() {
        let schema = json!({"properties": {"a/b": {"items": {"$ref": "#/$defs/x"}}}});
        let error = check_supported(&schema).unwrap_err();
        assert!(error.contains("'$ref'"), "{error}");
        assert!(error.contains("#/properties/a~1b/items"), "{error}");
    }

    #[test]
    fn check_supported_rejects_unknown_keywords() {
        for keyword in [
            "pattern",
            "patternProperties",
            "$defs",
            "definitions",
            "if",
            "contains",
            "prefixItems",
            "multipleOf",
            "dependentRequired",
            "X-upper",
        ] {
            let mut schema = Map::new();
            schema.insert(keyword.to_owned(), json!({}));
            let error = check_supported(&Value::Object(schema)).unwrap_err();
            assert_eq!(error, format!("unsupported keyword '{keyword}' at #"));
        }
        let error = check_supported(&json!({"anyOf": [{}, {"pattern": "^a"}]})).unwrap_err();
        assert_eq!(error, "unsupported keyword 'pattern' at #/anyOf/1");
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

        // Deep instances against shallow schemas: equality, hashing, cloning
        // and rendering all walk the whole value.
        let deep = nested_arrays(DEPTH);
        let pair = Value::Array(vec![deep_clone(&deep), deep_clone(&deep)]);
        let found = messages(&json!({"uniqueItems": true, "maxItems": 1}), &pair);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[1].contains("non-unique"), "{found:?}");
        let enum_schema = object(vec![("enum", json!([1])), ("const", deep_clone(&deep))]);
        assert_eq!(
            messages(&enum_schema, &deep),
            vec!["[[[[...]]]] is not one of [1]"]
        );
        let holder = object(vec![("deep", deep_clone(&deep))]);
        let filled = apply_defaults(&json!({"properties": {"x": {"default": 0}}}), &holder);
        assert_eq!(filled.get("x"), Some(&json!(0)));
        assert!(validate(&json!({"type": "array", "items": {"type": "array"}}), &deep).is_ok());
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
