//! The deployment files are checked offline against the code: the systemd units pass
//! `systemd-analyze verify` with the real binaries in their ExecStart lines, name every
//! service, keep the exposure `systemd-analyze security` gives them at 2.0 or less, and pass only flags
//! the binaries take; the sample nats-server configuration parses.

use fleetwatch_tests::{SERVICES, bin_dir, deploy, nats_server};
use std::process::Command;

#[test]
fn the_systemd_units_verify_and_run_every_service_with_flags_it_takes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let units = deploy("systemd");
    for entry in std::fs::read_dir(&units).expect("deploy/systemd") {
        let entry = entry.expect("entry");
        if entry.path().is_file() {
            let text = std::fs::read_to_string(entry.path()).expect("unit");
            let text = text
                .replace("/usr/local/bin/fleetwatch-%i", &format!("{}/fleetwatch-%i", bin_dir().display()))
                .replace("/usr/local/bin/nats-server", &nats_server());
            std::fs::write(dir.path().join(entry.file_name()), text).expect("write");
        }
    }
    let template = std::fs::read_to_string(units.join("fleetwatch@.service")).expect("template");
    let exec = template.lines().find_map(|line| line.strip_prefix("ExecStart=")).expect("ExecStart");
    let target = std::fs::read_to_string(units.join("fleetwatch.target")).expect("target");
    let wants: Vec<&str> =
        target.lines().find_map(|line| line.strip_prefix("Wants=")).expect("Wants").split(' ').collect();

    let mut paths = vec![dir.path().join("fleetwatch-nats.service"), dir.path().join("fleetwatch.target")];
    assert!(wants.contains(&"fleetwatch-nats.service"), "{wants:?}");
    for service in SERVICES {
        let instance = format!("fleetwatch@{service}.service");
        assert!(wants.contains(&instance.as_str()), "fleetwatch.target starts {instance}: {wants:?}");
        std::os::unix::fs::symlink("fleetwatch@.service", dir.path().join(&instance)).expect("instance");
        paths.push(dir.path().join(&instance));
        // Every flag of the ExecStart line is one the binary takes.
        let help =
            Command::new(bin_dir().join(format!("fleetwatch-{service}"))).arg("--help").output().expect("--help");
        let help = String::from_utf8_lossy(&help.stdout);
        for flag in exec.split(' ').filter(|word| word.starts_with("--")) {
            assert!(help.contains(flag), "fleetwatch-{service} takes {flag}:\n{help}");
        }
    }
    assert_eq!(wants.len(), SERVICES.len() + 1, "nothing else: {wants:?}");

    let verify = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .args(&paths)
        .output()
        .expect("systemd-analyze (apt-get install systemd)");
    let said = format!("{}{}", String::from_utf8_lossy(&verify.stdout), String::from_utf8_lossy(&verify.stderr));
    assert!(verify.status.success() && said.trim().is_empty(), "systemd-analyze verify:\n{said}");

    for unit in ["fleetwatch@archiver.service", "fleetwatch-nats.service"] {
        let security = Command::new("systemd-analyze")
            .args(["security", "--offline=yes", "--threshold=20"])
            .arg(dir.path().join(unit))
            .output()
            .expect("systemd-analyze security");
        let report = String::from_utf8_lossy(&security.stdout);
        assert!(security.status.success(), "{unit}'s exposure is at most 2.0:\n{report}");
    }
}

#[test]
fn the_sample_nats_configuration_parses_with_the_permissions_it_includes() {
    let dir = tempfile::tempdir().expect("temp dir");
    for file in ["nats-server.conf", "auth.conf"] {
        std::fs::copy(deploy(&format!("nats/{file}")), dir.path().join(file)).expect("copy");
    }
    let mut command = Command::new(nats_server());
    command.arg("--config").arg(dir.path().join("nats-server.conf")).arg("-t");
    for user in fleetwatch_tests::NATS_USERS {
        command.env(format!("FLEETWATCH_{}_PASSWORD", user.to_uppercase()), "x");
    }
    let checked = command.output().expect("nats-server");
    let said = format!("{}{}", String::from_utf8_lossy(&checked.stdout), String::from_utf8_lossy(&checked.stderr));
    assert!(checked.status.success(), "nats-server -t:\n{said}");
}
