//! The container deployments are checked offline against the code (no image is pulled or
//! built): Compose (deploy/compose) and Kubernetes (deploy/kustomization.yaml, deploy/k8s)
//! run every service with flags it takes and a configuration it accepts (`--check-config`,
//! with the environment each file gives it and secrets from deploy/secrets.sh), publish
//! the ports the configuration binds, probe the port it serves probes on, name only
//! secrets that secrets.sh makes, and give nats-server configurations it accepts.

use fleetwatch_tests::{SERVICES, bin_dir, deploy, nats_server};
use serde_json::Value;
use std::collections::BTreeMap;
use std::process::Command;

/// Each document of a YAML file, its merge keys (`<<: *anchor`) applied, as JSON.
fn yaml_documents(path: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(deploy(path)).unwrap_or_else(|err| panic!("{path}: {err}"));
    text.split("\n---\n")
        .map(|document| {
            let mut yaml: yaml_serde::Value =
                yaml_serde::from_str(document).unwrap_or_else(|err| panic!("{path}: {err}"));
            yaml.apply_merge().unwrap_or_else(|err| panic!("{path}: {err}"));
            serde_json::to_value(yaml).unwrap_or_else(|err| panic!("{path}: {err}"))
        })
        .filter(|document| !document.is_null())
        .collect()
}

/// What deploy/secrets.sh prints, as the environment file Compose and the Secret read.
fn secrets() -> BTreeMap<String, String> {
    let made = Command::new(deploy("secrets.sh")).output().expect("deploy/secrets.sh");
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let text = String::from_utf8(made.stdout).expect("utf-8");
    let said = String::from_utf8_lossy(&made.stderr);
    assert!(said.contains("operator token") && said.contains("ingest token"), "{said}");
    text.lines()
        .map(|line| line.split_once('=').unwrap_or_else(|| panic!("not KEY=value: {line}")))
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .collect()
}

/// The configuration every container reads.
fn config() -> toml::Value {
    std::fs::read_to_string(deploy("fleetwatch.toml")).expect("deploy/fleetwatch.toml").parse().expect("TOML")
}

fn port_of(address: &str) -> u16 {
    address.rsplit(':').next().and_then(|port| port.parse().ok()).unwrap_or_else(|| panic!("no port in {address}"))
}

/// `fleetwatch-<service> --check-config` with this environment, and `--help` takes every flag.
fn accepts(service: &str, command: &[String], env: &BTreeMap<String, String>, whose: &str) {
    assert_eq!(command[0], format!("fleetwatch-{service}"), "{whose}: {command:?}");
    let binary = bin_dir().join(&command[0]);
    let help = Command::new(&binary).arg("--help").output().expect("--help");
    let help = String::from_utf8_lossy(&help.stdout);
    for flag in command.iter().filter(|word| word.starts_with("--")) {
        assert!(help.contains(flag.as_str()), "{whose}: fleetwatch-{service} takes {flag}");
    }
    let mut check = Command::new(&binary);
    check.args(&command[1..]).arg("--check-config").env_clear().envs(env);
    // The containers' path for the file, here.
    check.env("FLEETWATCH_CONFIG", deploy("fleetwatch.toml"));
    assert_eq!(env.get("FLEETWATCH_CONFIG").map(String::as_str), Some("/etc/fleetwatch/fleetwatch.toml"), "{whose}");
    let checked = check.output().expect("--check-config");
    assert!(
        checked.status.success(),
        "{whose}: fleetwatch-{service} refuses its configuration:\n{}",
        String::from_utf8_lossy(&checked.stderr)
    );
}

fn strings(value: &Value) -> Vec<String> {
    value.as_array().expect("a list").iter().map(|word| word.as_str().expect("a string").to_owned()).collect()
}

/// Compose's `${NAME:?...}` and `${NAME:-default}`, from the secrets.
fn interpolate(value: &str, secrets: &BTreeMap<String, String>) -> String {
    let Some(inner) = value.strip_prefix("${").and_then(|rest| rest.strip_suffix('}')) else {
        assert!(!value.contains("${"), "one variable a value: {value}");
        return value.to_owned();
    };
    let (name, default) = match inner.split_once(":-") {
        Some((name, default)) => (name, Some(default)),
        None => (inner.split_once(":?").map_or(inner, |(name, _)| name), None),
    };
    match (secrets.get(name), default) {
        (Some(secret), _) => secret.clone(),
        (None, Some(default)) => default.to_owned(),
        (None, None) => panic!("{name} is required, and deploy/secrets.sh does not make it"),
    }
}

/// A Compose service's environment, its variables taken from the secrets.
fn compose_environment(spec: &Value, secrets: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let variables = spec["environment"].as_object().expect("environment");
    variables
        .iter()
        .map(|(key, value)| (key.clone(), interpolate(value.as_str().expect("a string"), secrets)))
        .collect()
}

/// The value after `flag` in a command, as a number.
fn number_after(command: &[String], flag: &str) -> Option<u32> {
    let at = command.iter().position(|word| word == flag)?;
    Some(command.get(at + 1).and_then(|value| value.parse().ok()).unwrap_or_else(|| panic!("{flag} in {command:?}")))
}

/// For each partitioned service, its roles (a partition's index, or none for the fleet
/// tier) must be one tier and every index once, all told the same count.
fn one_tier_and_every_partition(roles: &BTreeMap<&str, Vec<(u32, Option<u32>)>>, whose: &str) {
    for service in ["processor", "alerter"] {
        let mut found = roles.get(service).cloned().unwrap_or_default();
        found.sort();
        let count = found.first().map_or(0, |(count, _)| *count);
        assert!(count > 1, "{whose}: {service} is partitioned");
        let expected: Vec<(u32, Option<u32>)> =
            [(count, None)].into_iter().chain((0..count).map(|index| (count, Some(index)))).collect();
        assert_eq!(found, expected, "{whose}: {service}'s tier and partitions");
    }
}

#[test]
fn compose_runs_every_service_as_the_code_expects() {
    let compose = &yaml_documents("compose/compose.yaml")[0];
    let secrets = secrets();
    let config = config();
    let probe_port = port_of(config["probe"]["listen"].as_str().expect("probe.listen"));
    let services = compose["services"].as_object().expect("services");
    let mut names: Vec<&str> = services.keys().map(String::as_str).collect();
    names.sort();
    let mut expected: Vec<&str> = SERVICES.iter().copied().chain(["nats"]).collect();
    expected.sort();
    assert_eq!(names, expected);
    assert!(config["nats"]["url"].as_str().expect("nats.url").starts_with("nats://nats:"), "the service `nats`");

    for service in SERVICES {
        let spec = &services[service];
        assert_eq!(spec["image"], format!("fleetwatch:{}", env!("CARGO_PKG_VERSION")), "{service}");
        assert_eq!(spec["build"]["dockerfile"], "deploy/Dockerfile", "{service}");
        let env = compose_environment(spec, &secrets);
        accepts(service, &strings(&spec["command"]), &env, &format!("compose {service}"));
        let health = strings(&spec["healthcheck"]["test"]).join(" ");
        assert!(health.ends_with(&format!("http://127.0.0.1:{probe_port}/readyz")), "{service}: {health}");
        assert!(spec["volumes"].to_string().contains("/etc/fleetwatch/fleetwatch.toml"), "{service}");
        let published: Vec<String> = spec.get("ports").map(strings).unwrap_or_default();
        let serves = match service {
            "gateway" => Some(config["gateway"]["port"].as_integer().expect("gateway.port")),
            "collector" => Some(config["collector"]["http"]["port"].as_integer().expect("collector.http.port")),
            _ => None,
        };
        assert_eq!(published, serves.map(|port| format!("{port}:{port}")).into_iter().collect::<Vec<_>>(), "{service}");
    }
    let archiver_volumes = services["archiver"]["volumes"].to_string();
    let db_path = config["archiver"]["db_path"].as_str().expect("archiver.db_path");
    assert!(db_path.starts_with("/var/lib/fleetwatch/") && archiver_volumes.contains(":/var/lib/fleetwatch\""));

    // nats-server gets every password auth.conf asks for, and its configuration parses.
    let nats_env = services["nats"]["environment"].as_object().expect("nats environment");
    for user in fleetwatch_tests::NATS_USERS {
        let key = format!("FLEETWATCH_{}_PASSWORD", user.to_uppercase());
        assert!(nats_env.contains_key(&key), "compose nats lacks {key}");
    }
    nats_accepts("compose/nats-server.conf", &secrets);
}

#[test]
fn kubernetes_runs_every_service_as_the_code_expects() {
    let kustomization = &yaml_documents("kustomization.yaml")[0];
    let secrets = secrets();
    let config = config();
    let probe_port = port_of(config["probe"]["listen"].as_str().expect("probe.listen")) as i64;
    let namespace = kustomization["namespace"].as_str().expect("namespace");

    // Every manifest is applied; every generated file exists.
    let resources = strings(&kustomization["resources"]);
    let mut manifests: Vec<String> = std::fs::read_dir(deploy("k8s"))
        .expect("deploy/k8s")
        .map(|entry| format!("k8s/{}", entry.expect("entry").file_name().to_string_lossy()))
        .filter(|name| name.ends_with(".yaml"))
        .collect();
    manifests.sort();
    let mut listed = resources.clone();
    listed.sort();
    assert_eq!(listed, manifests);
    for generator in kustomization["configMapGenerator"].as_array().expect("configMapGenerator") {
        for file in strings(&generator["files"]) {
            let path = file.split_once('=').map_or(file.as_str(), |(_, path)| path);
            assert!(deploy(path).is_file(), "{path}");
        }
    }
    assert_eq!(kustomization["secretGenerator"][0]["name"], "fleetwatch-secrets");
    assert_eq!(strings(&kustomization["secretGenerator"][0]["envs"]), ["secrets.env"]);

    let objects: Vec<Value> = resources.iter().flat_map(|path| yaml_documents(path)).collect();
    let find = |kind: &str, name: &str| {
        objects
            .iter()
            .find(|object| object["kind"] == kind && object["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("no {kind} {name}"))
    };
    assert_eq!(find("Namespace", namespace)["apiVersion"], "v1");

    // The NATS cluster: three servers, routed to each other through the headless Service.
    let nats = find("StatefulSet", "nats");
    let servers = nats["spec"]["replicas"].as_i64().expect("replicas");
    assert_eq!(servers, 3);
    let headless = nats["spec"]["serviceName"].as_str().expect("serviceName");
    assert_eq!(find("Service", headless)["spec"]["clusterIP"], "None");
    let routes = std::fs::read_to_string(deploy("k8s/nats-server.conf")).expect("k8s/nats-server.conf");
    for index in 0..servers {
        assert!(
            routes.contains(&format!("nats://nats-{index}.{headless}.{namespace}.svc:6222")),
            "route to nats-{index}"
        );
    }
    let client_port = find("Service", "nats")["spec"]["ports"][0]["port"].as_i64().expect("port");
    assert_eq!(config["nats"]["url"].as_str(), Some(format!("nats://nats:{client_port}").as_str()));
    let nats_container = &nats["spec"]["template"]["spec"]["containers"][0];
    let mut nats_env = BTreeMap::from([("POD_NAME".to_owned(), "nats-0".to_owned())]);
    nats_env.extend(environment(nats_container, &secrets, "the nats StatefulSet"));
    assert!(strings(&nats_container["args"]).join(" ").contains("/etc/nats/nats-server.conf"));
    nats_accepts("k8s/nats-server.conf", &nats_env);

    for service in SERVICES {
        let deployment = find("Deployment", &format!("fleetwatch-{service}"));
        let pod = &deployment["spec"]["template"]["spec"];
        let container = &pod["containers"][0];
        assert_eq!(container["image"], format!("fleetwatch:{}", env!("CARGO_PKG_VERSION")), "{service}");
        let env = environment(container, &secrets, service);
        assert_eq!(env["FLEETWATCH_NATS__REPLICAS"], servers.to_string(), "{service}: a replica on each server");
        accepts(service, &strings(&container["command"]), &env, &format!("kubernetes {service}"));

        let ports: BTreeMap<String, i64> = container["ports"]
            .as_array()
            .expect("ports")
            .iter()
            .map(|port| {
                (port["name"].as_str().expect("name").to_owned(), port["containerPort"].as_i64().expect("port"))
            })
            .collect();
        assert_eq!(ports.get("probe"), Some(&probe_port), "{service}");
        for (probe, path) in [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")] {
            assert_eq!(container[probe]["httpGet"]["path"], path, "{service} {probe}");
            assert_eq!(container[probe]["httpGet"]["port"], "probe", "{service} {probe}");
        }
        let serves = match service {
            "gateway" => Some(config["gateway"]["port"].as_integer().expect("gateway.port")),
            "collector" => Some(config["collector"]["http"]["port"].as_integer().expect("collector.http.port")),
            _ => None,
        };
        assert_eq!(ports.get("http").copied(), serves, "{service}");
        if serves.is_some() {
            let exposed = find("Service", &format!("fleetwatch-{service}"));
            assert_eq!(exposed["spec"]["ports"][0]["targetPort"], "http", "{service}");
            assert_eq!(exposed["spec"]["selector"], deployment["spec"]["selector"]["matchLabels"], "{service}");
        }
        let mounts = container["volumeMounts"].to_string();
        assert!(mounts.contains("\"/etc/fleetwatch\""), "{service} mounts the ConfigMap");
        // A second processor, alerter or collector would fold or poll twice.
        if service != "gateway" {
            assert_eq!(deployment["spec"]["replicas"], 1, "{service}");
            assert_eq!(deployment["spec"]["strategy"]["type"], "Recreate", "{service}");
        }
    }
    let archiver = &find("Deployment", "fleetwatch-archiver")["spec"]["template"]["spec"];
    assert!(archiver["containers"][0]["volumeMounts"].to_string().contains("\"/var/lib/fleetwatch\""));
    let claim = archiver["volumes"]
        .as_array()
        .expect("volumes")
        .iter()
        .find_map(|volume| volume["persistentVolumeClaim"]["claimName"].as_str());
    find("PersistentVolumeClaim", claim.expect("the archive's volume"));
}

#[test]
fn compose_partitioned_runs_one_tier_and_every_partition() {
    let base = &yaml_documents("compose/compose.yaml")[0]["services"];
    let overrides = &yaml_documents("compose/partitioned.yaml")[0]["services"];
    let secrets = secrets();
    let mut roles: BTreeMap<&str, Vec<(u32, Option<u32>)>> = BTreeMap::new();
    for (name, spec) in overrides.as_object().expect("services") {
        let service = spec["extends"]["service"].as_str().unwrap_or(name);
        if !spec["extends"].is_null() {
            assert_eq!(spec["extends"]["file"], "compose.yaml", "{name}");
        }
        let base_spec = &base[service];
        assert!(base_spec.is_object(), "{name}: compose.yaml has no {service}");
        let command = strings(&spec["command"]);
        accepts(service, &command, &compose_environment(base_spec, &secrets), &format!("compose {name}"));
        let count = number_after(&command, "--partitions").unwrap_or(1);
        roles.entry(service).or_default().push((count, number_after(&command, "--partition")));
    }
    one_tier_and_every_partition(&roles, "compose/partitioned.yaml");
}

#[test]
fn kubernetes_partitioned_runs_one_tier_and_every_partition() {
    let kustomization = &yaml_documents("partitioned/kustomization.yaml")[0];
    assert_eq!(strings(&kustomization["resources"]), ["..", "partitions.yaml"], "the base, and the partitions");
    let base = yaml_documents("k8s/fleetwatch.yaml");
    let added = yaml_documents("partitioned/partitions.yaml");
    let find = |objects: &[Value], kind: &str, name: &str| {
        let found = objects.iter().find(|object| object["kind"] == kind && object["metadata"]["name"] == name);
        found.cloned().unwrap_or_else(|| panic!("no {kind} {name}"))
    };
    let secrets = secrets();
    let mut roles: BTreeMap<&str, Vec<(u32, Option<u32>)>> = BTreeMap::new();
    for service in ["processor", "alerter"] {
        // The tier: the base's Deployment, given the patch's arguments.
        let name = format!("fleetwatch-{service}");
        let patch = kustomization["patches"]
            .as_array()
            .expect("patches")
            .iter()
            .find(|patch| patch["target"]["kind"] == "Deployment" && patch["target"]["name"] == name.as_str())
            .unwrap_or_else(|| panic!("no patch for {name}"));
        let ops: yaml_serde::Value = yaml_serde::from_str(patch["patch"].as_str().expect("a patch")).expect("YAML");
        let ops = serde_json::to_value(ops).expect("JSON");
        assert_eq!(ops[0]["op"], "add");
        assert_eq!(ops[0]["path"], "/spec/template/spec/containers/0/args");
        let container = &find(&base, "Deployment", &name)["spec"]["template"]["spec"]["containers"][0];
        let tier = [strings(&container["command"]), strings(&ops[0]["value"])].concat();
        accepts(service, &tier, &environment(container, &secrets, service), &format!("kubernetes {service} tier"));
        let count = number_after(&tier, "--partitions").expect("a count");
        roles.entry(service).or_default().push((count, None));

        // The partitions: a StatefulSet whose pods' indexes are their partitions.
        let set = find(&added, "StatefulSet", &format!("{name}-part"));
        assert_eq!(set["spec"]["replicas"], count, "{service}: a pod for each partition");
        let governing = find(&added, "Service", set["spec"]["serviceName"].as_str().expect("serviceName"));
        assert_eq!(governing["spec"]["clusterIP"], "None");
        assert_eq!(governing["spec"]["selector"], set["spec"]["selector"]["matchLabels"]);
        let container = &set["spec"]["template"]["spec"]["containers"][0];
        let partition = container["env"].as_array().expect("env").iter().find(|v| v["name"] == "PARTITION");
        let field = &partition.expect("a PARTITION variable")["valueFrom"]["fieldRef"]["fieldPath"];
        assert_eq!(field, "metadata.labels['apps.kubernetes.io/pod-index']");
        for (probe, path) in [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")] {
            assert_eq!(container[probe]["httpGet"]["path"], path, "{service} {probe}");
        }
        let env = environment(container, &secrets, service);
        for index in 0..count {
            let command: Vec<String> = strings(&container["command"])
                .iter()
                .map(|word| word.replace("$(PARTITION)", &index.to_string()))
                .collect();
            accepts(service, &command, &env, &format!("kubernetes {service} partition {index}"));
            assert_eq!(number_after(&command, "--partitions"), Some(count), "{service} partition {index}");
            roles.entry(service).or_default().push((count, number_after(&command, "--partition")));
        }
    }
    one_tier_and_every_partition(&roles, "deploy/partitioned");
}

/// A container's environment, with every secret it names taken from the Secret.
fn environment(container: &Value, secrets: &BTreeMap<String, String>, whose: &str) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    for variable in container["env"].as_array().expect("env") {
        let name = variable["name"].as_str().expect("name").to_owned();
        if let Some(value) = variable["value"].as_str() {
            env.insert(name, value.to_owned());
        } else if let Some(secret) = variable["valueFrom"]["secretKeyRef"].as_object() {
            assert_eq!(secret["name"], "fleetwatch-secrets", "{whose}: {name}");
            let key = secret["key"].as_str().expect("key");
            match secrets.get(key) {
                Some(value) => {
                    env.insert(name, value.clone());
                }
                None => {
                    assert_eq!(secret.get("optional"), Some(&Value::Bool(true)), "{whose}: secrets.sh makes no {key}")
                }
            }
        }
    }
    env
}

/// `nats-server -t` on the configuration, with deploy/nats/auth.conf beside it.
fn nats_accepts(path: &str, env: &BTreeMap<String, String>) {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::copy(deploy(path), dir.path().join("nats-server.conf")).expect("copy");
    std::fs::copy(deploy("nats/auth.conf"), dir.path().join("auth.conf")).expect("copy");
    let checked = Command::new(nats_server())
        .arg("--config")
        .arg(dir.path().join("nats-server.conf"))
        .arg("-t")
        .envs(env)
        .output()
        .expect("nats-server");
    let said = format!("{}{}", String::from_utf8_lossy(&checked.stdout), String::from_utf8_lossy(&checked.stderr));
    assert!(checked.status.success(), "nats-server -t {path}:\n{said}");
}

#[test]
fn the_image_holds_the_five_services_at_this_version() {
    let dockerfile = std::fs::read_to_string(deploy("Dockerfile")).expect("deploy/Dockerfile");
    assert!(dockerfile.contains(&format!("-t fleetwatch:{} .", env!("CARGO_PKG_VERSION"))));
    for service in SERVICES {
        assert!(dockerfile.contains(&format!("/build/target/release/fleetwatch-{service}")), "{service}");
    }
    // The runtime image keeps libduckdb where the build put it (the archiver's rpath).
    let lib = "/opt/fleetwatch/libduckdb-1.5.6";
    assert!(
        dockerfile.contains(&format!("DUCKDB_LIB_DIR={lib}"))
            && dockerfile.contains(&format!("{lib}/libduckdb.so {lib}/"))
    );
    let tools = std::fs::read_to_string(deploy("tools.sh")).expect("tools.sh");
    assert!(tools.contains("duckdb_dir=\"$cache/libduckdb-1.5.6\""), "the same libduckdb as tools.sh");
}
