//! Verifier-level checks over two verifiers sharing the store: `one_success`,
//! `attempts_capped`, `verifiers_share_state` and `rate_limits_shared`.

use std::sync::Arc;

use time::{Duration, OffsetDateTime};

use super::concurrency::joined;
use super::helpers::{hex, random_group};
use super::{Conformance, Failure};
use crate::challenge_id::ChallengeId;
use crate::clock::ManualClock;
use crate::delivery::RecordingDelivery;
use crate::destination::Destination;
use crate::error::{IssueError, StoreError, VerifyError};
use crate::gcra::RateLimit;
use crate::keys::{KeyId, SecretKey};
use crate::limits::Limit;
use crate::policy::Policy;
use crate::purpose::Purpose;
use crate::store::CodeStore;
use crate::subject::Subject;
use crate::verifier::{IssueRequest, Verifier};

impl<S: CodeStore + 'static> Conformance<S> {
    fn verifier_pair(&self, policy: Policy) -> Result<VerifierPair<S>, Failure> {
        let a = self.store();
        let b = match &self.second {
            Some(second) => Arc::new(second(&a)),
            None => a.clone(),
        };
        pair(a, b, policy)
    }

    /// Of N concurrent verifications of the right code through two verifiers,
    /// exactly one succeeds.
    pub async fn one_success(&self) -> Result<(), Failure> {
        const C: &str = "one_success";
        let (va, vb) = self.verifier_pair(lenient_policy())?;
        let request = request(C, Purpose::LoginNewDevice)?;
        let (id, code) = issue_code(C, &va, &request).await?;
        let handles: Vec<_> = (0..self.tasks)
            .map(|i| {
                let v = if i % 2 == 0 { va.clone() } else { vb.clone() };
                let code = code.clone();
                let purpose = request.purpose().clone();
                self.spawn(async move { v.verify(&purpose, &id, &code).await.map(|_| ()) })
            })
            .collect();
        let mut successes = 0;
        for h in handles {
            match joined(C, h.await)? {
                Ok(()) => successes += 1,
                Err(
                    VerifyError::UnknownChallenge | VerifyError::Store(StoreError::Contention(_)),
                ) => {}
                Err(e) => {
                    return Err(Failure::new(
                        C,
                        format!("a losing verification answered `{e}`"),
                    ));
                }
            }
        }
        ensure!(
            C,
            successes == 1,
            "{successes} of {} concurrent right answers succeeded",
            self.tasks
        );
        Ok(())
    }

    /// N concurrent wrong guesses through two verifiers count at most the
    /// policy's attempts, each with its own "attempts left"; then even the
    /// right code fails.
    pub async fn attempts_capped(&self) -> Result<(), Failure> {
        const C: &str = "attempts_capped";
        let (va, vb) = self.verifier_pair(lenient_policy())?;
        let cap = va.policy().attempts();
        let request = request(C, Purpose::PasswordReset)?;
        let (id, code) = issue_code(C, &va, &request).await?;
        let wrong = wrong_code(&code);
        let handles: Vec<_> = (0..self.tasks)
            .map(|i| {
                let v = if i % 2 == 0 { va.clone() } else { vb.clone() };
                let wrong = wrong.clone();
                let purpose = request.purpose().clone();
                self.spawn(async move { v.verify(&purpose, &id, &wrong).await.map(|_| ()) })
            })
            .collect();
        let mut left: Vec<u32> = Vec::new();
        for h in handles {
            match joined(C, h.await)? {
                Ok(()) => return Err(Failure::new(C, "a wrong code verified")),
                Err(VerifyError::WrongCode { attempts_left }) => left.push(attempts_left),
                Err(VerifyError::TooManyAttempts) => {}
                Err(e) => return Err(Failure::new(C, format!("a wrong guess answered `{e}`"))),
            }
        }
        let counted = left.len();
        let want = usize::try_from(cap).unwrap_or(usize::MAX).min(self.tasks);
        ensure!(
            C,
            counted == want,
            "{counted} wrong guesses were counted, the cap is {cap} and {} were made",
            self.tasks
        );
        left.sort_unstable();
        left.dedup();
        ensure!(
            C,
            left.len() == counted,
            "two wrong guesses were counted from the same attempt"
        );
        if self.tasks >= want {
            match vb.verify(request.purpose(), &id, &code).await {
                Err(VerifyError::TooManyAttempts) => {}
                Ok(_) => {
                    return Err(Failure::new(
                        C,
                        "the right code verified after the attempts ran out",
                    ));
                }
                Err(e) => {
                    return Err(Failure::new(
                        C,
                        format!("the right code after the cap answered `{e}`"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Two verifiers over one store act as one: issued by one, verified by
    /// the other, attempts and cooldown shared, a used code refused by both.
    pub async fn verifiers_share_state(&self) -> Result<(), Failure> {
        const C: &str = "verifiers_share_state";
        let (va, vb) = self.verifier_pair(lenient_policy())?;
        let request = request(C, Purpose::CredentialChange)?;
        let (id, code) = issue_code(C, &va, &request).await?;
        let wrong = wrong_code(&code);
        let cap = va.policy().attempts();
        match vb.verify(request.purpose(), &id, &wrong).await {
            Err(VerifyError::WrongCode { attempts_left }) if attempts_left + 1 == cap => {}
            other => {
                return Err(Failure::new(
                    C,
                    format!(
                        "a wrong guess on the other verifier answered {}",
                        outcome(&other)
                    ),
                ));
            }
        }
        match va.verify(request.purpose(), &id, &wrong).await {
            Err(VerifyError::WrongCode { attempts_left }) if attempts_left + 2 == cap => {}
            other => {
                return Err(Failure::new(
                    C,
                    format!(
                        "the attempt count is not shared: the second wrong guess answered {}",
                        outcome(&other)
                    ),
                ));
            }
        }
        match vb.issue(&request).await {
            Err(IssueError::ResendTooSoon { .. }) => {}
            Ok(_) => {
                return Err(Failure::new(
                    C,
                    "the other verifier sent again inside the cooldown",
                ));
            }
            Err(e) => {
                return Err(Failure::new(
                    C,
                    format!("issuing again on the other verifier answered `{e}`"),
                ));
            }
        }
        ensure!(
            C,
            vb.delivery().last_code().is_none(),
            "the other verifier delivered a code inside the cooldown"
        );
        match vb.verify(request.purpose(), &id, &code).await {
            Ok(v) => ensure!(
                C,
                v.subject() == request.subject(),
                "the other verifier verified another subject"
            ),
            Err(e) => {
                return Err(Failure::new(
                    C,
                    format!("the other verifier refused the right code: `{e}`"),
                ));
            }
        }
        match va.verify(request.purpose(), &id, &code).await {
            Err(VerifyError::UnknownChallenge) => {}
            other => {
                return Err(Failure::new(
                    C,
                    format!(
                        "a code used on one verifier answered {} on the other",
                        outcome(&other)
                    ),
                ));
            }
        }
        Ok(())
    }

    /// A per-subject send limit holds across two verifiers.
    pub async fn rate_limits_shared(&self) -> Result<(), Failure> {
        const C: &str = "rate_limits_shared";
        let limit =
            RateLimit::new(2, Duration::hours(1)).map_err(|e| Failure::new(C, e.to_string()))?;
        let (va, vb) = self.verifier_pair(lenient_policy().limit(Limit::Subject, limit))?;
        let first = request(C, Purpose::LoginNewDevice)?;
        let same_subject = |purpose: Purpose| {
            IssueRequest::new(
                purpose,
                first.subject().clone(),
                first.destination().clone(),
            )
        };
        va.issue(&first)
            .await
            .map_err(|e| Failure::new(C, format!("the first send failed: {e}")))?;
        vb.issue(&same_subject(Purpose::PasswordReset))
            .await
            .map_err(|e| Failure::new(C, format!("the second send failed: {e}")))?;
        for (name, v) in [("first", &va), ("second", &vb)] {
            match v.issue(&same_subject(Purpose::CredentialChange)).await {
                Err(IssueError::RateLimited {
                    limit: Limit::Subject,
                    ..
                }) => {}
                Ok(_) => {
                    return Err(Failure::new(
                        C,
                        format!("the {name} verifier sent a third code inside a limit of 2"),
                    ));
                }
                Err(e) => {
                    return Err(Failure::new(
                        C,
                        format!("a third send on the {name} verifier answered `{e}`"),
                    ));
                }
            }
        }
        Ok(())
    }
}

type TestVerifier<S> = Verifier<Arc<S>, RecordingDelivery, ManualClock>;
type VerifierPair<S> = (Arc<TestVerifier<S>>, Arc<TestVerifier<S>>);

fn pair<S: CodeStore + 'static>(
    a: Arc<S>,
    b: Arc<S>,
    policy: Policy,
) -> Result<VerifierPair<S>, Failure> {
    // One clock at the real time for both "servers", so a store's own expiry
    // (if any) never drops what the checks still read.
    let clock = ManualClock::new(OffsetDateTime::now_utc());
    let (secret, lookup) = (SecretKey::generate(), SecretKey::generate());
    // A store kept in the process that supplies a lookup key is taken at its
    // word: both verifiers use the key each handle supplies, so the checks
    // fail if the handles do not supply the same one. Other stores get one
    // key for both, as every server of a shared store must be given.
    let own_key = |store: &Arc<S>| !store.is_remote() && store.lookup_key().is_some();
    let build = |store: Arc<S>| {
        let mut builder = Verifier::builder()
            .store(store.clone())
            .delivery(RecordingDelivery::new())
            .clock(clock.clone())
            .policy(policy.clone())
            .signing_key(KeyId::new(1), secret.clone())
            .app_name("Conformance");
        if !own_key(&store) {
            builder = builder.lookup_key(lookup.clone());
        }
        builder
            .build()
            .map(Arc::new)
            .map_err(|e| Failure::new("verifier", format!("building a verifier failed: {e}")))
    };
    Ok((build(a)?, build(b)?))
}

/// Issues `request` on `verifier` and returns the challenge id and the code
/// it delivered.
async fn issue_code<S: CodeStore + 'static>(
    check: &'static str,
    verifier: &TestVerifier<S>,
    request: &IssueRequest,
) -> Result<(ChallengeId, String), Failure> {
    let ticket = verifier
        .issue(request)
        .await
        .map_err(|e| Failure::new(check, format!("issue failed: {e}")))?;
    let id = *ticket.challenge_id();
    let code = verifier
        .delivery()
        .last_code()
        .ok_or_else(|| Failure::new(check, "nothing was delivered"))?;
    Ok((id, code))
}

/// The default policy without the abuse limits (rate limits, failure delay,
/// conversion guard), which would otherwise stop the races early and tie
/// runs on a shared store to each other.
fn lenient_policy() -> Policy {
    Policy::default().without_abuse_limits()
}

fn request(check: &'static str, purpose: Purpose) -> Result<IssueRequest, Failure> {
    let tag = hex(&random_group()[..8]);
    let subject = Subject::new(&format!("conformance-{tag}"))
        .map_err(|e| Failure::new(check, e.to_string()))?;
    let destination = Destination::email(&format!("c-{tag}@example.com"))
        .map_err(|e| Failure::new(check, e.to_string()))?;
    Ok(IssueRequest::new(purpose, subject, destination))
}

/// The code with its last character changed to another of the same alphabet
/// (digits by default).
fn wrong_code(code: &str) -> String {
    let mut chars: Vec<char> = code.chars().collect();
    if let Some(last) = chars.last_mut() {
        *last = match *last {
            '0'..='8' => char::from(*last as u8 + 1),
            '9' => '0',
            'A' => 'B',
            _ => 'A',
        };
    }
    chars.into_iter().collect()
}

/// An outcome, for a failure message, without anything secret.
fn outcome<T>(r: &Result<T, VerifyError>) -> String {
    match r {
        Ok(_) => "success".to_owned(),
        Err(e) => format!("`{e}`"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrong_code_differs_in_the_last_character_only() {
        for code in ["123456", "000009", "ABCDEA", "ABCDEZ"] {
            let w = wrong_code(code);
            assert_ne!(w, code);
            assert_eq!(w.len(), code.len());
            assert_eq!(w[..5], code[..5]);
        }
    }
}
