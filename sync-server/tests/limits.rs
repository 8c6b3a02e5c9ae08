//! Hostile input at the edges: oversized bodies, junk space ids, unknown routes.

mod common;

use axum::body::{Body, Bytes};
use axum::http::{Request, StatusCode};
use common::{Couple, Relay};
use duet_core::protocol::MAX_BODY_BYTES;

#[tokio::test]
async fn an_oversized_body_with_content_length_is_413_json() {
    let c = Couple::new().await;
    let before = c.relay.event_count();
    let body = vec![0u8; MAX_BODY_BYTES + 1];
    let req = Request::post(common::events_path(&c.space))
        .header("content-length", body.len().to_string())
        .body(Body::from(body))
        .expect("request");
    let a = c.relay.send(req).await;
    assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(a.header("content-type"), Some("application/json"));
    assert_eq!(a.error().error, "too_large");
    assert_eq!(c.relay.event_count(), before);
}

#[tokio::test]
async fn an_oversized_chunked_body_without_content_length_is_413_json() {
    let c = Couple::new().await;
    let chunk = Bytes::from(vec![0u8; 1024 * 1024]);
    let chunks =
        (0..=MAX_BODY_BYTES / chunk.len()).map(move |_| Ok::<_, std::io::Error>(chunk.clone()));
    let req = Request::post(common::events_path(&c.space))
        .body(Body::from_stream(futures_util::stream::iter(chunks)))
        .expect("request");
    assert!(req.headers().get("content-length").is_none());
    let a = c.relay.send(req).await;
    assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(a.error().error, "too_large");
}

#[tokio::test]
async fn an_event_over_the_event_limit_is_413() {
    let c = Couple::new().await;
    let big = vec![0u8; duet_core::event::MAX_EVENT_BYTES + 1];
    let a = c
        .relay
        .push_raw(
            &common::events_path(&c.space),
            duet_core::protocol::encode_batch([big.as_slice()]),
        )
        .await;
    assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(a.error().error, "too_large");
}

#[tokio::test]
async fn junk_space_ids_are_refused_without_touching_the_database() {
    let c = Couple::new().await;
    let before = c.relay.event_count();
    let valid = c.space.to_string();
    let junk = [
        "..%2F..".to_string(),
        "%2e%2e".to_string(),
        "..".to_string(),
        format!("{valid}0"),
        valid.to_uppercase(),
        format!("{}%00", &valid[..31]),
        "%00".to_string(),
        "%FF%FE".to_string(),
        format!("{}g", &valid[..31]),
        format!(" {}", &valid[..31]).replace(' ', "%20"),
    ];
    for id in junk {
        let path = format!("/v1/spaces/{id}/events");
        let push = c.relay.push_raw(&path, b"\0\0\0\x01x".to_vec()).await;
        assert!(
            matches!(push.status, StatusCode::BAD_REQUEST | StatusCode::NOT_FOUND),
            "push to {path}: {}",
            push.status
        );
        let auth = c.alex.read_auth(&path, "");
        let read = c.relay.read_with(&path, "", Some(&auth)).await;
        assert!(
            matches!(read.status, StatusCode::BAD_REQUEST | StatusCode::NOT_FOUND),
            "read of {path}: {}",
            read.status
        );
        for a in [push, read] {
            let code = a.error().error;
            assert!(
                code == "bad_space_id" || code == "not_found",
                "{path}: {code}"
            );
        }
    }
    assert_eq!(c.relay.event_count(), before);
}

#[tokio::test]
async fn unknown_routes_and_methods_get_json_errors_and_healthz_is_ok() {
    let relay = Relay::new();
    let a = relay
        .send(
            Request::get("/v2/nothing")
                .body(Body::empty())
                .expect("request"),
        )
        .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert_eq!(a.error().error, "not_found");
    let a = relay
        .send(
            Request::delete("/healthz")
                .body(Body::empty())
                .expect("request"),
        )
        .await;
    assert_eq!(a.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(a.error().error, "method_not_allowed");
    let a = relay
        .send(
            Request::get("/healthz")
                .body(Body::empty())
                .expect("request"),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK);
    let v: serde_json::Value = serde_json::from_slice(&a.body).expect("json");
    assert_eq!(v, serde_json::json!({"status": "ok"}));
}
