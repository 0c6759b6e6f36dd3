//! The service of `examples/web_service`: a password login that challenges
//! devices the account has not seen, remembered devices, and an email change
//! confirmed by a code bound to the new address.
//!
//! `main.rs` serves it; `tests/web_service_e2e.rs` includes this very file
//! (`#[path]`) and drives it over real HTTP.
//!
//! Routes (JSON in, JSON out; errors are `{ "error": kind, "message": … }`
//! where `message` is vericode's `user_message()`, safe to show):
//!
//! | route | needs | does |
//! | --- | --- | --- |
//! | `POST /login` `{email, password}` | | `200` signed in (a remembered device), or `202` challenge |
//! | `POST /login/verify` `{challenge_id, code}` | | `200` signed in: session and remembered-device cookies |
//! | `POST /login/resend` `{challenge_id}` | | `202` another code (after the cooldown) |
//! | `GET /me` | session | `200` the account |
//! | `POST /devices/revoke` | session | `200` every remembered device of the account is forgotten |
//! | `POST /email/change` `{new_email, password}` | session and the current password | `202` a code to the new address, bound to it; `401 wrong_password` (counted with sign-in failures, `429` after 5); `400 same_email` |
//! | `POST /email/confirm` `{challenge_id, code, new_email}` | session | `200` changed, only for the address the code was bound to |
//!
//! What is demo-only, and what a real service does instead:
//! - **Passwords.** The user table keeps a salted SHA-256 of each demo
//!   password, compared in constant time (and an unknown address is compared
//!   against a dummy entry, so both paths do the same work). SHA-256 is *not*
//!   a password hash: a real service stores Argon2id hashes (the `argon2`
//!   crate) and verifies with it.
//! - **Delivery.** [`DemoDelivery`] prints each message, code included, to
//!   stdout and keeps it in memory for the test. A real delivery calls an
//!   email or SMS provider and never logs a code or a message body.
//! - **State.** Accounts, sessions and pending logins live in this process's
//!   memory, and so do the codes ([`MemoryStore`](vericode::MemoryStore)); the
//!   signing key is generated at start, so a restart forgets everything.
//! - **Cookies** are `Secure; HttpOnly; SameSite=Strict`: serve over HTTPS
//!   (browsers and curl accept `Secure` cookies from `http://localhost` only).

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use rand::Rng;
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use time::{Duration, OffsetDateTime};
use vericode::{
    Attempt, ChallengeId, ClientKey, Clock, CodeStore, ConfigError, Context, Delivery, Destination,
    DeviceToken, IssueError, IssueRequest, KeyId, Message, Never, Purpose, Receipt,
    RecordingDelivery, RememberedDevice, SecretKey, SentMessage, StoreError, Subject, Ticket,
    Verified, Verifier, VerifyError,
};

/// The demo accounts: (account id, email, password). Demo only.
pub const DEMO_USERS: [(&str, &str, &str); 2] = [
    ("u-ana", "ana@example.com", "ana-demo-password"),
    ("u-ben", "ben@example.org", "ben-demo-password"),
];

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "session";
/// The remembered-device cookie's name.
pub const DEVICE_COOKIE: &str = "device";
/// How long a session lasts.
const SESSION_LIFETIME: Duration = Duration::hours(12);
/// After this many failed sign-ins for an address within
/// `PASSWORD_FAILURE_WINDOW`, every sign-in of the address is refused until
/// the window has passed, the right password's too.
const MAX_PASSWORD_FAILURES: u32 = 5;
const PASSWORD_FAILURE_WINDOW: Duration = Duration::minutes(15);
/// The attributes of both cookies.
const COOKIE_ATTRIBUTES: &str = "Path=/; Secure; HttpOnly; SameSite=Strict";

/// A clock shared by the verifier and the sessions: the system clock when
/// serving, a `ManualClock` in the test.
pub type SharedClock = Arc<dyn Clock>;

/// The verifier as this service builds it, over any [`CodeStore`].
pub type DemoVerifier<S> = Verifier<S, DemoDelivery, SharedClock>;

// ---------------------------------------------------------------------------
// Delivery
// ---------------------------------------------------------------------------

/// DEMO ONLY: a delivery that prints every message (code included) and keeps
/// it in memory, so a person running the example can read the code and the
/// test can type it. A real service sends through its provider and never
/// prints or logs a code.
#[derive(Debug, Default)]
pub struct DemoDelivery {
    outbox: RecordingDelivery,
    /// Notices the service sends itself (no code in them): (address, text).
    notices: Mutex<Vec<(String, String)>>,
    print: bool,
}

impl DemoDelivery {
    /// Prints each message to stdout and keeps it.
    pub fn printing() -> Self {
        DemoDelivery {
            print: true,
            ..DemoDelivery::default()
        }
    }

    /// Keeps each message without printing it.
    pub fn quiet() -> Self {
        DemoDelivery::default()
    }

    /// Every message so far, oldest first.
    pub fn sent(&self) -> Vec<SentMessage> {
        self.outbox.sent()
    }

    /// Sends a notice that holds no code (a real service mails it through its
    /// provider).
    pub fn notify(&self, address: &str, text: &str) {
        if self.print {
            println!("[demo mailer] to {address}: {text}");
        }
        lock(&self.notices).push((address.to_owned(), text.to_owned()));
    }

    /// The notices sent to `address`, oldest first.
    pub fn notices_to(&self, address: &str) -> Vec<String> {
        lock(&self.notices)
            .iter()
            .filter(|(to, _)| to == address)
            .map(|(_, text)| text.clone())
            .collect()
    }

    /// The latest message sent to `address`.
    pub fn last_to(&self, address: &str) -> Option<SentMessage> {
        self.sent()
            .into_iter()
            .rev()
            .find(|m| m.destination.address() == address)
    }
}

impl Delivery for DemoDelivery {
    type Error = Never;

    fn deliver(
        &self,
        message: &Message<'_>,
    ) -> impl Future<Output = Result<Receipt, Never>> + Send {
        if self.print {
            // DEMO ONLY: printing the message prints the code.
            println!(
                "[demo delivery, prints codes: never in production] {} to {}: {}",
                message.destination().channel(),
                message.destination().address(),
                message.body()
            );
        }
        self.outbox.deliver(message)
    }
}

/// A send the service runs on a task of its own (see `AppState::send`).
enum CodeSend {
    Issue(IssueRequest),
    Resend(ChallengeId, ClientKey),
}

// ---------------------------------------------------------------------------
// State
// ---------------------------------------------------------------------------

struct Account {
    id: String,
    email: String,
    salt: [u8; 16],
    password: [u8; 32],
}

/// DEMO ONLY: salted SHA-256. Real services use Argon2id.
fn password_digest(salt: &[u8; 16], password: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(salt);
    h.update(password.as_bytes());
    h.finalize().into()
}

struct Users {
    accounts: Vec<Account>,
    /// Compared against for an unknown address, so that it costs the same.
    dummy: ([u8; 16], [u8; 32]),
}

impl Users {
    fn demo() -> Self {
        let mut rng = rand::rng();
        let accounts = DEMO_USERS
            .iter()
            .map(|(id, email, password)| {
                let mut salt = [0u8; 16];
                rng.fill_bytes(&mut salt);
                Account {
                    id: (*id).to_owned(),
                    email: (*email).to_owned(),
                    salt,
                    password: password_digest(&salt, password),
                }
            })
            .collect();
        let mut dummy = ([0u8; 16], [0u8; 32]);
        rng.fill_bytes(&mut dummy.0);
        rng.fill_bytes(&mut dummy.1); // no password has this digest
        Users { accounts, dummy }
    }

    /// The account id if `email` names an account and `password` is its
    /// password; the same work either way.
    /// The account at `email` if `password` is its password; `None` for a
    /// wrong password and an unknown address alike (the same work either way).
    fn check_password(&self, email: &str, password: &str) -> Option<String> {
        let found = self.accounts.iter().find(|a| a.email == email);
        let (salt, expected) =
            found.map_or((&self.dummy.0, &self.dummy.1), |a| (&a.salt, &a.password));
        let right: bool = password_digest(salt, password).ct_eq(expected).into();
        found.filter(|_| right).map(|a| a.id.clone())
    }

    fn email_of(&self, account: &str) -> Option<String> {
        self.accounts
            .iter()
            .find(|a| a.id == account)
            .map(|a| a.email.clone())
    }
}

struct Session {
    account: String,
    expires_at: OffsetDateTime,
}

/// A login waiting for its code: started by the account's right password.
#[derive(Clone)]
struct PendingLogin {
    subject: Subject,
    destination: Destination,
    /// The account whose right password started the challenge.
    account: String,
    expires_at: OffsetDateTime,
}

/// Everything the service keeps.
pub struct AppState<S> {
    verifier: DemoVerifier<S>,
    clock: SharedClock,
    users: Mutex<Users>,
    sessions: Mutex<HashMap<String, Session>>,
    pending: Mutex<HashMap<ChallengeId, PendingLogin>>,
    /// Failed passwords per address typed: the count and when its window
    /// began.
    password_failures: Mutex<HashMap<String, (u32, OffsetDateTime)>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl<S: CodeStore> AppState<S> {
    /// A service over `store`, with the demo accounts. `lookup` names the
    /// records in a shared store (every instance needs the same); `None`
    /// takes the store's own, which `MemoryStore` makes.
    pub fn new(
        store: S,
        delivery: DemoDelivery,
        clock: SharedClock,
        key: SecretKey,
        lookup: Option<SecretKey>,
    ) -> Result<Self, ConfigError> {
        let mut builder = Verifier::builder()
            .store(store)
            .delivery(delivery)
            .clock(Arc::clone(&clock))
            .signing_key(KeyId::new(1), key)
            .app_name("Acme Demo");
        if let Some(lookup) = lookup {
            builder = builder.lookup_key(lookup);
        }
        let verifier = builder.build()?;
        Ok(AppState {
            verifier,
            clock,
            users: Mutex::new(Users::demo()),
            sessions: Mutex::new(HashMap::new()),
            pending: Mutex::new(HashMap::new()),
            password_failures: Mutex::new(HashMap::new()),
        })
    }

    /// The demo outbox.
    pub fn outbox(&self) -> &DemoDelivery {
        self.verifier.delivery()
    }

    /// At startup on a shared store: refuses to serve when another instance
    /// names records with another lookup key (they would not share limits),
    /// or holds another secret under one of this one's key ids (codes one
    /// signs would fail on the other).
    pub async fn check_keys(&self) -> Result<(), Box<dyn std::error::Error>> {
        self.verifier.check_lookup_key().await?;
        self.verifier.check_signing_keys().await?;
        Ok(())
    }

    fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    fn new_session(&self, account: &str) -> String {
        let token = random_hex();
        let now = self.now();
        let mut sessions = lock(&self.sessions);
        sessions.retain(|_, s| s.expires_at > now);
        sessions.insert(
            token.clone(),
            Session {
                account: account.to_owned(),
                expires_at: now + SESSION_LIFETIME,
            },
        );
        token
    }

    /// The signed-in account, from the session cookie.
    fn session(&self, headers: &HeaderMap) -> Result<String, ApiError> {
        let now = self.now();
        cookie(headers, SESSION_COOKIE)
            .and_then(|token| {
                lock(&self.sessions)
                    .get(token)
                    .filter(|s| s.expires_at > now)
                    .map(|s| s.account.clone())
            })
            .ok_or_else(ApiError::unauthenticated)
    }

    fn remember_pending(
        &self,
        ticket: &Ticket,
        subject: Subject,
        destination: Destination,
        account: String,
    ) {
        let now = self.now();
        let mut pending = lock(&self.pending);
        pending.retain(|_, p| p.expires_at > now);
        match pending.entry(*ticket.challenge_id()) {
            // The same id again: a resend of this challenge, started by a
            // right password too.
            Entry::Occupied(mut e) => {
                e.get_mut().expires_at = ticket.expires_at();
            }
            Entry::Vacant(e) => {
                e.insert(PendingLogin {
                    subject,
                    destination,
                    account,
                    expires_at: ticket.expires_at(),
                });
            }
        }
    }

    /// Counts a failed password (or unknown address) for `email`.
    fn count_password_failure(&self, email: &str) {
        let now = self.now();
        let mut failures = lock(&self.password_failures);
        failures.retain(|_, (_, since)| now - *since < PASSWORD_FAILURE_WINDOW);
        let entry = failures.entry(email.to_owned()).or_insert((0, now));
        entry.0 += 1;
    }

    /// Whether `email` has had fewer than `MAX_PASSWORD_FAILURES` failures in
    /// the current window.
    fn password_failures_below_limit(&self, email: &str) -> bool {
        let now = self.now();
        lock(&self.password_failures)
            .get(email)
            .filter(|(_, since)| now - *since < PASSWORD_FAILURE_WINDOW)
            .is_none_or(|(n, _)| *n < MAX_PASSWORD_FAILURES)
    }

    fn pending(&self, id: &ChallengeId) -> Option<PendingLogin> {
        let now = self.now();
        lock(&self.pending)
            .get(id)
            .filter(|p| p.expires_at > now)
            .cloned()
    }
}

// ---------------------------------------------------------------------------
// Router
// ---------------------------------------------------------------------------

/// The service's routes over `state`.
pub fn app<S: CodeStore + 'static>(state: Arc<AppState<S>>) -> Router {
    Router::new()
        .route("/login", post(login::<S>))
        .route("/login/verify", post(login_verify::<S>))
        .route("/login/resend", post(login_resend::<S>))
        .route("/me", get(me::<S>))
        .route("/devices/revoke", post(revoke_devices::<S>))
        .route("/email/change", post(email_change::<S>))
        .route("/email/confirm", post(email_confirm::<S>))
        .with_state(state)
}

type AppResult = Result<Response, ApiError>;

#[derive(Deserialize)]
struct LoginBody {
    email: String,
    password: String,
}

/// Password, then: a remembered device is signed in at once; any other
/// device gets a code. An unknown address and a wrong password get the same
/// answer, so it tells nothing about which accounts exist; after 5 failures
/// in 15 minutes an address is refused for the rest of the window.
async fn login<S: CodeStore + 'static>(
    State(st): State<Arc<AppState<S>>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Json<LoginBody>, JsonRejection>,
) -> AppResult {
    let Json(body) = body.map_err(ApiError::bad_request)?;
    let email = normalize_email(&body.email);
    let destination = Destination::email(&email).map_err(|e| st.issue_error(e.into()))?;
    let subject = login_subject(&email).map_err(|e| st.issue_error(e.into()))?;
    let client = client_key(peer)?;
    // Too many failed sign-ins for the address lately: refused whatever the
    // password, known address or not, so guesses are slowed alike.
    if !st.password_failures_below_limit(&email) {
        return Err(ApiError::too_many_failures());
    }
    // A wrong password and an unknown address get the same answer, after the
    // same work. (Not a decoy challenge: a real challenge for a right password
    // and a decoy for a wrong one keep their own cooldowns, so the next
    // sign-in's answer would tell which the last one got, a password oracle no
    // limit slowed; a review found it. Decoys fit flows that go by the
    // identifier alone, chosen by whether the account exists.)
    let Some(account) = lock(&st.users).check_password(&email, &body.password) else {
        st.count_password_failure(&email);
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "wrong_email_or_password",
            "The email address or the password is not right.",
        ));
    };
    let device_known = match cookie(&headers, DEVICE_COOKIE).map(DeviceToken::parse) {
        Some(Ok(token)) => st.verifier.check_device(&subject, &token).await.is_ok(),
        _ => false,
    };
    if device_known {
        let session = st.new_session(&account);
        let mut resp = (
            StatusCode::OK,
            Json(json!({ "status": "logged_in", "email": email })),
        )
            .into_response();
        set_cookie(&mut resp, &session_cookie(&session));
        return Ok(resp);
    }
    let request = IssueRequest::new(
        Purpose::LoginNewDevice,
        subject.clone(),
        destination.clone(),
    )
    .client(client);
    let ticket = st.send(CodeSend::Issue(request)).await?;
    st.remember_pending(&ticket, subject, destination, account);
    Ok(challenge(&ticket))
}

#[derive(Deserialize)]
struct VerifyBody {
    challenge_id: String,
    code: String,
}

/// The code of a login challenge: signs in, and remembers the device.
async fn login_verify<S: CodeStore + 'static>(
    State(st): State<Arc<AppState<S>>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    body: Result<Json<VerifyBody>, JsonRejection>,
) -> AppResult {
    let Json(body) = body.map_err(ApiError::bad_request)?;
    let client = client_key(peer)?;
    let unknown = || st.verify_error(&VerifyError::UnknownChallenge);
    let id = ChallengeId::parse(body.challenge_id.trim()).map_err(|_| unknown())?;
    let pending = st.pending(&id).ok_or_else(unknown)?;
    let verified = st
        .verifier
        .verify_attempt(Attempt::new(&Purpose::LoginNewDevice, &id, &body.code).client(&client))
        .await
        .map_err(|e| st.verify_error(&e))?;
    lock(&st.pending).remove(&id);
    // Only a challenge this app started for the account (belt and braces:
    // ids name their subject).
    if *verified.subject() != pending.subject {
        return Err(unknown());
    }
    let account = pending.account;
    signed_in(st, &account, verified).await
}

async fn signed_in<S: CodeStore + 'static>(
    st: Arc<AppState<S>>,
    account: &str,
    verified: Verified,
) -> AppResult {
    let session = st.new_session(account);
    let device = match remember_device(Arc::clone(&st), verified.clone()).await {
        Ok(device) => Some(device),
        Err(e) => {
            // Signed in all the same; this device will be challenged again.
            eprintln!("could not remember the device: {e}");
            None
        }
    };
    let remembered_until = device.as_ref().map(|d| d.expires_at().unix_timestamp());
    let mut resp = (
        StatusCode::OK,
        Json(json!({
            "status": "logged_in",
            "email": verified.destination().address(),
            "device_remembered_until": remembered_until,
        })),
    )
        .into_response();
    set_cookie(&mut resp, &session_cookie(&session));
    if let Some(device) = device {
        let max_age = (device.expires_at() - st.now()).whole_seconds().max(0);
        set_cookie(
            &mut resp,
            &format!(
                "{DEVICE_COOKIE}={}; Max-Age={max_age}; {COOKIE_ATTRIBUTES}",
                device.token().expose()
            ),
        );
    }
    Ok(resp)
}

/// Remembers the device that just verified.
async fn remember_device<S: CodeStore + 'static>(
    st: Arc<AppState<S>>,
    verified: Verified,
) -> Result<RememberedDevice, String> {
    st.verifier
        .remember_device(&verified)
        .await
        .map_err(|e| e.to_string())
}

#[derive(Deserialize)]
struct ResendBody {
    challenge_id: String,
}

/// Another code for a login challenge, after the cooldown.
async fn login_resend<S: CodeStore + 'static>(
    State(st): State<Arc<AppState<S>>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    body: Result<Json<ResendBody>, JsonRejection>,
) -> AppResult {
    let Json(body) = body.map_err(ApiError::bad_request)?;
    let client = client_key(peer)?;
    let unknown = || st.issue_error(IssueError::UnknownChallenge);
    let id = ChallengeId::parse(body.challenge_id.trim()).map_err(|_| unknown())?;
    // Only ids this app handed out, and not expired.
    st.pending(&id).ok_or_else(unknown)?;
    let ticket = st.send(CodeSend::Resend(id, client)).await?;
    if ticket.challenge_id() != &id {
        return Err(unknown());
    }
    Ok(challenge(&ticket))
}

/// The signed-in account.
async fn me<S: CodeStore>(State(st): State<Arc<AppState<S>>>, headers: HeaderMap) -> AppResult {
    let account = st.session(&headers)?;
    let email = lock(&st.users).email_of(&account);
    Ok(Json(json!({ "account": account, "email": email })).into_response())
}

/// Forgets every remembered device of the signed-in account and ends its
/// other sessions ("sign out everywhere", "I lost my phone"): each device is
/// challenged at its next login. The session that asked stays.
async fn revoke_devices<S: CodeStore>(
    State(st): State<Arc<AppState<S>>>,
    headers: HeaderMap,
) -> AppResult {
    let account = st.session(&headers)?;
    let own = cookie(&headers, SESSION_COOKIE).map(str::to_owned);
    lock(&st.sessions).retain(|token, s| s.account != account || Some(token) == own.as_ref());
    let email = lock(&st.users)
        .email_of(&account)
        .ok_or_else(ApiError::unauthenticated)?;
    let subject = login_subject(&email).map_err(|e| st.issue_error(e.into()))?;
    st.verifier
        .forget_all_devices(&subject)
        .await
        .map_err(|e| st.store_error(&e))?;
    let mut resp = Json(json!({ "status": "devices_revoked" })).into_response();
    set_cookie(
        &mut resp,
        &format!("{DEVICE_COOKIE}=; Max-Age=0; {COOKIE_ATTRIBUTES}"),
    );
    Ok(resp)
}

#[derive(Deserialize)]
struct EmailChangeBody {
    new_email: String,
    /// The current password: a session alone (a stolen cookie, a computer
    /// left signed in) must not move the account to another address.
    password: String,
}

/// Asks for the current password again, then sends a code to the new
/// address, bound to it: it confirms that address and no other.
async fn email_change<S: CodeStore + 'static>(
    State(st): State<Arc<AppState<S>>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Json<EmailChangeBody>, JsonRejection>,
) -> AppResult {
    let account = st.session(&headers)?;
    let Json(body) = body.map_err(ApiError::bad_request)?;
    let client = client_key(peer)?;
    let new_email = normalize_email(&body.new_email);
    let destination = Destination::email(&new_email).map_err(|e| st.issue_error(e.into()))?;
    let Some(current) = lock(&st.users).email_of(&account) else {
        return Err(ApiError::unauthenticated());
    };
    // The password counts against the same limit as a sign-in's: a session
    // is no way around it.
    if !st.password_failures_below_limit(&current) {
        return Err(ApiError::too_many_failures());
    }
    if lock(&st.users).check_password(&current, &body.password) != Some(account.clone()) {
        st.count_password_failure(&current);
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "wrong_password",
            "The password is not right.",
        ));
    }
    if current == new_email {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "same_email",
            "That is already your email address.",
        ));
    }
    let subject = Subject::new(&account).map_err(|e| st.issue_error(e.into()))?;
    let context = email_change_context(&new_email).map_err(|e| st.issue_error(e.into()))?;
    let request = IssueRequest::new(Purpose::CredentialChange, subject, destination)
        .bind(context)
        .client(client);
    let ticket = st.send(CodeSend::Issue(request)).await?;
    Ok(challenge(&ticket))
}

#[derive(Deserialize)]
struct EmailConfirmBody {
    challenge_id: String,
    code: String,
    new_email: String,
}

/// Confirms the change with the code, checked against the address submitted
/// now: a code sent to one address confirms that address only.
async fn email_confirm<S: CodeStore>(
    State(st): State<Arc<AppState<S>>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Json<EmailConfirmBody>, JsonRejection>,
) -> AppResult {
    let account = st.session(&headers)?;
    let Json(body) = body.map_err(ApiError::bad_request)?;
    let client = client_key(peer)?;
    let unknown = || st.verify_error(&VerifyError::UnknownChallenge);
    let id = ChallengeId::parse(body.challenge_id.trim()).map_err(|_| unknown())?;
    let new_email = normalize_email(&body.new_email);
    let context = email_change_context(&new_email).map_err(|e| st.issue_error(e.into()))?;
    let verified = st
        .verifier
        .verify_attempt(
            Attempt::new(&Purpose::CredentialChange, &id, &body.code)
                .bound(&context)
                .client(&client),
        )
        .await
        .map_err(|e| st.verify_error(&e))?;
    if verified.subject().as_str() != account {
        // Another account's challenge: its code cannot be known here, so
        // this does not happen; refuse all the same.
        return Err(unknown());
    }
    let old_email = {
        let mut users = lock(&st.users);
        if users
            .accounts
            .iter()
            .any(|a| a.email == new_email && a.id != account)
        {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "email_taken",
                "That email address belongs to another account.",
            ));
        }
        let Some(a) = users.accounts.iter_mut().find(|a| a.id == account) else {
            return Err(ApiError::unauthenticated());
        };
        std::mem::replace(&mut a.email, new_email.clone())
    };
    // The old address hears of it: if the change was not the owner's, the
    // owner learns while the account can still be recovered.
    let masked = Destination::email(&new_email)
        .map_or_else(|_| String::new(), |d| d.masked().as_str().to_owned());
    st.outbox().notify(
        &old_email,
        &format!(
            "The email address of your account was changed to {masked}. If this was not you, contact support."
        ),
    );
    // Devices were remembered for the old sign-in address; a credential
    // change forgets them.
    if let Ok(old) = login_subject(&old_email)
        && let Err(e) = st.verifier.forget_all_devices(&old).await
    {
        eprintln!("could not forget the devices after an email change: {e}");
    }
    Ok(Json(json!({ "status": "email_changed", "email": new_email })).into_response())
}

// ---------------------------------------------------------------------------
// Pieces
// ---------------------------------------------------------------------------

/// The `202` answer to "send me a code".
fn challenge(ticket: &Ticket) -> Response {
    let masked = ticket.masked_destination().as_str();
    let message = format!("We sent a code to {masked}.");
    (
        StatusCode::ACCEPTED,
        Json(json!({
            "status": "challenge",
            "challenge_id": ticket.challenge_id().to_string(),
            "channel": ticket.channel().as_str(),
            "masked_destination": masked,
            "expires_at": ticket.expires_at().unix_timestamp(),
            "resend_after": ticket.resend_after().map(OffsetDateTime::unix_timestamp),
            "attempts_left": ticket.attempts_left(),
            "message": message,
        })),
    )
        .into_response()
}

/// Addresses are compared trimmed and lower-cased.
fn normalize_email(typed: &str) -> String {
    typed.trim().to_ascii_lowercase()
}

/// The subject of login challenges and remembered devices: the sign-in
/// address (normalized). A flow that answered unknown addresses with decoys
/// (`issue_decoy`) would build real and decoy requests from the same
/// normalized address (as `normalize_email` does here), never from the raw
/// text: a challenge id carries a keyed hash of its subject, the same for
/// any two challenges of one subject.
fn login_subject(email: &str) -> Result<Subject, vericode::InputError> {
    Subject::new(email)
}

/// The details an email-change code is bound to.
pub fn email_change_context(new_email: &str) -> Result<Context, vericode::InputError> {
    Context::new(format!("change-email:{new_email}"))
}

/// Rate limits count per peer address.
fn client_key(peer: SocketAddr) -> Result<ClientKey, ApiError> {
    ClientKey::new(&format!("ip:{}", peer.ip())).map_err(|_| ApiError::bad_request_plain())
}

fn random_hex() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn session_cookie(token: &str) -> String {
    format!("{SESSION_COOKIE}={token}; {COOKIE_ATTRIBUTES}")
}

fn set_cookie(resp: &mut Response, cookie: &str) {
    if let Ok(value) = HeaderValue::from_str(cookie) {
        resp.headers_mut().append(header::SET_COOKIE, value);
    }
}

/// The value of cookie `name`, if the request has it.
fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/// A JSON error: `{ "error": kind, "message": safe text, … }`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    kind: &'static str,
    message: String,
    attempts_left: Option<u32>,
    /// Seconds until a retry may work.
    retry_in: Option<i64>,
}

impl ApiError {
    fn new(status: StatusCode, kind: &'static str, message: &str) -> Self {
        ApiError {
            status,
            kind,
            message: message.to_owned(),
            attempts_left: None,
            retry_in: None,
        }
    }

    fn bad_request(rejection: JsonRejection) -> Self {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            &format!("The request is not valid: {}", rejection.body_text()),
        )
    }

    fn bad_request_plain() -> Self {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "The request is not valid.",
        )
    }

    fn too_many_failures() -> Self {
        ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_failures",
            "Too many failed sign-ins. Try again later.",
        )
    }

    fn unauthenticated() -> Self {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "Sign in first.",
        )
    }

    fn retry(mut self, now: OffsetDateTime, at: Option<OffsetDateTime>) -> Self {
        self.retry_in = at.map(|at| (at - now).whole_seconds().max(1));
        self
    }
}

impl<S: CodeStore> AppState<S> {
    /// Sends a code, its error as the API's.
    /// Runs a send on a task of its own. A handler's future is dropped when
    /// its client goes away, and a send dropped while the provider has its
    /// message counts as sent with no code stored (the person would meet
    /// the cooldown for nothing): spawned, it runs to the end.
    async fn send(self: &Arc<Self>, send: CodeSend) -> Result<Ticket, ApiError>
    where
        S: 'static,
    {
        let st = Arc::clone(self);
        let sent = tokio::spawn(async move {
            match send {
                CodeSend::Issue(request) => st.verifier.issue(&request).await,
                CodeSend::Resend(id, client) => st.verifier.resend_from(&id, &client).await,
            }
        })
        .await;
        match sent {
            Ok(result) => result.map_err(|e| self.issue_error(e)),
            Err(_) => Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "Something went wrong on our side. Try again later.",
            )),
        }
    }

    fn verify_error(&self, e: &VerifyError) -> ApiError {
        use StatusCode as C;
        let (status, kind, attempts_left, retry_at) = match e {
            VerifyError::WrongCode { attempts_left } => {
                (C::UNAUTHORIZED, "wrong_code", Some(*attempts_left), None)
            }
            VerifyError::ContextMismatch { attempts_left } => {
                (C::FORBIDDEN, "context_mismatch", Some(*attempts_left), None)
            }
            VerifyError::TooManyAttempts => (C::FORBIDDEN, "too_many_attempts", Some(0), None),
            VerifyError::Expired => (C::NOT_FOUND, "expired", None, None),
            VerifyError::UnknownChallenge => (C::NOT_FOUND, "unknown_challenge", None, None),
            VerifyError::Locked { until } => (C::FORBIDDEN, "locked", None, *until),
            VerifyError::RateLimited { retry_after, .. } => (
                C::TOO_MANY_REQUESTS,
                "rate_limited",
                None,
                Some(*retry_after),
            ),
            VerifyError::TooSoon { retry_after } => {
                (C::TOO_MANY_REQUESTS, "too_soon", None, Some(*retry_after))
            }
            VerifyError::Malformed(_) => (C::BAD_REQUEST, "malformed_code", None, None),
            VerifyError::Store(e) => return self.store_error(e),
            _ => (C::SERVICE_UNAVAILABLE, "unavailable", None, None),
        };
        let mut err = ApiError::new(status, kind, e.user_message()).retry(self.now(), retry_at);
        err.attempts_left = attempts_left;
        err
    }

    fn issue_error(&self, e: IssueError) -> ApiError {
        use StatusCode as C;
        let (status, kind, retry_at) = match &e {
            IssueError::Input(_) => (C::BAD_REQUEST, "invalid_input", None),
            IssueError::Locked { until } => (C::FORBIDDEN, "locked", *until),
            IssueError::ResendTooSoon { retry_after } => {
                (C::TOO_MANY_REQUESTS, "resend_too_soon", Some(*retry_after))
            }
            IssueError::SendLimit { retry_after } => {
                (C::TOO_MANY_REQUESTS, "send_limit", Some(*retry_after))
            }
            IssueError::RateLimited { retry_after, .. } => {
                (C::TOO_MANY_REQUESTS, "rate_limited", Some(*retry_after))
            }
            IssueError::CountryNotAllowed { .. } => (C::FORBIDDEN, "country_not_allowed", None),
            IssueError::UnknownChallenge => (C::NOT_FOUND, "unknown_challenge", None),
            IssueError::Store(_) | IssueError::Delivery(_) => {
                // Errors name no code or address: safe to log.
                eprintln!("could not send a code: {e}");
                (C::SERVICE_UNAVAILABLE, "unavailable", None)
            }
            _ => (C::SERVICE_UNAVAILABLE, "unavailable", None),
        };
        ApiError::new(status, kind, e.user_message()).retry(self.now(), retry_at)
    }

    fn store_error(&self, e: &StoreError) -> ApiError {
        eprintln!("store error: {e}");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "Something went wrong on our side. Try again in a moment.",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({ "error": self.kind, "message": self.message });
        if let Some(n) = self.attempts_left {
            body["attempts_left"] = Value::from(n);
        }
        if let Some(s) = self.retry_in {
            body["retry_after_seconds"] = Value::from(s);
        }
        let mut resp = (self.status, Json(body)).into_response();
        if let Some(s) = self.retry_in {
            resp.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(u64::try_from(s).unwrap_or(1)),
            );
        }
        resp
    }
}
