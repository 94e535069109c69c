use std::time::Duration;

use reqwest::{header::HeaderValue, StatusCode};
use tokio::sync::oneshot;
use twilight_gateway::queue::Queue;

/// twilight 0.16's `Queue`, asking gateway-queue: `ConfigBuilder::new(token, intents).queue(Arc::new(queue))`.
#[derive(Debug)]
pub struct HttpQueue {
    pub http: reqwest::Client,
    /// e.g. `https://gateway-queue.example.workers.dev/mybot`
    pub url: String,
    /// `HeaderValue::from_str(&format!("Bot {token}"))?` with `set_sensitive(true)`, so `Debug` hides it.
    pub authorization: HeaderValue,
}

impl Queue for HttpQueue {
    fn enqueue(&self, shard: u32) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        let request = self.http.get(&self.url).query(&[("shard", shard)]).header("authorization", self.authorization.clone());
        tokio::spawn(async move {
            loop {
                let Some(attempt) = request.try_clone() else { return };
                let wait = match attempt.send().await {
                    Ok(response) if response.status().is_success() => {
                        let _ = tx.send(());
                        return;
                    }
                    Ok(response) if matches!(response.status(), StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE) => {
                        let seconds = response.headers().get("retry-after").and_then(|v| v.to_str().ok()?.parse().ok());
                        Duration::from_secs(seconds.unwrap_or(1))
                    }
                    // 401, 409 (a newer request of this shard took over), ...: dropping `tx` would re-enqueue the
                    // shard at once, a tight loop; ask again later instead.
                    Ok(response) => {
                        eprintln!("identify queue: shard {shard}: {}", response.status());
                        Duration::from_secs(30)
                    }
                    Err(_) => Duration::from_secs(1),
                };
                if tx.is_closed() {
                    return;
                }
                tokio::time::sleep(wait).await;
            }
        });
        rx
    }
}
