//! Issue and resend: decide from what the store holds, claim the send, deliver,
//! then write the new code's digest.
//!
//! The order is deliberate. The claim (the send counted, the cooldown set, no
//! code yet) is a conditional write, with the rate limits' charges in its
//! round trip: of racing sends one claims and delivers, the others meet the
//! cooldown it set, so a double click sends one code. The digest is stored
//! only after `Delivery` accepted the message, so a failed delivery leaves
//! nothing verifiable (design invariant 10), and the claim is given back.
//! The digest's write expects the claim's version (a put carries its
//! version, so none is read back); if a verification or a cancel wrote in
//! between, it is written again on the challenge as it now is, if it still
//! is the one claimed, else the delivered code never works: fail closed.

use rand::Rng;

use crate::challenge_id::ChallengeId;
use crate::clock::{Clock, Timestamp};
use crate::code::Code;
use crate::delivery::{Delivery, Message, Receipt};
use crate::destination::Destination;
use crate::error::{IssueError, StoreError};
use crate::keys::tags_equal;
use crate::limits::ClientKey;
use crate::limits::Limit;
use crate::message::Rendered;
use crate::record::{ChallengeRecord, CodeTag, Codes, MAX_ALTERNATES, Rare, Record, StoredTag};
use crate::store::{CodeStore, Commit, StoreKey, Version, Versioned, Write};

use super::limits::Charged;
use super::{
    EXPIRED_RETENTION, IssueRequest, MAX_TRIES, Ticket, Verifier, code_tag, context_tag,
    locked_until, subject_state,
};

/// What a send is for.
#[derive(Clone, Copy)]
enum Intent<'a> {
    Issue(&'a IssueRequest),
    Resend(&'a ChallengeId),
    /// A resend to one of the destinations named for the challenge.
    ResendVia(&'a ChallengeId, &'a Destination),
}

/// Whether a code is really sent.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Deliver,
    /// Enumeration-safe answer for an account that does not exist: the same
    /// work, no message, and a digest no code matches.
    Decoy,
}

/// A code already handed to `Delivery`, waiting to be written.
struct Delivered {
    tag: StoredTag,
    receipt: Receipt,
    /// The destination that accepted the message (a fallback, perhaps).
    via: Destination,
}

/// A send's claim on its challenge, committed before delivery.
struct Claim {
    key: StoreKey,
    /// The version the claim was written at.
    version: Version,
    nonce: [u8; 16],
    /// Whether the claim started the challenge (no codes yet).
    new: bool,
    /// What the key held before the claim (put back if nothing is delivered).
    before: Option<Versioned>,
    /// For a replacement (another destination or other details): the new
    /// challenge, which takes over the claimed one's clock and counters when
    /// the code is written.
    replacement: Option<ChallengeRecord>,
}

/// `template` (a new id and details) with the clock and counters of
/// `current`, the challenge it replaces: asking again never buys more
/// guesses, sends or time.
fn replaced(template: &ChallengeRecord, current: &ChallengeRecord) -> ChallengeRecord {
    let mut next = template.clone();
    next.created_at = current.created_at;
    next.expires_at = current.expires_at;
    next.attempts = current.attempts;
    next.sends = current.sends;
    next.next_send_at = current.next_send_at;
    next
}

impl Claim {
    /// The claimed challenge as `current` holds it, if it still is the one
    /// claimed: live, the same nonce, and not cancelled (a cancelled
    /// challenge has no codes; a new one has none until its first is
    /// written).
    fn resume(
        &self,
        current: Option<&Versioned>,
        now: Timestamp,
    ) -> Option<(Option<Version>, ChallengeRecord)> {
        let v = current?;
        let rec = v.record.as_challenge().ok()?;
        (now < rec.expires_at
            && tags_equal16(&rec.nonce, &self.nonce)
            && (self.new || !rec.codes.is_empty()))
        .then(|| (Some(v.version), rec.clone()))
    }
}

impl<S: CodeStore, D: Delivery, C: Clock> Verifier<S, D, C> {
    /// Starts a challenge: makes a code, hands the message to `Delivery`, stores
    /// the code's digest, and returns a [`Ticket`].
    ///
    /// If a challenge of the same subject and purpose is live, this is a
    /// resend of it (same id, same expiry, same attempts, cooldown applies).
    /// If the destination or bound details differ, the live challenge is
    /// replaced by one with a new id but still the old expiry, attempts and
    /// send count: asking again never buys more guesses.
    ///
    /// Errors, each with a [`user_message`](IssueError::user_message):
    /// [`IssueError::Locked`], [`IssueError::ResendTooSoon`],
    /// [`IssueError::SendLimit`], [`IssueError::RateLimited`] (a limit or the
    /// conversion guard), [`IssueError::CountryNotAllowed`],
    /// [`IssueError::Delivery`] (no code stored; the rate limits stay charged,
    /// and the send's claim is given back unless the challenge changed
    /// meanwhile), [`IssueError::Store`], and
    /// two that the application's request causes, which retrying cannot fix
    /// ([`IssueError::is_application_error`]): [`IssueError::Input`] (a
    /// fallback not named, details too long, …) and [`IssueError::Message`]
    /// (the message does not fit one SMS).
    ///
    /// A send claims its slot in the store (the send counted, the cooldown
    /// set) before it delivers, so that of racing sends one delivers and the
    /// others meet the cooldown, taking back the rate-limit charges they
    /// wrote; a failed delivery gives the claim back.
    /// Run the future to completion: dropped while the provider has the
    /// message (a request timeout, a client gone), it counts as a send, as
    /// its message may have gone out, and keeps its cooldown. It replaces a
    /// live challenge only once its code is written, so the live code keeps
    /// working. With no cooldown (`resend_cooldown(ZERO, ZERO)`) racing sends
    /// are not held back.
    pub async fn issue(&self, request: &IssueRequest) -> Result<Ticket, IssueError> {
        self.send_new(request, Mode::Deliver).await
    }

    /// Answers "send me a code" for an account that does not exist, in a way
    /// the caller cannot tell from [`Verifier::issue`]: the same checks, rate
    /// limits, hashing and store writes, and a [`Ticket`] of the same shape,
    /// but no message is delivered and no code will ever verify (the stored
    /// digest is random).
    ///
    /// Use it where the account lookup fails, with the identifier the person
    /// typed as the subject and destination, normalized as the lookup
    /// normalizes it, and build a real account's request from the same
    /// normalized identifier: a decoy made from the raw text would get a
    /// fresh subject (and cooldown) for every spelling where a real account
    /// has one, and a masked destination in the typed case.
    ///
    /// ```
    /// # use vericode::*;
    /// # pollster::block_on(async {
    /// # let verifier = Verifier::builder().store(MemoryStore::new()).delivery(RecordingDelivery::new())
    /// #     .signing_key(KeyId::new(1), SecretKey::generate()).app_name("Acme").build()?;
    /// let typed = " Someone@Example.com ";
    /// let normalized = typed.trim().to_ascii_lowercase(); // as the account lookup does
    /// let (subject, destination) = (Subject::new(&normalized)?, Destination::email(&normalized)?);
    /// let request = IssueRequest::new(Purpose::PasswordReset, subject, destination);
    /// let account_exists = false; // your lookup
    /// let ticket = if account_exists {
    ///     verifier.issue(&request).await?
    /// } else {
    ///     verifier.issue_decoy(&request).await?
    /// };
    /// assert_eq!(ticket.attempts_left(), 5);
    /// assert!(verifier.delivery().last().is_none()); // nothing was sent
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    ///
    /// Choose between this and [`issue`](Verifier::issue) by a fixed property
    /// of the subject (whether the account exists), never by a secret such as
    /// whether the password was right: the two keep separate cooldowns, send
    /// counts, expiries and attempts for one subject, so a caller who sees
    /// both kinds of answer for one subject learns which was chosen (after a
    /// wrong password, the next login's `ResendTooSoon` against a fresh
    /// ticket would tell whether its password was right). Answer a wrong
    /// password as you answer an unknown address (the same work, the same
    /// error), and send a code only for a right password, as
    /// `examples/web_service` does.
    ///
    /// Two things remain the application's: answer in the same time (a real
    /// delivery waits for the provider; send it in the background, or pad the
    /// response time), and show the same page. Decoys are checked and counted
    /// by the conversion guard like real sends (never verified, like pumped
    /// ones), and their receipt is empty: never show receipts to the person.
    pub async fn issue_decoy(&self, request: &IssueRequest) -> Result<Ticket, IssueError> {
        self.send_new(request, Mode::Decoy).await
    }

    /// Sends another code for a live challenge, after its cooldown (30 s by
    /// default, doubling with each resend). Codes sent earlier keep working
    /// (up to the policy's live-code limit); expiry and attempts are not
    /// touched.
    ///
    /// Errors: [`IssueError::UnknownChallenge`] (expired, used, cancelled or
    /// never issued), and those of [`Verifier::issue`].
    pub async fn resend(&self, id: &ChallengeId) -> Result<Ticket, IssueError> {
        self.send_again(Intent::Resend(id), None).await
    }

    /// [`Verifier::resend`] to another of the destinations named when the
    /// challenge was issued (the primary or a [fallback](IssueRequest::fallback));
    /// any other destination is refused with [`InputError::NotNamed`](crate::InputError::NotNamed).
    /// The challenge keeps its id, expiry and counters.
    pub async fn resend_via(
        &self,
        id: &ChallengeId,
        destination: &Destination,
    ) -> Result<Ticket, IssueError> {
        self.send_again(Intent::ResendVia(id, destination), None)
            .await
    }

    /// [`Verifier::resend_via`], also charged to `client`'s send limit. A
    /// resend endpoint should pass the client key too: without it, a client
    /// could resend beyond its own limit (the other limits still apply).
    pub async fn resend_via_from(
        &self,
        id: &ChallengeId,
        destination: &Destination,
        client: &ClientKey,
    ) -> Result<Ticket, IssueError> {
        self.send_again(Intent::ResendVia(id, destination), Some(client))
            .await
    }

    /// [`Verifier::resend`], also charged to `client`'s send limit.
    pub async fn resend_from(
        &self,
        id: &ChallengeId,
        client: &ClientKey,
    ) -> Result<Ticket, IssueError> {
        self.send_again(Intent::Resend(id), Some(client)).await
    }

    async fn send_new(&self, request: &IssueRequest, mode: Mode) -> Result<Ticket, IssueError> {
        let subject = self.lookup.subject(&request.subject);
        let purpose = request.purpose.key_bytes();
        self.send(
            subject,
            purpose,
            Intent::Issue(request),
            request.client.as_ref(),
            mode,
        )
        .await
    }

    /// A resend of the challenge `intent` names; its mode follows the slot the
    /// challenge is in (a decoy's resend is a decoy).
    async fn send_again(
        &self,
        intent: Intent<'_>,
        client: Option<&ClientKey>,
    ) -> Result<Ticket, IssueError> {
        let (Intent::Resend(id) | Intent::ResendVia(id, _)) = intent else {
            return Err(IssueError::UnknownChallenge);
        };
        self.send(
            id.subject_bytes(),
            id.purpose_bytes(),
            intent,
            client,
            Mode::Deliver,
        )
        .await
    }

    async fn send(
        &self,
        subject: [u8; 16],
        purpose: [u8; 8],
        intent: Intent<'_>,
        client: Option<&ClientKey>,
        mode: Mode,
    ) -> Result<Ticket, IssueError> {
        let mut charged = Vec::new();
        let sent = self
            .send_charged(subject, purpose, intent, client, mode, &mut charged)
            .await;
        if sent.is_err() && !charged.is_empty() {
            // Charged, but no claim held: another send claimed the challenge
            // first (a double click) and this one delivered nothing.
            self.refund(&charged).await;
        }
        sent
    }

    /// The send; `charged` holds the rate limits' charges it wrote until
    /// its claim on the challenge holds, when they become the claim's (and
    /// stay charged whatever follows, a failed delivery included).
    async fn send_charged(
        &self,
        subject: [u8; 16],
        purpose: [u8; 8],
        intent: Intent<'_>,
        client: Option<&ClientKey>,
        mut mode: Mode,
        charged_list: &mut Vec<Charged>,
    ) -> Result<Ticket, IssueError> {
        let real_key = StoreKey::challenge(subject, purpose);
        let decoy_key = StoreKey::decoy_challenge(subject, purpose);
        // A new challenge goes to its mode's slot; a resend looks in both and
        // takes the mode of the slot its id is in (a decoy's resend is a decoy).
        let mut slot: Option<StoreKey> = match intent {
            Intent::Issue(_) => Some(if mode == Mode::Decoy {
                decoy_key
            } else {
                real_key
            }),
            Intent::Resend(_) | Intent::ResendVia(..) => None,
        };
        let subject_key = StoreKey::subject(subject);
        // For a new request the limits are known before anything is read, so
        // their state comes in the same read as the challenge's.
        let mut charges = match intent {
            Intent::Issue(req) => {
                check_fallbacks(req)?;
                for d in std::iter::once(&req.destination).chain(&req.fallbacks) {
                    self.check_country(d)?;
                }
                Some(self.send_charges(&req.destination, subject, client))
            }
            Intent::Resend(_) | Intent::ResendVia(..) => None,
        };
        let mut charged = false;
        // The conversion group the send was counted under (the id's hint).
        let mut counted_group: Option<[u8; 16]> = None;
        // The send's claim on the challenge: the send counted and the
        // cooldown set, committed before anything is delivered, so that of
        // racing sends (a double click, parallel resends) one delivers and
        // the others meet the cooldown.
        let mut claim: Option<Claim> = None;
        let mut delivered: Option<Delivered> = None;
        for _ in 0..MAX_TRIES {
            let now = self.now();
            let candidates: &[StoreKey] = match &slot {
                Some(k) => std::slice::from_ref(k),
                None => &[real_key, decoy_key],
            };
            let n = candidates.len();
            let mut keys: Vec<StoreKey> =
                Vec::with_capacity(n + 1 + charges.as_ref().map_or(0, Vec::len));
            keys.extend_from_slice(candidates);
            keys.push(subject_key);
            if let (Some(c), false) = (&charges, charged) {
                keys.extend(c.iter().map(|c| c.key));
            }
            let got = self.read(&keys, now).await?;
            let (_, subject_rec) = subject_state(got[n].as_ref())?.unzip();
            if let Some(until) = locked_until(subject_rec, &self.policy, now) {
                return Err(IssueError::Locked { until });
            }
            let pick = match (&slot, intent) {
                (Some(_), _) => 0,
                (None, Intent::Resend(id) | Intent::ResendVia(id, _)) => {
                    let in_decoy = holds(got[1].as_ref(), id);
                    if in_decoy {
                        mode = Mode::Decoy;
                    }
                    slot = Some(if in_decoy { decoy_key } else { real_key });
                    usize::from(in_decoy)
                }
                (None, Intent::Issue(_)) => 0,
            };
            let challenge_key = keys[pick];
            // The claimed challenge as the code's write expects it: just
            // claimed, or (the write lost a race with a verification or a
            // cancel) as it is now, if it still is the one claimed.
            let (expected, current) = if let Some(c) = &claim {
                c.resume(got[pick].as_ref(), now)
                    .ok_or(StoreError::Contention(MAX_TRIES))?
            } else {
                let (expected, mut claimed, replacement) =
                    self.decide(got[pick].as_ref(), intent, now, (subject, purpose))?;
                claimed.sends = claimed.sends.saturating_add(1);
                claimed.next_send_at =
                    now.saturating_add(self.policy.cooldown_before(u32::from(claimed.sends)));
                // The code's write will expect this version: drawn here, not
                // read back.
                let version = Version::fresh();
                let write = Write::Put {
                    key: challenge_key,
                    record: Record::challenge(claimed.clone()),
                    expected,
                    version,
                    expires_at: claimed.expires_at.saturating_add(EXPIRED_RETENTION),
                };
                let held = Claim {
                    key: challenge_key,
                    version,
                    nonce: claimed.nonce,
                    new: claimed.codes.is_empty(),
                    before: got[pick].clone(),
                    replacement,
                };
                // With the rate limits' charges, in their round trip.
                let outcome = if charged {
                    Some(
                        self.store
                            .commit(&[write], now)
                            .await
                            .map_err(|e| StoreError::Backend(Box::new(e)))?,
                    )
                } else {
                    let prefetched = charges.is_some().then(|| &got[n + 1..]);
                    let list = match charges.take() {
                        Some(list) => list,
                        None => {
                            self.check_country(&claimed.destination)?;
                            self.send_charges(&claimed.destination, subject, client)
                        }
                    };
                    counted_group = list
                        .iter()
                        .find(|c| c.limit == crate::limits::Limit::ConversionGuard)
                        .map(|c| *c.key.group());
                    let mut outcome = None;
                    let charged_now = self
                        .charge_with(&list, prefetched, Some(&write), &mut outcome, charged_list)
                        .await;
                    if let Err(e) = charged_now {
                        if outcome == Some(Commit::Applied) {
                            self.release(&held).await;
                        }
                        return Err(e.into());
                    }
                    charged = true;
                    outcome
                };
                if outcome != Some(Commit::Applied) {
                    // Another send (or a verification) came first: decide
                    // again on what it left.
                    continue;
                }
                claim = Some(held);
                charged_list.clear();
                (Some(version), claimed)
            };
            // What the code's write makes of it: itself, or a replacement (a
            // new id and details) that takes over its clock and counters.
            let mut record = match claim.as_ref().and_then(|c| c.replacement.as_ref()) {
                Some(template) => replaced(template, &current),
                None => current,
            };
            let id = ChallengeId::new(subject, purpose, record.nonce);

            let d = match &delivered {
                Some(d) => d,
                None => match self.deliver(&id, &record, mode, client).await {
                    Ok(d) => delivered.insert(d),
                    Err(e) => {
                        // Nothing went out: the challenge as it was.
                        if let Some(c) = &claim {
                            self.release(c).await;
                        }
                        return Err(e);
                    }
                },
            };
            // A resend answers with the id it was given (its hint included);
            // a new id's hint names the group of the destination that carried
            // the code: the one counted, unless a fallback carried it.
            let id = match intent {
                Intent::Resend(given) | Intent::ResendVia(given, _) => id.with_hint(given.hint()),
                Intent::Issue(_) => {
                    let group = if d.via == record.destination {
                        counted_group
                    } else {
                        self.conversion_group(&d.via)
                    };
                    id.with_hint(self.hint_for(&record.nonce, group))
                }
            };
            if d.via != record.destination {
                // A fallback carried the code while another send renamed the
                // challenge without it (this write lost that race): the
                // address is no longer named, so its code confirms nothing.
                if !record.alternates().contains(&d.via) {
                    return Err(StoreError::Contention(MAX_TRIES).into());
                }
                // A fallback carried the code: it becomes the challenge's
                // destination, the others stay named in order.
                let mut named: Vec<Destination> = std::iter::once(record.destination.clone())
                    .chain(record.alternates().iter().cloned())
                    .filter(|x| *x != d.via)
                    .collect();
                named.truncate(MAX_ALTERNATES);
                record.rename(d.via.clone(), named);
            }

            // The destination that carried the code is the challenge's now.
            record.codes.push(CodeTag {
                key: d.tag.key,
                tag: d.tag.tag,
                via: 0,
            });
            record
                .codes
                .keep_newest(self.policy.max_live_codes as usize);
            // The ticket is made before the record moves into the write (it
            // is dropped if the write loses a race).
            let ticket = self.ticket(id, &record, d.receipt.clone());
            let expires_at = record.expires_at.saturating_add(EXPIRED_RETENTION);
            let write = Write::put(
                challenge_key,
                Record::challenge(record),
                expected,
                expires_at,
            );
            // Committed at the time it is made: the delivery may have taken
            // seconds (a slow provider, a fallback after a timeout), and a
            // store that checks clocks (vericode-redis) would count them as
            // the server's clock being off.
            match self
                .store
                .commit(&[write], self.now())
                .await
                .map_err(|e| StoreError::Backend(Box::new(e)))?
            {
                Commit::Applied => return Ok(ticket),
                Commit::Conflict => continue,
            }
        }
        Err(StoreError::Contention(MAX_TRIES).into())
    }

    /// Gives a claim back when nothing was delivered: the challenge as it was
    /// before it (best effort, and only if nothing changed it since).
    async fn release(&self, claim: &Claim) {
        let restore = claim
            .before
            .as_ref()
            .and_then(|v| Some((v, v.record.as_challenge().ok()?.expires_at)));
        let write = match restore {
            Some((v, expires_at)) => Write::put(
                claim.key,
                v.record.clone(),
                Some(claim.version),
                expires_at.saturating_add(EXPIRED_RETENTION),
            ),
            None => Write::Delete {
                key: claim.key,
                expected: claim.version,
            },
        };
        // A failure leaves the claim: one send counted and a cooldown, no
        // code (fail closed).
        let _ = self.store.commit(&[write], self.now()).await;
    }

    /// Decides what the challenge record becomes (before the new code is
    /// added), or refuses.
    fn decide(
        &self,
        current: Option<&Versioned>,
        intent: Intent<'_>,
        now: Timestamp,
        at: ([u8; 16], [u8; 8]),
    ) -> Result<(Option<Version>, ChallengeRecord, Option<ChallengeRecord>), IssueError> {
        let existing = match current {
            Some(v) => Some((
                v.version,
                v.record.as_challenge().map_err(StoreError::Corrupt)?,
            )),
            None => None,
        };
        let live = existing.filter(|(_, r)| now < r.expires_at);
        match intent {
            Intent::ResendVia(id, via) => {
                let (version, mut rec, _) = self.decide(current, Intent::Resend(id), now, at)?;
                if rec.destination != *via {
                    let Some(i) = rec.alternates().iter().position(|d| d == via) else {
                        return Err(crate::error::InputError::NotNamed.into());
                    };
                    let mut alternates = rec.alternates().to_vec();
                    let next = alternates.remove(i);
                    alternates.insert(0, rec.destination.clone());
                    rec.rename(next, alternates);
                }
                Ok((version, rec, None))
            }
            Intent::Resend(id) => {
                let Some((version, rec)) = live
                    .filter(|(_, r)| tags_equal16(&r.nonce, &id.nonce()) && !r.codes.is_empty())
                else {
                    return Err(IssueError::UnknownChallenge);
                };
                self.check_send_allowed(rec, now)?;
                Ok((Some(version), rec.clone(), None))
            }
            Intent::Issue(req) => {
                let Some((version, rec)) = live else {
                    return Ok((
                        existing.map(|(v, _)| v),
                        self.new_record(req, now, at),
                        None,
                    ));
                };
                // Another subject's or purpose's challenge under this key (two
                // custom purposes whose 62-bit key bytes collide, or a
                // corrupt store): never resend or replace it.
                if rec.subject != req.subject || rec.purpose != req.purpose {
                    return Err(StoreError::Corrupt(crate::record::DecodeError::WrongKind).into());
                }
                self.check_send_allowed(rec, now)?;
                let old_id = ChallengeId::new(at.0, at.1, rec.nonce);
                let same_context = match (rec.context(), &req.context) {
                    (None, None) => true,
                    (Some(t), Some(c)) => self
                        .keys
                        .get(t.key)
                        .is_some_and(|mac| tags_equal(&context_tag(mac, &old_id, c), &t.tag)),
                    _ => false,
                };
                // A cancelled challenge (no codes) is replaced like a changed one:
                // new id, old counters.
                if same_context && rec.destination == req.destination && !rec.codes.is_empty() {
                    let mut same = rec.clone();
                    // Codes sent to a fallback the request no longer names
                    // stop working with it.
                    same.rename(req.destination.clone(), req.fallbacks.clone());
                    return Ok((Some(version), same, None));
                }
                // Replace: a new id and new details, but the old clock and
                // counters. The send claims the live challenge as it is, so
                // that its codes keep working until the new code is written
                // (a send dropped or failed before then replaces nothing).
                Ok((
                    Some(version),
                    rec.clone(),
                    Some(self.new_record(req, now, at)),
                ))
            }
        }
    }

    fn check_country(
        &self,
        destination: &crate::destination::Destination,
    ) -> Result<(), IssueError> {
        if matches!(self.policy.countries, crate::limits::CountryFilter::Any) {
            return Ok(());
        }
        match destination.calling_code() {
            Some(cc) if !self.policy.countries.permits(cc) => Err(IssueError::CountryNotAllowed {
                calling_code: cc.to_owned(),
            }),
            _ => Ok(()),
        }
    }

    fn check_send_allowed(&self, rec: &ChallengeRecord, now: Timestamp) -> Result<(), IssueError> {
        // No more codes once the sends are used up, nor once the attempts are:
        // a code that can never be accepted is only a cost.
        if u32::from(rec.sends) >= self.policy.max_sends
            || u32::from(rec.attempts) >= self.policy.max_attempts
        {
            return Err(IssueError::SendLimit {
                retry_after: rec.expires_at.to_datetime(),
            });
        }
        if now < rec.next_send_at {
            return Err(IssueError::ResendTooSoon {
                retry_after: rec.next_send_at.to_datetime(),
            });
        }
        Ok(())
    }

    fn new_record(
        &self,
        req: &IssueRequest,
        now: Timestamp,
        at: ([u8; 16], [u8; 8]),
    ) -> ChallengeRecord {
        let mut nonce = [0u8; 16];
        rand::rng().fill_bytes(&mut nonce);
        let id = ChallengeId::new(at.0, at.1, nonce);
        let (key, mac) = self.keys.current();
        let context = req.context.as_ref().map(|c| StoredTag {
            key,
            tag: context_tag(mac, &id, c),
        });
        ChallengeRecord {
            nonce,
            created_at: now,
            expires_at: now.saturating_add(self.policy.lifetime_of(&req.purpose)),
            next_send_at: now,
            sends: 0,
            attempts: 0,
            counted: 0,
            purpose: req.purpose.clone(),
            subject: req.subject.clone(),
            destination: req.destination.clone(),
            locale: req.locale,
            codes: Codes::default(),
            rare: Rare::new(req.fallbacks.clone(), req.details.clone(), context),
        }
    }

    /// Makes a code, hands it to `Delivery` (the destination, then the
    /// fallbacks while the errors are retryable), and returns its digest; the
    /// plaintext is zeroed when this returns.
    async fn deliver(
        &self,
        id: &ChallengeId,
        record: &ChallengeRecord,
        mode: Mode,
        client: Option<&ClientKey>,
    ) -> Result<Delivered, IssueError> {
        let code = self.policy.format.generate(&mut rand::rng());
        let (key, mac) = self.keys.current();
        let mut tag = code_tag(mac, &record.purpose, id, record.context(), &code);
        let expires_at = record.expires_at.to_datetime();
        let minutes = (record
            .expires_at
            .since(self.now())
            .whole_seconds()
            .max(0)
            .saturating_add(59)
            / 60)
            .max(1);
        if mode == Mode::Decoy {
            // The same work as a real send (the text is rendered too), then a
            // digest no code matches.
            self.render(record, &record.destination, &code, minutes)?;
            rand::rng().fill_bytes(&mut tag);
            return Ok(Delivered {
                tag: StoredTag { key, tag },
                receipt: Receipt::default(),
                via: record.destination.clone(),
            });
        }
        let named: Vec<&Destination> = std::iter::once(&record.destination)
            .chain(record.alternates())
            .collect();
        for (i, destination) in named.iter().enumerate() {
            if i > 0 {
                // A fallback is charged to its own destination's limits first,
                // and to the global limit: another message paid for. (The
                // subject and the client were charged for the request.)
                let charges: Vec<_> = self
                    .send_charges(destination, id.subject_bytes(), client)
                    .into_iter()
                    .filter(|c| {
                        matches!(
                            c.limit,
                            Limit::Destination
                                | Limit::DestinationPrefix
                                | Limit::ConversionGuard
                                | Limit::Global
                        )
                    })
                    .collect();
                self.charge(&charges, None).await?;
            }
            let rendered = self.render(record, destination, &code, minutes)?;
            let message = Message {
                destination,
                code: &code,
                purpose: &record.purpose,
                expires_at,
                rendered: &rendered,
            };
            match self.delivery.deliver(&message).await {
                Ok(receipt) => {
                    return Ok(Delivered {
                        tag: StoredTag { key, tag },
                        receipt,
                        via: (*destination).clone(),
                    });
                }
                Err(e) if i + 1 < named.len() && self.delivery.is_retryable(&e) => continue,
                Err(e) => return Err(IssueError::Delivery(Box::new(e))),
            }
        }
        // `named` always holds the primary destination, so the loop returned.
        Err(StoreError::Contention(0).into())
    }

    /// The message for one destination, in the challenge's language.
    fn render(
        &self,
        record: &ChallengeRecord,
        destination: &Destination,
        code: &Code,
        minutes: i64,
    ) -> Result<Rendered, IssueError> {
        Ok(self.messages.render_with(
            record.locale,
            &record.purpose,
            destination.channel(),
            &self.app_name,
            code.expose(),
            minutes,
            record.details().map(|d| d.as_str()),
        )?)
    }

    fn ticket(&self, id: ChallengeId, record: &ChallengeRecord, receipt: Receipt) -> Ticket {
        Ticket {
            challenge_id: id,
            purpose: record.purpose.clone(),
            expires_at: record.expires_at,
            resend_after: (u32::from(record.sends) < self.policy.max_sends)
                .then_some(record.next_send_at),
            attempts_left: self
                .policy
                .max_attempts
                .saturating_sub(u32::from(record.attempts)),
            channel: record.destination.channel().clone(),
            masked: record.destination.masked(),
            receipt,
        }
    }
}

/// At most 3 fallbacks, all distinct from each other and from the primary.
fn check_fallbacks(req: &IssueRequest) -> Result<(), IssueError> {
    if req.fallbacks.is_empty() {
        return Ok(());
    }
    let all: Vec<&Destination> = std::iter::once(&req.destination)
        .chain(&req.fallbacks)
        .collect();
    let distinct = all.iter().enumerate().all(|(i, d)| !all[..i].contains(d));
    if req.fallbacks.len() > MAX_ALTERNATES || !distinct {
        return Err(crate::error::InputError::Fallbacks.into());
    }
    Ok(())
}

/// `true` if `current` is the challenge `id` names (its nonce, compared in
/// constant time).
pub(super) fn holds(current: Option<&Versioned>, id: &ChallengeId) -> bool {
    current
        .and_then(|v| v.record.as_challenge().ok())
        .is_some_and(|r| tags_equal16(&r.nonce, &id.nonce()))
}

fn tags_equal16(a: &[u8; 16], b: &[u8; 16]) -> bool {
    crate::ct_eq::ct_eq(a, b).into()
}
