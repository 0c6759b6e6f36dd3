//! [`Delivery`]: how the application sends a code (SMS, email, voice…), the
//! [`Message`] it is handed, and [`RecordingDelivery`], which keeps messages
//! for tests and examples.
//!
//! vericode opens no connection of its own: the application's `Delivery`
//! calls its SMS or email provider.

use std::fmt;
use std::sync::Mutex;

use time::OffsetDateTime;

use crate::code::Code;
use crate::destination::Destination;
use crate::message::Rendered;
use crate::purpose::Purpose;

/// A message to deliver: where, the code, what it is for, when it expires,
/// and a ready plain-text body.
///
/// `Debug` redacts the code and the body.
pub struct Message<'a> {
    pub(crate) destination: &'a Destination,
    pub(crate) code: &'a Code,
    pub(crate) purpose: &'a Purpose,
    pub(crate) expires_at: OffsetDateTime,
    pub(crate) rendered: &'a Rendered,
}

impl<'a> Message<'a> {
    /// Where to send it.
    pub fn destination(&self) -> &'a Destination {
        self.destination
    }

    /// The code, for applications that render their own text.
    pub fn code(&self) -> &'a Code {
        self.code
    }

    /// What the code is for.
    pub fn purpose(&self) -> &'a Purpose {
        self.purpose
    }

    /// When the challenge expires.
    pub fn expires_at(&self) -> OffsetDateTime {
        self.expires_at
    }

    /// The message text for the destination's channel, with the code in it:
    /// the SMS (one segment, autofill lines included), the email's plain
    /// text, the voice script. Send it as it is; do not log it.
    pub fn body(&self) -> &'a str {
        self.rendered.text()
    }

    /// Everything rendered for the channel: for email also the subject and
    /// the HTML part.
    pub fn rendered(&self) -> &'a Rendered {
        self.rendered
    }
}

impl fmt::Debug for Message<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Message")
            .field("destination", self.destination)
            .field("code", self.code)
            .field("purpose", self.purpose)
            .field("expires_at", &self.expires_at)
            .field("body", &"<redacted>")
            .finish()
    }
}

/// What a delivery reports back: the provider's message id, if it has one,
/// for support cases where a code never arrives.
///
/// ```
/// use vericode::Receipt;
/// assert_eq!(Receipt::with_id("SM123").id(), Some("SM123"));
/// assert_eq!(Receipt::default().id(), None);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Receipt {
    id: Option<String>,
}

impl Receipt {
    /// A receipt with the provider's message id.
    pub fn with_id(id: impl Into<String>) -> Self {
        Receipt {
            id: Some(id.into()),
        }
    }

    /// The provider's message id.
    pub fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }
}

/// Sends messages: the application's SMS, email or voice provider.
///
/// A code is stored only after `deliver` returns `Ok`: an error means no code
/// from that attempt will ever verify.
///
/// ```
/// use std::future::Future;
/// use vericode::{Delivery, Message, Receipt};
///
/// /// Sends through the application's own provider client.
/// struct Sms { /* client: provider::Client */ }
///
/// #[derive(Debug, thiserror::Error)]
/// #[error("the SMS provider refused the message")]
/// struct SmsError;
///
/// impl Delivery for Sms {
///     type Error = SmsError;
///     fn deliver(&self, message: &Message<'_>) -> impl Future<Output = Result<Receipt, SmsError>> + Send {
///         let (to, text) = (message.destination().address().to_owned(), message.body().to_owned());
///         async move {
///             // self.client.send(&to, &text).await.map_err(|_| SmsError)?;
///             let _ = (to, text);
///             Ok(Receipt::with_id("provider-message-id"))
///         }
///     }
/// }
/// ```
pub trait Delivery: Send + Sync {
    /// The provider's error; the verifier wraps it in
    /// [`IssueError::Delivery`](crate::IssueError::Delivery).
    type Error: std::error::Error + Send + Sync + 'static;

    /// Sends `message`.
    fn deliver(
        &self,
        message: &Message<'_>,
    ) -> impl Future<Output = Result<Receipt, Self::Error>> + Send;

    /// Whether another destination should be tried after `error` (the
    /// provider is down, the number cannot receive SMS…). The default is
    /// `false`: an error ends the attempt. When `true` and the request named
    /// fallbacks, the same challenge goes on to the next destination.
    fn is_retryable(&self, error: &Self::Error) -> bool {
        let _ = error;
        false
    }
}

impl<D: Delivery + ?Sized> Delivery for std::sync::Arc<D> {
    type Error = D::Error;
    fn deliver(
        &self,
        message: &Message<'_>,
    ) -> impl Future<Output = Result<Receipt, Self::Error>> + Send {
        (**self).deliver(message)
    }

    fn is_retryable(&self, error: &Self::Error) -> bool {
        (**self).is_retryable(error)
    }
}

/// A delivered message as [`RecordingDelivery`] keeps it.
#[derive(Clone)]
pub struct SentMessage {
    /// Where it went.
    pub destination: Destination,
    /// What the code is for.
    pub purpose: Purpose,
    /// The code, in plain text.
    pub code: String,
    /// The message text.
    pub body: String,
    /// When the challenge expires.
    pub expires_at: OffsetDateTime,
}

impl fmt::Debug for SentMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SentMessage")
            .field("destination", &self.destination)
            .field("purpose", &self.purpose)
            .field("code", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// A [`Delivery`] that sends nothing and keeps every message, so tests and
/// examples can read the code back. It holds plaintext codes: never use it in
/// production.
///
/// ```
/// use vericode::RecordingDelivery;
/// let outbox = RecordingDelivery::new();
/// assert!(outbox.last().is_none());
/// ```
#[derive(Default)]
pub struct RecordingDelivery {
    sent: Mutex<Vec<SentMessage>>,
}

impl fmt::Debug for RecordingDelivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordingDelivery")
            .field("messages", &self.sent().len())
            .finish()
    }
}

impl RecordingDelivery {
    /// An empty outbox.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every message so far, oldest first.
    pub fn sent(&self) -> Vec<SentMessage> {
        self.sent.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The latest message.
    pub fn last(&self) -> Option<SentMessage> {
        self.sent
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .last()
            .cloned()
    }

    /// The code in the latest message.
    pub fn last_code(&self) -> Option<String> {
        self.last().map(|m| m.code)
    }
}

/// Never fails.
#[derive(Debug, thiserror::Error)]
#[error("unreachable")]
pub enum Never {}

impl Delivery for RecordingDelivery {
    type Error = Never;
    fn deliver(
        &self,
        message: &Message<'_>,
    ) -> impl Future<Output = Result<Receipt, Never>> + Send {
        let mut sent = self.sent.lock().unwrap_or_else(|p| p.into_inner());
        sent.push(SentMessage {
            destination: message.destination.clone(),
            purpose: message.purpose.clone(),
            code: message.code.expose().to_owned(),
            body: message.body().to_owned(),
            expires_at: message.expires_at,
        });
        let receipt = Receipt::with_id(format!("recorded-{}", sent.len()));
        std::future::ready(Ok(receipt))
    }
}
