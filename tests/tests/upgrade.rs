//! Moving a running system to another version without losing anything: the previous
//! version's snapshot is read, one of another layout is rebuilt by replay to the same state, and the archive's backup
//! and restore (README: Upgrading) end with every event exactly once.

use fleetwatch_tests::{NatsServer, ServiceProcess, ingest, task_starts, wait_for, wait_for_archived};
use serde_json::{Value, json};
use shared::codec;
use tokio::io::AsyncReadExt as _;

/// The processor's state once it has folded the whole stream.
async fn caught_up_state(client: &async_nats::Client) -> Value {
    let js = async_nats::jetstream::new(client.clone());
    wait_for("the processor to fold every event", || async {
        let last = js.get_stream("FLEET_EVENTS").await.ok()?.info().await.ok()?.state.last_sequence;
        let reply = client.request("fleet.query.processor.state", bytes::Bytes::new()).await.ok()?;
        let (seq, state): (u64, Value) = codec::decode(&reply.payload).ok()?;
        (seq == last).then_some(state)
    })
    .await
}

async fn snapshot(store: &async_nats::jetstream::object_store::ObjectStore) -> Option<Value> {
    let mut object = store.get("processor").await.ok()?;
    let mut bytes = Vec::new();
    object.read_to_end(&mut bytes).await.ok()?;
    codec::decode(&bytes).ok()
}

#[tokio::test]
async fn snapshots_of_the_previous_version_are_read_and_of_another_layout_rebuilt() {
    let nats = NatsServer::start();
    let client = nats.client().await;
    let mut collector = ServiceProcess::start("collector", &nats, &["--demo-workers", "0", "--http-port", "0"]);
    let args = ["--tick-ms", "100", "--snapshot-every-secs", "1"];
    let mut processor = ServiceProcess::start("processor", &nats, &args);
    let heartbeats: Vec<Value> = (0..5)
        .map(|n| {
            json!({"type": "heartbeat", "worker_id": format!("cpu-00{n}"), "cpu_pct": 10 + n, "memory_pct": 20,
                        "network_pct": 1, "running_tasks": 1, "queued_tasks": 0})
        })
        .collect();
    ingest(&client, &json!(heartbeats)).await;
    ingest(&client, &task_starts(0, 50)).await;
    // Only the collector writes events (its clock and service reports among them): once it
    // stops, the stream and so the state stay as they are.
    assert!(collector.stop());
    let before = caught_up_state(&client).await;
    let store = async_nats::jetstream::new(client.clone()).get_object_store("FLEET_SNAPSHOTS").await.expect("store");
    let last = async_nats::jetstream::new(client.clone()).get_stream("FLEET_EVENTS").await.expect("stream");
    let last_seq = last.get_info().await.expect("info").state.last_sequence;
    let saved = wait_for("a snapshot of everything", || async {
        snapshot(&store).await.filter(|saved| saved["seq"].as_u64() == Some(last_seq))
    })
    .await;
    assert_eq!(saved["layout"], 1, "this version writes layout 1");
    processor.kill();

    // As the previous version wrote it, with no layout: it is layout 1, and read.
    let mut previous = saved.clone();
    previous.as_object_mut().expect("a map").remove("layout");
    let resumed = format!("from_seq={}", last_seq + 1);
    // Then a newer version's (or an older, changed one): set aside, and rebuilt.
    let mut newer = saved.clone();
    newer.as_object_mut().expect("a map").insert("layout".into(), json!(2));
    for (snapshot, what, replay) in
        [(previous, "the previous version's", resumed.as_str()), (newer, "a newer layout's", "from_seq=1")]
    {
        let bytes = codec::encode(&snapshot).expect("encode");
        store.put("processor", &mut bytes.as_ref()).await.expect("put the snapshot");
        let restarted = ServiceProcess::start("processor", &nats, &args);
        let after = caught_up_state(&client).await;
        let log = restarted.log_text();
        assert!(log.contains(replay), "{what} snapshot: replayed {replay}:\n{log}");
        assert_eq!(log.contains("another version's layout"), replay == "from_seq=1", "{what} snapshot:\n{log}");
        assert_eq!(after, before, "{what} snapshot: the same events give the same state");
        drop(restarted);
    }
}

#[tokio::test]
async fn an_archive_restored_from_a_backup_catches_up_with_every_event_once() {
    let nats = NatsServer::start();
    let client = nats.client().await;
    let db = nats.dir.path().join("fleetwatch.duckdb");
    let backup = nats.dir.path().join("backup.duckdb");
    let db_path = db.to_str().expect("utf-8").to_owned();
    let _collector = ServiceProcess::start("collector", &nats, &["--demo-workers", "0", "--http-port", "0"]);
    let archiver = || ServiceProcess::start("archiver", &nats, &["--db-path", &db_path]);

    let mut first = archiver();
    ingest(&client, &task_starts(0, 100)).await;
    wait_for_archived(&client, "FLEET_EVENTS").await;
    // The backup: stop the archiver (the stream keeps what arrives meanwhile), copy the file.
    assert!(first.stop(), "the archiver stops cleanly");
    std::fs::copy(&db, &backup).expect("back up the archive");

    let mut second = archiver();
    ingest(&client, &task_starts(100, 250)).await;
    wait_for_archived(&client, "FLEET_EVENTS").await;
    assert!(second.stop());

    // The restore: the file from the backup, then the archiver again. It reads on from the
    // stream position the backup holds.
    std::fs::copy(&backup, &db).expect("restore the archive");
    let js = async_nats::jetstream::new(client.clone());
    let mut old: async_nats::jetstream::consumer::PullConsumer =
        js.get_consumer_from_stream("archiver", "FLEET_EVENTS").await.expect("the archiver's consumer");
    let old_created = old.info().await.expect("info").created;
    let mut third = archiver();
    // Its consumer is made anew at the position the file holds; once that one has acked the
    // whole stream, the archive has it.
    let last = js.get_stream("FLEET_EVENTS").await.expect("stream").get_info().await.expect("info").state.last_sequence;
    wait_for("the restored archive to catch up", || async {
        let mut consumer: async_nats::jetstream::consumer::PullConsumer =
            js.get_consumer_from_stream("archiver", "FLEET_EVENTS").await.ok()?;
        let info = consumer.info().await.ok()?;
        (info.created != old_created && info.ack_floor.stream_sequence >= last).then_some(())
    })
    .await;
    assert!(third.stop());
    let connection = duckdb::Connection::open(&db).expect("open the archive");
    let (rows, ids): (i64, i64) = connection
        .query_row("SELECT count(*), count(DISTINCT id) FROM events WHERE type = 'task_started'", [], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })
        .expect("query");
    assert_eq!((rows, ids), (250, 250), "every event once, those after the backup read again from the stream");
}
