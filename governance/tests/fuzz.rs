//! Arbitrary request bodies against a lived-in community: no panic, ever; a refused body (any
//! 4xx) changes nothing; a dry run changes nothing; an accepted one leaves a log that verifies.
//! Bodies are drawn from raw JSON and from near-valid shapes (real change names and targets
//! with random parameters), so both the parser and the validators are reached.

mod support;

use agora_governance::{verify_chain, Community, ConditionId, Ctx, LogEntry, Request};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        (-1e6f64..1e6).prop_map(|f| json!(f)),
        "[a-z_:0-9 ]{0,12}".prop_map(Value::String),
        prop_oneof![
            Just("item:1"),
            Just("item:2"),
            Just("item:0"),
            Just("item:99999999999999999999"),
            Just("community"),
            Just("owners"),
            Just("governors"),
            Just("role:mods"),
            Just("role:members"),
            Just("permission:1"),
            Just("condition:1"),
            Just("action:1"),
            Just("1"),
            Just("ana"),
            Just("ben"),
            Just("view"),
            Just("do_anything"),
            Just("edit body"),
            Just("members"),
            Just("approval"),
            Just("vote"),
        ]
        .prop_map(|s| json!(s)),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    json_leaf().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop_oneof![
                        "[a-z_]{1,10}".boxed(),
                        prop_oneof![
                            Just("agents"),
                            Just("name"),
                            Just("type"),
                            Just("fields"),
                            Just("ability"),
                            Just("actors"),
                            Just("roles"),
                            Just("condition"),
                            Just("conditions"),
                            Just("rule"),
                            Just("allow"),
                            Just("anyone"),
                            Just("inverse"),
                            Just("applies_to"),
                            Just("item"),
                            Just("permission_enabled"),
                            Just("index"),
                            Just("response"),
                            Just("template"),
                            Just("enabled"),
                            Just("body"),
                            Just("value"),
                            Just("method"),
                            Just("params"),
                            Just("timeout_hours"),
                            Just("duration_hours"),
                            Just("of"),
                            Just("summary"),
                        ]
                        .prop_map(str::to_string)
                        .boxed(),
                    ],
                    inner,
                ),
                0..5
            )
            .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn change_name() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(agora_governance::ChangeKind::ALL.to_vec())
            .prop_map(|k| k.name().to_string()),
        "[a-z_]{1,12}",
    ]
}

fn near_valid() -> impl Strategy<Value = Value> {
    (change_name(), json_leaf(), json_value(), any::<bool>()).prop_map(|(c, t, p, batch)| {
        let one = json!({"change": c, "target": t, "params": p});
        if batch {
            json!({"batch": [one.clone(), one]})
        } else {
            one
        }
    })
}

fn lived_in() -> (Community, i64) {
    let mut w = support::World::found("ana", json!({"members": ["ben", "cy"]}));
    w.act(
        "ana",
        "add_role",
        "community",
        json!({"name": "mods", "actors": ["ben"]}),
    );
    let coll = w.act(
        "ana",
        "create_item",
        "community",
        json!({"type": "collection", "fields": {"name": "c"}}),
    );
    let coll = w.item(&coll);
    w.act(
        "ana",
        "create_item",
        &format!("item:{coll}"),
        json!({"type": "document", "fields": {"name": "d", "body": "b"}}),
    );
    w.act(
        "ana",
        "add_permission",
        &format!("item:{coll}"),
        json!({"ability": "edit_item", "roles": ["mods"], "applies_to": "members",
        "condition": {"type": "approval", "approvers": {"actors": ["cy"]}, "timeout_hours": 1}}),
    );
    w.act("ben", "rename", "community", json!({"name": "waiting"}));
    (w.c, w.now)
}

fn check(c: &mut Community, now: i64, actor: &str, body: &Value) -> Result<(), TestCaseError> {
    let fields = std::collections::HashMap::new();
    let cx = Ctx::at(now).with_fields(&fields);
    let before = c.snapshot();
    let _ = Request::parse(body);
    let _ = c.dry_run(actor, body, &cx);
    prop_assert_eq!(&c.snapshot(), &before, "a dry run changes nothing");
    match c.submit(actor, body, &cx) {
        Err(e) => {
            prop_assert!(matches!(e.status.http(), 400 | 404 | 409), "{:?}", e);
            prop_assert!(!e.code.is_empty());
            prop_assert_eq!(&c.snapshot(), &before, "a refusal changes nothing: {:?}", e);
        }
        Ok(s) => {
            prop_assert!(!s.effects.log.is_empty());
            let chain: Vec<Value> = s.effects.log.iter().map(LogEntry::to_json).collect();
            prop_assert!(verify_chain(&chain, Some(&before_head(&before))).is_ok());
        }
    }
    // Timeouts and vote outcomes for anything, too.
    for id in [1, 2, 3, 50] {
        let _ = c.timeout_fired(ConditionId(id), &cx);
    }
    Ok(())
}

fn before_head(s: &agora_governance::Snapshot) -> String {
    serde_json::to_value(s).unwrap()["log_head"]
        .as_str()
        .unwrap()
        .to_string()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1500, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn raw_json_bodies_never_panic_and_refusals_change_nothing(body in json_value(), actor in prop_oneof![Just("ana".to_string()), Just("ben".to_string()), "[ -~]{0,8}".prop_map(|s| s)]) {
        let (mut c, now) = lived_in();
        check(&mut c, now, &actor, &body)?;
    }

    #[test]
    fn near_valid_bodies_never_panic_and_refusals_change_nothing(body in near_valid(), actor in prop_oneof![Just("ana"), Just("ben"), Just("cy"), Just("zed")]) {
        let (mut c, now) = lived_in();
        check(&mut c, now, actor, &body)?;
    }
}

#[test]
fn oversized_and_odd_ids_are_refused_before_lookup() {
    let (mut c, now) = lived_in();
    let cx = Ctx::at(now);
    for (actor, body, code) in [
        (
            "ana",
            json!({"change": "edit_item", "target": "item:123456789012345678901", "params": {"fields": {"name": "x"}}}),
            "invalid_id",
        ),
        (
            "ana",
            json!({"change": "edit_item", "target": "item:abc", "params": {"fields": {"name": "x"}}}),
            "invalid_id",
        ),
        (
            "ana",
            json!({"change": "add_members", "target": "community", "params": {"agents": ["x".repeat(201)]}}),
            "invalid_id",
        ),
        (
            "ana",
            json!({"change": "add_members", "target": "community", "params": {"agents": ["tab\there"]}}),
            "invalid_id",
        ),
        (
            &*"a".repeat(201),
            json!({"change": "rename", "target": "community", "params": {"name": "x"}}),
            "invalid_id",
        ),
        (
            "ana",
            json!({"change": "add_to_collection", "target": "item:1", "params": {"item": "0"}}),
            "invalid_id",
        ),
        (
            "ana",
            json!({"change": "remove_role", "target": "role:ä", "params": {}}),
            "invalid_id",
        ),
        (
            "ana",
            json!({"change": "edit_item", "target": "item:4242", "params": {"fields": {"name": "x"}}}),
            "unknown_target",
        ),
    ] {
        let before = c.snapshot();
        let e = c.submit(actor, &body, &cx).unwrap_err();
        assert_eq!(e.code, code, "{body}");
        assert_eq!(c.snapshot(), before);
    }
}
