//! Restores of the embedded store's backups.
//!
//! A backup is taken by `Store::backup` (the embedded store's, in `snapshot`): the leases made durable,
//! then every table as one read transaction sees it copied into a new database file, so the copy is a
//! state the store really had, whatever writes go on meanwhile. [`restore`] checks a backup by opening it
//! as a store (every show, key and CDN decoded) before it replaces a data directory's database, and
//! refuses while another process holds that database.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use usher_core::clock::SystemClock;
use usher_core::store::StoreError;

use crate::embedded::{DB_FILE, EmbeddedStore};
use crate::snapshot::sync_file;

fn unavailable(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("{what}: {e}"))
}

/// Refuses while a process holds `db` (a running Usher: redb holds an exclusive `flock` on its file).
/// Only asks for the same lock, and lets go: opening the database instead would make redb repair a
/// file a killed server left, changing the very store a refused restore must leave alone.
fn ensure_not_in_use(db: &Path) -> Result<(), StoreError> {
    let file = std::fs::File::open(db)
        .map_err(|e| unavailable(&format!("opening {}", db.display()), e))?;
    match file.try_lock() {
        Ok(()) => {
            let _ = file.unlock();
            Ok(())
        }
        Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::Unavailable(format!(
            "{} is in use by a running Usher: stop it first",
            db.display()
        ))),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(unavailable(&format!("locking {}", db.display()), e))
        }
    }
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
        ensure_not_in_use(&target)?;
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
            // the check: every show, key, CDN and lease record decodes. redb asserts on some damaged
            // files (a file shorter than its header says) instead of answering an error: that panic
            // is caught here and is a refusal like any other
            let opened =
                std::panic::catch_unwind(|| EmbeddedStore::open(&staging, Arc::new(SystemClock)))
                    .unwrap_or_else(|panic| {
                        let why = panic
                            .downcast_ref::<&str>()
                            .map(|s| (*s).to_owned())
                            .or_else(|| panic.downcast_ref::<String>().cloned())
                            .unwrap_or_else(|| "the database engine gave up on it".into());
                        Err(StoreError::Corrupt(format!("damaged database ({why})")))
                    });
            let store = opened.map_err(|e| {
                StoreError::Corrupt(format!(
                    "{} is not a usable Usher backup: {e}",
                    from.display()
                ))
            })?;
            drop(store);
        }
        sync_file(&staged)?;
        if target.exists() {
            // again: a server may have started while the backup was checked
            ensure_not_in_use(&target)?;
        }
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
    use usher_core::store::Store as _;

    #[tokio::test]
    async fn a_snapshot_restores_to_the_same_store() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(&dir.path().join("live"), Arc::new(SystemClock)).unwrap();
        store.put_cdn(contract::cdn("a-cdn", 10)).await.unwrap();
        let backup = dir.path().join("b.redb");
        let info = store.backup(&backup).await.unwrap();
        // the CDN, and the database's notes: its schema, and that its reference index is built
        assert_eq!(info.records, 3);
        assert!(info.bytes > 0);
        assert!(store.backup(&backup).await.is_err(), "never overwrites");

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
