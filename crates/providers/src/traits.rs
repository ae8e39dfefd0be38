//! The two seams between vigil and the outside world.

use async_trait::async_trait;
use rust_decimal::Decimal;
use vigil_core::{
    Bar, ClientOrderId, ExecutionReport, MarketDataEvent, OrderAck, OrderRequest, Portfolio,
    Symbol, SymbolId, Timestamp, VenueOrder,
};

/// Why a data provider failed.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// The source could not be reached or opened.
    #[error("data provider {provider}: cannot connect: {reason}")]
    Connect {
        /// The provider's name.
        provider: String,
        /// What went wrong.
        reason: String,
    },
    /// A symbol was asked for that the provider does not serve.
    #[error("data provider {provider}: unknown symbol {symbol}")]
    UnknownSymbol {
        /// The provider's name.
        provider: String,
        /// The symbol.
        symbol: String,
    },
    /// The provider delivered something that is not valid market data. Fatal for a replay:
    /// the message names the file, line and column.
    #[error("{0}")]
    Malformed(String),
    /// The stream broke.
    #[error("data provider {provider}: {reason}")]
    Stream {
        /// The provider's name.
        provider: String,
        /// What went wrong.
        reason: String,
    },
}

/// A provider's own view of its health.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ProviderHealth {
    /// Connected and streaming.
    pub connected: bool,
    /// Market time of the last event delivered.
    pub last_event_at: Option<Timestamp>,
    /// Events delivered so far.
    pub events: u64,
    /// Malformed messages seen so far.
    pub errors: u64,
}

/// A source of market data.
#[async_trait]
pub trait DataProvider: Send {
    /// Returns the provider's name for logs (`csv:GOOG_1d.csv`).
    fn name(&self) -> &str;

    /// Opens the source.
    ///
    /// # Errors
    /// Fails when the source cannot be reached or opened.
    async fn connect(&mut self) -> Result<(), ProviderError>;

    /// Subscribes to bars of `symbols` (ids index the session's symbol table).
    ///
    /// # Errors
    /// Fails for a symbol the provider does not serve.
    async fn subscribe(&mut self, symbols: &[(SymbolId, Symbol)]) -> Result<(), ProviderError>;

    /// Makes one real round trip to the source (an API status call, a file stat …) and
    /// reports whether it answered. The Data agent times it: that is the data source's
    /// network latency, and a failing ping is a disconnected source.
    ///
    /// # Errors
    /// Fails when the source does not answer.
    async fn ping(&mut self) -> Result<(), ProviderError>;

    /// Appends up to `max` events, in time order, to `out`. Returns `Ok(false)` when the
    /// stream has ended and nothing more will come.
    ///
    /// # Errors
    /// Fails on malformed data or a broken stream; the error says where.
    async fn next_batch(
        &mut self,
        max: usize,
        out: &mut Vec<MarketDataEvent>,
    ) -> Result<bool, ProviderError>;

    /// Reports the provider's health.
    fn health(&self) -> ProviderHealth;

    /// Tells whether every bar this provider delivers has already passed
    /// [`Bar::check`](vigil_core::Bar::check), so the Data agent need not repeat it. Time
    /// order and symbols are checked by the Data agent regardless.
    fn validates_bars(&self) -> bool {
        false
    }

    /// Tells whether a [`ProviderError::Malformed`] from [`Self::next_batch`] is one
    /// rejected message of a stream that goes on (a network feed), rather than the end of a
    /// source that cannot be read further (a file). The Data agent logs each at ERROR with
    /// its payload, counts it, and reads on — up to its limit of rejections in a row.
    fn rejects_messages(&self) -> bool {
        false
    }

    /// Tells whether the source is live (bars arrive as the market makes them), so that a
    /// silence while the exchange is open means data is missing. A replay is not.
    fn live(&self) -> bool {
        false
    }
}

/// Why a venue call failed (as opposed to the venue answering "rejected").
#[derive(Debug, thiserror::Error)]
pub enum VenueError {
    /// The venue could not be reached.
    #[error("venue {venue}: unreachable: {reason}")]
    Unreachable {
        /// The venue's name.
        venue: String,
        /// What went wrong.
        reason: String,
    },
    /// The venue does not know the order.
    #[error("venue {venue}: unknown order {client_order_id}")]
    UnknownOrder {
        /// The venue's name.
        venue: String,
        /// The order.
        client_order_id: ClientOrderId,
    },
    /// The venue answered something vigil cannot understand.
    #[error("venue {venue}: bad response: {reason}")]
    BadResponse {
        /// The venue's name.
        venue: String,
        /// What was wrong with it.
        reason: String,
    },
}

/// A position as the venue holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VenuePosition {
    /// The instrument.
    pub symbol: SymbolId,
    /// Signed quantity.
    pub quantity: Decimal,
    /// Average entry price.
    pub avg_price: Decimal,
}

impl VenuePosition {
    /// The open positions of `book`, at their average price.
    pub fn held_in(book: &Portfolio) -> Vec<Self> {
        book.positions()
            .map(|(symbol, p)| Self {
                symbol,
                quantity: p.quantity,
                avg_price: p.avg_price,
            })
            .collect()
    }
}

/// The account as the venue holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    /// Cash balance.
    pub cash: Decimal,
    /// Cash plus positions at the venue's marks.
    pub equity: Decimal,
}

/// A place orders go: a broker, an exchange, or the in-process paper venue.
///
/// Methods take `&self` so that a venue can be shared by the futures that call it; venues
/// keep their own state behind interior mutability.
#[async_trait]
pub trait ExecutionVenue: Send + Sync {
    /// Returns the venue's name for logs.
    fn name(&self) -> &str;

    /// Submits an order. Submitting a client order id the venue already holds creates
    /// nothing (idempotency) and is answered `OrderAck::Duplicate` with the order it holds
    /// (or, when that order was refused, the same `OrderAck::Rejected` again): never
    /// `Accepted`, since nothing new is working.
    ///
    /// # Errors
    /// Fails when the venue cannot be reached; a refusal is `Ok(OrderAck::Rejected)`.
    async fn submit_order(&self, order: &OrderRequest) -> Result<OrderAck, VenueError>;

    /// Cancels an open order.
    ///
    /// # Errors
    /// Fails when the venue cannot be reached or does not know the order.
    async fn cancel_order(&self, id: &ClientOrderId) -> Result<(), VenueError>;

    /// Lists the venue's open orders.
    ///
    /// # Errors
    /// Fails when the venue cannot be reached.
    async fn open_orders(&self) -> Result<Vec<VenueOrder>, VenueError>;

    /// Lists the venue's positions.
    ///
    /// # Errors
    /// Fails when the venue cannot be reached.
    async fn positions(&self) -> Result<Vec<VenuePosition>, VenueError>;

    /// Returns the venue's account.
    ///
    /// # Errors
    /// Fails when the venue cannot be reached.
    async fn account(&self) -> Result<Account, VenueError>;

    /// Makes one real round trip to the venue; the Execution agent times it (the venue's
    /// network latency) and counts a failure as the venue unreachable. The default asks
    /// for the account, the cheapest call every venue has.
    ///
    /// # Errors
    /// Fails when the venue does not answer.
    async fn ping(&self) -> Result<(), VenueError> {
        self.account().await.map(|_| ())
    }

    /// Returns the order with client order id `id` in whatever state the venue holds it
    /// (open, filled, cancelled, rejected), or `None` when the venue never received it.
    /// Recovery asks this of every intent the journal holds unanswered: an intent is
    /// adopted or marked failed, never sent twice. The default looks among the open
    /// orders, for venues that forget closed ones.
    ///
    /// # Errors
    /// Fails when the venue cannot be reached.
    async fn order(&self, id: &ClientOrderId) -> Result<Option<VenueOrder>, VenueError> {
        Ok(self
            .open_orders()
            .await?
            .into_iter()
            .find(|o| &o.request.client_order_id == id))
    }

    /// Moves the reports (fills, cancels) that arrived since the last call into `out`.
    /// Never blocks.
    fn drain_reports(&self, out: &mut Vec<ExecutionReport>);

    /// Makes the next reports start after the fill `fill_id` (the last one the journal
    /// holds; `None`: from the venue's first), so that the fills made while vigil was down
    /// are reported too. Venues that live and die with the process have nothing to resume.
    fn resume_reports_after(&self, _fill_id: Option<&str>) {}

    /// The id of the newest fill the venue holds (`None`: none yet): a new book's fills
    /// are the ones after it.
    ///
    /// # Errors
    /// Fails when the venue cannot be reached.
    async fn newest_fill_id(&self) -> Result<Option<String>, VenueError> {
        Ok(None)
    }

    /// Fetches every report the venue holds now, so that the next
    /// [`drain_reports`](Self::drain_reports) returns them all.
    ///
    /// # Errors
    /// Fails when the venue cannot be reached.
    async fn sync_reports(&self) -> Result<(), VenueError> {
        Ok(())
    }

    /// Shows a simulated venue the market. Real venues have their own prices and ignore it.
    fn on_market_data(&self, _bar: &Bar) {}

    /// Ends the venue's connection gracefully (a FIX session's Logout, acknowledged), once
    /// nothing more will be asked of it; calls after it fail as the venue unreachable.
    /// Venues without a connection of their own have nothing to end.
    async fn close(&self) {}
}
