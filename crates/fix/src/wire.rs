//! The FIX 4.4 application messages vigil sends and reads, typed on `Decimal`: what goes out
//! is built from vigil's orders, what comes in is read into owned values, each field checked,
//! and a message that cannot be read is an error naming the message and the field.

use chrono::{DateTime, NaiveDateTime, Utc};
use ironfix_core::MsgType;
use ironfix_core::message::RawMessage;
use ironfix_engine::OutboundMessage;
use rust_decimal::Decimal;
use vigil_core::{ClientOrderId, OrderRequest, OrderType, Side};

/// FIX's UTCTimestamp with milliseconds.
const STAMP: &str = "%Y%m%d-%H:%M:%S%.3f";

/// How long an order works (TimeInForce, 59).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeInForce {
    /// Until the close (`0`).
    Day,
    /// Until cancelled (`1`).
    GoodTillCancel,
}

impl TimeInForce {
    fn code(self) -> char {
        match self {
            Self::Day => '0',
            Self::GoodTillCancel => '1',
        }
    }
}

/// `t` as a FIX UTCTimestamp.
pub fn stamp(t: DateTime<Utc>) -> String {
    t.format(STAMP).to_string()
}

fn side_code(side: Side) -> char {
    match side {
        Side::Buy => '1',
        Side::Sell => '2',
    }
}

/// A decimal as FIX writes it: no exponent, no trailing zeros.
fn num(d: Decimal) -> String {
    d.normalize().to_string()
}

/// NewOrderSingle (D) for `order`, in `symbol`, with vigil's client order id as ClOrdID.
pub fn new_order(
    order: &OrderRequest,
    symbol: &str,
    account: Option<&str>,
    tif: TimeInForce,
) -> OutboundMessage {
    let mut m = OutboundMessage::new(MsgType::NewOrderSingle);
    m.push_str(11, order.client_order_id.as_str());
    if let Some(a) = account {
        m.push_str(1, a);
    }
    m.push_char(21, '1')
        .push_str(55, symbol)
        .push_char(54, side_code(order.side))
        .push_str(60, &stamp(order.submitted_at))
        .push_str(38, &num(order.quantity));
    match (order.order_type, order.limit_price) {
        (OrderType::Limit, Some(px)) => {
            m.push_char(40, '2').push_str(44, &num(px));
        }
        _ => {
            m.push_char(40, '1');
        }
    }
    m.push_char(59, tif.code());
    m
}

/// OrderCancelRequest (F): `cancel_id` asks to cancel order `orig`.
pub fn cancel(
    cancel_id: &str,
    orig: &OrderRequest,
    symbol: &str,
    at: DateTime<Utc>,
) -> OutboundMessage {
    let mut m = OutboundMessage::new(MsgType::OrderCancelRequest);
    m.push_str(41, orig.client_order_id.as_str())
        .push_str(11, cancel_id)
        .push_str(55, symbol)
        .push_char(54, side_code(orig.side))
        .push_str(60, &stamp(at))
        .push_str(38, &num(orig.quantity));
    m
}

/// OrderStatusRequest (H) for order `id`.
pub fn status(id: &ClientOrderId, symbol: &str, side: Side, request_id: &str) -> OutboundMessage {
    let mut m = OutboundMessage::new(MsgType::OrderStatusRequest);
    m.push_str(11, id.as_str())
        .push_str(790, request_id)
        .push_str(55, symbol)
        .push_char(54, side_code(side));
    m
}

/// OrderMassStatusRequest (AF) for every order (MassStatusReqType 7).
///
/// # Panics
/// Never: `AF` is a valid MsgType.
pub fn mass_status(request_id: &str) -> OutboundMessage {
    #[allow(clippy::expect_used)]
    let msg_type = MsgType::new("AF").expect("AF is a MsgType");
    let mut m = OutboundMessage::new(msg_type);
    m.push_str(584, request_id).push_char(585, '7');
    m
}

/// RequestForPositions (AN): every position of `account`, as of `at`.
///
/// # Panics
/// Never: `AN` is a valid MsgType.
pub fn positions(request_id: &str, account: &str, at: DateTime<Utc>) -> OutboundMessage {
    #[allow(clippy::expect_used)]
    let msg_type = MsgType::new("AN").expect("AN is a MsgType");
    let mut m = OutboundMessage::new(msg_type);
    m.push_str(710, request_id)
        .push_char(724, '0')
        .push_uint(453, 1)
        .push_str(448, account)
        .push_char(447, 'D')
        .push_uint(452, 3)
        .push_str(1, account)
        .push_uint(581, 1)
        .push_str(715, &at.format("%Y%m%d").to_string())
        .push_str(60, &stamp(at));
    m
}

/// A message that cannot be read: which, and why.
#[derive(Debug, thiserror::Error)]
#[error("{message}: {reason}")]
pub struct Unreadable {
    /// The message (`ExecutionReport 34=12 ExecID=E5`).
    pub message: String,
    /// What is wrong.
    pub reason: String,
}

/// Reads fields of one message, naming it in every error.
struct Fields<'m, 'a> {
    raw: &'m RawMessage<'a>,
    name: String,
}

impl<'m, 'a> Fields<'m, 'a> {
    fn new(raw: &'m RawMessage<'a>, kind: &str, id_tag: u32) -> Self {
        let seq = raw.get_field_str(34).unwrap_or("?");
        let id = raw.get_field_str(id_tag).unwrap_or("?");
        Self {
            raw,
            name: format!("{kind} 34={seq} {id_tag}={id}"),
        }
    }

    fn bad(&self, reason: String) -> Unreadable {
        Unreadable {
            message: self.name.clone(),
            reason,
        }
    }

    fn opt(&self, tag: u32) -> Option<&'a str> {
        self.raw.get_field_str(tag).filter(|v| !v.is_empty())
    }

    fn text(&self, tag: u32) -> Result<&'a str, Unreadable> {
        self.opt(tag)
            .ok_or_else(|| self.bad(format!("tag {tag} is missing")))
    }

    fn dec_opt(&self, tag: u32) -> Result<Option<Decimal>, Unreadable> {
        self.opt(tag)
            .map(|v| {
                Decimal::from_str_exact(v)
                    .map_err(|e| self.bad(format!("tag {tag} = {v:?} is not a number: {e}")))
            })
            .transpose()
    }

    fn count_opt(&self, tag: u32) -> Result<Option<u64>, Unreadable> {
        self.opt(tag)
            .map(|v| {
                v.parse()
                    .map_err(|e| self.bad(format!("tag {tag} = {v:?} is not a count: {e}")))
            })
            .transpose()
    }

    fn dec(&self, tag: u32) -> Result<Decimal, Unreadable> {
        self.dec_opt(tag)?
            .ok_or_else(|| self.bad(format!("tag {tag} is missing")))
    }

    fn time_opt(&self, tag: u32) -> Result<Option<DateTime<Utc>>, Unreadable> {
        self.opt(tag)
            .map(|v| {
                NaiveDateTime::parse_from_str(v, "%Y%m%d-%H:%M:%S%.f")
                    .map(|t| t.and_utc())
                    .map_err(|e| self.bad(format!("tag {tag} = {v:?} is not a UTCTimestamp: {e}")))
            })
            .transpose()
    }

    fn side(&self) -> Result<Side, Unreadable> {
        match self.text(54)? {
            "1" => Ok(Side::Buy),
            "2" | "5" | "6" => Ok(Side::Sell),
            other => Err(self.bad(format!("Side (54) {other:?} is not buy or sell"))),
        }
    }
}

/// An ExecutionReport (8).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecReport {
    /// ExecID (17).
    pub exec_id: String,
    /// ClOrdID (11): the order's, or a cancel request's.
    pub cl_ord_id: String,
    /// OrigClOrdID (41): the order a cancel was of.
    pub orig_cl_ord_id: Option<String>,
    /// OrderID (37), the counterparty's id.
    pub order_id: String,
    /// ExecType (150).
    pub exec_type: String,
    /// OrdStatus (39).
    pub ord_status: String,
    /// Symbol (55).
    pub symbol: String,
    /// Side (54).
    pub side: Side,
    /// OrderQty (38), when given.
    pub order_qty: Option<Decimal>,
    /// OrdType (40), when given.
    pub ord_type: Option<OrderType>,
    /// Price (44), when given.
    pub price: Option<Decimal>,
    /// LastQty (32) (zero when absent).
    pub last_qty: Decimal,
    /// LastPx (31) (zero when absent).
    pub last_px: Decimal,
    /// CumQty (14).
    pub cum_qty: Decimal,
    /// LeavesQty (151).
    pub leaves_qty: Decimal,
    /// AvgPx (6) (zero when absent).
    pub avg_px: Decimal,
    /// Commission (12) (zero when absent).
    pub commission: Decimal,
    /// TransactTime (60), when given.
    pub transact_time: Option<DateTime<Utc>>,
    /// Text (58).
    pub text: Option<String>,
    /// OrdRejReason (103).
    pub ord_rej_reason: Option<String>,
    /// ExecRefID (19): the execution a bust or correction refers to.
    pub exec_ref_id: Option<String>,
    /// LastRptRequested (912) = Y: the last report of a mass status.
    pub last_report: bool,
    /// OrdStatusReqID (790): the status request this answers.
    pub status_req_id: Option<String>,
    /// MassStatusReqID (584): the answer to a mass status request.
    pub mass_status_id: Option<String>,
    /// TotNumReports (911).
    pub total_reports: Option<u64>,
    /// PossDupFlag (43) = Y: a resend.
    pub poss_dup: bool,
}

impl ExecReport {
    /// A trade: the report of a fill (ExecType F, or 1/2 from FIX 4.2 counterparties).
    pub fn is_trade(&self) -> bool {
        matches!(self.exec_type.as_str(), "F" | "1" | "2") && self.last_qty > Decimal::ZERO
    }

    /// The order this report is about: for a cancel, the order cancelled.
    pub fn order(&self) -> &str {
        match self.exec_type.as_str() {
            "4" | "5" | "6" => self.orig_cl_ord_id.as_deref().unwrap_or(&self.cl_ord_id),
            _ => &self.cl_ord_id,
        }
    }

    /// The order is done: filled, cancelled, rejected, expired or done for the day.
    pub fn closed(&self) -> bool {
        matches!(self.ord_status.as_str(), "2" | "3" | "4" | "8" | "C")
    }

    /// Reads an ExecutionReport.
    ///
    /// # Errors
    /// A field missing or not of its type.
    pub fn read(raw: &RawMessage<'_>) -> Result<Self, Unreadable> {
        let f = Fields::new(raw, "ExecutionReport", 17);
        let ord_type = match f.opt(40) {
            Some("1") => Some(OrderType::Market),
            Some("2") => Some(OrderType::Limit),
            _ => None,
        };
        Ok(Self {
            exec_id: f.text(17)?.to_string(),
            cl_ord_id: f.text(11)?.to_string(),
            orig_cl_ord_id: f.opt(41).map(str::to_string),
            order_id: f.opt(37).unwrap_or("NONE").to_string(),
            exec_type: f.text(150)?.to_string(),
            ord_status: f.text(39)?.to_string(),
            symbol: f.text(55)?.to_string(),
            side: f.side()?,
            order_qty: f.dec_opt(38)?,
            ord_type,
            price: f.dec_opt(44)?,
            last_qty: f.dec_opt(32)?.unwrap_or_default(),
            last_px: f.dec_opt(31)?.unwrap_or_default(),
            cum_qty: f.dec(14)?,
            leaves_qty: f.dec(151)?,
            avg_px: f.dec_opt(6)?.unwrap_or_default(),
            commission: commission(&f)?,
            transact_time: f.time_opt(60)?,
            text: f.opt(58).map(str::to_string),
            ord_rej_reason: f.opt(103).map(str::to_string),
            status_req_id: f.opt(790).map(str::to_string),
            exec_ref_id: f.opt(19).map(str::to_string),
            last_report: f.opt(912) == Some("Y"),
            mass_status_id: f.opt(584).map(str::to_string),
            total_reports: f.count_opt(911)?,
            poss_dup: raw.get_field_str(43) == Some("Y"),
        })
    }
}

/// Commission (12) as an amount, by its CommType (13): `3` (or none) absolute, `1` per unit
/// of LastQty, `2` a percentage of the fill's notional.
fn commission(f: &Fields<'_, '_>) -> Result<Decimal, Unreadable> {
    let Some(c) = f.dec_opt(12)? else {
        return Ok(Decimal::ZERO);
    };
    let qty = f.dec_opt(32)?.unwrap_or_default();
    match f.opt(13) {
        None | Some("3") => Ok(c),
        Some("1") => Ok(c * qty),
        Some("2") => Ok(c * qty * f.dec_opt(31)?.unwrap_or_default() / Decimal::ONE_HUNDRED),
        Some(other) => Err(f.bad(format!(
            "CommType (13) {other:?} is not one vigil can turn into an amount"
        ))),
    }
}

/// An OrderCancelReject (9).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CancelReject {
    /// ClOrdID (11) of the cancel request.
    pub cl_ord_id: String,
    /// OrigClOrdID (41): the order that was not cancelled.
    pub orig_cl_ord_id: String,
    /// OrdStatus (39) of that order.
    pub ord_status: String,
    /// CxlRejReason (102): `0` too late, `1` unknown order, …
    pub reason: Option<String>,
    /// Text (58).
    pub text: Option<String>,
}

impl CancelReject {
    /// Reads an OrderCancelReject.
    ///
    /// # Errors
    /// A field missing.
    pub fn read(raw: &RawMessage<'_>) -> Result<Self, Unreadable> {
        let f = Fields::new(raw, "OrderCancelReject", 11);
        Ok(Self {
            cl_ord_id: f.text(11)?.to_string(),
            orig_cl_ord_id: f.text(41)?.to_string(),
            ord_status: f.opt(39).unwrap_or("?").to_string(),
            reason: f.opt(102).map(str::to_string),
            text: f.opt(58).map(str::to_string),
        })
    }

    /// Why, in words.
    pub fn why(&self) -> String {
        let reason = match self.reason.as_deref() {
            Some("0") => "too late to cancel",
            Some("1") => "unknown order",
            Some("2") => "broker option",
            Some("3") => "already pending cancel or replace",
            Some(other) => other,
            None => "no reason given",
        };
        match &self.text {
            Some(t) => format!("{reason} ({t}); order status {}", self.ord_status),
            None => format!("{reason}; order status {}", self.ord_status),
        }
    }

    /// The counterparty does not know the order.
    pub fn unknown_order(&self) -> bool {
        self.reason.as_deref() == Some("1")
    }
}

/// A BusinessMessageReject (j): a message of ours the counterparty could not take.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BusinessReject {
    /// RefSeqNum (45).
    pub ref_seq: Option<String>,
    /// RefMsgType (372).
    pub ref_msg_type: String,
    /// BusinessRejectRefID (379): the ClOrdID or request id.
    pub ref_id: Option<String>,
    /// BusinessRejectReason (380).
    pub reason: String,
    /// Text (58).
    pub text: Option<String>,
}

impl BusinessReject {
    /// Reads a BusinessMessageReject.
    ///
    /// # Errors
    /// A field missing.
    pub fn read(raw: &RawMessage<'_>) -> Result<Self, Unreadable> {
        let f = Fields::new(raw, "BusinessMessageReject", 379);
        Ok(Self {
            ref_seq: f.opt(45).map(str::to_string),
            ref_msg_type: f.text(372)?.to_string(),
            ref_id: f.opt(379).map(str::to_string),
            reason: f.text(380)?.to_string(),
            text: f.opt(58).map(str::to_string),
        })
    }

    /// Why, in words.
    pub fn why(&self) -> String {
        let reason = match self.reason.as_str() {
            "0" => "other",
            "1" => "unknown ID",
            "2" => "unknown security",
            "3" => "unsupported message type",
            "4" => "application not available",
            "5" => "conditionally required field missing",
            "6" => "not authorized",
            "7" => "DeliverTo firm not available",
            other => other,
        };
        format!(
            "the counterparty refused our {} (34={}, id {}): {reason}{}",
            self.ref_msg_type,
            self.ref_seq.as_deref().unwrap_or("?"),
            self.ref_id.as_deref().unwrap_or("none"),
            self.text
                .as_deref()
                .map(|t| format!(" ({t})"))
                .unwrap_or_default()
        )
    }
}

/// A PositionReport (AP): one symbol's position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PositionReport {
    /// PosReqID (710).
    pub request_id: String,
    /// TotalNumPosReports (727).
    pub total: Option<u64>,
    /// Symbol (55).
    pub symbol: String,
    /// The NoPositions group (702): one amount per position type.
    pub amounts: Vec<PositionAmount>,
    /// SettlPrice (730): the average price, as counterparties that offer it report it.
    pub price: Decimal,
}

/// One entry of a PositionReport's NoPositions group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PositionAmount {
    /// PosType (703): `SOD` start of day, `TQ` transactions, `FIN` end of day, ... (`None`:
    /// the counterparty sent 704/705 without one).
    pub pos_type: Option<String>,
    /// LongQty (704) less ShortQty (705).
    pub quantity: Decimal,
}

impl PositionReport {
    /// Reads a PositionReport.
    ///
    /// # Errors
    /// A field missing or not a number.
    pub fn read(raw: &RawMessage<'_>) -> Result<Self, Unreadable> {
        let f = Fields::new(raw, "PositionReport", 710);
        let mut amounts: Vec<PositionAmount> = Vec::new();
        for field in raw.field_slice() {
            let value = || {
                std::str::from_utf8(field.value)
                    .map_err(|e| f.bad(format!("tag {} is not text: {e}", field.tag)))
            };
            let number = |v: &str| {
                Decimal::from_str_exact(v)
                    .map_err(|e| f.bad(format!("tag {} = {v:?} is not a number: {e}", field.tag)))
            };
            match field.tag {
                // PosType opens an entry of the group.
                703 => amounts.push(PositionAmount {
                    pos_type: Some(value()?.to_string()),
                    quantity: Decimal::ZERO,
                }),
                704 | 705 => {
                    let v = value()?;
                    let q = if v.is_empty() {
                        Decimal::ZERO
                    } else {
                        number(v)?
                    };
                    if amounts.is_empty() {
                        amounts.push(PositionAmount {
                            pos_type: None,
                            quantity: Decimal::ZERO,
                        });
                    }
                    if let Some(last) = amounts.last_mut() {
                        last.quantity += if field.tag == 704 { q } else { -q };
                    }
                }
                _ => {}
            }
        }
        Ok(Self {
            request_id: f.text(710)?.to_string(),
            total: f.count_opt(727)?,
            symbol: f.text(55)?.to_string(),
            amounts,
            price: f.dec_opt(730)?.unwrap_or_default(),
        })
    }

    /// The position now: the report's one amount when `types` is empty, else the sum of the
    /// amounts of those types (a broker that reports `SOD` and `TQ` apart has
    /// `["SOD", "TQ"]`).
    ///
    /// # Errors
    /// Several amounts and no `types` to choose between them, or amounts of which none has
    /// one of `types`: which is the position now is the operator's to say, not vigil's to
    /// guess.
    pub fn quantity(&self, types: &[String]) -> Result<Decimal, String> {
        let found = || {
            self.amounts
                .iter()
                .map(|a| a.pos_type.as_deref().unwrap_or("(none)"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        if types.is_empty() {
            return match self.amounts.as_slice() {
                [] => Ok(Decimal::ZERO),
                [one] => Ok(one.quantity),
                _ => Err(format!(
                    "the position in {} is reported as {} amounts of position types {}: set \
                     [execution.fix] position_types to those that add up to the position now",
                    self.symbol,
                    self.amounts.len(),
                    found()
                )),
            };
        }
        let mut chosen = self
            .amounts
            .iter()
            .filter(|a| a.pos_type.as_ref().is_some_and(|t| types.contains(t)))
            .peekable();
        if chosen.peek().is_none() && !self.amounts.is_empty() {
            return Err(format!(
                "the position in {} is reported with position types {}, none of \
                 [execution.fix] position_types = [{}]",
                self.symbol,
                found(),
                types.join(", ")
            ));
        }
        Ok(chosen.map(|a| a.quantity).sum())
    }
}

/// A RequestForPositionsAck (AO).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PositionsAck {
    /// PosReqID (710).
    pub request_id: String,
    /// TotalNumPosReports (727).
    pub total: u64,
    /// PosReqResult (728): `0` valid, `2` no positions found, others refused.
    pub result: String,
    /// Text (58).
    pub text: Option<String>,
}

impl PositionsAck {
    /// Reads a RequestForPositionsAck.
    ///
    /// # Errors
    /// A field missing.
    pub fn read(raw: &RawMessage<'_>) -> Result<Self, Unreadable> {
        let f = Fields::new(raw, "RequestForPositionsAck", 710);
        Ok(Self {
            request_id: f.text(710)?.to_string(),
            total: f.count_opt(727)?.unwrap_or(0),
            result: f.text(728)?.to_string(),
            text: f.opt(58).map(str::to_string),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    fn order(order_type: OrderType, limit: Option<Decimal>) -> OrderRequest {
        OrderRequest {
            client_order_id: ClientOrderId::from("vigil-1-2"),
            symbol: vigil_core::SymbolId(0),
            side: Side::Sell,
            quantity: dec!(12.500),
            order_type,
            limit_price: limit,
            submitted_at: DateTime::parse_from_rfc3339("2019-03-04T15:30:00.25Z")
                .expect("time")
                .to_utc(),
        }
    }

    /// A whole frame of `body` (`tag=value` fields split by `|`), with its BodyLength and
    /// CheckSum.
    fn frame(body: &str) -> Vec<u8> {
        let body = format!("{}\u{1}", body.trim_end_matches('|').replace('|', "\u{1}"));
        let mut m = format!("8=FIX.4.4\u{1}9={}\u{1}{body}", body.len()).into_bytes();
        let sum = m.iter().map(|b| u32::from(*b)).sum::<u32>() % 256;
        m.extend(format!("10={sum:03}\u{1}").bytes());
        m
    }

    fn position(groups: &str) -> Result<PositionReport, Unreadable> {
        let m = frame(&format!(
            "35=AP|34=7|49=B|56=V|52=20190304-15:30:00|721=P1|710=pos-1|727=1|55=GOOG|730=101.5|{groups}"
        ));
        let raw = ironfix_tagvalue::Decoder::new(&m)
            .decode()
            .expect("decodes");
        PositionReport::read(&raw)
    }

    #[test]
    fn a_position_report_is_read_entry_by_entry_of_its_group() {
        let one = position("702=1|703=TQ|704=15|705=0").expect("reads");
        assert_eq!(one.symbol, "GOOG");
        assert_eq!(one.total, Some(1));
        assert_eq!(one.price, dec!(101.5));
        assert_eq!(one.quantity(&[]), Ok(dec!(15)));
        let short = position("702=1|703=TQ|704=0|705=2.5").expect("reads");
        assert_eq!(short.quantity(&[]), Ok(dec!(-2.5)));
        let untyped = position("704=3").expect("reads");
        assert_eq!(untyped.quantity(&[]), Ok(dec!(3)));
        assert_eq!(position("").expect("reads").quantity(&[]), Ok(dec!(0)));

        // A broker that reports the start of day and the day's trades apart.
        let split = position("702=2|703=SOD|704=10|705=0|703=TQ|704=0|705=4").expect("reads");
        let types = |t: &[&str]| t.iter().map(|s| (*s).to_string()).collect::<Vec<_>>();
        assert_eq!(split.quantity(&types(&["SOD", "TQ"])), Ok(dec!(6)));
        assert_eq!(split.quantity(&types(&["TQ"])), Ok(dec!(-4)));
        let guess = split.quantity(&[]).expect_err("two amounts, no choice");
        assert!(
            guess.contains("SOD, TQ") && guess.contains("position_types"),
            "{guess}"
        );
        let none = split.quantity(&types(&["FIN"])).expect_err("no FIN");
        assert!(none.contains("SOD, TQ") && none.contains("[FIN]"), "{none}");
    }

    #[test]
    fn a_position_or_a_count_that_is_not_a_number_is_named() {
        let e = position("702=1|703=TQ|704=1e3").expect_err("not a decimal");
        assert!(
            e.to_string().contains("PositionReport 34=7 710=pos-1"),
            "{e}"
        );
        assert!(e.to_string().contains("tag 704 = \"1e3\""), "{e}");
        let m = frame("35=AP|34=8|710=pos-2|727=two|55=GOOG|702=1|703=TQ|704=1");
        let raw = ironfix_tagvalue::Decoder::new(&m)
            .decode()
            .expect("decodes");
        let e = PositionReport::read(&raw).expect_err("727 not a count");
        assert!(
            e.to_string().contains("tag 727 = \"two\" is not a count"),
            "{e}"
        );
    }

    fn field(m: &OutboundMessage, tag: u32) -> Option<String> {
        m.get(tag).map(|v| String::from_utf8_lossy(v).into_owned())
    }

    #[test]
    fn a_limit_order_carries_its_price_and_a_market_order_none() {
        let limit = new_order(
            &order(OrderType::Limit, Some(dec!(101.2500))),
            "GOOG",
            Some("ACC-1"),
            TimeInForce::GoodTillCancel,
        );
        for (tag, want) in [
            (11, "vigil-1-2"),
            (1, "ACC-1"),
            (55, "GOOG"),
            (54, "2"),
            (60, "20190304-15:30:00.250"),
            (38, "12.5"),
            (40, "2"),
            (44, "101.25"),
            (59, "1"),
        ] {
            assert_eq!(field(&limit, tag).as_deref(), Some(want), "tag {tag}");
        }
        let market = new_order(
            &order(OrderType::Market, None),
            "GOOG",
            None,
            TimeInForce::Day,
        );
        assert_eq!(field(&market, 40).as_deref(), Some("1"));
        assert_eq!(field(&market, 59).as_deref(), Some("0"));
        assert_eq!(field(&market, 44), None);
        assert_eq!(field(&market, 1), None);
    }
}
