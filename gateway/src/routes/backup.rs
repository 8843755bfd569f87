//! `GET /api/v1/backup` (admin): a consistent snapshot of this node's storage, streamed. The
//! snapshot is first written to an unlinked temporary file with commits held back (a local
//! copy is quick), then streamed from there with commits flowing again, so a slow download
//! never stalls the node.

use std::io::{Read, Seek, SeekFrom};

use agora_plugins::ErrorCode;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use crate::error::ErrorBody;
use crate::{ApiError, AppState};

/// The response header that carries the record count.
pub(crate) const RECORDS_HEADER: &str = "x-agora-backup-records";

/// An anonymous temporary file: created, then unlinked at once (it lives while it is open).
fn scratch_file() -> std::io::Result<std::fs::File> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let path = std::env::temp_dir().join(format!("agora-backup-{}-{nanos}", std::process::id()));
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)?;
    std::fs::remove_file(&path)?;
    Ok(file)
}

#[utoipa::path(get, path = "/api/v1/backup", tag = "operations",
    responses((status = 200, content_type = "application/octet-stream",
        description = "every key and value of this node's storage, from one consistent moment (the layout is in agora-storage's backup.rs); `X-Agora-Backup-Records` is the count"),
        (status = 503, body = ErrorBody)))]
pub(crate) async fn get(State(s): State<AppState>) -> Result<Response, ApiError> {
    let rt = s.agora.runtime().clone();
    let written = tokio::task::spawn_blocking(move || {
        let mut file = scratch_file().map_err(|e| e.to_string())?;
        let count = rt.snapshot(&mut file).map_err(|e| e.to_string())?;
        let len = file.seek(SeekFrom::End(0)).map_err(|e| e.to_string())?;
        file.seek(SeekFrom::Start(0)).map_err(|e| e.to_string())?;
        Ok::<_, String>((file, count, len))
    })
    .await;
    let (file, count, len) = match written {
        Ok(Ok(w)) => w,
        Ok(Err(e)) => {
            tracing::error!(error = %e, "backup failed");
            return Err(ApiError::new(
                ErrorCode::Unavailable,
                "the snapshot could not be written; see the node's log",
            ));
        }
        Err(e) => {
            tracing::error!(error = %e, "backup task failed");
            return Err(ApiError::new(
                ErrorCode::Internal,
                "internal error; see the node's log",
            ));
        }
    };
    // A blocking reader feeds the response through a small channel: the client's pace sets
    // the reader's, and a client that goes away ends it.
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(4);
    tokio::task::spawn_blocking(move || {
        let mut file = file;
        loop {
            let mut buf = vec![0u8; 64 * 1024];
            let chunk = match file.read(&mut buf) {
                Ok(0) => return,
                Ok(n) => {
                    buf.truncate(n);
                    Ok(Bytes::from(buf))
                }
                Err(e) => Err(e),
            };
            let failed = chunk.is_err();
            if tx.blocking_send(chunk).is_err() || failed {
                return;
            }
        }
    });
    let chunks = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    });
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (header::CONTENT_LENGTH, len.to_string()),
            (
                header::HeaderName::from_static(RECORDS_HEADER),
                count.to_string(),
            ),
        ],
        Body::from_stream(chunks),
    )
        .into_response())
}
