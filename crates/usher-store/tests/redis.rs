//! The store contract suite against a real `redis-server` (started per test on a unix socket, persistence
//! off). A missing `redis-server` fails these tests with a clear message; they never skip.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use usher_core::store::Store;
use usher_store::contract::Harness;
use usher_store::redis::{RedisConfig, RedisStore};
use usher_testkit::RedisServer;

struct Redis {
    _server: RedisServer,
    store: Arc<RedisStore>,
}

#[async_trait]
impl Harness for Redis {
    fn store(&self) -> Arc<dyn Store> {
        self.store.clone()
    }

    async fn advance_ms(&self, ms: i64) {
        // Redis's own clock decides lease expiry; it cannot be moved, so wait.
        tokio::time::sleep(Duration::from_millis(ms.max(0) as u64)).await;
    }
}

async fn redis() -> Redis {
    let server = RedisServer::start().expect("redis-server");
    let store = RedisStore::connect(RedisConfig {
        url: server.url(),
        key_prefix: "usher-test:".into(),
        connect_timeout: Duration::from_secs(2),
        response_timeout: Duration::from_secs(2),
        wait_replicas: 0,
        wait_timeout: Duration::from_millis(100),
        sentinel: None,
    })
    .await
    .expect("connect to redis");
    Redis {
        _server: server,
        store: Arc::new(store),
    }
}

usher_store::store_contract_tests!(redis());
