//! Autofill lines appended to SMS texts, each opt-in:
//!
//! - **Origin-bound one-time codes** (WICG "Origin-bound one-time codes
//!   delivered via SMS", <https://wicg.github.io/sms-one-time-codes/#format>),
//!   read by WebOTP in Chrome and by Safari's security-code AutoFill: the last
//!   line is `@host #code`, or `@host #code @embedded-host` when the code is
//!   typed in a third-party iframe, with exactly one space between fields. The
//!   current draft and Chromium's parser introduce the embedded host with `@`;
//!   Apple's article on domain-bound codes shows `%` (WICG/sms-one-time-codes
//!   issue 18 is open about the mismatch). vericode follows the draft.
//! - **Android SMS Retriever** (<https://developers.google.com/identity/sms-retriever/verify>):
//!   the message includes the app's 11-character hash and is at most 140
//!   bytes, which one segment is (160 GSM-7 septets or 70 UCS-2 units).
//!
//! Both go after a blank line. With both, the hash comes first and the
//! origin-bound line last, since the draft reads only the last line and the
//! SMS Retriever looks anywhere in the message:
//!
//! ```text
//! 123456 is your Acme code to sign in from a new device. …
//!
//! FA+9qCX9VSu
//! @acme.example #123456
//! ```

use crate::error::ConfigError;

/// The autofill lines a [`Messages`](super::Messages) appends to SMS texts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Autofill {
    webotp: Option<(Box<str>, Option<Box<str>>)>,
    app_hash: Option<Box<str>>,
}

impl Autofill {
    /// Validates and keeps the settings.
    pub(crate) fn new(
        webotp: Option<(String, Option<String>)>,
        app_hash: Option<String>,
    ) -> Result<Autofill, ConfigError> {
        let webotp = match webotp {
            None => None,
            Some((host, embedded)) => {
                check_host(&host)?;
                if let Some(e) = &embedded {
                    check_host(e)?;
                }
                Some((host.into(), embedded.map(Into::into)))
            }
        };
        if let Some(h) = &app_hash {
            let ok = h.len() == 11
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/');
            if !ok {
                return Err(ConfigError::AppHash);
            }
        }
        Ok(Autofill {
            webotp,
            app_hash: app_hash.map(Into::into),
        })
    }

    /// `true` if any autofill line is on.
    pub(crate) fn is_on(&self) -> bool {
        self.webotp.is_some() || self.app_hash.is_some()
    }

    /// How many bytes [`Autofill::append`] adds.
    pub(crate) fn len(&self, code: &str) -> usize {
        let mut n = 0;
        self.write(code, &mut |s: &str| n += s.len());
        n
    }

    /// Appends the autofill lines to an SMS text.
    pub(crate) fn append(&self, text: &mut String, code: &str) {
        self.write(code, &mut |s: &str| text.push_str(s));
    }

    fn write(&self, code: &str, sink: &mut dyn FnMut(&str)) {
        if !self.is_on() {
            return;
        }
        sink("\n\n");
        if let Some(hash) = &self.app_hash {
            sink(hash);
            if self.webotp.is_some() {
                sink("\n");
            }
        }
        if let Some((host, embedded)) = &self.webotp {
            sink("@");
            sink(host);
            sink(" #");
            sink(code);
            if let Some(e) = embedded {
                sink(" @");
                sink(e);
            }
        }
    }
}

/// A host name as the origin-bound format carries it: lower-case ASCII labels
/// of letters, digits and `-` (not at either end), 1 to 63 bytes each,
/// separated by dots, 253 bytes at most; no scheme, port, path or trailing dot.
fn check_host(host: &str) -> Result<(), ConfigError> {
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len())
            && l.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if host.is_empty() || host.len() > 253 || !host.split('.').all(label_ok) {
        let shown: String = host.chars().take(64).collect();
        return Err(ConfigError::AutofillHost(shown));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(webotp: Option<(&str, Option<&str>)>, hash: Option<&str>) -> String {
        let a = Autofill::new(
            webotp.map(|(h, e)| (h.to_owned(), e.map(str::to_owned))),
            hash.map(str::to_owned),
        )
        .unwrap();
        let mut s = String::from("text");
        a.append(&mut s, "123456");
        assert_eq!(s.len(), 4 + a.len("123456"));
        s
    }

    #[test]
    fn exact_line_formats() {
        assert_eq!(line(None, None), "text");
        assert_eq!(
            line(Some(("example.com", None)), None),
            "text\n\n@example.com #123456"
        );
        assert_eq!(
            line(Some(("example.com", Some("ecommerce.example"))), None),
            "text\n\n@example.com #123456 @ecommerce.example"
        );
        assert_eq!(line(None, Some("FA+9qCX9VSu")), "text\n\nFA+9qCX9VSu");
        assert_eq!(
            line(Some(("example.com", None)), Some("FA+9qCX9VSu")),
            "text\n\nFA+9qCX9VSu\n@example.com #123456"
        );
    }

    #[test]
    fn hosts_are_validated() {
        for good in [
            "example.com",
            "a.b-c.example",
            "xn--bcher-kva.example",
            "localhost",
            "1.example",
        ] {
            assert!(check_host(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "Example.com",
            "https://example.com",
            "example.com:443",
            "example.com/login",
            "example.com.",
            ".example.com",
            "a..b",
            "-a.example",
            "a-.example",
            "exa mple.com",
            "bücher.example",
            "user@example.com",
            &format!("{}.com", "a".repeat(64)),
            &format!("{}a", "a.".repeat(127)), // 255 bytes
        ] {
            assert_eq!(
                check_host(bad),
                Err(ConfigError::AutofillHost(bad.chars().take(64).collect())),
                "{bad}"
            );
        }
    }

    #[test]
    fn app_hash_is_eleven_base64_characters() {
        let hash = |h: &str| Autofill::new(None, Some(h.to_owned()));
        assert!(hash("FA+9qCX9VSu").is_ok());
        assert!(hash("abc/DEF0123").is_ok());
        for bad in [
            "FA+9qCX9VS",
            "FA+9qCX9VSuu",
            "FA+9qCX9VS=",
            "FA 9qCX9VSu",
            "FA-9qCX9VSu",
            "",
        ] {
            assert_eq!(hash(bad), Err(ConfigError::AppHash), "{bad}");
        }
    }
}
