//! The channels and the dispatcher against real protocols on 127.0.0.1: a recording HTTP
//! server for the webhook-style channels, aiosmtpd for email.

mod dispatch;
mod email;
mod http_channels;
mod support;
