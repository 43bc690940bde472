//! usher-store's integration tests, one binary: the contract suite against each backend, and what only one
//! backend promises. `sentinel` (a master, a replica and three sentinels) runs one at a time: see the
//! `processes` test group in `.config/nextest.toml`.

mod support {
    pub(crate) mod monitor;
}

mod cluster;
mod differential;
mod embedded;
mod redis;
mod sentinel;
