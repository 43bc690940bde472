//! The admin console: server-rendered pages under `/admin` (minijinja, like the watch page), plain HTML
//! forms that work without script, and `web/src/admin.js` for what script improves (the dashboard and
//! sessions refresh by themselves, uploads, names of countries, confirmations).
//!
//! Every form posts to a handler here that calls the same action function as the JSON API (one function
//! per action, taking the [`Caller`]), so authorization and the audit log are decided once. Every route
//! is declared in one table, [`route_table`], from which the router is built and which the
//! authorization tests walk: a route cannot be added without its permission.

pub mod forms;
pub mod frame;
pub mod pages;

use axum::Router;
use axum::http::Method;
use axum::routing::{MethodRouter, get, post};
use usher_core::admin::Permission;

use crate::state::AppState;

pub use frame::{Access, ConsoleError, ConsoleForm, ConsolePage};

/// One console route: method, path, an example path for tests, and who may use it.
#[derive(Debug, Clone)]
pub struct RouteInfo {
    /// GET (a page) or POST (a form).
    pub method: Method,
    /// The route as the router knows it.
    pub path: &'static str,
    /// The path with example parameters.
    pub example: &'static str,
    /// Who may use it.
    pub access: Access,
}

struct Route {
    info: RouteInfo,
    handler: MethodRouter<AppState>,
}

fn r(
    method: Method,
    path: &'static str,
    example: &'static str,
    access: Access,
    handler: MethodRouter<AppState>,
) -> Route {
    Route {
        info: RouteInfo {
            method,
            path,
            example,
            access,
        },
        handler,
    }
}

fn table() -> Vec<Route> {
    use Access::{AnyUser, Needs, Public};
    use Permission::{EndSessions, ErasePersonalData, Manage, Read, ReadTickets, RevokeTickets};
    let g = Method::GET;
    let p = Method::POST;
    vec![
        r(
            g.clone(),
            "/admin",
            "/admin",
            Needs(Read),
            get(pages::dashboard),
        ),
        r(
            g.clone(),
            "/admin/login",
            "/admin/login",
            Public,
            get(pages::login_page),
        ),
        r(
            p.clone(),
            "/admin/login",
            "/admin/login",
            Public,
            post(forms::login),
        ),
        r(
            p.clone(),
            "/admin/logout",
            "/admin/logout",
            AnyUser,
            post(forms::logout),
        ),
        r(
            g.clone(),
            "/admin/password",
            "/admin/password",
            AnyUser,
            get(pages::password_page),
        ),
        r(
            p.clone(),
            "/admin/password",
            "/admin/password",
            AnyUser,
            post(forms::change_password),
        ),
        r(
            g.clone(),
            "/admin/shows",
            "/admin/shows",
            Needs(Read),
            get(pages::shows),
        ),
        r(
            p.clone(),
            "/admin/shows",
            "/admin/shows",
            Needs(Manage),
            post(forms::save_show),
        ),
        r(
            g.clone(),
            "/admin/shows/new",
            "/admin/shows/new",
            Needs(Manage),
            get(pages::new_show),
        ),
        r(
            g.clone(),
            "/admin/shows/{id}",
            "/admin/shows/demo",
            Needs(Read),
            get(pages::show),
        ),
        r(
            p.clone(),
            "/admin/shows/{id}/publish",
            "/admin/shows/demo/publish",
            Needs(Manage),
            post(forms::publish_show),
        ),
        r(
            p.clone(),
            "/admin/shows/{id}/delete",
            "/admin/shows/demo/delete",
            Needs(Manage),
            post(forms::delete_show),
        ),
        r(
            p.clone(),
            "/admin/shows/{id}/preview",
            "/admin/shows/demo/preview",
            Needs(Manage),
            post(forms::preview_show),
        ),
        r(
            p.clone(),
            "/admin/shows/{id}/stream-key",
            "/admin/shows/demo/stream-key",
            Needs(Manage),
            post(forms::rotate_stream_key),
        ),
        r(
            g.clone(),
            "/admin/tickets",
            "/admin/tickets",
            Needs(ReadTickets),
            get(pages::tickets),
        ),
        r(
            g.clone(),
            "/admin/tickets/{id}",
            "/admin/tickets/t_000000000000000000000000",
            Needs(ReadTickets),
            get(pages::ticket),
        ),
        r(
            p.clone(),
            "/admin/tickets/{id}/revoke",
            "/admin/tickets/t_000000000000000000000000/revoke",
            Needs(RevokeTickets),
            post(forms::revoke_ticket),
        ),
        r(
            p.clone(),
            "/admin/tickets/{id}/erase-personal-data",
            "/admin/tickets/t_000000000000000000000000/erase-personal-data",
            Needs(ErasePersonalData),
            post(forms::erase_personal_data),
        ),
        r(
            g.clone(),
            "/admin/sessions",
            "/admin/sessions",
            Needs(Read),
            get(pages::sessions),
        ),
        r(
            p.clone(),
            "/admin/sessions/{id}/end",
            "/admin/sessions/s_00000000000000000000000000000000/end",
            Needs(EndSessions),
            post(forms::end_session),
        ),
        r(
            g.clone(),
            "/admin/cdns",
            "/admin/cdns",
            Needs(Read),
            get(pages::cdns),
        ),
        r(
            p.clone(),
            "/admin/cdns",
            "/admin/cdns",
            Needs(Manage),
            post(forms::save_cdn),
        ),
        r(
            g.clone(),
            "/admin/cdns/new",
            "/admin/cdns/new",
            Needs(Manage),
            get(pages::new_cdn),
        ),
        r(
            g.clone(),
            "/admin/cdns/{id}",
            "/admin/cdns/origin",
            Needs(Read),
            get(pages::cdn),
        ),
        r(
            p.clone(),
            "/admin/cdns/{id}/enabled",
            "/admin/cdns/origin/enabled",
            Needs(Manage),
            post(forms::enable_cdn),
        ),
        r(
            p.clone(),
            "/admin/cdns/{id}/delete",
            "/admin/cdns/edge/delete",
            Needs(Manage),
            post(forms::delete_cdn),
        ),
        r(
            p.clone(),
            "/admin/cdns/{id}/test",
            "/admin/cdns/edge/test",
            Needs(Manage),
            post(forms::test_cdn),
        ),
        r(
            g.clone(),
            "/admin/geoip",
            "/admin/geoip",
            Needs(Read),
            get(pages::geoip),
        ),
        r(
            p.clone(),
            "/admin/geoip/reload",
            "/admin/geoip/reload",
            Needs(Manage),
            post(forms::reload_geoip),
        ),
        r(
            g.clone(),
            "/admin/api-keys",
            "/admin/api-keys",
            Needs(Read),
            get(pages::api_keys),
        ),
        r(
            p.clone(),
            "/admin/api-keys",
            "/admin/api-keys",
            Needs(Manage),
            post(forms::create_api_key),
        ),
        r(
            p.clone(),
            "/admin/api-keys/{id}/delete",
            "/admin/api-keys/k_0000000000000000/delete",
            Needs(Manage),
            post(forms::delete_api_key),
        ),
        r(
            g.clone(),
            "/admin/webhooks",
            "/admin/webhooks",
            Needs(Read),
            get(pages::webhooks_list),
        ),
        r(
            p.clone(),
            "/admin/webhooks",
            "/admin/webhooks",
            Needs(Manage),
            post(forms::create_webhook),
        ),
        r(
            g.clone(),
            "/admin/webhooks/{id}",
            "/admin/webhooks/wh_0000000000000000",
            Needs(Read),
            get(pages::webhook),
        ),
        r(
            p.clone(),
            "/admin/webhooks/{id}/enabled",
            "/admin/webhooks/wh_0000000000000000/enabled",
            Needs(Manage),
            post(forms::enable_webhook),
        ),
        r(
            p.clone(),
            "/admin/webhooks/{id}/secret",
            "/admin/webhooks/wh_0000000000000000/secret",
            Needs(Manage),
            post(forms::rotate_webhook_secret),
        ),
        r(
            p.clone(),
            "/admin/webhooks/{id}/delete",
            "/admin/webhooks/wh_0000000000000000/delete",
            Needs(Manage),
            post(forms::delete_webhook),
        ),
        r(
            p.clone(),
            "/admin/webhooks/{id}/resend",
            "/admin/webhooks/wh_0000000000000000/resend",
            Needs(Manage),
            post(forms::resend_webhook_delivery),
        ),
        r(
            g.clone(),
            "/admin/users",
            "/admin/users",
            Needs(Read),
            get(pages::users),
        ),
        r(
            p.clone(),
            "/admin/users",
            "/admin/users",
            Needs(Manage),
            post(forms::add_user),
        ),
        r(
            p.clone(),
            "/admin/users/{name}/role",
            "/admin/users/someone/role",
            Needs(Manage),
            post(forms::set_role),
        ),
        r(
            p.clone(),
            "/admin/users/{name}/reset",
            "/admin/users/someone/reset",
            Needs(Manage),
            post(forms::reset_password),
        ),
        r(
            p.clone(),
            "/admin/users/{name}/unlock",
            "/admin/users/someone/unlock",
            Needs(Manage),
            post(forms::unlock_user),
        ),
        r(
            p.clone(),
            "/admin/users/{name}/delete",
            "/admin/users/someone/delete",
            Needs(Manage),
            post(forms::delete_user),
        ),
        r(
            g.clone(),
            "/admin/audit",
            "/admin/audit",
            Needs(Read),
            get(pages::audit),
        ),
        r(
            g,
            "/admin/audit.csv",
            "/admin/audit.csv",
            Needs(Read),
            get(pages::audit_csv),
        ),
    ]
}

/// Every console route with its access rule (the router is built from the same table).
pub fn route_table() -> Vec<RouteInfo> {
    table().into_iter().map(|r| r.info).collect()
}

/// The console's routes.
pub fn router(state: &AppState) -> Router<AppState> {
    let mut router = Router::new();
    for route in table() {
        let guarded = route.handler.layer(axum::middleware::from_fn_with_state(
            (state.clone(), route.info.access),
            frame::guard,
        ));
        router = router.route(route.info.path, guarded);
    }
    router.route(
        "/admin/",
        get(|| async { axum::response::Redirect::to("/admin") }),
    )
}
