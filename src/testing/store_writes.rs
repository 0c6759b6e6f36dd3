//! Store-contract checks on conditional writes: `conditional_writes`,
//! `versions_as_given`, `distinct_keys` and `all_or_none`.

use time::Duration;

use super::helpers::{commit, counter, del, get, get1, put, random_group, read_version, real_now};
use super::{Conformance, Failure};
use crate::store::{CodeStore, Commit, KeyKind, StoreKey, Version, Write};

impl<S: CodeStore + 'static> Conformance<S> {
    /// Create-if-absent, replace-at-version and delete-at-version, with stale
    /// and made-up versions refused; `get_many` order and absent keys.
    pub async fn conditional_writes(&self) -> Result<(), Failure> {
        const C: &str = "conditional_writes";
        let store = self.store();
        let now = real_now();
        let exp = now.saturating_add(Duration::hours(1));
        let g = random_group();
        let a = StoreKey::new(KeyKind::Subject, g, [1; 8]);
        let b = StoreKey::new(KeyKind::Subject, g, [2; 8]);
        let missing = StoreKey::new(KeyKind::Subject, g, [3; 8]);
        let made_up = Version(u64::MAX - 12_345);

        ensure!(
            C,
            get(C, &*store, &[], now).await?.is_empty(),
            "get_many of no keys answered values"
        );
        ensure!(
            C,
            get1(C, &*store, a, now).await?.is_none(),
            "a fresh key reads present"
        );
        ensure!(
            C,
            commit(C, &*store, &[put(a, counter(1), Some(made_up), exp)], now).await?
                == Commit::Conflict,
            "a put expecting a version applied on an absent key"
        );
        ensure!(
            C,
            commit(C, &*store, &[del(a, made_up)], now).await? == Commit::Conflict,
            "a delete applied on an absent key"
        );
        ensure!(
            C,
            get1(C, &*store, a, now).await?.is_none(),
            "a refused write left a record"
        );

        ensure!(
            C,
            commit(C, &*store, &[put(a, counter(1), None, exp)], now).await? == Commit::Applied,
            "create-if-absent on an absent key conflicted"
        );
        ensure!(
            C,
            commit(C, &*store, &[put(a, counter(99), None, exp)], now).await? == Commit::Conflict,
            "create-if-absent on a present key applied"
        );
        let v1 = get1(C, &*store, a, now)
            .await?
            .ok_or_else(|| Failure::new(C, "a created record reads absent"))?;
        ensure!(
            C,
            v1.record == counter(1),
            "the record read back is not the one written"
        );

        ensure!(
            C,
            commit(C, &*store, &[put(a, counter(2), Some(made_up), exp)], now).await?
                == Commit::Conflict,
            "a put at a made-up version applied"
        );
        ensure!(
            C,
            commit(
                C,
                &*store,
                &[put(a, counter(2), Some(v1.version), exp)],
                now
            )
            .await?
                == Commit::Applied,
            "replace-at-version at the current version conflicted"
        );
        let v2 = get1(C, &*store, a, now)
            .await?
            .ok_or_else(|| Failure::new(C, "a replaced record reads absent"))?;
        ensure!(
            C,
            v2.record == counter(2),
            "a replace did not store the new record"
        );
        ensure!(C, v2.version != v1.version, "a replace kept the version");

        ensure!(
            C,
            commit(
                C,
                &*store,
                &[put(a, counter(3), Some(v1.version), exp)],
                now
            )
            .await?
                == Commit::Conflict,
            "a put at a stale version applied"
        );
        ensure!(
            C,
            commit(C, &*store, &[del(a, v1.version)], now).await? == Commit::Conflict,
            "a delete at a stale version applied"
        );
        let still = get1(C, &*store, a, now).await?;
        ensure!(
            C,
            still.as_ref().map(|v| (v.version, &v.record)) == Some((v2.version, &counter(2))),
            "a refused write changed the record"
        );

        ensure!(
            C,
            commit(C, &*store, &[put(b, counter(7), None, exp)], now).await? == Commit::Applied,
            "create-if-absent of a second key conflicted"
        );
        let got = get(C, &*store, &[b, missing, a], now).await?;
        ensure!(
            C,
            got[0].as_ref().map(|v| &v.record) == Some(&counter(7))
                && got[1].is_none()
                && got[2].as_ref().map(|v| &v.record) == Some(&counter(2)),
            "get_many did not answer in the order of the keys"
        );

        ensure!(
            C,
            commit(C, &*store, &[del(a, v2.version)], now).await? == Commit::Applied,
            "delete-at-version at the current version conflicted"
        );
        ensure!(
            C,
            get1(C, &*store, a, now).await?.is_none(),
            "a deleted record reads present"
        );
        ensure!(
            C,
            commit(C, &*store, &[del(a, v2.version)], now).await? == Commit::Conflict,
            "a second delete of a deleted key applied"
        );
        Ok(())
    }

    /// A put's version is the one it carried, read back as given, through
    /// replaces and delete-then-create cycles; a version from an earlier life
    /// of the key never matches.
    pub async fn versions_as_given(&self) -> Result<(), Failure> {
        const C: &str = "versions_as_given";
        let store = self.store();
        let now = real_now();
        let exp = now.saturating_add(Duration::hours(1));
        let a = StoreKey::new(KeyKind::Challenge, random_group(), [9; 8]);
        let mut seen: Vec<Version> = Vec::new();
        let put_at = |record, expected, version| Write::Put {
            key: a,
            record,
            expected,
            version,
            expires_at: exp,
        };
        for round in 0..20u32 {
            let v = Version::fresh();
            ensure!(
                C,
                commit(C, &*store, &[put_at(counter(round), None, v)], now).await?
                    == Commit::Applied,
                "create {round} conflicted"
            );
            let read = read_version(C, &*store, a, now).await?;
            ensure!(
                C,
                read == v,
                "a create stored version {read:?}, not the {v:?} it carried"
            );
            seen.push(v);
            let w = Version::fresh();
            ensure!(
                C,
                commit(C, &*store, &[put_at(counter(round + 1), Some(v), w)], now).await?
                    == Commit::Applied,
                "replace {round} conflicted"
            );
            let read = read_version(C, &*store, a, now).await?;
            ensure!(
                C,
                read == w,
                "a replace stored version {read:?}, not the {w:?} it carried"
            );
            seen.push(w);
            ensure!(
                C,
                commit(C, &*store, &[del(a, w)], now).await? == Commit::Applied,
                "delete {round} conflicted"
            );
        }
        ensure!(
            C,
            commit(C, &*store, &[put(a, counter(0), None, exp)], now).await? == Commit::Applied,
            "the last create conflicted"
        );
        let live = read_version(C, &*store, a, now).await?;
        ensure!(C, !seen.contains(&live), "the last create reused a version");
        for old in &seen {
            ensure!(
                C,
                commit(C, &*store, &[put(a, counter(1), Some(*old), exp)], now).await?
                    == Commit::Conflict,
                "a version from an earlier life of the key matched a put"
            );
            ensure!(
                C,
                commit(C, &*store, &[del(a, *old)], now).await? == Commit::Conflict,
                "a version from an earlier life of the key matched a delete"
            );
        }
        ensure!(
            C,
            read_version(C, &*store, a, now).await? == live,
            "a refused write changed the version"
        );
        Ok(())
    }

    /// Keys differing only in kind, item or group are distinct.
    pub async fn distinct_keys(&self) -> Result<(), Failure> {
        const C: &str = "distinct_keys";
        let store = self.store();
        let now = real_now();
        let exp = now.saturating_add(Duration::hours(1));
        let (g, h) = (random_group(), random_group());
        let keys = [
            StoreKey::new(KeyKind::Subject, g, [5; 8]),
            StoreKey::new(KeyKind::Challenge, g, [5; 8]),
            StoreKey::new(KeyKind::Subject, g, [6; 8]),
            StoreKey::new(KeyKind::Subject, h, [5; 8]),
        ];
        for (i, k) in (0u32..).zip(keys) {
            ensure!(
                C,
                commit(C, &*store, &[put(k, counter(100 + i), None, exp)], now).await?
                    == Commit::Applied,
                "key {i} of 4 was not absent: keys collide"
            );
        }
        let got = get(C, &*store, &keys, now).await?;
        for (i, v) in (0u32..).zip(&got) {
            ensure!(
                C,
                v.as_ref().map(|v| &v.record) == Some(&counter(100 + i)),
                "key {i} of 4 reads another key's record"
            );
        }
        Ok(())
    }

    /// A commit of several writes in one group applies all or none.
    pub async fn all_or_none(&self) -> Result<(), Failure> {
        const C: &str = "all_or_none";
        let store = self.store();
        let now = real_now();
        let exp = now.saturating_add(Duration::hours(1));
        let g = random_group();
        let a = StoreKey::new(KeyKind::Subject, g, [1; 8]);
        let b = StoreKey::new(KeyKind::Subject, g, [2; 8]);
        let c = StoreKey::new(KeyKind::Challenge, g, [1; 8]);
        let made_up = Version(u64::MAX - 54_321);

        ensure!(
            C,
            commit(C, &*store, &[put(a, counter(1), None, exp)], now).await? == Commit::Applied,
            "create conflicted"
        );
        let va = read_version(C, &*store, a, now).await?;
        // The failing expectation last, then first.
        ensure!(
            C,
            commit(
                C,
                &*store,
                &[put(b, counter(2), None, exp), put(a, counter(2), None, exp)],
                now
            )
            .await?
                == Commit::Conflict,
            "a commit with a failed expectation applied"
        );
        ensure!(
            C,
            commit(
                C,
                &*store,
                &[del(a, made_up), put(b, counter(2), None, exp)],
                now
            )
            .await?
                == Commit::Conflict,
            "a commit with a failed expectation applied"
        );
        let got = get(C, &*store, &[a, b], now).await?;
        ensure!(
            C,
            got[1].is_none(),
            "a refused commit wrote one of its keys"
        );
        ensure!(
            C,
            got[0].as_ref().map(|v| v.version) == Some(va),
            "a refused commit changed a key"
        );

        let writes = [
            put(b, counter(20), None, exp),
            put(c, counter(30), None, exp),
            put(a, counter(10), Some(va), exp),
        ];
        ensure!(
            C,
            commit(C, &*store, &writes, now).await? == Commit::Applied,
            "a commit whose expectations all held conflicted"
        );
        let got = get(C, &*store, &[a, b, c], now).await?;
        let (Some(a1), Some(b1), Some(c1)) = (&got[0], &got[1], &got[2]) else {
            return Err(Failure::new(C, "an applied commit left a key unwritten"));
        };
        ensure!(
            C,
            a1.record == counter(10) && b1.record == counter(20) && c1.record == counter(30),
            "an applied commit wrote the wrong records"
        );

        let refused = [
            del(a, a1.version),
            put(c, counter(31), Some(c1.version), exp),
            put(b, counter(21), Some(va), exp),
        ];
        ensure!(
            C,
            commit(C, &*store, &refused, now).await? == Commit::Conflict,
            "a commit with a stale version applied"
        );
        let got = get(C, &*store, &[a, b, c], now).await?;
        ensure!(
            C,
            got[0].as_ref().map(|v| v.version) == Some(a1.version)
                && got[1].as_ref().map(|v| v.version) == Some(b1.version)
                && got[2].as_ref().map(|v| v.version) == Some(c1.version),
            "a refused commit of deletes and puts changed a key"
        );

        let mixed = [
            del(a, a1.version),
            del(b, b1.version),
            put(c, counter(32), Some(c1.version), exp),
        ];
        ensure!(
            C,
            commit(C, &*store, &mixed, now).await? == Commit::Applied,
            "a commit of deletes and a put conflicted"
        );
        let got = get(C, &*store, &[a, b, c], now).await?;
        ensure!(
            C,
            got[0].is_none()
                && got[1].is_none()
                && got[2].as_ref().map(|v| &v.record) == Some(&counter(32)),
            "an applied commit of deletes and a put left the wrong state"
        );
        Ok(())
    }
}
