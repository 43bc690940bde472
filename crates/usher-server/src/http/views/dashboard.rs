//! The dashboard (`GET /api/v1/dashboard`, also what the console's first page shows).

use std::collections::BTreeMap;

use serde::Serialize;
use utoipa::ToSchema;

use super::cdns::CdnView;
use crate::service::admin::dashboard;

/// Live viewers per show, the last hour's admits and refusals, CDN health and the GeoIP database's age.
#[derive(Debug, Serialize, ToSchema)]
pub struct Dashboard {
    /// When the figures were taken.
    #[schema(format = DateTime)]
    pub at: String,
    /// Sessions holding a seat.
    pub live_viewers: usize,
    /// Live viewers per show, by show id.
    pub shows: Vec<ShowViewers>,
    /// Admits and refusals in the last hour.
    pub last_hour: LastHour,
    /// The CDN pool with its health.
    pub cdns: Vec<CdnView>,
    /// The GeoIP database.
    pub geoip: DashboardGeoIp,
}

/// A show's live viewers.
#[derive(Debug, Serialize, ToSchema)]
pub struct ShowViewers {
    /// The show (a session may outlive its show: then the title is empty).
    pub show_id: String,
    /// Its title.
    pub title: String,
    /// Whether it is published.
    pub published: bool,
    /// Sessions holding a seat.
    pub viewers: u64,
}

/// Admit outcomes in the last hour.
#[derive(Debug, Serialize, ToSchema)]
pub struct LastHour {
    /// Viewers let in (`admitted`, `reattached`).
    pub admits: u64,
    /// Viewers refused, whatever the reason.
    pub refusals_total: u64,
    /// Refusals by reason (an error code).
    pub refusals: Vec<Refusal>,
    /// Every outcome with its count.
    pub by_outcome: BTreeMap<String, u64>,
}

/// Refusals of one reason.
#[derive(Debug, Serialize, ToSchema)]
pub struct Refusal {
    /// The error code.
    pub reason: String,
    /// How many.
    pub count: u64,
}

/// The GeoIP database on the dashboard.
#[derive(Debug, Serialize, ToSchema)]
pub struct DashboardGeoIp {
    /// Whether a database serves lookups.
    pub loaded: bool,
    /// Its type.
    #[schema(required = true)]
    pub database_type: Option<String>,
    /// When it was built, Unix seconds.
    #[schema(required = true)]
    pub build_epoch: Option<u64>,
    /// Its age in whole days.
    #[schema(required = true)]
    pub age_days: Option<i64>,
}

impl From<&dashboard::Dashboard> for Dashboard {
    fn from(d: &dashboard::Dashboard) -> Self {
        let refusals: Vec<Refusal> = d
            .refusals
            .iter()
            .map(|(reason, count)| Refusal {
                reason: reason.clone(),
                count: *count,
            })
            .collect();
        Self {
            at: d.at.to_rfc3339(),
            live_viewers: d.live_viewers,
            shows: d
                .shows
                .iter()
                .map(|s| ShowViewers {
                    show_id: s.show_id.clone(),
                    title: s.title.clone(),
                    published: s.published,
                    viewers: s.viewers,
                })
                .collect(),
            last_hour: LastHour {
                admits: d.admits,
                refusals_total: refusals.iter().map(|r| r.count).sum(),
                refusals,
                by_outcome: d.by_outcome.clone(),
            },
            cdns: d.cdns.iter().map(CdnView::from).collect(),
            geoip: DashboardGeoIp {
                loaded: d.geoip_loaded,
                database_type: d.geoip_database_type.clone(),
                build_epoch: d.geoip_build_epoch,
                age_days: d.geoip_age_days,
            },
        }
    }
}
