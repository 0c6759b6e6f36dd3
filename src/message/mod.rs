//! Message rendering: the SMS, email and voice texts people receive, in five
//! languages, from templates the application may override, with SMS kept to
//! one segment and optional autofill lines.
//!
//! [`Messages::default()`] has the built-in texts and no autofill line;
//! [`Messages::builder()`] overrides templates and purpose phrases and turns
//! autofill on. Everything is checked when the messages are built: a template
//! without `{code}`, with an unknown placeholder or an unbalanced brace, a
//! malformed host or app hash is a [`ConfigError`], never a failure at send
//! time.
//!
//! See [`Messages`] for the placeholders, the phrases and what fits one
//! SMS segment.

mod autofill;
mod builder;
mod builtin;
pub(crate) mod gsm7;
mod locale;
mod rendered;
mod template;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fmt;

use zeroize::Zeroizing;

pub use builder::MessagesBuilder;
pub use gsm7::{SmsEncoding, SmsLength, sms_length};
pub use locale::{Locale, UnknownLocale};
pub use rendered::{MessageError, Rendered};
pub use template::{TemplateError, TemplateKind};

use crate::destination::Channel;
use crate::error::ConfigError;
use crate::purpose::Purpose;
use autofill::Autofill;
use template::{Escape, Template, Values};

type TemplateKey = (Locale, TemplateKind, Option<Purpose>);

/// Where [`Messages`] keeps the template of `locale` and `kind` for purposes
/// without their own: every locale has a row of every kind.
fn base_index(locale: Locale, kind: TemplateKind) -> usize {
    locale.index() * TemplateKind::ALL.len() + kind.index()
}

/// How the messages people receive are written: templates per locale, kind
/// and purpose, purpose phrases, and autofill lines.
///
/// # Placeholders
///
/// `{app}` the application's name, `{code}` the code (in a voice script its
/// characters one at a time, `1, 2, 3, 4, 5, 6`), `{action}` what the code is
/// for, `{minutes}` the lifetime as a number, `{duration}` the lifetime in
/// words ("1 minute", "10 minutes"; "10 Minuten"…), `{{` and `}}` literal
/// braces. In HTML every value is escaped; the template's own markup is not.
///
/// # Action phrases
///
/// `{action}` is a phrase per locale and purpose. Custom purposes get a
/// generic one ("verify it's you") unless [`MessagesBuilder::action_phrase`]
/// names one. Each locale's phrases fit one slot, and an application's own
/// phrases must fit it too:
///
/// | locale | slot | built-in example |
/// | --- | --- | --- |
/// | en | "…code to ___" | `sign in from a new device` |
/// | es | "…código para ___" | `restablecer tu contraseña` |
/// | de | "Ihr Code ___ lautet" (with `zur`/`zum`) | `zum Zurücksetzen Ihres Passworts` |
/// | fr | "…code pour ___" | `réinitialiser votre mot de passe` |
/// | pt | "…código para ___" | `redefinir sua senha` |
///
/// # One SMS segment
///
/// An SMS is rendered with the `sms` template, then, if that does not fit one
/// segment (see [`sms_length`]), with `sms_short`; if neither fits,
/// [`MessageError::SmsTooLong`]. Autofill lines count. The short texts leave
/// out the purpose and keep the sender, the code, the expiry and "never
/// share". Units with a 12-character app name, an 8-character code and a
/// 4-digit lifetime (`full/short`, the host `example.com`):
///
/// | locale | no autofill | app hash | origin-bound line | both |
/// | --- | --- | --- | --- | --- |
/// | en (GSM-7, 160) | 122 / 82 | 135 / 95 | 146 / 106 | 158 / 118 |
/// | de (GSM-7, 160) | 141 / 90 | 154 / 103 | **165** / 114 | **177** / 126 |
/// | fr (GSM-7, 160) | 142 / 81 | 155 / 94 | **166** / 105 | **178** / 117 |
/// | es (UCS-2, 70) | **142** / 67 | **155** / **80** | **166** / **91** | **178** / **103** |
/// | pt (UCS-2, 70) | **132** / 69 | **145** / **82** | **156** / **93** | **168** / **105** |
///
/// (the longest purpose of each locale; bold: does not fit.) So English,
/// German and French always fit, with the full text or the short one, even
/// with both autofill lines and a 45-character host. Spanish and
/// Portuguese need á, í, ó, ú, ã, ç…, hence UCS-2: their full text never fits
/// and SMS sends the short one, which fits without autofill; with the app hash
/// only if the app name, code and minutes together have at most 14 (es) or 12
/// (pt) characters ("Acme", 6 digits, 10 minutes); with the origin-bound line
/// never. Such a configuration is refused when the verifier is built, naming
/// the locale: leave the locale out with [`MessagesBuilder::locales`], or
/// override its `sms_short` with a shorter text.
///
/// # Custom channels
///
/// A custom channel (a chat app…) gets the text of the `sms` template, with
/// neither autofill lines nor a length limit.
///
/// # Example
///
/// ```
/// use vericode::{Locale, Messages, Purpose, TemplateKind};
/// let wire = Purpose::custom("wire_transfer")?;
/// let messages = Messages::builder()
///     .action_phrase(Locale::En, wire.clone(), "approve a wire transfer")
///     .template(Locale::En, TemplateKind::EmailSubject, Some(wire), "{app}: approve your transfer")
///     .webotp("acme.example", None)
///     .build()?;
/// # let _ = messages;
///
/// // Mistakes are refused when the messages are built, not when a code is sent.
/// let no_code = Messages::builder()
///     .template(Locale::De, TemplateKind::Sms, None, "Ihr Code kommt gleich.")
///     .build();
/// assert!(no_code.is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Messages {
    /// The template of each locale and kind for purposes without their own,
    /// at `base_index(locale, kind)`: found without hashing (every SMS issued
    /// looks one up).
    base: Vec<Template>,
    /// Templates of purposes that have their own.
    templates: HashMap<(Locale, TemplateKind, Purpose), Template>,
    phrases: HashMap<(Locale, Purpose), Box<str>>,
    /// Purposes with their own templates or phrases, in the order given.
    purposes: Vec<Purpose>,
    autofill: Autofill,
    /// The locales sent in; the first is the fallback for any other.
    locales: Vec<Locale>,
}

impl Default for Messages {
    /// The built-in texts in every locale; no autofill line.
    fn default() -> Self {
        let mut base = Vec::with_capacity(Locale::ALL.len() * TemplateKind::ALL.len());
        for &locale in Locale::ALL {
            for &kind in TemplateKind::ALL {
                debug_assert_eq!(base.len(), base_index(locale, kind));
                base.push(
                    Template::parse(&builtin::template(locale, kind), kind)
                        .expect("built-in templates are valid"),
                );
            }
        }
        Messages {
            base,
            templates: HashMap::new(),
            phrases: HashMap::new(),
            purposes: Vec::new(),
            autofill: Autofill::default(),
            locales: Locale::ALL.to_vec(),
        }
    }
}

impl fmt::Debug for Messages {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Messages")
            .field("locales", &self.locales)
            .field("custom_purposes", &self.purposes)
            .field("autofill", &self.autofill)
            .finish_non_exhaustive()
    }
}

impl Messages {
    /// A builder starting from the built-in texts.
    pub fn builder() -> MessagesBuilder {
        MessagesBuilder::default()
    }

    /// The texts of a message with the sample code `123456` and a 10-minute
    /// lifetime: to look at templates, never to send.
    pub fn preview(
        &self,
        locale: Locale,
        purpose: &Purpose,
        channel: &Channel,
        app: &str,
    ) -> Result<Rendered, MessageError> {
        self.render(locale, purpose, channel, app, "123456", 10)
    }

    /// Renders the message for `channel`. A locale the messages do not send in
    /// falls back to the first of [`MessagesBuilder::locales`].
    pub(crate) fn render(
        &self,
        locale: Locale,
        purpose: &Purpose,
        channel: &Channel,
        app: &str,
        code: &str,
        minutes: i64,
    ) -> Result<Rendered, MessageError> {
        self.render_with(locale, purpose, channel, app, code, minutes, None)
    }

    /// [`Messages::render`] with the transaction details, when there are any,
    /// in place of the purpose's action phrase: the person reads exactly what
    /// the code approves ("approve a payment of 42.00 EUR to ACME").
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn render_with(
        &self,
        locale: Locale,
        purpose: &Purpose,
        channel: &Channel,
        app: &str,
        code: &str,
        minutes: i64,
        details: Option<&str>,
    ) -> Result<Rendered, MessageError> {
        let locale = if self.locales.contains(&locale) {
            locale
        } else {
            self.locales[0]
        };
        let own_phrase = if self.phrases.is_empty() {
            None
        } else {
            self.phrases.get(&(locale, purpose.clone()))
        };
        let action = match (details, own_phrase) {
            (Some(d), _) => d,
            (None, Some(p)) => p,
            (None, None) => builtin::action(locale, purpose),
        };
        let mut minutes_text = builtin::ShortText::new();
        minutes_text.push_number(minutes);
        let mut duration = builtin::ShortText::new();
        builtin::duration(locale, minutes, &mut duration);
        let mut v = Values {
            app,
            code,
            action,
            minutes: minutes_text.as_str(),
            duration: duration.as_str(),
        };
        // With details, every template of the message that shows the code
        // must show them too (an email subject without the code need not);
        // the SMS path picks among its two.
        let template = |kind| -> Result<&Template, MessageError> {
            let t = self.template(locale, kind, purpose);
            if details.is_some() && t.has(template::Field::Code) && !t.has(template::Field::Action)
            {
                return Err(MessageError::DetailsNotShown);
            }
            Ok(t)
        };
        Ok(match channel {
            Channel::Sms => return self.sms(locale, purpose, &v, details.is_some()),
            Channel::Email => Rendered::email(
                template(TemplateKind::EmailSubject)?.render(&v, Escape::None, 0),
                template(TemplateKind::EmailText)?.render(&v, Escape::None, 0),
                template(TemplateKind::EmailHtml)?.render(&v, Escape::Html, 0),
            ),
            Channel::Voice => {
                let spoken = spell_out(code);
                v.code = &spoken;
                let script = template(TemplateKind::Voice)?.render(&v, Escape::None, 0);
                Rendered::plain(Channel::Voice, script)
            }
            Channel::Custom(_) => Rendered::plain(
                channel.clone(),
                template(TemplateKind::Sms)?.render(&v, Escape::None, 0),
            ),
        })
    }

    /// The `sms` text if it fits one segment, else the `sms_short` one.
    ///
    /// With transaction details, only a template that shows them (has
    /// `{action}`) will do: a code must never approve details the person was
    /// not shown.
    fn sms(
        &self,
        locale: Locale,
        purpose: &Purpose,
        v: &Values<'_>,
        must_show_action: bool,
    ) -> Result<Rendered, MessageError> {
        let extra = self.autofill.len(v.code);
        let mut last: Option<SmsLength> = None;
        for kind in [TemplateKind::Sms, TemplateKind::SmsShort] {
            let template = self.template(locale, kind, purpose);
            let mut text = template.render(v, Escape::None, extra);
            self.autofill.append(&mut text, v.code);
            let length = sms_length(&text);
            if length.fits_one_segment()
                && (!must_show_action || template.has(template::Field::Action))
            {
                return Ok(Rendered::for_sms(text, length));
            }
            last = Some(length);
        }
        let length = last.unwrap_or_else(|| sms_length(""));
        Err(MessageError::SmsTooLong {
            encoding: length.encoding(),
            units: length.units(),
            limit: length.limit(),
        })
    }

    fn template(&self, locale: Locale, kind: TemplateKind, purpose: &Purpose) -> &Template {
        // Only purposes with overrides are worth a lookup by purpose.
        let own = if self.purposes.contains(purpose) {
            self.templates.get(&(locale, kind, purpose.clone()))
        } else {
            None
        };
        own.unwrap_or(&self.base[base_index(locale, kind)])
    }

    /// Checks at build time that an SMS fits one segment (with the short
    /// template if need be) in every locale sent in, for every built-in
    /// purpose, every purpose with its own templates or phrases, and custom
    /// purposes without (`purpose: None` in the error), with the app's name,
    /// a code of `code_len` characters and the longest lifetime.
    pub(crate) fn check(
        &self,
        app_name: &str,
        code_len: usize,
        max_minutes: i64,
    ) -> Result<(), ConfigError> {
        // Every character an alphabet may hold is one GSM-7 septet
        // (`Alphabet::custom` refuses the others), so a code of '0's is as
        // long as any code of the format.
        let code = "0".repeat(code_len);
        let generic = Purpose::custom("vericode.any_custom").expect("a valid custom name");
        let builtins = [
            Purpose::LoginNewDevice,
            Purpose::CredentialChange,
            Purpose::StepUp,
            Purpose::PasswordReset,
        ];
        let purposes = builtins.iter().chain(&self.purposes).map(|p| (p, Some(p)));
        for (purpose, named) in purposes.chain([(&generic, None)]) {
            for &locale in &self.locales {
                let rendered =
                    self.render(locale, purpose, &Channel::Sms, app_name, &code, max_minutes);
                if let Err(MessageError::SmsTooLong { units, limit, .. }) = rendered {
                    return Err(ConfigError::SmsTooLong {
                        locale,
                        purpose: named.cloned(),
                        units,
                        limit,
                    });
                }
            }
        }
        Ok(())
    }
}

/// The code as a voice reads it: one character at a time, comma-separated so
/// text-to-speech pauses ("1, 2, 3, 4, 5, 6").
fn spell_out(code: &str) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::with_capacity(code.len() * 3));
    for (i, c) in code.chars().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push(c);
    }
    out
}
