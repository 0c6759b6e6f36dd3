//! Store-contract checks on batches, expiry and records:
//! `batches_equal_plain_commits`, `expiry` and `record_round_trips`.

use time::Duration;

use super::helpers::{
    backend, commit, counter, del, get, get1, key_kind_of, put, random_group, read_version,
    real_now, sample_records,
};
use super::{Conformance, Failure};
use crate::clock::Timestamp;
use crate::record::Record;
use crate::store::{CodeStore, Commit, KeyKind, StoreKey, Version, Write};

impl<S: CodeStore + 'static> Conformance<S> {
    /// `commit_batches` equals one `commit` per batch: same answers, same
    /// final records, each batch atomic on its own.
    pub async fn batches_equal_plain_commits(&self) -> Result<(), Failure> {
        const C: &str = "batches_equal_plain_commits";
        let store = self.store();
        let now = real_now();
        let exp = now.saturating_add(Duration::hours(1));
        let made_up = Version(u64::MAX - 777);

        // The same script on two sets of fresh keys: batched, then plain.
        let mut outcomes: Vec<(Vec<Commit>, Vec<Option<Record>>)> = Vec::new();
        for batched in [true, false] {
            let (g, h) = (random_group(), random_group());
            let a = StoreKey::new(KeyKind::Subject, g, [1; 8]);
            let a2 = StoreKey::new(KeyKind::Challenge, g, [1; 8]);
            let a3 = StoreKey::new(KeyKind::Rate, g, [1; 8]);
            let b = StoreKey::new(KeyKind::Subject, h, [1; 8]);
            let b2 = StoreKey::new(KeyKind::Challenge, h, [1; 8]);
            let round1: Vec<Vec<Write>> = vec![
                vec![
                    put(a, counter(1), None, exp),
                    put(a2, counter(2), None, exp),
                ],
                vec![put(b, counter(3), Some(made_up), exp)],
                vec![put(b, counter(4), None, exp)],
                // Sees the batch before it: b is present now.
                vec![put(b, counter(5), None, exp)],
            ];
            let mut answers = run_batches(C, &*store, &round1, now, batched).await?;
            let va = read_version(C, &*store, a, now).await?;
            let vb = read_version(C, &*store, b, now).await?;
            let round2: Vec<Vec<Write>> = vec![
                vec![put(a, counter(6), Some(va), exp)],
                // Stale after the batch before it.
                vec![put(a, counter(7), Some(va), exp)],
                // All or none inside one batch of a commit of several (each
                // batch distinct keys of one group, as the contract asks).
                vec![
                    put(b2, counter(8), None, exp),
                    put(b, counter(8), Some(made_up), exp),
                ],
                vec![del(b, vb)],
                vec![del(a2, made_up), put(a3, counter(9), None, exp)],
            ];
            answers.extend(run_batches(C, &*store, &round2, now, batched).await?);
            let finals = get(C, &*store, &[a, a2, b, b2, a3], now).await?;
            outcomes.push((
                answers,
                finals.into_iter().map(|v| v.map(|v| v.record)).collect(),
            ));
        }
        let expected_answers = [
            Commit::Applied,
            Commit::Conflict,
            Commit::Applied,
            Commit::Conflict,
            Commit::Applied,
            Commit::Conflict,
            Commit::Conflict,
            Commit::Applied,
            Commit::Conflict,
        ];
        ensure!(
            C,
            outcomes[1].0 == expected_answers,
            "plain commits answered {:?}, expected {:?}",
            outcomes[1].0,
            expected_answers
        );
        ensure!(
            C,
            outcomes[0].0 == outcomes[1].0,
            "commit_batches answered {:?}, plain commits {:?}",
            outcomes[0].0,
            outcomes[1].0
        );
        ensure!(
            C,
            outcomes[0].1 == outcomes[1].1,
            "commit_batches left other records than plain commits"
        );
        ensure!(
            C,
            outcomes[1].1 == [Some(counter(6)), Some(counter(2)), None, None, None],
            "plain commits left the wrong records"
        );
        ensure!(
            C,
            store
                .commit_batches(&[], now)
                .await
                .map_err(|e| backend(C, "commit_batches", &e))?
                .is_empty(),
            "commit_batches of no batches answered something"
        );
        Ok(())
    }

    /// A record past its `expires_at` reads absent and counts as absent for
    /// later writes' expectations. It reads and commits with a `now` an hour
    /// past the real time: run the suite on a store whose clock check (if it
    /// has one) is off.
    pub async fn expiry(&self) -> Result<(), Failure> {
        const C: &str = "expiry";
        let store = self.store();
        let now = real_now();
        let exp = now.saturating_add(Duration::hours(1));
        let just_before = exp.saturating_add(Duration::milliseconds(-1));
        let past = exp.saturating_add(Duration::milliseconds(1));
        let g = random_group();
        let a = StoreKey::new(KeyKind::Subject, g, [1; 8]);
        let b = StoreKey::new(KeyKind::Subject, g, [2; 8]);

        ensure!(
            C,
            commit(C, &*store, &[put(a, counter(1), None, exp)], now).await? == Commit::Applied,
            "create conflicted"
        );
        let va = read_version(C, &*store, a, now).await?;
        ensure!(
            C,
            get1(C, &*store, a, just_before).await?.is_some(),
            "a record read absent before its expiry"
        );
        ensure!(
            C,
            get1(C, &*store, a, past).await?.is_none(),
            "a record read present after its expires_at"
        );
        ensure!(
            C,
            get(C, &*store, &[a], exp.saturating_add(Duration::days(30))).await?[0].is_none(),
            "a record read present a month after its expires_at"
        );
        ensure!(
            C,
            commit(C, &*store, &[put(a, counter(2), Some(va), exp)], past).await?
                == Commit::Conflict,
            "a put at the version of an expired record applied"
        );
        ensure!(
            C,
            commit(C, &*store, &[del(a, va)], past).await? == Commit::Conflict,
            "a delete at the version of an expired record applied"
        );
        let later = past.saturating_add(Duration::hours(1));
        ensure!(
            C,
            commit(C, &*store, &[put(a, counter(3), None, later)], past).await? == Commit::Applied,
            "create-if-absent over an expired record conflicted"
        );
        let again = get1(C, &*store, a, past)
            .await?
            .ok_or_else(|| Failure::new(C, "a record created over an expired one reads absent"))?;
        ensure!(
            C,
            again.record == counter(3) && again.version != va,
            "a record created over an expired one reads wrong"
        );

        // Born expired: whatever the commit answers, it never reads present.
        let _ = commit(
            C,
            &*store,
            &[put(
                b,
                counter(4),
                None,
                now.saturating_add(Duration::milliseconds(-1)),
            )],
            now,
        )
        .await?;
        ensure!(
            C,
            get1(C, &*store, b, now).await?.is_none(),
            "a record written already expired reads present"
        );
        Ok(())
    }

    /// Records of every kind the verifier writes read back equal, with binary
    /// digests, the longest strings and extreme times.
    pub async fn record_round_trips(&self) -> Result<(), Failure> {
        const C: &str = "record_round_trips";
        let store = self.store();
        let now = real_now();
        let exp = now.saturating_add(Duration::hours(1));
        let g = random_group();
        let records = sample_records().map_err(|m| Failure::new(C, m))?;
        let keys: Vec<StoreKey> = (0u8..)
            .zip(&records)
            .map(|(i, r)| StoreKey::new(key_kind_of(r), g, [i; 8]))
            .collect();
        let writes: Vec<Write> = keys
            .iter()
            .zip(&records)
            .map(|(k, r)| put(*k, r.clone(), None, exp))
            .collect();
        ensure!(
            C,
            commit(C, &*store, &writes, now).await? == Commit::Applied,
            "writing the sample records conflicted"
        );
        let got = get(C, &*store, &keys, now).await?;
        for (i, (got, want)) in got.iter().zip(&records).enumerate() {
            ensure!(
                C,
                got.as_ref().map(|v| &v.record) == Some(want),
                "sample record {i} did not read back equal"
            );
            ensure!(
                C,
                Record::decode(&want.encode()).as_ref() == Ok(want),
                "sample record {i} does not survive encode and decode"
            );
        }
        Ok(())
    }
}

async fn run_batches<S: CodeStore>(
    check: &'static str,
    store: &S,
    batches: &[Vec<Write>],
    now: Timestamp,
    batched: bool,
) -> Result<Vec<Commit>, Failure> {
    if batched {
        let refs: Vec<&[Write]> = batches.iter().map(Vec::as_slice).collect();
        let out = store
            .commit_batches(&refs, now)
            .await
            .map_err(|e| backend(check, "commit_batches", &e))?;
        ensure!(
            check,
            out.len() == batches.len(),
            "commit_batches answered {} results for {} batches",
            out.len(),
            batches.len()
        );
        Ok(out)
    } else {
        let mut out = Vec::with_capacity(batches.len());
        for b in batches {
            out.push(commit(check, store, b, now).await?);
        }
        Ok(out)
    }
}
