//! [`Subject`], whose account a challenge is for, and [`Context`], the details
//! a code is bound to.

use std::fmt;
use std::sync::Arc;

use crate::error::InputError;

/// The longest subject id, in bytes.
pub const MAX_SUBJECT_LEN: usize = 128;
/// The longest bound context, in bytes.
pub const MAX_CONTEXT_LEN: usize = 1024;

/// The account a challenge is for: the application's stable account id (not a
/// display name that can change).
///
/// Failures are counted per subject across all its challenges.
///
/// ```
/// use vericode::Subject;
/// let s = Subject::new("user-42")?;
/// assert_eq!(s.as_str(), "user-42");
/// assert!(Subject::new("").is_err());
/// assert!(Subject::new("a\nb").is_err());
/// # Ok::<(), vericode::InputError>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Subject(Arc<str>);

impl Subject {
    /// A subject id: 1 to 128 bytes of UTF-8 without control characters.
    pub fn new(id: &str) -> Result<Subject, InputError> {
        if id.is_empty() || id.len() > MAX_SUBJECT_LEN || id.chars().any(char::is_control) {
            return Err(InputError::Subject);
        }
        Ok(Subject(Arc::from(id)))
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Subject({:?})", &*self.0)
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Details a code is bound to, such as the new email address being confirmed
/// or "pay 42.00 EUR to ACME": the code verifies only when the same details are
/// presented again.
///
/// Only a keyed digest of the context is stored. `Debug` does not print it.
///
/// ```
/// use vericode::Context;
/// let c = Context::new("new-email:ana@example.com")?;
/// assert_eq!(c.as_bytes(), b"new-email:ana@example.com");
/// assert!(Context::new("").is_err());
/// # Ok::<(), vericode::InputError>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Context(Box<[u8]>);

impl Context {
    /// A context from bytes or text: 1 to 1024 bytes.
    pub fn new(details: impl AsRef<[u8]>) -> Result<Context, InputError> {
        let b = details.as_ref();
        if b.is_empty() || b.len() > MAX_CONTEXT_LEN {
            return Err(InputError::Context);
        }
        Ok(Context(b.into()))
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Context(<{} bytes>)", self.0.len())
    }
}

/// The longest transaction details, in characters.
pub const MAX_DETAILS_LEN: usize = 80;

/// Transaction details for a code that approves one action ("approve a
/// payment of 42.00 EUR to ACME", "change your email to ana@example.com"): the
/// code is bound to them exactly (as a [`Context`]) and the message shows them
/// in place of the purpose, as PSD2's dynamic linking asks.
///
/// Phrase them as what the code does, to follow "…is your code to".
///
/// ```
/// use vericode::{Context, Details};
/// let d = Details::new("approve a payment of 42.00 EUR to ACME")?;
/// assert_eq!(d.as_str(), "approve a payment of 42.00 EUR to ACME");
/// let bound = Context::from(&d); // what verify_bound takes
/// assert_eq!(bound.as_bytes(), d.as_str().as_bytes());
/// assert!(Details::new("").is_err());
/// # Ok::<(), vericode::InputError>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Details(Arc<str>);

impl Details {
    /// Details: 1 to 80 characters without control characters, and without
    /// the invisible ones that change how the rest reads: direction marks,
    /// embeddings, overrides and isolates, zero-width characters, line and
    /// paragraph separators, tags, and characters that render as nothing
    /// (variation selectors, the combining grapheme joiner, fillers). Letters
    /// of other scripts that look like Latin ones (Cyrillic "А") are taken:
    /// compare details from others against what you expect if that matters. Details often carry text the person did
    /// not write (a payee's name), and a message must show them as they are.
    /// (They may still hold digits that look like a code, or a string of the
    /// form of an Android SMS Retriever app hash: keep text from others out
    /// of them, or check it, if that matters to you.)
    ///
    /// ```
    /// use vericode::Details;
    /// assert!(Details::new("pay 1.00 EUR to ACME\u{202E}EMCA").is_err());
    /// assert!(Details::new("pay 1.00 EUR to A\u{200B}CME").is_err());
    /// assert!(Details::new("pay 1.00 EUR to Zoë").is_ok());
    /// ```
    pub fn new(text: &str) -> Result<Details, InputError> {
        let n = text.chars().count();
        if n == 0 || n > MAX_DETAILS_LEN || text.chars().any(|c| c.is_control() || invisible(c)) {
            return Err(InputError::Details);
        }
        Ok(Details(Arc::from(text)))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Characters that are not seen but change how the text around them reads
/// or breaks: Unicode's default-ignorable code points (which render as
/// nothing, assigned or not: format characters, variation selectors, fillers,
/// the combining grapheme joiner, tags), the line and paragraph separators,
/// and the interlinear annotation controls.
fn invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{061C}'
            | '\u{115F}'..='\u{1160}'
            | '\u{17B4}'..='\u{17B5}'
            | '\u{180B}'..='\u{180F}'
            | '\u{200B}'..='\u{200F}'
            | '\u{2028}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{FFF0}'..='\u{FFFB}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0000}'..='\u{E0FFF}'
    )
}

impl fmt::Debug for Details {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Details({:?})", &*self.0)
    }
}

impl From<&Details> for Context {
    fn from(d: &Details) -> Context {
        Context(d.0.as_bytes().into())
    }
}
