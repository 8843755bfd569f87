//! The backup file: every key and value of an engine, written from a consistent view
//! ([`crate::Committer::paused`]) and read back into an empty one.
//!
//! Layout: the magic `AGORA-BACKUP-1\n`; then one record per pair, `u32` key length (big
//! endian), the key, `u32` value length, the value, in key order; then the trailer: `u32`
//! `0xFFFF_FFFF`, the record count as `u64`, and the SHA-256 of every byte before the
//! trailer's count. A truncated or altered file is refused before anything is restored.

use std::io::{Read, Write};

use sha2::{Digest, Sha256};

use crate::engine::Engine;
use crate::StorageError;

const MAGIC: &[u8] = b"AGORA-BACKUP-1\n";
const END: u32 = u32::MAX;
/// Pairs read from the engine at a time.
const PAGE: usize = 4096;

/// Why a backup file cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("not an Agora backup (wrong magic)")]
    NotABackup,
    #[error("the backup is truncated or damaged: {0}")]
    Damaged(String),
    #[error("the backup's checksum does not match its contents")]
    Checksum,
    #[error("reading the backup: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Writes everything; hashes what it writes.
struct Hashing<W> {
    out: W,
    hash: Sha256,
}

impl<W: Write> Hashing<W> {
    fn put(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.hash.update(bytes);
        self.out.write_all(bytes)
    }
}

/// Writes every pair of `engine` to `out` in the backup layout; answers the record count.
/// Call it inside [`crate::Committer::paused`] for a consistent copy.
pub fn write_snapshot(engine: &dyn Engine, out: &mut dyn Write) -> Result<u64, StorageError> {
    let io = |e: std::io::Error| StorageError::Io(e.to_string());
    let mut w = Hashing {
        out,
        hash: Sha256::new(),
    };
    w.put(MAGIC).map_err(io)?;
    let mut count = 0u64;
    let mut from: Vec<u8> = Vec::new();
    loop {
        let page = engine.scan_from(&[], &from, PAGE)?;
        let last = page.len() < PAGE;
        for (k, v) in &page {
            for part in [k, v] {
                let len = u32::try_from(part.len())
                    .map_err(|_| StorageError::Io("a record over 4 GiB".into()))?;
                w.put(&len.to_be_bytes()).map_err(io)?;
                w.put(part).map_err(io)?;
            }
            count += 1;
        }
        match page.last() {
            Some((k, _)) if !last => {
                // The next page starts just after this key.
                from = k.clone();
                from.push(0);
            }
            _ => break,
        }
    }
    w.put(&END.to_be_bytes()).map_err(io)?;
    let digest = w.hash.finalize();
    w.out.write_all(&count.to_be_bytes()).map_err(io)?;
    w.out.write_all(&digest).map_err(io)?;
    w.out.flush().map_err(io)?;
    Ok(count)
}

/// Reads a backup from `input`, calling `each` with every pair in order; answers the record
/// count. Checks the layout as it goes and the checksum at the end: a caller restoring into
/// storage must not make it durable before this returns `Ok`.
pub fn read_snapshot(
    input: &mut dyn Read,
    mut each: impl FnMut(Vec<u8>, Vec<u8>) -> Result<(), StorageError>,
) -> Result<u64, BackupError> {
    let mut hash = Sha256::new();
    let mut magic = vec![0u8; MAGIC.len()];
    input
        .read_exact(&mut magic)
        .map_err(|_| BackupError::NotABackup)?;
    if magic != MAGIC {
        return Err(BackupError::NotABackup);
    }
    hash.update(&magic);
    let damaged = |what: &str| BackupError::Damaged(what.to_string());
    let mut count = 0u64;
    loop {
        let mut len = [0u8; 4];
        input
            .read_exact(&mut len)
            .map_err(|_| damaged("it ends inside a record"))?;
        hash.update(len);
        let n = u32::from_be_bytes(len);
        if n == END {
            break;
        }
        let key = read_part(input, n, &mut hash).map_err(|_| damaged("it ends inside a key"))?;
        input
            .read_exact(&mut len)
            .map_err(|_| damaged("it ends inside a record"))?;
        hash.update(len);
        let value = read_part(input, u32::from_be_bytes(len), &mut hash)
            .map_err(|_| damaged("it ends inside a value"))?;
        each(key, value)?;
        count += 1;
    }
    let mut trailer = [0u8; 8 + 32];
    input
        .read_exact(&mut trailer)
        .map_err(|_| damaged("the trailer is missing"))?;
    let declared = u64::from_be_bytes(trailer[..8].try_into().unwrap_or_default());
    if trailer[8..] != hash.finalize()[..] {
        return Err(BackupError::Checksum);
    }
    if declared != count {
        return Err(damaged("the record count does not match"));
    }
    let mut rest = [0u8; 1];
    if input.read(&mut rest)? != 0 {
        return Err(damaged("bytes follow the trailer"));
    }
    Ok(count)
}

fn read_part(input: &mut dyn Read, n: u32, hash: &mut Sha256) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    input.take(u64::from(n)).read_to_end(&mut buf)?;
    if buf.len() != n as usize {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    hash.update(&buf);
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{MemEngine, WriteBatch};

    fn filled(n: usize) -> MemEngine {
        let e = MemEngine::new();
        let mut b = WriteBatch::new();
        for i in 0..n {
            b.put(format!("k{i:06}"), format!("value {i}").repeat(i % 7));
        }
        e.apply(b).unwrap();
        e
    }

    #[test]
    fn a_snapshot_round_trips_every_pair_across_pages() {
        let src = filled(PAGE * 2 + 17);
        let mut file = Vec::new();
        let n = write_snapshot(&src, &mut file).unwrap();
        assert_eq!(n, (PAGE * 2 + 17) as u64);
        let dst = MemEngine::new();
        let mut batch = WriteBatch::new();
        let read = read_snapshot(&mut file.as_slice(), |k, v| {
            batch.put(k, v);
            Ok(())
        })
        .unwrap();
        dst.apply(batch).unwrap();
        assert_eq!(read, n);
        assert_eq!(dst.scan_prefix(&[]).unwrap(), src.scan_prefix(&[]).unwrap());
    }

    #[test]
    fn damaged_files_are_refused() {
        let mut file = Vec::new();
        write_snapshot(&filled(10), &mut file).unwrap();
        let ok = |_: Vec<u8>, _: Vec<u8>| Ok(());
        let mut flipped = file.clone();
        flipped[MAGIC.len() + 6] ^= 1;
        assert!(matches!(
            read_snapshot(&mut flipped.as_slice(), ok),
            Err(BackupError::Checksum)
        ));
        let cut = &file[..file.len() - 5];
        assert!(matches!(
            read_snapshot(&mut &cut[..], ok),
            Err(BackupError::Damaged(_))
        ));
        assert!(matches!(
            read_snapshot(&mut &b"hello"[..], ok),
            Err(BackupError::NotABackup)
        ));
        let mut longer = file.clone();
        longer.push(0);
        assert!(read_snapshot(&mut longer.as_slice(), ok).is_err());
        let empty = MemEngine::new();
        let mut file = Vec::new();
        assert_eq!(write_snapshot(&empty, &mut file).unwrap(), 0);
        assert_eq!(read_snapshot(&mut file.as_slice(), ok).unwrap(), 0);
    }
}
