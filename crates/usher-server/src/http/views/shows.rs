//! Shows: a show is answered as the domain's [`Show`] (its own schema); the list wraps them.

use serde::Serialize;
use usher_core::show::Show;
use utoipa::ToSchema;

/// Every show.
#[derive(Debug, Serialize, ToSchema)]
pub struct ShowList {
    /// The shows, by id.
    pub shows: Vec<Show>,
}
