//! Minimal IronFix initiator against the QuickFIX acceptor.
//! Evaluation sample (docs/fix-evaluation.md), kept as evidence: not part of the build and
//! not held to the project's rules (it parses its arguments with `.ok()`).
//! usage: ironfix-sample <orders|idle SECS>   env LOWER_TARGET=N lowers the stored next target seq at start.
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use ironfix_core::error::StoreError;
use ironfix_core::message::RawMessage;
use ironfix_core::types::CompId;
use ironfix_core::{MsgType, Timestamp};
use ironfix_engine::application::{Application, RejectReason, SessionId};
use ironfix_engine::{FrameObserver, Initiator, Observation, OutboundMessage};
use ironfix_session::SessionConfigBuilder;
use ironfix_store::file::FileStoreConfig;
use ironfix_store::{FileStore, MessageStore, StoredMessage};

fn show(b: &[u8]) -> String {
    String::from_utf8_lossy(b).replace('\x01', "|")
}

/// Stand-in for vigil's own (sqlx) store: delegates to the FileStore and logs what the engine asks.
struct VigilStore<S> {
    inner: S,
}

#[async_trait]
impl<S: MessageStore> MessageStore for VigilStore<S> {
    async fn store(&self, seq: u64, t: &MsgType, m: &[u8]) -> Result<(), StoreError> {
        println!("[store] store seq={seq} 35={}", t.as_str());
        self.inner.store(seq, t, m).await
    }
    async fn get_range(&self, b: u64, e: u64) -> Result<Vec<StoredMessage>, StoreError> {
        let r = self.inner.get_range(b, e).await;
        println!("[store] get_range {b}..={e} -> {:?}", r.as_ref().map(|v| v.len()));
        r
    }
    async fn file_outbound(&self, seq: u64, t: &MsgType, m: &[u8], next: u64) -> Result<(), StoreError> {
        println!("[store] file_outbound seq={seq} 35={} next_sender={next}", t.as_str());
        self.inner.file_outbound(seq, t, m, next).await
    }
    fn next_sender_seq(&self) -> u64 { self.inner.next_sender_seq() }
    fn next_target_seq(&self) -> u64 { self.inner.next_target_seq() }
    async fn set_next_sender_seq(&self, s: u64) -> Result<(), StoreError> { self.inner.set_next_sender_seq(s).await }
    async fn set_next_target_seq(&self, s: u64) -> Result<(), StoreError> { self.inner.set_next_target_seq(s).await }
    async fn reset(&self) -> Result<(), StoreError> { println!("[store] reset"); self.inner.reset().await }
    fn creation_time(&self) -> SystemTime { self.inner.creation_time() }
}

struct Trace;
impl FrameObserver for Trace {
    fn on_inbound(&self, f: &[u8], o: &Observation<'_>) { println!("<<IN  {}{}", if o.kind().is_replay() { "(replay) " } else { "" }, show(f)); }
    fn on_outbound(&self, f: &[u8], o: &Observation<'_>) { println!(">>OUT {}{}", if o.kind().is_replay() { "(replay) " } else { "" }, show(f)); }
}

struct App;

#[async_trait]
impl Application for App {
    async fn on_create(&self, s: &SessionId) { println!("[app] on_create {s}"); }
    async fn on_logon(&self, s: &SessionId) { println!("[app] on_logon {s}"); }
    async fn on_logout(&self, s: &SessionId) { println!("[app] on_logout {s}"); }
    async fn to_admin(&self, m: &mut OutboundMessage, _: &SessionId) {
        if m.msg_type() == &MsgType::Logon {
            m.push_str(553, "user").push_str(554, "secret");
        }
    }
    async fn from_admin(&self, _: &RawMessage<'_>, _: &SessionId) -> Result<(), RejectReason> { Ok(()) }
    async fn to_app(&self, _: &mut OutboundMessage, _: &SessionId) {}
    async fn from_app(&self, m: &RawMessage<'_>, _: &SessionId) -> Result<(), RejectReason> {
        let g = |t| m.get_field_str(t).unwrap_or("-");
        println!("[app] IN 35={} 34={} 43={} 11={} 150={} 39={}", m.msg_type().as_str(), g(34), g(43), g(11), g(150), g(39));
        Ok(())
    }
}

fn nos(cl: &str, sym: &str, qty: u64, px: Option<&str>) -> OutboundMessage {
    let mut o = OutboundMessage::new(MsgType::NewOrderSingle);
    o.push_str(11, cl).push_str(55, sym).push_char(54, '1')
        .push_str(60, Timestamp::now().format_millis().as_str()).push_uint(38, qty);
    match px {
        Some(p) => { o.push_char(40, '2').push_str(44, p).push_char(59, '1'); }
        None => { o.push_char(40, '1').push_char(59, '0'); }
    }
    o
}

fn cancel(cl: &str, orig: &str, sym: &str, qty: u64) -> OutboundMessage {
    let mut o = OutboundMessage::new(MsgType::OrderCancelRequest);
    o.push_str(41, orig).push_str(11, cl).push_str(55, sym).push_char(54, '1')
        .push_str(60, Timestamp::now().format_millis().as_str()).push_uint(38, qty);
    o
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into())).init();
    let args: Vec<String> = std::env::args().collect();
    let mode = args.get(1).cloned().unwrap_or_else(|| "orders".into());
    let store = FileStore::open(FileStoreConfig::try_new("/tmp/fixeval/ironfix-store", "VIGIL-QFACC")?.with_create_if_missing(true)).await?;
    println!("[main] store next_sender={} next_target={}", store.next_sender_seq(), store.next_target_seq());
    if let Ok(n) = std::env::var("LOWER_TARGET") {
        let n: u64 = n.parse()?;
        store.set_next_target_seq(store.next_target_seq() - n).await?;
        println!("[main] lowered stored next_target to {}", store.next_target_seq());
    }
    let config = SessionConfigBuilder::new()
        .sender_comp_id(CompId::new("VIGIL")?)
        .target_comp_id(CompId::new("QFACC")?)
        .begin_string("FIX.4.4")
        .send_next_expected_msg_seq_num(std::env::var("NEXT_EXPECTED").is_ok())
        .heartbeat_interval(Duration::from_secs(std::env::var("HB").ok().and_then(|v| v.parse().ok()).unwrap_or(30)))
        .build()?;
    let initiator = Initiator::new(config, Arc::new(App))
        .with_store(Arc::new(VigilStore { inner: store }))
        .with_frame_observer(Arc::new(Trace))
        .with_connect_timeout(Duration::from_secs(5));
    let conn = initiator.connect("127.0.0.1:9880").await?;
    println!("[main] connected; next_sender={} next_target={}", conn.next_sender_seq(), conn.next_target_seq());
    let tag = Timestamp::now().format_millis().as_str()[9..17].replace(':', "");
    match mode.as_str() {
        "orders" => {
            for m in [
                nos(&format!("L{tag}"), "EURUSD", 50, Some("1.1")),
                nos(&format!("M{tag}"), "EURUSD", 20, None),
                nos(&format!("R{tag}"), "REST", 10, Some("1.0")),
            ] { println!("[main] send -> {:?}", conn.send_tracked(m).await); }
            tokio::time::sleep(Duration::from_millis(500)).await;
            for m in [
                cancel(&format!("C{tag}"), &format!("R{tag}"), "REST", 10),
                cancel(&format!("X{tag}"), "NOPE", "REST", 10),
                nos(&format!("J{tag}"), "REJ", 10, Some("1.0")),
                nos(&format!("P{tag}"), "EURUSD", 150, Some("1.2")),
            ] { println!("[main] send -> {:?}", conn.send_tracked(m).await); }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        _ => {
            let secs: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(5);
            tokio::time::sleep(Duration::from_secs(secs)).await;
        }
    }
    println!("[main] before logout next_sender={} next_target={}", conn.next_sender_seq(), conn.next_target_seq());
    conn.logout().await?;
    conn.wait_closed().await;
    println!("[main] closed: {:?}", conn.close_reason());
    Ok(())
}
