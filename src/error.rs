//! Errors: one small enum per operation, each `#[non_exhaustive]`, each saying
//! what happened and what the caller should do. None of them carries a code,
//! a digest or a key.
//!
//! Rejections a person caused (wrong code, expired…) offer
//! [`VerifyError::user_message`]: a short sentence safe to show them.

use std::error::Error as StdError;

use time::OffsetDateTime;

use crate::keys::KeyId;

/// A boxed error from a store or delivery backend.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// Input that was refused before anything was stored or sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InputError {
    /// The code typed was longer than 64 bytes; it was not read. Ask the person to type the code again.
    #[error("the code is too long; type the code from the message")]
    CodeTooLong,
    /// The code contained a character that stands for no ASCII one (an emoji,
    /// a direction mark, a letter of another script; full-width forms and
    /// the digits of common scripts are read as ASCII). Ask the person to type
    /// it again.
    #[error("the code has characters that are not in codes; type the code from the message")]
    CodeNotAscii,
    /// The code contained a character outside the code alphabet. Ask the person to type it again.
    #[error("the code has a character that codes never contain; type the code from the message")]
    CodeCharacter,
    /// The code had the wrong number of characters. Ask the person to type it again.
    #[error("codes have {expected} characters")]
    CodeLength {
        /// How many characters codes have.
        expected: usize,
    },
    /// The subject id is empty, longer than 128 bytes, or has control characters.
    #[error("a subject id has 1 to 128 bytes and no control characters")]
    Subject,
    /// The purpose name is not valid.
    #[error(
        "a custom purpose is 1 to 32 characters of a-z, 0-9, '_' or '.', starting with a letter, and not a built-in name"
    )]
    Purpose,
    /// The phone number is not in E.164 form.
    #[error("a phone number must be in E.164 form, such as +14155550123")]
    Phone,
    /// The email address is not valid.
    #[error("the email address is not valid")]
    Email,
    /// The channel name is not valid.
    #[error("a custom channel is 1 to 32 characters of a-z, 0-9 or '_', not sms, voice or email")]
    Channel,
    /// The address for a custom channel is empty, too long, or has control characters.
    #[error("an address has 1 to 254 bytes and no control characters")]
    Address,
    /// The bound context is empty or longer than 1024 bytes.
    #[error("a bound context has 1 to 1024 bytes")]
    Context,
    /// More than 3 fallback destinations, or one named twice.
    #[error("a request names at most 3 distinct fallback destinations")]
    Fallbacks,
    /// A resend asked for a destination that was not named for the challenge.
    #[error("that destination was not named for this challenge")]
    NotNamed,
    /// Transaction details are empty, longer than 80 characters, or have control characters.
    #[error("transaction details have 1 to 80 characters and no control characters")]
    Details,
    /// The device token is not one vericode made.
    #[error("not a device token")]
    DeviceToken,
    /// The client key is empty or longer than 256 bytes.
    #[error("a client key has 1 to 256 bytes")]
    ClientKey,
    /// The challenge id is not one vericode made. Treat it as an unknown challenge.
    #[error("not a challenge id")]
    ChallengeId,
}

/// A configuration refused at `build()`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A secret shorter than 32 bytes.
    #[error("secrets need at least 32 bytes, got {0}")]
    SecretTooShort(usize),
    /// A secret given as text that is not hexadecimal (an even number of
    /// digits `0-9`, `a-f`, `A-F`): see `SecretKey::from_hex`.
    #[error("the secret is not hexadecimal text")]
    SecretNotHex,
    /// Two secrets with one key id.
    #[error("key id {} is used twice", .0.get())]
    DuplicateKeyId(KeyId),
    /// No signing key was given.
    #[error("a signing key is required: call signing_key(id, secret)")]
    MissingSigningKey,
    /// No lookup key was given, and the store supplies none (a store shared
    /// between processes never does): give every verifier on the store the
    /// same one with `lookup_key(secret)`.
    #[error(
        "a lookup key is required: call lookup_key(secret), with the same secret in every process that shares the store"
    )]
    MissingLookupKey,
    /// A code length outside 4..=12.
    #[error("code length must be 4 to 12, got {0}")]
    CodeLength(usize),
    /// A custom alphabet that is not valid.
    #[error("custom alphabet: {0}")]
    Alphabet(&'static str),
    /// A policy setting out of its range.
    #[error("policy: {0}")]
    Policy(&'static str),
    /// The policy's worst-case guess odds (per challenge, or over the
    /// failure budget) exceed their bound. Use longer codes, or fewer
    /// attempts, live codes or failures; raise the bound with
    /// `Policy::max_guess_probability` only knowingly (short codes, allowed by
    /// `Policy::allow_short_codes`, need that, and usually
    /// `Policy::max_guess_probability_per_year` too).
    #[error(
        "the policy's guess odds {odds:e} exceed the bound {bound:e}: use longer codes, or fewer attempts, live codes or failures, or raise the bound (Policy::max_guess_probability)"
    )]
    GuessOdds {
        /// The worst of the per-challenge and over-budget odds.
        odds: f64,
        /// The bound.
        bound: f64,
    },
    /// An attacker could keep guessing at one subject for a year: the odds
    /// over a year ([`GuessOdds::over_a_year`](crate::GuessOdds::over_a_year))
    /// exceed their bound. They count a failure budget each time the failure
    /// memory forgets the count, and a guess each time a timed lock ends.
    /// Lengthen the lockout or the failure memory, lower the failure budget,
    /// keep a failure delay, or use longer codes; raise the bound with
    /// `Policy::max_guess_probability_per_year` only knowingly.
    #[error(
        "the policy's guess odds over a year {odds:e} exceed the bound {bound:e}: lengthen the lockout, the failure memory or the codes, or lower the failure budget"
    )]
    YearlyGuessOdds {
        /// The odds over a year.
        odds: f64,
        /// The bound.
        bound: f64,
    },
    /// The application name is empty, longer than 64 bytes, or has control characters.
    #[error("the app name has 1 to 64 bytes and no control characters")]
    AppName,
    /// A message template was refused (see [`TemplateError`](crate::TemplateError)).
    #[error("the {kind} template for {locale}{} is not valid: {error}", purpose_suffix(.purpose))]
    Template {
        /// The template's locale.
        locale: crate::Locale,
        /// The template's kind.
        kind: crate::TemplateKind,
        /// The purpose it was for, `None` for every purpose.
        purpose: Option<crate::Purpose>,
        /// What is wrong with it.
        error: crate::TemplateError,
    },
    /// An action phrase is empty, longer than 80 characters, or has control characters.
    #[error(
        "the action phrase for {purpose} in {locale} has 1 to 80 characters and no control characters"
    )]
    ActionPhrase {
        /// The phrase's locale.
        locale: crate::Locale,
        /// The phrase's purpose.
        purpose: crate::Purpose,
    },
    /// A WebOTP host is not a lower-case ASCII host name (no scheme, port or path).
    #[error("{0:?} is not a lower-case host name without scheme, port or path")]
    AutofillHost(String),
    /// The Android app hash is not 11 characters of `A-Z a-z 0-9 + /`.
    #[error("the Android app hash has 11 characters of A-Z, a-z, 0-9, + and /")]
    AppHash,
    /// An SMS cannot fit one segment, even with the short template, with this
    /// app name, code length and lifetime: shorten the name or the template,
    /// or turn autofill off for this locale.
    #[error("an SMS in {locale}{} takes {units} units, one segment holds {limit}", purpose_suffix(.purpose))]
    SmsTooLong {
        /// The locale.
        locale: crate::Locale,
        /// The purpose; `None` for custom purposes without their own phrase.
        purpose: Option<crate::Purpose>,
        /// The units the short text takes.
        units: usize,
        /// The most one segment holds.
        limit: usize,
    },
}

fn purpose_suffix(purpose: &Option<crate::Purpose>) -> String {
    match purpose {
        Some(p) => format!(" ({p})"),
        None => String::new(),
    }
}

/// A store failed or misbehaved; nothing was verified. Retry later; if it
/// persists, check the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The backend reported an error.
    #[error("the code store failed")]
    Backend(#[source] BoxError),
    /// The store returned a record that cannot be what its key holds (corrupt
    /// bytes, a record of the wrong kind). The operation failed closed.
    #[error("the code store returned a corrupt record")]
    Corrupt(#[source] crate::record::DecodeError),
    /// Concurrent writers kept changing the record; gave up after the given number of tries.
    #[error("the code store kept conflicting after {0} tries; try again")]
    Contention(u32),
}

/// Why [`Verifier::check_lookup_key`](crate::Verifier::check_lookup_key)
/// failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LookupKeyError {
    /// The store's records are named with another lookup key than this
    /// verifier's: the servers on this store do not all hold the same one, and
    /// would not see each other's failure counts, limits or challenges. Give
    /// this server the key the others hold. (To replace the key on purpose,
    /// see `Verifier::replace_lookup_key_check`.)
    #[error(
        "the store's records are named with another lookup key: give every server on this store the same one"
    )]
    Mismatch,
    /// The store failed; nothing was decided. Try again.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why [`Verifier::check_signing_keys`](crate::Verifier::check_signing_keys)
/// failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SigningKeyError {
    /// Another server on this store holds another secret under the key id
    /// `key`: codes one of them signs would not verify on the other, and
    /// would count as wrong guesses there. Give every server the same secret
    /// for each id, and a new secret a new id.
    #[error("another server holds another secret under key id {}", key.get())]
    Mismatch {
        /// The key id whose secrets differ.
        key: crate::keys::KeyId,
    },
    /// The store failed; nothing was decided. Try again.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a code could not be sent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IssueError {
    /// The request was not valid; nothing was stored or sent.
    #[error("invalid request: {0}")]
    Input(#[from] InputError),
    /// The subject has failed too often and is locked; nothing was sent.
    /// `until` is when the lock ends by itself, `None` if it needs an unlock.
    #[error("the subject is locked after too many failed attempts")]
    Locked {
        /// When the lock ends by itself, if it does.
        until: Option<OffsetDateTime>,
    },
    /// A code was sent recently; ask again after `retry_after`.
    #[error("a code was sent recently; try again later")]
    ResendTooSoon {
        /// When another code may be sent.
        retry_after: OffsetDateTime,
    },
    /// The challenge has had as many codes as it may; wait for it to expire
    /// (or cancel it) before asking again.
    #[error("no more codes can be sent for this challenge")]
    SendLimit {
        /// When the challenge expires and a new one may start.
        retry_after: OffsetDateTime,
    },
    /// A rate limit tripped; nothing was sent. Try again after `retry_after`.
    #[error("too many codes requested ({limit}); try again later")]
    RateLimited {
        /// The limit that tripped.
        limit: crate::limits::Limit,
        /// When a send would be allowed again.
        retry_after: OffsetDateTime,
    },
    /// The phone number's country is not allowed by the policy; nothing was sent.
    #[error("codes are not sent to numbers with calling code +{calling_code}")]
    CountryNotAllowed {
        /// The number's calling code.
        calling_code: String,
    },
    /// No live challenge has this id (for a resend): it expired, was used or
    /// cancelled, or never existed. Start a new challenge.
    #[error("no such challenge")]
    UnknownChallenge,
    /// The message would not fit one SMS segment (long transaction details or
    /// app name); nothing was sent. Shorten the details, or set shorter
    /// templates.
    #[error("the message does not fit one SMS")]
    Message(#[from] crate::message::MessageError),
    /// The store failed; nothing is verifiable (if the message had gone out,
    /// its code will not work). Retry later.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Delivery failed; no code was stored, so none from this attempt
    /// verifies (the rate limits stay charged; the send's claim on the
    /// challenge is given back). Retry, or try another destination.
    #[error("the code could not be delivered")]
    Delivery(#[source] BoxError),
}

/// Why a code was not accepted.
///
/// Every variant is a failure: a verification succeeds only through `Ok`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The code was wrong; the attempt was counted. The person may try again
    /// `attempts_left` more times.
    #[error("wrong code; {attempts_left} attempts left")]
    WrongCode {
        /// Attempts left on this challenge.
        attempts_left: u32,
    },
    /// The code was checked against details other than those it was issued
    /// for (a different bound context); the attempt was counted.
    #[error("the code was issued for other details")]
    ContextMismatch {
        /// Attempts left on this challenge.
        attempts_left: u32,
    },
    /// The challenge used all its attempts; start a new one.
    #[error("too many attempts")]
    TooManyAttempts,
    /// The challenge expired; start a new one.
    #[error("the code expired")]
    Expired,
    /// No live challenge has this id: never issued, already used, cancelled,
    /// or long expired. Start a new one.
    #[error("unknown or already used challenge")]
    UnknownChallenge,
    /// The subject failed too often and is locked; even the right code fails.
    #[error("the subject is locked after too many failed attempts")]
    Locked {
        /// When the lock ends by itself, if it does.
        until: Option<OffsetDateTime>,
    },
    /// The client key made too many attempts across challenges. Usually
    /// nothing was checked; when the client's charge lost a race with its
    /// other attempts, the guess was checked and counted but its answer is
    /// withheld (a right code so answered is used up, and the challenge then
    /// reads as unknown). Try again after `retry_after`, with a new code if
    /// the challenge is gone.
    #[error("too many attempts from this client; try again later")]
    RateLimited {
        /// The limit that tripped.
        limit: crate::limits::Limit,
        /// When an attempt would be allowed again.
        retry_after: OffsetDateTime,
    },
    /// The subject failed several times in a row and must wait before its next
    /// attempt (the growing delay); nothing was checked.
    #[error("too many failed attempts; try again later")]
    TooSoon {
        /// When the next attempt is allowed.
        retry_after: OffsetDateTime,
    },
    /// What was typed cannot be a code; it was not counted as an attempt.
    #[error("malformed code: {0}")]
    Malformed(#[from] InputError),
    /// The challenge's codes were all made under signing keys this verifier
    /// does not hold (`key` is one), so none could be checked; nothing was
    /// counted or used up. (With one code under a held key, that one is
    /// checked and the guess counted as usual.) Every server must hold every key its peers sign with: add
    /// a new key as a verification key on every server before any signs with
    /// it (see `VerifierBuilder::verification_key`). The person may retry
    /// (another server may hold the key).
    #[error("the code was made under signing key {}, which this verifier does not hold", key.get())]
    KeyNotHeld {
        /// The key the codes were made under.
        key: crate::keys::KeyId,
    },
    /// The store failed; nothing was verified. Retry later.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl VerifyError {
    /// A short message safe to show the person: it never says whether the
    /// account exists or how close a guess was.
    ///
    /// ```
    /// use vericode::VerifyError;
    /// let e = VerifyError::WrongCode { attempts_left: 2 };
    /// assert_eq!(e.user_message(), "That code is not right. Check the message and try again.");
    /// ```
    pub fn user_message(&self) -> &'static str {
        match self {
            VerifyError::WrongCode { .. } | VerifyError::ContextMismatch { .. } => {
                "That code is not right. Check the message and try again."
            }
            VerifyError::Malformed(_) => "Type the code exactly as it appears in the message.",
            VerifyError::TooManyAttempts => "Too many tries. Ask for a new code.",
            VerifyError::Expired | VerifyError::UnknownChallenge => {
                "This code has expired or was already used. Ask for a new code."
            }
            VerifyError::Locked { .. } => {
                "Too many failed attempts. Try again later or contact support."
            }
            VerifyError::RateLimited { .. } => "Too many attempts. Wait a moment and try again.",
            // Up to an hour: the caller shows `retry_after`.
            VerifyError::TooSoon { .. } => "Too many failed attempts. Try again later.",
            VerifyError::Store(_) | VerifyError::KeyNotHeld { .. } => {
                "Something went wrong on our side. Try again in a moment."
            }
        }
    }

    /// `true` if the attempt was counted against the challenge and the subject.
    ///
    /// One exception answers `false`: a [`VerifyError::RateLimited`] whose
    /// client charge lost a race with the client's other attempts was checked
    /// and counted, but its answer is withheld (see that variant); the error
    /// does not say which happened, so treat a `RateLimited` as possibly
    /// counted.
    pub fn counted(&self) -> bool {
        matches!(
            self,
            VerifyError::WrongCode { .. } | VerifyError::ContextMismatch { .. }
        )
    }
}

impl IssueError {
    /// A short message safe to show the person.
    ///
    /// ```
    /// use vericode::IssueError;
    /// let e = IssueError::UnknownChallenge;
    /// assert_eq!(e.user_message(), "This code has expired or was already used. Ask for a new code.");
    /// ```
    pub fn user_message(&self) -> &'static str {
        match self {
            IssueError::Input(InputError::Phone | InputError::Email | InputError::Address) => {
                "Check the phone number or email address and try again."
            }
            // The application's request: retrying cannot help the person.
            IssueError::Input(_) | IssueError::Message(_) => {
                "We could not send a code. Use another way to verify, or contact support."
            }
            IssueError::Locked { .. } => {
                "Too many failed attempts. Try again later or contact support."
            }
            IssueError::ResendTooSoon { .. } => {
                "A code was just sent. Wait a moment before asking again."
            }
            IssueError::SendLimit { .. } | IssueError::RateLimited { .. } => {
                "Too many codes were sent. Wait a few minutes and start again."
            }
            IssueError::CountryNotAllowed { .. } => {
                "We cannot send codes to this number. Use another way to verify."
            }
            IssueError::UnknownChallenge => {
                "This code has expired or was already used. Ask for a new code."
            }
            IssueError::Store(_) | IssueError::Delivery(_) => {
                "We could not send a code right now. Try again in a moment."
            }
        }
    }

    /// `true` when the request the application built is at fault, not what
    /// the person typed, a limit, the store or the delivery: a context,
    /// details, fallback, client key, subject or purpose the library refuses,
    /// or a message too long for one SMS. Retrying cannot help; log it and
    /// fix the request. (A phone number or email address that does not parse
    /// is the person's to fix: `false`.)
    ///
    /// ```
    /// use vericode::{InputError, IssueError};
    /// assert!(IssueError::Input(InputError::NotNamed).is_application_error());
    /// assert!(!IssueError::Input(InputError::Phone).is_application_error());
    /// assert!(!IssueError::UnknownChallenge.is_application_error());
    /// ```
    pub fn is_application_error(&self) -> bool {
        match self {
            IssueError::Input(e) => !matches!(
                e,
                InputError::Phone | InputError::Email | InputError::Address
            ),
            IssueError::Message(_) => true,
            _ => false,
        }
    }
}

/// Why a challenge could not be cancelled.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CancelError {
    /// No live challenge has this id; there is nothing to cancel.
    #[error("no such challenge")]
    UnknownChallenge,
    /// The store failed; the challenge may still be live. Retry.
    #[error(transparent)]
    Store(#[from] StoreError),
}
