//! Charging rate limits and the conversion guard: read the limit records,
//! decide every limit before charging any, then write each one conditionally.
//!
//! Limits live in different store groups, so they are separate commits (sent
//! together through [`CodeStore::commit_batches`]). A charge that loses a race
//! is re-read and decided again; charges already written stay written, so a
//! race can only over-count (fail closed), never lose a count. A send that
//! then delivers nothing because another send claimed the challenge first (a
//! double click) takes its charges back ([`Verifier::refund`]): each limit
//! as it was before the charge, only if nothing charged it since.

use time::OffsetDateTime;

use crate::challenge_id::ChallengeId;
use crate::clock::{Clock, Timestamp};
use crate::destination::Destination;
use crate::error::{IssueError, StoreError, VerifyError};
use crate::gcra::{Decision, RateLimit};
use crate::limits::{ClientKey, ConversionGuard, Limit, PrefixConversion};
use crate::record::{ConversionRecord, RateRecord, Record};
use crate::store::{CodeStore, Commit, StoreKey, Version, Versioned, Write};

use super::{MAX_TRIES, Step, Verifier};

/// One limit to charge: which, where its state is, and its rule.
#[derive(Clone, Copy, Debug)]
pub(super) struct Charge {
    pub limit: Limit,
    pub key: StoreKey,
    pub rule: Rule,
}

/// How a charge is decided.
#[derive(Clone, Copy, Debug)]
pub(super) enum Rule {
    Rate(RateLimit),
    /// The conversion guard: checks, then counts the send. A decoy's send is
    /// counted too (and never verified, like a pumped one): a decoy that left
    /// the counts as they were could be told from a real send by the guard's
    /// next answer (a review showed it).
    Conversion(ConversionGuard),
}

/// A charge as written: what taking it back needs.
#[derive(Debug)]
pub(super) struct Charged {
    charge: Charge,
    /// The version the charge's write stored (a charge's write is a put).
    version: Option<Version>,
    /// The limit's state before the charge.
    before: Option<Versioned>,
}

impl Charged {
    /// The write that puts the limit back as it was before the charge, if
    /// the charge is still its latest write.
    fn restore(&self) -> Option<Write> {
        let key = self.charge.key;
        let written = self.version?;
        let expected = Some(written);
        let Some(before) = &self.before else {
            return Some(Write::Delete {
                key,
                expected: written,
            });
        };
        match self.charge.rule {
            Rule::Rate(_) => {
                let tat = before.record.as_rate().ok()?.tat;
                Some(Write::put(key, before.record.clone(), expected, tat))
            }
            Rule::Conversion(guard) => {
                let state = before.record.as_conversion().ok()?.clone();
                Some(conversion_write(key, state, expected, guard.window()))
            }
        }
    }
}

/// Whether a verification is counted for a number range or taken back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Credit {
    Count,
    /// Takes back a credit counted at `counted_at`: from the window it was
    /// counted in, even if the record has moved on since.
    Undo {
        counted_at: Timestamp,
    },
}

/// Why a charge failed.
#[derive(Debug)]
pub(super) enum ChargeError {
    Limited {
        limit: Limit,
        retry_after: OffsetDateTime,
    },
    Store(StoreError),
}

impl From<StoreError> for ChargeError {
    fn from(e: StoreError) -> Self {
        ChargeError::Store(e)
    }
}

/// A refused charge is the operation's `RateLimited`; a store failure its
/// store error.
impl From<ChargeError> for IssueError {
    fn from(e: ChargeError) -> Self {
        match e {
            ChargeError::Limited { limit, retry_after } => {
                IssueError::RateLimited { limit, retry_after }
            }
            ChargeError::Store(e) => IssueError::Store(e),
        }
    }
}

impl From<ChargeError> for VerifyError {
    fn from(e: ChargeError) -> Self {
        match e {
            ChargeError::Limited { limit, retry_after } => {
                VerifyError::RateLimited { limit, retry_after }
            }
            ChargeError::Store(e) => e.into(),
        }
    }
}

impl<S: CodeStore, D, C: Clock> Verifier<S, D, C> {
    /// The limits a send to `destination` for the subject at `subject` (its
    /// key bytes) by `client` is charged to, with the conversion guard of its
    /// number range last.
    pub(super) fn send_charges(
        &self,
        destination: &Destination,
        subject: [u8; 16],
        client: Option<&ClientKey>,
    ) -> Vec<Charge> {
        if self.policy.limits.is_empty() && self.policy.conversion_guard.is_none() {
            return Vec::new();
        }
        let mut out = Vec::with_capacity(7);
        // Each group is hashed only when its limit is on.
        let mut add = |limit: Limit, group: &dyn Fn() -> [u8; 16]| {
            if let Some(rate) = self.policy.rate_limit(limit) {
                out.push(Charge {
                    limit,
                    key: StoreKey::rate_in(limit, group()),
                    rule: Rule::Rate(rate),
                });
            }
        };
        add(Limit::Destination, &|| {
            let (kind, value) = destination.limit_value();
            self.lookup.limit(
                Limit::Destination,
                &[kind.as_bytes(), b":", value.as_bytes()],
            )
        });
        // The prefix is worked out only when its limit is on (a phone's
        // calling code takes a look-up of the NANP countries).
        if self.policy.rate_limit(Limit::DestinationPrefix).is_some()
            && let Some(prefix) = destination.prefix()
        {
            add(Limit::DestinationPrefix, &|| self.prefix_group(prefix));
        }
        // The subject's own group (its hash is already known): the limit's
        // state sits beside the subject's other records.
        add(Limit::Subject, &|| subject);
        if let Some(c) = client {
            add(Limit::Client, &|| {
                self.lookup.limit(Limit::Client, &[c.as_str().as_bytes()])
            });
        }
        add(Limit::Global, &|| self.lookup.global());
        if let Some(guard) = self.policy.conversion_guard
            && let Some(group) = self.conversion_group(destination)
        {
            out.push(Charge {
                limit: Limit::ConversionGuard,
                key: StoreKey::conversion(group),
                rule: Rule::Conversion(guard),
            });
        }
        out
    }

    /// The verify-attempt limit of a client, if it is on.
    pub(super) fn verify_charge(&self, client: Option<&ClientKey>) -> Option<Charge> {
        let rate = self.policy.rate_limit(Limit::VerifyClient)?;
        let client = client?;
        Some(Charge {
            limit: Limit::VerifyClient,
            key: StoreKey::rate_in(
                Limit::VerifyClient,
                self.lookup
                    .limit(Limit::VerifyClient, &[client.as_str().as_bytes()]),
            ),
            rule: Rule::Rate(rate),
        })
    }

    /// Decides one charge against its current state: the write that records
    /// it (none for a check that counts nothing), or the limit that refuses it.
    pub(super) fn decide_charge(
        &self,
        charge: &Charge,
        current: Option<&Versioned>,
        now: Timestamp,
    ) -> Result<Option<Write>, ChargeError> {
        let expected = current.map(|v| v.version);
        match charge.rule {
            Rule::Rate(rate) => {
                let tat = match current {
                    Some(v) => Some(v.record.as_rate().map_err(StoreError::Corrupt)?.tat),
                    None => None,
                };
                match rate.decide(tat, now) {
                    Decision::Allow { new_tat } => Ok(Some(Write::Put {
                        key: charge.key,
                        record: Record::rate(RateRecord { tat: new_tat }),
                        expected,
                        version: crate::store::Version::fresh(),
                        // Once the TAT has passed, the state equals a fresh key.
                        expires_at: new_tat,
                    })),
                    Decision::Deny { retry_after } => Err(ChargeError::Limited {
                        limit: charge.limit,
                        retry_after: retry_after.to_datetime(),
                    }),
                }
            }
            Rule::Conversion(guard) => {
                let before = conversion_state(current)?;
                if let Some(retry_after) = guard.throttled(&before, now) {
                    return Err(ChargeError::Limited {
                        limit: Limit::ConversionGuard,
                        retry_after: retry_after.to_datetime(),
                    });
                }
                let mut next = guard.roll(&before, now);
                next.sends = next.sends.saturating_add(1);
                Ok(Some(conversion_write(
                    charge.key,
                    next,
                    expected,
                    guard.window(),
                )))
            }
        }
    }

    /// Charges every limit: decides all against `prefetched` states (or reads
    /// them), refuses if any refuses, else writes all.
    pub(super) async fn charge(
        &self,
        charges: &[Charge],
        prefetched: Option<&[Option<Versioned>]>,
    ) -> Result<(), ChargeError> {
        self.charge_with(charges, prefetched, None, &mut None, &mut Vec::new())
            .await
    }

    /// [`charge`](Self::charge), with `rider` (a write of another group)
    /// committed in the same round trip as the charges' first writes, on its
    /// own (a batch of its own: its outcome does not depend on theirs). Its
    /// outcome is left in `rider_outcome`, `None` while it was not
    /// committed; a refused charge writes neither. (After a charge lost a
    /// race and is decided again, a refusal can follow a rider that was
    /// applied: the caller undoes the rider when this fails.) Each charge
    /// written is added to `charged`, also when a later one fails, for
    /// [`refund`](Self::refund).
    pub(super) async fn charge_with(
        &self,
        charges: &[Charge],
        prefetched: Option<&[Option<Versioned>]>,
        rider: Option<&Write>,
        rider_outcome: &mut Option<Commit>,
        charged: &mut Vec<Charged>,
    ) -> Result<(), ChargeError> {
        let mut rider = rider;
        // The charges still to write: all of them, then those that lost a race.
        let mut pending: Option<Vec<Charge>> = None;
        for _ in 0..MAX_TRIES {
            let list: &[Charge] = pending.as_deref().unwrap_or(charges);
            if list.is_empty() && rider.is_none() {
                return Ok(());
            }
            let now = self.now();
            let read;
            let current: &[Option<Versioned>] = match (&pending, prefetched) {
                (None, Some(states)) => states,
                _ if list.is_empty() => &[],
                _ => {
                    let keys: Vec<StoreKey> = list.iter().map(|c| c.key).collect();
                    read = self.read(&keys, now).await?;
                    &read
                }
            };
            if current.len() != list.len() {
                return Err(StoreError::Backend(
                    "the states read do not match the limits charged".into(),
                )
                .into());
            }
            // Every charge is decided before any is written.
            let mut written = Vec::with_capacity(list.len());
            let mut writes = Vec::with_capacity(list.len());
            for (charge, state) in list.iter().zip(current) {
                // Checks that count nothing need no write.
                if let Some(w) = self.decide_charge(charge, state.as_ref(), now)? {
                    written.push(Charged {
                        charge: *charge,
                        version: w.put_version(),
                        before: state.clone(),
                    });
                    writes.push(w);
                }
            }
            if writes.is_empty() && rider.is_none() {
                return Ok(());
            }
            let mut batches: Vec<&[Write]> = writes.iter().map(std::slice::from_ref).collect();
            batches.extend(rider.take().map(std::slice::from_ref));
            let mut results = self
                .store
                .commit_batches(&batches, now)
                .await
                .map_err(|e| StoreError::Backend(Box::new(e)))?;
            if results.len() != batches.len() {
                return Err(StoreError::Backend(
                    "the store answered a different number of commits".into(),
                )
                .into());
            }
            if batches.len() > written.len() {
                *rider_outcome = results.pop();
            }
            // The charges written join `charged` (moved whole when it is
            // empty: no allocation on the common path); the others go again.
            let mut outcomes = results.iter();
            let mut lost = Vec::new();
            written.retain(|c| {
                let applied = outcomes.next() == Some(&Commit::Applied);
                if !applied {
                    lost.push(c.charge);
                }
                applied
            });
            if charged.is_empty() {
                *charged = written;
            } else {
                charged.append(&mut written);
            }
            pending = Some(lost);
        }
        Err(StoreError::Contention(MAX_TRIES).into())
    }

    /// Takes back `charged`, the charges of a send that delivered nothing
    /// because it lost its race (another send claimed the challenge first):
    /// each limit as it was before its charge, if nothing charged it since.
    /// Best effort, in one round trip: a refund that fails or meets a later
    /// charge leaves the charge counted (fail closed).
    pub(super) async fn refund(&self, charged: &[Charged]) {
        let writes: Vec<Write> = charged.iter().filter_map(Charged::restore).collect();
        if writes.is_empty() {
            return;
        }
        let batches: Vec<&[Write]> = writes.iter().map(std::slice::from_ref).collect();
        let _ = self.store.commit_batches(&batches, self.now()).await;
    }

    /// Where the conversion counts of `destination`'s number range live: a
    /// keyed hash of the range, so that neither store keys nor challenge ids
    /// tell it. `None` when the guard is off or the destination is not a
    /// phone number.
    pub(super) fn conversion_group(&self, destination: &Destination) -> Option<[u8; 16]> {
        self.policy.conversion_guard?;
        let [country, next] = destination.number_range()?;
        Some(self.lookup.limit(
            Limit::ConversionGuard,
            &[b"tel:+", country.as_bytes(), b":", next.as_bytes()],
        ))
    }

    /// The hint a new challenge id carries: the conversion group of its
    /// destination (zeros for none) masked with a keyed hash of its nonce, so
    /// that ids tell nothing of the range; random bytes when the guard is off.
    pub(super) fn hint_for(&self, nonce: &[u8; 16], group: Option<[u8; 16]>) -> [u8; 16] {
        if self.policy.conversion_guard.is_none() {
            let mut hint = [0u8; 16];
            rand::fill(&mut hint);
            return hint;
        }
        self.mask_hint(nonce, group.unwrap_or([0; 16]))
    }

    /// The conversion group an id's hint names, unmasked; `None` when the
    /// guard is off or the hint names none. Untrusted: a hostile client may
    /// have changed it, so a credit there is made only once the stored
    /// destination confirms it.
    pub(super) fn hinted_group(&self, id: &ChallengeId) -> Option<[u8; 16]> {
        self.policy.conversion_guard?;
        let group = self.mask_hint(&id.nonce(), id.hint());
        (group != [0; 16]).then_some(group)
    }

    /// `bytes` XOR a keyed hash of `nonce`: masks a group into a hint, and
    /// (being its own inverse) a hint back into the group.
    fn mask_hint(&self, nonce: &[u8; 16], mut bytes: [u8; 16]) -> [u8; 16] {
        let mask = self.lookup.hint_mask(nonce);
        for (b, m) in bytes.iter_mut().zip(mask) {
            *b ^= m;
        }
        bytes
    }

    /// The group of a prefix's send limit.
    fn prefix_group(&self, [head, tail]: [&str; 2]) -> [u8; 16] {
        self.lookup.limit(
            Limit::DestinationPrefix,
            &[head.as_bytes(), tail.as_bytes()],
        )
    }

    /// What the conversion guard sees of `destination`'s number range now: sends,
    /// verifications, and whether it throttles. `None` when the guard is off
    /// or the destination is not a phone number (email and custom channels
    /// are not counted).
    ///
    /// ```
    /// # use vericode::*;
    /// # pollster::block_on(async {
    /// # let verifier = Verifier::builder().store(MemoryStore::new()).delivery(RecordingDelivery::new())
    /// #     .signing_key(KeyId::new(1), SecretKey::generate()).app_name("Acme").build()?;
    /// let phone = Destination::sms("+447700900123")?;
    /// let request = IssueRequest::new(Purpose::StepUp, Subject::new("u1")?, phone.clone());
    /// let ticket = verifier.issue(&request).await?;
    /// let code = verifier.delivery().last_code().unwrap();
    /// verifier.verify(&Purpose::StepUp, ticket.challenge_id(), &code).await?;
    /// let seen = verifier.prefix_conversion(&phone).await?.expect("the guard is on by default");
    /// assert_eq!((seen.sends, seen.verified), (1.0, 1.0));
    /// assert_eq!(seen.throttled_until, None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn prefix_conversion(
        &self,
        destination: &Destination,
    ) -> Result<Option<PrefixConversion>, StoreError> {
        let (Some(guard), Some(group)) = (
            self.policy.conversion_guard,
            self.conversion_group(destination),
        ) else {
            return Ok(None);
        };
        let now = self.now();
        let got = self.read(&[StoreKey::conversion(group)], now).await?;
        let record = conversion_state(got.first().and_then(Option::as_ref))?;
        let (sends, verified) = guard.estimate(&record, now);
        Ok(Some(PrefixConversion {
            sends,
            verified,
            throttled_until: guard.throttled(&record, now).map(Timestamp::to_datetime),
        }))
    }

    /// The write that counts one successful verification in the conversion
    /// record `current` (read at `key`), or takes one back.
    pub(super) fn credit_write(
        &self,
        key: StoreKey,
        current: Option<&Versioned>,
        now: Timestamp,
        credit: Credit,
    ) -> Option<Write> {
        let guard = self.policy.conversion_guard?;
        if current.is_none() && matches!(credit, Credit::Undo { .. }) {
            // Nothing left to take back from.
            return None;
        }
        let before = match current.map(|v| v.record.as_conversion()) {
            None => ConversionRecord::default(),
            Some(Ok(c)) => c.clone(),
            Some(Err(_)) => return None,
        };
        let mut next = guard.roll(&before, now);
        match credit {
            Credit::Count => next.verified = next.verified.saturating_add(1),
            Credit::Undo { counted_at } => {
                let counted_in = guard.window_start(counted_at);
                if counted_in == next.window_start {
                    next.verified = next.verified.saturating_sub(1);
                } else if guard.window_start(counted_in.saturating_add(guard.window()))
                    == next.window_start
                {
                    next.prev_verified = next.prev_verified.saturating_sub(1);
                } else {
                    // Counted in a window the guard no longer weighs.
                    return None;
                }
            }
        }
        Some(conversion_write(
            key,
            next,
            current.map(|v| v.version),
            guard.window(),
        ))
    }

    /// Counts or takes back one verification in the conversion record at
    /// `key`, with its own read and write (the slow path, when the
    /// verification could not do it in its own round trip). Best effort: a
    /// failure here must not turn an outcome the store has already recorded
    /// into an error; a lost credit only makes the guard stricter.
    pub(super) async fn adjust_conversion(&self, key: StoreKey, credit: Credit) {
        let _ = self
            .update(&[key], |got, now| -> Result<Step<()>, StoreError> {
                Ok(match self.credit_write(key, got[0].as_ref(), now, credit) {
                    Some(write) => Step::Commit(vec![write], ()),
                    None => Step::Done(()),
                })
            })
            .await;
    }
}

/// The conversion record read (none: a fresh one).
fn conversion_state(current: Option<&Versioned>) -> Result<ConversionRecord, StoreError> {
    match current {
        Some(v) => Ok(v
            .record
            .as_conversion()
            .map_err(StoreError::Corrupt)?
            .clone()),
        None => Ok(ConversionRecord::default()),
    }
}

fn conversion_write(
    key: StoreKey,
    next: ConversionRecord,
    expected: Option<crate::store::Version>,
    window: time::Duration,
) -> Write {
    // Kept for two windows: the current one and the one it is weighed against.
    let expires_at = next.window_start.saturating_add(window * 2);
    Write::Put {
        key,
        record: Record::conversion(next),
        expected,
        version: crate::store::Version::fresh(),
        expires_at,
    }
}

#[cfg(test)]
mod tests {
    use crate::keys::LookupKey;
    use crate::*;

    /// The prefix limit's and the guard's groups are keyed hashes of the
    /// bytes the docs spell (`tel:+44`, `mail:example.org`, `tel:+1:415`):
    /// hashing them in parts must give the same groups, so that records
    /// keep their names.
    #[test]
    fn groups_hash_the_bytes_the_docs_spell() {
        let lookup = SecretKey::from_bytes(&[5; 32]).unwrap();
        let v = Verifier::builder()
            .store(MemoryStore::new())
            .delivery(RecordingDelivery::new())
            .signing_key(KeyId::new(1), SecretKey::generate())
            .lookup_key(lookup.clone())
            .app_name("Acme")
            .build()
            .unwrap();
        let keyed = LookupKey::new(&lookup);
        let phone = Destination::sms("+447700900123").unwrap();
        let mail = Destination::email("ana@example.org").unwrap();
        let us = Destination::sms("+14155550123").unwrap();
        for (d, spelled) in [(&phone, &b"tel:+44"[..]), (&mail, b"mail:example.org")] {
            assert_eq!(
                v.prefix_group(d.prefix().unwrap()),
                keyed.limit(Limit::DestinationPrefix, &[spelled])
            );
        }
        assert_eq!(
            v.conversion_group(&us),
            Some(keyed.limit(Limit::ConversionGuard, &[b"tel:+1:415"]))
        );
        assert_eq!(v.conversion_group(&mail), None);
    }
}
