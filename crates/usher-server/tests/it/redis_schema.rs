//! `usher redis-schema`: what a Redis is stamped with, and the upgrade from schema 1 (0.2's seats as JSON
//! strings) or 2 to this build's, against a real `redis-server`.

use std::path::PathBuf;

fn usher_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_usher"))
}

async fn redis_schema(config: &std::path::Path, upgrade: bool) -> (bool, String) {
    let mut cmd = tokio::process::Command::new(usher_bin());
    cmd.arg("redis-schema").arg("--config").arg(config);
    if upgrade {
        cmd.arg("--upgrade");
    }
    let out = cmd.output().await.unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

async fn stamp(con: &mut redis::aio::MultiplexedConnection, schema: u32) {
    let _: () = redis::cmd("SET")
        .arg("schema-test:schema")
        .arg(schema)
        .query_async(con)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_schema_is_printed_and_moved_to_this_builds_once() {
    let redis = usher_testkit::RedisServer::start().unwrap();
    let client = redis::Client::open(redis.url()).unwrap();
    let mut con = client.get_multiplexed_async_connection().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("usher.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {:?}\n[store]\nkind = \"redis\"\nurl = {:?}\nkey_prefix = \"schema-test:\"\n\
             [secrets]\ntoken_key = \"redis-schema-token-key-0123456789abcdef\"\n\
             grant_key = \"redis-schema-grant-key-0123456789abcdef\"\n",
            dir.path().join("data"),
            redis.url()
        ),
    )
    .unwrap();

    // a database of 0.2 (stamped 1) stays on 1 until asked
    stamp(&mut con, 1).await;
    let (ok, text) = redis_schema(&config, false).await;
    assert!(ok && text.contains("schema 1 "), "{text}");
    let (ok, text) = redis_schema(&config, true).await;
    assert!(ok && text.contains("schema 1 -> 3"), "{text}");
    let stamped: String = redis::cmd("GET")
        .arg("schema-test:schema")
        .query_async(&mut con)
        .await
        .unwrap();
    assert_eq!(stamped, "3");
    let (ok, text) = redis_schema(&config, true).await;
    assert!(
        ok && text.contains("schema 3 "),
        "again: nothing to do: {text}"
    );

    // a database of the build before (stamped 2, the seats' hash without admits by fields) moves too
    stamp(&mut con, 2).await;
    let (ok, text) = redis_schema(&config, false).await;
    assert!(ok && text.contains("schema 2 "), "{text}");
    let (ok, text) = redis_schema(&config, true).await;
    assert!(ok && text.contains("schema 2 -> 3"), "{text}");

    // a stamp from a newer release is refused, untouched
    stamp(&mut con, 9).await;
    let (ok, text) = redis_schema(&config, true).await;
    assert!(!ok && text.contains("schema 9"), "{text}");

    // the embedded store has no schema to move
    let embedded = dir.path().join("embedded.toml");
    std::fs::write(
        &embedded,
        "[secrets]\ntoken_key = \"redis-schema-token-key-0123456789abcdef\"\n\
         grant_key = \"redis-schema-grant-key-0123456789abcdef\"\n",
    )
    .unwrap();
    let (ok, text) = redis_schema(&embedded, false).await;
    assert!(!ok && text.contains("not Redis"), "{text}");
}
