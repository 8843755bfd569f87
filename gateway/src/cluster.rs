//! Routing in cluster mode: a request about one partition (a community, its processes and
//! plugin instances) runs on the node serving that partition. Any node accepts any request;
//! one that does not serve the partition forwards it over Redis pub/sub and relays the
//! answer, so the driver sees no difference. When ownership moves while a request is in
//! flight, the request is retried on the new owner rather than failed.
//!
//! Which partition a request is about is its route's declaration in the route table
//! ([`Partition`]); [`route`] is the layer every route gets with its own declaration.

use std::sync::Arc;
use std::time::Duration;

use agora_plugins::ErrorCode;
use agora_runtime::{
    msgpack_bytes, partition_of, partition_of_id, AskError, Runtime, STALE_READS_OK,
};
use axum::body::{Body, Bytes};
use axum::extract::{RawPathParams, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::RequestExt;
use axum::Router;
use serde::{Deserialize, Serialize};
use tower::ServiceExt;

use crate::extract::COMMUNITY_HEADER;
use crate::routes::Partition;
use crate::{ApiError, AppState, MAX_BODY};

/// Marks a request that already travelled once: it runs where it lands or is refused, so a
/// request never bounces between nodes that disagree about an owner.
const FORWARDED: &str = "x-agora-forwarded";
/// How long a forwarded request may take, end to end.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(15);
/// Tries across owner changes before the caller hears 503.
const ATTEMPTS: u32 = 6;

/// Set on a response whose partition this node turned out not to serve.
#[derive(Clone, Copy)]
pub(crate) struct NotOwner;

#[derive(Serialize, Deserialize)]
struct Forwarded {
    method: String,
    uri: String,
    headers: Vec<(String, String)>,
    #[serde(with = "msgpack_bytes")]
    body: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    #[serde(with = "msgpack_bytes")]
    body: Vec<u8>,
}

/// A community created without a slug gets its UUID here, so it can be routed by it.
fn with_slug(body: Bytes) -> (Bytes, Option<String>) {
    let Ok(serde_json::Value::Object(mut obj)) = serde_json::from_slice(&body) else {
        return (body, None);
    };
    match obj.get("slug") {
        Some(serde_json::Value::String(s)) => {
            let s = s.clone();
            (body, Some(s))
        }
        None | Some(serde_json::Value::Null) => {
            let slug = agora_actors::uuid_v4();
            obj.insert("slug".into(), serde_json::Value::String(slug.clone()));
            let body = serde_json::to_vec(&obj).map(Bytes::from).unwrap_or(body);
            (body, Some(slug))
        }
        Some(_) => (body, None),
    }
}

/// Where an identity route's request runs: its community's partition, named in the query
/// (`community`) or the body (`community_slug`), or else that of the identity id it names
/// (`external_id`, `primary_instance_id`: ids embed their community's partition). A request
/// naming none runs where it lands, and the handler refuses it.
fn identity_partition(uri: &axum::http::Uri, body: &[u8]) -> Option<u32> {
    let query =
        axum::extract::Query::<std::collections::HashMap<String, String>>::try_from_uri(uri)
            .map(|q| q.0)
            .unwrap_or_default();
    if let Some(c) = query.get("community") {
        return Some(partition_of(c));
    }
    if let Some(id) = query.get("external_id").and_then(|v| v.parse::<u64>().ok()) {
        return Some(partition_of_id(id));
    }
    let Ok(serde_json::Value::Object(obj)) = serde_json::from_slice::<serde_json::Value>(body)
    else {
        return None;
    };
    if let Some(serde_json::Value::String(c)) = obj.get("community_slug") {
        return Some(partition_of(c));
    }
    ["external_id", "primary_instance_id"].iter().find_map(|f| {
        let id = match obj.get(*f)? {
            serde_json::Value::Number(n) => n.as_u64()?,
            serde_json::Value::String(s) => s.parse::<u64>().ok()?,
            _ => return None,
        };
        Some(partition_of_id(id))
    })
}

/// The partition of a request whose route declares `partition` (`None`: it runs here).
/// What a declaration cannot read (no header, an id that is not a number) runs here too, and
/// the handler refuses it.
async fn partition_of_request(partition: Partition, req: &mut Request) -> Option<u32> {
    match partition {
        Partition::Node | Partition::NewCommunity | Partition::EveryNode | Partition::Identity => {
            None
        }
        Partition::PathKey(name) => path_param(req, name).await.map(|k| partition_of(&k)),
        Partition::Fixed(key) => Some(partition_of(key)),
        Partition::PathId(name) => path_param(req, name)
            .await
            .and_then(|id| id.parse::<u64>().ok())
            .map(partition_of_id),
        Partition::CommunityHeader => req
            .headers()
            .get(COMMUNITY_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(partition_of),
    }
}

/// The path parameter `name` of the route the request matched.
async fn path_param(req: &mut Request, name: &str) -> Option<String> {
    let params = req.extract_parts::<RawPathParams>().await.ok()?;
    params
        .iter()
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// The layer of every route: runs the request where the partition its route declares is
/// served.
pub(crate) async fn route(
    State((s, partition)): State<(AppState, Partition)>,
    mut req: Request,
    next: Next,
) -> Response {
    let rt = s.agora.runtime().clone();
    if !rt.is_cluster() || partition == Partition::Node {
        return next.run(req).await;
    }
    let forwarded = req.headers().contains_key(FORWARDED);
    let mut at = partition_of_request(partition, &mut req).await;
    let (parts, body) = req.into_parts();
    let body = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(e) if crate::serve::is_body_timeout(&e) => {
            return crate::extract::body_timeout().into_response()
        }
        Err(_) => {
            return ApiError::new(
                ErrorCode::PayloadTooLarge,
                format!("request bodies are limited to {MAX_BODY} bytes"),
            )
            .into_response()
        }
    };
    let body = match partition {
        Partition::EveryNode if !forwarded => return fan_out(&rt, parts, body, next).await,
        Partition::NewCommunity => {
            let (body, slug) = with_slug(body);
            at = slug.as_deref().map(partition_of);
            body
        }
        Partition::Identity => {
            at = identity_partition(&parts.uri, &body);
            body
        }
        _ => body,
    };
    let Some(partition) = at else {
        return next.run(Request::from_parts(parts, Body::from(body))).await;
    };
    let mut last = None;
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            // On the runtime's clock, like every other wait of the node (tests may drive it).
            rt.clock()
                .sleep(Duration::from_millis(100 * u64::from(attempt)))
                .await;
        }
        match rt.route(partition) {
            Ok(None) => {
                let resp = next
                    .clone()
                    .run(Request::from_parts(parts.clone(), Body::from(body.clone())))
                    .await;
                if resp.extensions().get::<NotOwner>().is_none() || forwarded {
                    return resp;
                }
                last = Some(resp);
            }
            Ok(Some(_)) if forwarded => break,
            // Without Redis nothing can be forwarded: say so now rather than after retries.
            Ok(Some(_)) if !rt.redis_ok() => break,
            Ok(Some(node)) => {
                match forward(&rt, &node, &parts.method, &parts.uri, &parts.headers, &body).await {
                    Ok(resp) if resp.extensions().get::<NotOwner>().is_none() => return resp,
                    Ok(resp) => last = Some(resp),
                    Err(AskError::NotOwner(_)) => {
                        tracing::debug!(node = %node, partition, "nobody took the forwarded request; retrying");
                    }
                    // The owner may have run it before going silent: only a read is safe to
                    // send again. A write's caller hears that its outcome is unknown.
                    Err(e) if parts.method == Method::GET => {
                        tracing::debug!(node = %node, partition, error = %e, "forwarding failed; retrying");
                    }
                    Err(e) => {
                        return ApiError::new(
                            ErrorCode::OutcomeUnknown,
                            format!("the node serving this request did not answer ({e}); it may or may not have been applied"),
                        )
                        .into_response();
                    }
                }
            }
            Err(_) if forwarded => break,
            Err(_) if parts.method == Method::GET && rt.stale_readable(partition) => {
                // Redis is unreachable: answer reads from this node's last copy, marked stale.
                let req = Request::from_parts(parts.clone(), Body::from(body.clone()));
                let mut resp = STALE_READS_OK.scope(true, next.clone().run(req)).await;
                resp.headers_mut()
                    .insert("x-agora-stale", HeaderValue::from_static("true"));
                return resp;
            }
            Err(_) if !rt.redis_ok() => break,
            Err(_) => {}
        }
    }
    if !rt.redis_ok() {
        return ApiError::new(
            ErrorCode::ClusterUnavailable,
            "the cluster's Redis is unreachable; writes resume when it returns",
        )
        .into_response();
    }
    last.unwrap_or_else(|| {
        ApiError::new(
            ErrorCode::NotOwner,
            format!("partition {partition} is served by another node"),
        )
        .into_response()
    })
}

/// Runs a platform-wide webhook on every live node (each delivers it to the communities it
/// serves) and merges the answers: delivered somewhere is 200 with the total; otherwise the
/// most telling refusal (a bad signature before "no community follows this").
async fn fan_out(
    rt: &Runtime,
    parts: axum::http::request::Parts,
    body: Bytes,
    next: Next,
) -> Response {
    let me = rt.cluster_view().map(|v| v.node_id).unwrap_or_default();
    let others: Vec<String> = rt
        .cluster_view()
        .map(|v| v.nodes.into_keys().filter(|n| *n != me).collect())
        .unwrap_or_default();
    let local = next
        .run(Request::from_parts(parts.clone(), Body::from(body.clone())))
        .await;
    let mut answers = vec![into_answer(local).await];
    let remote = others
        .iter()
        .map(|node| forward(rt, node, &parts.method, &parts.uri, &parts.headers, &body));
    for r in futures_util::future::join_all(remote).await {
        match r {
            Ok(resp) => answers.push(into_answer(resp).await),
            Err(e) => tracing::warn!(error = %e, "a node did not take a platform webhook"),
        }
    }
    let delivered: u64 = answers
        .iter()
        .filter(|a| a.status == 200)
        .filter_map(|a| serde_json::from_slice::<serde_json::Value>(&a.body).ok())
        .filter_map(|v| v["delivered"].as_u64())
        .sum();
    if answers.iter().any(|a| a.status == 200) {
        return axum::Json(serde_json::json!({ "delivered": delivered })).into_response();
    }
    let pick = answers
        .iter()
        .find(|a| a.status == 401)
        .or_else(|| answers.iter().find(|a| a.status != 404))
        .or_else(|| answers.first());
    match pick {
        Some(a) => {
            let mut resp = Response::new(Body::from(a.body.clone()));
            *resp.status_mut() =
                StatusCode::from_u16(a.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            resp.headers_mut().insert(
                axum::http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            resp
        }
        None => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

async fn into_answer(resp: Response) -> Answer {
    let status = resp.status().as_u16();
    let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .map(|b| b.to_vec())
        .unwrap_or_default();
    Answer {
        status,
        headers: vec![],
        body,
    }
}

async fn forward(
    rt: &Runtime,
    node: &str,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Response, AskError> {
    let req = Forwarded {
        method: method.to_string(),
        uri: uri.to_string(),
        headers: headers
            .iter()
            .filter(|(k, _)| *k != axum::http::header::HOST)
            .filter_map(|(k, v)| Some((k.to_string(), v.to_str().ok()?.to_string())))
            .collect(),
        body: body.to_vec(),
    };
    let bytes = rmp_serde::to_vec_named(&req).map_err(|e| AskError::Internal(e.to_string()))?;
    let reply = rt.forward(node, bytes, FORWARD_TIMEOUT).await?;
    let answer: Answer =
        rmp_serde::from_slice(&reply).map_err(|e| AskError::Internal(e.to_string()))?;
    let mut resp = Response::new(Body::from(answer.body));
    *resp.status_mut() =
        StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    for (k, v) in answer.headers {
        if k == "x-agora-not-owner" {
            resp.extensions_mut().insert(NotOwner);
            continue;
        }
        if let (Ok(k), Ok(v)) = (HeaderName::try_from(k), HeaderValue::try_from(v)) {
            resp.headers_mut().append(k, v);
        }
    }
    Ok(resp)
}

/// What runs requests other nodes forward here: the same router, marked as forwarded.
pub(crate) fn install_handler(s: &AppState, router: Router) {
    let router = Arc::new(router);
    s.agora
        .runtime()
        .serve_forwarded(Arc::new(move |bytes: Vec<u8>| {
            let router = router.clone();
            Box::pin(async move {
                let answer = match run_forwarded(&router, bytes).await {
                    Ok(a) => a,
                    Err(e) => Answer {
                        status: 500,
                        headers: vec![],
                        body: serde_json::json!({"error": {
                            "code": ErrorCode::Internal,
                            "message": e,
                        }})
                        .to_string()
                        .into_bytes(),
                    },
                };
                rmp_serde::to_vec_named(&answer).unwrap_or_default()
            })
        }));
}

async fn run_forwarded(router: &Router, bytes: Vec<u8>) -> Result<Answer, String> {
    let req: Forwarded = rmp_serde::from_slice(&bytes).map_err(|e| e.to_string())?;
    let mut builder = Request::builder()
        .method(req.method.as_str())
        .uri(req.uri.as_str());
    for (k, v) in &req.headers {
        builder = builder.header(k.as_str(), v.as_str());
    }
    builder = builder.header(FORWARDED, "1");
    let request = builder
        .body(Body::from(req.body))
        .map_err(|e| e.to_string())?;
    let resp = router
        .clone()
        .oneshot(request)
        .await
        .map_err(|e| e.to_string())?;
    let not_owner = resp.extensions().get::<NotOwner>().is_some();
    let status = resp.status().as_u16();
    let mut headers: Vec<(String, String)> = resp
        .headers()
        .iter()
        .filter_map(|(k, v)| Some((k.to_string(), v.to_str().ok()?.to_string())))
        .collect();
    if not_owner {
        headers.push(("x-agora-not-owner".into(), "1".into()));
    }
    let body = axum::body::to_bytes(resp.into_body(), 16 << 20)
        .await
        .map_err(|e| e.to_string())?;
    Ok(Answer {
        status,
        headers,
        body: body.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slugless_community_gets_its_slug_before_routing() {
        let (body, slug) = with_slug(Bytes::from("{}"));
        let slug = slug.expect("a generated slug");
        let v: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
        assert_eq!(v["slug"], slug.as_str());
        let (_, given) = with_slug(Bytes::from(r#"{"slug":"x"}"#));
        assert_eq!(given.as_deref(), Some("x"));
        let (raw, none) = with_slug(Bytes::from("nope"));
        assert_eq!((raw.as_ref(), none), (&b"nope"[..], None));
    }
}
