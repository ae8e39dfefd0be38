//! The venue outage: while the venue cannot be reached, orders are held (their intents stay
//! journaled) and the venue is asked again with backoff; when it answers, each held order
//! is looked up by client order id before it is sent, so that none is sent twice. An order
//! replaced or cancelled meanwhile is withdrawn: never sent.
//!
//! [`VenueOutage`] holds that state; its methods return what changed (the wait before the
//! next attempt, the orders withdrawn unsent) and the actor does the I/O.

use std::time::Duration;

use chrono::{DateTime, Utc};
use vigil_core::{Backoff, ClientOrderId, OrderRequest};

/// An order held while the venue is unreachable, with the cancels that go before it.
#[derive(Debug)]
pub(crate) struct Held {
    pub(crate) request: OrderRequest,
    /// Orders at the venue it replaces, cancelled before it is sent.
    pub(crate) cancels: Vec<ClientOrderId>,
    /// It was sent once and the answer was lost: the venue may have it.
    pub(crate) attempted: bool,
    /// Still wanted. An order replaced or cancelled while the venue was down is not sent
    /// when it returns; one that was `attempted` stays held so that it is looked up and,
    /// if the venue has it after all, cancelled there.
    pub(crate) wanted: bool,
}

/// An outage under way.
#[derive(Debug)]
pub(crate) struct Outage {
    pub(crate) since: DateTime<Utc>,
    backoff: Backoff,
    retrying: bool,
    /// Held orders no longer wanted (replaced or cancelled), not sent.
    pub(crate) withdrawn: u64,
}

/// The held orders, oldest first, and the outage under way.
#[derive(Debug, Default)]
pub(crate) struct VenueOutage {
    held: Vec<Held>,
    outage: Option<Outage>,
}

impl VenueOutage {
    /// An outage is under way: orders are held.
    pub(crate) fn is_down(&self) -> bool {
        self.outage.is_some()
    }

    /// How many orders are held.
    pub(crate) fn held(&self) -> usize {
        self.held.len()
    }

    /// The venue could not be reached at `now`: begins an outage unless one is under way.
    /// Returns the first wait before the venue is asked again when one began; the waits
    /// follow `backoff`.
    pub(crate) fn begin(&mut self, now: DateTime<Utc>, backoff: Backoff) -> Option<Duration> {
        if self.outage.is_some() {
            return None;
        }
        self.outage = Some(Outage {
            since: now,
            backoff,
            retrying: false,
            withdrawn: 0,
        });
        Some(backoff.peek())
    }

    /// Keeps `request` (journaled, not sent) until the venue answers; `attempted` when it
    /// was sent once and the answer was lost.
    ///
    /// An order is sent only if it is still wanted: an order held earlier that `request`
    /// replaces (one of its `cancels`) is withdrawn here, never sent, and the cancels that
    /// order carried pass to `request`. Returns the orders withdrawn that never reached the
    /// venue: to be closed (journaled cancelled).
    pub(crate) fn hold(
        &mut self,
        request: OrderRequest,
        cancels: Vec<ClientOrderId>,
        attempted: bool,
    ) -> Vec<ClientOrderId> {
        let mut closed = Vec::new();
        let mut at_venue = Vec::with_capacity(cancels.len());
        for id in cancels {
            match self
                .held
                .iter()
                .position(|h| h.request.client_order_id == id)
            {
                // Withdrawn already: looked up (and cancelled) at the venue's return.
                Some(i) if !self.held[i].wanted => {}
                Some(i) => {
                    let (carried, unsent) = self.withdraw(i);
                    closed.extend(unsent);
                    for carried in carried {
                        if !at_venue.contains(&carried) {
                            at_venue.push(carried);
                        }
                    }
                }
                None => at_venue.push(id),
            }
        }
        self.held.push(Held {
            request,
            cancels: at_venue,
            attempted,
            wanted: true,
        });
        closed
    }

    /// Withdraws the held order at `index`: no longer wanted, it is not sent when the venue
    /// returns. One never sent leaves the held orders (returned, to be closed now); one
    /// `attempted` stays held, unwanted, to be looked up at the venue's return.
    /// Returns the cancels it carried (orders at the venue it was to replace).
    fn withdraw(&mut self, index: usize) -> (Vec<ClientOrderId>, Option<ClientOrderId>) {
        if let Some(o) = self.outage.as_mut() {
            o.withdrawn += 1;
        }
        let h = &mut self.held[index];
        h.wanted = false;
        let cancels = std::mem::take(&mut h.cancels);
        let unsent = match h.attempted {
            true => None,
            false => Some(self.held.remove(index).request.client_order_id),
        };
        (cancels, unsent)
    }

    /// Withdraws every held order still wanted (a cancel-all while the venue is down): none
    /// is sent when the venue returns; one whose first attempt may have reached it is
    /// looked up and cancelled there. What they were to replace stays for the cancel-all
    /// itself to cancel. Returns how many, and those that never reached the venue (to be
    /// closed now).
    pub(crate) fn drop_wanted(&mut self) -> (usize, Vec<ClientOrderId>) {
        let mut dropped = 0;
        let mut closed = Vec::new();
        let mut i = 0;
        while i < self.held.len() {
            if !self.held[i].wanted {
                i += 1;
                continue;
            }
            dropped += 1;
            let (_, unsent) = self.withdraw(i);
            match unsent {
                Some(id) => closed.push(id),
                None => i += 1,
            }
        }
        (dropped, closed)
    }

    /// The wait before the next attempt, unless none is due (no outage, or an attempt is
    /// scheduled already): the attempt counts as scheduled from now.
    pub(crate) fn schedule_retry(&mut self) -> Option<Duration> {
        let outage = self.outage.as_mut().filter(|o| !o.retrying)?;
        outage.retrying = true;
        Some(outage.backoff.peek())
    }

    /// The scheduled attempt came back; `false` when no outage is under way any more.
    pub(crate) fn attempted(&mut self) -> bool {
        match self.outage.as_mut() {
            Some(o) => {
                o.retrying = false;
                true
            }
            None => false,
        }
    }

    /// The attempt failed: the wait doubles, up to the backoff's maximum.
    pub(crate) fn back_off(&mut self) {
        if let Some(o) = self.outage.as_mut() {
            o.backoff.next_delay();
        }
    }

    /// The venue answers: the held orders, to look up and send.
    pub(crate) fn take_held(&mut self) -> Vec<Held> {
        std::mem::take(&mut self.held)
    }

    /// Ends the outage, when one is under way.
    pub(crate) fn end(&mut self) -> Option<Outage> {
        self.outage.take()
    }

    /// `h` could not be looked up or sent when the venue came back, for it was gone again:
    /// held until the next attempt. It may have reached the venue, and the cancels already
    /// sent are not sent again.
    pub(crate) fn hold_again(&mut self, mut h: Held) {
        h.attempted = true;
        h.cancels.clear();
        self.held.push(h);
    }

    /// After `ended` ended: when the venue went down again meanwhile, this outage goes on
    /// (since the first began, its withdrawals counted) and `true` is returned.
    pub(crate) fn goes_on(&mut self, ended: &Outage) -> bool {
        match self.outage.as_mut() {
            Some(again) => {
                again.since = ended.since;
                again.withdrawn += ended.withdrawn;
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use rust_decimal_macros::dec;
    use vigil_core::{Side, Timestamp};

    use super::*;

    fn request(id: &str) -> OrderRequest {
        vigil_testkit::order_request(id, 0, Side::Buy, dec!(1), None, Timestamp::UNIX_EPOCH)
    }

    fn ids(v: &[ClientOrderId]) -> Vec<&str> {
        v.iter().map(ClientOrderId::as_str).collect()
    }

    fn down() -> VenueOutage {
        let mut o = VenueOutage::default();
        assert_eq!(
            o.begin(
                Timestamp::UNIX_EPOCH,
                Backoff::new(Duration::from_millis(100), Duration::from_millis(300))
            ),
            Some(Duration::from_millis(100))
        );
        o
    }

    #[test]
    fn a_held_order_replaced_before_the_venue_returns_is_withdrawn_and_its_cancels_carried() {
        let mut o = down();
        assert!(
            o.hold(request("a"), vec!["at-venue".into()], false)
                .is_empty()
        );
        // "b" replaces "a": "a" never reached the venue, so it is closed; the cancel of the
        // order at the venue passes to "b".
        let closed = o.hold(request("b"), vec!["a".into()], false);
        assert_eq!(ids(&closed), ["a"]);
        let held = o.take_held();
        assert_eq!(held.len(), 1);
        assert_eq!(ids(&held[0].cancels), ["at-venue"]);
        let ended = o.end().expect("under way");
        assert_eq!(ended.withdrawn, 1);
    }

    #[test]
    fn an_attempted_order_withdrawn_stays_held_unwanted_to_be_looked_up() {
        let mut o = down();
        o.hold(request("a"), Vec::new(), true);
        let closed = o.hold(request("b"), vec!["a".into()], false);
        assert!(closed.is_empty());
        // Withdrawn already: replacing it again withdraws nothing more.
        assert!(o.hold(request("c"), vec!["a".into()], false).is_empty());
        let (dropped, closed) = o.drop_wanted();
        assert_eq!((dropped, ids(&closed)), (2, vec!["b", "c"]));
        let held = o.take_held();
        assert_eq!(ids(&[held[0].request.client_order_id.clone()]), ["a"]);
        assert!(held.iter().all(|h| !h.wanted));
    }

    #[test]
    fn the_wait_doubles_up_to_the_max_and_one_attempt_is_scheduled_at_a_time() {
        let mut o = down();
        assert_eq!(
            o.begin(
                Timestamp::UNIX_EPOCH,
                Backoff::new(Duration::from_secs(9), Duration::from_secs(9))
            ),
            None
        );
        assert_eq!(o.schedule_retry(), Some(Duration::from_millis(100)));
        assert_eq!(o.schedule_retry(), None);
        assert!(o.attempted());
        o.back_off();
        assert_eq!(o.schedule_retry(), Some(Duration::from_millis(200)));
        assert!(o.attempted());
        o.back_off();
        assert_eq!(o.schedule_retry(), Some(Duration::from_millis(300)));
        assert!(o.end().is_some());
        assert!(!o.attempted());
        assert_eq!(o.schedule_retry(), None);
    }

    #[test]
    fn down_again_when_it_returned_the_outage_goes_on_from_its_start() {
        let mut o = down();
        o.hold(request("a"), Vec::new(), false);
        o.drop_wanted();
        let ended = o.end().expect("under way");
        assert!(!o.goes_on(&ended));
        let later = Timestamp::UNIX_EPOCH + chrono::TimeDelta::seconds(5);
        o.begin(
            later,
            Backoff::new(Duration::from_millis(100), Duration::from_millis(300)),
        );
        o.hold_again(Held {
            request: request("b"),
            cancels: vec!["x".into()],
            attempted: false,
            wanted: true,
        });
        assert!(o.goes_on(&ended));
        let again = o.end().expect("goes on");
        assert_eq!((again.since, again.withdrawn), (Timestamp::UNIX_EPOCH, 1));
        let held = o.take_held();
        assert!(held[0].attempted && held[0].cancels.is_empty());
    }
}
