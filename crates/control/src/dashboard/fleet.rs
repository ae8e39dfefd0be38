//! The dashboard's fleet view: every node of the session's `[fleet]` as `vigil fleet
//! status` reads it from NATS (its lease, its newest line, and the central monitor's view
//! of it when `vigil fleet watch` runs).

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};

use super::{require, unavailable};
use crate::server::State;

/// `GET /ui/api/fleet`: `{"configured": false}` without `[fleet]`; else this node's name,
/// the server (its password hidden), and every node, each with its P&L. NATS that cannot be
/// read is 503, logged.
pub(super) async fn api_fleet(req: HttpRequest, state: web::Data<State>) -> HttpResponse {
    if let Err(r) = require(&req, &state) {
        return *r;
    }
    let Some(fleet) = state.ui.opts.config.as_ref().and_then(|c| c.fleet.as_ref()) else {
        return HttpResponse::Ok().json(json!({ "configured": false }));
    };
    let nodes = match vigil_fleet::status::read(&fleet.url, &fleet.stream, state.wall.now()).await {
        Ok(n) => n,
        Err(e) => return unavailable(&state, "the fleet cannot be read from NATS", e),
    };
    let nodes: Vec<Value> = nodes.iter().map(node_row).collect();
    HttpResponse::Ok().json(json!({
        "configured": true,
        "node": fleet.node,
        "url": vigil_config::redact_url(&fleet.url),
        "stream": fleet.stream,
        "nodes": nodes,
    }))
}

/// One node as the page shows it: its status, and its P&L when the monitor read both its
/// equity and its starting cash.
fn node_row(n: &vigil_fleet::NodeStatus) -> Value {
    let pnl = n.view.as_ref().and_then(vigil_fleet::watch::NodeView::pnl);
    match serde_json::to_value(n) {
        Ok(mut v) => {
            v["pnl"] = json!(pnl);
            v
        }
        Err(e) => json!({ "node": n.node, "state": n.state, "error": e.to_string() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_carries_the_status_and_the_pnl() {
        let view = vigil_fleet::watch::NodeView {
            equity: Some(rust_decimal::Decimal::new(1_002_550, 2)),
            initial_cash: Some(rust_decimal::Decimal::new(10_000, 0)),
            ready: Some(true),
            ..Default::default()
        };
        let n = vigil_fleet::NodeStatus {
            node: "node-1".into(),
            state: "up",
            lease_age_s: 0.4,
            lease_s: 3,
            last_seq: Some(41),
            last_event: Some("health_snapshot".into()),
            last_at: None,
            lines: 41,
            view: Some(view),
        };
        let row = node_row(&n);
        assert_eq!(row["node"], "node-1");
        assert_eq!(row["state"], "up");
        assert_eq!(row["pnl"], "25.50");
        assert_eq!(row["view"]["ready"], true);
        let bare = vigil_fleet::NodeStatus { view: None, ..n };
        assert!(node_row(&bare)["pnl"].is_null());
    }
}
