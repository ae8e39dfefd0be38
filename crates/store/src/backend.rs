//! The SQL both backends run, written once: [`sql_backend!`] implements
//! [`StateStore`](crate::StateStore) for a store type over its sqlx driver.
//!
//! The two schemas (`migrations/` for SQLite, `migrations-pg/` for PostgreSQL) have the same
//! tables and columns, and every statement here is valid in both dialects: parameters are
//! `$1`, `$2` … (sqlx's SQLite driver reads `$N` as the N-th argument, as PostgreSQL does),
//! money and times are TEXT in both, flags are read as `bool` and HTTP statuses as `i32`.
//! What differs is passed in: the row and connection types, and the column that keeps the
//! order rows were inserted in (SQLite's implicit `rowid`; PostgreSQL's `seq`, an identity
//! column).
//!
//! A macro rather than code generic over `sqlx::Database`: generic code needs a
//! higher-ranked bound for every type it binds or reads and for the executors, on every
//! function, and such bounds are a known source of `Send` errors in the futures a trait
//! object returns. The macro compiles the same text against each driver's concrete types.

/// Implements [`StateStore`](crate::StateStore) for `$store`, a struct with a `pool` (the
/// driver's pool) and a `location` (the file, or the URL without its password) and an
/// inherent `fn file_path(&self) -> Option<&Path>`.
macro_rules! sql_backend {
    ($store:ty, row = $row:ty, conn = $conn:ty, insertion_order = $order:literal) => {
        impl $store {
            fn query_err(
                &self,
                what: &'static str,
            ) -> impl FnOnce(sqlx::Error) -> $crate::StoreError + '_ {
                move |source| $crate::StoreError::Query {
                    location: self.location.clone(),
                    what,
                    source,
                }
            }

            fn corrupt(&self, what: String, detail: impl std::fmt::Display) -> $crate::StoreError {
                $crate::StoreError::Corrupt {
                    location: self.location.clone(),
                    what,
                    detail: detail.to_string(),
                }
            }

            fn time(
                &self,
                what: impl FnOnce() -> String,
                text: &str,
            ) -> Result<chrono::DateTime<chrono::Utc>, $crate::StoreError> {
                chrono::DateTime::parse_from_rfc3339(text)
                    .map(|t| t.with_timezone(&chrono::Utc))
                    .map_err(|e| self.corrupt(what(), format!("bad time {text:?}: {e}")))
            }

            fn decimal(
                &self,
                what: String,
                text: &str,
            ) -> Result<rust_decimal::Decimal, $crate::StoreError> {
                <rust_decimal::Decimal as std::str::FromStr>::from_str(text)
                    .map_err(|e| self.corrupt(what, format!("bad decimal {text:?}: {e}")))
            }

            /// A FIX sequence number as the database holds it (a signed 64-bit integer).
            fn fix_seq(&self, session: &str, seq: u64) -> Result<i64, $crate::StoreError> {
                i64::try_from(seq).map_err(|e| {
                    self.corrupt(format!("the FIX session {session}"), format!("sequence number {seq}: {e}"))
                })
            }

            fn side(&self, what: String, text: &str) -> Result<vigil_core::Side, $crate::StoreError> {
                match text {
                    "BUY" => Ok(vigil_core::Side::Buy),
                    "SELL" => Ok(vigil_core::Side::Sell),
                    other => Err(self.corrupt(what, format!("{other:?}"))),
                }
            }

            /// The last checkpoint of `book`'s journal.
            async fn latest_checkpoint(
                &self,
                book: &str,
            ) -> Result<Option<$crate::JournalCheckpoint>, $crate::StoreError> {
                use sqlx::Row as _;
                let Some(row) = sqlx::query(
                    "SELECT fills_through, fills, fill_cash_flow, last_fill_id, orders_through, \
                     orders, written_at FROM journal_checkpoints WHERE book = $1 \
                     ORDER BY fills_through DESC, orders_through DESC LIMIT 1",
                )
                .bind(book)
                .fetch_optional(&self.pool)
                .await
                .map_err(self.query_err("reading the journal's last checkpoint"))?
                else {
                    return Ok(None);
                };
                let what = |col: &str| format!("journal_checkpoints.{col} of book {book}");
                let count = |i: usize, col: &str| {
                    u64::try_from(row.get::<i64, _>(i)).map_err(|e| self.corrupt(what(col), e))
                };
                // A checkpoint whose last fill or order is gone covers rows the journal lost:
                // it is not trusted, and the rows are read and counted one by one.
                let (fills_through, orders_through): (i64, i64) = (row.get(0), row.get(4));
                let there: i64 = sqlx::query(concat!(
                    "SELECT (SELECT COUNT(*) FROM journal_fills WHERE book = $1 AND seq = $2) \
                     + (SELECT COUNT(*) FROM journal_orders WHERE book = $1 AND ",
                    $order,
                    " = $3)"
                ))
                .bind(book)
                .bind(fills_through)
                .bind(orders_through)
                .fetch_one(&self.pool)
                .await
                .map_err(self.query_err("checking the journal's last checkpoint"))?
                .get(0);
                let expected = i64::from(fills_through > 0) + i64::from(orders_through > 0);
                if there != expected {
                    return Ok(None);
                }
                Ok(Some($crate::JournalCheckpoint {
                    fills_through: row.get(0),
                    fills: count(1, "fills")?,
                    fill_cash_flow: self
                        .decimal(what("fill_cash_flow"), &row.get::<String, _>(2))?,
                    last_fill_id: row.get(3),
                    orders_through: row.get(4),
                    orders: count(5, "orders")?,
                    written_at: self.time(|| what("written_at"), &row.get::<String, _>(6))?,
                }))
            }

            /// The orders of `book` journaled after `through` (in insertion order) and up
            /// to `upto` (all of them when `None`).
            async fn orders_after(
                &self,
                book: &str,
                through: i64,
                upto: Option<i64>,
            ) -> Result<u64, $crate::StoreError> {
                use sqlx::Row as _;
                let n: i64 = sqlx::query(concat!(
                    "SELECT COUNT(*) FROM journal_orders WHERE book = $1 AND ",
                    $order,
                    " > $2 AND ($3 IS NULL OR ",
                    $order,
                    " <= $3)"
                ))
                .bind(book)
                .bind(through)
                .bind(upto)
                .fetch_one(&self.pool)
                .await
                .map_err(self.query_err("counting the journal's orders"))?
                .get(0);
                u64::try_from(n)
                    .map_err(|e| self.corrupt(format!("journal_orders count of book {book}"), e))
            }

            /// The fills of `book` journaled after the fill `through` (`journal_fills.seq`).
            async fn fills_after(&self, book: &str, through: i64) -> Result<u64, $crate::StoreError> {
                use sqlx::Row as _;
                let n: i64 = sqlx::query(
                    "SELECT COUNT(*) FROM journal_fills WHERE book = $1 AND seq > $2",
                )
                .bind(book)
                .bind(through)
                .fetch_one(&self.pool)
                .await
                .map_err(self.query_err("counting the journal's fills"))?
                .get(0);
                u64::try_from(n)
                    .map_err(|e| self.corrupt(format!("journal_fills count of book {book}"), e))
            }

            fn log_entry(&self, r: &$row) -> Result<$crate::AlertLogEntry, $crate::StoreError> {
                use sqlx::Row as _;
                let seq: i64 = r.get(0);
                let at: String = r.get(1);
                Ok($crate::AlertLogEntry {
                    seq,
                    at: self.time(|| format!("alert_log seq {seq}"), &at)?,
                    kind: r.get(2),
                    alert_id: r.get(3),
                    rule: r.get(4),
                    severity: r.get(5),
                    channel: r.get(6),
                    detail: r.get(7),
                })
            }

            fn request_row(&self, r: &$row) -> Result<$crate::AlertRequest, $crate::StoreError> {
                use sqlx::Row as _;
                let seq: i64 = r.get(0);
                let what = || format!("alert_requests seq {seq}");
                let at: String = r.get(1);
                let kind: String = r.get(3);
                let body: String = r.get(4);
                let applied: Option<String> = r.get(5);
                Ok($crate::AlertRequest {
                    seq,
                    at: self.time(what, &at)?,
                    who: r.get(2),
                    kind: kind.parse().map_err(|e| self.corrupt(what(), e))?,
                    body: serde_json::from_str(&body).map_err(|e| self.corrupt(what(), e))?,
                    applied_at: applied.map(|a| self.time(what, &a)).transpose()?,
                    ok: r.get(6),
                    result: r.get(7),
                })
            }

            fn audit_row(
                &self,
                r: &$row,
            ) -> Result<$crate::ControlAuditEntry, $crate::StoreError> {
                use sqlx::Row as _;
                let seq: i64 = r.get(0);
                let what = || format!("control_audit seq {seq}");
                let at: String = r.get(1);
                let finished: Option<String> = r.get(8);
                let status: Option<i32> = r.get(10);
                Ok($crate::ControlAuditEntry {
                    seq,
                    asked: $crate::NewControlCommand {
                        at: self.time(what, &at)?,
                        who: r.get(2),
                        remote: r.get(3),
                        command: r.get(4),
                        argument: r.get(5),
                        reason: r.get(6),
                        request_id: r.get(7),
                    },
                    finished_at: finished.map(|f| self.time(what, &f)).transpose()?,
                    ok: r.get(9),
                    status: status
                        .map(|s| u16::try_from(s).map_err(|e| self.corrupt(what(), e)))
                        .transpose()?,
                    outcome: r.get(11),
                    error: r.get(12),
                })
            }

            async fn journal_fill(
                &self,
                tx: &mut $conn,
                book: &str,
                f: &$crate::JournalFill,
                now: &str,
            ) -> Result<(), $crate::StoreError> {
                sqlx::query(
                    "INSERT INTO journal_fills (book, fill_id, client_order_id, symbol, side, \
                     quantity, price, commission, filled_at, journaled_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                )
                .bind(book)
                .bind(&*f.fill_id)
                .bind(&*f.client_order_id)
                .bind(&*f.symbol)
                .bind(f.side.as_str())
                .bind(f.quantity.to_string())
                .bind(f.price.to_string())
                .bind(f.commission.to_string())
                .bind($crate::stamp(f.filled_at))
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(self.query_err("journaling a fill"))?;
                Ok(())
            }

            /// Writes the positions and cash the fills noted in `after` left, and forgets
            /// them.
            async fn write_after_fills(
                &self,
                tx: &mut $conn,
                book: &str,
                after: &mut $crate::journal::AfterFills,
                now: &str,
            ) -> Result<(), $crate::StoreError> {
                for (symbol, (qty, avg)) in after.positions.drain(..) {
                    sqlx::query($crate::backend::UPSERT_POSITION)
                        .bind(book)
                        .bind(&*symbol)
                        .bind(qty.to_string())
                        .bind(avg.to_string())
                        .bind(now)
                        .execute(&mut *tx)
                        .await
                        .map_err(self.query_err("journaling a position"))?;
                }
                if let Some(cash) = after.cash.take() {
                    sqlx::query($crate::backend::UPSERT_CASH)
                        .bind(book)
                        .bind(cash.to_string())
                        .bind(now)
                        .execute(&mut *tx)
                        .await
                        .map_err(self.query_err("journaling cash"))?;
                }
                Ok(())
            }

            async fn journal_adjust(
                &self,
                tx: &mut $conn,
                book: &str,
                a: &$crate::Adjustment,
                now: &str,
            ) -> Result<(), $crate::StoreError> {
                use $crate::Adjustment;
                let (kind, symbol, before, after, avg, reason) = match a {
                    Adjustment::Position {
                        symbol,
                        before,
                        after,
                        avg_price,
                        reason,
                    } => (
                        "position",
                        Some(&**symbol),
                        before,
                        after,
                        Some(avg_price),
                        reason,
                    ),
                    Adjustment::Cash {
                        before,
                        after,
                        reason,
                    } => ("cash", None, before, after, None, reason),
                };
                sqlx::query(
                    "INSERT INTO journal_adjustments (book, kind, symbol, before, after, \
                     avg_price, reason, journaled_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(book)
                .bind(kind)
                .bind(symbol)
                .bind(before.to_string())
                .bind(after.to_string())
                .bind(avg.map(|p| p.to_string()))
                .bind(reason)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(self.query_err("journaling an adjustment"))?;
                match a {
                    Adjustment::Position {
                        symbol,
                        after,
                        avg_price,
                        ..
                    } => sqlx::query($crate::backend::UPSERT_POSITION)
                        .bind(book)
                        .bind(&**symbol)
                        .bind(after.to_string())
                        .bind(avg_price.to_string())
                        .bind(now),
                    Adjustment::Cash { after, .. } => sqlx::query($crate::backend::UPSERT_CASH)
                        .bind(book)
                        .bind(after.to_string())
                        .bind(now),
                }
                .execute(&mut *tx)
                .await
                .map_err(self.query_err("journaling an adjusted book"))?;
                Ok(())
            }
        }

        #[async_trait::async_trait]
        impl $crate::StateStore for $store {
            fn location(&self) -> &str {
                &self.location
            }

            fn file(&self) -> Option<&std::path::Path> {
                self.file_path()
            }

            async fn close(&self) {
                self.pool.close().await;
            }

            async fn alert_state(
                &self,
            ) -> Result<Option<$crate::StoredAlertState>, $crate::StoreError> {
                use sqlx::Row as _;
                let row = sqlx::query("SELECT state, saved_at FROM alert_state WHERE id = 1")
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(self.query_err("reading the alert state"))?;
                let Some(row) = row else { return Ok(None) };
                let saved: String = row.get(1);
                Ok(Some($crate::StoredAlertState {
                    state: row.get(0),
                    saved_at: self.time(|| "alert_state.saved_at".into(), &saved)?,
                }))
            }

            async fn save_alert_state(
                &self,
                state: &str,
                at: chrono::DateTime<chrono::Utc>,
            ) -> Result<(), $crate::StoreError> {
                sqlx::query(
                    "INSERT INTO alert_state (id, state, saved_at) VALUES (1, $1, $2) \
                     ON CONFLICT (id) DO UPDATE SET state = excluded.state, \
                     saved_at = excluded.saved_at",
                )
                .bind(state)
                .bind($crate::stamp(at))
                .execute(&self.pool)
                .await
                .map_err(self.query_err("saving the alert state"))?;
                Ok(())
            }

            async fn append_alert_log(
                &self,
                entries: &[$crate::AlertLogEntry],
            ) -> Result<(), $crate::StoreError> {
                let mut tx = self
                    .pool
                    .begin()
                    .await
                    .map_err(self.query_err("appending to the alert log"))?;
                for e in entries {
                    sqlx::query(
                        "INSERT INTO alert_log (at, kind, alert_id, rule, severity, channel, \
                         detail) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    )
                    .bind($crate::stamp(e.at))
                    .bind(&e.kind)
                    .bind(&e.alert_id)
                    .bind(&e.rule)
                    .bind(&e.severity)
                    .bind(&e.channel)
                    .bind(&e.detail)
                    .execute(&mut *tx)
                    .await
                    .map_err(self.query_err("appending to the alert log"))?;
                }
                tx.commit()
                    .await
                    .map_err(self.query_err("appending to the alert log"))?;
                Ok(())
            }

            async fn alert_log(
                &self,
                q: &$crate::AlertLogQuery,
            ) -> Result<Vec<$crate::AlertLogEntry>, $crate::StoreError> {
                let rows = sqlx::query(
                    "SELECT seq, at, kind, alert_id, rule, severity, channel, detail \
                     FROM alert_log WHERE ($1 IS NULL OR at >= $1) \
                     AND ($2 IS NULL OR rule = $2) AND ($3 IS NULL OR alert_id = $3) \
                     ORDER BY seq DESC LIMIT $4",
                )
                .bind(q.since.map($crate::stamp))
                .bind(&q.rule)
                .bind(&q.alert_id)
                .bind($crate::sql_limit(q.limit))
                .fetch_all(&self.pool)
                .await
                .map_err(self.query_err("reading the alert log"))?;
                let mut out = rows
                    .iter()
                    .map(|r| self.log_entry(r))
                    .collect::<Result<Vec<_>, _>>()?;
                out.reverse();
                Ok(out)
            }

            async fn request(
                &self,
                at: chrono::DateTime<chrono::Utc>,
                who: &str,
                kind: $crate::RequestKind,
                body: &serde_json::Value,
            ) -> Result<i64, $crate::StoreError> {
                use sqlx::Row as _;
                let row = sqlx::query(
                    "INSERT INTO alert_requests (at, who, kind, body) VALUES ($1, $2, $3, $4) \
                     RETURNING seq",
                )
                .bind($crate::stamp(at))
                .bind(who)
                .bind(kind.as_str())
                .bind(body.to_string())
                .fetch_one(&self.pool)
                .await
                .map_err(self.query_err("recording an alert request"))?;
                Ok(row.get(0))
            }

            async fn pending_requests(
                &self,
            ) -> Result<Vec<$crate::AlertRequest>, $crate::StoreError> {
                let rows = sqlx::query(
                    "SELECT seq, at, who, kind, body, applied_at, ok, result FROM alert_requests \
                     WHERE applied_at IS NULL ORDER BY seq",
                )
                .fetch_all(&self.pool)
                .await
                .map_err(self.query_err("reading pending alert requests"))?;
                rows.iter().map(|r| self.request_row(r)).collect()
            }

            async fn request_by_seq(
                &self,
                seq: i64,
            ) -> Result<Option<$crate::AlertRequest>, $crate::StoreError> {
                let row = sqlx::query(
                    "SELECT seq, at, who, kind, body, applied_at, ok, result FROM alert_requests \
                     WHERE seq = $1",
                )
                .bind(seq)
                .fetch_optional(&self.pool)
                .await
                .map_err(self.query_err("reading an alert request"))?;
                row.as_ref().map(|r| self.request_row(r)).transpose()
            }

            async fn finish_request(
                &self,
                seq: i64,
                at: chrono::DateTime<chrono::Utc>,
                ok: bool,
                result: &str,
            ) -> Result<(), $crate::StoreError> {
                sqlx::query(
                    "UPDATE alert_requests SET applied_at = $2, ok = $3, result = $4 \
                     WHERE seq = $1 AND applied_at IS NULL",
                )
                .bind(seq)
                .bind($crate::stamp(at))
                .bind(ok)
                .bind(result)
                .execute(&self.pool)
                .await
                .map_err(self.query_err("recording an alert request's result"))?;
                Ok(())
            }

            async fn begin_control_command(
                &self,
                cmd: &$crate::NewControlCommand,
            ) -> Result<$crate::AuditStart, $crate::StoreError> {
                use sqlx::Row as _;
                let row = sqlx::query(
                    "INSERT INTO control_audit (at, who, remote, command, argument, reason, \
                     request_id) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                     ON CONFLICT (request_id) DO NOTHING RETURNING seq",
                )
                .bind($crate::stamp(cmd.at))
                .bind(&cmd.who)
                .bind(&cmd.remote)
                .bind(&cmd.command)
                .bind(&cmd.argument)
                .bind(&cmd.reason)
                .bind(&cmd.request_id)
                .fetch_optional(&self.pool)
                .await
                .map_err(self.query_err("recording a control command"))?;
                if let Some(row) = row {
                    return Ok($crate::AuditStart::New(row.get(0)));
                }
                let earlier = sqlx::query(concat!(
                    "SELECT ",
                    $crate::backend::audit_columns!(),
                    " FROM control_audit WHERE request_id = $1"
                ))
                .bind(&cmd.request_id)
                .fetch_one(&self.pool)
                .await
                .map_err(self.query_err("reading a repeated control command"))?;
                Ok($crate::AuditStart::Repeat(Box::new(self.audit_row(&earlier)?)))
            }

            async fn finish_control_command(
                &self,
                seq: i64,
                at: chrono::DateTime<chrono::Utc>,
                ok: bool,
                status: u16,
                text: &str,
            ) -> Result<(), $crate::StoreError> {
                let (outcome, error) = if ok {
                    (Some(text), None)
                } else {
                    (None, Some(text))
                };
                sqlx::query(
                    "UPDATE control_audit SET finished_at = $2, ok = $3, status = $4, \
                     outcome = $5, error = $6 WHERE seq = $1 AND finished_at IS NULL",
                )
                .bind(seq)
                .bind($crate::stamp(at))
                .bind(ok)
                .bind(i32::from(status))
                .bind(outcome)
                .bind(error)
                .execute(&self.pool)
                .await
                .map_err(self.query_err("recording a control command's answer"))?;
                Ok(())
            }

            async fn control_audit(
                &self,
                limit: u32,
            ) -> Result<Vec<$crate::ControlAuditEntry>, $crate::StoreError> {
                let rows = sqlx::query(concat!(
                    "SELECT ",
                    $crate::backend::audit_columns!(),
                    " FROM control_audit ORDER BY seq DESC LIMIT $1"
                ))
                .bind($crate::sql_limit(limit))
                .fetch_all(&self.pool)
                .await
                .map_err(self.query_err("reading the control audit"))?;
                let mut out = rows
                    .iter()
                    .map(|r| self.audit_row(r))
                    .collect::<Result<Vec<_>, _>>()?;
                out.reverse();
                Ok(out)
            }

            async fn trading_state(
                &self,
            ) -> Result<Option<$crate::SavedTradingState>, $crate::StoreError> {
                use sqlx::Row as _;
                use vigil_core::TradingState;
                let row =
                    sqlx::query(
                        "SELECT state, actor, reason, at, outage_hold FROM trading_state \
                         WHERE id = 1",
                    )
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(self.query_err("reading the trading state"))?;
                let Some(row) = row else { return Ok(None) };
                let state: String = row.get(0);
                let at: String = row.get(3);
                let state = match state.as_str() {
                    "active" => TradingState::Active,
                    "reduce_only" => TradingState::ReduceOnly,
                    "halted" => TradingState::Halted,
                    other => {
                        return Err(self.corrupt(
                            "trading_state.state".into(),
                            format!("{other:?} is not active, reduce_only or halted"),
                        ));
                    }
                };
                Ok(Some($crate::SavedTradingState {
                    state,
                    actor: row.get(1),
                    reason: row.get(2),
                    at: self.time(|| "trading_state.at".into(), &at)?,
                    outage_hold: row.get(4),
                }))
            }

            async fn save_trading_state(
                &self,
                saved: &$crate::SavedTradingState,
            ) -> Result<(), $crate::StoreError> {
                sqlx::query(
                    "INSERT INTO trading_state (id, state, actor, reason, at, outage_hold) \
                     VALUES (1, $1, $2, $3, $4, $5) \
                     ON CONFLICT (id) DO UPDATE SET state = excluded.state, \
                     actor = excluded.actor, reason = excluded.reason, at = excluded.at, \
                     outage_hold = excluded.outage_hold",
                )
                .bind(saved.state.as_str())
                .bind(&saved.actor)
                .bind(&saved.reason)
                .bind($crate::stamp(saved.at))
                .bind(saved.outage_hold.as_deref())
                .execute(&self.pool)
                .await
                .map_err(self.query_err("saving the trading state"))?;
                Ok(())
            }

            async fn journal(
                &self,
                book: &str,
                entries: &[$crate::JournalEntry],
                at: chrono::DateTime<chrono::Utc>,
            ) -> Result<(), $crate::StoreError> {
                use $crate::JournalEntry;
                let now = $crate::stamp(at);
                let mut tx = self
                    .pool
                    .begin()
                    .await
                    .map_err(self.query_err("beginning a journal transaction"))?;
                let mut after_fills = $crate::journal::AfterFills::default();
                let mut high = $crate::backend::HighWater::default();
                for entry in entries {
                    high.note(entry);
                    if matches!(
                        entry,
                        JournalEntry::OpenBook { .. }
                            | JournalEntry::Adjust(_)
                            | JournalEntry::Mark { .. }
                    ) {
                        self.write_after_fills(&mut tx, book, &mut after_fills, &now)
                            .await?;
                    }
                    match entry {
                        JournalEntry::OpenBook { cash, fill_cursor } => {
                            sqlx::query(
                                "INSERT INTO journal_cash (book, cash, opening_cash, \
                                 opening_fill_cursor, updated_at) VALUES ($1, $2, $2, $3, $4) \
                                 ON CONFLICT (book) DO NOTHING",
                            )
                            .bind(book)
                            .bind(cash.to_string())
                            .bind(fill_cursor.as_deref())
                            .bind(&now)
                            .execute(&mut *tx)
                            .await
                            .map_err(self.query_err("journaling a book's starting cash"))?;
                        }
                        JournalEntry::Intent(o) => {
                            sqlx::query(
                                "INSERT INTO journal_orders (book, client_order_id, trace_id, \
                                 symbol, side, quantity, order_type, limit_price, \
                                 reference_price, decided_at, status, journaled_at, updated_at) \
                                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'intent', \
                                 $11, $11)",
                            )
                            .bind(book)
                            .bind(&*o.client_order_id)
                            .bind(&*o.trace_id)
                            .bind(&*o.symbol)
                            .bind(o.side.as_str())
                            .bind(o.quantity.to_string())
                            .bind(o.order_type.as_str())
                            .bind(o.limit_price.map(|p| p.to_string()))
                            .bind(o.reference_price.to_string())
                            .bind($crate::stamp(o.decided_at))
                            .bind(&now)
                            .execute(&mut *tx)
                            .await
                            .map_err(self.query_err("journaling an order intent"))?;
                        }
                        JournalEntry::Status {
                            client_order_id,
                            status,
                            venue_order_id,
                            filled_quantity,
                            reason,
                        } => {
                            sqlx::query(
                                "UPDATE journal_orders SET status = $3, \
                                 venue_order_id = COALESCE($4, venue_order_id), \
                                 filled_quantity = COALESCE($5, filled_quantity), \
                                 reason = COALESCE($6, reason), updated_at = $7 \
                                 WHERE book = $1 AND client_order_id = $2",
                            )
                            .bind(book)
                            .bind(&**client_order_id)
                            .bind(status.as_str())
                            .bind(venue_order_id.as_deref())
                            .bind(filled_quantity.map(|q| q.to_string()))
                            .bind(reason.as_deref())
                            .bind(&now)
                            .execute(&mut *tx)
                            .await
                            .map_err(self.query_err("journaling an order's status"))?;
                        }
                        JournalEntry::Fill(f) => {
                            self.journal_fill(&mut tx, book, f, &now).await?;
                            after_fills.note(f);
                        }
                        JournalEntry::Adjust(a) => {
                            self.journal_adjust(&mut tx, book, a, &now).await?;
                        }
                        JournalEntry::Ledgers { state } => {
                            sqlx::query(
                                "INSERT INTO journal_ledgers (book, state, updated_at) \
                                 VALUES ($1, $2, $3) ON CONFLICT (book) DO UPDATE SET \
                                 state = excluded.state, updated_at = excluded.updated_at",
                            )
                            .bind(book)
                            .bind(state)
                            .bind(&now)
                            .execute(&mut *tx)
                            .await
                            .map_err(self.query_err("journaling the sub-ledgers"))?;
                        }
                        JournalEntry::Mark { last_bar_at } => {
                            let moved = sqlx::query(
                                "UPDATE journal_cash SET last_bar_at = $2 WHERE book = $1 \
                                 AND (last_bar_at IS NULL OR last_bar_at < $2)",
                            )
                            .bind(book)
                            .bind($crate::stamp(*last_bar_at))
                            .execute(&mut *tx)
                            .await
                            .map_err(self.query_err("journaling the last bar handled"))?;
                            if moved.rows_affected() > 0 {
                                high.moved_to(*last_bar_at);
                            }
                        }
                    }
                }
                self.write_after_fills(&mut tx, book, &mut after_fills, &now)
                    .await?;
                sqlx::query($crate::backend::UPSERT_HIGH_WATER)
                    .bind(book)
                    .bind(high.orders)
                    .bind(high.fills)
                    .bind(high.last_bar_at.map($crate::stamp))
                    .execute(&mut *tx)
                    .await
                    .map_err(self.query_err("keeping the journal's high-water mark"))?;
                tx.commit()
                    .await
                    .map_err(self.query_err("committing a journal transaction"))
            }

            async fn journal_recovery(
                &self,
                book: &str,
            ) -> Result<$crate::JournalRecovery, $crate::StoreError> {
                use sqlx::Row as _;
                let journaled = self.journal_book(book).await?;
                let row = sqlx::query(
                    "SELECT opening_cash, last_bar_at, opening_fill_cursor FROM journal_cash \
                     WHERE book = $1",
                )
                .bind(book)
                .fetch_optional(&self.pool)
                .await
                .map_err(self.query_err("reading the journal's opening cash"))?;
                let (opening_cash, last_bar_at, opening_fill_cursor) = match row {
                    Some(row) => {
                        let opening: Option<String> = row.get(0);
                        let last: Option<String> = row.get(1);
                        (
                            opening
                                .map(|c| self.decimal("journal_cash.opening_cash".into(), &c))
                                .transpose()?,
                            last.map(|t| self.time(|| "journal_cash.last_bar_at".into(), &t))
                                .transpose()?,
                            row.get(2),
                        )
                    }
                    None => (None, None, None),
                };
                let decided: Option<String> =
                    sqlx::query("SELECT MAX(decided_at) FROM journal_orders WHERE book = $1")
                        .bind(book)
                        .fetch_one(&self.pool)
                        .await
                        .map_err(self.query_err("reading the journal's last decision"))?
                        .get(0);
                let decided = decided
                    .map(|t| self.time(|| "journal_orders.decided_at".into(), &t))
                    .transpose()?;
                let last_bar_at = last_bar_at.max(decided);
                let mut cash_adjusted = rust_decimal::Decimal::ZERO;
                let rows = sqlx::query(
                    "SELECT before, after FROM journal_adjustments \
                     WHERE book = $1 AND kind = 'cash'",
                )
                .bind(book)
                .fetch_all(&self.pool)
                .await
                .map_err(self.query_err("reading the journal's cash adjustments"))?;
                for row in &rows {
                    let before = self.decimal(
                        "journal_adjustments.before".into(),
                        &row.get::<String, _>(0),
                    )?;
                    let after = self
                        .decimal("journal_adjustments.after".into(), &row.get::<String, _>(1))?;
                    cash_adjusted += after - before;
                }
                let checkpoint = self.latest_checkpoint(book).await?;
                let rows = sqlx::query(
                    "SELECT fill_id, client_order_id, symbol, side, quantity, price, commission \
                     FROM journal_fills WHERE book = $1 AND seq > $2 ORDER BY seq",
                )
                .bind(book)
                .bind(checkpoint.as_ref().map_or(0, |c| c.fills_through))
                .fetch_all(&self.pool)
                .await
                .map_err(self.query_err("reading the journal's fills"))?;
                let mut fills = Vec::with_capacity(rows.len());
                for row in &rows {
                    let fill_id: String = row.get(0);
                    let what = |col: &str| format!("journal_fills.{col} of {fill_id}");
                    fills.push($crate::RecordedFill {
                        client_order_id: row.get(1),
                        symbol: row.get(2),
                        side: self.side(what("side"), &row.get::<String, _>(3))?,
                        quantity: self.decimal(what("quantity"), &row.get::<String, _>(4))?,
                        price: self.decimal(what("price"), &row.get::<String, _>(5))?,
                        commission: self.decimal(what("commission"), &row.get::<String, _>(6))?,
                        fill_id,
                    });
                }
                Ok($crate::JournalRecovery {
                    book: journaled,
                    opening_cash,
                    cash_adjusted,
                    last_bar_at,
                    opening_fill_cursor,
                    checkpoint,
                    fills,
                    open_orders: self.journal_open_orders(book).await?,
                })
            }

            async fn journal_checkpoint(
                &self,
                book: &str,
                at: chrono::DateTime<chrono::Utc>,
            ) -> Result<Option<$crate::JournalCheckpoint>, $crate::StoreError> {
                use sqlx::Row as _;
                /// Fill rows read at a time.
                const PAGE: i64 = 10_000;
                let previous = self.latest_checkpoint(book).await?;
                let mut next = previous.clone().unwrap_or($crate::JournalCheckpoint {
                    fills_through: 0,
                    fills: 0,
                    fill_cash_flow: rust_decimal::Decimal::ZERO,
                    last_fill_id: None,
                    orders_through: 0,
                    orders: 0,
                    written_at: at,
                });
                loop {
                    let rows = sqlx::query(
                        "SELECT seq, fill_id, side, quantity, price, commission \
                         FROM journal_fills WHERE book = $1 AND seq > $2 ORDER BY seq LIMIT $3",
                    )
                    .bind(book)
                    .bind(next.fills_through)
                    .bind(PAGE)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(self.query_err("reading the journal's fills for a checkpoint"))?;
                    let Some(last) = rows.last() else { break };
                    for row in &rows {
                        let fill_id: String = row.get(1);
                        let what = |col: &str| format!("journal_fills.{col} of {fill_id}");
                        next.fill_cash_flow += $crate::fill_cash_flow(
                            self.side(what("side"), &row.get::<String, _>(2))?,
                            self.decimal(what("quantity"), &row.get::<String, _>(3))?,
                            self.decimal(what("price"), &row.get::<String, _>(4))?,
                            self.decimal(what("commission"), &row.get::<String, _>(5))?,
                        );
                    }
                    next.fills += rows.len() as u64;
                    next.fills_through = last.get(0);
                    next.last_fill_id = Some(last.get(1));
                }
                let newest: Option<i64> = sqlx::query(concat!(
                    "SELECT MAX(",
                    $order,
                    ") FROM journal_orders WHERE book = $1"
                ))
                .bind(book)
                .fetch_one(&self.pool)
                .await
                .map_err(self.query_err("reading the journal's newest order"))?
                .get(0);
                if let Some(newest) = newest.filter(|n| *n > next.orders_through) {
                    next.orders += self
                        .orders_after(book, next.orders_through, Some(newest))
                        .await?;
                    next.orders_through = newest;
                }
                let unchanged = previous.as_ref().is_some_and(|p| {
                    p.fills_through == next.fills_through && p.orders_through == next.orders_through
                });
                if unchanged || (next.fills == 0 && next.orders == 0) {
                    return Ok(previous);
                }
                next.written_at = at;
                sqlx::query(
                    "INSERT INTO journal_checkpoints (book, fills_through, fills, \
                     fill_cash_flow, last_fill_id, orders_through, orders, written_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(book)
                .bind(next.fills_through)
                .bind(i64::try_from(next.fills).map_err(|e| self.corrupt("a checkpoint's fill count".into(), e))?)
                .bind(next.fill_cash_flow.to_string())
                .bind(next.last_fill_id.as_deref())
                .bind(next.orders_through)
                .bind(i64::try_from(next.orders).map_err(|e| self.corrupt("a checkpoint's order count".into(), e))?)
                .bind($crate::stamp(at))
                .execute(&self.pool)
                .await
                .map_err(self.query_err("writing a journal checkpoint"))?;
                Ok(Some(next))
            }

            async fn journal_counts(
                &self,
                book: &str,
            ) -> Result<$crate::JournalCounts, $crate::StoreError> {
                let checkpoint = self.latest_checkpoint(book).await?;
                let (fills_through, fills, orders_through, orders) =
                    checkpoint.as_ref().map_or((0, 0, 0, 0), |c| {
                        (c.fills_through, c.fills, c.orders_through, c.orders)
                    });
                Ok($crate::JournalCounts {
                    orders: orders + self.orders_after(book, orders_through, None).await?,
                    fills: fills + self.fills_after(book, fills_through).await?,
                    checkpoint,
                })
            }

            async fn journal_known_fills(
                &self,
                book: &str,
                ids: &[&str],
            ) -> Result<std::collections::HashSet<String>, $crate::StoreError> {
                use sqlx::Row as _;
                let mut known = std::collections::HashSet::new();
                for chunk in ids.chunks(500) {
                    let mut query = sqlx::QueryBuilder::new(
                        "SELECT fill_id FROM journal_fills WHERE book = ",
                    );
                    query.push_bind(book).push(" AND fill_id IN (");
                    let mut list = query.separated(", ");
                    for id in chunk {
                        list.push_bind(*id);
                    }
                    query.push(")");
                    let rows = query
                        .build()
                        .fetch_all(&self.pool)
                        .await
                        .map_err(self.query_err("looking up fills in the journal"))?;
                    known.extend(rows.iter().map(|r| r.get::<String, _>(0)));
                }
                Ok(known)
            }

            async fn journal_open_orders(
                &self,
                book: &str,
            ) -> Result<Vec<$crate::JournaledOrder>, $crate::StoreError> {
                use sqlx::Row as _;
                use vigil_core::OrderType;
                let rows = sqlx::query(concat!(
                    "SELECT client_order_id, trace_id, symbol, side, quantity, order_type, \
                     limit_price, reference_price, decided_at, status, venue_order_id, \
                     filled_quantity FROM journal_orders WHERE book = $1 \
                     AND status IN ('intent', 'accepted', 'partially_filled') ORDER BY +",
                    // `+`: SQLite would otherwise walk every order of the book in the
                    // (book, rowid) index for the order, instead of the open ones in the
                    // (book, status) index, and sort those few.
                    $order
                ))
                .bind(book)
                .fetch_all(&self.pool)
                .await
                .map_err(self.query_err("reading the journal's open orders"))?;
                rows.iter()
                    .map(|row| {
                        let id: String = row.get(0);
                        let what = |col: &str| format!("journal_orders.{col} of {id}");
                        let order_type: String = row.get(5);
                        let status: String = row.get(9);
                        let limit: Option<String> = row.get(6);
                        Ok($crate::JournaledOrder {
                            order: $crate::JournalOrder {
                                client_order_id: id.as_str().into(),
                                trace_id: row.get::<String, _>(1).into(),
                                symbol: row.get::<String, _>(2).into(),
                                side: self.side(what("side"), &row.get::<String, _>(3))?,
                                quantity: self
                                    .decimal(what("quantity"), &row.get::<String, _>(4))?,
                                order_type: match order_type.as_str() {
                                    "MARKET" => OrderType::Market,
                                    "LIMIT" => OrderType::Limit,
                                    other => {
                                        return Err(
                                            self.corrupt(what("order_type"), format!("{other:?}"))
                                        );
                                    }
                                },
                                limit_price: limit
                                    .map(|l| self.decimal(what("limit_price"), &l))
                                    .transpose()?,
                                reference_price: self.decimal(
                                    what("reference_price"),
                                    &row.get::<String, _>(7),
                                )?,
                                decided_at: self
                                    .time(|| what("decided_at"), &row.get::<String, _>(8))?,
                            },
                            status: $crate::JournalStatus::parse(&status).ok_or_else(|| {
                                self.corrupt(what("status"), format!("{status:?}"))
                            })?,
                            venue_order_id: row.get(10),
                            filled_quantity: self
                                .decimal(what("filled_quantity"), &row.get::<String, _>(11))?,
                        })
                    })
                    .collect()
            }

            async fn journal_book(
                &self,
                book: &str,
            ) -> Result<$crate::JournaledBook, $crate::StoreError> {
                use sqlx::Row as _;
                let cash: Option<String> =
                    sqlx::query("SELECT cash FROM journal_cash WHERE book = $1")
                        .bind(book)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(self.query_err("reading the journal's cash"))?
                        .map(|r| r.get(0));
                let rows = sqlx::query(
                    "SELECT symbol, quantity, avg_price FROM journal_positions WHERE book = $1 \
                     ORDER BY symbol",
                )
                .bind(book)
                .fetch_all(&self.pool)
                .await
                .map_err(self.query_err("reading the journal's positions"))?;
                let mut positions = Vec::with_capacity(rows.len());
                for row in &rows {
                    let symbol: String = row.get(0);
                    let qty = self.decimal(
                        format!("journal_positions.quantity of {symbol}"),
                        &row.get::<String, _>(1),
                    )?;
                    let avg = self.decimal(
                        format!("journal_positions.avg_price of {symbol}"),
                        &row.get::<String, _>(2),
                    )?;
                    if !qty.is_zero() {
                        positions.push((symbol, qty, avg));
                    }
                }
                let checkpoint = self.latest_checkpoint(book).await?;
                let fills = checkpoint.as_ref().map_or(0, |c| c.fills)
                    + self
                        .fills_after(book, checkpoint.as_ref().map_or(0, |c| c.fills_through))
                        .await?;
                let ledgers: Option<String> =
                    sqlx::query("SELECT state FROM journal_ledgers WHERE book = $1")
                        .bind(book)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(self.query_err("reading the journal's sub-ledgers"))?
                        .map(|r| r.get(0));
                Ok($crate::JournaledBook {
                    ledgers,
                    cash: cash
                        .map(|c| self.decimal("journal_cash.cash".into(), &c))
                        .transpose()?,
                    positions,
                    fills,
                })
            }

            async fn journal_order_ids(
                &self,
                book: &str,
            ) -> Result<Vec<String>, $crate::StoreError> {
                use sqlx::Row as _;
                let rows = sqlx::query(concat!(
                    "SELECT client_order_id FROM journal_orders WHERE book = $1 ORDER BY ",
                    $order
                ))
                .bind(book)
                .fetch_all(&self.pool)
                .await
                .map_err(self.query_err("reading the journal's order ids"))?;
                Ok(rows.iter().map(|r| r.get(0)).collect())
            }

            async fn check_integrity(&self) -> Result<Vec<String>, $crate::StoreError> {
                self.integrity_report().await
            }

            async fn identity(
                &self,
            ) -> Result<Option<$crate::StoreIdentity>, $crate::StoreError> {
                use sqlx::Row as _;
                let row = sqlx::query(
                    "SELECT install_id, created_at, runs, last_started_at FROM store_identity \
                     WHERE id = 1",
                )
                .fetch_optional(&self.pool)
                .await
                .map_err(self.query_err("reading the store's identity"))?;
                let Some(row) = row else { return Ok(None) };
                let created: String = row.get(1);
                let last: Option<String> = row.get(3);
                Ok(Some($crate::StoreIdentity {
                    install_id: row.get(0),
                    created_at: self.time(|| "store_identity.created_at".into(), &created)?,
                    runs: row.get(2),
                    last_started_at: last
                        .map(|l| self.time(|| "store_identity.last_started_at".into(), &l))
                        .transpose()?,
                }))
            }

            async fn record_start(
                &self,
                install_id: &str,
                at: chrono::DateTime<chrono::Utc>,
            ) -> Result<$crate::StoreIdentity, $crate::StoreError> {
                let now = $crate::stamp(at);
                sqlx::query(
                    "INSERT INTO store_identity (id, install_id, created_at, runs, \
                     last_started_at) VALUES (1, $1, $2, 1, $2) ON CONFLICT (id) DO UPDATE \
                     SET runs = store_identity.runs + 1, last_started_at = excluded.last_started_at",
                )
                .bind(install_id)
                .bind(&now)
                .execute(&self.pool)
                .await
                .map_err(self.query_err("recording a start in the store's identity"))?;
                self.identity().await?.ok_or_else(|| {
                    self.corrupt(
                        "store_identity".into(),
                        "the identity just written is not there",
                    )
                })
            }

            async fn journal_history(
                &self,
            ) -> Result<Vec<$crate::BookHistory>, $crate::StoreError> {
                use sqlx::Row as _;
                let rows = sqlx::query(
                    "SELECT h.book, h.orders, h.fills, h.last_bar_at, \
                     (SELECT c.last_bar_at FROM journal_cash c WHERE c.book = h.book), \
                     (SELECT MAX(o.decided_at) FROM journal_orders o WHERE o.book = h.book), \
                     (SELECT COUNT(*) FROM journal_cash c WHERE c.book = h.book) \
                     FROM store_high_water h ORDER BY h.book",
                )
                .fetch_all(&self.pool)
                .await
                .map_err(self.query_err("reading the journal's history"))?;
                let mut out = Vec::with_capacity(rows.len());
                for row in &rows {
                    let book: String = row.get(0);
                    let count = |i: usize, what: &str| {
                        u64::try_from(row.get::<i64, _>(i))
                            .map_err(|e| self.corrupt(format!("{what} of book {book}"), e))
                    };
                    let time = |i: usize, what: &str| {
                        row.get::<Option<String>, _>(i)
                            .map(|t| self.time(|| format!("{what} of book {book}"), &t))
                            .transpose()
                    };
                    let mark = time(4, "journal_cash.last_bar_at")?;
                    let decided = time(5, "journal_orders.decided_at")?;
                    // Counted from the last checkpoint, not row by row: the check must not
                    // grow with the book's history.
                    let counts = self.journal_counts(&book).await?;
                    out.push($crate::BookHistory {
                        high_orders: count(1, "store_high_water.orders")?,
                        high_fills: count(2, "store_high_water.fills")?,
                        high_last_bar_at: time(3, "store_high_water.last_bar_at")?,
                        orders: counts.orders,
                        fills: counts.fills,
                        last_bar_at: mark.max(decided),
                        opened: count(6, "journal_cash count")? > 0,
                        book,
                    });
                }
                Ok(out)
            }

            async fn record_rebuild(
                &self,
                book: &str,
                at: chrono::DateTime<chrono::Utc>,
                reason: &str,
                summary: &str,
            ) -> Result<i64, $crate::StoreError> {
                use sqlx::Row as _;
                let row = sqlx::query(
                    "INSERT INTO journal_rebuilds (book, at, reason, summary) \
                     VALUES ($1, $2, $3, $4) RETURNING seq",
                )
                .bind(book)
                .bind($crate::stamp(at))
                .bind(reason)
                .bind(summary)
                .fetch_one(&self.pool)
                .await
                .map_err(self.query_err("recording a journal rebuild"))?;
                Ok(row.get(0))
            }

            async fn journal_rebuilds(
                &self,
            ) -> Result<Vec<$crate::JournalRebuild>, $crate::StoreError> {
                use sqlx::Row as _;
                let rows = sqlx::query(
                    "SELECT seq, book, at, reason, summary FROM journal_rebuilds ORDER BY seq",
                )
                .fetch_all(&self.pool)
                .await
                .map_err(self.query_err("reading the journal rebuilds"))?;
                rows.iter()
                    .map(|row| {
                        let seq: i64 = row.get(0);
                        let at: String = row.get(2);
                        Ok($crate::JournalRebuild {
                            seq,
                            book: row.get(1),
                            at: self.time(|| format!("journal_rebuilds seq {seq}"), &at)?,
                            reason: row.get(3),
                            summary: row.get(4),
                        })
                    })
                    .collect()
            }

            async fn journal_books(&self) -> Result<Vec<String>, $crate::StoreError> {
                use sqlx::Row as _;
                let rows = sqlx::query(concat!("SELECT book FROM journal_cash ORDER BY ", $order))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(self.query_err("listing the journal's books"))?;
                Ok(rows.iter().map(|r| r.get(0)).collect())
            }

            async fn anchor_log(
                &self,
                anchors: &[$crate::LogAnchor],
            ) -> Result<(), $crate::StoreError> {
                let mut tx = self
                    .pool
                    .begin()
                    .await
                    .map_err(self.query_err("recording log anchors"))?;
                for a in anchors {
                    let seq = i64::try_from(a.seq).map_err(|e| {
                        self.corrupt(format!("log anchor of {} seq {}", a.file, a.seq), e)
                    })?;
                    sqlx::query(
                        "INSERT INTO log_anchors (chain, file, seq, hash, kind, at) \
                         VALUES ($1, $2, $3, $4, $5, $6)",
                    )
                    .bind(&a.chain)
                    .bind(&a.file)
                    .bind(seq)
                    .bind(&a.hash)
                    .bind(a.kind.as_str())
                    .bind($crate::stamp(a.at))
                    .execute(&mut *tx)
                    .await
                    .map_err(self.query_err("recording a log anchor"))?;
                }
                tx.commit()
                    .await
                    .map_err(self.query_err("recording log anchors"))?;
                Ok(())
            }

            async fn record_backtest(
                &self,
                model: &str,
                version: &str,
                data_sha256: &str,
                command: &str,
                at: chrono::DateTime<chrono::Utc>,
            ) -> Result<u64, $crate::StoreError> {
                sqlx::query(
                    "INSERT INTO backtests (model, version, data_sha256, command, at) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(model)
                .bind(version)
                .bind(data_sha256)
                .bind(command)
                .bind($crate::stamp(at))
                .execute(&self.pool)
                .await
                .map_err(self.query_err("recording a backtest"))?;
                let row = sqlx::query("SELECT COUNT(*) FROM backtests WHERE model = $1")
                    .bind(model)
                    .fetch_one(&self.pool)
                    .await
                    .map_err(self.query_err("counting a model's backtests"))?;
                let n: i64 = sqlx::Row::get(&row, 0);
                u64::try_from(n).map_err(|e| self.corrupt(format!("the backtests of {model}"), e))
            }

            async fn record_backtest_report(
                &self,
                report: &$crate::BacktestReport,
                page: &str,
            ) -> Result<u64, $crate::StoreError> {
                let row = sqlx::query(
                    "INSERT INTO backtest_reports (model, version, command, data, data_sha256, \
                     at, verdict, summary, html) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                     RETURNING id",
                )
                .bind(&report.model)
                .bind(&report.version)
                .bind(&report.command)
                .bind(&report.data)
                .bind(&report.data_sha256)
                .bind($crate::stamp(report.at))
                .bind(&report.verdict)
                .bind(&report.summary)
                .bind(page)
                .fetch_one(&self.pool)
                .await
                .map_err(self.query_err("recording a backtest report"))?;
                let id: i64 = sqlx::Row::get(&row, 0);
                u64::try_from(id).map_err(|e| self.corrupt("a backtest report's id".into(), e))
            }

            async fn backtest_reports(
                &self,
                limit: u64,
            ) -> Result<Vec<(u64, $crate::BacktestReport)>, $crate::StoreError> {
                use sqlx::Row as _;
                let limit = i64::try_from(limit).unwrap_or(i64::MAX);
                let rows = sqlx::query(
                    "SELECT id, model, version, command, data, data_sha256, at, verdict, summary \
                     FROM backtest_reports ORDER BY id DESC LIMIT $1",
                )
                .bind(limit)
                .fetch_all(&self.pool)
                .await
                .map_err(self.query_err("reading the backtest reports"))?;
                rows.iter()
                    .map(|r| {
                        let id: i64 = r.get(0);
                        let what = || format!("the backtest report {id}");
                        let at: String = r.get(6);
                        let at = chrono::DateTime::parse_from_rfc3339(&at)
                            .map(|t| t.with_timezone(&chrono::Utc))
                            .map_err(|e| self.corrupt(what(), e))?;
                        Ok((
                            u64::try_from(id).map_err(|e| self.corrupt(what(), e))?,
                            $crate::BacktestReport {
                                model: r.get(1),
                                version: r.get(2),
                                command: r.get(3),
                                data: r.get(4),
                                data_sha256: r.get(5),
                                at,
                                verdict: r.get(7),
                                summary: r.get(8),
                            },
                        ))
                    })
                    .collect()
            }

            async fn backtest_report_page(
                &self,
                id: u64,
            ) -> Result<Option<String>, $crate::StoreError> {
                let Ok(id) = i64::try_from(id) else {
                    return Ok(None);
                };
                let row = sqlx::query("SELECT html FROM backtest_reports WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(self.query_err("reading a backtest report's page"))?;
                Ok(row.map(|r| sqlx::Row::get(&r, 0)))
            }

            async fn record_drill(&self, run: &$crate::DrillRun) -> Result<(), $crate::StoreError> {
                let count = |n: u64| {
                    i64::try_from(n)
                        .map_err(|e| self.corrupt(format!("the drill run {}", run.drill), e))
                };
                sqlx::query(
                    "INSERT INTO drill_runs (drill, started_at, finished_at, passed, \
                     checks_passed, checks_total, report) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(&run.drill)
                .bind($crate::stamp(run.started_at))
                .bind($crate::stamp(run.finished_at))
                .bind(i64::from(run.passed))
                .bind(count(run.checks_passed)?)
                .bind(count(run.checks_total)?)
                .bind(&run.report)
                .execute(&self.pool)
                .await
                .map_err(self.query_err("recording a drill"))?;
                Ok(())
            }

            async fn drill_runs_since(
                &self,
                since: chrono::DateTime<chrono::Utc>,
            ) -> Result<Vec<$crate::DrillRun>, $crate::StoreError> {
                use sqlx::Row as _;
                let rows = sqlx::query(
                    "SELECT drill, started_at, finished_at, passed, checks_passed, \
                     checks_total, report FROM drill_runs WHERE finished_at >= $1 ORDER BY id",
                )
                .bind($crate::stamp(since))
                .fetch_all(&self.pool)
                .await
                .map_err(self.query_err("reading the drills"))?;
                rows.iter()
                    .map(|r| {
                        let drill: String = r.get(0);
                        let what = || format!("the drill run {drill}");
                        let at = |i: usize| {
                            let text: String = r.get(i);
                            chrono::DateTime::parse_from_rfc3339(&text)
                                .map(|t| t.with_timezone(&chrono::Utc))
                                .map_err(|e| self.corrupt(what(), e))
                        };
                        let count = |i: usize| {
                            u64::try_from(r.get::<i64, _>(i)).map_err(|e| self.corrupt(what(), e))
                        };
                        Ok($crate::DrillRun {
                            started_at: at(1)?,
                            finished_at: at(2)?,
                            passed: r.get::<i64, _>(3) != 0,
                            checks_passed: count(4)?,
                            checks_total: count(5)?,
                            report: r.get(6),
                            drill,
                        })
                    })
                    .collect()
            }


            async fn fix_sequences(
                &self,
                session: &str,
            ) -> Result<Option<$crate::FixSequences>, $crate::StoreError> {
                use sqlx::Row as _;
                let Some(row) = sqlx::query(
                    "SELECT next_sender, next_target, created_at FROM fix_sessions \
                     WHERE session = $1",
                )
                .bind(session)
                .fetch_optional(&self.pool)
                .await
                .map_err(self.query_err("reading a FIX session's sequence numbers"))?
                else {
                    return Ok(None);
                };
                let what = || format!("the FIX session {session}");
                let seq = |i: usize| {
                    u64::try_from(row.get::<i64, _>(i)).map_err(|e| self.corrupt(what(), e))
                };
                let created: String = row.get(2);
                Ok(Some($crate::FixSequences {
                    next_sender: seq(0)?,
                    next_target: seq(1)?,
                    created_at: self.time(what, &created)?,
                }))
            }

            async fn fix_set_sequences(
                &self,
                session: &str,
                next_sender: u64,
                next_target: u64,
                at: chrono::DateTime<chrono::Utc>,
            ) -> Result<(), $crate::StoreError> {
                let what = "setting a FIX session's sequence numbers";
                sqlx::query(
                    "INSERT INTO fix_sessions (session, next_sender, next_target, created_at, \
                     updated_at) VALUES ($1, $2, $3, $4, $4) ON CONFLICT (session) DO UPDATE \
                     SET next_sender = excluded.next_sender, \
                     next_target = excluded.next_target, updated_at = excluded.updated_at",
                )
                .bind(session)
                .bind(self.fix_seq(session, next_sender)?)
                .bind(self.fix_seq(session, next_target)?)
                .bind($crate::stamp(at))
                .execute(&self.pool)
                .await
                .map_err(self.query_err(what))?;
                Ok(())
            }

            async fn fix_sent(
                &self,
                session: &str,
                message: &$crate::FixSentMessage,
                next_sender: u64,
                at: chrono::DateTime<chrono::Utc>,
            ) -> Result<(), $crate::StoreError> {
                let what = "keeping a message a FIX session sent";
                let mut tx = self.pool.begin().await.map_err(self.query_err(what))?;
                sqlx::query(
                    "INSERT INTO fix_sent (session, seq, msg_type, frame) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (session, seq) DO UPDATE SET msg_type = excluded.msg_type, \
                     frame = excluded.frame",
                )
                .bind(session)
                .bind(self.fix_seq(session, message.seq)?)
                .bind(&message.msg_type)
                .bind(&message.frame)
                .execute(&mut *tx)
                .await
                .map_err(self.query_err(what))?;
                let moved = sqlx::query(
                    "UPDATE fix_sessions SET next_sender = $2, updated_at = $3 WHERE session = $1",
                )
                .bind(session)
                .bind(self.fix_seq(session, next_sender)?)
                .bind($crate::stamp(at))
                .execute(&mut *tx)
                .await
                .map_err(self.query_err(what))?;
                if moved.rows_affected() != 1 {
                    return Err(self.corrupt(
                        format!("the FIX session {session}"),
                        "it has no sequence numbers: the message was not kept",
                    ));
                }
                tx.commit().await.map_err(self.query_err(what))?;
                Ok(())
            }

            async fn fix_sent_range(
                &self,
                session: &str,
                begin: u64,
                end: u64,
                limit: usize,
            ) -> Result<Vec<$crate::FixSentMessage>, $crate::StoreError> {
                use sqlx::Row as _;
                let rows = sqlx::query(
                    "SELECT seq, msg_type, frame FROM fix_sent WHERE session = $1 \
                     AND seq >= $2 AND seq <= $3 ORDER BY seq LIMIT $4",
                )
                .bind(session)
                .bind(i64::try_from(begin).unwrap_or(i64::MAX))
                .bind(i64::try_from(end).unwrap_or(i64::MAX))
                .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                .fetch_all(&self.pool)
                .await
                .map_err(self.query_err("reading the messages a FIX session sent"))?;
                rows.iter()
                    .map(|r| {
                        Ok($crate::FixSentMessage {
                            seq: u64::try_from(r.get::<i64, _>(0)).map_err(|e| {
                                self.corrupt(format!("a message of the FIX session {session}"), e)
                            })?,
                            msg_type: r.get(1),
                            frame: r.get(2),
                        })
                    })
                    .collect()
            }

            async fn fix_reset(
                &self,
                session: &str,
                next_sender: u64,
                next_target: u64,
                at: chrono::DateTime<chrono::Utc>,
            ) -> Result<(), $crate::StoreError> {
                let what = "resetting a FIX session";
                let mut tx = self.pool.begin().await.map_err(self.query_err(what))?;
                sqlx::query("DELETE FROM fix_sent WHERE session = $1")
                    .bind(session)
                    .execute(&mut *tx)
                    .await
                    .map_err(self.query_err(what))?;
                sqlx::query(
                    "INSERT INTO fix_sessions (session, next_sender, next_target, created_at, \
                     updated_at) VALUES ($1, $2, $3, $4, $4) ON CONFLICT (session) DO UPDATE \
                     SET next_sender = excluded.next_sender, \
                     next_target = excluded.next_target, created_at = excluded.created_at, \
                     updated_at = excluded.updated_at",
                )
                .bind(session)
                .bind(self.fix_seq(session, next_sender)?)
                .bind(self.fix_seq(session, next_target)?)
                .bind($crate::stamp(at))
                .execute(&mut *tx)
                .await
                .map_err(self.query_err(what))?;
                tx.commit().await.map_err(self.query_err(what))?;
                Ok(())
            }

            async fn fix_execution(
                &self,
                session: &str,
                e: &$crate::FixExecution,
            ) -> Result<Option<u64>, $crate::StoreError> {
                use sqlx::Row as _;
                let what = "keeping an execution a FIX session received";
                // One statement (no read then write in a transaction, which SQLite refuses
                // while the session's sequence numbers are being written): the next ordinal
                // and the row, or nothing for an ExecID kept before.
                let kept = sqlx::query(
                    "INSERT INTO fix_executions (session, ordinal, exec_id, cl_ord_id, exec_type, \
                     ord_status, symbol, side, last_qty, last_px, cum_qty, leaves_qty, \
                     commission, transact_time, text) \
                     SELECT $1, COALESCE(MAX(ordinal), 0) + 1, $2, $3, $4, $5, $6, $7, $8, $9, \
                     $10, $11, $12, $13, $14 FROM fix_executions WHERE session = $1 \
                     ON CONFLICT (session, exec_id) DO NOTHING",
                )
                .bind(session)
                .bind(&e.exec_id)
                .bind(&e.cl_ord_id)
                .bind(&e.exec_type)
                .bind(&e.ord_status)
                .bind(&e.symbol)
                .bind(&e.side)
                .bind(e.last_qty.to_string())
                .bind(e.last_px.to_string())
                .bind(e.cum_qty.to_string())
                .bind(e.leaves_qty.to_string())
                .bind(e.commission.to_string())
                .bind($crate::stamp(e.transact_time))
                .bind(e.text.as_deref())
                .execute(&self.pool)
                .await
                .map_err(self.query_err(what))?;
                if kept.rows_affected() == 0 {
                    return Ok(None);
                }
                let ordinal: i64 = sqlx::query(
                    "SELECT ordinal FROM fix_executions WHERE session = $1 AND exec_id = $2",
                )
                .bind(session)
                .bind(&e.exec_id)
                .fetch_one(&self.pool)
                .await
                .map_err(self.query_err(what))?
                .get(0);
                Ok(Some(u64::try_from(ordinal).map_err(|err| {
                    self.corrupt(format!("the FIX session {session}"), err)
                })?))
            }

            async fn fix_executions(
                &self,
                session: &str,
                after: u64,
            ) -> Result<Vec<$crate::FixExecution>, $crate::StoreError> {
                use sqlx::Row as _;
                let rows = sqlx::query(
                    "SELECT ordinal, exec_id, cl_ord_id, exec_type, ord_status, symbol, side, \
                     last_qty, last_px, cum_qty, leaves_qty, commission, transact_time, text \
                     FROM fix_executions WHERE session = $1 AND ordinal > $2 ORDER BY ordinal",
                )
                .bind(session)
                .bind(i64::try_from(after).unwrap_or(i64::MAX))
                .fetch_all(&self.pool)
                .await
                .map_err(self.query_err("reading the executions a FIX session received"))?;
                rows.iter()
                    .map(|r| {
                        let exec_id: String = r.get(1);
                        let what = || format!("execution {exec_id} of the FIX session {session}");
                        let dec = |i: usize, name: &str| {
                            let text: String = r.get(i);
                            self.decimal(format!("{} ({name})", what()), &text)
                        };
                        let at: String = r.get(12);
                        Ok($crate::FixExecution {
                            ordinal: u64::try_from(r.get::<i64, _>(0))
                                .map_err(|e| self.corrupt(what(), e))?,
                            cl_ord_id: r.get(2),
                            exec_type: r.get(3),
                            ord_status: r.get(4),
                            symbol: r.get(5),
                            side: r.get(6),
                            last_qty: dec(7, "LastQty")?,
                            last_px: dec(8, "LastPx")?,
                            cum_qty: dec(9, "CumQty")?,
                            leaves_qty: dec(10, "LeavesQty")?,
                            commission: dec(11, "Commission")?,
                            transact_time: self.time(what, &at)?,
                            text: r.get(13),
                            exec_id: exec_id.clone(),
                        })
                    })
                    .collect()
            }

            async fn registry_entries(
                &self,
                name: Option<&str>,
            ) -> Result<Vec<$crate::ModelEntry>, $crate::StoreError> {
                use sqlx::Row as _;
                let rows = sqlx::query(
                    "SELECT name, version, created_at, created_by, status, artifact_path, \
                     artifact_sha256, config_sha256, training_data_sha256, parent_version, \
                     gate_skipped, gate_checks, gate_result_sha256, drift_baseline, \
                     training_snapshot FROM model_registry \
                     WHERE CAST($1 AS TEXT) IS NULL OR name = $1 ORDER BY id",
                )
                .bind(name)
                .fetch_all(&self.pool)
                .await
                .map_err(self.query_err("reading the model registry"))?;
                rows.iter()
                    .map(|r| {
                        let name: String = r.get(0);
                        let version: String = r.get(1);
                        let what = || format!("model_registry {name} {version}");
                        let at: String = r.get(2);
                        let status: String = r.get(4);
                        Ok($crate::ModelEntry {
                            created_at: self.time(what, &at)?,
                            created_by: r.get(3),
                            status: $crate::ModelStatus::parse(&status).ok_or_else(|| {
                                self.corrupt(what(), format!("unknown status {status:?}"))
                            })?,
                            artifact_path: r.get(5),
                            artifact_sha256: r.get(6),
                            config_sha256: r.get(7),
                            training_data_sha256: r.get(8),
                            parent_version: r.get(9),
                            gate_skipped: r.get(10),
                            gate_checks: r.get(11),
                            gate_result_sha256: r.get(12),
                            drift_baseline: r.get(13),
                            training_snapshot: r.get(14),
                            name,
                            version,
                        })
                    })
                    .collect()
            }

            async fn registry_aliases(
                &self,
                name: &str,
            ) -> Result<Vec<(String, String)>, $crate::StoreError> {
                use sqlx::Row as _;
                let rows = sqlx::query(
                    "SELECT alias, version FROM model_aliases WHERE name = $1 ORDER BY alias",
                )
                .bind(name)
                .fetch_all(&self.pool)
                .await
                .map_err(self.query_err("reading a model's aliases"))?;
                Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
            }

            async fn registry_audit(
                &self,
                name: &str,
            ) -> Result<Vec<$crate::ModelAudit>, $crate::StoreError> {
                use sqlx::Row as _;
                let rows = sqlx::query(
                    "SELECT seq, at, actor, action, name, version, reason, detail \
                     FROM model_audit WHERE name = $1 ORDER BY seq",
                )
                .bind(name)
                .fetch_all(&self.pool)
                .await
                .map_err(self.query_err("reading the model registry's audit"))?;
                rows.iter()
                    .map(|r| {
                        let seq: i64 = r.get(0);
                        let at: String = r.get(1);
                        Ok($crate::ModelAudit {
                            seq,
                            at: self.time(|| format!("model_audit {seq}"), &at)?,
                            actor: r.get(2),
                            action: r.get(3),
                            name: r.get(4),
                            version: r.get(5),
                            reason: r.get(6),
                            detail: r.get(7),
                        })
                    })
                    .collect()
            }

            async fn registry_apply(
                &self,
                write: &$crate::RegistryWrite,
            ) -> Result<(), $crate::StoreError> {
                let what = "changing the model registry";
                let name = &write.audit.name;
                let mut tx = self.pool.begin().await.map_err(self.query_err(what))?;
                if let Some(e) = &write.insert {
                    sqlx::query(
                        "INSERT INTO model_registry (name, version, created_at, created_by, \
                         status, artifact_path, artifact_sha256, config_sha256, \
                         training_data_sha256, parent_version, gate_skipped, gate_checks, \
                         gate_result_sha256, drift_baseline, training_snapshot) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, \
                         $15)",
                    )
                    .bind(&e.name)
                    .bind(&e.version)
                    .bind($crate::stamp(e.created_at))
                    .bind(&e.created_by)
                    .bind(e.status.as_str())
                    .bind(&e.artifact_path)
                    .bind(&e.artifact_sha256)
                    .bind(&e.config_sha256)
                    .bind(&e.training_data_sha256)
                    .bind(&e.parent_version)
                    .bind(e.gate_skipped)
                    .bind(&e.gate_checks)
                    .bind(&e.gate_result_sha256)
                    .bind(&e.drift_baseline)
                    .bind(&e.training_snapshot)
                    .execute(&mut *tx)
                    .await
                    .map_err(self.query_err("registering a model version"))?;
                }
                for (version, status) in &write.statuses {
                    sqlx::query(
                        "UPDATE model_registry SET status = $1 WHERE name = $2 AND version = $3",
                    )
                    .bind(status.as_str())
                    .bind(name)
                    .bind(version)
                    .execute(&mut *tx)
                    .await
                    .map_err(self.query_err("changing a model version's status"))?;
                }
                for (alias, version) in &write.aliases {
                    match version {
                        Some(v) => sqlx::query(
                            "INSERT INTO model_aliases (name, alias, version) VALUES ($1, $2, $3) \
                             ON CONFLICT (name, alias) DO UPDATE SET version = excluded.version",
                        )
                        .bind(name)
                        .bind(alias)
                        .bind(v),
                        None => sqlx::query(
                            "DELETE FROM model_aliases WHERE name = $1 AND alias = $2",
                        )
                        .bind(name)
                        .bind(alias),
                    }
                    .execute(&mut *tx)
                    .await
                    .map_err(self.query_err("setting a model alias"))?;
                }
                if let Some(r) = &write.release {
                    let done = if r.id == 0 {
                        sqlx::query(
                            "INSERT INTO model_releases (name, candidate, production, stage, \
                             state, started_at, started_by, reason, updated_at, detail, \
                             canary_step, canary_weight, step_since) \
                             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
                        )
                        .bind(&r.name)
                        .bind(&r.candidate)
                        .bind(&r.production)
                        .bind(&r.stage)
                        .bind(r.state.as_str())
                        .bind($crate::stamp(r.started_at))
                        .bind(&r.started_by)
                        .bind(&r.reason)
                        .bind($crate::stamp(r.updated_at))
                        .bind(&r.detail)
                        .bind(i64::from(r.step))
                        .bind(r.weight.map(|w| w.to_string()))
                        .bind(&r.step_since)
                    } else {
                        sqlx::query(
                            "UPDATE model_releases SET stage = $1, state = $2, updated_at = $3, \
                             detail = $4, canary_step = $7, canary_weight = $8, \
                             step_since = $9 WHERE id = $5 AND name = $6",
                        )
                        .bind(&r.stage)
                        .bind(r.state.as_str())
                        .bind($crate::stamp(r.updated_at))
                        .bind(&r.detail)
                        .bind(r.id)
                        .bind(&r.name)
                        .bind(i64::from(r.step))
                        .bind(r.weight.map(|w| w.to_string()))
                        .bind(&r.step_since)
                    }
                    .execute(&mut *tx)
                    .await
                    .map_err(self.query_err("recording a model release"))?;
                    if done.rows_affected() != 1 {
                        return Err(self.corrupt(
                            format!("model_releases {} of {}", r.id, r.name),
                            "the release to change is not in the store",
                        ));
                    }
                }
                let a = &write.audit;
                sqlx::query(
                    "INSERT INTO model_audit (at, actor, action, name, version, reason, detail) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind($crate::stamp(a.at))
                .bind(&a.actor)
                .bind(&a.action)
                .bind(&a.name)
                .bind(&a.version)
                .bind(&a.reason)
                .bind(&a.detail)
                .execute(&mut *tx)
                .await
                .map_err(self.query_err("auditing a registry change"))?;
                tx.commit().await.map_err(self.query_err(what))?;
                Ok(())
            }

            async fn releases(
                &self,
                name: &str,
            ) -> Result<Vec<$crate::ModelRelease>, $crate::StoreError> {
                use sqlx::Row as _;
                let rows = sqlx::query(
                    "SELECT id, name, candidate, production, stage, state, started_at, \
                     started_by, reason, updated_at, detail, canary_step, canary_weight, step_since \
                     FROM model_releases \
                     WHERE name = $1 ORDER BY id",
                )
                .bind(name)
                .fetch_all(&self.pool)
                .await
                .map_err(self.query_err("reading the model releases"))?;
                rows.iter()
                    .map(|r| {
                        let id: i64 = r.get(0);
                        let what = || format!("model_releases {id}");
                        let state: String = r.get(5);
                        let started: String = r.get(6);
                        let updated: String = r.get(9);
                        Ok($crate::ModelRelease {
                            id,
                            name: r.get(1),
                            candidate: r.get(2),
                            production: r.get(3),
                            stage: r.get(4),
                            state: $crate::ReleaseState::parse(&state).ok_or_else(|| {
                                self.corrupt(what(), format!("unknown state {state:?}"))
                            })?,
                            started_at: self.time(what, &started)?,
                            started_by: r.get(7),
                            reason: r.get(8),
                            updated_at: self.time(what, &updated)?,
                            detail: r.get(10),
                            step: u32::try_from(r.get::<i64, _>(11)).map_err(|_| {
                                self.corrupt(what(), "canary_step out of range".to_string())
                            })?,
                            weight: match r.get::<Option<String>, _>(12) {
                                None => None,
                                Some(w) => Some(w.parse().map_err(|e| {
                                    self.corrupt(what(), format!("canary_weight {w:?}: {e}"))
                                })?),
                            },
                            step_since: r.get(13),
                        })
                    })
                    .collect()
            }

            async fn shadow_sessions(
                &self,
                release_id: i64,
            ) -> Result<Vec<$crate::ShadowSessionRow>, $crate::StoreError> {
                use sqlx::Row as _;
                let rows = sqlx::query(
                    "SELECT session, updated_at, figures FROM model_shadow_sessions \
                     WHERE release_id = $1 ORDER BY session",
                )
                .bind(release_id)
                .fetch_all(&self.pool)
                .await
                .map_err(self.query_err("reading a shadow run's sessions"))?;
                rows.iter()
                    .map(|r| {
                        let session: String = r.get(0);
                        let at: String = r.get(1);
                        Ok($crate::ShadowSessionRow {
                            release_id,
                            updated_at: self.time(
                                || format!("model_shadow_sessions {release_id} {session}"),
                                &at,
                            )?,
                            session,
                            figures: r.get(2),
                        })
                    })
                    .collect()
            }

            async fn save_shadow_sessions(
                &self,
                rows: &[$crate::ShadowSessionRow],
            ) -> Result<(), $crate::StoreError> {
                let what = "saving a shadow run's sessions";
                let mut tx = self.pool.begin().await.map_err(self.query_err(what))?;
                for row in rows {
                    sqlx::query(
                        "INSERT INTO model_shadow_sessions (release_id, session, updated_at, \
                         figures) VALUES ($1, $2, $3, $4) ON CONFLICT (release_id, session) \
                         DO UPDATE SET updated_at = excluded.updated_at, figures = excluded.figures",
                    )
                    .bind(row.release_id)
                    .bind(&row.session)
                    .bind($crate::stamp(row.updated_at))
                    .bind(&row.figures)
                    .execute(&mut *tx)
                    .await
                    .map_err(self.query_err(what))?;
                }
                tx.commit().await.map_err(self.query_err(what))?;
                Ok(())
            }

            async fn log_anchors(
                &self,
                chain: &str,
            ) -> Result<Vec<$crate::LogAnchor>, $crate::StoreError> {
                use sqlx::Row as _;
                let rows = sqlx::query(
                    "SELECT id, file, seq, hash, kind, at FROM log_anchors \
                     WHERE chain = $1 ORDER BY id",
                )
                .bind(chain)
                .fetch_all(&self.pool)
                .await
                .map_err(self.query_err("reading the log anchors"))?;
                rows.iter()
                    .map(|r| {
                        let id: i64 = r.get(0);
                        let what = || format!("log_anchors id {id}");
                        let seq: i64 = r.get(2);
                        let kind: String = r.get(4);
                        let at: String = r.get(5);
                        Ok($crate::LogAnchor {
                            chain: chain.to_string(),
                            file: r.get(1),
                            seq: u64::try_from(seq).map_err(|e| self.corrupt(what(), e))?,
                            hash: r.get(3),
                            kind: kind.parse().map_err(|e| self.corrupt(what(), e))?,
                            at: self.time(what, &at)?,
                        })
                    })
                    .collect()
            }

            async fn log_chains(&self) -> Result<Vec<String>, $crate::StoreError> {
                use sqlx::Row as _;
                let rows = sqlx::query(
                    "SELECT chain FROM log_anchors GROUP BY chain ORDER BY MIN(id)",
                )
                .fetch_all(&self.pool)
                .await
                .map_err(self.query_err("listing the anchored log chains"))?;
                Ok(rows.iter().map(|r| r.get(0)).collect())
            }

            async fn thin_log_anchors(
                &self,
                before: chrono::DateTime<chrono::Utc>,
            ) -> Result<u64, $crate::StoreError> {
                // `at` is RFC 3339 UTC text: its first 13 characters are the hour.
                let done = sqlx::query(
                    "DELETE FROM log_anchors WHERE kind = 'flush' AND at < $1 AND id NOT IN \
                     (SELECT MAX(id) FROM log_anchors WHERE kind = 'flush' AND at < $1 \
                     GROUP BY chain, file, substr(at, 1, 13))",
                )
                .bind($crate::stamp(before))
                .execute(&self.pool)
                .await
                .map_err(self.query_err("thinning the log anchors"))?;
                Ok(done.rows_affected())
            }
        }
    };
}

pub(crate) use sql_backend;

/// The control audit's columns, in the order `audit_row` reads them (a macro, for
/// `concat!`).
macro_rules! audit_columns {
    () => {
        "seq, at, who, remote, command, argument, reason, request_id, finished_at, ok, status, \
         outcome, error"
    };
}

pub(crate) use audit_columns;

/// A symbol's position, replaced whole.
pub(crate) const UPSERT_POSITION: &str = "INSERT INTO journal_positions (book, symbol, quantity, avg_price, updated_at) \
     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (book, symbol) DO UPDATE SET \
     quantity = excluded.quantity, avg_price = excluded.avg_price, \
     updated_at = excluded.updated_at";

/// A book's cash, replaced (its opening figures stay).
pub(crate) const UPSERT_CASH: &str = "INSERT INTO journal_cash (book, cash, updated_at) \
     VALUES ($1, $2, $3) ON CONFLICT (book) DO UPDATE SET cash = excluded.cash, \
     updated_at = excluded.updated_at";

/// A book's high-water mark, raised by what a journal transaction adds (never lowered).
pub(crate) const UPSERT_HIGH_WATER: &str = "INSERT INTO store_high_water (book, orders, fills, last_bar_at) \
     VALUES ($1, $2, $3, $4) ON CONFLICT (book) DO UPDATE SET \
     orders = store_high_water.orders + excluded.orders, \
     fills = store_high_water.fills + excluded.fills, \
     last_bar_at = CASE WHEN excluded.last_bar_at IS NOT NULL \
     AND (store_high_water.last_bar_at IS NULL \
     OR excluded.last_bar_at > store_high_water.last_bar_at) \
     THEN excluded.last_bar_at ELSE store_high_water.last_bar_at END";

/// What one journal transaction adds to its book's high-water mark.
#[derive(Debug, Default)]
pub(crate) struct HighWater {
    pub(crate) orders: i64,
    pub(crate) fills: i64,
    pub(crate) last_bar_at: Option<vigil_core::Timestamp>,
}

impl HighWater {
    /// Counts an intent (and its decision time) or a fill.
    pub(crate) fn note(&mut self, entry: &crate::JournalEntry) {
        use crate::JournalEntry;
        match entry {
            JournalEntry::Intent(o) => {
                self.orders += 1;
                self.moved_to(o.decided_at);
            }
            JournalEntry::Fill(_) => self.fills += 1,
            _ => {}
        }
    }

    /// The book's last bar moved to `at` (a mark the journal took).
    pub(crate) fn moved_to(&mut self, at: vigil_core::Timestamp) {
        self.last_bar_at = self.last_bar_at.max(Some(at));
    }
}
