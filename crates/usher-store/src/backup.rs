//! Backups of the embedded store: a consistent snapshot while Usher runs, and a checked restore.
//!
//! [`snapshot`] (the embedded store's `Store::backup`) makes the leases durable, then copies every table as one read transaction sees it into a
//! new database file (written beside its final name, synced, then renamed), so the copy is a state the
//! store really had, whatever writes go on meanwhile. [`restore`] checks a backup by opening it as a store
//! (every show, key and CDN decoded) before it replaces a data directory's database, and refuses while
//! another process holds that database.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use redb::{Database, ReadableTable as _};
use usher_core::clock::SystemClock;
use usher_core::store::{BackupInfo, Store as _, StoreError};

use crate::embedded::{BYTE_TABLES, DB_FILE, EmbeddedStore, TEXT_TABLES};

fn unavailable(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("{what}: {e}"))
}

/// Copies every row of `$table` from the read transaction to the write transaction; the row count.
macro_rules! copy_table {
    ($read:expr, $write:expr, $table:expr) => {{
        let from = $read
            .open_table($table)
            .map_err(|e| unavailable("opening a table", e))?;
        let mut to = $write
            .open_table($table)
            .map_err(|e| unavailable("creating a table", e))?;
        let mut n: u64 = 0;
        for row in from.iter().map_err(|e| unavailable("reading", e))? {
            let (k, v) = row.map_err(|e| unavailable("reading", e))?;
            to.insert(k.value(), v.value())
                .map_err(|e| unavailable("writing the backup", e))?;
            n += 1;
        }
        n
    }};
}

fn sync_file(path: &Path) -> Result<(), StoreError> {
    std::fs::File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(|e| unavailable("syncing the backup", e))
}

/// Writes a consistent snapshot of `store` to `dest` (a new file: an existing one is refused); what the
/// embedded store's [`Store::backup`](usher_core::store::Store::backup) does.
///
/// # Errors
/// [`StoreError::Unavailable`] when the destination exists or cannot be written, or the store cannot be
/// read.
pub async fn snapshot(store: &EmbeddedStore, dest: &Path) -> Result<BackupInfo, StoreError> {
    if dest.exists() {
        return Err(StoreError::Unavailable(format!(
            "{} exists: a backup never overwrites a file",
            dest.display()
        )));
    }
    // the leases live in memory and are flushed every second: make the latest ones part of the copy
    store.flush().await?;
    let db = store.database();
    let dest = dest.to_owned();
    tokio::task::spawn_blocking(move || {
        let tmp = partial_name(&dest);
        let result = (|| {
            let out = Database::create(&tmp).map_err(|e| unavailable("creating the backup", e))?;
            let read = db
                .begin_read()
                .map_err(|e| unavailable("reading the store", e))?;
            let write = out
                .begin_write()
                .map_err(|e| unavailable("writing the backup", e))?;
            let mut records = 0;
            for t in BYTE_TABLES {
                records += copy_table!(read, write, *t);
            }
            for t in TEXT_TABLES {
                records += copy_table!(read, write, *t);
            }
            write
                .commit()
                .map_err(|e| unavailable("committing the backup", e))?;
            drop(out);
            sync_file(&tmp)?;
            std::fs::rename(&tmp, &dest).map_err(|e| unavailable("naming the backup", e))?;
            let bytes = std::fs::metadata(&dest)
                .map_err(|e| unavailable("reading the backup", e))?
                .len();
            Ok(BackupInfo { records, bytes })
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    })
    .await
    .map_err(|e| StoreError::Unavailable(format!("backup task failed: {e}")))?
}

fn partial_name(dest: &Path) -> PathBuf {
    let mut name = dest.file_name().unwrap_or_default().to_owned();
    name.push(".partial");
    dest.with_file_name(name)
}

/// Replaces the database in `data_dir` by the backup `from`, after checking that the backup opens as a
/// store. Refuses when `data_dir` already has a database unless `force`, and always while another
/// process (a running Usher) holds it. Returns the path of the database written.
///
/// # Errors
/// [`StoreError::Corrupt`] for a backup that does not read back; [`StoreError::Unavailable`] for the
/// refusals above and file errors.
pub fn restore(from: &Path, data_dir: &Path, force: bool) -> Result<PathBuf, StoreError> {
    let target = data_dir.join(DB_FILE);
    if target.exists() {
        if !force {
            return Err(StoreError::Unavailable(format!(
                "{} already has a store: stop Usher and pass --force to replace it",
                data_dir.display()
            )));
        }
        // opening it takes redb's lock: this fails while a running Usher holds the database
        Database::open(&target).map_err(|e| {
            StoreError::Unavailable(format!(
                "{} is in use ({e}): stop Usher first",
                target.display()
            ))
        })?;
    }
    std::fs::create_dir_all(data_dir).map_err(|e| unavailable("creating the data directory", e))?;
    let staging = data_dir.join(format!(".restore-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging).map_err(|e| unavailable("staging the restore", e))?;
    let result = (|| {
        let staged = staging.join(DB_FILE);
        std::fs::copy(from, &staged)
            .map_err(|e| unavailable(&format!("reading {}", from.display()), e))?;
        {
            // the check: every show, key, CDN and lease record decodes
            let store = EmbeddedStore::open(&staging, Arc::new(SystemClock)).map_err(|e| {
                StoreError::Corrupt(format!(
                    "{} is not a usable Usher backup: {e}",
                    from.display()
                ))
            })?;
            drop(store);
        }
        sync_file(&staged)?;
        std::fs::rename(&staged, &target)
            .map_err(|e| unavailable("putting the store in place", e))?;
        Ok(target.clone())
    })();
    let _ = std::fs::remove_dir_all(&staging);
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract;

    #[tokio::test]
    async fn a_snapshot_restores_to_the_same_store() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(&dir.path().join("live"), Arc::new(SystemClock)).unwrap();
        store.put_cdn(contract::cdn("a-cdn", 10)).await.unwrap();
        let backup = dir.path().join("b.redb");
        let info = snapshot(&store, &backup).await.unwrap();
        assert_eq!(info.records, 1);
        assert!(info.bytes > 0);
        assert!(snapshot(&store, &backup).await.is_err(), "never overwrites");

        let restored = dir.path().join("restored");
        restore(&backup, &restored, false).unwrap();
        let back = EmbeddedStore::open(&restored, Arc::new(SystemClock)).unwrap();
        assert_eq!(back.cdns().await.unwrap(), store.cdns().await.unwrap());
        drop(back);
        assert!(restore(&backup, &restored, false).is_err(), "needs --force");
        restore(&backup, &restored, true).unwrap();

        // the live store is locked by this process's open handle
        assert!(restore(&backup, &dir.path().join("live"), true).is_err());
        // garbage is refused and the target stays as it was
        let junk = dir.path().join("junk.redb");
        std::fs::write(&junk, b"not a database").unwrap();
        assert!(restore(&junk, &restored, true).is_err());
        let back = EmbeddedStore::open(&restored, Arc::new(SystemClock)).unwrap();
        assert_eq!(back.cdns().await.unwrap().len(), 1);
    }
}
