//! The collector's own sources seen from outside: the host agent reports this machine
//! (tests/tests/coordinator.rs has the coordinator poll).

use fleetwatch_tests::{NatsServer, ServiceProcess};
use futures::StreamExt;
use shared::codec;
use shared::event::Event;

#[tokio::test]
async fn the_host_agent_reports_this_machine_as_a_worker() {
    let nats = NatsServer::start();
    let client = nats.client().await;
    let mut events = client.subscribe("fleet.events.*.*.this-host").await.expect("subscribe");
    let mut collector = ServiceProcess::start(
        "collector",
        &nats,
        &["--demo-workers", "0", "--http-port", "0", "--host-agent", "--host-worker-id", "this-host"],
    );
    let mut next = async || -> Event {
        let message =
            tokio::time::timeout(fleetwatch_tests::DEADLINE, events.next()).await.expect("in time").expect("open");
        codec::decode_envelope::<Event>(&message.payload).expect("decodes").payload
    };
    let Event::WorkerRegistered { capabilities, .. } = next().await else { panic!("registers first") };
    assert!(capabilities.cpu_cores >= 1 && capabilities.memory_gb > 0.5, "{capabilities:?}");
    assert_eq!(capabilities.gpu_model.is_some(), capabilities.hardware == shared::event::HardwareKind::Cuda);
    for _ in 0..2 {
        let Event::Heartbeat { cpu_pct: Some(cpu_pct), memory_pct: Some(memory_pct), gpu_pct, .. } = next().await
        else {
            panic!("then heartbeats with figures")
        };
        assert!((0.0..=100.0).contains(&cpu_pct));
        assert!(memory_pct > 0.0 && memory_pct <= 100.0, "a running machine uses memory: {memory_pct}");
        assert_eq!(gpu_pct.is_some(), capabilities.gpu_model.is_some());
    }
    assert!(collector.stop());
    let last = loop {
        let event = next().await;
        if !matches!(event, Event::Heartbeat { .. }) {
            break event;
        }
    };
    assert!(
        matches!(last, Event::WorkerStatusChanged { status: shared::event::ReportedStatus::Offline, .. }),
        "{last:?}"
    );
}
