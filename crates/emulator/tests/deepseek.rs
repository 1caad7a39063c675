//! The DeepSeek-compatible stand-in over loopback HTTP: keys, validation, deterministic
//! answers, usage and balance, and every scripted failure mode.

mod common;

use std::time::{Duration, Instant};

use common::*;
use flexus_emulator::config::DEFAULT_DEEPSEEK_KEY;
use serde_json::{Value, json};

fn summary_request(json_mode: bool) -> Value {
    let summary = json!({"pool": "team-a/web", "window_minutes": 120,
        "policy": {"metrics": [{"name": "cpu", "kind": "cpu", "target": 60}]},
        "observed": {"violation_minutes": 9.0, "idle_pct": 4.0}});
    let mut r = json!({"model": "deepseek-chat", "messages": [
        {"role": "system", "content": "Answer in json: {\"explanation\": \"...\", \"policy_patch\": {}}"},
        {"role": "user", "content": format!("Pool summary:\n{summary}")}]});
    if json_mode {
        r["response_format"] = json!({"type": "json_object"});
    }
    r
}

async fn chat(h: &Harness, key: &str, body: &Value) -> (u16, String) {
    let r = reqwest::Client::new()
        .post(format!("{}/chat/completions", h.base))
        .bearer_auth(key)
        .json(body)
        .send()
        .await
        .expect("chat call");
    let status = r.status().as_u16();
    (status, r.text().await.unwrap_or_default())
}

async fn script(h: &Harness, entries: Value) {
    h.post("/_emulator/deepseek", json!({ "script": entries }))
        .await;
}

#[tokio::test]
async fn a_pool_summary_gets_a_deterministic_json_answer_with_usage_counts() {
    let h = start(config()).await;
    let (status, body) = chat(&h, DEFAULT_DEEPSEEK_KEY, &summary_request(true)).await;
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    let content: Value =
        serde_json::from_str(v["choices"][0]["message"]["content"].as_str().unwrap()).unwrap();
    assert_eq!(content["policy_patch"]["metrics"][0]["target"], json!(51.0));
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    let u = &v["usage"];
    assert_eq!(
        u["total_tokens"].as_u64().unwrap(),
        u["prompt_tokens"].as_u64().unwrap() + u["completion_tokens"].as_u64().unwrap()
    );
    let (_, again) = chat(&h, DEFAULT_DEEPSEEK_KEY, &summary_request(true)).await;
    let again: Value = serde_json::from_str(&again).unwrap();
    assert_eq!(
        again["choices"][0]["message"]["content"], v["choices"][0]["message"]["content"],
        "the same prompt gets the same answer"
    );
    h.stop().await;
}

#[tokio::test]
async fn a_wrong_key_is_refused_with_401_and_a_spent_balance_with_402() {
    let h = start(config()).await;
    let (status, body) = chat(&h, "sk-wrong", &summary_request(true)).await;
    assert_eq!(status, 401, "{body}");
    let err: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(err["error"]["type"], "authentication_error");
    h.post("/_emulator/deepseek", json!({"balance_tokens": 0}))
        .await;
    let (status, body) = chat(&h, DEFAULT_DEEPSEEK_KEY, &summary_request(true)).await;
    assert_eq!(status, 402, "{body}");
    let b = reqwest::Client::new()
        .get(format!("{}/user/balance", h.base))
        .bearer_auth(DEFAULT_DEEPSEEK_KEY)
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(b["is_available"], false);
    h.stop().await;
}

#[tokio::test]
async fn scripted_errors_come_in_order_then_the_service_answers_again() {
    let h = start(config()).await;
    script(
        &h,
        json!([{"kind": "error", "status": 429, "times": 2}, {"kind": "error", "status": 503}]),
    )
    .await;
    let mut seen = Vec::new();
    for _ in 0..4 {
        seen.push(
            chat(&h, DEFAULT_DEEPSEEK_KEY, &summary_request(true))
                .await
                .0,
        );
    }
    assert_eq!(seen, vec![429, 429, 503, 200]);
    let (status, v) = h
        .ctl(
            reqwest::Method::POST,
            "/_emulator/deepseek",
            Some(json!({"script": [{"kind": "error", "status": 418}]})),
        )
        .await;
    assert_eq!(status, 400, "an unknown status is refused: {v}");
    h.stop().await;
}

#[tokio::test]
async fn a_slow_answer_is_preceded_by_blank_keep_alive_lines() {
    let h = start(config()).await;
    script(
        &h,
        json!([{"kind": "slow", "seconds": 0.6, "keepalive_seconds": 0.2}]),
    )
    .await;
    let t = Instant::now();
    let (status, body) = chat(&h, DEFAULT_DEEPSEEK_KEY, &summary_request(true)).await;
    assert_eq!(status, 200);
    assert!(
        t.elapsed() >= Duration::from_millis(550),
        "{:?}",
        t.elapsed()
    );
    assert!(body.starts_with('\n'), "keep-alive lines first: {body:?}");
    let v: Value = serde_json::from_str(body.trim_start()).expect("JSON after the blank lines");
    assert!(v["choices"][0]["message"]["content"].is_string());
    h.stop().await;
}

#[tokio::test]
async fn malformed_empty_truncated_and_injected_answers_are_served_on_request() {
    let h = start(config()).await;
    script(
        &h,
        json!([{"kind": "malformed"}, {"kind": "empty_content"}, {"kind": "truncated"}, {"kind": "inject"}]),
    )
    .await;
    let (_, malformed) = chat(&h, DEFAULT_DEEPSEEK_KEY, &summary_request(true)).await;
    assert!(serde_json::from_str::<Value>(&malformed).is_err());
    let (_, empty) = chat(&h, DEFAULT_DEEPSEEK_KEY, &summary_request(true)).await;
    let empty: Value = serde_json::from_str(&empty).unwrap();
    assert_eq!(empty["choices"][0]["message"]["content"], "");
    let (_, cut) = chat(&h, DEFAULT_DEEPSEEK_KEY, &summary_request(true)).await;
    let cut: Value = serde_json::from_str(&cut).unwrap();
    assert_eq!(cut["choices"][0]["finish_reason"], "length");
    assert!(
        serde_json::from_str::<Value>(cut["choices"][0]["message"]["content"].as_str().unwrap())
            .is_err()
    );
    let (_, injected) = chat(&h, DEFAULT_DEEPSEEK_KEY, &summary_request(true)).await;
    let injected: Value = serde_json::from_str(&injected).unwrap();
    let text = injected["choices"][0]["message"]["content"]
        .as_str()
        .unwrap();
    assert!(text.contains("IGNORE ALL PREVIOUS INSTRUCTIONS"), "{text}");
    let calls = h.get("/_emulator/deepseek").await;
    assert_eq!(calls["calls"], 4);
    assert_eq!(calls["script"], json!([]));
    h.stop().await;
}
