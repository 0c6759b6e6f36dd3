//! Every `Verifier` future is `Send`, so it can be spawned on a multi-threaded
//! runtime (this is a compile-time check that also runs).

mod common;

use std::sync::Arc;

use common::*;
use vericode::{Context, MemoryStore, RecordingDelivery, SystemClock, Verifier};

fn assert_send<T: Send>(t: T) -> T {
    t
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verifier_futures_spawn_on_tokio() {
    let v: Arc<Verifier<MemoryStore, RecordingDelivery, SystemClock>> = Arc::new(
        Verifier::builder()
            .store(MemoryStore::new())
            .delivery(RecordingDelivery::new())
            .signing_key(vericode::KeyId::new(1), key(1))
            .lookup_key(key(200))
            .app_name("Acme")
            .build()
            .unwrap(),
    );
    let v2 = v.clone();
    let ticket = tokio::spawn(async move { v2.issue(&login("u1")).await })
        .await
        .unwrap()
        .unwrap();
    let code = v.delivery().last_code().unwrap();
    let id = *ticket.challenge_id();
    let v3 = v.clone();
    drop(assert_send(v.resend(&id)));
    drop(assert_send(v.cancel(&id)));
    let ctx = Context::new("x").unwrap();
    drop(assert_send(v.verify_bound(
        &vericode::Purpose::LoginNewDevice,
        &id,
        "000000",
        &ctx,
    )));
    drop(assert_send(
        v.unlock(&vericode::Subject::new("u1").unwrap()),
    ));
    let ok = tokio::spawn(async move {
        v3.verify(&vericode::Purpose::LoginNewDevice, &id, &code)
            .await
    })
    .await
    .unwrap();
    assert!(ok.is_ok());
}
