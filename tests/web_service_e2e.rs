//! End to end: the `web_service` example's own router (the same `app.rs`,
//! included below) served on a loopback port and driven over real HTTP with a
//! real client (ureq), the way a browser or a mobile app would.
//!
//! Time moves by a `ManualClock`; nothing sleeps. Codes are read from the
//! demo delivery's outbox, as the person would read them from their inbox.

#[path = "../examples/web_service/app.rs"]
#[allow(dead_code)]
mod app;

use std::net::SocketAddr;
use std::sync::Arc;

use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};
use vericode::{ManualClock, MemoryStore, SecretKey};

use app::{AppState, DEMO_USERS, DemoDelivery};

const ANA: (&str, &str) = (DEMO_USERS[0].1, DEMO_USERS[0].2);
const BEN: (&str, &str) = (DEMO_USERS[1].1, DEMO_USERS[1].2);
const WRONG_CODE_MESSAGE: &str = "That code is not right. Check the message and try again.";

/// The service on 127.0.0.1:<free port>, its state (for the outbox), its
/// clock, and an HTTP client.
struct Service {
    state: Arc<AppState<MemoryStore>>,
    clock: ManualClock,
    agent: ureq::Agent,
    base: String,
    // Dropped last: stops the server.
    _rt: tokio::runtime::Runtime,
}

/// One HTTP answer.
#[derive(Debug)]
struct Reply {
    status: u16,
    json: Value,
    set_cookies: Vec<String>,
    retry_after: Option<String>,
}

impl Reply {
    /// The value a `Set-Cookie` of this reply gives cookie `name`.
    fn cookie(&self, name: &str) -> Option<String> {
        self.set_cookie(name).map(|c| {
            c[name.len() + 1..]
                .split(';')
                .next()
                .unwrap_or("")
                .to_owned()
        })
    }

    /// The whole `Set-Cookie` line for cookie `name`.
    fn set_cookie(&self, name: &str) -> Option<&str> {
        self.set_cookies
            .iter()
            .find(|c| c.starts_with(&format!("{name}=")))
            .map(String::as_str)
    }

    fn str(&self, key: &str) -> &str {
        self.json[key]
            .as_str()
            .unwrap_or_else(|| panic!("no string {key:?} in {}", self.json))
    }
}

impl Service {
    fn start() -> Service {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime");
        let clock = ManualClock::new(OffsetDateTime::from_unix_timestamp(1_750_000_000).unwrap());
        let state = Arc::new(
            AppState::new(
                MemoryStore::new(),
                DemoDelivery::quiet(),
                Arc::new(clock.clone()),
                SecretKey::generate(),
                None,
            )
            .expect("the demo configuration builds"),
        );
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("a loopback port");
        let addr = listener.local_addr().unwrap();
        let router = app::app(Arc::clone(&state));
        rt.spawn(async move {
            axum::serve(
                listener,
                router.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
            .expect("the service runs");
        });
        // A fresh connection for every request: the server may close a
        // connection after an answer (an error sent before the request's
        // body was read), and a POST sent on a pooled connection it just
        // closed fails with "peer disconnected" (seen about once in 15 runs).
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_idle_connections(0)
            .build()
            .new_agent();
        Service {
            state,
            clock,
            agent,
            base: format!("http://{addr}"),
            _rt: rt,
        }
    }

    fn post(&self, path: &str, body: &Value, cookies: &[(&str, &str)]) -> Reply {
        let mut req = self
            .agent
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json");
        if let Some(c) = cookie_header(cookies) {
            req = req.header("cookie", c);
        }
        reply(req.send(body.to_string()).expect("an HTTP answer"))
    }

    fn get(&self, path: &str, cookies: &[(&str, &str)]) -> Reply {
        let mut req = self.agent.get(format!("{}{path}", self.base));
        if let Some(c) = cookie_header(cookies) {
            req = req.header("cookie", c);
        }
        reply(req.call().expect("an HTTP answer"))
    }

    fn login(&self, (email, password): (&str, &str), cookies: &[(&str, &str)]) -> Reply {
        self.post(
            "/login",
            &json!({ "email": email, "password": password }),
            cookies,
        )
    }

    fn verify(&self, challenge_id: &str, code: &str) -> Reply {
        self.post(
            "/login/verify",
            &json!({ "challenge_id": challenge_id, "code": code }),
            &[],
        )
    }

    fn resend(&self, challenge_id: &str) -> Reply {
        self.post(
            "/login/resend",
            &json!({ "challenge_id": challenge_id }),
            &[],
        )
    }

    /// The code in the latest message to `address`.
    fn code_sent_to(&self, address: &str) -> String {
        self.state
            .outbox()
            .last_to(address)
            .unwrap_or_else(|| panic!("no message to {address}"))
            .code
    }

    fn sent_to(&self, address: &str) -> usize {
        self.state
            .outbox()
            .sent()
            .iter()
            .filter(|m| m.destination.address() == address)
            .count()
    }

    /// Signs in from a new device; returns (session, device) cookies.
    fn sign_in(&self, who: (&str, &str)) -> (String, String) {
        let r = self.login(who, &[]);
        assert_eq!(r.status, 202, "{r:?}");
        let r = self.verify(r.str("challenge_id"), &self.code_sent_to(who.0));
        assert_eq!(r.status, 200, "{r:?}");
        (r.cookie("session").unwrap(), r.cookie("device").unwrap())
    }
}

fn cookie_header(cookies: &[(&str, &str)]) -> Option<String> {
    (!cookies.is_empty()).then(|| {
        cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    })
}

fn reply(mut resp: ureq::http::Response<ureq::Body>) -> Reply {
    let status = resp.status().as_u16();
    let set_cookies = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    let retry_after = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    let text = resp.body_mut().read_to_string().expect("a body");
    let json = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("status {status}: not JSON ({e}): {text:?}"));
    Reply {
        status,
        json,
        set_cookies,
        retry_after,
    }
}

/// A code that differs from `code` in every digit.
fn wrong(code: &str) -> String {
    code.chars()
        .map(|c| char::from_digit((c.to_digit(10).unwrap() + 1) % 10, 10).unwrap())
        .collect()
}

fn assert_protected_cookie(line: &str) {
    for attribute in ["Secure", "HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(
            line.split(';').any(|a| a.trim() == attribute),
            "{attribute} missing from {line:?}"
        );
    }
}

#[test]
fn a_new_device_is_challenged_then_remembered_until_revoked() {
    let s = Service::start();

    // A device the account has not seen: a challenge, and a code by email.
    let r = s.login(ANA, &[]);
    assert_eq!(r.status, 202, "{r:?}");
    assert_eq!(r.str("status"), "challenge");
    assert_eq!(r.str("masked_destination"), "a•••@example.com");
    assert_eq!(r.json["attempts_left"], 5);
    assert!(r.set_cookies.is_empty(), "no session before the code");
    let id = r.str("challenge_id").to_owned();
    assert_eq!(s.sent_to(ANA.0), 1);

    // Asking again at once is refused with the cooldown; after it, another
    // code for the same challenge.
    let r = s.resend(&id);
    assert_eq!(r.status, 429, "{r:?}");
    assert_eq!(r.str("error"), "resend_too_soon");
    assert_eq!(r.json["retry_after_seconds"], 30);
    assert_eq!(r.retry_after.as_deref(), Some("30"));
    s.clock.advance(Duration::seconds(31));
    let r = s.resend(&id);
    assert_eq!(r.status, 202, "{r:?}");
    assert_eq!(r.str("challenge_id"), id);
    assert_eq!(s.sent_to(ANA.0), 2);
    let code = s.code_sent_to(ANA.0);

    // Not a code at all: refused, not counted.
    let r = s.verify(&id, "12ab");
    assert_eq!(r.status, 400, "{r:?}");
    assert_eq!(r.str("error"), "malformed_code");

    // A wrong code: 401, with the attempts left and the safe message.
    let r = s.verify(&id, &wrong(&code));
    assert_eq!(r.status, 401, "{r:?}");
    assert_eq!(r.str("error"), "wrong_code");
    assert_eq!(r.str("message"), WRONG_CODE_MESSAGE);
    assert_eq!(r.json["attempts_left"], 4);
    assert!(r.set_cookies.is_empty());

    // The right code: signed in, and the device remembered.
    let r = s.verify(&id, &code);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.str("status"), "logged_in");
    let session = r.cookie("session").expect("a session cookie");
    let device = r.cookie("device").expect("a remembered-device cookie");
    assert_protected_cookie(r.set_cookie("session").unwrap());
    let device_line = r.set_cookie("device").unwrap();
    assert_protected_cookie(device_line);
    assert!(device_line.contains("Max-Age=2592000"), "{device_line}"); // 30 days
    assert_eq!(device.len(), 64);

    // A code works once.
    let r = s.verify(&id, &code);
    assert_eq!(r.status, 404, "{r:?}");
    assert_eq!(r.str("error"), "unknown_challenge");

    // The session works; without it, 401.
    let r = s.get("/me", &[("session", &session)]);
    assert_eq!((r.status, r.str("email")), (200, ANA.0), "{r:?}");
    let r = s.get("/me", &[]);
    assert_eq!((r.status, r.str("error")), (401, "unauthenticated"));

    // The same device signs in again without a code.
    let r = s.login(ANA, &[("device", &device)]);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.str("status"), "logged_in");
    let second_session = r.cookie("session").expect("a new session");
    assert_ne!(second_session, session);
    assert_eq!(s.sent_to(ANA.0), 2, "no code for a remembered device");

    // The device cookie never replaces the password.
    let r = s.login((ANA.0, "not-the-password"), &[("device", &device)]);
    assert_eq!((r.status, r.str("error")), (401, "wrong_email_or_password"));
    assert!(r.set_cookies.is_empty());
    assert_eq!(s.sent_to(ANA.0), 2, "nothing sent for a wrong password");

    // Ana's device is not Ben's.
    let r = s.login(BEN, &[("device", &device)]);
    assert_eq!(r.status, 202, "{r:?}");
    assert_eq!(s.sent_to(BEN.0), 1);

    // Revoking needs a session; it forgets every device and clears the cookie.
    let r = s.post("/devices/revoke", &json!({}), &[]);
    assert_eq!((r.status, r.str("error")), (401, "unauthenticated"));
    let r = s.post("/devices/revoke", &json!({}), &[("session", &session)]);
    assert_eq!(r.status, 200, "{r:?}");
    let cleared = r
        .set_cookie("device")
        .expect("the device cookie is cleared");
    assert!(cleared.starts_with("device=;") && cleared.contains("Max-Age=0"));
    // It also ends the account's other sessions (found by an audit: "sign out
    // everywhere" left them alive); the one that asked stays.
    let r = s.get("/me", &[("session", &second_session)]);
    assert_eq!(r.status, 401, "{r:?}");
    let r = s.get("/me", &[("session", &session)]);
    assert_eq!(r.status, 200, "{r:?}");

    // The old cookie is challenged again.
    let r = s.login(ANA, &[("device", &device)]);
    assert_eq!(r.status, 202, "{r:?}");
    assert_eq!(r.str("status"), "challenge");
    assert_eq!(s.sent_to(ANA.0), 3);
    let r = s.verify(r.str("challenge_id"), &s.code_sent_to(ANA.0));
    assert_eq!(r.status, 200, "{r:?}");
    let new_device = r.cookie("device").unwrap();
    assert_ne!(new_device, device);

    // A device remembered after the revocation works; the old one still not.
    let r = s.login(ANA, &[("device", &new_device)]);
    assert_eq!((r.status, r.str("status")), (200, "logged_in"), "{r:?}");
    s.clock.advance(Duration::seconds(301));
    let r = s.login(ANA, &[("device", &device)]);
    assert_eq!(r.status, 202, "{r:?}");
}

#[test]
fn failed_sign_ins_slow_guessing_for_known_and_unknown_addresses_alike() {
    // Found by an audit: with a device cookie, the right password answered
    // 200 at any time, so guesses ran on with no limit. After 5 failures in
    // 15 minutes an address is refused for the rest of the window, the right
    // password too, remembered device or not; an unknown address the same.
    let s = Service::start();
    let (_, device) = s.sign_in(ANA);
    let sent = s.sent_to(ANA.0);
    let with_device = [("device", device.as_str())];
    for (who, cookies) in [(ANA.0, &with_device[..]), ("nobody@example.com", &[][..])] {
        for i in 0..5 {
            let r = s.login((who, &format!("guess-{i}")), cookies);
            assert_eq!((r.status, r.str("error")), (401, "wrong_email_or_password"));
            assert!(r.set_cookies.is_empty());
        }
        let r = s.login((who, ANA.1), cookies);
        assert_eq!(
            (r.status, r.str("error")),
            (429, "too_many_failures"),
            "{r:?}"
        );
    }
    assert_eq!(s.sent_to(ANA.0), sent, "nothing sent meanwhile");
    // Once the window has passed, the device signs in again at once.
    s.clock.advance(Duration::minutes(15));
    let r = s.login(ANA, &with_device);
    assert_eq!(r.status, 200, "{r:?}");
}

#[test]
fn an_email_change_is_confirmed_only_for_the_bound_address() {
    let s = Service::start();
    let (session, _) = s.sign_in(ANA);
    let new = "ana.new@example.net";

    // Needs a session.
    let r = s.post(
        "/email/change",
        &json!({ "new_email": new, "password": ANA.1 }),
        &[],
    );
    assert_eq!((r.status, r.str("error")), (401, "unauthenticated"));

    // And the password again: a session alone (a stolen cookie) cannot move
    // the account. A wrong one sends nothing.
    let sent = s.state.outbox().sent().len();
    let r = s.post(
        "/email/change",
        &json!({ "new_email": new, "password": "not-ana's" }),
        &[("session", &session)],
    );
    assert_eq!((r.status, r.str("error")), (401, "wrong_password"), "{r:?}");
    let r = s.post(
        "/email/change",
        &json!({ "new_email": new }),
        &[("session", &session)],
    );
    assert_eq!(r.status, 400, "no password: {r:?}");
    assert_eq!(s.state.outbox().sent().len(), sent);

    // The code goes to the new address (as typed, normalized).
    let r = s.post(
        "/email/change",
        &json!({ "new_email": " Ana.New@Example.NET ", "password": ANA.1 }),
        &[("session", &session)],
    );
    assert_eq!(r.status, 202, "{r:?}");
    assert_eq!(r.str("masked_destination"), "a•••@example.net");
    let id = r.str("challenge_id").to_owned();
    let code = s.code_sent_to(new);

    // Confirming needs the session too.
    let confirm = |code: &str, address: &str, cookies: &[(&str, &str)]| {
        s.post(
            "/email/confirm",
            &json!({ "challenge_id": id, "code": code, "new_email": address }),
            cookies,
        )
    };
    let r = confirm(&code, new, &[]);
    assert_eq!((r.status, r.str("error")), (401, "unauthenticated"));

    // A wrong code, for the right address.
    let r = confirm(&wrong(&code), new, &[("session", &session)]);
    assert_eq!(r.status, 401, "{r:?}");
    assert_eq!(r.str("error"), "wrong_code");
    assert_eq!(r.json["attempts_left"], 4);

    // The right code, for another address: refused, and nothing changes.
    let r = confirm(&code, "mallory@example.com", &[("session", &session)]);
    assert_eq!(r.status, 403, "{r:?}");
    assert_eq!(r.str("error"), "context_mismatch");
    assert_eq!(r.str("message"), WRONG_CODE_MESSAGE);
    assert_eq!(r.json["attempts_left"], 3);
    let r = s.get("/me", &[("session", &session)]);
    assert_eq!(r.str("email"), ANA.0);

    // The right code for the address it was sent to: confirmed.
    let r = confirm(&code, new, &[("session", &session)]);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.str("email"), new);
    let r = s.get("/me", &[("session", &session)]);
    assert_eq!(r.str("email"), new);
    // The old address is told, without the new one in full.
    let notices = s.state.outbox().notices_to(ANA.0);
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert!(notices[0].contains("a•••@example.net"), "{notices:?}");
    assert!(!notices[0].contains(new), "{notices:?}");

    // Ana now signs in with the new address (and a code goes there); the old
    // address is an unknown one: the same answer, and nothing sent to it.
    let before_old = s.sent_to(ANA.0);
    let r = s.login((new, ANA.1), &[]);
    assert_eq!(r.status, 202, "{r:?}");
    assert_eq!(s.code_sent_to(new).len(), 6);
    assert_eq!(s.sent_to(new), 2);
    let r = s.login(ANA, &[]);
    assert_eq!((r.status, r.str("error")), (401, "wrong_email_or_password"));
    assert_eq!(s.sent_to(ANA.0), before_old);

    // An address of another account can be confirmed by code, but not taken.
    let r = s.post(
        "/email/change",
        &json!({ "new_email": BEN.0, "password": ANA.1 }),
        &[("session", &session)],
    );
    assert_eq!(r.status, 202, "{r:?}");
    let r = s.post(
        "/email/confirm",
        &json!({
            "challenge_id": r.str("challenge_id"),
            "code": s.code_sent_to(BEN.0),
            "new_email": BEN.0,
        }),
        &[("session", &session)],
    );
    assert_eq!((r.status, r.str("error")), (409, "email_taken"), "{r:?}");
}

/// A session does not lift the password limit: wrong passwords at an email
/// change count with the sign-ins' failures, and after five the right
/// password is refused too, at sign-in as well.
#[test]
fn an_email_change_counts_wrong_passwords_with_sign_ins() {
    let s = Service::start();
    let (session, device) = s.sign_in(ANA);
    let change = |password: &str| {
        s.post(
            "/email/change",
            &json!({ "new_email": "ana.new@example.net", "password": password }),
            &[("session", &session)],
        )
    };
    for _ in 0..5 {
        let r = change("guess");
        assert_eq!((r.status, r.str("error")), (401, "wrong_password"), "{r:?}");
    }
    let r = change(ANA.1);
    assert_eq!(
        (r.status, r.str("error")),
        (429, "too_many_failures"),
        "{r:?}"
    );
    let r = s.login(ANA, &[("device", &device)]);
    assert_eq!(
        (r.status, r.str("error")),
        (429, "too_many_failures"),
        "{r:?}"
    );
    assert_eq!(s.sent_to("ana.new@example.net"), 0);
    s.clock.advance(Duration::minutes(15));
    let r = change(ANA.1);
    assert_eq!(r.status, 202, "{r:?}");
}

/// An unknown address and a wrong password get one answer, so it tells no
/// one which accounts exist. (The example once gave both a decoy challenge
/// and a right password a real one; a review found that the two kinds keep
/// their own cooldowns, so the next sign-in's answer told whether the last
/// password was right: 429 after a wrong one, 202 after the right one.)
#[test]
fn an_unknown_address_and_a_wrong_password_get_one_answer() {
    let s = Service::start();
    let unknown = s.login(("nobody@example.com", "whatever"), &[]);
    let wrong_password = s.login((ANA.0, "not-the-password"), &[]);
    for r in [&unknown, &wrong_password] {
        assert_eq!(
            (r.status, r.str("error")),
            (401, "wrong_email_or_password"),
            "{r:?}"
        );
        assert_eq!(r.json, unknown.json);
        assert!(r.set_cookies.is_empty());
    }
    // Again, after one failure each: still the same, and nothing was sent.
    let unknown_again = s.login(("nobody@example.com", "other"), &[]);
    let wrong_again = s.login((ANA.0, "other"), &[]);
    assert_eq!(unknown_again.json, wrong_again.json);
    assert_eq!(unknown_again.status, wrong_again.status);
    assert!(s.state.outbox().sent().is_empty(), "nothing sent");
    // The right password gets a code.
    let real = s.login(ANA, &[]);
    assert_eq!(
        (real.status, real.str("status")),
        (202, "challenge"),
        "{real:?}"
    );
    assert_eq!(s.sent_to(ANA.0), 1);

    // Ids that name no challenge, and requests that are not valid.
    let well_formed = format!("{}B{}", "A".repeat(31), "A".repeat(43));
    let r = s.verify(&well_formed, "123456");
    assert_eq!((r.status, r.str("error")), (404, "unknown_challenge"));
    let r = s.verify(
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "123456",
    );
    assert_eq!((r.status, r.str("error")), (404, "unknown_challenge"));
    let r = s.verify("not an id", "123456");
    assert_eq!((r.status, r.str("error")), (404, "unknown_challenge"));
    let r = s.post("/login", &json!({ "email": "ana@" }), &[]);
    assert_eq!((r.status, r.str("error")), (400, "bad_request"), "{r:?}");
    let r = s.login(("not an address", "x"), &[]);
    assert_eq!((r.status, r.str("error")), (400, "invalid_input"), "{r:?}");
    assert!(!r.str("message").is_empty());
}
