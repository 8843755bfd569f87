//! Serving the API on a TCP listener, with the limits a public HTTP server needs: hyper's
//! HTTP/1 connections with a header-read timeout, a deadline on reading a request's body, a cap
//! on open connections (the ones over it answered 503), and a shutdown that drains for a
//! bounded time and then closes whatever is left.
//!
//! `axum::serve` has none of these knobs, so the accept loop is ours; the timers are hyper's
//! (`header_read_timeout`, through `hyper_util`'s tokio timer) and tokio's (a `Sleep` per
//! request body), and the drain is `hyper_util`'s `GracefulShutdown`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use agora_plugins::ErrorCode;
use axum::body::Body;
use axum::response::IntoResponse;
use axum::Router;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::{Instant, Sleep};
use tower::ServiceExt;

use crate::error::ApiError;

/// Connections over the cap still get a 503 (so a client sees why), but only this many at a
/// time; beyond that they are closed unanswered, so a flood cannot exhaust descriptors.
const REFUSAL_SLOTS: usize = 64;

/// The limits of the HTTP server.
#[derive(Debug, Clone)]
pub struct ServeLimits {
    /// Time to receive a complete request head, counted from the moment the connection is ready
    /// for one: when it opens, and after each answer on a keep-alive connection. It is therefore
    /// also the idle keep-alive timeout (hyper measures both with the same timer).
    pub header_timeout: Duration,
    /// Time to receive a whole request body, counted from the end of its head.
    pub body_timeout: Duration,
    /// Open connections served at once; the ones over it are answered 503 and closed.
    pub max_connections: usize,
    /// How long shutdown waits for open requests to finish before closing their connections.
    pub shutdown_grace: Duration,
}

impl Default for ServeLimits {
    fn default() -> Self {
        ServeLimits {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            max_connections: 1000,
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// How serving ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Drained {
    /// Connections still open at the grace deadline, closed without finishing.
    pub closed_at_deadline: usize,
}

/// Serves `app` on `listener` until `shutdown` resolves, then stops accepting, lets open
/// requests finish for up to `limits.shutdown_grace` and closes what is left. A request that
/// was never fully received was never answered, so closing it acknowledges nothing.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ServeLimits,
    shutdown: impl Future<Output = ()>,
) -> Drained {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    let mut refuse = http.clone();
    refuse.keep_alive(false);

    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let refusal_slots = Arc::new(Semaphore::new(REFUSAL_SLOTS));
    let graceful = GracefulShutdown::new();
    let mut conns = JoinSet::new();
    let body_timeout = limits.body_timeout;
    tokio::pin!(shutdown);
    loop {
        while conns.try_join_next().is_some() {}
        let stream = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of descriptors or a connection reset before accept: wait a moment
                    // rather than spin, as axum's loop does.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        if let Ok(slot) = slots.clone().try_acquire_owned() {
            let app = app.clone();
            let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                let req = req.map(|body| Body::new(DeadlineBody::new(body, body_timeout)));
                app.clone().oneshot(req)
            });
            let conn = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
            conns.spawn(async move {
                if let Err(e) = conn.await {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                drop(slot);
            });
        } else if let Ok(slot) = refusal_slots.clone().try_acquire_owned() {
            conns.spawn(refuse_connection(&refuse, &graceful, stream, slot));
        } else {
            tracing::warn!("connection refused unanswered: over the connection cap");
            drop(stream);
        }
    }
    drop(listener);
    let open = graceful.count();
    tracing::info!(
        open,
        grace = ?limits.shutdown_grace,
        "stopped accepting; draining open connections"
    );
    let closed_at_deadline =
        match tokio::time::timeout(limits.shutdown_grace, graceful.shutdown()).await {
            Ok(()) => 0,
            Err(_) => {
                let left = conns.len();
                tracing::warn!(
                    connections = left,
                    "shutdown grace over: closing the connections still open"
                );
                left
            }
        };
    conns.shutdown().await;
    Drained { closed_at_deadline }
}

/// Answers one connection over the cap with 503 `too_many_connections` and closes it.
fn refuse_connection(
    http: &hyper::server::conn::http1::Builder,
    graceful: &GracefulShutdown,
    stream: TcpStream,
    slot: tokio::sync::OwnedSemaphorePermit,
) -> impl Future<Output = ()> + Send + 'static {
    let service = hyper::service::service_fn(|_req: hyper::Request<Incoming>| async {
        Ok::<_, std::convert::Infallible>(
            ApiError::new(
                ErrorCode::TooManyConnections,
                "the node serves as many connections as it may; retry later",
            )
            .into_response(),
        )
    });
    let conn = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
    async move {
        let _ = conn.await;
        drop(slot);
    }
}

/// Why a request body stopped: it took longer than the body timeout.
#[derive(Debug, thiserror::Error)]
#[error("the request body was not received within {0:?}")]
pub struct BodyTimedOut(pub Duration);

/// A request body that fails with [`BodyTimedOut`] once its deadline passes, however slowly the
/// client trickles bytes in (a per-read timeout would let one byte a second through).
struct DeadlineBody {
    inner: Incoming,
    deadline: Pin<Box<Sleep>>,
    timeout: Duration,
}

impl DeadlineBody {
    fn new(inner: Incoming, timeout: Duration) -> Self {
        DeadlineBody {
            inner,
            deadline: Box::pin(tokio::time::sleep_until(Instant::now() + timeout)),
            timeout,
        }
    }
}

impl hyper::body::Body for DeadlineBody {
    type Data = axum::body::Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        if this.deadline.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(Box::new(BodyTimedOut(this.timeout)))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Whether an error reading a body (anywhere in its source chain) is the body timeout.
pub(crate) fn is_body_timeout(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if err.is::<BodyTimedOut>() {
            return true;
        }
        cur = err.source();
    }
    false
}
