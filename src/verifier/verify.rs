//! Verify, cancel, unlock.
//!
//! A verification reads the challenge and the subject, decides, and writes the
//! outcome (attempt counted, or challenge consumed) before answering: the
//! caller learns the result only once it is recorded, and of several racing
//! verifications each write is conditional on the version the decision was
//! made from, so exactly one can consume a challenge.

use subtle::{Choice, ConditionallySelectable};

use crate::ct_eq::ct_eq;

use crate::challenge_id::ChallengeId;
use crate::clock::{Clock, Timestamp};
use crate::code::Code;
use crate::error::{CancelError, StoreError, VerifyError};
use crate::policy::Lockout;
use crate::purpose::Purpose;
use crate::record::{CLEAN_SUBJECT, ChallengeRecord, Lock, Record, SubjectRecord};
use crate::store::{CodeStore, Commit, StoreKey, Write};
use crate::subject::{Context, Subject};

use super::limits::Credit;
use super::{
    Attempt, MAX_TRIES, Step, Verified, Verifier, code_tag, context_tag, forgive, locked_until,
    subject_state,
};

/// What a comparison found, before it is recorded.
enum Finding {
    /// The code is right: `via` names the destination that carried it.
    Match {
        via: u8,
    },
    WrongCode,
    /// The code is right but the details presented are not the bound ones.
    ContextMismatch,
    /// No code could be checked: every one was made under a signing key this
    /// verifier does not hold (this one).
    KeyNotHeld(crate::keys::KeyId),
}

impl<S: CodeStore, D, C: Clock> Verifier<S, D, C> {
    /// Checks what the person typed against a challenge of `purpose` that was
    /// issued without bound details.
    ///
    /// `Ok` only for a right code, on a live challenge of `purpose`, within its
    /// attempts, for an unlocked subject; the challenge is then consumed. The
    /// purpose is the handler's own: a password-reset handler passes
    /// [`Purpose::PasswordReset`](crate::Purpose::PasswordReset), so the id and
    /// code of a sign-in challenge (phished from the person, say) fail there as
    /// unknown. Every failure is an `Err`: see [`VerifyError`] and its
    /// [`user_message`](VerifyError::user_message).
    pub async fn verify(
        &self,
        purpose: &Purpose,
        id: &ChallengeId,
        typed: &str,
    ) -> Result<Verified, VerifyError> {
        self.check(Attempt::new(purpose, id, typed)).await
    }

    /// Checks what the person typed against a challenge bound to `context`
    /// (see [`IssueRequest::bind`](crate::IssueRequest::bind)): it verifies
    /// only if `context` is exactly the details the code was issued for.
    pub async fn verify_bound(
        &self,
        purpose: &Purpose,
        id: &ChallengeId,
        typed: &str,
        context: &Context,
    ) -> Result<Verified, VerifyError> {
        self.check(Attempt::new(purpose, id, typed).bound(context))
            .await
    }

    /// Checks an [`Attempt`]: the general form of [`Verifier::verify`] and
    /// [`Verifier::verify_bound`], which also charges the client's attempt
    /// limit.
    pub async fn verify_attempt(&self, attempt: Attempt<'_>) -> Result<Verified, VerifyError> {
        self.check(attempt).await
    }

    async fn check(&self, attempt: Attempt<'_>) -> Result<Verified, VerifyError> {
        let mut credited = None;
        let outcome = self.check_once(attempt, &mut credited).await;
        if let (Some((key, counted_at)), Err(_)) = (credited, &outcome) {
            // A credit went out with a commit that lost its race (or whose
            // fate is unknown), and no success followed: take it back, from
            // the window it was counted in (best effort, like the credit).
            self.adjust_conversion(key, Credit::Undo { counted_at })
                .await;
        }
        outcome
    }

    /// The verification; `credited` is set to the conversion key and time
    /// once a success may have been counted there, so a retry does not count
    /// it twice and a final failure can take it back. (A verification
    /// dropped before it answers keeps a credit it made: the guard is then
    /// lenient by one.)
    async fn check_once(
        &self,
        attempt: Attempt<'_>,
        credited: &mut Option<(StoreKey, Timestamp)>,
    ) -> Result<Verified, VerifyError> {
        let (id, context) = (attempt.id, attempt.context);
        // An id made for another purpose is not this flow's challenge. (A
        // built-in purpose is checked here, before the store is read; a custom
        // one by its name once the record is read, as its key bytes take a
        // hash.)
        if !matches!(attempt.purpose, Purpose::Custom(_))
            && attempt.purpose.key_bytes() != id.purpose_bytes()
        {
            return Err(VerifyError::UnknownChallenge);
        }
        // Malformed input cannot match any code; refusing it before the store is
        // read costs an attacker nothing they could use.
        let code = self.policy.format.normalize(attempt.typed)?;
        let real_key = StoreKey::challenge(id.subject_bytes(), id.purpose_bytes());
        let decoy_key = StoreKey::decoy_challenge(id.subject_bytes(), id.purpose_bytes());
        let subject_key = StoreKey::subject(id.subject_bytes());
        let mut client_charge = self.verify_charge(attempt.client);
        // The prefix's conversion counts, read up front where the id's hint
        // says they are, so a success is credited in its own commit round trip.
        // (Only for a remote store: in the process, the credit's own read and
        // write after a success cost less than unmasking the hint.)
        let conversion_key = if self.store.is_remote() {
            self.hinted_group(id).map(StoreKey::conversion)
        } else {
            None
        };
        for _ in 0..MAX_TRIES {
            let now = self.now();
            // Both slots are read: an id does not say whether it is a decoy's.
            let mut keys = [real_key, decoy_key, subject_key, subject_key, subject_key];
            let mut n = 3;
            let mut push = |key: StoreKey| {
                keys[n] = key;
                n += 1;
                n - 1
            };
            let client_at = client_charge.map(|c| push(c.key));
            let conversion_at = conversion_key.filter(|_| credited.is_none()).map(push);
            let got = self.read(&keys[..n], now).await?;
            let in_decoy = super::issue::holds(got[1].as_ref(), id);
            let (challenge_key, found) = if in_decoy {
                (decoy_key, &got[1])
            } else {
                (real_key, &got[0])
            };
            let Some(current) = found.as_ref() else {
                return Err(VerifyError::UnknownChallenge);
            };
            let shared = current
                .record
                .shared_challenge()
                .map_err(StoreError::Corrupt)?;
            let rec: &ChallengeRecord = shared;
            if !bool::from(ct_eq(&rec.nonce, &id.nonce())) || rec.purpose != *attempt.purpose {
                return Err(VerifyError::UnknownChallenge);
            }
            if rec.codes.is_empty() {
                // Cancelled: kept with its counters until it expires.
                return Err(VerifyError::UnknownChallenge);
            }
            if now >= rec.expires_at {
                return Err(VerifyError::Expired);
            }
            let subject = subject_state(got[2].as_ref())?;
            if let Some(until) = locked_until(subject.map(|(_, s)| s), &self.policy, now) {
                return Err(VerifyError::Locked { until });
            }
            if u32::from(rec.attempts) >= self.policy.max_attempts {
                return Err(VerifyError::TooManyAttempts);
            }
            if let (Some(delay), Some((_, s))) = (self.policy.failure_delay, subject) {
                let until = s.last_failure_at.saturating_add(delay.after(s.failures));
                if now < until {
                    return Err(VerifyError::TooSoon {
                        retry_after: until.to_datetime(),
                    });
                }
            }
            // The client's attempt is charged with the outcome, in the same
            // round trip; it is decided first, so a refused client learns nothing.
            let client_write = match &client_charge {
                Some(c) => self.decide_charge(
                    c,
                    client_at.and_then(|i| got.get(i)).and_then(Option::as_ref),
                    now,
                )?,
                None => None,
            };

            // Each code a guess is compared with counts as one of the
            // subject's failures, so a guess is compared with no more codes
            // than its budget has left (the newest; at least one, as after a
            // timed lock): the budget bounds comparisons exactly.
            let left = self
                .policy
                .max_failures
                .saturating_sub(subject.map_or(0, |(_, s)| s.failures))
                .max(1);
            let usable = rec
                .codes
                .len()
                .min(usize::try_from(left).unwrap_or(usize::MAX));
            let finding = self.compare(id, rec, usable, context, &code);
            let mut credit: Option<Write> = None;
            // On a success, the conversion group of the stored destination
            // (one keyed hash, for the credit here or on the slow path below).
            let mut group = None;
            let writes: [Write; 2] = match finding {
                // Nothing was compared: nothing to count or use up.
                Finding::KeyNotHeld(key) => return Err(VerifyError::KeyNotHeld { key }),
                Finding::Match { via } => {
                    let consume = Write::Delete {
                        key: challenge_key,
                        expected: current.version,
                    };
                    // A success forgives the failures of its own challenge (the
                    // person's typos before the right code), up to a cap per
                    // failure memory, and only those: the failures of other
                    // challenges stay counted, so an attacker's guesses are not
                    // forgiven by the owner's next sign-in (README, "A success
                    // forgives the failures of its own challenge"). It is
                    // written as a put of the same shape as a failure's (never
                    // a bare delete), so a
                    // store that refuses new records refuses right and wrong
                    // codes alike: no oracle, no free guesses.
                    let forgiven = forgive(subject.map(|(_, s)| s), rec.counted, &self.policy, now);
                    let expires_at = match &forgiven {
                        // A record of zero failures is the same as none.
                        None => now.saturating_add(time::Duration::minutes(1)),
                        // Remembered as long as its last failure was to be.
                        Some(s) => self.subject_expiry(s, s.last_failure_at),
                    };
                    let reset = Write::Put {
                        key: subject_key,
                        record: Record::subject(forgiven.unwrap_or(CLEAN_SUBJECT)),
                        expected: subject.map(|(v, _)| v.version),
                        version: crate::store::Version::fresh(),
                        expires_at,
                    };
                    // The hint is only trusted when it names the group of the
                    // stored destination.
                    group = rec.named_at(via).and_then(|d| self.conversion_group(d));
                    if let (Some(key), Some(i)) = (conversion_key, conversion_at)
                        && group == Some(*key.group())
                    {
                        credit = self.credit_write(key, got[i].as_ref(), now, Credit::Count);
                    }
                    [consume, reset]
                }
                Finding::WrongCode | Finding::ContextMismatch => {
                    // Each wrong guess counts once per code it was compared
                    // with: the subject's budget bounds comparisons.
                    let weight = u32::try_from(usable).unwrap_or(u32::MAX).max(1);
                    let mut next = rec.clone();
                    next.attempts = next.attempts.saturating_add(1);
                    // At most 20 attempts of at most 10 comparisons: a byte
                    // holds them (saturating, it would forgive less, not more).
                    next.counted = next
                        .counted
                        .saturating_add(u8::try_from(weight).unwrap_or(u8::MAX));
                    let attempt = Write::Put {
                        key: challenge_key,
                        record: Record::challenge(next),
                        expected: Some(current.version),
                        version: crate::store::Version::fresh(),
                        expires_at: rec.expires_at.saturating_add(super::EXPIRED_RETENTION),
                    };
                    let failed = self.failed(subject.map(|(_, s)| s), weight, now);
                    let failure = Write::Put {
                        key: subject_key,
                        expires_at: self.subject_expiry(&failed, now),
                        record: Record::subject(failed),
                        expected: subject.map(|(v, _)| v.version),
                        version: crate::store::Version::fresh(),
                    };
                    [attempt, failure]
                }
            };
            // The outcome, the client's charge and the credit are independent
            // commits (different groups) in one round trip; with only the
            // outcome there is nothing to batch.
            let mut batches: [&[Write]; 3] = [&writes, &[], &[]];
            let mut count = 1;
            let mut at = [None, None];
            for (slot, write) in at.iter_mut().zip([&client_write, &credit]) {
                if let Some(w) = write {
                    batches[count] = std::slice::from_ref(w);
                    *slot = Some(count);
                    count += 1;
                }
            }
            let [client_batch, credit_batch] = at;
            let batches = &batches[..count];
            // Until the store answers, a credit sent counts as made: if the
            // answer is lost, the failure that follows takes it back (the
            // guard errs strict).
            if credit_batch.is_some() {
                *credited = conversion_key.map(|k| (k, now));
            }
            // One commit's answer stays on the stack.
            let (one, many);
            let results: &[Commit] = if batches.len() == 1 {
                one = [self
                    .store
                    .commit(&writes, now)
                    .await
                    .map_err(|e| StoreError::Backend(Box::new(e)))?];
                &one
            } else {
                many = self
                    .store
                    .commit_batches(batches, now)
                    .await
                    .map_err(|e| StoreError::Backend(Box::new(e)))?;
                &many
            };
            if results.len() != batches.len() {
                return Err(StoreError::Backend(
                    "the store answered a different number of commits".into(),
                )
                .into());
            }
            let client_result = client_batch.map(|i| results[i]);
            // A client charge or a credit that was written stays written,
            // whatever happens to the challenge write (a credit whose success
            // does not follow is taken back by `check`).
            if client_result == Some(Commit::Applied) {
                client_charge = None;
            }
            if credit_batch.map(|i| results[i]) == Some(Commit::Conflict) {
                *credited = None;
            }
            if results[0] == Commit::Conflict {
                continue;
            }
            // The outcome is recorded: it stands. A client charge that lost a
            // race is made again, and the answer is given only once it is
            // written: a client over its limit (or a store that cannot take
            // the charge) learns nothing of the guess, which stays counted.
            // Else clients racing from one address would each be answered on
            // one charge. (A right code answered so is consumed: the person
            // asks for a new code once the limit allows.)
            if let (Some(c), Some(Commit::Conflict)) = (client_charge, client_result) {
                self.charge(&[c], None).await?;
            }
            let attempts_left = self
                .policy
                .max_attempts
                .saturating_sub(u32::from(rec.attempts) + 1);
            return match finding {
                Finding::Match { via } => {
                    if let (None, Some(g)) = (*credited, group) {
                        // No hint, a wrong one, or a credit that lost a race
                        // with a send to the prefix: the slow path.
                        self.adjust_conversion(StoreKey::conversion(g), Credit::Count)
                            .await;
                    }
                    Ok(Verified {
                        challenge: shared.clone(),
                        via,
                        verified_at: now,
                    })
                }
                Finding::WrongCode => Err(VerifyError::WrongCode { attempts_left }),
                Finding::ContextMismatch => Err(VerifyError::ContextMismatch { attempts_left }),
                Finding::KeyNotHeld(key) => Err(VerifyError::KeyNotHeld { key }),
            };
        }
        Err(StoreError::Contention(MAX_TRIES).into())
    }

    /// Compares the typed code with the `usable` newest live codes of the
    /// challenge, in constant time and without stopping at the first match;
    /// then the presented details with the bound ones.
    fn compare(
        &self,
        id: &ChallengeId,
        rec: &ChallengeRecord,
        usable: usize,
        context: Option<&Context>,
        code: &Code,
    ) -> Finding {
        let mut code_ok = Choice::from(0);
        // Which destination carried the code that matched, chosen in
        // constant time like the match itself.
        let mut via = 0u8;
        // Codes are usually all under one key: hash once per distinct key.
        let mut last: Option<(crate::keys::KeyId, crate::keys::Tag)> = None;
        let mut not_held = None;
        for stored in rec.codes.iter().skip(rec.codes.len() - usable) {
            let tag = match last {
                Some((k, t)) if k == stored.key => t,
                _ => match self.keys.get(stored.key) {
                    Some(mac) => {
                        let t = code_tag(mac, &rec.purpose, id, rec.context(), code);
                        last = Some((stored.key, t));
                        t
                    }
                    // A code made under a key not in the set cannot verify.
                    None => {
                        not_held = Some(stored.key);
                        continue;
                    }
                },
            };
            let matched = ct_eq(&tag, &stored.tag);
            via.conditional_assign(&stored.via, matched);
            code_ok |= matched;
        }
        if let (None, Some(key)) = (last, not_held) {
            // Nothing was compared: a guess here tells nothing, so it is not
            // counted against the person (a server that lacks its peers' new
            // key, or whose old key was dropped). With some code under a held
            // key, the guess is compared and counted as usual.
            return Finding::KeyNotHeld(key);
        }
        let context_ok = match (rec.context(), context) {
            (None, None) => true,
            (Some(bound), Some(presented)) => self
                .keys
                .get(bound.key)
                .is_some_and(|mac| bool::from(ct_eq(&context_tag(mac, id, presented), &bound.tag))),
            _ => false,
        };
        match (bool::from(code_ok), context_ok) {
            (true, true) => Finding::Match { via },
            (true, false) => Finding::ContextMismatch,
            (false, _) => Finding::WrongCode,
        }
    }

    /// The subject's record after one more failure.
    fn failed(&self, before: Option<&SubjectRecord>, weight: u32, now: Timestamp) -> SubjectRecord {
        let failures = before.map_or(0, |s| s.failures).saturating_add(weight);
        let lock = if failures >= self.policy.max_failures {
            match self.policy.lockout {
                Lockout::For(d) => Lock::Until(now.saturating_add(d)),
                Lockout::UntilUnlocked => Lock::UntilUnlocked,
            }
        } else {
            before.map_or(Lock::None, |s| s.lock)
        };
        SubjectRecord {
            failures,
            last_failure_at: now,
            lock,
            forgiven: before.map_or(0, |s| s.forgiven),
            forgiven_since: before.map_or(Timestamp::EPOCH, |s| s.forgiven_since),
        }
    }

    fn subject_expiry(&self, s: &SubjectRecord, now: Timestamp) -> Timestamp {
        let memory = self.policy.failure_memory;
        let remember = now.saturating_add(memory);
        let count = match s.lock {
            // Kept for the failure memory after the lock ends, not only after
            // the failure: else a lock as long as the memory would end with
            // the count gone, and a fresh budget.
            Lock::Until(t) => remember.max(t.saturating_add(memory)),
            // Only an unlock ends this lock: the record must not expire.
            Lock::UntilUnlocked => Timestamp::from_millis(i64::MAX),
            Lock::None => remember,
        };
        // And for as long as its window of forgiveness lasts: else the cap
        // would start afresh whenever the count came down to nothing.
        if s.forgiven > 0 {
            count.max(s.forgiven_since.saturating_add(memory))
        } else {
            count
        }
    }

    /// Ends a live challenge: none of its codes will verify.
    ///
    /// ```
    /// # use vericode::*;
    /// # pollster::block_on(async {
    /// # let verifier = Verifier::builder().store(MemoryStore::new()).delivery(RecordingDelivery::new())
    /// #     .signing_key(KeyId::new(1), SecretKey::generate()).app_name("Acme").build()?;
    /// # let request = IssueRequest::new(Purpose::StepUp, Subject::new("u1")?, Destination::email("u1@example.com")?);
    /// let ticket = verifier.issue(&request).await?;
    /// verifier.cancel(ticket.challenge_id()).await?;
    /// let code = verifier.delivery().last_code().unwrap();
    /// assert!(verifier.verify(&Purpose::StepUp, ticket.challenge_id(), &code).await.is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # }).unwrap();
    /// ```
    pub async fn cancel(&self, id: &ChallengeId) -> Result<(), CancelError> {
        let real_key = StoreKey::challenge(id.subject_bytes(), id.purpose_bytes());
        let decoy_key = StoreKey::decoy_challenge(id.subject_bytes(), id.purpose_bytes());
        self.update(&[real_key, decoy_key], |got, now| {
            let in_decoy = super::issue::holds(got[1].as_ref(), id);
            let (key, found) = if in_decoy {
                (decoy_key, &got[1])
            } else {
                (real_key, &got[0])
            };
            let Some(current) = found.as_ref() else {
                return Err(CancelError::UnknownChallenge);
            };
            let rec = current.record.as_challenge().map_err(StoreError::Corrupt)?;
            if !bool::from(ct_eq(&rec.nonce, &id.nonce()))
                || rec.codes.is_empty()
                || now >= rec.expires_at
            {
                return Err(CancelError::UnknownChallenge);
            }
            // The record stays, without codes, until it expires: a cancel must
            // not hand out fresh attempts, sends or time to the next issue.
            let mut cancelled = rec.clone();
            cancelled.codes.clear();
            let tombstone = Write::Put {
                key,
                record: Record::challenge(cancelled),
                expected: Some(current.version),
                version: crate::store::Version::fresh(),
                expires_at: rec.expires_at.saturating_add(super::EXPIRED_RETENTION),
            };
            Ok(Step::Commit(vec![tombstone], ()))
        })
        .await
    }

    /// Clears a subject's failure count, its lock and what its successes
    /// forgave. Call it when support has confirmed the person by other means.
    pub async fn unlock(&self, subject: &Subject) -> Result<(), StoreError> {
        let key = StoreKey::subject(self.lookup.subject(subject));
        self.update(&[key], |got, _| {
            Ok(match &got[0] {
                None => Step::Done(()),
                Some(current) => Step::Commit(
                    vec![Write::Delete {
                        key,
                        expected: current.version,
                    }],
                    (),
                ),
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use crate::record::{CLEAN_SUBJECT, RecordKind};
    use crate::store::{CodeStore, StoreKey};
    use crate::*;

    #[test]
    fn a_success_writes_the_clean_subject_variant() {
        pollster::block_on(async {
            let clock =
                ManualClock::new(time::OffsetDateTime::UNIX_EPOCH + time::Duration::days(1));
            let v = Verifier::builder()
                .store(MemoryStore::new())
                .delivery(RecordingDelivery::new())
                .clock(clock)
                .signing_key(KeyId::new(1), SecretKey::generate())
                .app_name("Acme")
                .build()
                .unwrap();
            let req = IssueRequest::new(
                Purpose::StepUp,
                Subject::new("u1").unwrap(),
                Destination::email("u1@example.com").unwrap(),
            );
            let key = |t: &Ticket| StoreKey::subject(t.challenge_id().subject_bytes());
            let now = v.now();
            // A success without failures writes the clean variant.
            let t = v.issue(&req).await.unwrap();
            let code = v.delivery().last_code().unwrap();
            v.verify(t.purpose(), t.challenge_id(), &code)
                .await
                .unwrap();
            let read = v.store().get_many(&[key(&t)], now).await.unwrap();
            let record = &read[0].as_ref().unwrap().record;
            assert!(matches!(record.0, RecordKind::CleanSubject));
            assert_eq!(record.as_subject(), Ok(&CLEAN_SUBJECT));
            // A wrong code first: the success forgives it, and the record
            // remembers what it forgave (against the cap), so it is not clean.
            let t = v.issue(&req).await.unwrap();
            let code = v.delivery().last_code().unwrap();
            let wrong = if code == "000000" { "111111" } else { "000000" };
            assert!(
                v.verify(t.purpose(), t.challenge_id(), wrong)
                    .await
                    .is_err()
            );
            let read = v.store().get_many(&[key(&t)], now).await.unwrap();
            let failed = read[0].as_ref().unwrap().record.as_subject().unwrap();
            assert_eq!(failed.failures, 1);
            v.verify(t.purpose(), t.challenge_id(), &code)
                .await
                .unwrap();
            let read = v.store().get_many(&[key(&t)], now).await.unwrap();
            let after = read[0].as_ref().unwrap().record.as_subject().unwrap();
            assert_eq!((after.failures, after.forgiven), (0, 1));
            assert_eq!(after.forgiven_since, now);
        });
    }
}
