//! The configured channels by name.

use std::collections::BTreeMap;
use std::sync::Arc;

use vigil_config::ChannelsConfig;

use crate::email::EmailChannel;
use crate::error::AlertError;
use crate::model::Channel;
use crate::pagerduty::PagerDutyChannel;
use crate::slack::SlackChannel;
use crate::teams::TeamsChannel;
use crate::twilio::{TwilioChannel, TwilioMode};
use crate::webhook::WebhookChannel;

/// Every channel name a route may use, whether configured or not.
pub use vigil_config::CHANNEL_NAMES;

/// The channels that can be used, by name (`email`, `slack`, `teams`, `sms`, `call`,
/// `pagerduty`, `webhook`). Cloning is cheap: channels are shared.
#[derive(Clone, Debug, Default)]
pub struct Channels {
    by_name: BTreeMap<String, Arc<dyn Channel>>,
}

impl Channels {
    /// No channels.
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds every configured channel. Does no network I/O, so a channel that is down now
    /// does not stop anything: its deliveries fail (and escalate) later.
    ///
    /// # Errors
    /// The first channel whose config cannot be used (validation catches these first).
    pub fn from_config(cfg: &ChannelsConfig) -> Result<Self, AlertError> {
        let mut out = Self::new();
        if let Some(c) = &cfg.email {
            out.insert(Arc::new(EmailChannel::new(c)?));
        }
        if let Some(c) = &cfg.slack {
            out.insert(Arc::new(SlackChannel::new(c)?));
        }
        if let Some(c) = &cfg.teams {
            out.insert(Arc::new(TeamsChannel::new(c)?));
        }
        if let Some(c) = &cfg.twilio {
            if c.sms {
                out.insert(Arc::new(TwilioChannel::new(c, TwilioMode::Sms)?));
            }
            if c.call {
                out.insert(Arc::new(TwilioChannel::new(c, TwilioMode::Call)?));
            }
        }
        if let Some(c) = &cfg.pagerduty {
            out.insert(Arc::new(PagerDutyChannel::new(c)?));
        }
        if let Some(c) = &cfg.webhook {
            out.insert(Arc::new(WebhookChannel::new(c)?));
        }
        Ok(out)
    }

    /// Adds a channel under its [`Channel::name`], replacing and returning one of that name.
    pub fn insert(&mut self, channel: Arc<dyn Channel>) -> Option<Arc<dyn Channel>> {
        self.by_name.insert(channel.name().to_string(), channel)
    }

    /// The channel of that name, if configured.
    pub fn get(&self, name: &str) -> Option<Arc<dyn Channel>> {
        self.by_name.get(name).cloned()
    }

    /// Whether a channel of that name is configured.
    pub fn contains(&self, name: &str) -> bool {
        self.by_name.contains_key(name)
    }

    /// The route of a notice that starts on channel `first`: `first`, then every channel of
    /// `escalation` that is configured, in order (the dispatcher tries the next when one
    /// fails for good). `None` when `first` is not configured.
    pub fn route(&self, first: &str, escalation: &[String]) -> Option<Vec<String>> {
        if !self.contains(first) {
            return None;
        }
        Some(
            std::iter::once(first.to_string())
                .chain(
                    escalation
                        .iter()
                        .filter(|e| *e != first && self.contains(e))
                        .cloned(),
                )
                .collect(),
        )
    }

    /// The configured channels' names, sorted.
    pub fn names(&self) -> Vec<&str> {
        self.by_name.keys().map(String::as_str).collect()
    }

    /// How many channels are configured.
    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    /// Whether no channel is configured.
    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, &Arc<dyn Channel>)> {
        self.by_name.iter().map(|(k, v)| (k.as_str(), v))
    }
}

/// Builds every configured channel; see [`Channels::from_config`].
///
/// # Errors
/// The first channel whose config cannot be used.
pub fn build_channels(cfg: &ChannelsConfig) -> Result<Channels, AlertError> {
    Channels::from_config(cfg)
}

#[cfg(test)]
mod tests;
