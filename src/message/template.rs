//! Templates: text with named placeholders, parsed and checked once when the
//! [`Messages`](super::Messages) are built, then filled in at send time.
//!
//! Placeholders: `{app}` (the application's name), `{code}` (the code; in a
//! voice script, its characters one at a time), `{action}` (what the code is
//! for: the purpose phrase), `{minutes}` (the lifetime in minutes, a number)
//! and `{duration}` (the lifetime in words, singular or plural: "1 minute",
//! "10 minutes"). `{{` and `}}` stand for literal braces.

use std::fmt;

use zeroize::Zeroizing;

/// Which text of a message a template renders.
///
/// ```
/// use vericode::TemplateKind;
/// assert!(TemplateKind::Sms.needs_code());
/// assert!(!TemplateKind::EmailSubject.needs_code());
/// assert_eq!(TemplateKind::SmsShort.as_str(), "sms_short");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TemplateKind {
    /// The SMS text (also the text for custom channels).
    Sms,
    /// The shorter SMS text, sent when [`TemplateKind::Sms`] does not fit one
    /// segment.
    SmsShort,
    /// The email subject. It may name the code, but the built-in ones do not:
    /// subjects show in notifications and mailbox lists.
    EmailSubject,
    /// The plain-text email body.
    EmailText,
    /// The HTML email body. Its own markup is trusted; every value put into
    /// it is HTML-escaped.
    EmailHtml,
    /// The script a voice call reads out.
    Voice,
}

impl TemplateKind {
    /// Every kind, in a stable order.
    pub const ALL: &'static [TemplateKind] = &[
        TemplateKind::Sms,
        TemplateKind::SmsShort,
        TemplateKind::EmailSubject,
        TemplateKind::EmailText,
        TemplateKind::EmailHtml,
        TemplateKind::Voice,
    ];

    /// The kind's position in [`TemplateKind::ALL`].
    pub(crate) fn index(self) -> usize {
        match self {
            TemplateKind::Sms => 0,
            TemplateKind::SmsShort => 1,
            TemplateKind::EmailSubject => 2,
            TemplateKind::EmailText => 3,
            TemplateKind::EmailHtml => 4,
            TemplateKind::Voice => 5,
        }
    }

    /// `true` if templates of this kind must contain `{code}` (all but the
    /// email subject).
    pub fn needs_code(self) -> bool {
        !matches!(self, TemplateKind::EmailSubject)
    }

    /// A stable name: `sms`, `sms_short`, `email_subject`, `email_text`,
    /// `email_html`, `voice`.
    pub fn as_str(self) -> &'static str {
        match self {
            TemplateKind::Sms => "sms",
            TemplateKind::SmsShort => "sms_short",
            TemplateKind::EmailSubject => "email_subject",
            TemplateKind::EmailText => "email_text",
            TemplateKind::EmailHtml => "email_html",
            TemplateKind::Voice => "voice",
        }
    }
}

impl fmt::Display for TemplateKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a template was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TemplateError {
    /// The template has no `{code}`, and its kind must show the code.
    #[error("the template has no {{code}} placeholder")]
    MissingCode,
    /// A placeholder that is not `{app}`, `{code}`, `{action}`, `{minutes}`
    /// or `{duration}`.
    #[error("unknown placeholder {{{0}}}; use app, code, action, minutes or duration")]
    UnknownPlaceholder(String),
    /// A `{` without its `}`, or a lone `}` (write `{{` and `}}` for braces).
    #[error("unbalanced brace at byte {offset}; write {{{{ or }}}} for a literal brace")]
    UnbalancedBrace {
        /// Where the brace is, in bytes from the start of the template.
        offset: usize,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Field {
    App,
    Code,
    Action,
    Minutes,
    Duration,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Text(Box<str>),
    Field(Field),
}

/// A parsed template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Template {
    parts: Vec<Part>,
}

/// The values placeholders stand for.
pub(crate) struct Values<'a> {
    pub(crate) app: &'a str,
    pub(crate) code: &'a str,
    pub(crate) action: &'a str,
    pub(crate) minutes: &'a str,
    pub(crate) duration: &'a str,
}

/// How values are written into the text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Escape {
    None,
    Html,
}

impl Template {
    /// Parses `text`, refusing unbalanced braces, unknown placeholders and, for
    /// kinds that show the code, a missing `{code}`.
    pub(crate) fn parse(text: &str, kind: TemplateKind) -> Result<Template, TemplateError> {
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut rest = text.char_indices().peekable();
        while let Some((at, c)) = rest.next() {
            match c {
                '{' if rest.peek().map(|p| p.1) == Some('{') => {
                    rest.next();
                    lit.push('{');
                }
                '{' => {
                    let tail = &text[at + 1..];
                    let end = tail
                        .find(['{', '}'])
                        .filter(|&i| tail.as_bytes()[i] == b'}')
                        .ok_or(TemplateError::UnbalancedBrace { offset: at })?;
                    let name = &tail[..end];
                    let field = match name {
                        "app" => Field::App,
                        "code" => Field::Code,
                        "action" => Field::Action,
                        "minutes" => Field::Minutes,
                        "duration" => Field::Duration,
                        other => {
                            let shown: String = other.chars().take(32).collect();
                            return Err(TemplateError::UnknownPlaceholder(shown));
                        }
                    };
                    if !lit.is_empty() {
                        parts.push(Part::Text(std::mem::take(&mut lit).into()));
                    }
                    parts.push(Part::Field(field));
                    for _ in 0..=name.chars().count() {
                        rest.next();
                    }
                }
                '}' if rest.peek().map(|p| p.1) == Some('}') => {
                    rest.next();
                    lit.push('}');
                }
                '}' => return Err(TemplateError::UnbalancedBrace { offset: at }),
                c => lit.push(c),
            }
        }
        if !lit.is_empty() {
            parts.push(Part::Text(lit.into()));
        }
        let template = Template { parts };
        if kind.needs_code() && !template.has(Field::Code) {
            return Err(TemplateError::MissingCode);
        }
        Ok(template)
    }

    pub(crate) fn has(&self, field: Field) -> bool {
        self.parts.contains(&Part::Field(field))
    }

    /// Fills in the values. The text is measured first and written into a
    /// buffer of exactly that size plus `extra` bytes, so it is never moved
    /// (no stray copy of the code is left behind in freed memory), and zeroed
    /// on drop.
    pub(crate) fn render(&self, v: &Values<'_>, esc: Escape, extra: usize) -> Zeroizing<String> {
        let mut len = 0usize;
        self.write(v, esc, &mut |s: &str| len += s.len());
        let mut out = Zeroizing::new(String::with_capacity(len + extra));
        self.write(v, esc, &mut |s: &str| out.push_str(s));
        out
    }

    fn write(&self, v: &Values<'_>, esc: Escape, sink: &mut dyn FnMut(&str)) {
        for part in &self.parts {
            let value = match part {
                Part::Text(t) => {
                    sink(t);
                    continue;
                }
                Part::Field(Field::App) => v.app,
                Part::Field(Field::Code) => v.code,
                Part::Field(Field::Action) => v.action,
                Part::Field(Field::Minutes) => v.minutes,
                Part::Field(Field::Duration) => v.duration,
            };
            match esc {
                Escape::None => sink(value),
                Escape::Html => escape_html(value, sink),
            }
        }
    }
}

/// Writes `s` with `&`, `<`, `>`, `"` and `'` escaped, safe in HTML text and
/// in quoted attribute values.
fn escape_html(s: &str, sink: &mut dyn FnMut(&str)) {
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let rep = match b {
            b'&' => "&amp;",
            b'<' => "&lt;",
            b'>' => "&gt;",
            b'"' => "&quot;",
            b'\'' => "&#39;",
            _ => continue,
        };
        sink(&s[start..i]);
        sink(rep);
        start = i + 1;
    }
    sink(&s[start..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values() -> Values<'static> {
        Values {
            app: "A<&>\"'",
            code: "123456",
            action: "act",
            minutes: "10",
            duration: "10 minutes",
        }
    }

    fn fill(t: &str, esc: Escape) -> String {
        let t = Template::parse(t, TemplateKind::EmailSubject).unwrap();
        let out = t.render(&values(), esc, 0);
        assert_eq!(out.len(), out.capacity(), "measured exactly");
        out.to_string()
    }

    #[test]
    fn fills_every_placeholder_and_brace_escape() {
        assert_eq!(
            fill(
                "{{{code}}} {app}|{action}|{minutes}|{duration}{{}}",
                Escape::None
            ),
            "{123456} A<&>\"'|act|10|10 minutes{}"
        );
        assert_eq!(fill("", Escape::None), "");
        assert_eq!(fill("é {code}€", Escape::None), "é 123456€");
    }

    #[test]
    fn html_escapes_values_but_not_the_template() {
        assert_eq!(
            fill("<b>{app}</b>", Escape::Html),
            "<b>A&lt;&amp;&gt;&quot;&#39;</b>"
        );
    }

    #[test]
    fn index_is_the_position_in_all() {
        for (i, k) in TemplateKind::ALL.iter().enumerate() {
            assert_eq!(k.index(), i);
        }
    }

    #[test]
    fn refuses_bad_templates() {
        use TemplateError::*;
        let sms = TemplateKind::Sms;
        assert_eq!(Template::parse("Your code", sms), Err(MissingCode));
        assert_eq!(Template::parse("{{code}}", sms), Err(MissingCode));
        assert_eq!(
            Template::parse("{code} {cod}", sms),
            Err(UnknownPlaceholder("cod".into()))
        );
        assert_eq!(
            Template::parse("{code} {}", sms),
            Err(UnknownPlaceholder(String::new()))
        );
        assert_eq!(
            Template::parse("{code} { app }", sms),
            Err(UnknownPlaceholder(" app ".into()))
        );
        assert_eq!(
            Template::parse("{code} {app", sms),
            Err(UnbalancedBrace { offset: 7 })
        );
        assert_eq!(
            Template::parse("{code} {a{code}", sms),
            Err(UnbalancedBrace { offset: 7 })
        );
        assert_eq!(
            Template::parse("{code} }", sms),
            Err(UnbalancedBrace { offset: 7 })
        );
        assert_eq!(
            Template::parse("{", sms),
            Err(UnbalancedBrace { offset: 0 })
        );
        for kind in TemplateKind::ALL {
            let r = Template::parse("no code here", *kind);
            assert_eq!(r.is_ok(), *kind == TemplateKind::EmailSubject, "{kind}");
            assert!(Template::parse("é{code}", *kind).is_ok());
        }
    }
}
