//! Metagov's JSON shapes that drivers receive both in answers and on their own: a process
//! (the answer of `GET <Location>`, its callback body, the data of `process_updated`) and the
//! driver event envelope. Built here, once; [`MetagovJson`] hands them to the actors, which
//! commit callbacks and events with the change that caused them.

use agora_actors::events::{timestamp, DriverJson};
use agora_actors::ProcessView;
use agora_plugins::Event;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

/// A governance process, as Metagov shows it.
#[derive(Serialize, ToSchema)]
pub struct ProcessOut {
    id: u64,
    /// `<plugin>.<process>`
    name: String,
    community: String,
    /// `created`, `pending` or `completed`.
    status: &'static str,
    url: Option<String>,
    #[schema(value_type = Object)]
    errors: Value,
    #[schema(value_type = Object)]
    outcome: Value,
}

impl From<&ProcessView> for ProcessOut {
    fn from(v: &ProcessView) -> Self {
        ProcessOut {
            id: v.id,
            name: v.name.clone(),
            community: v.community.clone(),
            status: v.status,
            url: None,
            errors: v.errors.clone(),
            outcome: v.outcome.clone(),
        }
    }
}

/// A driver event: `{"community","source","event_type","timestamp","data","initiator"}`.
#[derive(Serialize)]
struct EventOut<'a> {
    community: &'a str,
    source: &'a str,
    event_type: &'a str,
    /// Epoch seconds as a decimal string, as Metagov sends it.
    timestamp: String,
    data: &'a Value,
    initiator: &'a Value,
}

/// The gateway's shapes, for what actors commit.
pub struct MetagovJson;

impl DriverJson for MetagovJson {
    fn process(&self, p: &ProcessView) -> Value {
        serde_json::to_value(ProcessOut::from(p)).unwrap_or(Value::Null)
    }

    fn event(&self, community: &str, source: &str, event: &Event, now_ms: u64) -> Value {
        let out = EventOut {
            community,
            source,
            event_type: &event.event_type,
            timestamp: timestamp(now_ms),
            data: &event.data,
            initiator: &event.initiator,
        };
        serde_json::to_value(out).unwrap_or(Value::Null)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_process_has_metagov_fields_in_answers_callbacks_and_events() {
        let view = ProcessView {
            id: 7,
            name: "vote.choice".into(),
            community: "c".into(),
            status: "pending",
            outcome: json!({"ballots": 0}),
            errors: json!({}),
            remote_input: None,
        };
        assert_eq!(
            MetagovJson.process(&view),
            json!({"id": 7, "name": "vote.choice", "community": "c", "status": "pending",
                   "url": null, "errors": {}, "outcome": {"ballots": 0}})
        );
        let event = Event {
            event_type: "process_updated".into(),
            data: json!({"id": 7}),
            initiator: json!({}),
        };
        assert_eq!(
            MetagovJson.event("c", "vote", &event, 1_619_102_376_530),
            json!({"community": "c", "source": "vote", "event_type": "process_updated",
                   "timestamp": "1619102376.530", "data": {"id": 7}, "initiator": {}})
        );
    }
}
