//! usher-geo's integration tests, one binary. The MaxMind DB fixtures stay in `tests/fixtures/` (the
//! modules and usher-server's tests read them from there).

mod database;
mod public_database;
mod reload;
