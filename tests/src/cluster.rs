//! Three nats-servers routed to each other, JetStream on each, as `just up-cluster` runs
//! them: the services are given all three URLs, and a test kills and restarts one.

use crate::{NatsServer, free_port};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How to start one server of the cluster again (its ports and store stay the same).
pub(crate) struct Node {
    args: Vec<String>,
    port: u16,
}

fn spawn(node: &Node) -> Child {
    let binary = std::env::var("NATS_SERVER").unwrap_or_else(|_| "nats-server".into());
    let child = Command::new(&binary)
        .args(&node.args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|err| panic!("cannot start {binary}: {err} (just tools installs it)"));
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", node.port)).is_err() {
        assert!(Instant::now() < deadline, "nats-server did not listen on {}", node.port);
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

impl NatsServer {
    /// Three servers, `n0` to `n2`; `url` lists them all. Streams a service creates with
    /// `FLEETWATCH_NATS__REPLICAS=3` live on all three.
    pub fn start_cluster() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let ports: Vec<(u16, u16)> = (0..3).map(|_| (free_port(), free_port())).collect();
        let routes: Vec<String> = ports.iter().map(|(_, route)| format!("nats://127.0.0.1:{route}")).collect();
        let path = |name: String| dir.path().join(name).to_str().expect("utf-8 path").to_owned();
        let nodes: Vec<Node> = ports
            .iter()
            .enumerate()
            .map(|(index, (port, route))| Node {
                port: *port,
                args: [
                    "-js",
                    "-a",
                    "127.0.0.1",
                    "-p",
                    &port.to_string(),
                    "-n",
                    &format!("n{index}"),
                    "--cluster_name",
                    "fleetwatch",
                    "--cluster",
                    &format!("nats://127.0.0.1:{route}"),
                    "--routes",
                    &routes.join(","),
                    "-sd",
                    &path(format!("store-{index}")),
                    "--log",
                    &path(format!("nats-server-{index}.log")),
                ]
                .map(str::to_owned)
                .to_vec(),
            })
            .collect();
        let mut children: Vec<Child> = nodes.iter().map(spawn).collect();
        let url = ports.iter().map(|(port, _)| format!("nats://127.0.0.1:{port}")).collect::<Vec<_>>().join(",");
        let child = children.remove(0);
        Self { child, peers: children, nodes, url, dir, users: false, tls_ca: None }
    }

    /// Waits until the cluster has elected its JetStream leader: before that, creating a
    /// stream fails.
    pub async fn wait_for_jetstream(&self) {
        let client = self.client().await;
        let js = async_nats::jetstream::new(client);
        crate::wait_for("the cluster's JetStream", || async { js.query_account().await.ok() }).await;
    }

    fn node(&mut self, index: usize) -> &mut Child {
        match index {
            0 => &mut self.child,
            index => &mut self.peers[index - 1],
        }
    }

    /// Kills server `n<index>`, as a crash would; its store stays for `restart_node`.
    pub fn kill_node(&mut self, index: usize) {
        let child = self.node(index);
        let _ = child.kill();
        let _ = child.wait();
    }

    pub fn restart_node(&mut self, index: usize) {
        self.kill_node(index);
        *self.node(index) = spawn(&self.nodes[index]);
    }

    /// What server `n<index>` has logged.
    pub fn node_log(&self, index: usize) -> String {
        std::fs::read_to_string(Path::new(self.dir.path()).join(format!("nats-server-{index}.log"))).unwrap_or_default()
    }
}
