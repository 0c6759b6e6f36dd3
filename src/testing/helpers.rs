//! Helpers shared by the checks: store calls that turn errors into failures,
//! writes and counter records, the sample records, fresh groups and the real
//! time.

use rand::Rng;
use time::{Duration, OffsetDateTime};

use super::Failure;
use crate::clock::Timestamp;
use crate::destination::{Channel, Destination};
use crate::keys::KeyId;
use crate::purpose::Purpose;
use crate::record::{
    ChallengeRecord, CodeTag, ConversionRecord, DeviceRecord, Lock, Rare, RateRecord, Record,
    RecordKind, StoredTag, SubjectRecord,
};
use crate::store::{CodeStore, Commit, KeyKind, StoreKey, Version, Versioned, Write};
use crate::subject::Subject;

pub(super) fn backend(check: &'static str, op: &str, e: &dyn std::error::Error) -> Failure {
    Failure::new(check, format!("{op} failed: {e}"))
}

pub(super) async fn get<S: CodeStore + ?Sized>(
    check: &'static str,
    store: &S,
    keys: &[StoreKey],
    now: Timestamp,
) -> Result<Vec<Option<Versioned>>, Failure> {
    let got = store
        .get_many(keys, now)
        .await
        .map_err(|e| backend(check, "get_many", &e))?;
    ensure!(
        check,
        got.len() == keys.len(),
        "get_many answered {} values for {} keys",
        got.len(),
        keys.len()
    );
    Ok(got)
}

pub(super) async fn get1<S: CodeStore + ?Sized>(
    check: &'static str,
    store: &S,
    key: StoreKey,
    now: Timestamp,
) -> Result<Option<Versioned>, Failure> {
    Ok(get(check, store, &[key], now).await?.pop().flatten())
}

pub(super) async fn read_version<S: CodeStore + ?Sized>(
    check: &'static str,
    store: &S,
    key: StoreKey,
    now: Timestamp,
) -> Result<Version, Failure> {
    get1(check, store, key, now)
        .await?
        .map(|v| v.version)
        .ok_or_else(|| Failure::new(check, "a record just written reads absent"))
}

pub(super) async fn commit<S: CodeStore + ?Sized>(
    check: &'static str,
    store: &S,
    writes: &[Write],
    now: Timestamp,
) -> Result<Commit, Failure> {
    store
        .commit(writes, now)
        .await
        .map_err(|e| backend(check, "commit", &e))
}

pub(super) fn put(
    key: StoreKey,
    record: Record,
    expected: Option<Version>,
    expires_at: Timestamp,
) -> Write {
    Write::put(key, record, expected, expires_at)
}

pub(super) fn del(key: StoreKey, expected: Version) -> Write {
    Write::Delete { key, expected }
}

/// A small record holding a number: a subject record's failure count.
pub(super) fn counter(n: u32) -> Record {
    Record::subject(SubjectRecord {
        failures: n,
        last_failure_at: Timestamp::from_millis(i64::from(n)),
        lock: Lock::None,
        forgiven: 0,
        forgiven_since: Timestamp::EPOCH,
    })
}

pub(super) fn count_of(check: &'static str, v: Option<&Versioned>) -> Result<u32, Failure> {
    match v {
        None => Ok(0),
        Some(v) => v
            .record
            .as_subject()
            .map(|s| s.failures)
            .map_err(|_| Failure::new(check, "a key read back a record of another kind")),
    }
}

pub(super) fn sample_records() -> Result<Vec<Record>, String> {
    let e = |e: crate::error::InputError| e.to_string();
    let tag = |key: u32, byte: u8| StoredTag {
        key: KeyId::new(key),
        tag: std::array::from_fn(|i| byte.wrapping_add(i as u8)),
    };
    let t0 = real_now();
    let long_address = format!("{}@example.com", "a".repeat(64));
    let custom_address = "x".repeat(crate::destination::MAX_ADDRESS_LEN);
    let challenge = |destination: Destination,
                     alternates: Vec<Destination>,
                     subject: &str,
                     context,
                     codes: Vec<StoredTag>|
     -> Result<Record, String> {
        Ok(Record::challenge(ChallengeRecord {
            nonce: std::array::from_fn(|i| [0u8, 0x80, 0xff, b'\r', b'\n'][i % 5]),
            created_at: t0,
            expires_at: t0.saturating_add(Duration::minutes(10)),
            next_send_at: t0.saturating_add(Duration::seconds(30)),
            sends: 2,
            attempts: 1,
            counted: 3,
            purpose: Purpose::custom("wire_transfer").map_err(e)?,
            subject: Subject::new(subject).map_err(e)?,
            destination,
            locale: crate::message::Locale::Pt,
            // Each code carried by one of the named destinations, in turn.
            codes: codes
                .into_iter()
                .zip((0..=alternates.len()).cycle())
                .map(|(t, via)| CodeTag {
                    key: t.key,
                    tag: t.tag,
                    via: via as u8,
                })
                .collect(),
            rare: Rare::new(
                alternates,
                Some(crate::subject::Details::new("aprovar 42,00 € à ACME — “ação”").map_err(e)?),
                context,
            ),
        }))
    };
    Ok(vec![
        challenge(
            Destination::email(&long_address).map_err(e)?,
            vec![
                Destination::sms("+447700900123").map_err(e)?,
                Destination::voice("+14155550123").map_err(e)?,
            ],
            "user-ü-42 with spaces",
            Some(tag(3, 0xf0)),
            vec![tag(2, 0), tag(3, 0x7f), tag(u32::MAX, 0xff)],
        )?,
        challenge(
            Destination::custom(Channel::custom("push_app").map_err(e)?, &custom_address)
                .map_err(e)?,
            Vec::new(),
            &"s".repeat(crate::subject::MAX_SUBJECT_LEN),
            None,
            (0..10u8)
                .map(|i| tag(u32::from(i), i.wrapping_mul(37)))
                .collect(),
        )?,
        challenge(
            Destination::sms("+14155550123").map_err(e)?,
            Vec::new(),
            "1",
            None,
            vec![tag(0, 0)],
        )?,
        Record::subject(SubjectRecord {
            failures: u32::MAX,
            last_failure_at: Timestamp::from_millis(i64::MIN),
            lock: Lock::Until(Timestamp::from_millis(i64::MAX)),
            forgiven: u32::MAX,
            forgiven_since: Timestamp::from_millis(i64::MIN),
        }),
        Record::subject(SubjectRecord {
            failures: 0,
            last_failure_at: Timestamp::EPOCH,
            lock: Lock::UntilUnlocked,
            forgiven: 7,
            forgiven_since: Timestamp::from_millis(i64::MAX),
        }),
        counter(3),
        Record::rate(RateRecord {
            tat: Timestamp::from_millis(i64::MAX),
        }),
        Record::conversion(ConversionRecord {
            window_start: t0,
            sends: u32::MAX,
            verified: 0,
            prev_sends: 1,
            prev_verified: u32::MAX,
        }),
        Record::device(DeviceRecord {
            tag: tag(u32::MAX, 0x0d),
            epoch: u32::MAX,
            expires_at: Timestamp::from_millis(i64::MIN),
        }),
        Record::epoch(0),
        Record::fingerprint([0xff; 16], t0),
    ])
}

/// The kind of key the verifier writes `record` under.
pub(super) fn key_kind_of(record: &Record) -> KeyKind {
    match &record.0 {
        RecordKind::Challenge(_) => KeyKind::Challenge,
        RecordKind::Subject(_) | RecordKind::CleanSubject => KeyKind::Subject,
        RecordKind::Rate(_) => KeyKind::Rate,
        RecordKind::Conversion(_) => KeyKind::Conversion,
        RecordKind::Device(_) => KeyKind::Device,
        RecordKind::Epoch(_) => KeyKind::DeviceEpoch,
        RecordKind::Fingerprint(..) => KeyKind::LookupKey,
    }
}

pub(super) fn real_now() -> Timestamp {
    Timestamp::from_datetime(OffsetDateTime::now_utc())
}

pub(super) fn random_group() -> [u8; 16] {
    let mut g = [0u8; 16];
    rand::rng().fill_bytes(&mut g);
    g
}

pub(super) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_records_are_valid() {
        let records = sample_records().unwrap();
        assert_eq!(records.len(), 11);
        // Every kind of key the verifier writes is among them.
        let kinds: std::collections::BTreeSet<_> = records.iter().map(key_kind_of).collect();
        assert_eq!(kinds.len(), 7);
    }
}
