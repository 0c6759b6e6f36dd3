//! [`MessagesBuilder`]: overrides and autofill settings, all checked at
//! [`MessagesBuilder::build`].

use super::autofill::Autofill;
use super::template::Template;
use super::{Locale, Messages, TemplateKey, TemplateKind};
use crate::error::ConfigError;
use crate::purpose::Purpose;

/// The longest action phrase, in characters.
const MAX_PHRASE_CHARS: usize = 80;

/// Builds [`Messages`]; see there for an example. Nothing is checked until
/// [`MessagesBuilder::build`], which checks everything.
#[derive(Debug, Default)]
pub struct MessagesBuilder {
    templates: Vec<(TemplateKey, String)>,
    phrases: Vec<(Locale, Purpose, String)>,
    webotp: Option<(String, Option<String>)>,
    app_hash: Option<String>,
    locales: Option<Vec<Locale>>,
}

impl MessagesBuilder {
    /// Replaces the `kind` template in `locale`, for one purpose
    /// (`Some(purpose)`) or for every purpose without its own (`None`).
    pub fn template(
        mut self,
        locale: Locale,
        kind: TemplateKind,
        purpose: Option<Purpose>,
        text: &str,
    ) -> Self {
        self.templates
            .push(((locale, kind, purpose), text.to_owned()));
        self
    }

    /// The `{action}` phrase for `purpose` in `locale` (1 to 80 characters,
    /// no control characters), replacing the built-in one for built-in
    /// purposes and the generic one for custom purposes.
    pub fn action_phrase(mut self, locale: Locale, purpose: Purpose, phrase: &str) -> Self {
        self.phrases.push((locale, purpose, phrase.to_owned()));
        self
    }

    /// Ends each SMS with the origin-bound line `@host #code`, or
    /// `@host #code @embedded` when codes are typed in an iframe from
    /// `embedded`, after a blank line, for WebOTP (Chrome) and Safari
    /// AutoFill. Hosts are lower-case ASCII host names, without scheme, port
    /// or path.
    ///
    /// The format is the WICG draft "Origin-bound one-time codes delivered via
    /// SMS" (<https://wicg.github.io/sms-one-time-codes/#format>): the last
    /// line, fields separated by exactly one space. The draft and Chromium's
    /// parser introduce the embedded host with `@`; Apple's article on
    /// domain-bound codes shows `%` (WICG/sms-one-time-codes issue 18);
    /// vericode follows the draft.
    ///
    /// ```
    /// use vericode::{Channel, Locale, Messages, Purpose};
    /// let m = Messages::builder().webotp("acme.example", Some("pay.example")).build()?;
    /// let sms = m.preview(Locale::En, &Purpose::StepUp, &Channel::Sms, "Acme")?;
    /// assert!(sms.text().ends_with(".\n\n@acme.example #123456 @pay.example"));
    /// assert!(Messages::builder().webotp("https://acme.example", None).build().is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn webotp(mut self, host: &str, embedded: Option<&str>) -> Self {
        self.webotp = Some((host.to_owned(), embedded.map(str::to_owned)));
        self
    }

    /// Adds the Android SMS Retriever app hash (11 characters of
    /// `A-Z a-z 0-9 + /`) to each SMS, on its own line after a blank line (above the
    /// origin-bound line if [`MessagesBuilder::webotp`] is on, since that one
    /// must be last). Google asks for at most 140 bytes
    /// (<https://developers.google.com/identity/sms-retriever/verify>), which
    /// is one segment: 160 GSM-7 septets or 70 UCS-2 units.
    pub fn android_app_hash(mut self, hash: &str) -> Self {
        self.app_hash = Some(hash.to_owned());
        self
    }

    /// Sends only in `primary` and `others`: a message for any other locale is
    /// written in `primary`, and only these are checked. Default: every locale,
    /// English first.
    pub fn locales(mut self, primary: Locale, others: &[Locale]) -> Self {
        let mut all = vec![primary];
        all.extend_from_slice(others);
        self.locales = Some(all);
        self
    }

    /// Checks everything and builds the messages.
    pub fn build(self) -> Result<Messages, ConfigError> {
        let mut m = Messages {
            autofill: Autofill::new(self.webotp, self.app_hash)?,
            ..Messages::default()
        };
        if let Some(locales) = self.locales {
            let mut unique: Vec<Locale> = Vec::with_capacity(locales.len());
            for l in locales {
                if !unique.contains(&l) {
                    unique.push(l);
                }
            }
            m.locales = unique;
        }
        for ((locale, kind, purpose), text) in self.templates {
            let t = Template::parse(&text, kind).map_err(|error| ConfigError::Template {
                locale,
                kind,
                purpose: purpose.clone(),
                error,
            })?;
            match purpose {
                Some(p) => {
                    note_purpose(&mut m.purposes, &p);
                    m.templates.insert((locale, kind, p), t);
                }
                None => m.base[super::base_index(locale, kind)] = t,
            }
        }
        for (locale, purpose, phrase) in self.phrases {
            let chars = phrase.chars().count();
            if phrase.trim().is_empty()
                || chars > MAX_PHRASE_CHARS
                || phrase.chars().any(char::is_control)
            {
                return Err(ConfigError::ActionPhrase { locale, purpose });
            }
            note_purpose(&mut m.purposes, &purpose);
            m.phrases.insert((locale, purpose), phrase.into());
        }
        Ok(m)
    }
}

fn note_purpose(purposes: &mut Vec<Purpose>, p: &Purpose) {
    let builtin = !matches!(p, Purpose::Custom(_));
    if !builtin && !purposes.contains(p) {
        purposes.push(p.clone());
    }
}
