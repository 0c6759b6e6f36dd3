#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(rust_2018_idioms, unreachable_pub)]

mod base64url;
mod challenge_id;
mod clock;
mod code;
mod ct_eq;
mod delivery;
mod destination;
mod devices;
mod error;
mod gcra;
mod keys;
mod limits;
mod message;
mod policy;
mod purpose;
mod record;
pub mod store;
mod subject;
#[cfg(feature = "testing")]
pub mod testing;
mod verifier;

pub use challenge_id::{CHALLENGE_ID_LEN, ChallengeId};
pub use clock::{Clock, ManualClock, SystemClock, Timestamp};
pub use code::{
    Alphabet, Code, CodeFormat, CustomAlphabet, MAX_CODE_LEN, MAX_INPUT_LEN, MIN_CODE_LEN,
};
pub use delivery::{Delivery, Message, Never, Receipt, RecordingDelivery, SentMessage};
pub use destination::{Channel, Destination, MAX_ADDRESS_LEN, MaskedDestination};
pub use devices::{DeviceError, DeviceToken, REMEMBER_WITHIN, RememberedDevice};
pub use error::{
    BoxError, CancelError, ConfigError, InputError, IssueError, LookupKeyError, SigningKeyError,
    StoreError, VerifyError,
};
pub use gcra::RateLimit;
pub use keys::{KeyId, MIN_SECRET_LEN, SecretKey};
pub use limits::{
    ClientKey, ConversionGuard, CountryFilter, FailureDelay, Limit, NANP_COUNTRIES,
    PrefixConversion,
};
pub use message::{
    Locale, MessageError, Messages, MessagesBuilder, Rendered, SmsEncoding, SmsLength,
    TemplateError, TemplateKind, UnknownLocale, sms_length,
};
pub use policy::{GuessOdds, Lockout, Policy};
pub use purpose::{CustomPurpose, MAX_PURPOSE_LEN, Purpose};
pub use record::{DecodeError, Record};
pub use store::{
    CodeStore, Commit, KeyKind, MemoryStore, MemoryStoreError, StoreKey, Version, Versioned, Write,
};
pub use subject::{Context, Details, MAX_CONTEXT_LEN, MAX_DETAILS_LEN, MAX_SUBJECT_LEN, Subject};
pub use verifier::{Attempt, IssueRequest, Ticket, Unset, Verified, Verifier, VerifierBuilder};
