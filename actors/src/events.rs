//! What drivers hear, and when: driver events and process callbacks, committed with the
//! change that caused them. Their JSON is Metagov's, and the gateway owns every HTTP shape:
//! it provides [`DriverJson`], which actors use to build what they commit.

use agora_plugins::Event;
use agora_runtime::{Effects, OutboxMessage};
use serde_json::{json, Value};

use crate::ProcessView;

/// Metagov's JSON for what drivers receive outside an answer. The gateway implements it with
/// the same types its answers use, so a process looks the same in `GET <Location>`, in its
/// callback and in its `process_updated` event.
pub trait DriverJson: Send + Sync + 'static {
    /// A process: the callback body, and the `data` of its `process_updated` event.
    fn process(&self, p: &ProcessView) -> Value;
    /// The event envelope `{"community","source","event_type","timestamp","data","initiator"}`.
    fn event(&self, community: &str, source: &str, event: &Event, now_ms: u64) -> Value;
}

/// Metagov's timestamp format: epoch seconds as a decimal string.
pub fn timestamp(now_ms: u64) -> String {
    format!("{}.{:03}", now_ms / 1000, now_ms % 1000)
}

/// Epoch milliseconds from RFC 3339 text or from epoch seconds (`1619102376` or `1619102376.53`).
pub fn parse_instant_ms(text: &str) -> Option<u64> {
    if let Ok(secs) = text.trim().parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then_some((secs * 1000.0) as u64);
    }
    let at =
        time::OffsetDateTime::parse(text.trim(), &time::format_description::well_known::Rfc3339)
            .ok()?;
    u64::try_from(at.unix_timestamp_nanos() / 1_000_000).ok()
}

/// Whether an event emitted now reaches anyone: a driver URL, or a subscriber of the live-only
/// stream. Callers whose event data is costly to build ask first.
pub fn heard(fx: &Effects, driver_url: Option<&str>) -> bool {
    driver_url.is_some() || fx.event_stream_watched()
}

/// Emits `event` in the commit being built: to the driver URL through the outbox (when there
/// is one) and to the node's event stream (`/api/internal/events`) once durable.
pub fn emit(
    fx: &mut Effects,
    json: &dyn DriverJson,
    driver_url: Option<&str>,
    community: &str,
    source: &str,
    event: &Event,
) {
    if !heard(fx, driver_url) {
        return;
    }
    let body = json
        .event(community, source, event, fx.now_ms())
        .to_string();
    fx.publish(community, &event.event_type, body.clone());
    if let Some(url) = driver_url {
        fx.send(OutboxMessage {
            url: url.to_string(),
            body,
            ordering_key: format!("events/{community}"),
        });
    }
}

/// `process_updated`, whose data is the process as Metagov shows it.
pub fn process_updated(data: Value) -> Event {
    Event {
        event_type: "process_updated".into(),
        data,
        initiator: json!({}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_parse_from_rfc3339_or_epoch_seconds() {
        assert_eq!(parse_instant_ms("1619102376.5"), Some(1_619_102_376_500));
        assert_eq!(parse_instant_ms("1970-01-01T00:00:01Z"), Some(1000));
        assert_eq!(
            parse_instant_ms("2021-04-22T14:39:36.530+00:00"),
            Some(1_619_102_376_530)
        );
        assert_eq!(parse_instant_ms("yesterday"), None);
        assert_eq!(parse_instant_ms("-5"), None);
    }

    #[test]
    fn timestamps_are_epoch_seconds_with_millis() {
        assert_eq!(timestamp(1_619_102_376_530), "1619102376.530");
    }
}
