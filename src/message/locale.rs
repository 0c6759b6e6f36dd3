//! [`Locale`]: the languages vericode writes messages in.

use std::fmt;
use std::str::FromStr;

/// A language for messages, with built-in texts for each.
///
/// Portuguese texts are Brazilian Portuguese (`senha`, `você`); an application
/// writing for Portugal overrides the templates and phrases it needs.
///
/// ```
/// use vericode::Locale;
/// assert_eq!(Locale::parse("pt-BR")?, Locale::Pt);
/// assert_eq!(Locale::parse("de_AT")?, Locale::De);
/// assert_eq!(Locale::parse("EN")?.as_str(), "en");
/// assert!(Locale::parse("ja-JP").is_err());
/// // Unknown tags fall back to the default, English, only if you ask for it:
/// assert_eq!(Locale::parse("ja-JP").unwrap_or_default(), Locale::En);
/// # Ok::<(), vericode::UnknownLocale>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Locale {
    /// English (the default).
    #[default]
    En,
    /// Spanish, addressing the reader as `tú`.
    Es,
    /// German, addressing the reader as `Sie`.
    De,
    /// French, addressing the reader as `vous`.
    Fr,
    /// Portuguese (Brazilian).
    Pt,
}

/// A language tag whose primary language vericode has no texts for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("no messages for this language; vericode has en, es, de, fr and pt")]
pub struct UnknownLocale;

impl Locale {
    /// Every locale, in a stable order.
    pub const ALL: &'static [Locale] =
        &[Locale::En, Locale::Es, Locale::De, Locale::Fr, Locale::Pt];

    /// The locale of a BCP 47 language tag (`"pt-BR"`, `"fr"`) or a POSIX one
    /// (`"de_AT"`), by its primary language subtag, case-insensitively.
    /// Region and script are ignored. Any other language is an error; use
    /// `unwrap_or_default()` to fall back to English.
    pub fn parse(tag: &str) -> Result<Locale, UnknownLocale> {
        if tag.len() > 64 {
            return Err(UnknownLocale);
        }
        let primary = tag.trim().split(['-', '_']).next().unwrap_or("");
        Locale::ALL
            .iter()
            .copied()
            .find(|l| primary.eq_ignore_ascii_case(l.as_str()))
            .ok_or(UnknownLocale)
    }

    /// The two-letter ISO 639-1 code: `"en"`, `"es"`, `"de"`, `"fr"`, `"pt"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Locale::En => "en",
            Locale::Es => "es",
            Locale::De => "de",
            Locale::Fr => "fr",
            Locale::Pt => "pt",
        }
    }

    pub(crate) fn index(self) -> usize {
        match self {
            Locale::En => 0,
            Locale::Es => 1,
            Locale::De => 2,
            Locale::Fr => 3,
            Locale::Pt => 4,
        }
    }
}

impl FromStr for Locale {
    type Err = UnknownLocale;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Locale::parse(s)
    }
}

impl fmt::Display for Locale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_by_primary_subtag() {
        for (tag, want) in [
            ("en", Locale::En),
            ("en-US", Locale::En),
            ("EN-gb", Locale::En),
            ("es-419", Locale::Es),
            ("es_MX", Locale::Es),
            ("de-CH", Locale::De),
            ("fr-CA", Locale::Fr),
            ("pt-BR", Locale::Pt),
            ("pt-PT", Locale::Pt),
            (" pt ", Locale::Pt),
        ] {
            assert_eq!(Locale::parse(tag), Ok(want), "{tag}");
            assert_eq!(tag.parse::<Locale>(), Ok(want), "{tag}");
        }
        for bad in ["", "e", "eng", "ja", "zh-Hans", "-en", "enx", "en-", "x-en"] {
            let got = Locale::parse(bad);
            // "en-" still names English; everything else is refused.
            if bad == "en-" {
                assert_eq!(got, Ok(Locale::En));
            } else {
                assert_eq!(got, Err(UnknownLocale), "{bad}");
            }
        }
        assert_eq!(Locale::parse(&"en".repeat(40)), Err(UnknownLocale));
    }

    #[test]
    fn names_and_indexes_are_distinct() {
        for (i, l) in Locale::ALL.iter().enumerate() {
            assert_eq!(l.index(), i);
            assert_eq!(Locale::parse(l.as_str()), Ok(*l));
            assert_eq!(l.to_string(), l.as_str());
        }
    }
}
