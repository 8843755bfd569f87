//! SIGKILL while governance actions wait (contract sections 3 and 7): a node killed with actions
//! waiting on a vote and on a timeout keeps them waiting; a node killed right after it
//! implemented an action from a vote's outcome (before the vote's message was marked delivered)
//! implements it once when the message comes again; a node killed between an action's commit
//! and the opening of its vote opens the vote after the restart. Nothing lost, nothing resolved
//! twice, and the log still verifies.

use std::time::Duration;

use serde_json::{json, Value};

use crate::governance_api::{verify_log, Gov};
use crate::governance_conditions::{
    advance, ballot, manual_node, voting_members, wait_status, HOUR,
};
use crate::harness::{eventually, Node, Sink, WAIT};

/// How many log entries of `kind` are about action `id`.
fn entries_about(entries: &[Value], kind: &str, id: &Value) -> usize {
    entries
        .iter()
        .filter(|e| e["kind"] == kind && e["action"] == *id)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_while_actions_wait_loses_nothing_and_resolves_nothing_twice() {
    let sink = Sink::start().await;
    let mut node = Node::start("gov-sigkill", manual_node(&sink)).await;
    let (vote_action, timeout_action, process) = {
        let gov = voting_members(&node, "town").await;
        // One action waits on the members' vote ...
        let add = gov
            .act(
                "ben",
                "add_members",
                "community",
                json!({"agents": ["dee"]}),
            )
            .await;
        assert_eq!(add["status"], "waiting", "{add}");
        let process = add["conditions"][0]["process"]
            .as_str()
            .unwrap()
            .to_string();
        // ... another, in a community of its own, on an approval that approves itself when
        // its two hours pass.
        let plain = Gov::community(&node, "plain").await;
        plain.found("ana", json!({"members": ["ben"]})).await;
        plain
            .act(
                "ana",
                "add_permission",
                "community",
                json!({"ability": "rename", "actors": ["ben"],
                       "condition": {"type": "approval", "approvers": {"actors": ["ana"]},
                                     "timeout_hours": 2, "on_timeout": "approve"}}),
            )
            .await;
        let perm = plain
            .act("ben", "rename", "community", json!({"name": "Plainville"}))
            .await;
        assert_eq!(perm["status"], "waiting", "{perm}");
        eventually(WAIT, "the vote to open", || async {
            let r = node.get(&process).await;
            if r.status == 200 {
                Ok(())
            } else {
                Err(r.describe())
            }
        })
        .await;
        ballot(&node, &process, "ana", "agree").await;
        ballot(&node, &process, "ben", "agree").await;
        (add["id"].clone(), perm["id"].clone(), process)
    };

    // Killed while both wait: they are still waiting after the restart, the ballots kept.
    node.kill9().await;
    node.restart().await;
    {
        let gov = Gov {
            node: &node,
            slug: "town".into(),
        };
        assert_eq!(gov.action(&vote_action).await["status"], "waiting");
        let plain = Gov {
            node: &node,
            slug: "plain".into(),
        };
        assert_eq!(plain.action(&timeout_action).await["status"], "waiting");
        let p = node.get(&process).await.expect_status(200).json();
        assert_eq!(p["status"], "pending", "{p}");
        let ballots = node
            .get(&format!("{process}/ballots"))
            .await
            .expect_status(200)
            .json();
        assert_eq!(ballots["ballots"].as_array().unwrap().len(), 2);
    }

    // Armed to die right after the governance actor commits what the vote's outcome did, before
    // the vote's message is removed: it will be delivered again after the restart.
    node.kill9().await;
    node.set_env("AGORA_FAULT", Some("after_receive_commit"));
    node.restart().await;
    // The manual clock starts again from its start: the vote closes a day later.
    advance(&node, 25 * HOUR).await;
    node.wait_exited(Duration::from_secs(20)).await;
    node.set_env("AGORA_FAULT", None);
    node.restart().await;

    let gov = Gov {
        node: &node,
        slug: "town".into(),
    };
    let done = wait_status(&gov, &vote_action, "implemented").await;
    assert_eq!(done["resolution"]["by"], "vote");
    // Give a second delivery every chance to do harm, then count.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let members = gov.constitution().await["members"].clone();
    assert_eq!(
        members
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| **m == "dee")
            .count(),
        1,
        "{members}"
    );
    let entries = verify_log(&gov).await;
    assert_eq!(
        entries_about(&entries, "resolution", &vote_action),
        1,
        "resolved once"
    );
    assert_eq!(
        entries_about(&entries, "action", &vote_action),
        1,
        "recorded once"
    );
    // The other action waited through both kills; it resolves once when its deadline passes.
    let plain = Gov {
        node: &node,
        slug: "plain".into(),
    };
    advance(&node, 25 * HOUR).await;
    let other = wait_status(&plain, &timeout_action, "implemented").await;
    assert_eq!(other["resolution"]["by"], "timeout", "{other}");
    assert_eq!(plain.constitution().await["name"], "Plainville");
    let entries = verify_log(&plain).await;
    assert_eq!(entries_about(&entries, "resolution", &timeout_action), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vote_opening_cut_by_sigkill_opens_once_after_restart() {
    let sink = Sink::start().await;
    let mut node = Node::start("gov-open-kill", manual_node(&sink)).await;
    let gov_slug = "town";
    voting_members(&node, gov_slug).await;
    // Armed to die right after the action's commit, before its vote is opened.
    node.kill9().await;
    node.set_env("AGORA_FAULT", Some("after_send_commit"));
    node.restart().await;
    // The node may die before it answers: the answer is not the point, the commit is.
    let _ = node
        .request(
            reqwest::Method::POST,
            &format!("/api/v1/communities/{gov_slug}/actions"),
        )
        .header("X-Agora-Actor", "ben")
        .json(&json!({"change": "add_members", "target": "community",
                      "params": {"agents": ["dee"]}}))
        .send()
        .await;
    node.wait_exited(Duration::from_secs(20)).await;
    node.set_env("AGORA_FAULT", None);
    node.restart().await;
    // The action was committed before the crash, naming its vote ...
    let (id, process) = {
        let gov = Gov {
            node: &node,
            slug: gov_slug.into(),
        };
        let list = gov.get(None, "/actions").await.expect_status(200).json();
        let add = list["actions"][0].clone();
        assert_eq!(add["status"], "waiting", "{list}");
        (
            add["id"].clone(),
            add["conditions"][0]["process"]
                .as_str()
                .unwrap()
                .to_string(),
        )
    };
    // ... and the message to open it survived: the vote opens now, once, and decides it.
    eventually(WAIT, "the vote to open after the restart", || async {
        let r = node.get(&process).await;
        if r.status == 200 {
            Ok(())
        } else {
            Err(r.describe())
        }
    })
    .await;
    for v in ["ana", "ben", "cy"] {
        ballot(&node, &process, v, "agree").await;
    }
    advance(&node, 25 * HOUR).await;
    let gov = Gov {
        node: &node,
        slug: gov_slug.into(),
    };
    wait_status(&gov, &id, "implemented").await;
    let entries = verify_log(&gov).await;
    assert_eq!(entries_about(&entries, "resolution", &id), 1);
}
