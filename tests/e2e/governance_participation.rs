//! Participation through HTTP on a manual clock (contract section 6): an organisation, a
//! public project and a module with two phases; changes inside the module follow the active
//! phase (`phase_closed` outside it, with a dry run naming the phase that would allow it);
//! each phase start and end is a notice on the module and a driver event, exactly once, also
//! when the boundary falls while the node is down; ratings are counted on the item; a vote
//! attached to an item takes ballots only in a phase that allows voting; a private project is
//! invisible to members outside it.

use std::time::Duration;

use agora_governance::rfc3339;
use serde_json::{json, Value};

use crate::governance_api::Gov;
use crate::governance_conditions::{advance, manual_node, HOUR, START};
use crate::harness::{Node, Recorded, Sink, WAIT};

/// The driver's phase events, as (event type, phase name), in the order received.
fn phase_events(reqs: &[Recorded]) -> Vec<(String, String)> {
    reqs.iter()
        .filter_map(|r| r.json.clone())
        .filter(|e| e["event_type"] == "phase_started" || e["event_type"] == "phase_ended")
        .map(|e| {
            (
                e["event_type"].as_str().unwrap_or("").to_string(),
                e["data"]["phase"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

fn pair(kind: &str, phase: &str) -> (String, String) {
    (kind.to_string(), phase.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phases_switch_what_may_be_done_and_announce_themselves_once() {
    let sink = Sink::start().await;
    let mut node = Node::start("gov-phases", manual_node(&sink)).await;
    let (module, idea_target) = {
        let gov = Gov::community(&node, "city").await;
        gov.found("ana", json!({"members": ["ben", "cy"]})).await;
        let org = gov
            .create_item(
                "ana",
                "community",
                "organisation",
                json!({"name": "City hall"}),
            )
            .await;
        let project = gov
            .create_item(
                "ana",
                &format!("item:{org}"),
                "project",
                json!({"name": "Park", "access": "public",
                    "draft": false}),
            )
            .await;
        let phases = json!([
            {"name": "collect", "type": "ideas:collect",
             "start": rfc3339((START + HOUR) as i64), "end": rfc3339((START + 2 * HOUR) as i64)},
            {"name": "rate", "type": "ideas:rate",
             "start": rfc3339((START + 2 * HOUR) as i64), "end": rfc3339((START + 3 * HOUR) as i64)},
            {"name": "vote", "type": "polls:vote",
             "start": rfc3339((START + 3 * HOUR) as i64), "end": rfc3339((START + 4 * HOUR) as i64)},
        ]);
        // An unknown phase type is refused, and nothing is recorded.
        gov.post_action(
            "ana",
            &json!({"change": "create_item", "target": format!("item:{project}"),
                "params": {"type": "module", "fields": {"name": "M",
                "phases": [{"name": "x", "type": "ideas:juggle",
                    "start": rfc3339(START as i64), "end": rfc3339((START + HOUR) as i64)}]}}}),
        )
        .await
        .expect_error(400, "unknown_phase_type");
        let module = gov
            .create_item(
                "ana",
                &format!("item:{project}"),
                "module",
                json!({"name": "Ideas", "draft": false,
                    "phases": phases}),
            )
            .await;
        let create_idea = json!({"change": "create_item", "target": format!("item:{module}"),
            "params": {"type": "idea", "fields": {"name": "More trees"}}});
        // Before the first phase: closed, and the dry run says when it opens.
        let early = gov
            .post_action("ben", &create_idea)
            .await
            .expect_status(201)
            .json();
        assert_eq!(early["status"], "rejected", "{early}");
        assert_eq!(early["reason_code"], "phase_closed");
        assert_eq!(early["route"], "participation");
        let why = gov
            .dry_run("ben", &create_idea)
            .await
            .expect_status(200)
            .json();
        assert_eq!(
            why["would_allow"],
            json!([{"kind": "phase", "phase": "collect",
                "from": rfc3339((START + HOUR) as i64)}]),
            "{why}"
        );
        assert!(
            why["reason"]
                .as_str()
                .unwrap_or("")
                .contains("in phase `collect` from"),
            "{why}"
        );

        advance(&node, HOUR).await;
        sink.wait_for(WAIT, "the collect phase to start", |r| {
            phase_events(r).contains(&pair("phase_started", "collect"))
        })
        .await;
        let made = gov
            .post_action("ben", &create_idea)
            .await
            .expect_status(201)
            .json();
        assert_eq!(made["status"], "implemented", "{made}");
        assert_eq!(made["route"], "participation");
        // A private project is invisible to members outside it: 404, and left out of lists.
        let private = gov
            .create_item(
                "ana",
                &format!("item:{org}"),
                "project",
                json!({"name": "Budget", "access": "private"}),
            )
            .await;
        gov.get(Some("cy"), &format!("/items/{private}"))
            .await
            .expect_error(404, "item_not_found");
        let listed = gov
            .get(Some("cy"), "/items?type=project&limit=100")
            .await
            .expect_status(200)
            .json();
        let ids: Vec<&Value> = listed["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|i| &i["id"])
            .collect();
        assert_eq!(ids, vec![&json!(project)], "{listed}");
        gov.act(
            "ana",
            "add_people_to_role",
            "role:participants",
            json!({"agents": ["cy"], "of": private}),
        )
        .await;
        gov.get(Some("cy"), &format!("/items/{private}"))
            .await
            .expect_status(200);
        (module, format!("item:{}", Gov::created(&made)))
    };

    // Down across the next boundary: the manual clock starts again from its start, and the
    // boundary passes after the restart. It is announced once, the earlier one not again.
    node.kill9().await;
    node.restart().await;
    advance(&node, 2 * HOUR + 1).await;
    let gov = Gov {
        node: &node,
        slug: "city".into(),
    };
    sink.wait_for(WAIT, "the rate phase to start", |r| {
        phase_events(r).contains(&pair("phase_started", "rate"))
    })
    .await;
    // Give a repeated announcement every chance to arrive, then count.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        phase_events(&sink.requests()),
        vec![
            pair("phase_started", "collect"),
            pair("phase_ended", "collect"),
            pair("phase_started", "rate"),
        ]
    );
    let event = sink
        .requests()
        .into_iter()
        .filter_map(|r| r.json)
        .find(|e| e["event_type"] == "phase_started" && e["data"]["phase"] == "rate")
        .expect("the rate event");
    assert_eq!(
        event["data"],
        json!({"module": module, "phase": "rate", "type": "ideas:rate",
            "at": rfc3339((START + 2 * HOUR) as i64)})
    );
    let notices = gov
        .get(Some("ana"), &format!("/items/{module}/notices"))
        .await
        .expect_status(200)
        .json();
    let kinds: Vec<Value> = notices["notices"]
        .as_array()
        .expect("notices")
        .iter()
        .map(|n| n["kind"].clone())
        .filter(|k| k.as_str().unwrap_or("").starts_with("phase_"))
        .collect();
    assert_eq!(
        kinds,
        vec![
            json!("phase_started"),
            json!("phase_ended"),
            json!("phase_started")
        ]
    );

    // In the rating phase: one rating per agent, changeable, counted on the item.
    for (who, value) in [("ben", 1), ("cy", 1), ("ben", -1)] {
        let a = gov
            .act(who, "rate", &idea_target, json!({"value": value}))
            .await;
        assert_eq!(a["status"], "implemented", "{a}");
    }
    let id = idea_target.trim_start_matches("item:");
    let item = gov
        .get(Some("cy"), &format!("/items/{id}"))
        .await
        .expect_status(200)
        .json();
    assert_eq!(item["ratings"], json!({"up": 1, "down": 1, "neutral": 0}));
    // Creating is over: the rate phase does not allow it.
    let late = gov
        .act(
            "ben",
            "create_item",
            &format!("item:{module}"),
            json!({"type": "idea", "fields": {"name": "Late"}}),
        )
        .await;
    assert_eq!(late["reason_code"], "phase_closed", "{late}");

    // A vote attached to the idea takes ballots only in the vote phase.
    let started = node
        .post_in(
            "city",
            "/api/internal/process/vote.approval",
            &json!({"title": "Which ideas?", "options": ["trees", "bench"], "item": id,
                "closing_at": rfc3339((START + 4 * HOUR) as i64)}),
        )
        .await
        .expect_status(202);
    let process = started.header("location").expect("a Location");
    let ballot = json!({"voter": "ben", "choice": ["trees"]});
    node.post(&format!("{process}/ballots"), &ballot)
        .await
        .expect_error(409, "phase_closed");
    let ballots = node
        .get(&format!("{process}/ballots"))
        .await
        .expect_status(200)
        .json();
    assert_eq!(
        ballots["ballots"],
        json!([]),
        "a refused ballot is not stored"
    );
    advance(&node, HOUR).await;
    node.post(&format!("{process}/ballots"), &ballot)
        .await
        .expect_status(200);
    // An attachment that is not an item id is refused when the vote starts.
    node.post_in(
        "city",
        "/api/internal/process/vote.approval",
        &json!({"options": ["a"], "item": 7, "closing_at": rfc3339((START + 4 * HOUR) as i64)}),
    )
    .await
    .expect_client_error();
}

/// The participation reason codes of contract section 3 through HTTP: in a semipublic project
/// a non-participant is refused `not_open`, a draft module refuses `draft` and an archived
/// project `archived`, to members and governors alike (no exemption for governing), while the
/// project's moderators may still act.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn projects_refuse_not_open_draft_and_archived() {
    let sink = Sink::start().await;
    let node = Node::start("gov-structure", manual_node(&sink)).await;
    let gov = Gov::community(&node, "city").await;
    gov.found("ana", json!({"members": ["ben", "cy"]})).await;
    let phases = json!([{"name": "collect", "type": "ideas:collect",
        "start": rfc3339((START - HOUR) as i64), "end": rfc3339((START + 10 * HOUR) as i64)}]);
    let project = |access: &'static str| {
        let gov = &gov;
        let phases = phases.clone();
        async move {
            let p = gov
                .create_item(
                    "ana",
                    "community",
                    "project",
                    json!({"name": access, "access": access,
                        "draft": false}),
                )
                .await;
            let m = gov
                .create_item(
                    "ana",
                    &format!("item:{p}"),
                    "module",
                    json!({"name": "m", "draft": false,
                        "phases": phases}),
                )
                .await;
            (p, m)
        }
    };
    let idea = |agent: &'static str, module: String| {
        let gov = &gov;
        async move {
            gov.act(
                agent,
                "create_item",
                &format!("item:{module}"),
                json!({"type": "idea", "fields": {"name": format!("{agent}'s idea")}}),
            )
            .await
        }
    };
    let refused = |a: &Value, code: &str| {
        assert_eq!(
            (&a["status"], &a["reason_code"], &a["route"]),
            (&json!("rejected"), &json!(code), &json!("participation")),
            "{a}"
        );
    };
    let (public, open_module) = project("public").await;
    let made = idea("ben", open_module.clone()).await;
    assert_eq!(
        (&made["status"], &made["route"]),
        (&json!("implemented"), &json!("participation")),
        "{made}"
    );
    // Semipublic: open to its participants only.
    let (semi, semi_module) = project("semipublic").await;
    refused(&idea("ben", semi_module.clone()).await, "not_open");
    // A governor is no participant either.
    refused(&idea("ana", semi_module.clone()).await, "not_open");
    gov.act(
        "ana",
        "add_people_to_role",
        "role:participants",
        json!({"agents": ["ben"], "of": semi}),
    )
    .await;
    assert_eq!(
        idea("ben", semi_module.clone()).await["status"],
        "implemented"
    );
    // A draft module refuses `draft`; published again, it takes ideas.
    let m = format!("item:{open_module}");
    gov.act("ana", "edit_item", &m, json!({"fields": {"draft": true}}))
        .await;
    refused(&idea("ben", open_module.clone()).await, "draft");
    gov.act("ana", "edit_item", &m, json!({"fields": {"draft": false}}))
        .await;
    assert_eq!(
        idea("ben", open_module.clone()).await["status"],
        "implemented"
    );
    // An archived project refuses `archived`, to members and governors alike; its moderators
    // may still act.
    gov.act(
        "ana",
        "add_people_to_role",
        "role:moderators",
        json!({"agents": ["cy"], "of": public}),
    )
    .await;
    let archived = gov
        .act(
            "ana",
            "edit_item",
            &format!("item:{public}"),
            json!({"fields": {"archived": true}}),
        )
        .await;
    assert_eq!(archived["status"], "implemented", "{archived}");
    refused(&idea("ben", open_module.clone()).await, "archived");
    refused(&idea("ana", open_module.clone()).await, "archived");
    assert_eq!(
        idea("cy", open_module.clone()).await["status"],
        "implemented"
    );
    crate::governance_api::verify_log(&gov).await;
}

/// Boundaries that fall due together (the clock jumps past six phases at once, as after a
/// restart or a takeover that came late) fire their reminders together, in any order: each is
/// still announced once, in time order, at its own time; a phase that began before its module
/// existed announces its end but not its start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boundaries_due_together_are_each_announced_once_in_order() {
    let sink = Sink::start().await;
    let node = Node::start("gov-overdue", manual_node(&sink)).await;
    let gov = Gov::community(&node, "city").await;
    gov.found("ana", json!({"members": ["ben"]})).await;
    let project = gov
        .create_item(
            "ana",
            "community",
            "project",
            json!({"name": "P", "access": "public", "draft": false}),
        )
        .await;
    let at = |h: u64| rfc3339((START + h * HOUR) as i64);
    let mut phases: Vec<Value> = (0..6)
        .map(|i| {
            json!({"name": format!("p{i}"), "type": "ideas:rate",
                "start": at(2 * i + 1), "end": at(2 * i + 2)})
        })
        .collect();
    phases.push(
        json!({"name": "before", "type": "ideas:collect", "weight": 1,
        "start": rfc3339((START - HOUR) as i64), "end": at(13)}),
    );
    let module = gov
        .create_item(
            "ana",
            &format!("item:{project}"),
            "module",
            json!({"name": "M", "draft": false, "phases": phases}),
        )
        .await;
    advance(&node, 20 * HOUR).await;
    let mut want: Vec<(String, String)> = Vec::new();
    for i in 0..6 {
        want.push(pair("phase_started", &format!("p{i}")));
        want.push(pair("phase_ended", &format!("p{i}")));
    }
    want.push(pair("phase_ended", "before"));
    sink.wait_for(WAIT, "every boundary", |r| {
        phase_events(r).len() >= want.len()
    })
    .await;
    // Give a repeated announcement every chance to arrive, then count.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let reqs = sink.requests();
    assert_eq!(phase_events(&reqs), want);
    let times: Vec<Value> = reqs
        .iter()
        .filter_map(|r| r.json.clone())
        .filter(|e| e["event_type"] == "phase_started" || e["event_type"] == "phase_ended")
        .map(|e| e["data"]["at"].clone())
        .collect();
    let mut hours: Vec<Value> = (1..=12).map(|h| json!(at(h))).collect();
    hours.push(json!(at(13)));
    assert_eq!(times, hours);
    let notices = gov
        .get(Some("ana"), &format!("/items/{module}/notices"))
        .await
        .expect_status(200)
        .json();
    let phase_notices = notices["notices"]
        .as_array()
        .expect("notices")
        .iter()
        .filter(|n| n["kind"].as_str().unwrap_or("").starts_with("phase_"))
        .count();
    assert_eq!(phase_notices, want.len(), "{notices}");
}
