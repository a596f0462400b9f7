//! `GET /ws/metrics`: live updates as JSON messages `{"type": ..., "data": ...}`.
//!
//! A client chooses topics: `?topics=system,worker:cpu-001` when it connects (default
//! `system,alerts`), then `{"subscribe": [...]}` and `{"unsubscribe": [...]}` messages.
//!
//! | topic | messages |
//! |---|---|
//! | `system` | `system`: the system metrics, every processor tick |
//! | `tasks` | `tasks`: the task metrics without the tick's finished tasks, every tick |
//! | `alerts` | `alerts_firing`: the open alerts when they change; `alert`: each alert change |
//! | `workers` | `workers`: every worker, at once; then `workers_changed` per part of each tick: the workers whose figures changed and those that retired |
//! | `worker:<id>` | `worker`: that worker's metrics each tick, as soon as the part of the tick that carries it arrives (after the tick's last part when no part does: it did not change) |
//!
//! Each request is answered `{"type": "subscribed", "data": {"topics": [...]}}`, then the
//! current value of every topic it added; a bad one `{"type": "error", "data": {"error"}}`.
//! A session that falls behind never holds others back: it skips to the latest value (the
//! latest-value topics) or is sent the whole picture again (`alerts_firing`, `workers`).
//! `gateway.update_interval` paces the latest-value topics; a client that has not taken a
//! message for [`SEND_TIMEOUT`] is closed.

use crate::api::error;
use crate::live::{Frame, Live};
use axum::extract::rejection::QueryRejection;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;
use tokio::time::Instant;

/// A client that takes no message for this long is closed.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(30);
/// Most `worker:<id>` topics one session follows.
const MAX_WORKER_TOPICS: usize = 100;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Topic {
    System,
    Tasks,
    Alerts,
    Workers,
    Worker(String),
}

impl Topic {
    fn parse(text: &str) -> Result<Self, String> {
        match text.trim() {
            "system" => Ok(Self::System),
            "tasks" => Ok(Self::Tasks),
            "alerts" => Ok(Self::Alerts),
            "workers" => Ok(Self::Workers),
            other => match other.strip_prefix("worker:") {
                Some(id) => shared::subjects::check_token("worker_id", id)
                    .map(|()| Self::Worker(id.to_owned()))
                    .map_err(|err| err.to_string()),
                None => Err(format!("no topic {other:?}: use system, tasks, alerts, workers or worker:<id>")),
            },
        }
    }

    fn name(&self) -> String {
        match self {
            Self::System => "system".into(),
            Self::Tasks => "tasks".into(),
            Self::Alerts => "alerts".into(),
            Self::Workers => "workers".into(),
            Self::Worker(id) => format!("worker:{id}"),
        }
    }
}

fn parse_topics<'a>(texts: impl IntoIterator<Item = &'a str>) -> Result<Vec<Topic>, String> {
    texts.into_iter().filter(|text| !text.trim().is_empty()).map(Topic::parse).collect()
}

#[derive(Deserialize)]
pub struct Connect {
    /// Comma-separated topics to start with (default `system,alerts`).
    topics: Option<String>,
}

/// A client's message.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Request {
    #[serde(default)]
    subscribe: Vec<String>,
    #[serde(default)]
    unsubscribe: Vec<String>,
}

pub async fn websocket(
    State(live): State<Live>,
    connect: Result<Query<Connect>, QueryRejection>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    if !live.settings.real_time_enabled {
        let reason = "real-time updates are off (gateway.real_time_enabled = false): read the REST API";
        return error(StatusCode::SERVICE_UNAVAILABLE, reason);
    }
    let connect = match connect {
        Ok(Query(connect)) => connect,
        Err(rejection) => return error(StatusCode::BAD_REQUEST, &rejection.body_text()),
    };
    let topics = match connect.topics.as_deref() {
        Some(text) => match parse_topics(text.split(',')) {
            Ok(topics) => topics,
            Err(reason) => return error(StatusCode::BAD_REQUEST, &reason),
        },
        None => vec![Topic::System, Topic::Alerts],
    };
    match upgrade {
        Ok(upgrade) => upgrade.on_upgrade(move |socket| Session::new(live).run(socket, topics)).into_response(),
        Err(rejection) => error(rejection.status(), &format!("a WebSocket endpoint: {}", rejection.body_text())),
    }
}

struct Session {
    live: Live,
    topics: BTreeSet<Topic>,
    /// The tick each followed worker was last sent for.
    worker_sent: BTreeMap<String, i64>,
    /// Pacing of the latest-value topics: when each last went, and those waiting to go.
    interval: Duration,
    sent_at: BTreeMap<Topic, Instant>,
    waiting: BTreeSet<Topic>,
}

/// Why a session ended.
struct Closed;

impl Session {
    fn new(live: Live) -> Self {
        let interval = Duration::from_secs_f64(live.settings.update_interval);
        Self {
            live,
            topics: BTreeSet::new(),
            worker_sent: BTreeMap::new(),
            interval,
            sent_at: BTreeMap::new(),
            waiting: BTreeSet::new(),
        }
    }

    /// Keeps the hub's count of `workers` followers (frames of changes are made only for them).
    fn count_workers(&self, follows: bool) {
        use std::sync::atomic::Ordering;
        match follows {
            true => self.live.hub.workers_followers.fetch_add(1, Ordering::Relaxed),
            false => self.live.hub.workers_followers.fetch_sub(1, Ordering::Relaxed),
        };
    }

    async fn run(mut self, mut socket: WebSocket, topics: Vec<Topic>) {
        let hub = self.live.hub.clone();
        let (mut system, mut tasks, mut firing) =
            (hub.system.subscribe(), hub.tasks.subscribe(), hub.alerts_firing.subscribe());
        let (mut alerts, mut parts) = (hub.alert.subscribe(), hub.workers.subscribe());
        if self.add(&mut socket, topics).await.is_err() {
            return;
        }
        loop {
            let due = self.due();
            let outcome = tokio::select! {
                biased;
                _ = self.live.closing.cancelled() => {
                    let _ = socket.send(Message::Close(None)).await;
                    return;
                }
                incoming = socket.recv() => match incoming {
                    Some(Ok(Message::Text(text))) => self.request(&mut socket, &text).await,
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                    Some(Ok(_)) => Ok(()),
                },
                Ok(()) = system.changed(), if self.topics.contains(&Topic::System) => {
                    self.offer(&mut socket, Topic::System).await
                }
                Ok(()) = tasks.changed(), if self.topics.contains(&Topic::Tasks) => {
                    self.offer(&mut socket, Topic::Tasks).await
                }
                Ok(()) = firing.changed(), if self.topics.contains(&Topic::Alerts) => {
                    self.offer(&mut socket, Topic::Alerts).await
                }
                alert = alerts.recv(), if self.topics.contains(&Topic::Alerts) => match alert {
                    Ok(frame) => send(&mut socket, frame).await,
                    // Behind: the open alerts again, whole.
                    Err(RecvError::Lagged(_)) => self.now(&mut socket, Topic::Alerts).await,
                    Err(RecvError::Closed) => return,
                },
                part = parts.recv(), if self.follows_workers() => match part {
                    Ok(part) => self.worker_part(&mut socket, part).await,
                    Err(RecvError::Lagged(_)) => self.workers_again(&mut socket).await,
                    Err(RecvError::Closed) => return,
                },
                () = sleep_until(due), if due.is_some() => self.flush(&mut socket).await,
            };
            if outcome.is_err() {
                return;
            }
        }
    }

    fn follows_workers(&self) -> bool {
        self.topics.iter().any(|topic| matches!(topic, Topic::Workers | Topic::Worker(_)))
    }

    /// Subscribes and unsubscribes as the client asks.
    async fn request(&mut self, socket: &mut WebSocket, text: &str) -> Result<(), Closed> {
        let request: Request = match serde_json::from_str(text) {
            Ok(request) => request,
            Err(err) => return refuse(socket, &format!("not a request ({{\"subscribe\": [...]}}): {err}")).await,
        };
        let (added, removed) = match (
            parse_topics(request.subscribe.iter().map(String::as_str)),
            parse_topics(request.unsubscribe.iter().map(String::as_str)),
        ) {
            (Ok(added), Ok(removed)) => (added, removed),
            (Err(reason), _) | (_, Err(reason)) => return refuse(socket, &reason).await,
        };
        for topic in &removed {
            let followed = self.topics.remove(topic);
            match topic {
                Topic::Workers if followed => self.count_workers(false),
                Topic::Worker(id) => _ = self.worker_sent.remove(id),
                _ => {}
            }
            self.waiting.remove(topic);
        }
        self.add(socket, added).await
    }

    /// Adds topics, says which the session follows now, and sends what each holds.
    async fn add(&mut self, socket: &mut WebSocket, topics: Vec<Topic>) -> Result<(), Closed> {
        let workers =
            |topics: &BTreeSet<Topic>| topics.iter().filter(|topic| matches!(topic, Topic::Worker(_))).count();
        let new: Vec<Topic> = topics.into_iter().filter(|topic| !self.topics.contains(topic)).collect();
        let mut following = self.topics.clone();
        following.extend(new.iter().cloned());
        if workers(&following) > MAX_WORKER_TOPICS {
            return refuse(socket, &format!("at most {MAX_WORKER_TOPICS} worker topics a connection")).await;
        }
        if new.contains(&Topic::Workers) {
            self.count_workers(true);
        }
        self.topics = following;
        let names: Vec<String> = self.topics.iter().map(Topic::name).collect();
        let subscribed = serde_json::json!({ "type": "subscribed", "data": { "topics": names } });
        send(socket, Frame::from(subscribed.to_string())).await?;
        for topic in new {
            self.now(socket, topic).await?;
        }
        Ok(())
    }

    /// A latest-value topic changed: sent now, or when the pace allows.
    async fn offer(&mut self, socket: &mut WebSocket, topic: Topic) -> Result<(), Closed> {
        let paced = self.sent_at.get(&topic).is_some_and(|sent| sent.elapsed() < self.interval);
        if paced {
            self.waiting.insert(topic);
            return Ok(());
        }
        self.now(socket, topic).await
    }

    /// Sends the topic's current value.
    async fn now(&mut self, socket: &mut WebSocket, topic: Topic) -> Result<(), Closed> {
        self.waiting.remove(&topic);
        let hub = &self.live.hub;
        let frame = match &topic {
            Topic::System => hub.system.borrow().clone(),
            Topic::Tasks => hub.tasks.borrow().clone(),
            Topic::Alerts => hub.alerts_firing.borrow().clone(),
            Topic::Workers => Some(self.live.workers_frame()),
            Topic::Worker(id) => self.live.worker_frame(id),
        };
        self.sent_at.insert(topic, Instant::now());
        match frame {
            Some(frame) => send(socket, frame).await,
            None => Ok(()),
        }
    }

    /// A part of a tick's worker metrics: to `workers` as it is; each followed worker it
    /// carries as it is now; after the tick's last part, the followed workers no part
    /// carried (unchanged, with the tick's time).
    async fn worker_part(&mut self, socket: &mut WebSocket, part: crate::live::WorkerPart) -> Result<(), Closed> {
        if let Some(frame) = part.frame.filter(|_| self.topics.contains(&Topic::Workers)) {
            send(socket, frame).await?;
        }
        let due: Vec<Topic> = self
            .topics
            .iter()
            .filter(|topic| match topic {
                Topic::Worker(id) => {
                    let sent = self.worker_sent.get(id).is_some_and(|tick| *tick >= part.time);
                    !sent && (part.last || part.carried.binary_search(id).is_ok())
                }
                _ => false,
            })
            .cloned()
            .collect();
        for topic in due {
            if let Topic::Worker(id) = &topic {
                self.worker_sent.insert(id.clone(), part.time);
            }
            self.offer(socket, topic).await?;
        }
        Ok(())
    }

    /// Behind on worker parts: the whole picture again.
    async fn workers_again(&mut self, socket: &mut WebSocket) -> Result<(), Closed> {
        if self.topics.contains(&Topic::Workers) {
            self.now(socket, Topic::Workers).await?;
        }
        self.workers_each(socket).await
    }

    async fn workers_each(&mut self, socket: &mut WebSocket) -> Result<(), Closed> {
        let followed: Vec<Topic> =
            self.topics.iter().filter(|topic| matches!(topic, Topic::Worker(_))).cloned().collect();
        for topic in followed {
            self.offer(socket, topic).await?;
        }
        Ok(())
    }

    /// When the first paced topic may go.
    fn due(&self) -> Option<Instant> {
        self.waiting.iter().filter_map(|topic| self.sent_at.get(topic)).min().map(|sent| *sent + self.interval)
    }

    async fn flush(&mut self, socket: &mut WebSocket) -> Result<(), Closed> {
        let due: Vec<Topic> = self
            .waiting
            .iter()
            .filter(|topic| self.sent_at.get(*topic).is_none_or(|sent| sent.elapsed() >= self.interval))
            .cloned()
            .collect();
        for topic in due {
            self.now(socket, topic).await?;
        }
        Ok(())
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if self.topics.contains(&Topic::Workers) {
            self.count_workers(false);
        }
    }
}

async fn sleep_until(due: Option<Instant>) {
    if let Some(due) = due {
        tokio::time::sleep_until(due).await;
    }
}

async fn send(socket: &mut WebSocket, frame: Frame) -> Result<(), Closed> {
    match tokio::time::timeout(SEND_TIMEOUT, socket.send(Message::Text(frame.as_ref().into()))).await {
        Ok(Ok(())) => Ok(()),
        _ => Err(Closed),
    }
}

async fn refuse(socket: &mut WebSocket, reason: &str) -> Result<(), Closed> {
    let refusal = serde_json::json!({ "type": "error", "data": { "error": reason } });
    send(socket, Frame::from(refusal.to_string())).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_parse_and_bad_ones_say_why() {
        assert_eq!(
            parse_topics("system, worker:cpu-001".split(',')),
            Ok(vec![Topic::System, Topic::Worker("cpu-001".into())])
        );
        assert!(parse_topics(["worker:a.b"]).is_err(), "worker ids are subject tokens");
        assert!(parse_topics(["nope"]).expect_err("unknown").contains("no topic"));
        assert_eq!(Topic::Worker("w".into()).name(), "worker:w");
    }
}
