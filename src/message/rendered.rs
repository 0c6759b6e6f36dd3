//! [`Rendered`]: the texts of one message, ready for the delivery, and
//! [`MessageError`].

use std::fmt;

use zeroize::Zeroizing;

use super::gsm7::{SmsEncoding, SmsLength};
use crate::destination::Channel;

/// The texts of one message, with the code in them: what a
/// [`Delivery`](crate::Delivery) sends.
///
/// Which texts there are depends on the channel: an SMS has its text
/// ([`Rendered::sms`]) and its length; an email a subject, a plain-text body
/// and an HTML body; a voice call a script; a custom channel the plain text
/// of the SMS template (no autofill line, no segment limit). [`Rendered::text`]
/// is the plain text in every case.
///
/// The strings are zeroed when it is dropped, and `Debug` prints none of
/// them. Do not log them.
///
/// ```
/// use vericode::{Channel, Locale, Messages, Purpose};
/// let messages = Messages::default();
/// // A preview shows the texts with the sample code 123456 and 10 minutes.
/// let sms = messages.preview(Locale::En, &Purpose::PasswordReset, &Channel::Sms, "Acme")?;
/// assert_eq!(
///     sms.sms(),
///     Some("123456 is your Acme code to reset your password. It expires in 10 minutes. Never share this code.")
/// );
/// assert_eq!(sms.sms_length().map(|l| l.units()), Some(97));
/// assert_eq!(format!("{sms:?}"), "Rendered { channel: Channel(sms), texts: \"<redacted>\" }");
/// let mail = messages.preview(Locale::En, &Purpose::PasswordReset, &Channel::Email, "Acme")?;
/// assert_eq!(mail.email_subject(), Some("Your Acme verification code"));
/// assert!(mail.email_html().unwrap().contains(">123456</p>"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Rendered {
    channel: Channel,
    text: Zeroizing<String>,
    subject: Option<Zeroizing<String>>,
    html: Option<Zeroizing<String>>,
    sms_length: Option<SmsLength>,
}

impl Rendered {
    pub(crate) fn for_sms(text: Zeroizing<String>, length: SmsLength) -> Rendered {
        Rendered {
            channel: Channel::Sms,
            text,
            subject: None,
            html: None,
            sms_length: Some(length),
        }
    }

    pub(crate) fn email(
        subject: Zeroizing<String>,
        text: Zeroizing<String>,
        html: Zeroizing<String>,
    ) -> Rendered {
        Rendered {
            channel: Channel::Email,
            text,
            subject: Some(subject),
            html: Some(html),
            sms_length: None,
        }
    }

    pub(crate) fn plain(channel: Channel, text: Zeroizing<String>) -> Rendered {
        Rendered {
            channel,
            text,
            subject: None,
            html: None,
            sms_length: None,
        }
    }

    /// The channel the texts are for.
    pub fn channel(&self) -> &Channel {
        &self.channel
    }

    /// The plain text: the SMS text, the email's plain-text body, the voice
    /// script, or a custom channel's text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The SMS text, autofill lines included, if this is an SMS.
    pub fn sms(&self) -> Option<&str> {
        (self.channel == Channel::Sms).then_some(self.text.as_str())
    }

    /// The SMS text's encoding and length, if this is an SMS.
    pub fn sms_length(&self) -> Option<SmsLength> {
        self.sms_length
    }

    /// The email subject, if this is an email.
    pub fn email_subject(&self) -> Option<&str> {
        self.subject.as_deref().map(String::as_str)
    }

    /// The plain-text email body, if this is an email.
    pub fn email_text(&self) -> Option<&str> {
        (self.channel == Channel::Email).then_some(self.text.as_str())
    }

    /// The HTML email body (a whole document), if this is an email.
    pub fn email_html(&self) -> Option<&str> {
        self.html.as_deref().map(String::as_str)
    }

    /// The script a voice call reads, the code spoken one character at a
    /// time and said twice, if this is a voice call.
    pub fn voice_script(&self) -> Option<&str> {
        (self.channel == Channel::Voice).then_some(self.text.as_str())
    }
}

impl fmt::Debug for Rendered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rendered")
            .field("channel", &self.channel)
            .field("texts", &"<redacted>")
            .finish()
    }
}

/// A message that could not be rendered.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MessageError {
    /// The SMS does not fit one segment even with the short template.
    #[error("the SMS takes {units} {encoding} units; one segment holds {limit}")]
    SmsTooLong {
        /// The encoding the short text needs.
        encoding: SmsEncoding,
        /// The units the short text takes, autofill lines included.
        units: usize,
        /// The most one segment holds in that encoding.
        limit: usize,
    },
    /// The message carries transaction details but its template for this
    /// channel does not show them (`{action}`): a code must never approve
    /// details the person was not shown, so nothing was sent. Add
    /// `{action}` to the template (for email, to the text and HTML bodies).
    #[error("the message template does not show the transaction details ({{action}})")]
    DetailsNotShown,
}
