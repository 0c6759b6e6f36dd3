//! A Redis-backed [`CodeStore`] for [vericode]: several servers
//! share challenges, attempt counters, failure counts and rate limits, and
//! every write stays atomic.
//!
//! ```no_run
//! use vericode::{KeyId, RecordingDelivery, SecretKey, Verifier};
//! use vericode_redis::RedisStore;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! // The same secrets on every server, from your secret manager (here, the
//! // environment: 64 hex digits each, `openssl rand -hex 32`).
//! let signing = SecretKey::from_hex(&std::env::var("OTP_SIGNING_KEY_HEX")?)?;
//! let lookup = SecretKey::from_hex(&std::env::var("OTP_LOOKUP_KEY_HEX")?)?;
//! let store = RedisStore::connect("redis://127.0.0.1:6379/") // reconnects by itself
//!     .await?
//!     .with_prefix("myapp:otp:")?;
//! store.load_scripts().await?; // refuses a Redis that may evict records
//! let verifier = Verifier::builder()
//!     .store(store)
//!     .delivery(RecordingDelivery::new()) // your SMS or email sender
//!     .signing_key(KeyId::new(1), signing)
//!     .lookup_key(lookup) // it names the records: the same on every server
//!     .app_name("Acme")
//!     .build()?;
//! // At startup and now and then: refuses to serve with another lookup key,
//! // or another secret under a key id, than the other servers'.
//! verifier.check_lookup_key().await?;
//! verifier.check_signing_keys().await?;
//! # Ok(())
//! # }
//! ```
//!
//! # How it meets the store contract
//!
//! - **Layout.** Each [`StoreKey`] is one Redis hash named
//!   `<prefix>{<group, 32 hex digits>}:<kind tag>:<item, 16 hex digits>`, for
//!   example `vericode:{9f86d081884c7d659a2feaa0c55ad015}:c:0000000000000001`,
//!   with three fields: `v` (the version, a decimal `u64`), `e` (`expires_at`,
//!   milliseconds since the Unix epoch) and `d` (the record's bytes,
//!   [`Record::encode`](vericode::Record::encode)).
//! - **Reads** ([`CodeStore::get_many`]): one pipeline of `HMGET`s, one round
//!   trip. A record whose `e` is not after the `now` passed in reads as absent,
//!   so the verifier's clock decides, as the contract asks.
//! - **Writes** ([`CodeStore::commit`]): one Lua script (`EVALSHA`, loaded with
//!   `SCRIPT LOAD` when the server answers `NOSCRIPT`) checks every write's
//!   expected version and applies all writes or none: one round trip.
//!   [`CodeStore::commit_batches`] sends one script call per batch in one
//!   pipeline: still one round trip, each batch atomic on its own.
//! - **Versions** are the random 64-bit numbers each put carries
//!   ([`Write::Put`]'s `version`, drawn by the verifier), stored as given: never
//!   reused (the odds of a repeat for one key are 2⁻⁶⁴ per write), and no
//!   counter key.
//! - **Expiry.** Every put also sets `PEXPIREAT` to its `expires_at` plus
//!   [`EXPIRY_SLACK_MS`] (10 minutes), so Redis drops records by itself.
//!   Reads and commits decide by the verifier's clock (the `e` field); Redis
//!   drops by its own, so the slack keeps a Redis clock up to 10 minutes
//!   ahead from dropping a record still counted (a rate limit's state expires
//!   when the limit is refilled).
//! - **Clocks.** Every commit compares its `now` with Redis's `TIME` and,
//!   when they are more than a minute apart (by default; see
//!   [`RedisStore::with_max_clock_skew`]), writes nothing of it and answers
//!   [`RedisStoreError::ClockSkew`]: the verifier fails closed, and the
//!   error says which way the clock is off. Servers whose clocks disagree
//!   would end cooldowns, locks and limits at different times. Keep the
//!   clocks in sync (NTP).
//! - **Eviction.** Every record has a TTL, so under any `maxmemory-policy`
//!   but `noeviction` a Redis at its `maxmemory` may drop live records:
//!   failure counts, attempts and send limits would be forgotten. Run it
//!   with `noeviction` (or no `maxmemory`): a full Redis then refuses writes,
//!   and the verifier fails closed. [`RedisStore::load_scripts`] refuses a
//!   Redis that may evict.
//! - **Durability.** A write is acknowledged by the primary alone (no
//!   `WAIT`). A restart without persistence, or a failover to a replica that
//!   had not received the last writes, brings back older records: counted
//!   attempts, failures and sends come back lower. For the counts to survive
//!   those, enable AOF persistence (`appendfsync everysec` loses at most a
//!   second) and fail over with care.
//! - **Redis Cluster** (feature `cluster`, `RedisStore::cluster`). The
//!   group (a keyed hash of the subject, or of the value a limit counts;
//!   zeros for the keys' fingerprints) is the hash tag, so the keys of one
//!   commit share a slot and its script runs on one node. A read or a
//!   `commit_batches` spans groups, and a pipeline may not span slots (the
//!   cluster connection refuses it, `CrossSlot`), so a cluster store sends
//!   one pipeline per group, all at once: about one round trip of wall
//!   time. `load_scripts` checks every primary's eviction policy and loads
//!   the script on every node. Tested on three primaries
//!   (`tests/cluster.rs`). Without the feature, and over any other
//!   connection, a store sends one pipeline: use one primary, with replicas
//!   and Sentinel for failover.
//!
//! Round trips per operation, measured by this crate's tests over a counting
//! connection with the script loaded: `get_many` 1, `commit` 1,
//! `commit_batches` 1. Through the verifier with the default policy: `issue`
//! 3 (a read; the send's claim and the rate-limit charges in one pipeline;
//! the code's write), a `resend` 4 (its limits are read once the challenge
//! names its destination), a right or wrong `verify` 2 (a read, then the outcome, the client's
//! charge and a success's conversion credit in one pipeline), a replayed or
//! unknown one 1. The first commit on a server that lacks the script adds `SCRIPT LOAD` and a
//! retry, once; [`RedisStore::load_scripts`] does it up front.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(rust_2018_idioms, unreachable_pub)]

use std::fmt;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager};
use redis::{Cmd, RedisError, Script, ServerErrorKind, Value};
use vericode::{CodeStore, Commit, Record, StoreKey, Timestamp, Version, Versioned, Write};

pub use redis;

/// The key prefix when none is given.
pub const DEFAULT_PREFIX: &str = "vericode:";

/// The longest key prefix accepted.
pub const MAX_PREFIX_LEN: usize = 128;

/// How long past its `expires_at` Redis keeps a record (its `PEXPIREAT`), in
/// milliseconds: ten minutes.
/// Reads and commits decide expiry by the verifier's clock (the `e` field);
/// Redis drops a record by its own. The slack keeps a Redis clock that runs
/// ahead of the servers' (up to this much) from dropping a record the
/// verifier still counts, such as a rate limit's state, which expires when
/// its limit is fully refilled: a record dropped early refunds sends.
pub const EXPIRY_SLACK_MS: i64 = 10 * 60 * 1000;

/// How far the verifier's clock may be from Redis's, by default, before a
/// commit is refused ([`RedisStoreError::ClockSkew`]): one minute. See
/// [`RedisStore::with_max_clock_skew`].
pub const DEFAULT_MAX_CLOCK_SKEW: Duration = Duration::from_secs(60);

/// The commit script. `KEYS`: the keys written. `ARGV[1]`: now (ms);
/// `ARGV[2]`: how far now may be from Redis's `TIME` (ms; `""`: not checked);
/// then five arguments per write: the expected version (`""`: must be
/// absent), the new version (`""`: delete), `expires_at` (ms), when Redis may
/// drop it (ms, `expires_at` plus [`EXPIRY_SLACK_MS`]) and the record's
/// bytes. Answers 1 when every write was applied, 0 when none was (a
/// conflict), and the error `VERICODE_CLOCK <now minus Redis's time, ms>`
/// when the clocks are too far apart (nothing written).
const COMMIT_LUA: &str = r#"
local now = tonumber(ARGV[1])
if ARGV[2] ~= '' then
  -- Before Redis 5 a script is replicated as its text by default, and one
  -- that read TIME may not write unless it asks for its effects to be
  -- replicated instead (a no-op from Redis 7 on).
  if redis.replicate_commands then redis.replicate_commands() end
  local t = redis.call('TIME')
  local skew = now - (tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
  if math.abs(skew) > tonumber(ARGV[2]) then
    return redis.error_reply(string.format('VERICODE_CLOCK %.0f', skew))
  end
end
for i = 1, #KEYS do
  local cur = redis.call('HMGET', KEYS[i], 'v', 'e')
  local v = cur[1]
  if v then
    local e = tonumber(cur[2])
    if not e then
      return redis.error_reply('VERICODE corrupt record: no expiry field')
    end
    if e <= now then v = false end
  end
  local expected = ARGV[3 + (i - 1) * 5]
  if expected == '' then
    if v then return 0 end
  elseif v ~= expected then
    return 0
  end
end
-- Puts before deletes: Redis checks a script for memory only at its first
-- write that may grow it, so a commit that began with a DEL (a success:
-- the challenge deleted, then the subject put) went through on a full Redis
-- that refused a wrong guess's HSET. Puts first, a full Redis refuses both.
for i = 1, #KEYS do
  local base = 3 + (i - 1) * 5
  local version = ARGV[base + 1]
  if version ~= '' then
    redis.call('HSET', KEYS[i], 'v', version, 'e', ARGV[base + 2], 'd', ARGV[base + 4])
    redis.call('PEXPIREAT', KEYS[i], ARGV[base + 3])
  end
end
for i = 1, #KEYS do
  if ARGV[3 + (i - 1) * 5 + 1] == '' then
    redis.call('DEL', KEYS[i])
  end
end
return 1
"#;

static COMMIT: LazyLock<Script> = LazyLock::new(|| Script::new(COMMIT_LUA));

/// What went wrong talking to Redis. None of the variants carries a record,
/// a code or a key.
///
/// ```
/// use vericode_redis::{RedisStore, RedisStoreError};
/// // Key names need no connection: `()` stands in for one.
/// let refused = RedisStore::new(()).with_prefix("{bad}:");
/// assert!(matches!(refused, Err(RedisStoreError::InvalidPrefix(_))));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RedisStoreError {
    /// Redis could not be reached, the connection dropped or timed out, or
    /// the URL is not valid. A commit that timed out may still have been applied
    /// (the verifier fails closed either way): retry later.
    #[error("could not reach Redis")]
    Connection(#[source] RedisError),
    /// The commit script failed to load or run (a key holding another type,
    /// a record without its fields, a script error, `BUSY`).
    #[error("the vericode commit script failed in Redis")]
    Script(#[source] RedisError),
    /// Redis refused a command (an ACL denial, `WRONGTYPE` on a read, an
    /// out-of-memory refusal).
    #[error("Redis refused a command")]
    Command(#[source] RedisError),
    /// Redis answered in a shape this store never writes (a field missing, a
    /// version that is not a number).
    #[error("Redis answered something vericode did not write: {0}")]
    Reply(&'static str),
    /// A stored record's bytes do not decode.
    #[error("a record stored in Redis does not decode")]
    Decode(#[source] vericode::DecodeError),
    /// A kind of [`Write`] this version of the store does not know (from a
    /// newer vericode); nothing was written.
    #[error("a kind of write this store does not know")]
    UnsupportedWrite,
    /// The key prefix is not allowed.
    #[error("invalid key prefix: {0}")]
    InvalidPrefix(&'static str),
    /// The verifier's clock is further from Redis's than the store allows
    /// ([`RedisStore::with_max_clock_skew`]); nothing was written. Expiry,
    /// cooldowns, locks and rate limits all go by the servers' clocks, so
    /// servers whose clocks disagree would let through what one clock
    /// would not: sync this server's clock and Redis's (NTP).
    #[error(
        "this server's clock is {skew_ms} ms off Redis's (allowed: {max_ms} ms): sync the clocks (NTP)"
    )]
    ClockSkew {
        /// The verifier's time minus Redis's, in milliseconds: positive when
        /// this server's clock is ahead.
        skew_ms: i64,
        /// The most the store allows, in milliseconds.
        max_ms: i64,
    },
    /// A maximum clock skew outside what the store accepts (see
    /// [`RedisStore::with_max_clock_skew`]).
    #[error("invalid maximum clock skew: {0}")]
    InvalidClockSkew(&'static str),
    /// Redis has a `maxmemory` and an eviction policy other than
    /// `noeviction` (named here), so it may drop live records at its memory
    /// limit: set `maxmemory-policy noeviction` (see
    /// [`RedisStore::load_scripts`]).
    #[error(
        "Redis may evict vericode's records (maxmemory-policy {0}): set maxmemory-policy to noeviction"
    )]
    EvictionPolicy(String),
}

/// Refuses an `INFO memory` answer that shows a `maxmemory` with an eviction
/// policy other than `noeviction`.
/// The text of one server's `INFO` answer.
fn info_text(reply: Value) -> Result<String, RedisStoreError> {
    match reply {
        Value::BulkString(b) => {
            String::from_utf8(b).map_err(|_| RedisStoreError::Reply("INFO that is not UTF-8"))
        }
        Value::SimpleString(s) | Value::VerbatimString { text: s, .. } => Ok(s),
        _ => Err(RedisStoreError::Reply("INFO that is not text")),
    }
}

fn check_eviction(info: &str) -> Result<(), RedisStoreError> {
    let field = |name: &str| {
        info.lines()
            .find_map(|l| l.trim().strip_prefix(name)?.strip_prefix(':'))
            .map(str::trim)
    };
    let (Some(max), Some(policy)) = (field("maxmemory"), field("maxmemory_policy")) else {
        return Err(RedisStoreError::Reply(
            "INFO memory without maxmemory or maxmemory_policy",
        ));
    };
    if max != "0" && policy != "noeviction" {
        return Err(RedisStoreError::EvictionPolicy(policy.to_owned()));
    }
    Ok(())
}

impl RedisStoreError {
    fn classify(e: RedisError, in_script: bool) -> Self {
        if e.is_io_error()
            || e.is_connection_refusal()
            || e.is_connection_dropped()
            || e.is_timeout()
            || e.is_cluster_error()
            || e.kind() == redis::ErrorKind::InvalidClientConfig
            || e.kind() == redis::ErrorKind::ClusterConnectionNotFound
        {
            RedisStoreError::Connection(e)
        } else if in_script {
            RedisStoreError::Script(e)
        } else {
            RedisStoreError::Command(e)
        }
    }
}

/// A [`CodeStore`] on Redis, over any async connection of the `redis` crate:
/// a [`ConnectionManager`] (the default, see [`RedisStore::connect`]: it
/// reconnects by itself after Redis restarts or the network drops), a
/// `MultiplexedConnection` (which does not: once its socket is gone, every
/// call fails until the process makes a new one). On Redis Cluster, make it
/// with `RedisStore::cluster` (feature `cluster`), which splits pipelines
/// by slot: a cluster connection given to [`RedisStore::new`] would be
/// refused every read and batch that spans slots.
///
/// Cheap to clone: clones share the connection.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use vericode_redis::RedisStore;
/// let client = redis::Client::open("redis://127.0.0.1:6379/")?;
/// let conn = client.get_multiplexed_async_connection().await?;
/// let store = RedisStore::new(conn).with_prefix("myapp:otp:")?;
/// store.load_scripts().await?;
/// assert_eq!(store.prefix(), "myapp:otp:");
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct RedisStore<C = ConnectionManager> {
    conn: C,
    prefix: Arc<str>,
    /// Redis Cluster: a pipeline (a read's, or a `commit_batches`') is sent
    /// per group, the pipelines at once, as one may not span slots.
    per_group: bool,
    /// How far a commit's `now` may be from Redis's clock, in milliseconds
    /// (`None`: not checked).
    max_skew_ms: Option<i64>,
}

impl<C> fmt::Debug for RedisStore<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisStore<ConnectionManager> {
    /// Connects to the Redis at `url` (`redis://[user:password@]host:port/[db]`,
    /// `rediss://` with the `redis` crate's TLS features) through a
    /// [`ConnectionManager`] (one multiplexed connection, made again in the
    /// background when it drops: the call that meets a dropped connection
    /// fails, as calls do while Redis is away, and the ones after it use the
    /// new connection), keys prefixed with [`DEFAULT_PREFIX`]. Needs a tokio
    /// runtime.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), vericode_redis::RedisStoreError> {
    /// let store = vericode_redis::RedisStore::connect("redis://127.0.0.1:6379/").await?;
    /// assert_eq!(store.prefix(), vericode_redis::DEFAULT_PREFIX);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn connect(url: &str) -> Result<Self, RedisStoreError> {
        let client = redis::Client::open(url).map_err(RedisStoreError::Connection)?;
        let conn = ConnectionManager::new(client)
            .await
            .map_err(RedisStoreError::Connection)?;
        Ok(RedisStore::new(conn))
    }
}

#[cfg(feature = "cluster")]
impl RedisStore<redis::cluster_async::ClusterConnection> {
    /// A store on Redis Cluster (feature `cluster`), over a cluster
    /// connection, keys prefixed with [`DEFAULT_PREFIX`]. The keys of one
    /// commit share a group, the hash tag, so each commit is one script on
    /// one node; a read or a `commit_batches` that spans groups is sent as
    /// one pipeline per group, the pipelines at once (a pipeline may not span
    /// slots), so it still takes about one round trip of wall time.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let nodes = ["redis://10.0.0.1:6379/", "redis://10.0.0.2:6379/"];
    /// let client = redis::cluster::ClusterClient::new(nodes.to_vec())?;
    /// let store = vericode_redis::RedisStore::cluster(client.get_async_connection().await?);
    /// store.load_scripts().await?; // checks every primary's eviction policy
    /// # Ok(())
    /// # }
    /// ```
    pub fn cluster(conn: redis::cluster_async::ClusterConnection) -> Self {
        RedisStore {
            per_group: true,
            ..RedisStore::new(conn)
        }
    }
}

impl<C> RedisStore<C> {
    /// A store over `conn`, keys prefixed with [`DEFAULT_PREFIX`].
    ///
    /// ```no_run
    /// # async fn run() -> redis::RedisResult<()> {
    /// let client = redis::Client::open("redis://127.0.0.1:6379/")?;
    /// let store = vericode_redis::RedisStore::new(client.get_multiplexed_async_connection().await?);
    /// # let _ = store;
    /// # Ok(())
    /// # }
    /// ```
    pub fn new(conn: C) -> Self {
        RedisStore {
            conn,
            prefix: Arc::from(DEFAULT_PREFIX),
            per_group: false,
            max_skew_ms: Some(millis(DEFAULT_MAX_CLOCK_SKEW)),
        }
    }

    /// The same store with keys prefixed by `prefix` instead: use one prefix
    /// per application or environment sharing a Redis. At most
    /// [`MAX_PREFIX_LEN`] bytes, and without `{` or `}`, which would change
    /// the hash tag Redis Cluster computes.
    ///
    /// ```
    /// let store = vericode_redis::RedisStore::new(()).with_prefix("shop:otp:")?;
    /// assert_eq!(store.prefix(), "shop:otp:");
    /// # Ok::<(), vericode_redis::RedisStoreError>(())
    /// ```
    pub fn with_prefix(self, prefix: impl Into<String>) -> Result<Self, RedisStoreError> {
        let prefix = prefix.into();
        if prefix.len() > MAX_PREFIX_LEN {
            return Err(RedisStoreError::InvalidPrefix("longer than 128 bytes"));
        }
        if prefix.contains(['{', '}']) {
            return Err(RedisStoreError::InvalidPrefix(
                "contains '{' or '}', which would change the cluster hash tag",
            ));
        }
        Ok(RedisStore {
            prefix: Arc::from(prefix),
            ..self
        })
    }

    /// The same store with another limit on how far the verifier's clock
    /// may be from Redis's: every commit compares the `now` it is given with
    /// Redis's `TIME` and, past `max` either way, writes nothing of that
    /// commit and answers [`RedisStoreError::ClockSkew`] (the verifier fails
    /// closed; of a `commit_batches`, batches checked on other nodes of a
    /// cluster, by their clocks, may have been applied). The
    /// default is [`DEFAULT_MAX_CLOCK_SKEW`], one minute; `max` must be
    /// from 1 second to [`EXPIRY_SLACK_MS`] (10 minutes), within which
    /// Redis drops no record early by its own clock.
    ///
    /// Expiry, cooldowns, locks and rate limits go by the servers' clocks:
    /// a server whose clock runs ahead sees cooldowns and limits end early,
    /// and, against Redis, two servers may differ by up to twice `max`. What
    /// changes state is committed, and so checked: a send, a guess, a
    /// success. What is decided on a read alone is not: a refusal (a code
    /// read as expired, a lock not yet over), which fails closed, and
    /// accepting a remembered device's token (`check_device`), which a
    /// clock behind accepts past its expiry by as much as the clock is
    /// behind.
    ///
    /// ```
    /// use std::time::Duration;
    /// let store = vericode_redis::RedisStore::new(()).with_max_clock_skew(Duration::from_secs(5))?;
    /// assert_eq!(store.max_clock_skew(), Some(Duration::from_secs(5)));
    /// assert!(vericode_redis::RedisStore::new(())
    ///     .with_max_clock_skew(Duration::from_millis(10))
    ///     .is_err());
    /// # Ok::<(), vericode_redis::RedisStoreError>(())
    /// ```
    pub fn with_max_clock_skew(self, max: Duration) -> Result<Self, RedisStoreError> {
        if max < Duration::from_secs(1) {
            return Err(RedisStoreError::InvalidClockSkew(
                "less than 1 second, which a commit's own latency may exceed",
            ));
        }
        if millis(max) > EXPIRY_SLACK_MS {
            return Err(RedisStoreError::InvalidClockSkew(
                "more than 10 minutes (EXPIRY_SLACK_MS), past which Redis may drop records early",
            ));
        }
        Ok(RedisStore {
            max_skew_ms: Some(millis(max)),
            ..self
        })
    }

    /// The same store without the clock check: commits take any `now`.
    /// For tests that move the verifier's clock by hand (a
    /// [`ManualClock`](vericode::ManualClock) set hours ahead); a server
    /// should keep the check.
    ///
    /// ```
    /// let store = vericode_redis::RedisStore::new(()).without_clock_check();
    /// assert_eq!(store.max_clock_skew(), None);
    /// ```
    pub fn without_clock_check(self) -> Self {
        RedisStore {
            max_skew_ms: None,
            ..self
        }
    }

    /// How far the verifier's clock may be from Redis's (`None`: not
    /// checked).
    ///
    /// ```
    /// let store = vericode_redis::RedisStore::new(());
    /// assert_eq!(store.max_clock_skew(), Some(vericode_redis::DEFAULT_MAX_CLOCK_SKEW));
    /// ```
    pub fn max_clock_skew(&self) -> Option<Duration> {
        self.max_skew_ms
            .map(|ms| Duration::from_millis(u64::try_from(ms).unwrap_or(0)))
    }

    /// A store with this one's prefix over another connection: a second
    /// handle on the same data, as another server would have.
    ///
    /// ```no_run
    /// # async fn run(store: vericode_redis::RedisStore) -> redis::RedisResult<()> {
    /// let client = redis::Client::open("redis://127.0.0.1:6379/")?;
    /// let other = store.with_connection(client.get_multiplexed_async_connection().await?);
    /// assert_eq!(other.prefix(), store.prefix());
    /// # Ok(())
    /// # }
    /// ```
    pub fn with_connection<C2>(&self, conn: C2) -> RedisStore<C2> {
        RedisStore {
            conn,
            prefix: self.prefix.clone(),
            per_group: self.per_group,
            max_skew_ms: self.max_skew_ms,
        }
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The connection.
    pub fn connection(&self) -> &C {
        &self.conn
    }

    /// The Redis key that holds `key`:
    /// `<prefix>{<group hex>}:<kind tag>:<item hex>`.
    ///
    /// ```
    /// use vericode::{KeyKind, StoreKey};
    /// // Key names need no connection: `()` stands in for one.
    /// let store = vericode_redis::RedisStore::new(()).with_prefix("app:")?;
    /// let key = StoreKey::new(KeyKind::Challenge, [0xab; 16], [1; 8]);
    /// assert_eq!(
    ///     store.redis_key(&key),
    ///     "app:{abababababababababababababababab}:c:0101010101010101"
    /// );
    /// # Ok::<(), vericode_redis::RedisStoreError>(())
    /// ```
    pub fn redis_key(&self, key: &StoreKey) -> String {
        let mut out = String::with_capacity(self.prefix.len() + 2 + 32 + 3 + 1 + 16);
        out.push_str(&self.prefix);
        out.push('{');
        push_hex(&mut out, key.group());
        out.push_str("}:");
        out.push(key.kind().tag());
        out.push(':');
        push_hex(&mut out, key.item());
        out
    }
}

impl<C> RedisStore<C>
where
    C: ConnectionLike + Clone + Send + Sync + 'static,
{
    /// Checks that Redis will not evict records, then loads the commit script
    /// (two round trips), so the first commit needs no `SCRIPT LOAD`. Call it
    /// at startup: a commit would load the script by itself (when Redis
    /// answers `NOSCRIPT`), but nothing else checks the eviction policy.
    ///
    /// Every record has a TTL, so under any eviction policy but `noeviction`
    /// a Redis at its `maxmemory` may drop live ones, which would forget
    /// failure counts, attempts and send limits. With a `maxmemory` set and
    /// another policy this answers [`RedisStoreError::EvictionPolicy`] (with
    /// no `maxmemory`, Redis never evicts). It reads `INFO memory`, which
    /// the connection's user must be allowed.
    pub async fn load_scripts(&self) -> Result<(), RedisStoreError> {
        let mut conn = self.conn.clone();
        let info: Value = redis::cmd("INFO")
            .arg("memory")
            .query_async(&mut conn)
            .await
            .map_err(|e| RedisStoreError::classify(e, false))?;
        // One server's text, or (a cluster) one per node.
        match info {
            Value::Map(nodes) => {
                for (_, node) in nodes {
                    check_eviction(&info_text(node)?)?;
                }
            }
            one => check_eviction(&info_text(one)?)?,
        }
        COMMIT
            .load_async(&mut conn)
            .await
            .map(drop)
            .map_err(|e| RedisStoreError::classify(e, true))
    }

    async fn read(
        &self,
        keys: &[StoreKey],
        now: Timestamp,
    ) -> Result<Vec<Option<Versioned>>, RedisStoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let order = self.pipelines_for(keys.iter());
        let pipes: Vec<redis::Pipeline> = order
            .iter()
            .map(|part| {
                let mut pipe = redis::pipe();
                for &i in part {
                    pipe.cmd("HMGET")
                        .arg(self.redis_key(&keys[i]))
                        .arg("v")
                        .arg("e")
                        .arg("d");
                }
                pipe
            })
            .collect();
        let replies = self
            .send(&pipes, &order, keys.len())
            .await
            .map_err(|e| RedisStoreError::classify(e, false))?;
        if replies.len() != keys.len() {
            return Err(RedisStoreError::Reply("one answer per key read"));
        }
        replies.into_iter().map(|r| parse_entry(r, now)).collect()
    }

    /// The positions of `keys` split into pipelines: one in all, or (a
    /// cluster) one per group, in order of first appearance.
    fn pipelines_for<'k>(&self, keys: impl Iterator<Item = &'k StoreKey>) -> Vec<Vec<usize>> {
        let mut parts: Vec<(&[u8; 16], Vec<usize>)> = Vec::new();
        for (i, key) in keys.enumerate() {
            let group = if self.per_group {
                key.group()
            } else {
                &[0; 16]
            };
            match parts.iter_mut().find(|(g, _)| *g == group) {
                Some((_, part)) => part.push(i),
                None => parts.push((group, vec![i])),
            }
        }
        parts.into_iter().map(|(_, part)| part).collect()
    }

    /// Sends `pipes` (the positions in `order`) and answers their replies in
    /// position order: one pipeline as it is, several at once.
    async fn send(
        &self,
        pipes: &[redis::Pipeline],
        order: &[Vec<usize>],
        n: usize,
    ) -> Result<Vec<Value>, RedisError> {
        let mut conn = self.conn.clone();
        if let [pipe] = pipes {
            return pipe.query_async(&mut conn).await;
        }
        let answers = self.send_each(pipes).await?;
        let mut out: Vec<Option<Value>> = vec![None; n];
        for (part, replies) in order.iter().zip(answers) {
            for (&i, reply) in part.iter().zip(replies) {
                if let Some(slot) = out.get_mut(i) {
                    *slot = Some(reply);
                }
            }
        }
        // A pipeline that answered short leaves a position empty: the caller
        // sees fewer replies than it asked for and refuses them.
        Ok(out.into_iter().flatten().collect())
    }

    #[cfg(feature = "cluster")]
    async fn send_each(&self, pipes: &[redis::Pipeline]) -> Result<Vec<Vec<Value>>, RedisError> {
        futures_util::future::join_all(pipes.iter().map(|pipe| {
            let mut conn = self.conn.clone();
            async move { pipe.query_async::<Vec<Value>>(&mut conn).await }
        }))
        .await
        .into_iter()
        .collect()
    }

    #[cfg(not(feature = "cluster"))]
    async fn send_each(&self, pipes: &[redis::Pipeline]) -> Result<Vec<Vec<Value>>, RedisError> {
        // Only a cluster store splits its pipelines.
        let mut out = Vec::with_capacity(pipes.len());
        for pipe in pipes {
            out.push(pipe.query_async(&mut self.conn.clone()).await?);
        }
        Ok(out)
    }

    fn commit_cmd(&self, writes: &[Write], now: Timestamp) -> Result<Cmd, RedisStoreError> {
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg(COMMIT.get_hash()).arg(writes.len());
        for w in writes {
            cmd.arg(self.redis_key(w.key()));
        }
        cmd.arg(now.as_millis());
        match self.max_skew_ms {
            Some(ms) => cmd.arg(ms),
            None => cmd.arg(""),
        };
        for w in writes {
            let expected = w.expected().map(|v| v.0.to_string()).unwrap_or_default();
            match w {
                Write::Put {
                    record,
                    version,
                    expires_at,
                    ..
                } => {
                    cmd.arg(expected)
                        .arg(version.0.to_string())
                        .arg(expires_at.as_millis())
                        .arg(expires_at.as_millis().saturating_add(EXPIRY_SLACK_MS))
                        .arg(record.encode());
                }
                Write::Delete { .. } => {
                    cmd.arg(expected).arg("").arg("").arg("").arg("");
                }
                // A kind of write this version does not know: refuse it
                // rather than guess.
                _ => return Err(RedisStoreError::UnsupportedWrite),
            }
        }
        Ok(cmd)
    }

    /// Runs one commit script per batch, in one pipeline; loads the script
    /// and retries the batches that met `NOSCRIPT` (none of them ran).
    async fn apply(
        &self,
        batches: &[&[Write]],
        now: Timestamp,
    ) -> Result<Vec<Commit>, RedisStoreError> {
        // An empty batch has no expectation to fail.
        let mut results: Vec<Option<Commit>> = batches
            .iter()
            .map(|b| b.is_empty().then_some(Commit::Applied))
            .collect();
        let mut pending: Vec<usize> = (0..batches.len())
            .filter(|&i| results[i].is_none())
            .collect();
        let mut conn = self.conn.clone();
        let mut loaded = false;
        while !pending.is_empty() {
            // Every batch writes keys of one group: its first key names it.
            let order = self.pipelines_for(
                pending
                    .iter()
                    .filter_map(|&i| batches[i].first().map(Write::key)),
            );
            let mut pipes = Vec::with_capacity(order.len());
            for part in &order {
                let mut pipe = redis::pipe();
                pipe.ignore_errors();
                for &j in part {
                    pipe.add_command(self.commit_cmd(batches[pending[j]], now)?);
                }
                pipes.push(pipe);
            }
            let replies = self
                .send(&pipes, &order, pending.len())
                .await
                .map_err(|e| RedisStoreError::classify(e, true))?;
            if replies.len() != pending.len() {
                return Err(RedisStoreError::Reply("one answer per commit"));
            }
            let mut missing_script = Vec::new();
            for (&i, reply) in pending.iter().zip(replies) {
                match reply {
                    Value::Int(1) => results[i] = Some(Commit::Applied),
                    Value::Int(0) => results[i] = Some(Commit::Conflict),
                    Value::ServerError(e) if e.kind() == Some(ServerErrorKind::NoScript) => {
                        if loaded {
                            return Err(RedisStoreError::Script(e.into()));
                        }
                        missing_script.push(i);
                    }
                    Value::ServerError(e) if e.code() == "VERICODE_CLOCK" => {
                        return Err(RedisStoreError::ClockSkew {
                            // Whole milliseconds, as text; far out of range
                            // (an absurd `now`), it saturates with its sign.
                            skew_ms: e
                                .details()
                                .and_then(|d| d.trim().parse::<f64>().ok())
                                .map_or(i64::MAX, |ms| ms as i64),
                            max_ms: self.max_skew_ms.unwrap_or(0),
                        });
                    }
                    Value::ServerError(e) => {
                        return Err(RedisStoreError::classify(e.into(), true));
                    }
                    _ => return Err(RedisStoreError::Reply("a commit answered neither 0 nor 1")),
                }
            }
            if !missing_script.is_empty() {
                COMMIT
                    .load_async(&mut conn)
                    .await
                    .map_err(|e| RedisStoreError::classify(e, true))?;
                loaded = true;
            }
            pending = missing_script;
        }
        Ok(results
            .into_iter()
            .map(|r| r.unwrap_or(Commit::Conflict))
            .collect())
    }
}

impl<C> CodeStore for RedisStore<C>
where
    C: ConnectionLike + Clone + Send + Sync + 'static,
{
    type Error = RedisStoreError;

    fn get_many(
        &self,
        keys: &[StoreKey],
        now: Timestamp,
    ) -> impl Future<Output = Result<Vec<Option<Versioned>>, Self::Error>> + Send {
        self.read(keys, now)
    }

    async fn commit(&self, writes: &[Write], now: Timestamp) -> Result<Commit, Self::Error> {
        let mut out = self.apply(&[writes], now).await?;
        out.pop()
            .ok_or(RedisStoreError::Reply("no answer to a commit"))
    }

    fn commit_batches(
        &self,
        batches: &[&[Write]],
        now: Timestamp,
    ) -> impl Future<Output = Result<Vec<Commit>, Self::Error>> + Send {
        self.apply(batches, now)
    }
}

/// `d` in whole milliseconds (at most `i64::MAX`).
fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// One `HMGET v e d` answer: absent, expired (absent), or a record.
fn parse_entry(reply: Value, now: Timestamp) -> Result<Option<Versioned>, RedisStoreError> {
    let fields = match reply {
        Value::Array(fields) if fields.len() == 3 => fields,
        Value::ServerError(e) => return Err(RedisStoreError::classify(e.into(), false)),
        _ => return Err(RedisStoreError::Reply("HMGET did not answer three fields")),
    };
    let mut it = fields.into_iter().map(|f| match f {
        Value::Nil => Ok(None),
        Value::BulkString(b) => Ok(Some(b)),
        _ => Err(RedisStoreError::Reply(
            "a record field that is not a string",
        )),
    });
    let (v, e, d) = match (it.next(), it.next(), it.next()) {
        (Some(v), Some(e), Some(d)) => (v?, e?, d?),
        _ => return Err(RedisStoreError::Reply("HMGET did not answer three fields")),
    };
    let (v, e, d) = match (v, e, d) {
        (None, None, None) => return Ok(None),
        (Some(v), Some(e), Some(d)) => (v, e, d),
        _ => return Err(RedisStoreError::Reply("a record without all its fields")),
    };
    let version: u64 =
        parse_number(&v).ok_or(RedisStoreError::Reply("a version that is not a u64"))?;
    let expires: i64 =
        parse_number(&e).ok_or(RedisStoreError::Reply("an expiry that is not an i64"))?;
    if expires <= now.as_millis() {
        return Ok(None);
    }
    let record = Record::decode(&d).map_err(RedisStoreError::Decode)?;
    Ok(Some(Versioned {
        version: Version(version),
        record,
    }))
}

fn parse_number<T: std::str::FromStr>(bytes: &[u8]) -> Option<T> {
    std::str::from_utf8(bytes).ok()?.parse().ok()
}

fn push_hex(out: &mut String, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0xf)]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(max: &str, policy: &str) -> String {
        format!(
            "# Memory\r\nused_memory:1000\r\nmaxmemory:{max}\r\nmaxmemory_human:0B\r\nmaxmemory_policy:{policy}\r\n"
        )
    }

    #[test]
    fn only_a_redis_that_may_evict_is_refused() {
        assert!(check_eviction(&info("0", "noeviction")).is_ok());
        assert!(check_eviction(&info("0", "volatile-lru")).is_ok());
        assert!(check_eviction(&info("4194304", "noeviction")).is_ok());
        for policy in [
            "volatile-lru",
            "allkeys-lru",
            "volatile-ttl",
            "allkeys-random",
        ] {
            match check_eviction(&info("4194304", policy)) {
                Err(RedisStoreError::EvictionPolicy(p)) => assert_eq!(p, policy),
                other => panic!("{policy}: {other:?}"),
            }
        }
        assert!(matches!(
            check_eviction("# Memory\r\nused_memory:1000\r\n"),
            Err(RedisStoreError::Reply(_))
        ));
    }
}
