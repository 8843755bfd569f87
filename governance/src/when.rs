//! Time as the core sees it: milliseconds since the Unix epoch, always handed in by the caller
//! (the core never reads a clock), plus the two conversions it needs: hours given in requests
//! (fractions allowed) to milliseconds, and milliseconds to RFC 3339 for the JSON it writes.

use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::error::GovError;

/// Milliseconds since the Unix epoch.
pub type Millis = i64;

pub const HOUR_MS: Millis = 3_600_000;

/// The longest duration a request may give, in hours (ten years): keeps every deadline far
/// inside `i64` milliseconds.
pub const MAX_HOURS: f64 = 87_600.0;

/// `at` as RFC 3339 in UTC with milliseconds (`2030-01-01T00:00:00.000Z`).
pub fn rfc3339(at: Millis) -> String {
    let nanos = i128::from(at) * 1_000_000;
    OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|t| {
            let t = t
                .replace_nanosecond((at.rem_euclid(1000) as u32) * 1_000_000)
                .ok()?;
            t.format(&Rfc3339).ok()
        })
        .unwrap_or_else(|| at.to_string())
}

/// Reads an optional duration in hours (`field`), fractions allowed, `0 < h ≤ MAX_HOURS`
/// (or `0 ≤ h` when `zero_ok`), into milliseconds.
pub fn hours_field(
    obj: &serde_json::Map<String, Value>,
    key: &str,
    path: &str,
    zero_ok: bool,
) -> Result<Option<Millis>, GovError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => {
            let h = v.as_f64().ok_or_else(|| {
                GovError::invalid(path, format!("'{key}' must be a number of hours"))
            })?;
            let ok = h.is_finite() && h <= MAX_HOURS && (h > 0.0 || (zero_ok && h == 0.0));
            if !ok {
                return Err(GovError::invalid(
                    path,
                    format!(
                        "'{key}' must be {} and at most {MAX_HOURS} hours",
                        if zero_ok { "at least 0" } else { "more than 0" }
                    ),
                ));
            }
            Ok(Some((h * HOUR_MS as f64).round() as Millis))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rfc3339_is_utc_with_millis() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_893_456_000_123), "2030-01-01T00:00:00.123Z");
    }

    #[test]
    fn hours_allow_fractions_and_refuse_nonsense() {
        let o = json!({"a": 1.5, "b": 0, "c": -1, "d": "x", "e": 1e12});
        let o = o.as_object().unwrap();
        assert_eq!(hours_field(o, "a", "a", false).unwrap(), Some(5_400_000));
        assert!(hours_field(o, "b", "b", false).is_err());
        assert_eq!(hours_field(o, "b", "b", true).unwrap(), Some(0));
        assert!(hours_field(o, "c", "c", true).is_err());
        assert!(hours_field(o, "d", "d", true).is_err());
        assert!(hours_field(o, "e", "e", true).is_err());
        assert_eq!(hours_field(o, "z", "z", true).unwrap(), None);
    }
}
