//! Removing the files no record references: what a crash leaves under `s3/tmp` (an upload cut
//! off mid-body) and under `s3/blobs` (a crash between the rename and the record's commit, or
//! between a replacing commit and the old blob's removal), and, after `/_sluice/reset`, every
//! blob.
//!
//! Runs at start-up before the listener opens, so no upload is in flight; through
//! `/_sluice/reset` (emulator mode only) an upload in flight may lose its blob, which is what
//! a reset means.

use std::collections::HashSet;
use std::path::Path;

use async_trait::async_trait;

use super::storage::{LocalObjects, StorageError, OBJECT_KIND, PART_KIND};
use crate::store::ResetHook;
use crate::store::{RecordKey, Store};

/// Records read per store call while collecting the referenced blobs.
const SCAN_PAGE: usize = 1000;

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
/// part record names. Memory is one blob name per stored object and part; the store is read
/// in pages of [`SCAN_PAGE`] records.
pub async fn sweep(store: &dyn Store, root: &Path) -> Result<Swept, StorageError> {
    let mut swept = Swept::default();
    for path in files(&root.join("tmp")).await? {
        swept.bytes += remove(&path).await?;
        swept.tmp_files += 1;
    }
    let blob_dir = root.join("blobs");
    let on_disk = files(&blob_dir).await?;
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

/// The plain files directly in `dir` (none when it does not exist).
async fn files(dir: &Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    let mut entries = match tokio::fs::read_dir(dir).await {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(error),
    };
    let mut out = Vec::new();
    while let Some(entry) = entries.next_entry().await? {
        if entry.file_type().await?.is_file() {
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

/// Start-up hygiene: sweeps, and says what it removed.
pub async fn sweep_at_start(objects: &LocalObjects) -> Result<Swept, StorageError> {
    let swept = sweep(objects.store(), objects.root()).await?;
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
        let swept = sweep(self.store(), self.root()).await?;
        tracing::info!(
            blobs = swept.blobs,
            tmp_files = swept.tmp_files,
            bytes = swept.bytes,
            "Reset removed S3's object files."
        );
        Ok(())
    }
}
