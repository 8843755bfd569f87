//! `agora backup` (a running node's consistent snapshot, downloaded through its admin-only
//! endpoint, checked, then moved into place) and `agora restore` (offline, into an empty data
//! directory), each with a progress bar and a final count.

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::Path;

use agora_storage::{read_snapshot, Engine, SledEngine, WriteBatch};
use indicatif::{ProgressBar, ProgressStyle};

use super::client::{Client, Failure};
use super::Exit;

/// Pairs written to sled per batch while restoring.
const RESTORE_BATCH: usize = 10_000;

fn failed(message: String) -> Failure {
    Failure {
        exit: Exit::Failed,
        message,
    }
}

fn bar(len: Option<u64>) -> ProgressBar {
    let pb = match len {
        Some(n) => ProgressBar::new(n),
        None => ProgressBar::no_length(),
    };
    if let Ok(style) =
        ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {bytes_per_sec} {eta}")
    {
        pb.set_style(style);
    }
    pb
}

/// Downloads the node's snapshot into `out` (refusing to replace a file); answers the
/// record count and the bytes written.
pub async fn backup(c: &Client, out: &Path) -> Result<(u64, u64), Failure> {
    if out.exists() {
        return Err(failed(format!(
            "{} exists; choose a new file name",
            out.display()
        )));
    }
    let mut resp = c.download("/api/v1/backup").await?;
    let declared = resp
        .headers()
        .get("x-agora-backup-records")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let partial = out.with_extension("partial");
    let file = File::create(&partial)
        .map_err(|e| failed(format!("creating {}: {e}", partial.display())))?;
    let mut w = BufWriter::new(file);
    let pb = bar(resp.content_length());
    let mut bytes = 0u64;
    let result: Result<(), Failure> = async {
        while let Some(chunk) = resp.chunk().await.map_err(|e| Failure {
            exit: Exit::Unreachable,
            message: format!("the download broke off: {}", e.without_url()),
        })? {
            w.write_all(&chunk)
                .map_err(|e| failed(format!("writing {}: {e}", partial.display())))?;
            bytes += chunk.len() as u64;
            pb.set_position(bytes);
        }
        let file = w
            .into_inner()
            .map_err(|e| failed(format!("writing {}: {e}", partial.display())))?;
        file.sync_all()
            .map_err(|e| failed(format!("syncing {}: {e}", partial.display())))?;
        Ok(())
    }
    .await;
    pb.finish_and_clear();
    let checked = result.and_then(|()| {
        // Read it back: the count comes from the file itself, and a damaged download is
        // caught here rather than at restore time.
        let mut r = BufReader::new(
            File::open(&partial)
                .map_err(|e| failed(format!("reading {}: {e}", partial.display())))?,
        );
        let count = read_snapshot(&mut r, |_, _| Ok(()))
            .map_err(|e| failed(format!("the downloaded backup is unusable: {e}")))?;
        if declared.is_some_and(|d| d != count) {
            return Err(failed(format!(
                "the node announced {} records, the file holds {count}",
                declared.unwrap_or_default()
            )));
        }
        Ok(count)
    });
    match checked {
        Ok(count) => {
            std::fs::rename(&partial, out)
                .map_err(|e| failed(format!("moving the backup to {}: {e}", out.display())))?;
            Ok((count, bytes))
        }
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            Err(e)
        }
    }
}

/// Restores `file` into `data_dir`, which must be empty or absent; answers the record count.
pub fn restore(file: &Path, data_dir: &Path) -> Result<u64, Failure> {
    if let Ok(mut entries) = std::fs::read_dir(data_dir) {
        if entries.next().is_some() {
            return Err(failed(format!(
                "{} is not empty; restore only into an empty or new directory",
                data_dir.display()
            )));
        }
    } else if data_dir.exists() {
        return Err(failed(format!("{} is not a directory", data_dir.display())));
    }
    let input = File::open(file).map_err(|e| failed(format!("opening {}: {e}", file.display())))?;
    let len = input.metadata().map(|m| m.len()).ok();
    std::fs::create_dir_all(data_dir)
        .map_err(|e| failed(format!("creating {}: {e}", data_dir.display())))?;
    let db = data_dir.join("db");
    let result = (|| {
        let engine = SledEngine::open(&db)
            .map_err(|e| failed(format!("opening the database in {}: {e}", db.display())))?;
        let pb = bar(len);
        let mut reader = BufReader::new(pb.wrap_read(input));
        let mut batch = WriteBatch::new();
        let read = read_snapshot(&mut reader, |k, v| {
            batch.put(k, v);
            if batch.len() >= RESTORE_BATCH {
                engine.apply(std::mem::take(&mut batch))?;
            }
            Ok(())
        });
        pb.finish_and_clear();
        let count = read.map_err(|e| failed(format!("{}: {e}", file.display())))?;
        engine
            .apply(batch)
            .and_then(|()| engine.flush())
            .map_err(|e| failed(format!("writing {}: {e}", db.display())))?;
        Ok(count)
    })();
    if result.is_err() {
        // Leave the directory as empty as it was: a half restore must not look like a node.
        let _ = std::fs::remove_dir_all(&db);
    }
    result
}
