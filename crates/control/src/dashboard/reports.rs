//! The dashboard's pages beyond the live board: models and releases, drills and checklists,
//! the day reports, backtest and gate reports, and silences.

use std::collections::BTreeMap;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{action_body, blocking_answer, record_request, require, unavailable};
use crate::server::{State, invalid};

/// The longest silence the page sets, in hours (a week).
const MAX_SILENCE_HOURS: i64 = 24 * 7;
/// The drill runs shown (the newest).
const DRILLS_SHOWN: usize = 20;
/// The day reports shown (the newest).
const DAY_REPORTS_SHOWN: usize = 10;
/// The backtest and gate runs shown (the newest).
const BACKTESTS_SHOWN: u64 = 30;

/// Every registered model: its versions (with the gate's checks at registration), aliases,
/// and releases; the last open release with its shadow report against
/// `[release.shadow]`.
pub(super) async fn api_models(req: HttpRequest, state: web::Data<State>) -> HttpResponse {
    if let Err(r) = require(&req, &state) {
        return *r;
    }
    let (Some(store), Some(cfg)) = (&state.audit, &state.ui.opts.config) else {
        return HttpResponse::Ok().json(json!({"models": []}));
    };
    let entries = match store.registry_entries(None).await {
        Ok(e) => e,
        Err(e) => return unavailable(&state, "the registry cannot be read", e),
    };
    let mut by_name: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for e in &entries {
        by_name.entry(e.name.clone()).or_default().push(json!({
            "version": e.version,
            "status": e.status.as_str(),
            "created_at": e.created_at,
            "created_by": e.created_by,
            "artifact_sha256": e.artifact_sha256,
            "parent_version": e.parent_version,
            "gate_skipped": e.gate_skipped,
            "gate_checks": e.gate_checks.as_deref().map(|g| serde_json::from_str::<Value>(g)
                .unwrap_or_else(|err| json!({"error": format!("the stored gate checks are not JSON: {err}")}))),
        }));
    }
    let calendar = cfg.calendar.calendar();
    let mut models = Vec::new();
    for (name, versions) in by_name {
        let aliases = match store.registry_aliases(&name).await {
            Ok(a) => a,
            Err(e) => return unavailable(&state, &format!("{name}'s aliases"), e),
        };
        let releases = match store.releases(&name).await {
            Ok(r) => r,
            Err(e) => return unavailable(&state, &format!("{name}'s releases"), e),
        };
        let shadow = match releases.iter().rev().find(|r| r.state.is_open()) {
            None => Value::Null,
            Some(open) => match store.shadow_sessions(open.id).await {
                Err(e) => {
                    return unavailable(
                        &state,
                        &format!("release {}'s shadow figures", open.id),
                        e,
                    );
                }
                Ok(rows) => match (vigil_deploy::shadow::stored(&rows), &calendar) {
                    (Err(e), _) => json!({"error": e}),
                    (_, Err(e)) => json!({"error": format!("calendar: {e}")}),
                    (Ok(sessions), Ok(cal)) => {
                        let trading = |d| matches!(cal.is_trading_day(d), Ok(true));
                        json!({
                            "release": open.id,
                            "sessions": sessions.len(),
                            "report": vigil_deploy::shadow::report(&sessions, trading, &cfg.release.shadow),
                        })
                    }
                },
            },
        };
        models.push(json!({
            "name": name,
            "versions": versions,
            "aliases": aliases,
            "releases": releases,
            "shadow": shadow,
        }));
    }
    HttpResponse::Ok().json(json!({ "models": models }))
}

/// The newest drill runs with their scores and checks.
pub(super) async fn api_drills(req: HttpRequest, state: web::Data<State>) -> HttpResponse {
    if let Err(r) = require(&req, &state) {
        return *r;
    }
    let Some(store) = &state.audit else {
        return HttpResponse::Ok().json(json!({"runs": []}));
    };
    let since = vigil_core::later(state.wall.now(), -chrono::Duration::days(400));
    let runs = match store.drill_runs_since(since).await {
        Ok(r) => r,
        Err(e) => return unavailable(&state, "the drill runs cannot be read", e),
    };
    let runs: Vec<Value> = runs
        .iter()
        .rev()
        .take(DRILLS_SHOWN)
        .map(|r| {
            json!({
                "drill": r.drill,
                "started_at": r.started_at,
                "finished_at": r.finished_at,
                "passed": r.passed,
                "checks_passed": r.checks_passed,
                "checks_total": r.checks_total,
                "report": serde_json::from_str::<Value>(&r.report)
                    .unwrap_or_else(|e| json!({"error": format!("the stored report is not JSON: {e}")})),
            })
        })
        .collect();
    HttpResponse::Ok().json(json!({ "runs": runs }))
}

/// The last report of each checklist, and the newest day reports, from `checklist.dir`.
pub(super) async fn api_checklists(req: HttpRequest, state: web::Data<State>) -> HttpResponse {
    if let Err(r) = require(&req, &state) {
        return *r;
    }
    let Some(dir) = state.ui.checklist_dir() else {
        return HttpResponse::Ok().json(json!({"checklists": [], "day_reports": []}));
    };
    let read = web::block(move || read_reports(&dir)).await;
    blocking_answer(&state, read, "the checklist folder cannot be read", |v| {
        HttpResponse::Ok().json(v)
    })
}

fn read_reports(dir: &std::path::Path) -> Result<Value, String> {
    let names: Vec<String> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .map(|e| {
                e.map(|e| e.file_name().to_string_lossy().to_string())
                    .map_err(|e| format!("{}: {e}", dir.display()))
            })
            .collect::<Result<_, _>>()?,
        // Nothing run yet: no folder.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(format!("{}: {e}", dir.display())),
    };
    let read_json = |name: &str| -> Value {
        std::fs::read_to_string(dir.join(name))
            .map_err(|e| e.to_string())
            .and_then(|t| serde_json::from_str::<Value>(&t).map_err(|e| e.to_string()))
            .unwrap_or_else(|e| json!({"error": format!("{name}: {e}")}))
    };
    let mut checklists = Vec::new();
    for kind in ["premarket", "postclose", "weekly", "monthly"] {
        // `<kind>-YYYYMMDDTHHMMSSZ.json`: the newest sorts last.
        let newest = names
            .iter()
            .filter(|n| n.starts_with(&format!("{kind}-")) && n.ends_with(".json"))
            .max();
        if let Some(n) = newest {
            checklists.push(json!({"file": n, "report": read_json(n)}));
        }
    }
    let mut days: Vec<&String> = names
        .iter()
        .filter(|n| day_report_name(n).is_some_and(|ext| ext == "json"))
        .collect();
    days.sort();
    let day_reports: Vec<Value> = days
        .iter()
        .rev()
        .take(DAY_REPORTS_SHOWN)
        .map(|n| {
            let stem = n.trim_end_matches(".json");
            let report = read_json(n);
            json!({
                "session": stem.trim_start_matches("day-"),
                "headline": report["headline"].clone(),
                "text": format!("/ui/reports/{stem}.txt"),
                "chart": names.contains(&format!("{stem}.png")).then(|| format!("/ui/reports/{stem}.png")),
            })
        })
        .collect();
    Ok(json!({ "checklists": checklists, "day_reports": day_reports }))
}

/// `day-YYYY-MM-DD.EXT` with EXT one of txt, json, png: the extension; else `None`.
fn day_report_name(name: &str) -> Option<&str> {
    let rest = name.strip_prefix("day-")?;
    let (date, ext) = rest.split_once('.')?;
    chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").ok()?;
    ["txt", "json", "png"].contains(&ext).then_some(ext)
}

/// The newest backtest and gate runs, from the store: each one's model, data, verdict,
/// the headline figures of each layer, and its page.
pub(super) async fn api_backtests(req: HttpRequest, state: web::Data<State>) -> HttpResponse {
    if let Err(r) = require(&req, &state) {
        return *r;
    }
    let Some(store) = &state.audit else {
        return HttpResponse::Ok().json(json!({"runs": []}));
    };
    let runs = match store.backtest_reports(BACKTESTS_SHOWN).await {
        Ok(r) => r,
        Err(e) => return unavailable(&state, "the backtest reports cannot be read", e),
    };
    let runs: Vec<Value> = runs.iter().map(|(id, r)| backtest_row(*id, r)).collect();
    HttpResponse::Ok().json(json!({ "runs": runs }))
}

/// One run as the page lists it: the figures a trader reads first, per layer; a gate's
/// failed checks.
fn backtest_row(id: u64, r: &vigil_store::BacktestReport) -> Value {
    let summary: Value = serde_json::from_str(&r.summary)
        .unwrap_or_else(|e| json!({"error": format!("the stored figures are not JSON: {e}")}));
    let layers: Vec<Value> = summary["backtest"]["layers"]
        .as_array()
        .map(|layers| {
            layers
                .iter()
                .map(|l| {
                    let s = &l["summary"];
                    json!({
                        "layer": l["layer"],
                        "total_return": s["total_return"],
                        // A ratio is `{"value": …}`, or `{"value": null, "withheld": why}`
                        // on too little data.
                        "sharpe": s["sharpe"]["value"],
                        "sharpe_withheld": s["sharpe"]["withheld"],
                        "max_drawdown": s["max_drawdown"],
                        "trades": s["trades"],
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let failed: Vec<String> = summary["checks"]
        .as_array()
        .map(|checks| {
            checks
                .iter()
                .filter(|c| c["passed"] == false)
                .map(|c| {
                    format!(
                        "{} {} = {} (needs {})",
                        c["layer"].as_str().unwrap_or("?"),
                        c["check"].as_str().unwrap_or("?"),
                        c["value"].as_str().unwrap_or("?"),
                        c["threshold"].as_str().unwrap_or("?"),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    json!({
        "id": id,
        "model": format!("{}@{}", r.model, r.version),
        "command": r.command,
        "data": r.data,
        "data_sha256": r.data_sha256,
        "at": r.at,
        "verdict": r.verdict,
        "layers": layers,
        "failed": failed,
        "error": summary.get("error"),
        "page": format!("/ui/reports/backtest-{id}.html"),
    })
}

/// `backtest-ID.html`: the id; else `None`.
fn backtest_page_name(name: &str) -> Option<u64> {
    let id = name.strip_prefix("backtest-")?.strip_suffix(".html")?;
    // Digits only: no sign, no space.
    id.bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| id.parse().ok())
        .flatten()
}

/// A backtest's page from the store. It is the run's own page, shown as it was made: no
/// script may run in it, and it shows nothing from elsewhere.
async fn backtest_page(id: u64, state: &State) -> HttpResponse {
    let Some(store) = &state.audit else {
        return HttpResponse::NotFound().json(json!({"error": "this server has no store"}));
    };
    match store.backtest_report_page(id).await {
        Err(e) => unavailable(state, &format!("backtest report {id}"), e),
        Ok(None) => {
            HttpResponse::NotFound().json(json!({"error": format!("no backtest report {id}")}))
        }
        Ok(Some(html)) => HttpResponse::Ok()
            .content_type("text/html; charset=utf-8")
            .insert_header((header::CACHE_CONTROL, "no-cache"))
            .insert_header(("X-Frame-Options", "DENY"))
            .insert_header((
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'unsafe-inline'; img-src data:; \
                 frame-ancestors 'none'; sandbox",
            ))
            .body(html),
    }
}

/// A day report's text or chart, by its file name only (nothing else of the folder), or a
/// backtest's page (`backtest-ID.html`, from the store).
pub(super) async fn report_file(
    req: HttpRequest,
    name: web::Path<String>,
    state: web::Data<State>,
) -> HttpResponse {
    if let Err(r) = require(&req, &state) {
        return *r;
    }
    if let Some(id) = backtest_page_name(&name) {
        return backtest_page(id, &state).await;
    }
    let Some(ext) = day_report_name(&name) else {
        return HttpResponse::NotFound().json(json!({"error": format!(
            "{name:?} is not a report (day-YYYY-MM-DD.txt|png, backtest-ID.html)"
        )}));
    };
    let kind = match ext {
        "png" => "image/png",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/json",
    };
    let Some(dir) = state.ui.checklist_dir() else {
        return HttpResponse::NotFound().json(json!({"error": "no checklist folder"}));
    };
    let path = dir.join(name.as_str());
    let read = web::block(move || std::fs::read(&path)).await;
    if let Ok(Err(e)) = &read
        && e.kind() == std::io::ErrorKind::NotFound
    {
        return HttpResponse::NotFound().json(json!({"error": format!("no {name}")}));
    }
    blocking_answer(&state, read, &format!("{name} cannot be read"), |bytes| {
        HttpResponse::Ok()
            .content_type(kind)
            .insert_header((header::CACHE_CONTROL, "no-cache"))
            .body(bytes)
    })
}

/// A promotion from the page.
#[derive(Deserialize)]
struct PromoteBody {
    model: String,
    version: String,
    reason: String,
}

/// Promotes a registered version to production in the registry, as `vigil model promote`
/// does (the registry's own audit, a `model_promoted` line); the answer names the model
/// to switch the running session to (`name@semver`), which the page then asks for with
/// the audited `switch_model` command, as the CLI does.
pub(super) async fn api_promote(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<State>,
) -> HttpResponse {
    let expected = "{\"model\": …, \"version\": …, \"reason\": …}";
    let (s, b) = match action_body::<PromoteBody>(&req, &state, &body, expected) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let plain = |t: &str| !t.trim().is_empty() && vigil_core::first_control(t).is_none();
    if !plain(&b.model) || !plain(&b.version) || !plain(&b.reason) {
        return invalid(
            &state,
            &req,
            "model, version and reason: plain text, not blank".into(),
        );
    }
    let Some(store) = &state.audit else {
        return unavailable(&state, "promote", "this server has no store");
    };
    let reg = match vigil_deploy::registry::Registry::read(&**store, &b.model).await {
        Ok(r) => r,
        Err(e) => return unavailable(&state, &format!("{}'s registry", b.model), e),
    };
    let who = format!("dashboard:{}", s.who);
    let actor = vigil_deploy::registry::Actor {
        who: &who,
        reason: b.reason.trim(),
        at: state.wall.now(),
    };
    let write = match vigil_deploy::registry::promote(&reg, &b.version, &actor) {
        Ok(w) => w,
        Err(e) => {
            return HttpResponse::Conflict().json(json!({"ok": false, "error": e.to_string()}));
        }
    };
    if let Err(e) = store.registry_apply(&write).await {
        return unavailable(&state, "the promotion cannot be recorded", e);
    }
    let a = &write.audit;
    state.emit(
        state
            .event(vigil_log::Event::ModelPromoted)
            .with("model", a.name.clone())
            .with("version", a.version.clone())
            .with("by", a.actor.clone())
            .with("reason", a.reason.clone())
            .with("detail", a.detail.clone()),
    );
    let label = format!(
        "{}@{}",
        b.model,
        vigil_deploy::registry::semver_of(&a.version)
    );
    HttpResponse::Ok().json(json!({
        "ok": true,
        "outcome": format!("{} {} promoted by {who}: {}", b.model, a.version, a.detail),
        "switch_to": label,
    }))
}

/// A silence from the page: the alerts whose labels match, for some hours.
#[derive(Deserialize)]
struct SilenceBody {
    matchers: BTreeMap<String, String>,
    hours: i64,
    reason: String,
}

pub(super) async fn api_silence(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<State>,
) -> HttpResponse {
    let expected = "{\"matchers\": {\"rule\": \"…\"}, \"hours\": N, \"reason\": \"…\"}";
    let (s, b) = match action_body::<SilenceBody>(&req, &state, &body, expected) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let plain = |t: &str| !t.trim().is_empty() && vigil_core::first_control(t).is_none();
    if b.matchers.is_empty() || !b.matchers.iter().all(|(k, v)| plain(k) && plain(v)) {
        return invalid(
            &state,
            &req,
            "matchers: at least one label = value, in plain text".into(),
        );
    }
    if !(1..=MAX_SILENCE_HOURS).contains(&b.hours) {
        return invalid(
            &state,
            &req,
            format!("hours: from 1 to {MAX_SILENCE_HOURS}, got {}", b.hours),
        );
    }
    if !plain(&b.reason) {
        return invalid(&state, &req, "reason: say why, in plain text".into());
    }
    let now = state.wall.now();
    let command = vigil_alert::AlertCommand::Silence(vigil_alert::SilenceRequest {
        matchers: b.matchers,
        starts: now,
        ends: vigil_core::later(now, chrono::Duration::hours(b.hours)),
        reason: b.reason.trim().to_string(),
    });
    record_request(
        &req,
        &state,
        &s,
        &command,
        &format!("silence for {} h", b.hours),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_day_report_files_are_served() {
        assert_eq!(day_report_name("day-2026-12-04.png"), Some("png"));
        assert_eq!(day_report_name("day-2026-12-04.txt"), Some("txt"));
        for bad in [
            "day-2026-12-04.png/../../control.token",
            "../day-2026-12-04.png",
            "day-2026-13-04.png",
            "day-2026-12-04.sh",
            "premarket-20261204T090000Z.json",
            "control.token",
        ] {
            assert_eq!(day_report_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn only_backtest_page_names_with_a_plain_id_are_taken() {
        assert_eq!(backtest_page_name("backtest-7.html"), Some(7));
        assert_eq!(backtest_page_name("backtest-0012.html"), Some(12));
        for bad in [
            "backtest-.html",
            "backtest-+7.html",
            "backtest--7.html",
            "backtest-7.htm",
            "backtest-7.html/../x",
            "backtest-99999999999999999999999.html",
            "day-2026-12-04.png",
        ] {
            assert_eq!(backtest_page_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_gate_run_lists_its_layers_figures_and_its_failed_checks() {
        let summary = json!({
            "verdict": "failed",
            "checks": [
                {"layer": "vectorized", "check": "sharpe", "threshold": ">= 0.5", "value": "0.21", "passed": false},
                {"layer": "oms", "check": "trades", "threshold": ">= 30", "value": "44", "passed": true},
            ],
            "backtest": {"layers": [
                {"layer": "vectorized", "summary": {"total_return": 0.12, "sharpe": {"value": 0.21}, "max_drawdown": 0.08, "trades": 44}},
                {"layer": "oms", "summary": {"total_return": 0.11, "sharpe": {"value": null, "withheld": "18 days < 90"}, "max_drawdown": 0.09, "trades": 44}},
            ]},
        });
        let r = vigil_store::BacktestReport {
            model: "ema_cross".into(),
            version: "1.0.0".into(),
            command: "gate".into(),
            data: "data/GOOG_1d.csv".into(),
            data_sha256: "ab".repeat(32),
            at: "2026-12-04T10:00:00Z".parse().expect("ts"),
            verdict: Some("failed".into()),
            summary: summary.to_string(),
        };
        let row = backtest_row(3, &r);
        assert_eq!(row["model"], "ema_cross@1.0.0");
        assert_eq!(row["page"], "/ui/reports/backtest-3.html");
        assert_eq!(row["layers"][1]["layer"], "oms");
        assert_eq!(row["layers"][0]["sharpe"], 0.21);
        assert_eq!(row["layers"][1]["sharpe"], Value::Null);
        assert_eq!(row["layers"][1]["sharpe_withheld"], "18 days < 90");
        assert_eq!(row["layers"][0]["trades"], 44);
        assert_eq!(
            row["failed"],
            json!(["vectorized sharpe = 0.21 (needs >= 0.5)"])
        );
        let broken = vigil_store::BacktestReport {
            summary: "{".into(),
            ..r
        };
        let row = backtest_row(4, &broken);
        assert!(
            row["error"]
                .as_str()
                .is_some_and(|e| e.contains("not JSON")),
            "{row}"
        );
        assert_eq!(row["layers"], json!([]));
    }

    #[test]
    fn the_newest_checklist_of_each_kind_and_the_day_reports_are_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let w = |n: &str, t: &str| std::fs::write(dir.path().join(n), t).expect("write");
        w("premarket-20261203T141500Z.json", r#"{"status":"fail"}"#);
        w("premarket-20261204T141500Z.json", r#"{"status":"pass"}"#);
        w("monthly-20261201T120000Z.json", "not json");
        w("day-2026-12-04.json", r#"{"headline":"+120.00 (0.12%)"}"#);
        w("day-2026-12-04.png", "png");
        w("day-2026-12-03.json", r#"{"headline":"-3.00"}"#);
        let v = read_reports(dir.path()).expect("read");
        let lists = v["checklists"].as_array().expect("list");
        assert_eq!(lists[0]["file"], "premarket-20261204T141500Z.json");
        assert_eq!(lists[0]["report"]["status"], "pass");
        assert!(
            lists[1]["report"]["error"]
                .as_str()
                .is_some_and(|e| e.starts_with("monthly-20261201T120000Z.json: ")),
            "{v}"
        );
        let days = v["day_reports"].as_array().expect("days");
        assert_eq!(days[0]["session"], "2026-12-04");
        assert_eq!(days[0]["chart"], "/ui/reports/day-2026-12-04.png");
        assert_eq!(days[1]["chart"], Value::Null);
        assert_eq!(days[1]["headline"], "-3.00");
        let none = read_reports(&dir.path().join("absent")).expect("no folder yet");
        assert_eq!(none["checklists"], json!([]));
    }
}
