//! The archiver seen from outside: one active at a time, the others waiting to take over.

use fleetwatch_tests::{NatsServer, ServiceProcess, health_reports, ingest, task_starts, wait_for, wait_for_counter};

fn gauge(report: &shared::health::HealthReport, name: &str) -> Option<f64> {
    report.gauges.iter().find(|gauge| gauge.name == name).map(|gauge| gauge.value)
}

#[tokio::test]
async fn a_second_archiver_waits_and_takes_over_when_the_first_dies() {
    let nats = NatsServer::start();
    let db = nats.dir.path().join("archive.duckdb");
    let args = ["--db-path", db.to_str().expect("utf-8 path"), "--lease-ttl-secs", "2"];
    let _collector = ServiceProcess::start("collector", &nats, &["--demo-workers", "0", "--http-port", "0"]);
    let client = nats.client().await;
    let mut first = ServiceProcess::start("archiver", &nats, &args);
    wait_for("the first archiver to be active", || async {
        let reports = health_reports(&client, "archiver", 1).await;
        reports.values().any(|report| gauge(report, "archiver_active") == Some(1.0)).then_some(())
    })
    .await;
    let mut second = ServiceProcess::start("archiver", &nats, &args);
    let reports = health_reports(&client, "archiver", 2).await;
    let active: Vec<Option<f64>> = reports.values().map(|report| gauge(report, "archiver_active")).collect();
    assert_eq!(active.iter().filter(|active| **active == Some(1.0)).count(), 1, "one active: {active:?}");
    assert!(second.log_text().contains("waiting for its lease"), "{}", second.log_text());

    assert_eq!(ingest(&client, &task_starts(0, 500)).await["accepted"], 500);
    wait_for_counter(&client, "archiver", "archiver_messages_archived_total", 500).await;
    first.kill();
    assert_eq!(ingest(&client, &task_starts(500, 1000)).await["accepted"], 500);
    // A resend of events the first archived is dropped by JetStream, not archived twice.
    assert_eq!(ingest(&client, &task_starts(400, 500)).await["accepted"], 100);
    wait_for("the second archiver to take over", || async {
        second.log_text().contains("archive open; archiving").then_some(())
    })
    .await;
    // Every message up to now, not a count: service reports are archived beside the events.
    fleetwatch_tests::wait_for_archived(&client, "FLEET_EVENTS").await;
    assert!(second.stop(), "the second stops cleanly:\n{}", second.log_text());

    let connection = duckdb::Connection::open(&db).expect("open the archive");
    let (rows, ids): (i64, i64) = connection
        .query_row("SELECT count(*), count(DISTINCT id) FROM events WHERE type <> 'service_report'", [], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })
        .expect("query");
    assert_eq!((rows, ids), (1000, 1000), "every event once, none lost in the handover");
}

/// An archiver that pulled messages and died before committing them leaves them delivered
/// and unacknowledged. Its successor must archive them before anything newer: an ack of a
/// newer chunk (`AckPolicy::All`) would otherwise cover them, unarchived.
#[tokio::test]
async fn messages_pulled_but_never_committed_are_archived_by_the_next_archiver() {
    use futures::StreamExt;
    let nats = NatsServer::start();
    let db = nats.dir.path().join("archive.duckdb");
    let args = ["--db-path", db.to_str().expect("utf-8 path"), "--lease-ttl-secs", "2"];
    let _collector = ServiceProcess::start("collector", &nats, &["--demo-workers", "0", "--http-port", "0"]);
    let client = nats.client().await;
    assert_eq!(ingest(&client, &task_starts(0, 100)).await["accepted"], 100);
    let mut archiver = ServiceProcess::start("archiver", &nats, &args);
    fleetwatch_tests::wait_for_archived(&client, "FLEET_EVENTS").await;
    assert!(archiver.stop(), "stops cleanly:\n{}", archiver.log_text());

    // What a holder that crashed mid-batch leaves behind: the next 100 pulled, never acked.
    assert_eq!(ingest(&client, &task_starts(100, 200)).await["accepted"], 100);
    let js = async_nats::jetstream::new(client.clone());
    let consumer: async_nats::jetstream::consumer::PullConsumer =
        js.get_consumer_from_stream("archiver", "FLEET_EVENTS").await.expect("the archiver's consumer");
    let mut pulled = consumer.fetch().max_messages(100).messages().await.expect("fetch");
    let mut held = 0;
    while let Some(message) = pulled.next().await {
        message.expect("a message");
        held += 1;
    }
    assert_eq!(held, 100, "the crashed holder's batch");

    let mut archiver = ServiceProcess::start("archiver", &nats, &args);
    assert_eq!(ingest(&client, &task_starts(200, 300)).await["accepted"], 100);
    fleetwatch_tests::wait_for_archived(&client, "FLEET_EVENTS").await;
    assert!(archiver.stop(), "stops cleanly:\n{}", archiver.log_text());
    let connection = duckdb::Connection::open(&db).expect("open the archive");
    let (rows, ids): (i64, i64) = connection
        .query_row("SELECT count(*), count(DISTINCT id) FROM events WHERE id LIKE 'e%'", [], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })
        .expect("count");
    assert_eq!((rows, ids), (300, 300), "every event once, the held batch included");
}

/// A message gone from the stream before the archiver reads it (`nats stream rmm`) leaves
/// the same gap in the delivery as messages lost in flight when a server fails over. The
/// archiver then reads again from its committed offset, so a lost delivery is never acked
/// (`AckPolicy::All`) unarchived; here every other message is archived once.
#[tokio::test]
async fn a_gap_in_the_delivery_is_read_again_from_the_archive_offset() {
    let nats = NatsServer::start();
    let db = nats.dir.path().join("archive.duckdb");
    let _collector = ServiceProcess::start("collector", &nats, &["--demo-workers", "0", "--http-port", "0"]);
    let client = nats.client().await;
    assert_eq!(ingest(&client, &task_starts(0, 100)).await["accepted"], 100);
    let js = async_nats::jetstream::new(client.clone());
    let stream = js.get_stream("FLEET_EVENTS").await.expect("FLEET_EVENTS");
    let mut seq = stream.clone().info().await.expect("info").state.last_sequence - 50;
    while !stream.get_raw_message(seq).await.expect("a message").subject.contains(".task.") {
        seq += 1;
    }
    stream.delete_message(seq).await.expect("delete a task start from the middle");

    let mut archiver = ServiceProcess::start("archiver", &nats, &["--db-path", db.to_str().expect("utf-8 path")]);
    wait_for_counter(&client, "archiver", "archiver_delivery_gaps_total", 1).await;
    fleetwatch_tests::wait_for_archived(&client, "FLEET_EVENTS").await;
    assert!(archiver.log_text().contains("reading again from the archive's offset"), "{}", archiver.log_text());
    assert!(archiver.stop(), "stops cleanly:\n{}", archiver.log_text());
    assert_eq!(fleetwatch_tests::archived_task_starts(&db), (99, 99), "every other task start once");
}
