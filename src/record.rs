//! Records: what a [`CodeStore`](crate::CodeStore) keeps, and their compact,
//! versioned byte form.
//!
//! A [`Record`] is opaque to stores: a store keeps it (as the value, or as
//! bytes from [`Record::encode`]) and hands it back. Decoding is total: any
//! byte string gives a record or a [`DecodeError`], never a panic, and every
//! field is validated again on the way in.
//!
//! Byte form, version 3 (integers big-endian, `str8` = one length byte then
//! UTF-8; version 3 added `via` to each code, version 2 the counts of
//! forgiveness and of failures counted):
//!
//! ```text
//! challenge: 03 01 nonce[16] created:i64 expires:i64 next_send:i64 sends:u8 attempts:u8
//!            counted:u8 purpose:str8 subject:str8 channel:str8 address:str8
//!            has_context:u8 (context_key:u32 context_tag[32])?
//!            n:u8 (key:u32 tag[32] via:u8){n}
//!            n_alt:u8 (channel:str8 address:str8){n_alt} locale:str8
//!            has_details:u8 (details_len:u16 details)?
//! subject:   03 02 failures:u32 last_failure:i64 lock:u8 lock_until:i64
//!            forgiven:u32 forgiven_since:i64
//! rate:      03 03 tat:i64
//! conversion:03 04 window_start:i64 sends:u32 verified:u32 prev_sends:u32 prev_verified:u32
//! device:    03 05 key:u32 tag[32] epoch:u32 expires:i64
//! epoch:     03 06 epoch:u32
//! lookup key fingerprint: 03 07 fingerprint[16] renewed:i64
//! ```
//!
//! A code's `via` names the destination that carried it: 0 the challenge's
//! destination, `i` its alternate `i - 1`.

use std::sync::Arc;

use crate::clock::Timestamp;
use crate::destination::Destination;
use crate::keys::{KeyId, Tag};
use crate::purpose::Purpose;
use crate::subject::Subject;

const FORMAT: u8 = 3;
const KIND_CHALLENGE: u8 = 1;
const KIND_SUBJECT: u8 = 2;
const KIND_RATE: u8 = 3;
const KIND_CONVERSION: u8 = 4;
const KIND_DEVICE: u8 = 5;
const KIND_EPOCH: u8 = 6;
const KIND_FINGERPRINT: u8 = 7;
/// At most this many live codes per challenge, whatever the policy.
pub(crate) const MAX_LIVE_CODES: usize = 10;
/// At most this many fallback destinations per challenge.
pub(crate) const MAX_ALTERNATES: usize = 3;

/// A stored record: a challenge, or a subject's failure count.
///
/// Cheap to clone (shared). Stores that keep bytes use [`Record::encode`] and
/// [`Record::decode`].
///
/// ```
/// use vericode::Record;
/// assert!(Record::decode(b"").is_err());
/// assert!(Record::decode(&[0xff; 300]).is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record(pub(crate) RecordKind);

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum RecordKind {
    // Each kind is shared behind its own allocation, sized for it: a clone is
    // a reference count, and a rate record does not pay for a challenge's size.
    Challenge(Arc<ChallengeRecord>),
    Subject(Arc<SubjectRecord>),
    /// [`CLEAN_SUBJECT`], what a success writes when nothing is left to
    /// remember (no failures, nothing forgiven): kept without an
    /// allocation. (Only [`Record::subject`] makes subject records, so a clean
    /// one is always this variant and equality stays structural.)
    CleanSubject,
    Rate(RateRecord),
    Conversion(Arc<ConversionRecord>),
    Device(Arc<DeviceRecord>),
    Epoch(u32),
    /// A fingerprint of the lookup key that names a store's records, and when
    /// it was last renewed.
    /// (Shared: inline, its 24 bytes made every record, and every slot of
    /// `MemoryStore`'s tables, 16 bytes larger.)
    Fingerprint(Arc<([u8; 16], Timestamp)>),
}

/// A remembered device: the digest of its token's secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct DeviceRecord {
    pub tag: StoredTag,
    pub epoch: u32,
    pub expires_at: Timestamp,
}

/// A rate limit's state: the theoretical arrival time of the next event (GCRA).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RateRecord {
    pub tat: Timestamp,
}

/// Sends and verifications to one prefix in the current and previous window.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct ConversionRecord {
    pub window_start: Timestamp,
    pub sends: u32,
    pub verified: u32,
    pub prev_sends: u32,
    pub prev_verified: u32,
}

/// One live challenge of a (subject, purpose). `Debug` leaves out the nonce
/// (with it, an id for this challenge could be made) and, through
/// [`StoredTag`], the digests.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct ChallengeRecord {
    pub nonce: [u8; 16],
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub next_send_at: Timestamp,
    /// Codes sent so far in this challenge.
    pub sends: u8,
    /// Attempts used so far.
    pub attempts: u8,
    /// The subject failures this challenge's wrong guesses counted (one per
    /// code each was compared with): what a success on this challenge may
    /// forgive, and all it may.
    pub counted: u8,
    pub purpose: Purpose,
    pub subject: Subject,
    pub destination: Destination,
    /// The language of the messages.
    pub locale: crate::message::Locale,
    /// Digests of the live codes, oldest first; empty once cancelled.
    pub codes: Codes,
    /// The fallbacks, the details and the context: see [`Rare`].
    pub rare: Rare,
}

impl ChallengeRecord {
    /// The other destinations named for this challenge, in order of preference.
    pub(crate) fn alternates(&self) -> &[Destination] {
        self.rare.0.as_deref().map_or(&[], |r| &r.alternates)
    }

    /// Transaction details shown in the messages (also bound as the context).
    pub(crate) fn details(&self) -> Option<&crate::subject::Details> {
        self.rare.0.as_deref().and_then(|r| r.details.as_ref())
    }

    /// The digest of the bound details, if any.
    pub(crate) fn context(&self) -> Option<&StoredTag> {
        self.rare.0.as_deref().and_then(|r| r.context.as_ref())
    }

    /// The named destination at `via` (0: the destination, then the
    /// alternates): the one that carried a code.
    pub(crate) fn named_at(&self, via: u8) -> Option<&Destination> {
        match usize::from(via) {
            0 => Some(&self.destination),
            i => self.alternates().get(i - 1),
        }
    }

    /// Names the challenge's destinations anew: `destination` (the current
    /// one) and `alternates`. Each code keeps the destination that carried
    /// it; a code whose destination is no longer named is dropped (an
    /// address the application stopped naming, removed from the account
    /// perhaps, no longer confirms anything).
    pub(crate) fn rename(&mut self, destination: Destination, alternates: Vec<Destination>) {
        if destination == self.destination && alternates == self.alternates() {
            return;
        }
        let index_in = |d: &Destination| {
            std::iter::once(&destination)
                .chain(&alternates)
                .position(|n| n == d)
                .and_then(|i| u8::try_from(i).ok())
        };
        let moved: Vec<Option<u8>> = self
            .codes
            .iter()
            .map(|c| self.named_at(c.via).and_then(index_in))
            .collect();
        let mut next = moved.iter();
        self.codes
            .retain(|_| next.next().copied().flatten().is_some());
        for (code, via) in self.codes.iter_mut().zip(moved.into_iter().flatten()) {
            code.via = via;
        }
        self.destination = destination;
        let r = std::mem::take(&mut self.rare).into_fields();
        self.rare = Rare::new(alternates, r.details, r.context);
    }
}

/// The fields of a challenge that most leave empty (fallback destinations,
/// transaction details and their digest), out of line in one allocation made
/// only when one of them is set: inline they took 80 of a challenge
/// record's 272 bytes, and [`MemoryStore`](crate::MemoryStore) keeps a record
/// per pending challenge. `None` whenever all three are empty (made only by
/// [`Rare::new`]), so equality stays structural.
#[derive(Clone, Default, PartialEq, Eq)]
pub(crate) struct Rare(Option<Box<RareFields>>);

#[derive(Clone, Default, PartialEq, Eq)]
pub(crate) struct RareFields {
    alternates: Vec<Destination>,
    details: Option<crate::subject::Details>,
    context: Option<StoredTag>,
}

impl Rare {
    /// The three fields, out of line only if one is set.
    pub(crate) fn new(
        alternates: Vec<Destination>,
        details: Option<crate::subject::Details>,
        context: Option<StoredTag>,
    ) -> Rare {
        if alternates.is_empty() && details.is_none() && context.is_none() {
            Rare(None)
        } else {
            Rare(Some(Box::new(RareFields {
                alternates,
                details,
                context,
            })))
        }
    }

    fn into_fields(self) -> RareFields {
        self.0.map(|b| *b).unwrap_or_default()
    }
}

impl std::fmt::Debug for ChallengeRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChallengeRecord")
            .field("nonce", &"<redacted>")
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .field("next_send_at", &self.next_send_at)
            .field("sends", &self.sends)
            .field("attempts", &self.attempts)
            .field("counted", &self.counted)
            .field("purpose", &self.purpose)
            .field("subject", &self.subject)
            .field("destination", &self.destination)
            .field("alternates", &self.alternates())
            .field("locale", &self.locale)
            .field("details", &self.details())
            .field("context", &self.context())
            .field("codes", &self.codes)
            .finish()
    }
}

/// The digests of a challenge's live codes, oldest first. The first is kept
/// in the record itself (most challenges send one code): no allocation of its
/// own to make, read (a cache miss in a large store) or free. The newer ones
/// (after a resend) are out of line, behind one pointer: `None` when there
/// are none, so equality stays structural.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Codes {
    /// The oldest; [`NO_CODE`] when there are no codes at all (an
    /// `Option` would take 4 more bytes in every pending challenge).
    first: CodeTag,
    /// The newer ones, oldest first; never `Some` of an empty list.
    #[expect(
        clippy::box_collection,
        reason = "one pointer inline (a Vec is three) in every pending challenge; the second allocation is made only by a resend"
    )]
    more: Option<Box<Vec<CodeTag>>>,
}

// No named destination's index may be the mark below.
const _: () = assert!(MAX_ALTERNATES < u8::MAX as usize);

/// Where [`Codes`] holds no first code: a `via` no code has.
const NO_CODE: CodeTag = CodeTag {
    key: KeyId::new(0),
    tag: [0; 32],
    via: u8::MAX,
};

impl Default for Codes {
    fn default() -> Self {
        Codes {
            first: NO_CODE,
            more: None,
        }
    }
}

impl Codes {
    /// Adds the newest code.
    pub(crate) fn push(&mut self, code: CodeTag) {
        if self.is_empty() {
            self.first = code;
        } else {
            self.more.get_or_insert_default().push(code);
        }
    }

    fn more(&self) -> &[CodeTag] {
        self.more.as_deref().map_or(&[], Vec::as_slice)
    }

    pub(crate) fn len(&self) -> usize {
        usize::from(!self.is_empty()) + self.more().len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.first.via == NO_CODE.via
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &CodeTag> {
        (!self.is_empty())
            .then_some(&self.first)
            .into_iter()
            .chain(self.more())
    }

    fn iter_mut(&mut self) -> impl Iterator<Item = &mut CodeTag> {
        let first = (!self.is_empty()).then_some(&mut self.first);
        let more = self
            .more
            .as_deref_mut()
            .map_or(&mut [][..], Vec::as_mut_slice);
        first.into_iter().chain(more)
    }

    pub(crate) fn clear(&mut self) {
        self.first = NO_CODE;
        self.more = None;
    }

    /// Drops the oldest codes until at most `n` are left.
    pub(crate) fn keep_newest(&mut self, n: usize) {
        let drop = self.len().saturating_sub(n);
        if drop == 0 {
            return;
        }
        match self.more.take() {
            Some(mut more) if drop <= more.len() => {
                // The newest `len - drop` stay: the first of them moves inline.
                self.first = more[drop - 1];
                more.drain(..drop);
                self.more = (!more.is_empty()).then_some(more);
            }
            _ => self.clear(),
        }
    }

    /// Keeps the codes `keep` accepts, in order.
    fn retain(&mut self, mut keep: impl FnMut(&CodeTag) -> bool) {
        let kept: Vec<CodeTag> = self.iter().copied().filter(|c| keep(c)).collect();
        if kept.len() != self.len() {
            *self = kept.into_iter().collect();
        }
    }
}

impl FromIterator<CodeTag> for Codes {
    fn from_iter<I: IntoIterator<Item = CodeTag>>(iter: I) -> Self {
        let mut codes = Codes::default();
        for t in iter {
            codes.push(t);
        }
        codes
    }
}

/// A sent code's digest, the id of the key that made it, and which of the
/// challenge's named destinations carried it (an index into its
/// destination then its alternates: 0 is the destination). `Debug` shows
/// the key id and the index only.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct CodeTag {
    pub key: KeyId,
    pub tag: Tag,
    pub via: u8,
}

impl std::fmt::Debug for CodeTag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CodeTag")
            .field("key", &self.key)
            .field("tag", &"<redacted>")
            .field("via", &self.via)
            .finish()
    }
}

/// A digest with the id of the key that made it. `Debug` shows the key id
/// only: a digest is not for logs.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct StoredTag {
    pub key: KeyId,
    pub tag: Tag,
}

impl std::fmt::Debug for StoredTag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredTag")
            .field("key", &self.key)
            .field("tag", &"<redacted>")
            .finish()
    }
}

/// A subject with no failures and no lock: what a success leaves. (With no
/// failures, the time of the last one delays nothing.)
pub(crate) const CLEAN_SUBJECT: SubjectRecord = SubjectRecord {
    failures: 0,
    last_failure_at: Timestamp::from_millis(0),
    lock: Lock::None,
    forgiven: 0,
    forgiven_since: Timestamp::from_millis(0),
};

/// A subject's failures across challenges, less those its successes forgave
/// (each success forgives its own challenge's, up to a cap per failure
/// memory).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SubjectRecord {
    pub failures: u32,
    pub last_failure_at: Timestamp,
    pub lock: Lock,
    /// Failures forgiven since `forgiven_since` (both 0 when none are).
    pub forgiven: u32,
    /// When the current window of forgiveness began: it lasts the failure
    /// memory.
    pub forgiven_since: Timestamp,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Lock {
    None,
    Until(Timestamp),
    UntilUnlocked,
}

/// Bytes that are not a record vericode wrote.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The record ended early.
    #[error("record truncated")]
    Truncated,
    /// A format version this build does not know (written by a newer vericode?).
    #[error("unknown record format {0}")]
    UnknownFormat(u8),
    /// A record kind this build does not know.
    #[error("unknown record kind {0}")]
    UnknownKind(u8),
    /// A field held a value it can never hold.
    #[error("invalid field: {0}")]
    Invalid(&'static str),
    /// Bytes after the end of the record.
    #[error("trailing bytes after the record")]
    Trailing,
    /// The record is of another kind than its key holds.
    #[error("record of the wrong kind for its key")]
    WrongKind,
}

impl Record {
    pub(crate) fn challenge(c: ChallengeRecord) -> Record {
        Record(RecordKind::Challenge(Arc::new(c)))
    }

    pub(crate) fn subject(s: SubjectRecord) -> Record {
        if s == CLEAN_SUBJECT {
            return Record(RecordKind::CleanSubject);
        }
        Record(RecordKind::Subject(Arc::new(s)))
    }

    pub(crate) fn as_challenge(&self) -> Result<&ChallengeRecord, DecodeError> {
        self.shared_challenge().map(|c| &**c)
    }

    /// The challenge, shared (a clone is a reference count).
    pub(crate) fn shared_challenge(&self) -> Result<&Arc<ChallengeRecord>, DecodeError> {
        match &self.0 {
            RecordKind::Challenge(c) => Ok(c),
            _ => Err(DecodeError::WrongKind),
        }
    }

    pub(crate) fn rate(r: RateRecord) -> Record {
        Record(RecordKind::Rate(r))
    }

    pub(crate) fn conversion(c: ConversionRecord) -> Record {
        Record(RecordKind::Conversion(Arc::new(c)))
    }

    pub(crate) fn device(d: DeviceRecord) -> Record {
        Record(RecordKind::Device(Arc::new(d)))
    }

    pub(crate) fn epoch(e: u32) -> Record {
        Record(RecordKind::Epoch(e))
    }

    pub(crate) fn fingerprint(f: [u8; 16], renewed: Timestamp) -> Record {
        Record(RecordKind::Fingerprint(Arc::new((f, renewed))))
    }

    pub(crate) fn as_fingerprint(&self) -> Result<([u8; 16], Timestamp), DecodeError> {
        match &self.0 {
            RecordKind::Fingerprint(f) => Ok(**f),
            _ => Err(DecodeError::WrongKind),
        }
    }

    pub(crate) fn as_device(&self) -> Result<&DeviceRecord, DecodeError> {
        match &self.0 {
            RecordKind::Device(d) => Ok(d),
            _ => Err(DecodeError::WrongKind),
        }
    }

    pub(crate) fn as_epoch(&self) -> Result<u32, DecodeError> {
        match &self.0 {
            RecordKind::Epoch(e) => Ok(*e),
            _ => Err(DecodeError::WrongKind),
        }
    }

    pub(crate) fn as_rate(&self) -> Result<&RateRecord, DecodeError> {
        match &self.0 {
            RecordKind::Rate(r) => Ok(r),
            _ => Err(DecodeError::WrongKind),
        }
    }

    pub(crate) fn as_conversion(&self) -> Result<&ConversionRecord, DecodeError> {
        match &self.0 {
            RecordKind::Conversion(c) => Ok(c),
            _ => Err(DecodeError::WrongKind),
        }
    }

    pub(crate) fn as_subject(&self) -> Result<&SubjectRecord, DecodeError> {
        match &self.0 {
            RecordKind::Subject(s) => Ok(s),
            RecordKind::CleanSubject => Ok(&CLEAN_SUBJECT),
            _ => Err(DecodeError::WrongKind),
        }
    }

    /// The record's compact byte form.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(160);
        self.encode_into(&mut out);
        out
    }

    /// Appends the record's byte form to `out` (a buffer kept for reuse).
    pub(crate) fn encode_into(&self, out: &mut Vec<u8>) {
        out.push(FORMAT);
        match &self.0 {
            RecordKind::Challenge(c) => {
                out.push(KIND_CHALLENGE);
                out.extend_from_slice(&c.nonce);
                for t in [c.created_at, c.expires_at, c.next_send_at] {
                    out.extend_from_slice(&t.as_millis().to_be_bytes());
                }
                out.push(c.sends);
                out.push(c.attempts);
                out.push(c.counted);
                for s in [
                    c.purpose.as_str(),
                    c.subject.as_str(),
                    c.destination.channel().as_str(),
                    c.destination.address(),
                ] {
                    // Every string is validated to at most 254 bytes on the way in.
                    out.push(s.len() as u8);
                    out.extend_from_slice(s.as_bytes());
                }
                match c.context() {
                    None => out.push(0),
                    Some(t) => {
                        out.push(1);
                        put_tag(out, t);
                    }
                }
                out.push(c.codes.len() as u8);
                for t in c.codes.iter() {
                    out.extend_from_slice(&t.key.get().to_be_bytes());
                    out.extend_from_slice(&t.tag);
                    out.push(t.via);
                }
                out.push(c.alternates().len() as u8);
                for d in c.alternates() {
                    for s in [d.channel().as_str(), d.address()] {
                        out.push(s.len() as u8);
                        out.extend_from_slice(s.as_bytes());
                    }
                }
                let locale = c.locale.as_str();
                out.push(locale.len() as u8);
                out.extend_from_slice(locale.as_bytes());
                match c.details() {
                    None => out.push(0),
                    Some(d) => {
                        // At most 80 characters: at most 320 bytes, so two length bytes.
                        out.push(1);
                        out.extend_from_slice(&(d.as_str().len() as u16).to_be_bytes());
                        out.extend_from_slice(d.as_str().as_bytes());
                    }
                }
            }
            RecordKind::Subject(_) | RecordKind::CleanSubject => {
                let s = match &self.0 {
                    RecordKind::Subject(s) => s,
                    _ => &CLEAN_SUBJECT,
                };
                out.push(KIND_SUBJECT);
                out.extend_from_slice(&s.failures.to_be_bytes());
                out.extend_from_slice(&s.last_failure_at.as_millis().to_be_bytes());
                let (kind, until) = match s.lock {
                    Lock::None => (0u8, 0i64),
                    Lock::Until(t) => (1, t.as_millis()),
                    Lock::UntilUnlocked => (2, 0),
                };
                out.push(kind);
                out.extend_from_slice(&until.to_be_bytes());
                out.extend_from_slice(&s.forgiven.to_be_bytes());
                out.extend_from_slice(&s.forgiven_since.as_millis().to_be_bytes());
            }
            RecordKind::Rate(r) => {
                out.push(KIND_RATE);
                out.extend_from_slice(&r.tat.as_millis().to_be_bytes());
            }
            RecordKind::Device(d) => {
                out.push(KIND_DEVICE);
                put_tag(out, &d.tag);
                out.extend_from_slice(&d.epoch.to_be_bytes());
                out.extend_from_slice(&d.expires_at.as_millis().to_be_bytes());
            }
            RecordKind::Epoch(e) => {
                out.push(KIND_EPOCH);
                out.extend_from_slice(&e.to_be_bytes());
            }
            RecordKind::Fingerprint(f) => {
                let (f, renewed) = &**f;
                out.push(KIND_FINGERPRINT);
                out.extend_from_slice(f);
                out.extend_from_slice(&renewed.as_millis().to_be_bytes());
            }
            RecordKind::Conversion(c) => {
                out.push(KIND_CONVERSION);
                out.extend_from_slice(&c.window_start.as_millis().to_be_bytes());
                for n in [c.sends, c.verified, c.prev_sends, c.prev_verified] {
                    out.extend_from_slice(&n.to_be_bytes());
                }
            }
        }
    }

    /// Reads a record from its byte form; any other bytes give an error.
    pub fn decode(bytes: &[u8]) -> Result<Record, DecodeError> {
        let mut r = Reader(bytes);
        let format = r.u8()?;
        if format != FORMAT {
            return Err(DecodeError::UnknownFormat(format));
        }
        let record = match r.u8()? {
            KIND_CHALLENGE => {
                let nonce = r.array::<16>()?;
                let created_at = Timestamp::from_millis(r.i64()?);
                let expires_at = Timestamp::from_millis(r.i64()?);
                let next_send_at = Timestamp::from_millis(r.i64()?);
                let sends = r.u8()?;
                let attempts = r.u8()?;
                let counted = r.u8()?;
                let purpose =
                    Purpose::parse(r.str8()?).map_err(|_| DecodeError::Invalid("purpose"))?;
                let subject =
                    Subject::new(r.str8()?).map_err(|_| DecodeError::Invalid("subject"))?;
                let channel = r.str8()?;
                let address = r.str8()?;
                let destination = Destination::from_parts(channel, address)
                    .map_err(|_| DecodeError::Invalid("destination"))?;
                let context = match r.u8()? {
                    0 => None,
                    1 => Some(r.tag()?),
                    _ => return Err(DecodeError::Invalid("context flag")),
                };
                let n = usize::from(r.u8()?);
                // No codes: a cancelled challenge, kept for its counters.
                if n > MAX_LIVE_CODES {
                    return Err(DecodeError::Invalid("code count"));
                }
                let mut codes = Codes::default();
                for _ in 0..n {
                    let StoredTag { key, tag } = r.tag()?;
                    let via = r.u8()?;
                    // Checked against the alternates once they are read; a
                    // `via` past any alternate could not be kept (one is
                    // [`Codes`]' mark for no code).
                    if usize::from(via) > MAX_ALTERNATES {
                        return Err(DecodeError::Invalid("code destination"));
                    }
                    codes.push(CodeTag { key, tag, via });
                }
                let n_alt = usize::from(r.u8()?);
                if n_alt > MAX_ALTERNATES {
                    return Err(DecodeError::Invalid("alternate count"));
                }
                let mut alternates = Vec::with_capacity(n_alt);
                for _ in 0..n_alt {
                    let channel = r.str8()?;
                    let address = r.str8()?;
                    alternates.push(
                        Destination::from_parts(channel, address)
                            .map_err(|_| DecodeError::Invalid("destination"))?,
                    );
                }
                let locale_tag = r.str8()?;
                let locale = crate::message::Locale::parse(locale_tag)
                    .ok()
                    .filter(|l| l.as_str() == locale_tag)
                    .ok_or(DecodeError::Invalid("locale"))?;
                let details = match r.u8()? {
                    0 => None,
                    1 => {
                        let n = usize::from(u16::from_be_bytes(r.array()?));
                        let text = std::str::from_utf8(r.take(n)?)
                            .map_err(|_| DecodeError::Invalid("utf-8"))?;
                        Some(
                            crate::subject::Details::new(text)
                                .map_err(|_| DecodeError::Invalid("details"))?,
                        )
                    }
                    _ => return Err(DecodeError::Invalid("details flag")),
                };
                if expires_at < created_at || sends == 0 {
                    return Err(DecodeError::Invalid("challenge times or counts"));
                }
                if codes.iter().any(|c| usize::from(c.via) > alternates.len()) {
                    return Err(DecodeError::Invalid("code destination"));
                }
                Record::challenge(ChallengeRecord {
                    nonce,
                    created_at,
                    expires_at,
                    next_send_at,
                    sends,
                    attempts,
                    counted,
                    purpose,
                    subject,
                    destination,
                    locale,
                    codes,
                    rare: Rare::new(alternates, details, context),
                })
            }
            KIND_SUBJECT => {
                let failures = r.u32()?;
                let last_failure_at = Timestamp::from_millis(r.i64()?);
                let kind = r.u8()?;
                let until = Timestamp::from_millis(r.i64()?);
                // Only a timed lock has a time: one record, one byte form.
                let lock = match (kind, until.as_millis()) {
                    (0, 0) => Lock::None,
                    (1, _) => Lock::Until(until),
                    (2, 0) => Lock::UntilUnlocked,
                    _ => return Err(DecodeError::Invalid("lock")),
                };
                let forgiven = r.u32()?;
                let forgiven_since = Timestamp::from_millis(r.i64()?);
                Record::subject(SubjectRecord {
                    failures,
                    last_failure_at,
                    lock,
                    forgiven,
                    forgiven_since,
                })
            }
            KIND_RATE => Record::rate(RateRecord {
                tat: Timestamp::from_millis(r.i64()?),
            }),
            KIND_CONVERSION => Record::conversion(ConversionRecord {
                window_start: Timestamp::from_millis(r.i64()?),
                sends: r.u32()?,
                verified: r.u32()?,
                prev_sends: r.u32()?,
                prev_verified: r.u32()?,
            }),
            KIND_DEVICE => Record::device(DeviceRecord {
                tag: r.tag()?,
                epoch: r.u32()?,
                expires_at: Timestamp::from_millis(r.i64()?),
            }),
            KIND_EPOCH => Record::epoch(r.u32()?),
            KIND_FINGERPRINT => {
                let mut f = [0u8; 16];
                f.copy_from_slice(r.take(16)?);
                Record::fingerprint(f, Timestamp::from_millis(r.i64()?))
            }
            other => return Err(DecodeError::UnknownKind(other)),
        };
        if !r.0.is_empty() {
            return Err(DecodeError::Trailing);
        }
        Ok(record)
    }
}

fn put_tag(out: &mut Vec<u8>, t: &StoredTag) {
    out.extend_from_slice(&t.key.get().to_be_bytes());
    out.extend_from_slice(&t.tag);
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.0.len() < n {
            return Err(DecodeError::Truncated);
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    fn i64(&mut self) -> Result<i64, DecodeError> {
        Ok(i64::from_be_bytes(self.array()?))
    }

    fn str8(&mut self) -> Result<&'a str, DecodeError> {
        let n = usize::from(self.u8()?);
        std::str::from_utf8(self.take(n)?).map_err(|_| DecodeError::Invalid("utf-8"))
    }

    fn tag(&mut self) -> Result<StoredTag, DecodeError> {
        Ok(StoredTag {
            key: KeyId::new(self.u32()?),
            tag: self.array()?,
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn sample_challenge() -> Record {
        Record::challenge(ChallengeRecord {
            nonce: [9; 16],
            created_at: Timestamp::from_millis(1_000),
            expires_at: Timestamp::from_millis(601_000),
            next_send_at: Timestamp::from_millis(31_000),
            sends: 2,
            attempts: 1,
            counted: 3,
            purpose: Purpose::custom("wire_transfer").unwrap(),
            subject: Subject::new("user-42").unwrap(),
            destination: Destination::email("ana@example.com").unwrap(),
            locale: crate::message::Locale::De,
            rare: Rare::new(
                vec![Destination::sms("+14155550123").unwrap()],
                Some(crate::subject::Details::new("pay 42.00 EUR to ACME").unwrap()),
                Some(StoredTag {
                    key: KeyId::new(3),
                    tag: [4; 32],
                }),
            ),
            codes: [
                CodeTag {
                    key: KeyId::new(2),
                    tag: [5; 32],
                    via: 1,
                },
                CodeTag {
                    key: KeyId::new(3),
                    tag: [6; 32],
                    via: 0,
                },
            ]
            .into_iter()
            .collect(),
        })
    }

    pub(crate) fn sample_subject() -> Record {
        Record::subject(SubjectRecord {
            failures: 7,
            last_failure_at: Timestamp::from_millis(5),
            lock: Lock::Until(Timestamp::from_millis(99)),
            forgiven: 3,
            forgiven_since: Timestamp::from_millis(2),
        })
    }

    #[test]
    fn debug_shows_neither_the_nonce_nor_a_digest() {
        // The sample's nonce is [9; 16]; its digests [4; 32], [5; 32], [6; 32].
        let shown = format!("{:?}", sample_challenge());
        for byte in [9u8, 4, 5, 6] {
            let run = format!("{byte}, {byte}, {byte}, {byte}");
            assert!(!shown.contains(&run), "{shown}");
        }
        assert!(shown.contains("nonce: \"<redacted>\""), "{shown}");
        assert!(shown.contains("tag: \"<redacted>\""), "{shown}");
        assert!(shown.contains("attempts"), "{shown}");
    }

    #[test]
    fn round_trips() {
        let rate = Record::rate(RateRecord {
            tat: Timestamp::from_millis(-5),
        });
        let conv = Record::conversion(ConversionRecord {
            window_start: Timestamp::from_millis(7),
            sends: 1,
            verified: 2,
            prev_sends: 3,
            prev_verified: 4,
        });
        let device = Record::device(DeviceRecord {
            tag: StoredTag {
                key: KeyId::new(9),
                tag: [3; 32],
            },
            epoch: 4,
            expires_at: Timestamp::from_millis(77),
        });
        for r in [
            sample_challenge(),
            sample_subject(),
            rate,
            conv,
            device,
            Record::epoch(12),
            // A success's subject record (kept without an allocation), and one
            // that differs from it only in the time of its last failure.
            Record::subject(CLEAN_SUBJECT),
            Record::subject(SubjectRecord {
                last_failure_at: Timestamp::from_millis(1),
                ..CLEAN_SUBJECT
            }),
        ] {
            assert_eq!(Record::decode(&r.encode()).unwrap(), r);
        }
    }

    #[test]
    fn codes_keep_the_newest_in_order_like_a_vector() {
        let tag = |i: u8| CodeTag {
            key: KeyId::new(u32::from(i)),
            tag: [i; 32],
            via: i % 4,
        };
        for pushed in 0..=MAX_LIVE_CODES as u8 + 2 {
            for keep in 0..=MAX_LIVE_CODES + 2 {
                let (mut codes, mut model) = (Codes::default(), Vec::new());
                for i in 0..pushed {
                    codes.push(tag(i));
                    model.push(tag(i));
                    codes.keep_newest(keep);
                    let drop = model.len().saturating_sub(keep);
                    model.drain(..drop);
                    let got: Vec<CodeTag> = codes.iter().copied().collect();
                    assert_eq!(got, model, "pushed {pushed}, keep {keep}");
                    assert_eq!(
                        (codes.len(), codes.is_empty()),
                        (model.len(), model.is_empty())
                    );
                }
                codes.clear();
                assert!(codes.is_empty() && codes.iter().next().is_none());
            }
        }
    }

    #[test]
    fn a_clean_subject_reads_and_encodes_as_a_subject_record() {
        let clean = Record::subject(CLEAN_SUBJECT);
        assert!(matches!(clean.0, RecordKind::CleanSubject));
        assert_eq!(clean.as_subject(), Ok(&CLEAN_SUBJECT));
        // Only the clean record is shortened: anything else keeps its fields.
        for other in [
            SubjectRecord {
                last_failure_at: Timestamp::from_millis(1),
                ..CLEAN_SUBJECT
            },
            SubjectRecord {
                failures: 1,
                ..CLEAN_SUBJECT
            },
            SubjectRecord {
                lock: Lock::UntilUnlocked,
                ..CLEAN_SUBJECT
            },
            SubjectRecord {
                forgiven: 1,
                forgiven_since: Timestamp::from_millis(1),
                ..CLEAN_SUBJECT
            },
        ] {
            let r = Record::subject(other);
            assert!(matches!(r.0, RecordKind::Subject(_)));
            assert_eq!(r.as_subject(), Ok(&other));
        }
        assert_eq!(clean.as_challenge(), Err(DecodeError::WrongKind));
        let mut bytes = sample_subject().encode();
        let at = bytes.len() - 33;
        bytes[at..].fill(0);
        assert_eq!(clean.encode(), bytes);
    }

    #[test]
    fn a_lock_without_a_time_has_no_time_in_its_bytes() {
        // Found by the mutated-records property test once it mutated subject
        // records too: an untimed lock ignored the time's bytes, so one record
        // had many byte forms.
        for (kind, until) in [(0u8, 5i64), (2, -1)] {
            let mut bytes = Record::subject(CLEAN_SUBJECT).encode();
            bytes[14] = kind;
            bytes[15..23].copy_from_slice(&until.to_be_bytes());
            assert_eq!(Record::decode(&bytes), Err(DecodeError::Invalid("lock")));
            bytes[15..23].fill(0);
            assert!(Record::decode(&bytes).is_ok());
        }
    }

    #[test]
    fn a_challenge_keeps_its_rarely_used_fields_out_of_line() {
        // `MemoryStore`'s default layout keeps one per pending challenge:
        // 272 bytes while the fallbacks, details, context and newer codes
        // were inline (488 bytes per pending challenge at a million, memory
        // bench); 184 now.
        assert!(std::mem::size_of::<ChallengeRecord>() <= 184);
        assert_eq!(std::mem::size_of::<Rare>(), 8);
        assert_eq!(std::mem::size_of::<Codes>(), 48);
        // A challenge without them has nothing out of line, and one with
        // them keeps them: through the byte form too.
        let plain = Rare::new(Vec::new(), None, None);
        assert!(plain.0.is_none());
        let Ok(rec) = sample_challenge().as_challenge().cloned() else {
            panic!("a challenge");
        };
        assert_eq!(rec.alternates().len(), 1);
        assert!(rec.details().is_some() && rec.context().is_some());
        assert_eq!(rec.codes.len(), 2);
    }

    #[test]
    fn codes_keep_the_newest_and_one_form_each() {
        let tag = |b: u8| CodeTag {
            key: KeyId::new(1),
            tag: [b; 32],
            via: 0,
        };
        let mut codes: Codes = (1..=4).map(tag).collect();
        codes.keep_newest(2);
        assert_eq!(codes, (3..=4).map(tag).collect());
        codes.keep_newest(1);
        // No empty list left behind: equal to a fresh single code.
        assert_eq!(codes, std::iter::once(tag(4)).collect());
        assert!(codes.more.is_none());
        codes.keep_newest(0);
        assert!(codes.is_empty() && codes == Codes::default());
        let mut two: Codes = (1..=2).map(tag).collect();
        two.clear();
        assert_eq!(two, Codes::default());
    }

    #[test]
    fn a_record_is_two_words() {
        // Every slot of `MemoryStore`'s default tables holds one: a kind
        // stored inline past a word grew each pending challenge by 34 bytes
        // at a million (the lookup-key fingerprint did, until it was boxed).
        assert!(std::mem::size_of::<Record>() <= 16);
    }

    #[test]
    fn every_truncation_and_extension_is_an_error() {
        for r in [sample_challenge(), sample_subject()] {
            let bytes = r.encode();
            for n in 0..bytes.len() {
                assert!(Record::decode(&bytes[..n]).is_err(), "prefix {n}");
            }
            let mut longer = bytes.clone();
            longer.push(0);
            assert_eq!(Record::decode(&longer), Err(DecodeError::Trailing));
        }
    }

    #[test]
    fn a_code_sent_to_a_destination_not_named_does_not_decode() {
        // The sample names its destination and one alternate: via 0 or 1.
        for via in [2, 3] {
            let mut rec = sample_challenge().as_challenge().unwrap().clone();
            rec.codes.iter_mut().for_each(|c| c.via = via);
            let bytes = Record::challenge(rec).encode();
            assert_eq!(
                Record::decode(&bytes),
                Err(DecodeError::Invalid("code destination")),
                "via {via}"
            );
        }
        // 255 marks "no code" inside `Codes`: a stored one must not decode
        // as one code fewer (the fuzz corpus test found it).
        let mut bytes = sample_challenge().encode();
        // The first code: key id 2 and a digest of 5s, then its `via`.
        let code = bytes
            .windows(36)
            .position(|w| w[..4] == 2u32.to_be_bytes() && w[4..] == [5; 32])
            .unwrap();
        bytes[code + 36] = u8::MAX;
        assert_eq!(
            Record::decode(&bytes),
            Err(DecodeError::Invalid("code destination"))
        );
    }

    #[test]
    fn every_single_byte_flip_decodes_or_errs_without_panic() {
        let bytes = sample_challenge().encode();
        for i in 0..bytes.len() {
            for bit in 0..8 {
                let mut b = bytes.clone();
                b[i] ^= 1 << bit;
                let _ = Record::decode(&b);
            }
        }
        let mut b = bytes.clone();
        b[0] = 1;
        assert_eq!(Record::decode(&b), Err(DecodeError::UnknownFormat(1)));
        // Format 2 had no `via` per code.
        b[0] = 2;
        assert_eq!(Record::decode(&b), Err(DecodeError::UnknownFormat(2)));
        b[0] = FORMAT;
        b[1] = 9;
        assert_eq!(Record::decode(&b), Err(DecodeError::UnknownKind(9)));
    }
}
