//! Removing the files no record references: what a crash leaves under `s3/tmp` (an upload cut
//! off mid-body) and under `s3/blobs` (a crash between the rename and the record's commit, or
//! between a replacing commit and the old blob's removal), and, after `/_sluice/reset`, every
//! blob.
//!
//! Runs at start-up before the listener opens, so no upload of this node is in flight; through
//! `/_sluice/reset` (emulator mode only) an upload in flight may lose its blob, which is what
//! a reset means. When nodes share the store (and so the data directory), other nodes' uploads
//! may be in flight at any time: a node starting then removes only files untouched for
//! [`SHARED_GRACE`].

use std::collections::HashSet;
use std::path::Path;
use std::time::SystemTime;

use async_trait::async_trait;

use super::storage::{LocalObjects, StorageError, OBJECT_KIND, PART_KIND};
use crate::store::ResetHook;
use crate::store::{RecordKey, Store};

/// Records read per store call while collecting the referenced blobs.
const SCAN_PAGE: usize = 1000;
/// How old a file must be before a node sharing its data directory removes it at start: far
/// longer than any upload or commit takes.
pub const SHARED_GRACE: std::time::Duration = std::time::Duration::from_secs(60 * 60);

/// What a sweep removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    /// Files removed from `tmp/`.
    pub tmp_files: usize,
    /// Files removed from `blobs/`.
    pub blobs: usize,
    /// Bytes those files held.
    pub bytes: u64,
}

/// Removes every file under `<root>/tmp` and every file under `<root>/blobs` that no object or
/// part record names, of those last modified before `cutoff` (all when `None`). Memory is one
/// blob name per stored object and part; the store is read in pages of [`SCAN_PAGE`] records.
pub async fn sweep(
    store: &dyn Store,
    root: &Path,
    cutoff: Option<SystemTime>,
) -> Result<Swept, StorageError> {
    let mut swept = Swept::default();
    for path in files(&root.join("tmp"), cutoff).await? {
        swept.bytes += remove(&path).await?;
        swept.tmp_files += 1;
    }
    let blob_dir = root.join("blobs");
    let on_disk = files(&blob_dir, cutoff).await?;
    if !on_disk.is_empty() {
        let referenced = referenced_blobs(store).await?;
        for path in on_disk {
            let named = path
                .file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| referenced.contains(name));
            if !named {
                swept.bytes += remove(&path).await?;
                swept.blobs += 1;
            }
        }
    }
    Ok(swept)
}

/// The blob names object and part records hold.
async fn referenced_blobs(store: &dyn Store) -> Result<HashSet<String>, StorageError> {
    let mut referenced = HashSet::new();
    for kind in [OBJECT_KIND, PART_KIND] {
        let mut after: Option<RecordKey> = None;
        loop {
            let page = store.scan(kind, after.as_ref(), SCAN_PAGE).await?;
            let full = page.len() == SCAN_PAGE;
            for record in &page {
                if let Some(blob) = record.body.get("blob").and_then(|blob| blob.as_str()) {
                    referenced.insert(blob.to_owned());
                }
            }
            match page.into_iter().last() {
                Some(last) if full => after = Some(last.key),
                _ => break,
            }
        }
    }
    Ok(referenced)
}

/// The plain files directly in `dir` last modified before `cutoff` (none when it does not
/// exist).
async fn files(dir: &Path, cutoff: Option<SystemTime>) -> std::io::Result<Vec<std::path::PathBuf>> {
    let mut entries = match tokio::fs::read_dir(dir).await {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(error),
    };
    let mut out = Vec::new();
    while let Some(entry) = entries.next_entry().await? {
        if !entry.file_type().await?.is_file() {
            continue;
        }
        let old_enough = match cutoff {
            None => true,
            Some(cutoff) => entry.metadata().await?.modified()? < cutoff,
        };
        if old_enough {
            out.push(entry.path());
        }
    }
    Ok(out)
}

/// Removes a file; returns its size (0 when it was already gone).
async fn remove(path: &Path) -> std::io::Result<u64> {
    let size = match tokio::fs::metadata(path).await {
        Ok(meta) => meta.len(),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(error) => return Err(error),
    };
    match tokio::fs::remove_file(path).await {
        Ok(()) => Ok(size),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(error) => Err(error),
    }
}

/// Start-up hygiene: sweeps (only files older than [`SHARED_GRACE`] when other nodes may share
/// the data directory), and says what it removed.
pub async fn sweep_at_start(objects: &LocalObjects, shared: bool) -> Result<Swept, StorageError> {
    let cutoff = shared.then(|| SystemTime::now() - SHARED_GRACE);
    let swept = sweep(objects.store(), objects.root(), cutoff).await?;
    if swept.tmp_files + swept.blobs > 0 {
        tracing::warn!(
            tmp_files = swept.tmp_files,
            unreferenced_blobs = swept.blobs,
            bytes = swept.bytes,
            "Removed S3 files left by an interrupted upload or commit."
        );
    }
    Ok(swept)
}

#[async_trait]
impl ResetHook for LocalObjects {
    async fn after_reset(&self) -> anyhow::Result<()> {
        let swept = sweep(self.store(), self.root(), None).await?;
        tracing::info!(
            blobs = swept.blobs,
            tmp_files = swept.tmp_files,
            bytes = swept.bytes,
            "Reset removed S3's object files."
        );
        Ok(())
    }
}
