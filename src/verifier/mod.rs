//! The [`Verifier`]: issues, resends, verifies and cancels challenges, with all
//! policy decided here and only conditional writes asked of the store.
//!
//! - `builder.rs`: [`VerifierBuilder`], checked at `build()`;
//! - `issue.rs`: issue and resend;
//! - `verify.rs`: verify, cancel, unlock;
//! - this file: the types they return and the pieces they share.

mod builder;
mod devices;
mod fleet;
mod issue;
mod limits;
mod verify;

use std::fmt;
use std::sync::Arc;

use time::OffsetDateTime;

use crate::challenge_id::ChallengeId;
use crate::clock::{Clock, Timestamp};
use crate::code::{Code, MAX_CODE_LEN};
use crate::delivery::Receipt;
use crate::destination::{Channel, Destination, MaskedDestination};
use crate::error::StoreError;
use crate::keys::{CODE_INPUT, CODE_INPUT_BOUND, DOMAIN_CONTEXT, KeyRing, LookupKey, MacKey, Tag};
use crate::limits::ClientKey;
use crate::message::{Locale, Messages};
use crate::policy::Policy;
use crate::purpose::{MAX_PURPOSE_LEN, Purpose};
use crate::record::{ChallengeRecord, Lock, StoredTag, SubjectRecord};
use crate::store::{CodeStore, Commit, StoreKey, Versioned, Write};
use crate::subject::{Context, Details, Subject};

pub use builder::{Unset, VerifierBuilder};

/// How many times an operation re-reads and decides again after a write
/// conflict before it fails closed with [`StoreError::Contention`].
const MAX_TRIES: u32 = 16;

/// How long an expired challenge is kept, so that a late attempt is told
/// "expired" rather than "unknown".
const EXPIRED_RETENTION: time::Duration = time::Duration::minutes(10);

/// Issues one-time codes, hands them to a [`Delivery`](crate::Delivery), and
/// verifies what people type back.
///
/// Build one with [`Verifier::builder`]; share it (it is `Send + Sync`) or
/// clone the store handle into several. Every method is `async` and its future
/// is `Send`, with no runtime of its own.
///
/// ```
/// use vericode::{Destination, IssueRequest, KeyId, MemoryStore, Purpose,
///                RecordingDelivery, SecretKey, Subject, Verifier, VerifyError};
///
/// # pollster::block_on(async {
/// let verifier = Verifier::builder()
///     .store(MemoryStore::new())
///     .delivery(RecordingDelivery::new())
///     .signing_key(KeyId::new(1), SecretKey::generate())
///     .app_name("Acme")
///     .build()?;
///
/// let request = IssueRequest::new(
///     Purpose::LoginNewDevice,
///     Subject::new("user-42")?,
///     Destination::sms("+14155550123")?,
/// );
/// let ticket = verifier.issue(&request).await?;
/// assert_eq!(ticket.attempts_left(), 5);
///
/// // The person reads the code from their phone and types it in.
/// let typed = verifier.delivery().last_code().unwrap();
/// let verified = verifier.verify(&Purpose::LoginNewDevice, ticket.challenge_id(), &typed).await?;
/// assert_eq!(verified.subject().as_str(), "user-42");
///
/// // A code works once.
/// let again = verifier.verify(&Purpose::LoginNewDevice, ticket.challenge_id(), &typed).await;
/// assert!(matches!(again, Err(VerifyError::UnknownChallenge)));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
pub struct Verifier<S, D, C> {
    store: S,
    delivery: D,
    clock: C,
    policy: Policy,
    keys: KeyRing,
    lookup: LookupKey,
    app_name: Box<str>,
    messages: Messages,
}

impl<S, D, C> fmt::Debug for Verifier<S, D, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("policy", &self.policy)
            .field("keys", &self.keys)
            .field("app_name", &self.app_name)
            .finish_non_exhaustive()
    }
}

/// What to challenge: a purpose, a subject, where to send the code, and
/// optionally details to bind it to.
///
/// ```
/// use vericode::{Context, Destination, IssueRequest, Purpose, Subject};
/// let request = IssueRequest::new(
///     Purpose::CredentialChange,
///     Subject::new("user-42")?,
///     Destination::email("new@example.com")?,
/// )
/// .bind(Context::new("change-email:new@example.com")?);
/// assert!(request.context().is_some());
/// # Ok::<(), vericode::InputError>(())
/// ```
#[derive(Clone, Debug)]
pub struct IssueRequest {
    purpose: Purpose,
    subject: Subject,
    destination: Destination,
    context: Option<Context>,
    client: Option<ClientKey>,
    fallbacks: Vec<Destination>,
    locale: Locale,
    details: Option<Details>,
}

impl IssueRequest {
    /// A request without bound details.
    pub fn new(purpose: Purpose, subject: Subject, destination: Destination) -> Self {
        IssueRequest {
            purpose,
            subject,
            destination,
            context: None,
            client: None,
            fallbacks: Vec::new(),
            locale: Locale::default(),
            details: None,
        }
    }

    /// The language of the messages (default English; a locale the
    /// verifier's [`Messages`] do not send in falls back to their first).
    pub fn locale(mut self, locale: Locale) -> Self {
        self.locale = locale;
        self
    }

    /// Binds the code to transaction `details` and shows them in the message
    /// in place of the purpose ("…is your code to approve a payment of 42.00
    /// EUR to ACME"). Verify with
    /// [`Verifier::verify_bound`] and `Context::from(&details)`; other details
    /// fail. Replaces any context given with [`IssueRequest::bind`].
    pub fn details(mut self, details: Details) -> Self {
        self.context = Some(Context::from(&details));
        self.details = Some(details);
        self
    }

    /// Names another destination, tried in order when delivery to the ones
    /// before it fails with an error the [`Delivery`](crate::Delivery) marks
    /// retryable (up to 3; the phone if linked, else email, as most services
    /// do). The [`Ticket`] says which channel carried the code, and
    /// [`Verifier::resend_via`] may later pick any of them.
    pub fn fallback(mut self, destination: Destination) -> Self {
        self.fallbacks.push(destination);
        self
    }

    /// Names who is asking (an IP address, a session, a device), so that
    /// sends are also limited per client ([`Limit::Client`](crate::Limit::Client)).
    pub fn client(mut self, client: ClientKey) -> Self {
        self.client = Some(client);
        self
    }

    /// Binds the code to `context`: it will verify only through
    /// [`Verifier::verify_bound`] with the same details. Replaces any
    /// [`details`](IssueRequest::details) given before, which then are not
    /// shown either: a message shows details only when they are exactly what
    /// the code approves.
    ///
    /// ```
    /// # use vericode::*;
    /// let pay = Details::new("approve a payment of 42.00 EUR to ACME")?;
    /// let request = IssueRequest::new(
    ///     Purpose::StepUp,
    ///     Subject::new("user-42")?,
    ///     Destination::email("ana@example.com")?,
    /// )
    /// .details(pay.clone())
    /// .bind(Context::new("session-7")?);
    /// // The last call wins: bound to the context, the payment not shown.
    /// assert_eq!(request.context(), Some(&Context::new("session-7")?));
    /// assert!(request.shown_details().is_none());
    /// # Ok::<(), vericode::InputError>(())
    /// ```
    pub fn bind(mut self, context: Context) -> Self {
        self.context = Some(context);
        self.details = None;
        self
    }

    /// The purpose.
    pub fn purpose(&self) -> &Purpose {
        &self.purpose
    }

    /// The subject.
    pub fn subject(&self) -> &Subject {
        &self.subject
    }

    /// The destination.
    pub fn destination(&self) -> &Destination {
        &self.destination
    }

    /// The bound details, if any.
    pub fn context(&self) -> Option<&Context> {
        self.context.as_ref()
    }

    /// The details the messages show, if any: set by
    /// [`details`](IssueRequest::details), and then also the bound
    /// [`context`](IssueRequest::context).
    pub fn shown_details(&self) -> Option<&Details> {
        self.details.as_ref()
    }
}

/// One verification attempt: the purpose the handler serves, the challenge
/// id, what the person typed, and optionally the bound details and who is
/// asking. The shorthands [`Verifier::verify`] and [`Verifier::verify_bound`]
/// cover the common cases.
///
/// ```
/// use vericode::{Attempt, ChallengeId, ClientKey, Context, Purpose};
/// # let id: ChallengeId = format!("{}B{}", "A".repeat(31), "A".repeat(43)).parse()?;
/// let ctx = Context::new("new-email:ana@example.com")?;
/// let client = ClientKey::new("ip:203.0.113.7")?;
/// let attempt = Attempt::new(&Purpose::CredentialChange, &id, "123 456")
///     .bound(&ctx)
///     .client(&client);
/// # let _ = attempt;
/// # Ok::<(), vericode::InputError>(())
/// ```
#[derive(Clone, Copy)]
pub struct Attempt<'a> {
    id: &'a ChallengeId,
    typed: &'a str,
    context: Option<&'a Context>,
    client: Option<&'a ClientKey>,
    purpose: &'a Purpose,
}

impl<'a> Attempt<'a> {
    /// An attempt at challenge `id` with what the person `typed`, accepting
    /// only a challenge made for `purpose`: a password-reset handler passes
    /// [`Purpose::PasswordReset`], so the id and code of a sign-in challenge
    /// fail there as unknown.
    pub fn new(purpose: &'a Purpose, id: &'a ChallengeId, typed: &'a str) -> Self {
        Attempt {
            id,
            typed,
            context: None,
            client: None,
            purpose,
        }
    }

    /// The details the challenge was bound to.
    pub fn bound(mut self, context: &'a Context) -> Self {
        self.context = Some(context);
        self
    }

    /// Who is asking, for the per-client attempt limit
    /// ([`Limit::VerifyClient`](crate::Limit::VerifyClient)).
    pub fn client(mut self, client: &'a ClientKey) -> Self {
        self.client = Some(client);
        self
    }
}

impl fmt::Debug for Attempt<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Attempt")
            .field("id", self.id)
            .field("typed", &"<redacted>")
            .field("context", &self.context)
            .field("client", &self.client)
            .field("purpose", &self.purpose)
            .finish()
    }
}

/// What the caller of [`Verifier::issue`] gets back: everything to show the
/// person and to verify later, but never the code.
#[derive(Clone, Debug)]
pub struct Ticket {
    challenge_id: ChallengeId,
    purpose: Purpose,
    expires_at: Timestamp,
    resend_after: Option<Timestamp>,
    attempts_left: u32,
    channel: Channel,
    masked: MaskedDestination,
    receipt: Receipt,
}

impl Ticket {
    /// The challenge's id: give it to the client, which sends it back with the code.
    pub fn challenge_id(&self) -> &ChallengeId {
        &self.challenge_id
    }

    /// The purpose the code was sent for.
    pub fn purpose(&self) -> &Purpose {
        &self.purpose
    }

    /// When the challenge expires.
    pub fn expires_at(&self) -> OffsetDateTime {
        self.expires_at.to_datetime()
    }

    /// When a resend becomes allowed; `None` if this challenge may send no more codes.
    pub fn resend_after(&self) -> Option<OffsetDateTime> {
        self.resend_after.map(Timestamp::to_datetime)
    }

    /// Attempts left on the challenge.
    pub fn attempts_left(&self) -> u32 {
        self.attempts_left
    }

    /// The channel that carried the code.
    pub fn channel(&self) -> &Channel {
        &self.channel
    }

    /// The destination, masked for display ("•••• ••• 0123").
    pub fn masked_destination(&self) -> &MaskedDestination {
        &self.masked
    }

    /// What the delivery reported (the provider's message id).
    pub fn receipt(&self) -> &Receipt {
        &self.receipt
    }
}

/// A successful verification: whose code it was, for what, and where it was sent.
#[derive(Clone)]
pub struct Verified {
    // The consumed challenge, shared rather than copied field by field: a
    // success allocates nothing for its answer. Only the accessors below
    // reach it (never its digests).
    challenge: Arc<ChallengeRecord>,
    /// Which of its named destinations carried the code that matched.
    via: u8,
    verified_at: Timestamp,
}

impl Verified {
    /// The subject that proved it holds the destination.
    pub fn subject(&self) -> &Subject {
        &self.challenge.subject
    }

    /// What the code was for.
    pub fn purpose(&self) -> &Purpose {
        &self.challenge.purpose
    }

    /// Where the code that was typed had been sent (now proven reachable by
    /// the subject): after a fallback or a `resend_via`, the challenge's
    /// codes may have gone to several of its named destinations, and this is
    /// the one whose code matched.
    pub fn destination(&self) -> &Destination {
        // Records are checked on decoding and renamed with their codes, so
        // `via` is always named; the challenge's destination is the
        // fail-safe answer regardless.
        self.challenge
            .named_at(self.via)
            .unwrap_or(&self.challenge.destination)
    }

    /// When it was verified.
    pub fn verified_at(&self) -> OffsetDateTime {
        self.verified_at.to_datetime()
    }
}

impl std::fmt::Debug for Verified {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verified")
            .field("subject", self.subject())
            .field("purpose", self.purpose())
            .field("destination", self.destination())
            .field("verified_at", &self.verified_at())
            .finish()
    }
}

impl<S, D, C> Verifier<S, D, C> {
    /// The policy in force.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The delivery (to read a [`RecordingDelivery`](crate::RecordingDelivery) in tests).
    pub fn delivery(&self) -> &D {
        &self.delivery
    }

    /// The application name used in messages.
    pub fn app_name(&self) -> &str {
        &self.app_name
    }
}

/// The digest of `code` for a challenge. Its input, every field of a fixed
/// length or with its length in front:
///
/// ```text
/// 0x81 ‖ id bytes 0..40 ‖ len(code):u8 ‖ code                     (no details)
/// 0x82 ‖ id bytes 0..40 ‖ details digest[32] ‖ len(code):u8 ‖ code (bound)
/// ```
///
/// then, for a custom purpose, `len(name):u8 ‖ name`. The id's 40 bytes name
/// the subject (a keyed hash), the purpose and the challenge's nonce. For a
/// built-in purpose without details this is at most 54 bytes, one SHA-256
/// block: the digest costs two compressions past the key schedule, the floor
/// the design counts.
fn code_tag(
    mac: &MacKey,
    purpose: &Purpose,
    id: &ChallengeId,
    context: Option<&StoredTag>,
    code: &Code,
) -> Tag {
    // It holds the code: written in place (no copy moves out of a callee),
    // and its written part zeroed (the rest was never written).
    let mut buf = [0u8; CODE_INPUT_MAX];
    let n = code_input(&mut buf, purpose, id, context, code);
    let tag = mac.tag_raw(&buf[..n]);
    zeroize::Zeroize::zeroize(&mut buf[..n]);
    tag
}

/// The longest input of a code digest.
const CODE_INPUT_MAX: usize = 1 + 40 + 32 + 1 + MAX_CODE_LEN + 1 + MAX_PURPOSE_LEN;

/// Writes [`code_tag`]'s input to the start of `buf`; answers its length.
fn code_input(
    buf: &mut [u8; CODE_INPUT_MAX],
    purpose: &Purpose,
    id: &ChallengeId,
    context: Option<&StoredTag>,
    code: &Code,
) -> usize {
    let mut n = 0;
    let mut put = |bytes: &[u8]| {
        buf[n..n + bytes.len()].copy_from_slice(bytes);
        n += bytes.len();
    };
    put(&[if context.is_some() {
        CODE_INPUT_BOUND
    } else {
        CODE_INPUT
    }]);
    put(id.as_bytes());
    if let Some(t) = context {
        put(&t.tag);
    }
    // A code is at most `MAX_CODE_LEN` (12) bytes and a name
    // `MAX_PURPOSE_LEN` (32): each length fits a byte, and `buf` holds all.
    let code = code.as_bytes();
    put(&[code.len() as u8]);
    put(code);
    if let Purpose::Custom(_) = purpose {
        let name = purpose.as_str().as_bytes();
        put(&[name.len() as u8]);
        put(name);
    }
    n
}

/// The digest of the details a challenge is bound to.
fn context_tag(mac: &MacKey, id: &ChallengeId, context: &Context) -> Tag {
    mac.tag(DOMAIN_CONTEXT, &[id.as_bytes(), context.as_bytes()])
}

impl<S: CodeStore, D, C: Clock> Verifier<S, D, C> {
    fn now(&self) -> Timestamp {
        self.clock.now_timestamp()
    }

    async fn read(
        &self,
        keys: &[StoreKey],
        now: Timestamp,
    ) -> Result<Vec<Option<Versioned>>, StoreError> {
        let got = self
            .store
            .get_many(keys, now)
            .await
            .map_err(|e| StoreError::Backend(Box::new(e)))?;
        if got.len() != keys.len() {
            return Err(StoreError::Backend(
                "the store answered a different number of keys than asked".into(),
            ));
        }
        Ok(got)
    }
}

/// What one round of [`Verifier::update`] decided.
pub(super) enum Step<T> {
    /// Nothing to write: answer `T`.
    Done(T),
    /// Write these (all or none, on the versions read), then answer `T`.
    Commit(Vec<Write>, T),
}

impl<S: CodeStore, D, C: Clock> Verifier<S, D, C> {
    /// The read-decide-write loop of the simple operations: reads `keys`, lets
    /// `decide` choose from what it read, commits on the condition that
    /// nothing changed meanwhile, and decides again on a conflict; fails
    /// closed with [`StoreError::Contention`] after [`MAX_TRIES`].
    pub(super) async fn update<T, E>(
        &self,
        keys: &[StoreKey],
        mut decide: impl FnMut(&[Option<Versioned>], Timestamp) -> Result<Step<T>, E>,
    ) -> Result<T, E>
    where
        E: From<StoreError>,
    {
        for _ in 0..MAX_TRIES {
            let now = self.now();
            let got = self.read(keys, now).await?;
            let (writes, answer) = match decide(&got, now)? {
                Step::Done(answer) => return Ok(answer),
                Step::Commit(writes, answer) => (writes, answer),
            };
            match self
                .store
                .commit(&writes, now)
                .await
                .map_err(|e| StoreError::Backend(Box::new(e)))?
            {
                Commit::Applied => return Ok(answer),
                Commit::Conflict => continue,
            }
        }
        Err(StoreError::Contention(MAX_TRIES).into())
    }
}

/// The subject's state as read: its record (if any) and whether it is locked now.
fn subject_state(
    rec: Option<&Versioned>,
) -> Result<Option<(&Versioned, &SubjectRecord)>, StoreError> {
    match rec {
        None => Ok(None),
        Some(v) => Ok(Some((
            v,
            v.record.as_subject().map_err(StoreError::Corrupt)?,
        ))),
    }
}

/// The subject's record after a success at `now` on a challenge whose wrong
/// guesses counted `own` of its failures: those are forgiven, up to what is
/// left of `policy`'s cap on forgiveness per failure memory; the others stay,
/// with the time of the last failure and the lock as they were (a success is
/// only reached unlocked, so a timed lock kept here has ended). `None` when
/// nothing is left to remember (no failures, nothing forgiven).
fn forgive(
    before: Option<&SubjectRecord>,
    own: u8,
    policy: &Policy,
    now: Timestamp,
) -> Option<SubjectRecord> {
    let s = before?;
    // A window opens at the first forgiveness and lasts the failure memory.
    let (already, since) =
        if s.forgiven > 0 && now < s.forgiven_since.saturating_add(policy.failure_memory) {
            (s.forgiven, s.forgiven_since)
        } else {
            (0, now)
        };
    let forgiven_now = u32::from(own)
        .min(policy.forgiveness_cap().saturating_sub(already))
        .min(s.failures);
    let failures = s.failures - forgiven_now;
    let forgiven = already + forgiven_now;
    let next = SubjectRecord {
        failures,
        forgiven,
        forgiven_since: if forgiven > 0 {
            since
        } else {
            Timestamp::EPOCH
        },
        ..*s
    };
    (failures > 0 || forgiven > 0).then_some(next)
}

/// `Some(until)` if the subject is locked at `now` (`until` is `None` for a
/// lock that needs an unlock).
fn locked_until(
    subject: Option<&SubjectRecord>,
    policy: &Policy,
    now: Timestamp,
) -> Option<Option<OffsetDateTime>> {
    let s = subject?;
    match s.lock {
        Lock::Until(t) if now < t => Some(Some(t.to_datetime())),
        Lock::UntilUnlocked => Some(None),
        _ if s.failures >= policy.max_failures
            && policy.lockout == crate::policy::Lockout::UntilUnlocked =>
        {
            Some(None)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::code::CodeFormat;

    /// With a built-in purpose and no details, the longest code's digest input
    /// fits one SHA-256 block (55 bytes leave room for the padding): the
    /// digest costs the floor's two compressions. With a custom name or
    /// details it may take more.
    #[test]
    fn a_built_in_purpose_digests_in_one_block() {
        let id = ChallengeId::new([1; 16], [0, 0, 0, 0, 0, 0, 0, 1], [3; 16]);
        let longest = CodeFormat::unambiguous(MAX_CODE_LEN)
            .unwrap()
            .normalize("ABCDEFGHJKMN")
            .unwrap();
        for purpose in [
            Purpose::LoginNewDevice,
            Purpose::CredentialChange,
            Purpose::StepUp,
            Purpose::PasswordReset,
        ] {
            let n = code_input(&mut [0; CODE_INPUT_MAX], &purpose, &id, None, &longest);
            assert_eq!(n, 54);
        }
        let custom = Purpose::custom(&"a".repeat(MAX_PURPOSE_LEN)).unwrap();
        let tag = StoredTag {
            key: crate::keys::KeyId::new(1),
            tag: [9; 32],
        };
        let mut buf = [0; CODE_INPUT_MAX];
        let n = code_input(&mut buf, &custom, &id, Some(&tag), &longest);
        assert_eq!(n, CODE_INPUT_MAX);
        assert_eq!(buf[0], CODE_INPUT_BOUND);
        assert_eq!(&buf[41..73], &[9; 32]);
    }

    /// The window of forgiveness lasts exactly the failure memory: a success
    /// one millisecond before its end forgives nothing past the cap, one at
    /// its end opens a new window.
    #[test]
    fn the_forgiveness_window_ends_exactly_one_failure_memory_after_it_opened() {
        let policy = Policy::default();
        let cap = policy.forgiveness_cap();
        let opened = Timestamp::from_millis(1_000_000);
        let spent = SubjectRecord {
            failures: 5,
            last_failure_at: opened,
            lock: Lock::None,
            forgiven: cap,
            forgiven_since: opened,
        };
        let end = opened.saturating_add(policy.failure_memory);
        let just_before = Timestamp::from_millis(end.as_millis() - 1);
        // The cap is spent until the window ends: nothing more is forgiven.
        assert_eq!(forgive(Some(&spent), 3, &policy, just_before), Some(spent));
        // At its end a new window opens, from now.
        let after = forgive(Some(&spent), 3, &policy, end).unwrap();
        assert_eq!(
            (after.failures, after.forgiven, after.forgiven_since),
            (2, 3, end)
        );
    }
}
