//! IronFix's [`MessageStore`] over vigil's store (SQLite or PostgreSQL): a FIX session's
//! sequence numbers and the messages it sent outlive the process, so that after a crash the
//! session resumes where it was and answers the counterparty's ResendRequest.
//!
//! The engine reads the two sequence numbers synchronously: they are cached here, and every
//! write goes to the store before the cache moves.

use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;
use ironfix_core::error::StoreError;
use ironfix_core::message::MsgType;
use ironfix_store::{MessageStore, StoredMessage};
use parking_lot::Mutex;
use vigil_core::SharedClock;
use vigil_store::{FixSentMessage, StateStore};

/// The most messages one resend page reads.
const PAGE: usize = 500;

/// A FIX session's state in vigil's store.
pub struct SessionStore {
    store: Arc<dyn StateStore>,
    session: String,
    wall: SharedClock,
    /// `(next_sender, next_target, created)`, as last written.
    cached: Mutex<(u64, u64, SystemTime)>,
}

impl std::fmt::Debug for SessionStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (sender, target, _) = *self.cached.lock();
        f.debug_struct("SessionStore")
            .field("session", &self.session)
            .field("next_sender", &sender)
            .field("next_target", &target)
            .finish_non_exhaustive()
    }
}

fn failed(seq_num: u64, what: &str, e: &vigil_store::StoreError) -> StoreError {
    StoreError::StoreFailed {
        seq_num,
        reason: format!("{what}: {e}"),
    }
}

impl SessionStore {
    /// Opens session `session`'s state, beginning it (both sequence numbers 1) when the
    /// store has none.
    ///
    /// # Errors
    /// When the store cannot be read or written.
    pub async fn open(
        store: Arc<dyn StateStore>,
        session: &str,
        wall: SharedClock,
    ) -> Result<Self, vigil_store::StoreError> {
        let now = wall.now();
        let held = match store.fix_sequences(session).await? {
            Some(s) => s,
            None => {
                store.fix_set_sequences(session, 1, 1, now).await?;
                vigil_store::FixSequences {
                    next_sender: 1,
                    next_target: 1,
                    created_at: now,
                }
            }
        };
        Ok(Self {
            store,
            session: session.to_string(),
            wall,
            cached: Mutex::new((held.next_sender, held.next_target, held.created_at.into())),
        })
    }

    /// The sequence numbers as last written: `(next_sender, next_target)`.
    pub fn sequences(&self) -> (u64, u64) {
        let (s, t, _) = *self.cached.lock();
        (s, t)
    }

    async fn set(&self, sender: u64, target: u64) -> Result<(), StoreError> {
        self.store
            .fix_set_sequences(&self.session, sender, target, self.wall.now())
            .await
            .map_err(|e| failed(sender, "setting the sequence numbers", &e))?;
        let mut c = self.cached.lock();
        c.0 = sender;
        c.1 = target;
        Ok(())
    }

    async fn page(
        &self,
        begin: u64,
        end: u64,
        limit: usize,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        if begin == 0 || begin > end {
            return Err(StoreError::InvalidRange { begin, end });
        }
        let sent = self
            .store
            .fix_sent_range(&self.session, begin, end, limit)
            .await
            .map_err(|e| StoreError::RetrieveFailed {
                seq_num: begin,
                reason: format!("reading the messages sent: {e}"),
            })?;
        sent.into_iter().map(stored).collect()
    }
}

/// A kept message as the engine's.
fn stored(m: FixSentMessage) -> Result<StoredMessage, StoreError> {
    let msg_type = MsgType::new(&m.msg_type).map_err(|e| StoreError::Corrupted {
        reason: format!("message {} has MsgType {:?}: {e}", m.seq, m.msg_type),
    })?;
    Ok(StoredMessage::new(m.seq, msg_type, m.frame.into()))
}

#[async_trait]
impl MessageStore for SessionStore {
    async fn store(
        &self,
        seq_num: u64,
        msg_type: &MsgType,
        message: &[u8],
    ) -> Result<(), StoreError> {
        let next = self.cached.lock().0;
        self.file_outbound(seq_num, msg_type, message, next).await
    }

    async fn get_range(&self, begin: u64, end: u64) -> Result<Vec<StoredMessage>, StoreError> {
        let end = if end == 0 { u64::MAX } else { end };
        let mut out = Vec::new();
        let mut from = begin;
        loop {
            let page = self.page(from, end, PAGE).await?;
            let full = page.len() == PAGE;
            let last = page.last().map(StoredMessage::seq_num);
            out.extend(page);
            match last {
                Some(l) if full && l < end => from = l + 1,
                _ => break,
            }
        }
        if out.is_empty() {
            return Err(StoreError::RangeNotAvailable { begin, end });
        }
        Ok(out)
    }

    async fn get_page(
        &self,
        begin: u64,
        end: u64,
        limit: usize,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        self.page(begin, end, limit).await
    }

    async fn file_outbound(
        &self,
        seq_num: u64,
        msg_type: &MsgType,
        message: &[u8],
        next_sender: u64,
    ) -> Result<(), StoreError> {
        let kept = FixSentMessage {
            seq: seq_num,
            msg_type: msg_type.as_str().to_string(),
            frame: message.to_vec(),
        };
        self.store
            .fix_sent(&self.session, &kept, next_sender, self.wall.now())
            .await
            .map_err(|e| failed(seq_num, "keeping a message sent", &e))?;
        self.cached.lock().0 = next_sender;
        Ok(())
    }

    fn next_sender_seq(&self) -> u64 {
        self.cached.lock().0
    }

    fn next_target_seq(&self) -> u64 {
        self.cached.lock().1
    }

    async fn set_next_sender_seq(&self, seq: u64) -> Result<(), StoreError> {
        let target = self.cached.lock().1;
        self.set(seq, target).await
    }

    async fn set_next_target_seq(&self, seq: u64) -> Result<(), StoreError> {
        let sender = self.cached.lock().0;
        self.set(sender, seq).await
    }

    async fn reset(&self) -> Result<(), StoreError> {
        self.reset_to(1, 1).await
    }

    /// One transaction: the messages sent are dropped and both numbers set.
    async fn reset_to(&self, next_sender: u64, next_target: u64) -> Result<(), StoreError> {
        let now = self.wall.now();
        self.store
            .fix_reset(&self.session, next_sender, next_target, now)
            .await
            .map_err(|e| failed(next_sender, "resetting the session", &e))?;
        *self.cached.lock() = (next_sender, next_target, now.into());
        Ok(())
    }

    fn creation_time(&self) -> SystemTime {
        self.cached.lock().2
    }
}
