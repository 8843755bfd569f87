//! The governance engine through HTTP (contract sections 2–5 and 8): founding and templates,
//! members and roles with their invariants, actions single and batched through the pipeline
//! (a non-governor's proposal waits for a governor), dry runs with their explain trace,
//! permissions down to fields, items with versions, deactivation, destruction, collections and
//! comments, list filtering, the hash-chained log verified from the answers alone, and bad input
//! that changes nothing.

use reqwest::Method;
use serde_json::{json, Value};

use crate::harness::{Node, NodeConfig, Resp};

/// A community's governance routes, acting as one agent or another.
pub struct Gov<'a> {
    pub node: &'a Node,
    pub slug: String,
}

impl<'a> Gov<'a> {
    /// A community `slug` on `node` (created through Metagov's route), governance not founded.
    pub async fn community(node: &'a Node, slug: &str) -> Gov<'a> {
        node.create_community(slug).await;
        Gov {
            node,
            slug: slug.to_string(),
        }
    }

    pub fn path(&self, rest: &str) -> String {
        format!("/api/v1/communities/{}{rest}", self.slug)
    }

    pub async fn send(
        &self,
        method: Method,
        agent: Option<&str>,
        rest: &str,
        body: Option<&Value>,
    ) -> Resp {
        let mut b = self.node.request(method, &self.path(rest));
        if let Some(a) = agent {
            b = b.header("X-Agora-Actor", a);
        }
        if let Some(body) = body {
            b = b.json(body);
        }
        self.node.send(b).await
    }

    pub async fn found(&self, agent: &str, body: Value) -> Value {
        self.send(Method::POST, Some(agent), "/governance", Some(&body))
            .await
            .expect_status(201)
            .json()
    }

    pub async fn get(&self, agent: Option<&str>, rest: &str) -> Resp {
        self.send(Method::GET, agent, rest, None).await
    }

    pub async fn constitution(&self) -> Value {
        self.get(None, "/governance")
            .await
            .expect_status(200)
            .json()
    }

    /// `POST /actions` as `agent`; the raw answer.
    pub async fn post_action(&self, agent: &str, body: &Value) -> Resp {
        self.send(Method::POST, Some(agent), "/actions", Some(body))
            .await
    }

    /// One change as `agent`, expecting it recorded (201); the action.
    pub async fn act(&self, agent: &str, change: &str, target: &str, params: Value) -> Value {
        let body = json!({"change": change, "target": target, "params": params});
        self.post_action(agent, &body)
            .await
            .expect_status(201)
            .json()
    }

    /// An answer to a condition.
    pub async fn answer(&self, agent: &str, answer: &str, condition: &Value) -> Value {
        let cid = condition.as_str().expect("a condition id");
        self.act(agent, answer, &format!("condition:{cid}"), json!({}))
            .await
    }

    pub async fn dry_run(&self, agent: &str, body: &Value) -> Resp {
        self.send(
            Method::POST,
            Some(agent),
            "/actions?dry_run=true",
            Some(body),
        )
        .await
    }

    pub async fn action(&self, id: &Value) -> Value {
        let id = id.as_str().expect("an action id");
        self.get(None, &format!("/actions/{id}"))
            .await
            .expect_status(200)
            .json()
    }

    /// Every log entry, read page by page as the driver.
    pub async fn log(&self, agent: Option<&str>) -> Vec<Value> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let q = match &cursor {
                Some(c) => format!("/governance/log?limit=3&cursor={c}"),
                None => "/governance/log?limit=3".to_string(),
            };
            let page = self.get(agent, &q).await.expect_status(200).json();
            out.extend(page["entries"].as_array().expect("entries").iter().cloned());
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => break,
            }
        }
        out
    }

    /// `create_item` of a `typ` with `fields` in `container`, as `agent`, implemented at once;
    /// the new item's id.
    pub async fn create_item(
        &self,
        agent: &str,
        container: &str,
        typ: &str,
        fields: Value,
    ) -> String {
        let made = self
            .act(
                agent,
                "create_item",
                container,
                json!({"type": typ, "fields": fields}),
            )
            .await;
        Gov::created(&made)
    }

    /// The id of the item an implemented `create_item` or `comment` made.
    pub fn created(action: &Value) -> String {
        action["result"]["item"]
            .as_str()
            .unwrap_or_else(|| panic!("no item in {action}"))
            .to_string()
    }
}

/// The log's chain recomputes from its headers alone, every shown body matches its hash, and
/// the last hash is the constitution's `log_head`.
pub async fn verify_log(gov: &Gov<'_>) -> Vec<Value> {
    let entries = gov.log(None).await;
    let head = agora_governance::verify_chain(&entries, None)
        .unwrap_or_else(|e| panic!("the log does not verify: {e:?}"));
    assert_eq!(json!(head), gov.constitution().await["log_head"]);
    entries
}

async fn dev_node(name: &str) -> Node {
    Node::start(name, NodeConfig::dev()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn founding_gives_the_founder_everything_once_and_templates_shape_the_constitution() {
    let node = dev_node("gov-found").await;
    let gov = Gov::community(&node, "town").await;
    // Before founding there is nothing to read.
    gov.get(None, "/governance")
        .await
        .expect_error(404, "governance_not_found");
    // Founding acts: without an agent it is refused.
    gov.send(Method::POST, None, "/governance", Some(&json!({})))
        .await
        .expect_error(400, "missing_header");
    // A body that is not an object is refused, and founds nothing (schemathesis sent `null`,
    // which was once read as no fields).
    for body in [json!(null), json!([]), json!("x"), json!(1)] {
        gov.send(Method::POST, Some("ana"), "/governance", Some(&body))
            .await
            .expect_error(400, "invalid_body");
    }
    gov.get(None, "/governance")
        .await
        .expect_error(404, "governance_not_found");
    let c = gov.found("ana", json!({})).await;
    assert_eq!(
        c["owners"],
        json!({"actors": ["ana"], "roles": [], "conditions": []})
    );
    assert_eq!(
        c["governors"],
        json!({"actors": ["ana"], "roles": [], "conditions": []})
    );
    assert_eq!(c["members"], json!(["ana"]));
    assert_eq!(c["proposals"], json!(true));
    assert_eq!(c["log_head"], json!("0".repeat(64)));
    gov.send(Method::POST, Some("ana"), "/governance", Some(&json!({})))
        .await
        .expect_error(409, "governance_exists");
    // A community that does not exist has no governance to found.
    let ghost = Gov {
        node: &node,
        slug: "ghost".into(),
    };
    ghost
        .send(Method::POST, Some("ana"), "/governance", Some(&json!({})))
        .await
        .expect_error(404, "community_not_found");

    // Each template, founded on its own community.
    let vm = Gov::community(&node, "vm").await;
    let c = vm
        .found(
            "ana",
            json!({"template": "voting_members", "members": ["ben", "cy"]}),
        )
        .await;
    assert_eq!(c["owners"]["roles"], json!(["members"]));
    assert_eq!(c["owners"]["conditions"][0]["type"], json!("vote"));
    assert_eq!(c["governors"]["roles"], json!(["members"]));
    let board = Gov::community(&node, "board").await;
    let c = board
        .found(
            "ana",
            json!({"template": "members_and_board", "board": ["ben"], "members": ["ben", "cy"]}),
        )
        .await;
    assert_eq!(c["governors"]["roles"], json!(["board"]));
    assert_eq!(c["roles"]["board"]["actors"], json!(["ben"]));
    let invite = Gov::community(&node, "invite").await;
    let c = invite
        .found("ana", json!({"template": "invite_only"}))
        .await;
    assert_eq!(c["proposals"], json!(false));
    let open = Gov::community(&node, "open").await;
    open.found("ana", json!({"template": "anyone_can_join"}))
        .await;
    // Anyone may add themselves, and only themselves.
    let joined = open
        .act(
            "zoe",
            "add_members",
            "community",
            json!({"agents": ["zoe"]}),
        )
        .await;
    assert_eq!(joined["status"], "implemented", "{joined}");
    assert_eq!(joined["route"], "specific");
    let other = open
        .act("yan", "add_members", "community", json!({"agents": ["xi"]}))
        .await;
    assert_ne!(other["status"], "implemented", "{other}");
    // An unknown template is bad input and founds nothing.
    let bad = Gov::community(&node, "bad").await;
    bad.send(
        Method::POST,
        Some("ana"),
        "/governance",
        Some(&json!({"template": "monarchy"})),
    )
    .await
    .expect_client_error();
    bad.get(None, "/governance")
        .await
        .expect_error(404, "governance_not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_governors_change_waits_for_a_governor_and_the_pipeline_says_why() {
    let node = dev_node("gov-pipeline").await;
    let gov = Gov::community(&node, "town").await;
    gov.found("ana", json!({"members": ["ben", "cy"]})).await;

    // A governor acts unconditioned: implemented on the governing route.
    let added = gov
        .act(
            "ana",
            "add_members",
            "community",
            json!({"agents": ["dee"]}),
        )
        .await;
    assert_eq!(added["status"], "implemented", "{added}");
    assert_eq!(added["route"], "governing");
    assert_eq!(added["actor"], "ana");
    assert_eq!(added["change"], "add_members");
    assert_eq!(added["target"], "community");
    assert_eq!(added["params"], json!({"agents": ["dee"]}));
    assert!(added["created_at"].is_string());
    assert!(added["resolved_at"].is_string());

    // Ben is a member, not a governor: his rename is a proposal waiting for a governor.
    let rename = gov
        .act("ben", "rename", "community", json!({"name": "Bentown"}))
        .await;
    assert_eq!(rename["status"], "waiting", "{rename}");
    assert_eq!(rename["route"], "governing");
    assert_eq!(rename["resolved_at"], Value::Null);
    let cond = &rename["conditions"][0];
    assert_eq!(cond["type"], "approval");
    assert_eq!(cond["status"], "waiting");
    // Cy may not accept it: his answer is recorded, rejected, and the proposal still waits.
    let no = gov.answer("cy", "approve", &cond["id"]).await;
    assert_eq!(no["status"], "rejected");
    assert_eq!(no["reason_code"], "not_permitted");
    assert_eq!(no["route"], Value::Null, "answers have no route");
    assert_eq!(gov.action(&rename["id"]).await["status"], "waiting");
    // Governor Ana accepts it: implemented, once.
    let yes = gov.answer("ana", "approve", &cond["id"]).await;
    assert_eq!(yes["status"], "implemented", "{yes}");
    let done = gov.action(&rename["id"]).await;
    assert_eq!(done["status"], "implemented", "{done}");
    assert!(done["resolved_at"].is_string());
    assert_eq!(gov.constitution().await["name"], "Bentown");
    gov.send(
        Method::POST,
        Some("ana"),
        "/actions",
        Some(&json!({"change": "approve", "target": format!("condition:{}", cond["id"].as_str().unwrap()), "params": {}})),
    )
    .await
    .expect_error(409, "not_waiting");

    // Foundational changes are the owners' alone: Ben is rejected at once.
    let grab = gov
        .act(
            "ben",
            "change_owners",
            "owners",
            json!({"actors": ["ben"], "roles": []}),
        )
        .await;
    assert_eq!(grab["status"], "rejected");
    assert_eq!(grab["reason_code"], "foundational_only");
    assert_eq!(grab["route"], "foundational");

    // With proposals off, a non-governor's change is rejected instead of waiting.
    let off = gov
        .act(
            "ana",
            "set_proposals",
            "community",
            json!({"enabled": false}),
        )
        .await;
    assert_eq!(off["status"], "implemented");
    assert_eq!(off["route"], "foundational");
    let refused = gov
        .act("ben", "rename", "community", json!({"name": "x"}))
        .await;
    assert_eq!(refused["status"], "rejected");
    assert_eq!(refused["reason_code"], "not_permitted");

    // A batch is one action: implemented atomically, or not at all.
    let batch = json!({"batch": [
        {"change": "add_role", "target": "community", "params": {"name": "mods", "actors": ["cy"]}},
        {"change": "add_people_to_role", "target": "role:mods", "params": {"agents": ["ben"]}},
    ]});
    let b = gov
        .post_action("ana", &batch)
        .await
        .expect_status(201)
        .json();
    assert_eq!(b["status"], "implemented", "{b}");
    assert_eq!(b["batch"].as_array().unwrap().len(), 2);
    let roles = &gov.constitution().await["roles"];
    assert_eq!(roles["mods"]["actors"], json!(["ben", "cy"]));
    // A batch whose second change breaks (a role that exists already) records nothing.
    let before = gov.log(None).await.len();
    let broken = json!({"batch": [
        {"change": "add_members", "target": "community", "params": {"agents": ["eve"]}},
        {"change": "add_role", "target": "community", "params": {"name": "mods"}},
    ]});
    let e = gov
        .post_action("ana", &broken)
        .await
        .expect_error(400, "duplicate_role");
    assert_eq!(e["field"], "batch[1].params.name");
    assert_eq!(gov.log(None).await.len(), before, "nothing recorded");
    assert!(!gov.constitution().await["members"]
        .as_array()
        .unwrap()
        .contains(&json!("eve")));

    // Listing with filters, paged.
    let waiting = gov
        .get(None, "/actions?status=rejected&actor=ben")
        .await
        .expect_status(200)
        .json();
    let list = waiting["actions"].as_array().unwrap();
    assert!(list.len() >= 2, "{waiting}");
    assert!(list
        .iter()
        .all(|a| a["status"] == "rejected" && a["actor"] == "ben"));
    let by_target = gov
        .get(None, "/actions?target=owners")
        .await
        .expect_status(200)
        .json();
    assert!(by_target["actions"]
        .as_array()
        .unwrap()
        .iter()
        .all(|a| a["target"] == "owners"));
    let mut seen = Vec::new();
    let mut cursor = None::<String>;
    loop {
        let q = match &cursor {
            Some(c) => format!("/actions?limit=2&cursor={c}"),
            None => "/actions?limit=2".into(),
        };
        let page = gov.get(None, &q).await.expect_status(200).json();
        seen.extend(
            page["actions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a["id"].clone()),
        );
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    let all = gov.get(None, "/actions?limit=1000").await.json();
    assert_eq!(
        seen,
        all["actions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["id"].clone())
            .collect::<Vec<_>>()
    );
    verify_log(&gov).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_runs_explain_and_store_nothing() {
    let node = dev_node("gov-dry").await;
    let gov = Gov::community(&node, "town").await;
    gov.found("ana", json!({"members": ["ben"]})).await;
    let body = json!({"change": "rename", "target": "community", "params": {"name": "x"}});
    let d = gov.dry_run("ben", &body).await.expect_status(200).json();
    assert_eq!(d["status"], "waiting", "{d}");
    assert_eq!(d["route"], "governing");
    let explain = d["explain"].as_array().expect("an explain trace");
    assert!(!explain.is_empty());
    let steps: Vec<&str> = explain.iter().filter_map(|s| s["step"].as_str()).collect();
    assert!(steps.contains(&"foundational"), "{d}");
    let d = gov.dry_run("ana", &body).await.expect_status(200).json();
    assert_eq!(d["status"], "implemented");
    // Nothing was stored: no action, no log entry, the name unchanged.
    assert_eq!(gov.get(None, "/actions").await.json()["actions"], json!([]));
    assert!(gov.log(None).await.is_empty());
    assert_ne!(gov.constitution().await["name"], "x");
    // A permission decides on the specific route, with its level in the trace.
    gov.act(
        "ana",
        "add_permission",
        "community",
        json!({"ability": "rename", "actors": ["ben"]}),
    )
    .await;
    let d = gov.dry_run("ben", &body).await.expect_status(200).json();
    assert_eq!(d["status"], "implemented", "{d}");
    assert_eq!(d["route"], "specific");
    assert_eq!(d["level"], 1);
    // A dry run refuses bad input as the real thing does.
    gov.dry_run(
        "ben",
        &json!({"change": "crown", "target": "community", "params": {}}),
    )
    .await
    .expect_error(400, "unknown_change");
    gov.send(Method::POST, None, "/actions?dry_run=true", Some(&body))
        .await
        .expect_error(400, "missing_header");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_keep_their_invariants_and_bad_input_records_nothing() {
    let node = dev_node("gov-bad").await;
    let gov = Gov::community(&node, "town").await;
    gov.found("ana", json!({"members": ["ben"]})).await;
    gov.act(
        "ana",
        "add_role",
        "community",
        json!({"name": "mods", "actors": ["ben"]}),
    )
    .await;
    gov.act(
        "ana",
        "add_permission",
        "community",
        json!({"ability": "rename", "roles": ["mods"]}),
    )
    .await;
    let log_before = gov.log(None).await.len();
    let cases: Vec<(Value, u16, &str)> = vec![
        (
            json!({"change": "crown", "target": "community", "params": {}}),
            400,
            "unknown_change",
        ),
        (
            json!({"change": "rename", "target": "community", "params": {"name": 7}}),
            400,
            "invalid_params",
        ),
        (
            json!({"change": "rename", "target": "community", "params": {"name": "x", "extra": 1}}),
            400,
            "invalid_params",
        ),
        (
            json!({"change": "remove_role", "target": "role:nobody", "params": {}}),
            404,
            "unknown_target",
        ),
        (
            json!({"change": "edit_item", "target": "item:99", "params": {"fields": {"name": "x"}}}),
            404,
            "unknown_target",
        ),
        (
            json!({"change": "rename", "target": "castle", "params": {"name": "x"}}),
            400,
            "invalid_target",
        ),
        (
            json!({"change": "edit_item", "target": "item:007", "params": {"fields": {}}}),
            400,
            "invalid_id",
        ),
        (
            json!({"change": "change_owners", "target": "owners", "params": {"actors": [], "roles": []}}),
            400,
            "last_owner",
        ),
        (
            json!({"change": "remove_role", "target": "role:mods", "params": {}}),
            400,
            "role_in_use",
        ),
        (
            json!({"change": "add_people_to_role", "target": "role:mods", "params": {"agents": ["stranger"]}}),
            400,
            "not_a_member",
        ),
        (
            json!({"change": "add_role", "target": "community", "params": {"name": "mods"}}),
            400,
            "duplicate_role",
        ),
        (
            json!({"change": "add_members", "target": "community", "params": {"agents": ["x".repeat(201)]}}),
            400,
            "invalid_id",
        ),
        (
            json!({"change": "remove_role", "target": "role:members", "params": {}}),
            400,
            "builtin_role",
        ),
        (json!([1, 2]), 400, "invalid_body"),
    ];
    for (body, status, code) in &cases {
        let r = gov.post_action("ana", body).await;
        r.expect_error(*status, code);
    }
    // Bodies that are not JSON, or oversized ids in the path, are 4xx too.
    let raw = node
        .send(
            node.request(Method::POST, &gov.path("/actions"))
                .header("X-Agora-Actor", "ana")
                .header("Content-Type", "application/json")
                .body("{not json"),
        )
        .await;
    raw.expect_error(400, "invalid_json");
    gov.get(None, &format!("/actions/{}", "9".repeat(40)))
        .await
        .expect_error(400, "invalid_id");
    gov.get(None, "/items/abc")
        .await
        .expect_error(400, "invalid_id");
    gov.get(None, "/actions/12345")
        .await
        .expect_error(404, "action_not_found");
    gov.get(None, "/items?limit=0")
        .await
        .expect_error(400, "invalid_query");
    gov.get(None, "/items?type=castle")
        .await
        .expect_error(400, "invalid_query");
    // Acting without an agent.
    gov.send(
        Method::POST,
        None,
        "/actions",
        Some(&json!({"change": "rename", "target": "community", "params": {"name": "x"}})),
    )
    .await
    .expect_error(400, "missing_header");
    // Nothing was recorded by any of it.
    assert_eq!(gov.log(None).await.len(), log_before);
    assert_eq!(
        gov.get(None, "/actions").await.json()["actions"]
            .as_array()
            .unwrap()
            .len(),
        log_before
    );
    let c = gov.constitution().await;
    assert_eq!(c["owners"]["actors"], json!(["ana"]));
    assert_eq!(c["roles"]["mods"]["actors"], json!(["ben"]));
    // Once the permission is gone, the role can go.
    let perm = gov.get(None, "/actions?limit=1000").await.json()["actions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["change"] == "add_permission")
        .map(|a| a["result"]["permission"].as_str().unwrap().to_string())
        .unwrap();
    gov.act(
        "ana",
        "remove_permission",
        &format!("permission:{perm}"),
        json!({}),
    )
    .await;
    let removed = gov.act("ana", "remove_role", "role:mods", json!({})).await;
    assert_eq!(removed["status"], "implemented", "{removed}");
    verify_log(&gov).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn items_version_deactivate_destroy_and_read_by_permission() {
    let node = dev_node("gov-items").await;
    let gov = Gov::community(&node, "town").await;
    gov.found("ana", json!({"members": ["ben"]})).await;
    let doc = gov
        .act(
            "ana",
            "create_item",
            "community",
            json!({"type": "document", "fields": {"name": "charter", "description": "d1", "body": "v1"}}),
        )
        .await;
    assert_eq!(doc["status"], "implemented", "{doc}");
    let id = Gov::created(&doc);
    let item = gov
        .get(Some("ben"), &format!("/items/{id}"))
        .await
        .expect_status(200)
        .json();
    assert_eq!(item["type"], "document");
    assert_eq!(item["version"], 1);
    assert_eq!(item["fields"]["body"], "v1");
    assert_eq!(item["creator"], "ana");
    assert_eq!(item["active"], true);
    assert_eq!(item["destroyed"], false);
    assert!(item["created_at"].is_string());
    assert!(item.get("collections").is_some());

    let edit = gov
        .act(
            "ana",
            "edit_item",
            &format!("item:{id}"),
            json!({"fields": {"body": "v2"}, "summary": "second"}),
        )
        .await;
    assert_eq!(edit["status"], "implemented", "{edit}");
    let now = gov.get(None, &format!("/items/{id}")).await.json();
    assert_eq!(
        (now["version"].clone(), now["fields"]["body"].clone()),
        (json!(2), json!("v2"))
    );
    assert_eq!(
        now["fields"]["name"], "charter",
        "fields not edited are kept"
    );
    let v1 = gov
        .get(None, &format!("/items/{id}?version=1"))
        .await
        .json();
    assert_eq!(v1["fields"]["body"], "v1");
    gov.get(None, &format!("/items/{id}?version=3"))
        .await
        .expect_error(404, "version_not_found");
    let versions = gov
        .get(None, &format!("/items/{id}/versions"))
        .await
        .expect_status(200)
        .json();
    assert_eq!(versions["versions"].as_array().unwrap().len(), 2);
    assert_eq!(versions["versions"][1]["summary"], "second");

    // Field-level reads: only Ana may view the body.
    gov.act(
        "ana",
        "add_permission",
        &format!("item:{id}"),
        json!({"ability": "view body", "actors": ["ana"]}),
    )
    .await;
    let seen_by_ben = gov.get(Some("ben"), &format!("/items/{id}")).await.json();
    assert!(seen_by_ben["fields"].get("body").is_none(), "{seen_by_ben}");
    assert_eq!(seen_by_ben["fields"]["name"], "charter");
    let seen_by_ana = gov.get(Some("ana"), &format!("/items/{id}")).await.json();
    assert_eq!(seen_by_ana["fields"]["body"], "v2");
    // A non-member may not view items at all (members may, by default): 404, and left out.
    gov.get(Some("stranger"), &format!("/items/{id}"))
        .await
        .expect_error(404, "item_not_found");
    let listed = gov.get(Some("stranger"), "/items").await.json();
    assert_eq!(listed["items"], json!([]));

    // Field-level writes: Ben may edit the description and nothing else.
    gov.act(
        "ana",
        "add_permission",
        &format!("item:{id}"),
        json!({"ability": "edit description", "actors": ["ben"]}),
    )
    .await;
    let ok = gov
        .act(
            "ben",
            "edit_item",
            &format!("item:{id}"),
            json!({"fields": {"description": "d2"}}),
        )
        .await;
    assert_eq!(ok["status"], "implemented", "{ok}");
    assert_eq!(ok["route"], "specific");
    let name = gov
        .act(
            "ben",
            "edit_item",
            &format!("item:{id}"),
            json!({"fields": {"name": "mine"}}),
        )
        .await;
    assert_ne!(name["status"], "implemented", "{name}");

    // Collections (cycles allowed) and list filtering.
    let coll = gov
        .create_item("ana", "community", "collection", json!({"name": "shelf"}))
        .await;
    let other = gov
        .create_item("ana", "community", "collection", json!({"name": "box"}))
        .await;
    for (c, member) in [(&coll, &id), (&coll, &other), (&other, &coll)] {
        let a = gov
            .act(
                "ana",
                "add_to_collection",
                &format!("item:{c}"),
                json!({"item": member}),
            )
            .await;
        assert_eq!(a["status"], "implemented", "{a}");
    }
    let inside = gov.get(None, &format!("/items?in={coll}")).await.json();
    let ids: Vec<&str> = inside["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&id.as_str()) && ids.contains(&other.as_str()),
        "{inside}"
    );
    let docs = gov.get(None, "/items?type=document").await.json();
    assert_eq!(docs["items"].as_array().unwrap().len(), 1);
    // A collection-level view deny hides its members from Ben, in reads and in lists.
    gov.act(
        "ana",
        "add_permission",
        &format!("item:{other}"),
        json!({"ability": "view", "allow": false, "actors": ["ben"], "applies_to": "members"}),
    )
    .await;
    // The cycle: box is in shelf is in box; the deny on box reaches shelf only through
    // permission_enabled memberships, which these are not.
    let ben_list = gov.get(Some("ben"), "/items?limit=1000").await.json();
    for i in ben_list["items"].as_array().unwrap() {
        let iid = i["id"].as_str().unwrap();
        gov.get(Some("ben"), &format!("/items/{iid}"))
            .await
            .expect_status(200);
    }

    // Comments are items about an item's current version, with a relation notice.
    let comment = gov
        .act(
            "ana",
            "comment",
            &format!("item:{id}"),
            json!({"body": "nice"}),
        )
        .await;
    assert_eq!(comment["status"], "implemented", "{comment}");
    let cid = Gov::created(&comment);
    let c = gov.get(None, &format!("/items/{cid}")).await.json();
    assert_eq!(c["type"], "comment");
    let notices = gov
        .get(None, &format!("/items/{id}/notices"))
        .await
        .expect_status(200)
        .json();
    let kinds: Vec<&str> = notices["notices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["kind"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"create") && kinds.contains(&"edit") && kinds.contains(&"relation"),
        "{notices}"
    );
    let relation = notices["notices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["kind"] == "relation")
        .unwrap();
    for k in [
        "id",
        "kind",
        "item",
        "version",
        "agent",
        "at",
        "summary",
        "from_item",
        "from_version",
        "field",
    ] {
        assert!(relation.get(k).is_some(), "{k} missing from {relation}");
    }

    // Deactivate, then destroy: every field nulled, versions gone, later changes refused,
    // the params of actions on it redacted.
    gov.post_action(
        "ana",
        &json!({"change": "destroy_item", "target": format!("item:{id}"), "params": {}}),
    )
    .await
    .expect_error(409, "still_active");
    let off = gov
        .act("ana", "deactivate_item", &format!("item:{id}"), json!({}))
        .await;
    assert_eq!(off["status"], "implemented");
    let inactive = gov.get(None, "/items?type=document").await.json();
    assert_eq!(
        inactive["items"],
        json!([]),
        "inactive items only on request"
    );
    let with = gov
        .get(None, "/items?type=document&include_inactive=true")
        .await
        .json();
    assert_eq!(with["items"].as_array().unwrap().len(), 1);
    gov.act("ana", "destroy_item", &format!("item:{id}"), json!({}))
        .await;
    let gone = gov.get(None, &format!("/items/{id}")).await.json();
    assert_eq!(gone["destroyed"], true);
    assert_eq!(gone["fields"], Value::Null);
    gov.get(Some("ben"), &format!("/items/{id}"))
        .await
        .expect_error(404, "item_not_found");
    let versions = gov.get(None, &format!("/items/{id}/versions")).await.json();
    assert_eq!(versions["versions"], json!([]));
    gov.post_action(
        "ana",
        &json!({"change": "reactivate_item", "target": format!("item:{id}"), "params": {}}),
    )
    .await
    .expect_error(409, "destroyed");
    let created = gov.action(&doc["id"]).await;
    assert_eq!(created["params"], Value::Null, "redacted: {created}");
    let entries = verify_log(&gov).await;
    let about_it = entries.iter().find(|e| e["action"] == doc["id"]).unwrap();
    assert_eq!(about_it["body"], Value::Null, "redacted in the log too");
}

mod fuzz {
    //! `POST /actions` with generated bodies: raw JSON and near-valid changes (real change
    //! names and targets, random parameters), single and batched, by an owner and by a
    //! member. Never a 5xx; a refusal is a JSON 4xx that records nothing; whatever is
    //! recorded leaves a log that verifies.

    use proptest::prelude::*;
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    use reqwest::Method;
    use serde_json::{json, Map, Value};

    use super::{dev_node, verify_log, Gov};

    fn leaf() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            "[a-z_:0-9 ]{0,12}".prop_map(Value::String),
            prop::sample::select(vec![
                "item:1",
                "item:2",
                "item:0",
                "item:99999999999999999999",
                "community",
                "owners",
                "governors",
                "role:mods",
                "role:members",
                "permission:1",
                "condition:1",
                "action:1",
                "ana",
                "ben",
                "view",
                "do_anything",
                "edit body",
            ])
            .prop_map(|s| json!(s)),
        ]
    }

    fn value() -> impl Strategy<Value = Value> {
        leaf().prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::vec(
                    (
                        prop::sample::select(vec![
                            "agents",
                            "name",
                            "type",
                            "fields",
                            "ability",
                            "actors",
                            "roles",
                            "condition",
                            "rule",
                            "allow",
                            "anyone",
                            "applies_to",
                            "item",
                            "index",
                            "response",
                            "enabled",
                            "body",
                            "zzz",
                        ])
                        .prop_map(str::to_string),
                        inner,
                    ),
                    0..4,
                )
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
            ]
        })
    }

    fn body() -> impl Strategy<Value = Value> {
        let change = prop_oneof![
            prop::sample::select(agora_governance::ChangeKind::ALL.to_vec())
                .prop_map(|k| k.name().to_string()),
            "[a-z_]{1,12}",
        ];
        // Changes that usually validate, so recorded actions are exercised too.
        let valid = prop_oneof![
            "[a-z]{1,8}".prop_map(|n| json!({"change": "rename", "target": "community",
                                            "params": {"name": n}})),
            prop::sample::select(vec!["dee", "eve", "fay", "ben"]).prop_map(|a| json!({
                "change": "add_members", "target": "community", "params": {"agents": [a]}})),
            "[a-z]{1,8}".prop_map(|n| json!({"change": "create_item", "target": "item:1",
                "params": {"type": "document", "fields": {"name": n}}})),
            "[a-z]{1,6}".prop_map(|n| json!({"change": "add_role", "target": "community",
                                            "params": {"name": n}})),
        ];
        prop_oneof![
            valid,
            value(),
            (change, leaf(), value(), any::<bool>()).prop_map(|(c, t, p, batch)| {
                let one = json!({"change": c, "target": t, "params": p});
                if batch {
                    json!({"batch": [one.clone(), one]})
                } else {
                    one
                }
            }),
        ]
    }

    /// What a refusal must leave as it was: the constitution (with the log head) and every
    /// item.
    async fn state(gov: &Gov<'_>) -> (Value, Value) {
        (
            gov.constitution().await,
            gov.get(None, "/items?include_inactive=true&limit=1000")
                .await
                .json(),
        )
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn generated_action_bodies_never_5xx_and_refusals_record_nothing() {
        let node = dev_node("gov-fuzz").await;
        let gov = Gov::community(&node, "town").await;
        gov.found("ana", json!({"members": ["ben", "cy"]})).await;
        gov.act(
            "ana",
            "add_role",
            "community",
            json!({"name": "mods", "actors": ["ben"]}),
        )
        .await;
        gov.act(
            "ana",
            "create_item",
            "community",
            json!({"type": "collection", "fields": {"name": "c"}}),
        )
        .await;
        let mut runner = TestRunner::deterministic();
        let strategy = body();
        let (mut accepted, mut refused) = (0, 0);
        for case in 0..150 {
            let body = strategy
                .new_tree(&mut runner)
                .expect("a generated body")
                .current();
            let agent = if case % 3 == 0 { "ben" } else { "ana" };
            let before = state(&gov).await;
            let dry = gov.dry_run(agent, &body).await;
            assert!(dry.status < 500, "dry run of {body}: {}", dry.describe());
            assert!(state(&gov).await == before, "a dry run stored {body}");
            let r = gov
                .send(Method::POST, Some(agent), "/actions", Some(&body))
                .await;
            assert!(r.status < 500, "{body}: {}", r.describe());
            if r.status >= 400 {
                r.error_object();
                assert!(
                    state(&gov).await == before,
                    "a refused body changed something: {body}"
                );
                refused += 1;
            } else {
                assert_eq!(r.status, 201, "{}", r.describe());
                accepted += 1;
            }
        }
        // Both paths were exercised: bodies that parse and get recorded, and refusals.
        assert!(
            accepted > 0 && refused > 0,
            "{accepted} accepted, {refused} refused"
        );
        verify_log(&gov).await;
    }
}

/// The listing's scan cap (section 5): a page stops after 10,000 candidates even when it holds
/// fewer than `limit` items (here none), and its `next_cursor` continues the scan to the items
/// further on, in `GET /items` and in `GET /items?in=<collection>`, with filters counted as
/// scanned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_list_page_stops_after_ten_thousand_candidates_and_its_cursor_goes_on() {
    let node = dev_node("gov-scan-cap").await;
    let gov = Gov::community(&node, "town").await;
    gov.found("ana", json!({})).await;
    let big = gov
        .create_item("ana", "community", "collection", json!({"name": "big"}))
        .await;
    assert_eq!(big, "1");
    // 10,050 documents in `big` (items 2..=10051), a hundred per batched action, then one
    // collection (item 10052).
    let per = agora_governance::MAX_BATCH;
    let total = 10_050;
    for start in (0..total).step_by(per) {
        let batch: Vec<Value> = (start..(start + per).min(total))
            .map(|i| {
                json!({"change": "create_item", "target": format!("item:{big}"),
                       "params": {"type": "document", "fields": {"name": format!("d{i}")}}})
            })
            .collect();
        let a = gov
            .post_action("ana", &json!({ "batch": batch }))
            .await
            .expect_status(201)
            .json();
        assert_eq!(a["status"], "implemented", "{a}");
    }
    let last = gov
        .create_item("ana", "community", "collection", json!({"name": "last"}))
        .await;
    assert_eq!(last, "10052");
    // One document far in, visible to everyone; a stranger sees nothing else.
    let far = "10040";
    let p = gov
        .act(
            "ana",
            "add_permission",
            &format!("item:{far}"),
            json!({"ability": "view", "anyone": true}),
        )
        .await;
    assert_eq!(p["status"], "implemented", "{p}");
    let page = |agent: Option<&'static str>, q: String| {
        let gov = &gov;
        async move { gov.get(agent, &q).await.expect_status(200).json() }
    };
    let ids = |p: &Value| -> Vec<String> {
        p["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].as_str().unwrap().to_string())
            .collect()
    };
    for (base, cap_at) in [
        ("/items?limit=50", "10000"),
        (&*format!("/items?in={big}&limit=50"), "10001"),
    ] {
        let first = page(Some("stranger"), base.to_string()).await;
        assert_eq!(ids(&first), Vec::<String>::new(), "{base}");
        assert_eq!(
            first["next_cursor"], cap_at,
            "{base}: stopped after 10,000 candidates"
        );
        let second = page(Some("stranger"), format!("{base}&cursor={cap_at}")).await;
        assert_eq!(ids(&second), vec![far.to_string()], "{base}");
        assert_eq!(
            second["next_cursor"],
            Value::Null,
            "{base}: the scan is done"
        );
    }
    // A filter does not lift the cap: the only collection after `big` lies past it.
    let first = page(None, "/items?type=collection&limit=50".into()).await;
    assert_eq!(ids(&first), vec![big.clone()]);
    assert_eq!(first["next_cursor"], "10000");
    let second = page(None, "/items?type=collection&limit=50&cursor=10000".into()).await;
    assert_eq!(ids(&second), vec![last]);
    assert_eq!(second["next_cursor"], Value::Null);
    // A page that fills before the cap ends at its last item, as always.
    let full = page(Some("ana"), "/items?limit=50".into()).await;
    assert_eq!(ids(&full).len(), 50);
    assert_eq!(full["next_cursor"], "50");
}
