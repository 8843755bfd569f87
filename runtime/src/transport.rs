//! How the outbox's POSTs leave the node.
//!
//! A plain `http://` destination that no proxy setting covers (the driver beside the node, the
//! common case) goes out on hyper's pooled client directly. reqwest costs about 6 µs more per
//! request: it parses the URL into a `Url`, again into a `Uri`, and once more for its redirect
//! layer, which is a tenth of a process close. Every other destination (https, or one the
//! `HTTP_PROXY`/`HTTPS_PROXY`/`NO_PROXY` settings send through a proxy) goes through reqwest,
//! which brings TLS and proxies; both paths read the same proxy settings.
//!
//! Neither path follows redirects: reqwest would re-send a POST answered 301 or 302 as a GET
//! without its body, and a 200 to that GET would count as delivered. A redirect is refused,
//! so it is retried and, if it persists, expires with an error in the log.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper::header::{HeaderName, HeaderValue, CONTENT_TYPE, RETRY_AFTER, USER_AGENT};
use hyper::{Request, StatusCode, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::proxy::matcher::Matcher;
use hyper_util::rt::{TokioExecutor, TokioTimer};

const AGENT: &str = concat!("agora/", env!("CARGO_PKG_VERSION"));
/// How much of an answer's body is read (and dropped) so its connection can be used again.
const ANSWER_BODY_LIMIT: usize = 64 * 1024;
/// Distinct destinations remembered; callback URLs are the driver's to choose, so bounded.
const ROUTE_CACHE: usize = 1024;

/// What a destination answered.
#[derive(Debug)]
pub(crate) struct Answer {
    pub status: StatusCode,
    pub retry_after: Option<String>,
}

#[derive(Clone)]
enum Route {
    Direct(Uri),
    Reqwest(reqwest::Url),
}

/// Where proxy settings come from: the environment, or (tests) one proxy for every request.
pub(crate) enum Proxies {
    FromEnv,
    #[cfg(test)]
    All(String),
}

pub(crate) struct Transport {
    direct: Client<HttpConnector, Full<Bytes>>,
    fallback: reqwest::Client,
    proxies: Matcher,
    timeout: Duration,
    routes: Mutex<HashMap<String, Route>>,
}

impl Transport {
    pub fn new(timeout: Duration, proxies: Proxies) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(timeout));
        let direct = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .build(connector);
        let builder = reqwest::Client::builder()
            .timeout(timeout)
            .user_agent(AGENT)
            .redirect(reqwest::redirect::Policy::none());
        let (fallback, proxies) = match proxies {
            Proxies::FromEnv => (builder.build(), Matcher::from_env()),
            #[cfg(test)]
            Proxies::All(url) => (
                reqwest::Proxy::all(&url).and_then(|p| builder.proxy(p).build()),
                Matcher::builder().http(url.clone()).https(url).build(),
            ),
        };
        Self {
            direct,
            fallback: fallback.unwrap_or_default(),
            proxies,
            timeout,
            routes: Mutex::new(HashMap::new()),
        }
    }

    /// How `url` is reached, decided once per destination.
    fn route(&self, url: &str) -> Result<Route, String> {
        if let Some(r) = self
            .routes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(url)
        {
            return Ok(r.clone());
        }
        let uri: Uri = url.parse().map_err(|e| format!("bad URL: {e}"))?;
        let route = if uri.scheme_str() == Some("http") && self.proxies.intercept(&uri).is_none() {
            Route::Direct(uri)
        } else {
            Route::Reqwest(reqwest::Url::parse(url).map_err(|e| format!("bad URL: {e}"))?)
        };
        let mut routes = self.routes.lock().unwrap_or_else(|p| p.into_inner());
        if routes.len() >= ROUTE_CACHE {
            routes.clear();
        }
        routes.insert(url.to_string(), route.clone());
        Ok(route)
    }

    /// POSTs `body` as JSON with `headers`; the whole exchange within the timeout.
    pub async fn post(
        &self,
        url: &str,
        headers: &[(&'static str, &str)],
        body: Bytes,
    ) -> Result<Answer, String> {
        match self.route(url)? {
            Route::Direct(uri) => {
                tokio::time::timeout(self.timeout, self.direct(uri, headers, body))
                    .await
                    .map_err(|_| format!("no answer within {:?}", self.timeout))?
            }
            Route::Reqwest(url) => {
                let mut req = self
                    .fallback
                    .post(url)
                    .header(CONTENT_TYPE, "application/json")
                    .body(body);
                for (name, value) in headers {
                    req = req.header(*name, *value);
                }
                let resp = req.send().await.map_err(|e| e.to_string())?;
                Ok(Answer {
                    status: resp.status(),
                    retry_after: retry_after(resp.headers()),
                })
            }
        }
    }

    async fn direct(
        &self,
        uri: Uri,
        headers: &[(&'static str, &str)],
        body: Bytes,
    ) -> Result<Answer, String> {
        let mut req = Request::post(uri)
            .body(Full::new(body))
            .map_err(|e| e.to_string())?;
        let h = req.headers_mut();
        h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        h.insert(USER_AGENT, HeaderValue::from_static(AGENT));
        for (name, value) in headers {
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|e| e.to_string())?;
            let value = HeaderValue::from_str(value).map_err(|e| e.to_string())?;
            h.insert(name, value);
        }
        let resp = self.direct.request(req).await.map_err(|e| e.to_string())?;
        let answer = Answer {
            status: resp.status(),
            retry_after: retry_after(resp.headers()),
        };
        // Read the answer to its end, or the connection cannot serve the next delivery.
        let _ = Limited::new(resp.into_body(), ANSWER_BODY_LIMIT)
            .collect()
            .await;
        Ok(answer)
    }
}

fn retry_after(headers: &hyper::HeaderMap) -> Option<String> {
    headers
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::sync::{Arc, Mutex};

    use axum::extract::ConnectInfo;
    use axum::http::{HeaderMap, Method};

    use super::*;

    /// Serves `app` on a free local port; answers its base URL.
    async fn serve(app: axum::Router) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let app = app.into_make_service_with_connect_info::<SocketAddr>();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        format!("http://127.0.0.1:{port}")
    }

    /// Each request: the peer's address, method, URI as sent, headers and body.
    type Seen = Arc<Mutex<Vec<(SocketAddr, Method, String, HeaderMap, String)>>>;

    /// Records every request and answers `status`.
    fn recorder(seen: Seen, status: StatusCode) -> axum::Router {
        axum::Router::new().fallback(
            move |ConnectInfo(peer): ConnectInfo<SocketAddr>,
                  method: Method,
                  uri: Uri,
                  headers: HeaderMap,
                  body: String| {
                let seen = seen.clone();
                async move {
                    seen.lock()
                        .unwrap()
                        .push((peer, method, uri.to_string(), headers, body));
                    (
                        status,
                        [("location", "/elsewhere"), ("retry-after", "7")],
                        "an answer the client reads to its end",
                    )
                }
            },
        )
    }

    #[tokio::test]
    async fn a_plain_http_destination_gets_the_post_with_its_headers_over_one_connection() {
        let seen = Seen::default();
        let base = serve(recorder(seen.clone(), StatusCode::OK)).await;
        let t = Transport::new(Duration::from_secs(5), Proxies::FromEnv);
        for i in 0..3 {
            let a = t
                .post(
                    &format!("{base}/hook?n={i}"),
                    &[
                        ("idempotency-key", "k1"),
                        ("x-agora-signature", "sha256=ab"),
                    ],
                    Bytes::from(format!("{{\"i\":{i}}}")),
                )
                .await
                .unwrap();
            assert_eq!(a.status, StatusCode::OK);
            assert_eq!(a.retry_after.as_deref(), Some("7"));
        }
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 3);
        for (i, (peer, method, uri, headers, body)) in seen.iter().enumerate() {
            assert_eq!(*peer, seen[0].0, "the connection went back to the pool");
            assert_eq!(*method, Method::POST);
            assert_eq!(*uri, format!("/hook?n={i}"));
            assert_eq!(headers["content-type"], "application/json");
            assert_eq!(headers["idempotency-key"], "k1");
            assert_eq!(headers["x-agora-signature"], "sha256=ab");
            assert_eq!(headers["user-agent"], AGENT);
            assert_eq!(*body, format!("{{\"i\":{i}}}"));
        }
        assert!(matches!(
            t.route(&format!("{base}/hook")),
            Ok(Route::Direct(_))
        ));
    }

    #[tokio::test]
    async fn a_redirect_is_an_answer_not_followed() {
        let seen = Seen::default();
        let base = serve(recorder(seen.clone(), StatusCode::FOUND)).await;
        let t = Transport::new(Duration::from_secs(5), Proxies::FromEnv);
        let a = t
            .post(&format!("{base}/hook"), &[], Bytes::from("{}"))
            .await;
        assert_eq!(a.unwrap().status, StatusCode::FOUND);
        assert_eq!(seen.lock().unwrap().len(), 1, "nothing went to /elsewhere");
    }

    /// A proxied destination goes through reqwest: the proxy gets the absolute URI, the same
    /// headers and body, and its redirect is not followed either.
    #[tokio::test]
    async fn a_proxied_destination_goes_through_the_proxy_with_the_same_request() {
        let seen = Seen::default();
        let proxy = serve(recorder(seen.clone(), StatusCode::MOVED_PERMANENTLY)).await;
        let t = Transport::new(Duration::from_secs(5), Proxies::All(proxy));
        let url = "http://driver.invalid:8000/hook";
        assert!(matches!(t.route(url), Ok(Route::Reqwest(_))));
        let a = t
            .post(url, &[("idempotency-key", "k2")], Bytes::from("{\"x\":1}"))
            .await
            .unwrap();
        assert_eq!(a.status, StatusCode::MOVED_PERMANENTLY);
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 1);
        let (_, method, uri, headers, body) = &seen[0];
        assert_eq!(*method, Method::POST);
        assert_eq!(uri, url);
        assert_eq!(headers["content-type"], "application/json");
        assert_eq!(headers["idempotency-key"], "k2");
        assert_eq!(headers["user-agent"], AGENT);
        assert_eq!(body, "{\"x\":1}");
    }

    #[tokio::test]
    async fn a_destination_that_does_not_answer_fails_within_the_timeout() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        // Accepts and never answers.
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = listener.accept().await {
                held.push(s);
            }
        });
        let t = Transport::new(Duration::from_millis(200), Proxies::FromEnv);
        let started = std::time::Instant::now();
        let r = t
            .post(&format!("http://127.0.0.1:{port}/"), &[], Bytes::new())
            .await;
        assert!(r.unwrap_err().contains("no answer"));
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[tokio::test]
    async fn a_url_that_does_not_parse_is_an_error() {
        let t = Transport::new(Duration::from_secs(1), Proxies::FromEnv);
        assert!(t.post("not a url", &[], Bytes::new()).await.is_err());
        assert!(t.post("http://", &[], Bytes::new()).await.is_err());
    }
}
