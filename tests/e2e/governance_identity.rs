//! Metagov's identity routes (contract section 1) and agents that are identities: shapes as
//! Metagov answers them, JSON 4xx where Metagov answers 500, and an `X-Agora-Actor` that names
//! an identity's id or a linked account acting as that one person.

use serde_json::json;

use crate::governance_api::Gov;
use crate::harness::{Node, NodeConfig};

const ID: &str = "/api/internal/identity";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identities_link_accounts_and_an_account_acts_as_its_person() {
    let node = Node::start("gov-identity", NodeConfig::dev()).await;
    node.community_with_randomness("town").await;

    let ids = node
        .post(
            &format!("{ID}/create_id"),
            &json!({"community_slug": "town", "count": 2}),
        )
        .await
        .expect_status(201)
        .json();
    let ids: Vec<u64> = ids
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().expect("integer ids"))
        .collect();
    assert_eq!(ids.len(), 2);
    assert!(ids.iter().all(|i| *i < 1 << 31), "{ids:?}");
    let (a, b) = (ids[0], ids[1]);
    node.post(
        &format!("{ID}/create_id"),
        &json!({"community_slug": "nowhere"}),
    )
    .await
    .expect_error(404, "community_not_found");

    let linked = node
        .post(
            &format!("{ID}/link_account"),
            &json!({"community_slug": "town", "external_id": a, "platform_type": "randomness",
                    "platform_identifier": "ana-r", "link_quality": "confirmed (weak)"}),
        )
        .await
        .expect_status(200)
        .json();
    assert_eq!(
        linked,
        json!({"external_id": a, "community": "town", "community_platform_id": null,
               "platform_type": "randomness", "platform_identifier": "ana-r", "custom_data": {},
               "link_type": "unknown", "link_quality": "confirmed (weak)"})
    );
    // Only plugins the community enabled name platforms; bad values are 400.
    node.post(
        &format!("{ID}/link_account"),
        &json!({"community_slug": "town", "external_id": a, "platform_type": "github",
                "platform_identifier": "ana"}),
    )
    .await
    .expect_error(400, "plugin_not_enabled");
    node.post(
        &format!("{ID}/link_account"),
        &json!({"community_slug": "town", "external_id": a, "platform_type": "randomness",
                "platform_identifier": "x", "link_quality": "great"}),
    )
    .await
    .expect_error(400, "invalid_request");
    // The same account for another identity, no better: refused, not moved.
    node.post(
        &format!("{ID}/link_account"),
        &json!({"community_slug": "town", "external_id": b, "platform_type": "randomness",
                "platform_identifier": "ana-r", "link_quality": "unconfirmed"}),
    )
    .await
    .expect_error(409, "account_linked");

    let user = node
        .get(&format!("{ID}/get_user?external_id={a}"))
        .await
        .expect_status(200)
        .json();
    assert_eq!(user["source_ID"], json!(a));
    assert_eq!(user["primary_ID"], json!(a));
    assert_eq!(user["linked_accounts"].as_array().unwrap().len(), 1);
    node.get(&format!("{ID}/get_user?external_id=12345"))
        .await
        .expect_error(404, "identity_not_found");
    node.get(&format!("{ID}/get_user?external_id=abc"))
        .await
        .expect_error(400, "invalid_query");
    let acc = node
        .get(&format!(
            "{ID}/get_linked_account?external_id={a}&platform_type=randomness"
        ))
        .await
        .expect_status(200)
        .json();
    assert_eq!(acc["platform_identifier"], "ana-r");
    let none = node
        .get(&format!(
            "{ID}/get_linked_account?external_id={b}&platform_type=randomness"
        ))
        .await
        .expect_status(200)
        .json();
    assert_eq!(none, json!({}));
    let all = node
        .get(&format!("{ID}/get_users?community=town"))
        .await
        .expect_status(200)
        .json();
    assert_eq!(all.as_array().unwrap().len(), 2);
    let filtered = node
        .get(&format!(
            "{ID}/get_users?community=town&platform_type=randomness"
        ))
        .await
        .json();
    assert_eq!(filtered.as_array().unwrap().len(), 1);
    let by_ids = node
        .get(&format!(
            "{ID}/filter_users_by_account?community=town&external_id_list={b}"
        ))
        .await
        .expect_status(200)
        .json();
    assert_eq!(by_ids[0]["source_ID"], json!(b));

    // Governance founded by the account is founded by the person (its identity's id).
    let gov = Gov {
        node: &node,
        slug: "town".into(),
    };
    let c = gov.found("randomness:ana-r", json!({})).await;
    assert_eq!(c["owners"]["actors"], json!([a.to_string()]));
    // The identity's id acts as the same owner.
    let renamed = gov
        .act(&a.to_string(), "rename", "community", json!({"name": "A"}))
        .await;
    assert_eq!(renamed["status"], "implemented", "{renamed}");
    assert_eq!(renamed["actor"], json!(a.to_string()));
    // Merged, the second identity is the same person.
    let merged = node
        .post(
            &format!("{ID}/merge_ids"),
            &json!({"primary_instance_id": a, "secondary_instance_id": b}),
        )
        .await
        .expect_status(200)
        .json();
    assert_eq!(merged["primary_ID"], json!(a));
    let by_b = gov
        .act(&b.to_string(), "rename", "community", json!({"name": "B"}))
        .await;
    assert_eq!(by_b["actor"], json!(a.to_string()));
    assert_eq!(by_b["status"], "implemented");
    // A `linked_account` role holds for a member with an account on that platform.
    let c = node
        .post(
            &format!("{ID}/create_id"),
            &json!({"community_slug": "town"}),
        )
        .await
        .expect_status(201)
        .json()[0]
        .as_u64()
        .unwrap();
    node.post(
        &format!("{ID}/link_account"),
        &json!({"community_slug": "town", "external_id": c, "platform_type": "randomness",
                "platform_identifier": "cy-r"}),
    )
    .await
    .expect_status(200);
    gov.act(
        &a.to_string(),
        "add_members",
        "community",
        json!({"agents": [c.to_string(), "dan"]}),
    )
    .await;
    gov.act(
        &a.to_string(),
        "add_role",
        "community",
        json!({"name": "verified", "rule": {"linked_account": "randomness"}}),
    )
    .await;
    gov.act(
        &a.to_string(),
        "add_permission",
        "community",
        json!({"ability": "rename", "roles": ["verified"]}),
    )
    .await;
    let verified = gov
        .act(
            "randomness:cy-r",
            "rename",
            "community",
            json!({"name": "V"}),
        )
        .await;
    assert_eq!(verified["status"], "implemented", "{verified}");
    assert_eq!(verified["route"], "specific");
    assert_eq!(verified["actor"], json!(c.to_string()));
    let plain = gov
        .act("dan", "rename", "community", json!({"name": "D"}))
        .await;
    assert_eq!(plain["status"], "rejected", "{plain}");

    // Unlinked, the account is nobody in particular.
    node.post(
        &format!("{ID}/unlink_account"),
        &json!({"community_slug": "town", "platform_type": "randomness", "platform_identifier": "ana-r"}),
    )
    .await
    .expect_status(200);
    node.post(
        &format!("{ID}/unlink_account"),
        &json!({"community_slug": "town", "platform_type": "randomness", "platform_identifier": "ana-r"}),
    )
    .await
    .expect_error(404, "account_not_found");
    let stranger = gov
        .act(
            "randomness:ana-r",
            "rename",
            "community",
            json!({"name": "C"}),
        )
        .await;
    assert_eq!(stranger["actor"], "randomness:ana-r");
    assert_ne!(stranger["status"], "implemented");
}

/// `get_users` with each of its filters, alone and together (AND), as Metagov answers them: a
/// filtered answer lists the primary identities of the matching accounts, once each, an
/// unfiltered one every primary identity, accounts or not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_users_filters_each_field_and_answers_primary_identities() {
    let node = Node::start("gov-get-users", NodeConfig::dev()).await;
    node.community_with_randomness("town").await;
    let ids: Vec<u64> = node
        .post(
            &format!("{ID}/create_id"),
            &json!({"community_slug": "town", "count": 4}),
        )
        .await
        .expect_status(201)
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    let (a, b, c, d) = (ids[0], ids[1], ids[2], ids[3]);
    for (id, ident, extra) in [
        (
            a,
            "ana-r",
            json!({"link_type": "oauth", "link_quality": "confirmed (strong)",
                   "community_platform_id": "g1"}),
        ),
        (
            b,
            "ben-r",
            json!({"link_type": "manual admin", "link_quality": "unconfirmed"}),
        ),
        (c, "cy-r", json!({"community_platform_id": "g2"})),
    ] {
        let mut body = json!({"community_slug": "town", "external_id": id,
                              "platform_type": "randomness", "platform_identifier": ident});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        node.post(&format!("{ID}/link_account"), &body)
            .await
            .expect_status(200);
    }
    let users = |q: &'static str| {
        let node = &node;
        async move {
            let got = node
                .get(&format!("{ID}/get_users?community=town{q}"))
                .await
                .expect_status(200)
                .json();
            let mut ids: Vec<u64> = got
                .as_array()
                .unwrap_or_else(|| panic!("a list for {q}: {got}"))
                .iter()
                .map(|i| {
                    assert_eq!(i["source_ID"], i["primary_ID"], "primaries only: {i}");
                    i["source_ID"].as_u64().unwrap()
                })
                .collect();
            ids.sort_unstable();
            ids
        }
    };
    assert_eq!(users("").await, vec![a, b, c, d]);
    assert_eq!(users("&platform_type=randomness").await, vec![a, b, c]);
    assert_eq!(users("&platform_type=github").await, Vec::<u64>::new());
    assert_eq!(users("&community_platform_id=g1").await, vec![a]);
    assert_eq!(users("&community_platform_id=g2").await, vec![c]);
    assert_eq!(users("&link_type=oauth").await, vec![a]);
    assert_eq!(users("&link_type=manual%20admin").await, vec![b]);
    assert_eq!(users("&link_type=unknown").await, vec![c]);
    assert_eq!(users("&link_quality=unconfirmed").await, vec![b]);
    assert_eq!(users("&link_quality=confirmed%20(strong)").await, vec![a]);
    assert_eq!(users("&link_quality=unknown").await, vec![c]);
    assert_eq!(users("&platform_identifier=cy-r").await, vec![c]);
    // Filters AND together.
    assert_eq!(
        users("&platform_type=randomness&link_type=oauth&link_quality=confirmed%20(strong)").await,
        vec![a]
    );
    assert_eq!(
        users("&link_type=oauth&platform_identifier=ben-r").await,
        Vec::<u64>::new()
    );
    // The matched account's identity shows its accounts.
    let got = node
        .get(&format!(
            "{ID}/get_users?community=town&platform_identifier=ana-r"
        ))
        .await
        .json();
    assert_eq!(got[0]["linked_accounts"][0]["link_type"], "oauth");
    assert_eq!(got[0]["linked_accounts"][0]["community_platform_id"], "g1");
    // Merged into A, B's account answers with A's (primary) identity, once; unfiltered, B is
    // no longer a primary.
    node.post(
        &format!("{ID}/merge_ids"),
        &json!({"primary_instance_id": a, "secondary_instance_id": b}),
    )
    .await
    .expect_status(200);
    assert_eq!(users("&platform_identifier=ben-r").await, vec![a]);
    assert_eq!(users("&platform_type=randomness").await, vec![a, c]);
    assert_eq!(users("").await, vec![a, c, d]);
    let merged = node
        .get(&format!(
            "{ID}/get_users?community=town&platform_identifier=ben-r"
        ))
        .await
        .json();
    assert_eq!(
        merged[0]["linked_accounts"].as_array().unwrap().len(),
        2,
        "the person's accounts: {merged}"
    );
    // Another community's identities are not listed; a community is required.
    node.create_community("elsewhere").await;
    let none = node
        .get(&format!("{ID}/get_users?community=elsewhere"))
        .await
        .expect_status(200)
        .json();
    assert_eq!(none, json!([]));
    node.get(&format!("{ID}/get_users"))
        .await
        .expect_error(400, "invalid_query");

    // Reads resolve the acting account as acts do: an item only A may view is read through
    // A's account (and B's, merged into A), not through C's.
    let gov = Gov {
        node: &node,
        slug: "town".into(),
    };
    gov.found(&a.to_string(), json!({"members": [c.to_string()]}))
        .await;
    let doc = gov
        .create_item(
            "randomness:ana-r",
            "community",
            "document",
            json!({"name": "a's"}),
        )
        .await;
    let p = gov
        .act(
            &a.to_string(),
            "add_permission",
            &format!("item:{doc}"),
            json!({"ability": "view", "actors": [a.to_string()]}),
        )
        .await;
    assert_eq!(p["status"], "implemented", "{p}");
    for agent in ["randomness:ana-r", "randomness:ben-r"] {
        gov.get(Some(agent), &format!("/items/{doc}"))
            .await
            .expect_status(200);
    }
    gov.get(Some("randomness:cy-r"), &format!("/items/{doc}"))
        .await
        .expect_error(404, "item_not_found");
    gov.get(Some(&c.to_string()), &format!("/items/{doc}"))
        .await
        .expect_error(404, "item_not_found");
}
