//! Consistent copies of a redb database: what the embedded store's `Store::backup` writes.
//!
//! Every table the caller names is copied as one read transaction sees it into a new database file
//! (written beside its final name, synced, then renamed), so the copy is a state the store really had,
//! whatever writes go on meanwhile. Nothing here knows the embedded store: it passes its database and
//! its tables, so this module imports no other of the crate.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use redb::{Database, ReadableTable as _, TableDefinition};
use usher_core::store::{BackupInfo, StoreError};

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

/// Makes a file's contents durable.
pub(crate) fn sync_file(path: &Path) -> Result<(), StoreError> {
    std::fs::File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(|e| unavailable("syncing the backup", e))
}

/// Writes the tables `bytes` and `text` of `db` to `dest`, a new file (an existing one is refused), as
/// one read transaction sees them.
///
/// # Errors
/// [`StoreError::Unavailable`] when the destination exists or cannot be written, or the database cannot
/// be read.
pub(crate) async fn write(
    db: Arc<Database>,
    bytes: &'static [TableDefinition<'static, &'static str, &'static [u8]>],
    text: &'static [TableDefinition<'static, &'static str, &'static str>],
    dest: &Path,
) -> Result<BackupInfo, StoreError> {
    if dest.exists() {
        return Err(StoreError::Unavailable(format!(
            "{} exists: a backup never overwrites a file",
            dest.display()
        )));
    }
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
            for t in bytes {
                records += copy_table!(read, write, *t);
            }
            for t in text {
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
