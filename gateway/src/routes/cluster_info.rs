//! `GET /api/v1/cluster`: the nodes this node sees alive, the partitions each serves and
//! their lease epochs (fencing tokens). On a single node: one node owning every partition.

use agora_runtime::PARTITIONS;
use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use crate::AppState;

#[utoipa::path(get, path = "/api/v1/cluster", tag = "cluster",
    responses((status = 200, body = Object,
        description = "{\"mode\": \"single\"|\"cluster\", \"node_id\", \"redis_ok\", \"partitions\", \"nodes\": [{\"id\", \"advertise\", \"partitions\": [..], \"epochs\": {partition: epoch}}], \"unowned\": [..]}")))]
pub(crate) async fn get(State(s): State<AppState>) -> Json<Value> {
    let Some(view) = s.agora.runtime().cluster_view() else {
        return Json(json!({
            "mode": "single",
            "node_id": Value::Null,
            "partitions": PARTITIONS,
            "nodes": [{"id": Value::Null, "partitions": (0..PARTITIONS).collect::<Vec<_>>()}],
            "unowned": [],
        }));
    };
    let nodes: Vec<Value> = view
        .nodes
        .iter()
        .map(|(id, advertise)| {
            let owned: Vec<(u32, u64)> = view
                .owners
                .iter()
                .filter(|(_, (n, _))| n == id)
                .map(|(p, (_, e))| (*p, *e))
                .collect();
            json!({
                "id": id,
                "advertise": advertise,
                "partitions": owned.iter().map(|(p, _)| p).collect::<Vec<_>>(),
                "epochs": owned.iter().map(|(p, e)| (p.to_string(), json!(e))).collect::<serde_json::Map<_, _>>(),
            })
        })
        .collect();
    let unowned: Vec<u32> = (0..PARTITIONS)
        .filter(|p| !view.owners.contains_key(p))
        .collect();
    Json(json!({
        "mode": "cluster",
        "node_id": view.node_id,
        "redis_ok": view.redis_ok,
        "partitions": PARTITIONS,
        "nodes": nodes,
        "unowned": unowned,
    }))
}
