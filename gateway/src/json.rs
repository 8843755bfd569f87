//! Parsing request bodies into `serde_json::Value` while refusing duplicate object keys.
//!
//! `serde_json::from_slice::<Value>` keeps the last of two equal keys, so a proxy or a log
//! that reads the first one sees a different request from the one executed. This builds the
//! same `Value` with serde's visitor (the work `from_slice` does anyway), and a duplicate is
//! noticed for free: it is the insert that replaces an entry. Its path is collected on the way
//! out of the recursion, so the common path pays nothing for it.

use std::cell::RefCell;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::map::Entry;
use serde_json::{Map, Number, Value};

/// Why a body could not be read as JSON.
#[derive(Debug)]
pub(crate) enum BodyJsonError {
    /// Not JSON (or nested too deep): serde_json's own message.
    Syntax(serde_json::Error),
    /// An object has the same key twice; the path of the second one (`a.b[2].c`).
    DuplicateKey(String),
}

/// One step of the path to a duplicate, innermost first while it is collected.
enum Step {
    Key(String),
    Index(usize),
}

/// Parses `bytes` into a `Value`, refusing duplicate keys at any depth.
pub(crate) fn parse(bytes: &[u8]) -> Result<Value, BodyJsonError> {
    let dup: RefCell<Option<Vec<Step>>> = RefCell::new(None);
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let parsed = ValueSeed { dup: &dup }
        .deserialize(&mut de)
        .and_then(|v| de.end().map(|()| v));
    match parsed {
        Ok(v) => Ok(v),
        Err(e) => match dup.into_inner() {
            Some(steps) => Err(BodyJsonError::DuplicateKey(render(steps))),
            None => Err(BodyJsonError::Syntax(e)),
        },
    }
}

/// `a.b[2].c` from the steps collected innermost first.
fn render(steps: Vec<Step>) -> String {
    let mut out = String::new();
    for step in steps.into_iter().rev() {
        match step {
            Step::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(&k);
            }
            Step::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

#[derive(Clone, Copy)]
struct ValueSeed<'a> {
    dup: &'a RefCell<Option<Vec<Step>>>,
}

impl ValueSeed<'_> {
    /// Adds `step` to the path of a duplicate found below it (any other error passes as is).
    fn on_the_way_out(&self, step: impl FnOnce() -> Step) {
        if let Some(steps) = self.dup.borrow_mut().as_mut() {
            steps.push(step());
        }
    }
}

impl<'de> DeserializeSeed<'de> for ValueSeed<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValueSeed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        // serde_json never hands a non-finite float; `Null` mirrors its own `Value` visitor.
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        loop {
            match seq.next_element_seed(self) {
                Ok(Some(v)) => items.push(v),
                Ok(None) => return Ok(Value::Array(items)),
                Err(e) => {
                    let index = items.len();
                    self.on_the_way_out(|| Step::Index(index));
                    return Err(e);
                }
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = match map.next_value_seed(self) {
                Ok(v) => v,
                Err(e) => {
                    self.on_the_way_out(|| Step::Key(key));
                    return Err(e);
                }
            };
            match out.entry(key) {
                Entry::Vacant(slot) => {
                    slot.insert(value);
                }
                Entry::Occupied(slot) => {
                    let key = slot.key().clone();
                    let message = format!("duplicate key {key:?}");
                    *self.dup.borrow_mut() = Some(vec![Step::Key(key)]);
                    return Err(de::Error::custom(message));
                }
            }
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dup(text: &str) -> String {
        match parse(text.as_bytes()) {
            Err(BodyJsonError::DuplicateKey(path)) => path,
            other => panic!("{text}: {other:?}"),
        }
    }

    #[test]
    fn parses_like_serde_json() {
        for text in [
            r#"{"a":1,"b":[1,2.5,-0,1e3,18446744073709551615,-9223372036854775808],"c":{"d":null,"e":true,"f":"x\u00e9"}}"#,
            "[]",
            "\"s\"",
            "  {}  ",
            "-0",
            "1.0e400",
        ] {
            let ours = parse(text.as_bytes());
            let theirs = serde_json::from_slice::<Value>(text.as_bytes());
            match (ours, theirs) {
                (Ok(a), Ok(b)) => assert_eq!(a, b, "{text}"),
                (Err(BodyJsonError::Syntax(_)), Err(_)) => {}
                (a, b) => panic!("{text}: ours {a:?}, serde_json {b:?}"),
            }
        }
    }

    #[test]
    fn refuses_duplicates_with_their_path() {
        assert_eq!(dup(r#"{"voter":"zed","voter":"ana"}"#), "voter");
        assert_eq!(dup(r#"{"parameters":{"low":0,"low":1}}"#), "parameters.low");
        assert_eq!(dup(r#"{"a":[{"x":1},{"y":1,"y":2}]}"#), "a[1].y");
        assert_eq!(dup(r#"[[{}],[{"k":1,"k":1}]]"#), "[1][0].k");
        // Same key in sibling objects is fine.
        assert!(parse(br#"[{"k":1},{"k":1}]"#).is_ok());
    }

    #[test]
    fn syntax_errors_and_deep_nesting_are_not_duplicates() {
        assert!(matches!(parse(b"{\"a\":"), Err(BodyJsonError::Syntax(_))));
        assert!(matches!(parse(b"{} {}"), Err(BodyJsonError::Syntax(_))));
        let deep = "[".repeat(100_000);
        assert!(matches!(
            parse(deep.as_bytes()),
            Err(BodyJsonError::Syntax(_))
        ));
    }
}
