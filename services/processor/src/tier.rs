//! The fleet tier of a partitioned fleet: it folds no events. Every tick it merges the
//! latest summary of each partition (`<prefix>.metrics.partition.<i>`) and publishes the
//! fleet's system and task metrics from the merge, on the same subjects and keys as a
//! processor of the whole fleet, so every reader (gateways, the alerter's fleet-wide rules,
//! the archiver) sees one fleet. It answers `processor.tasks` by asking each partition and
//! merging their answers (`tasks::merge`).

use crate::publish::Publisher;
use crate::{ProcessorConfig, tasks};
use futures::StreamExt;
use shared::fleet::{FleetSummary, Limits};
use shared::query::TaskAnswer;
use shared::service::Context;
use shared::{codec, now_ms};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// A partition silent for this many ticks is left out of the merge (and the gap logged).
const STALE_TICKS: u32 = 5;
/// How long a partition may take to answer a task query.
const ASK_TIMEOUT: Duration = Duration::from_secs(2);

pub async fn run(
    context: Context,
    config: ProcessorConfig,
    bucket: async_nats::jetstream::kv::Store,
    mut queries: async_nats::Subscriber,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let count = config.partitions;
    let limits = Limits::new(&context.fleet, config.max_tasks_tracked);
    let mut publisher = Publisher::new(&context, bucket, &config);
    let mut summaries = context.client.subscribe(context.subjects.metrics_partitions()).await?;
    let merged_counter = context.counters.counter("processor_partition_summaries_total");
    let bad = context.counters.counter("processor_partition_summaries_rejected_total");
    let ticks = context.counters.counter("processor_ticks_total");
    let tick_failures = context.counters.counter("processor_tick_failures_total");
    let stale_after = Duration::from_millis(config.tick_ms) * STALE_TICKS;
    // The latest summary of each partition, its finished tasks taken out: those are
    // gathered from every summary, so none is published twice or lost between ticks.
    let mut latest: BTreeMap<u32, (Instant, FleetSummary)> = BTreeMap::new();
    let mut finished = FleetSummary::default();
    let mut reporting: Vec<u32> = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_millis(config.tick_ms));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    info!(partitions = count, "merging the partitions' summaries");
    loop {
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            _ = tick.tick() => {
                let now = now_ms();
                let fresh: Vec<u32> = latest.iter().filter(|(_, (at, _))| at.elapsed() < stale_after).map(|(index, _)| *index).collect();
                if fresh != reporting {
                    let missing: Vec<u32> = (0..count).filter(|index| !fresh.contains(index)).collect();
                    match missing.is_empty() {
                        true => info!(partitions = count, "every partition reports"),
                        false => warn!(?missing, "partitions silent: the fleet's metrics leave them out"),
                    }
                    reporting = fresh.clone();
                }
                if fresh.is_empty() {
                    continue; // Nothing to say: a fleet of zeros would be a lie.
                }
                let mut merged = std::mem::take(&mut finished);
                for index in &fresh {
                    merged.merge(latest[index].1.clone());
                }
                merged.time = now;
                ticks.inc();
                if let Err(err) = publisher.tick(Some(&merged), None, now, &limits).await {
                    tick_failures.inc();
                    warn!(error = format!("{err:#}"), "fleet metrics not published");
                }
            }
            Some(message) = summaries.next() => {
                match codec::decode_envelope::<FleetSummary>(&message.payload) {
                    Ok(envelope) => {
                        let mut summary = envelope.payload;
                        let index = match summary.partitions.as_slice() {
                            [index] if *index < count => *index,
                            other => {
                                bad.inc();
                                warn!(partitions = ?other, count, "a summary of no partition of ours ignored");
                                continue;
                            }
                        };
                        finished.finished.append(&mut summary.finished);
                        finished.finished_total += std::mem::take(&mut summary.finished_total);
                        latest.insert(index, (Instant::now(), summary));
                        merged_counter.inc();
                    }
                    Err(err) => {
                        bad.inc();
                        warn!(error = %err, "undecodable partition summary ignored");
                    }
                }
            }
            Some(query) = queries.next() => {
                tokio::spawn(answer(context.clone(), query, count));
            }
        }
    }
    Ok(())
}

/// Answers `processor.tasks` from every partition, and `processor.state` with where to ask.
async fn answer(context: Context, query: async_nats::Message, count: u32) {
    let Some(reply) = query.reply.clone() else { return };
    let name = query.subject.as_str().rsplit('.').next().unwrap_or_default().to_owned();
    let answer = match name.as_str() {
        "tasks" => gather(&context, &query.payload, count).await,
        "state" => Err((404, format!("the fleet is in {count} partitions: ask processor.part.<i>.state"))),
        other => Err((404, format!("no query {other}: use tasks or state"))),
    };
    let json = match answer {
        Ok(answer) => serde_json::to_vec(&answer),
        Err((status, reason)) => serde_json::to_vec(&serde_json::json!({ "error": reason, "status": status })),
    };
    if let Err(err) = context.client.publish(reply, json.unwrap_or_default().into()).await {
        warn!(error = %err, "task query not answered");
    }
}

async fn gather(context: &Context, payload: &[u8], count: u32) -> Result<TaskAnswer, (u16, String)> {
    let query = tasks::parse_query(payload).map_err(|reason| (400, reason))?;
    let asked = serde_json::to_vec(&tasks::partition_query(&query)).map_err(|err| (500, err.to_string()))?;
    let requests = (0..count).map(|index| {
        let subject = context.subjects.query(&format!("processor.part.{index}.tasks"));
        let request = context.client.request(subject, asked.clone().into());
        async move { (index, tokio::time::timeout(ASK_TIMEOUT, request).await) }
    });
    let mut answers = Vec::with_capacity(count as usize);
    for (index, reply) in futures::future::join_all(requests).await {
        let reply = match reply {
            Ok(Ok(reply)) => reply,
            Ok(Err(err)) => return Err((503, format!("partition {index} did not answer: {err}"))),
            Err(_) => return Err((503, format!("partition {index} did not answer within {ASK_TIMEOUT:?}"))),
        };
        match serde_json::from_slice::<TaskAnswer>(&reply.payload) {
            Ok(answer) => answers.push(answer),
            // A partition's refusal (a bad cursor, say) is the answer.
            Err(_) => {
                let refusal: serde_json::Value = serde_json::from_slice(&reply.payload).unwrap_or_default();
                let status = refusal["status"].as_u64().unwrap_or(502) as u16;
                let reason = refusal["error"].as_str().unwrap_or("an answer that is not a task page").to_owned();
                return Err((status, reason));
            }
        }
    }
    tasks::merge(&query, answers, now_ms()).map_err(|reason| (400, reason))
}
