//! Short-code pairing mailboxes (in memory, so on one router): only a member's signed
//! request opens one, at most four per space; each takes one claim; the sealed code is
//! read once, by the claimant's token; a burned mailbox says so.

mod common;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::{Answer, Couple};
use duet_core::identity::Identity;
use duet_core::protocol::{
    ErrorCode, PairingClaimed, PairingOffer, PairingOpened, ReadAuth, pairing_claim_path,
    pairing_claim_wait_path, pairing_path_of, pairing_seal_path, pairing_sealed_path,
    pairings_path,
};
use tower::ServiceExt;

const MSG_A: &str = "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB";

/// Sends `method path?query` through `router`, signed by `signer` when given.
async fn call(
    router: &Router,
    method: &str,
    (path, query): (&str, &str),
    body: Option<serde_json::Value>,
    signer: Option<&Identity>,
) -> Answer {
    let uri = if query.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{query}")
    };
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(id) = signer {
        for (name, value) in ReadAuth::sign(id, method, path, query).headers() {
            req = req.header(name, value);
        }
    }
    let body = match body {
        Some(v) => Body::from(v.to_string()),
        None => Body::empty(),
    };
    common::send_to(router.clone(), req.body(body).expect("request")).await
}

fn json<T: serde::de::DeserializeOwned>(a: &Answer) -> T {
    assert!(
        a.status.is_success(),
        "{} {}",
        a.status,
        String::from_utf8_lossy(&a.body)
    );
    serde_json::from_slice(&a.body).expect("JSON answer")
}

async fn open(router: &Router, c: &Couple) -> Answer {
    let body = serde_json::json!({ "msg": MSG_A, "lifetime_secs": 60 });
    call(
        router,
        "POST",
        (&pairings_path(&c.space), ""),
        Some(body),
        Some(&c.alex.id),
    )
    .await
}

#[tokio::test]
async fn only_a_members_signed_request_opens_a_mailbox_and_a_space_gets_four() {
    let c = Couple::new().await;
    let router = duet_relay::app(c.relay.state.clone());
    let path = pairings_path(&c.space);
    let body = || Some(serde_json::json!({ "msg": MSG_A }));

    let unsigned = call(&router, "POST", (&path, ""), body(), None).await;
    assert_eq!(unsigned.status, StatusCode::UNAUTHORIZED);
    let stranger = Identity::generate("Eve");
    let outsider = call(&router, "POST", (&path, ""), body(), Some(&stranger)).await;
    assert_eq!(outsider.error().error, ErrorCode::NotAMember);
    // A read's signature (method GET) does not open one.
    let mut req = Request::post(&path);
    for (name, value) in ReadAuth::sign(&c.alex.id, "GET", &path, "").headers() {
        req = req.header(name, value);
    }
    let as_read = router
        .clone()
        .oneshot(req.body(Body::from(MSG_A)).expect("request"))
        .await
        .expect("answer");
    assert_eq!(as_read.status(), StatusCode::UNAUTHORIZED);

    // A message that is not a SPAKE2 message (33 bytes, base64) opens nothing.
    for junk in ["x", "QUFB", &"QUFB".repeat(32)] {
        let body = Some(serde_json::json!({ "msg": junk, "lifetime_secs": 60 }));
        let refused = call(&router, "POST", (&path, ""), body, Some(&c.alex.id)).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{junk}");
        assert_eq!(refused.error().error, ErrorCode::Malformed, "{junk}");
    }

    for _ in 0..4 {
        let opened: PairingOpened = json(&open(&router, &c).await);
        assert!((1..=999).contains(&opened.nameplate), "{opened:?}");
    }
    let fifth = open(&router, &c).await;
    assert_eq!(fifth.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(fifth.error().error, ErrorCode::TooManyPairings);
}

#[tokio::test]
async fn a_mailbox_takes_one_claim_and_its_sealed_code_is_read_once_by_the_claimant() {
    let c = Couple::new().await;
    let router = duet_relay::app(c.relay.state.clone());
    let n = json::<PairingOpened>(&open(&router, &c).await).nameplate;
    let offer: PairingOffer =
        json(&call(&router, "GET", (&pairing_path_of(n), ""), None, None).await);
    assert_eq!(offer.msg, MSG_A);

    // Nothing claimed yet: the creator's long-poll comes back empty.
    let wait = pairing_claim_wait_path(&c.space, n);
    let empty = call(&router, "GET", (&wait, "wait=0"), None, Some(&c.alex.id)).await;
    assert_eq!(empty.status, StatusCode::NO_CONTENT);

    // A body that is not the JSON given in protocol.md is refused, and spends nothing.
    let claim_path = pairing_claim_path(n);
    let padded = serde_json::json!({ "msg": MSG_A, "confirm": "ab".repeat(32), "x": [[[1]]] });
    let refused = call(&router, "POST", (&claim_path, ""), Some(padded), None).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert_eq!(refused.error().error, ErrorCode::Malformed);
    let listed = serde_json::json!([MSG_A, "ab".repeat(32)]);
    let refused = call(&router, "POST", (&claim_path, ""), Some(listed), None).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(refused.error().message.contains("not a JSON object"));

    let claim = serde_json::json!({ "msg": MSG_A, "confirm": "ab".repeat(32) });
    let claimed: PairingClaimed = json(
        &call(
            &router,
            "POST",
            (&claim_path, ""),
            Some(claim.clone()),
            None,
        )
        .await,
    );
    let again = call(&router, "POST", (&claim_path, ""), Some(claim), None).await;
    assert_eq!(again.status, StatusCode::GONE);
    assert_eq!(again.error().error, ErrorCode::PairingUsed);
    let late = call(&router, "GET", (&pairing_path_of(n), ""), None, None).await;
    assert_eq!(late.error().error, ErrorCode::PairingUsed);

    let got = call(&router, "GET", (&wait, "wait=25"), None, Some(&c.alex.id)).await;
    assert_eq!(json::<serde_json::Value>(&got)["confirm"], "ab".repeat(32));
    let seal = serde_json::json!({ "sealed": "c2VhbGVk" });
    let sealed = call(
        &router,
        "POST",
        (&pairing_seal_path(&c.space, n), ""),
        Some(seal),
        Some(&c.alex.id),
    )
    .await;
    assert_eq!(sealed.status, StatusCode::NO_CONTENT);

    let read = pairing_sealed_path(n);
    let wrong = call(&router, "GET", (&read, "token=00&wait=0"), None, None).await;
    assert_eq!(wrong.error().error, ErrorCode::NoSuchPairing);
    let query = format!("token={}&wait=0", claimed.token);
    let first = call(&router, "GET", (&read, &query), None, None).await;
    assert_eq!(json::<serde_json::Value>(&first)["sealed"], "c2VhbGVk");
    let second = call(&router, "GET", (&read, &query), None, None).await;
    assert_eq!(second.error().error, ErrorCode::NoSuchPairing);
}

#[tokio::test]
async fn a_burned_mailbox_tells_the_waiting_claimant_at_once() {
    let c = Couple::new().await;
    let router = duet_relay::app(c.relay.state.clone());
    let n = json::<PairingOpened>(&open(&router, &c).await).nameplate;
    let claim = serde_json::json!({ "msg": MSG_A, "confirm": "cd".repeat(32) });
    let claimed: PairingClaimed = json(
        &call(
            &router,
            "POST",
            (&pairing_claim_path(n), ""),
            Some(claim),
            None,
        )
        .await,
    );
    let query = format!("token={}&wait=25", claimed.token);
    let read = pairing_sealed_path(n);
    let waiting = call(&router, "GET", (&read, &query), None, None);
    let abort = async {
        let seal_path = pairing_seal_path(&c.space, n);
        let body = serde_json::json!({ "abort": true });
        call(
            &router,
            "POST",
            (&seal_path, ""),
            Some(body),
            Some(&c.alex.id),
        )
        .await
    };
    let started = std::time::Instant::now();
    let (answer, aborted) = tokio::join!(waiting, abort);
    assert_eq!(aborted.status, StatusCode::NO_CONTENT);
    assert_eq!(answer.status, StatusCode::GONE);
    assert_eq!(answer.error().error, ErrorCode::PairingBurned);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "woken, not timed out"
    );
}
