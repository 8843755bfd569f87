//! The JSON drivers receive: Metagov's event envelope, and the outbox messages carrying it.

use agora_plugins::Event;
use agora_runtime::OutboxMessage;
use serde_json::{json, Value};

/// Metagov's timestamp format: epoch seconds as a decimal string.
pub fn timestamp(now_ms: u64) -> String {
    format!("{}.{:03}", now_ms / 1000, now_ms % 1000)
}

/// `{"community","source","event_type","timestamp","data","initiator"}` for the driver URL.
pub fn driver_event(
    url: &str,
    community: &str,
    source: &str,
    event: &Event,
    now_ms: u64,
) -> OutboxMessage {
    let body = json!({
        "community": community,
        "source": source,
        "event_type": event.event_type,
        "timestamp": timestamp(now_ms),
        "data": event.data,
        "initiator": event.initiator,
    });
    OutboxMessage {
        url: url.to_string(),
        body: body.to_string(),
        ordering_key: format!("events/{community}"),
    }
}

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
    fn timestamps_are_epoch_seconds_with_millis() {
        assert_eq!(timestamp(1_619_102_376_530), "1619102376.530");
    }
}
