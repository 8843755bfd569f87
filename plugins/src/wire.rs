//! Formats platforms speak, on the crates that implement them: RFC 3339 times (`time`) and
//! percent-encoded URL parts (`percent-encoding`), and the check every platform's base URL
//! setting gets. Shared by the platform plugins, so each parses a date or builds a path the
//! same way.

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::PluginError;

/// Everything but RFC 3986's unreserved characters (`A-Z a-z 0-9 - . _ ~`).
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encodes `text` for one path segment or query value, so a name or key taken from
/// settings or a platform can never change the path or the query it is put in.
pub(crate) fn encode_component(text: &str) -> String {
    utf8_percent_encode(text, COMPONENT).to_string()
}

/// A base URL setting paths are appended to: no query or fragment. (That it is an http(s) URL
/// with a host is the schema's `format: uri`.)
pub(crate) fn check_base_url(settings: &serde_json::Value, key: &str) -> Result<(), PluginError> {
    match settings.get(key).and_then(serde_json::Value::as_str) {
        Some(url) if url.contains(['?', '#']) => Err(PluginError::invalid_settings(
            key,
            format!(
                "{key} is a base URL: paths are appended to it, so it takes no query or fragment"
            ),
        )),
        _ => Ok(()),
    }
}

/// Epoch milliseconds of an RFC 3339 date-time (`2024-05-01T12:30:00.5+02:00`, `...Z`);
/// `None` for anything else. Digits past the millisecond are dropped, not rounded.
pub(crate) fn parse_rfc3339_ms(text: &str) -> Option<i64> {
    let at = OffsetDateTime::parse(text.trim(), &Rfc3339).ok()?;
    i64::try_from(at.unix_timestamp_nanos().div_euclid(1_000_000)).ok()
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` of epoch milliseconds (always UTC, always three decimals).
pub(crate) fn format_rfc3339_ms(ms: i64) -> String {
    let Ok(at) = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000) else {
        return String::new();
    };
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
        at.millisecond()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trips_in_milliseconds() {
        assert_eq!(parse_rfc3339_ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339_ms("1969-12-31T23:59:59.5Z"), Some(-500));
        assert_eq!(
            parse_rfc3339_ms("2024-02-29T13:30:00.5009+01:30"),
            Some(1_709_208_000_500)
        );
        for bad in ["", "x", "2024-02-30T00:00:00Z", "2024-02-29T12:00:00+0200"] {
            assert_eq!(parse_rfc3339_ms(bad), None, "{bad}");
        }
        for ms in [0, 1, 951_782_400_000, 4_102_444_799_999] {
            assert_eq!(parse_rfc3339_ms(&format_rfc3339_ms(ms)), Some(ms));
        }
        assert_eq!(
            format_rfc3339_ms(1_709_208_000_500),
            "2024-02-29T12:00:00.500Z"
        );
    }

    #[test]
    fn components_keep_only_unreserved_characters() {
        assert_eq!(encode_component("a-Z.0_~"), "a-Z.0_~");
        assert_eq!(encode_component("../x y/é?"), "..%2Fx%20y%2F%C3%A9%3F");
    }
}
