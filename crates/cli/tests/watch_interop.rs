//! `certwatch watch` end to end against the loopback interop environment: the first result is
//! one change (one hook run with the documented environment), nothing more while nothing
//! changes, failing and slow hooks never stop the watcher, and SIGTERM stops it with 0.
//!
//! `CERTWATCH_INTEROP=/tmp/certwatch-interop/env.json cargo test -p certwatch-cli --features interop --test watch_interop`
#![cfg(feature = "interop")]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use certwatch_testkit::Interop;

/// A running `certwatch watch`, stopped (SIGTERM, then SIGKILL) when dropped.
struct Watch {
    child: Child,
    dir: tempfile::TempDir,
}

impl Watch {
    fn start(env: &Interop, extra: &[&str]) -> Watch {
        let dir = tempfile::tempdir().unwrap();
        let stdout = std::fs::File::create(dir.path().join("stdout")).unwrap();
        let stderr = std::fs::File::create(dir.path().join("stderr")).unwrap();
        let mut args = vec![
            "watch",
            "--resolver",
            env.str("dns.unbound").unwrap(),
            "--trust-anchor",
            env.str("dns.trust_anchor").unwrap(),
            "--allow-private-targets",
            "--timeout",
            "10",
            "--services",
            "c2s-starttls",
        ];
        args.extend_from_slice(extra);
        eprintln!("certwatch {args:?}");
        let child = Command::new(env!("CARGO_BIN_EXE_certwatch"))
            .args(&args)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .expect("start certwatch watch");
        Watch { child, dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(name)).unwrap_or_default()
    }

    /// Waits (up to two minutes) until `cond` holds on the named file's text.
    fn wait_for(&mut self, name: &str, cond: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let text = self.read(name);
            if cond(&text) {
                return text;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "certwatch watch ended ({status}) early\nstdout:\n{}\nstderr:\n{}",
                    self.read("stdout"),
                    self.read("stderr")
                );
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting on {name}:\n{text}\nstderr:\n{}",
                self.read("stderr")
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Sends SIGTERM and returns the exit code.
    fn terminate(&mut self) -> Option<i32> {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(sent.success());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            assert!(Instant::now() < deadline, "certwatch watch ignored SIGTERM");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn spki(env: &Interop, key: &str) -> String {
    env.str(&format!("pki.keys.{key}.spki_sha256"))
        .unwrap()
        .to_owned()
}

/// A hook script that appends its CERTWATCH_* environment (one run per block) and copies the
/// report file, so the test can read them after the hook ended.
fn recording_hook(dir: &Path) -> String {
    format!(
        "n=$(ls '{d}' | grep -c '^report-'); cp \"$CERTWATCH_REPORT\" '{d}/report-'\"$n\"'.json'; \
         {{ env | grep '^CERTWATCH_' | sort; echo '--'; }} >> '{d}/runs'",
        d = dir.display()
    )
}

fn runs(text: &str) -> Vec<BTreeMap<String, String>> {
    text.split("--\n")
        .filter(|b| !b.trim().is_empty())
        .map(|b| {
            b.lines()
                .filter_map(|l| l.split_once('='))
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect()
        })
        .collect()
}

#[test]
fn first_result_runs_the_hook_once_with_the_documented_environment() {
    let env = Interop::require();
    let hooks = tempfile::tempdir().unwrap();
    let hook = recording_hook(hooks.path());
    let mut w = Watch::start(
        &env,
        &[
            "--via",
            "direct",
            "--interval",
            "2s",
            "--exec",
            &hook,
            "match.test",
        ],
    );
    let runs_file = hooks.path().join("runs");
    let deadline = Instant::now() + Duration::from_secs(120);
    while runs(&std::fs::read_to_string(&runs_file).unwrap_or_default()).is_empty() {
        assert!(
            Instant::now() < deadline,
            "no hook run: {}",
            w.read("stderr")
        );
        assert!(
            w.child.try_wait().unwrap().is_none(),
            "{}",
            w.read("stderr")
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // Several more intervals with nothing changing: no more runs, no more lines.
    std::thread::sleep(Duration::from_secs(9));
    let all = runs(&std::fs::read_to_string(&runs_file).unwrap());
    assert_eq!(all.len(), 1, "{all:?}");
    let run = &all[0];
    assert_eq!(run["CERTWATCH_DOMAIN"], "match.test");
    assert_eq!(run["CERTWATCH_VERDICT"], "match");
    assert_eq!(run["CERTWATCH_PREVIOUS_VERDICT"], "unknown");
    assert_eq!(run["CERTWATCH_CHANGE"], "first");
    assert_eq!(run["CERTWATCH_VANTAGE"], "direct");
    let presented: BTreeSet<&str> = run["CERTWATCH_PRESENTED_SPKI_SHA256"].split(' ').collect();
    let (ec, rsa) = (spki(&env, "host-ec"), spki(&env, "host-rsa"));
    assert_eq!(presented, BTreeSet::from([ec.as_str(), rsa.as_str()]));
    // EXPECTED: the TLSA records, four words each.
    let words: Vec<&str> = run["CERTWATCH_EXPECTED"].split(' ').collect();
    let expected: BTreeSet<String> = words.chunks(4).map(|c| c.join(" ")).collect();
    assert_eq!(
        expected,
        BTreeSet::from([format!("3 1 1 {ec}"), format!("3 1 1 {rsa}")])
    );
    // The report file held the JSON report during the hook, and is gone after it.
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(hooks.path().join("report-0.json")).unwrap())
            .unwrap();
    assert_eq!(report["schema_version"], 1);
    assert_eq!(report["domain"], "match.test");
    assert_eq!(report["verdict"], "match");
    assert!(!Path::new(&run["CERTWATCH_REPORT"]).exists());
    // One change line on stdout.
    let stdout = w.read("stdout");
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(stdout.contains("match.test: unknown -> match"), "{stdout}");
    assert_eq!(w.terminate(), Some(0));
}

#[test]
fn json_events_and_failing_hooks_do_not_stop_the_watch() {
    let env = Interop::require();
    let mut w = Watch::start(
        &env,
        &[
            "--via",
            "direct",
            "--interval",
            "2s",
            "--json",
            "--exec",
            "echo hook-says-hello; exit 7",
            "match.test",
            "nodata.test",
        ],
    );
    let stderr = w.wait_for("stderr", |t| {
        t.matches("failed (exit status: 7)").count() >= 2
    });
    assert!(stderr.contains("hook for match.test failed"), "{stderr}");
    assert!(stderr.contains("hook for nodata.test failed"), "{stderr}");
    // The hook's own output goes to stderr: stdout holds only events.
    assert!(stderr.contains("hook-says-hello"));
    let stdout = w.read("stdout");
    let events: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events.len(), 2, "{stdout}");
    let by_domain: BTreeMap<&str, &serde_json::Value> = events
        .iter()
        .map(|e| (e["domain"].as_str().unwrap(), e))
        .collect();
    assert_eq!(by_domain["match.test"]["verdict"], "match");
    assert_eq!(by_domain["nodata.test"]["verdict"], "no-records");
    for e in &events {
        assert_eq!(e["event"], "change");
        assert_eq!(e["change"], "first");
        assert_eq!(e["previous_verdict"], "unknown");
        assert_eq!(e["report"]["schema_version"], 1);
        assert_eq!(e["report"]["domain"], e["domain"]);
    }
    // Still running after the hooks failed.
    std::thread::sleep(Duration::from_secs(3));
    assert!(w.child.try_wait().unwrap().is_none());
    assert_eq!(w.terminate(), Some(0));
}

#[test]
fn a_slow_hook_is_killed_and_reported() {
    let env = Interop::require();
    let mut w = Watch::start(
        &env,
        &[
            "--via",
            "direct",
            "--interval",
            "2s",
            "--hook-timeout",
            "1",
            "--exec",
            "sleep 60",
            "match.test",
        ],
    );
    let stderr = w.wait_for("stderr", |t| t.contains("did not finish within 1s"));
    assert!(stderr.contains("hook for match.test"), "{stderr}");
    std::thread::sleep(Duration::from_secs(3));
    assert!(w.child.try_wait().unwrap().is_none());
    assert_eq!(w.terminate(), Some(0));
}

/// The same first change through the private Tor network: the vantage names the exit.
#[cfg(feature = "tor")]
#[test]
fn watch_via_embedded_tor() {
    let env = Interop::require();
    let arti = env.private_arti_config().unwrap();
    let mut w = Watch::start(
        &env,
        &[
            "--via",
            "tor",
            "--tor-config",
            arti.path_str(),
            "--interval",
            "30s",
            "--json",
            "match.test",
        ],
    );
    let stdout = w.wait_for("stdout", |t| t.lines().count() >= 1);
    let e: serde_json::Value = serde_json::from_str(stdout.lines().next().unwrap()).unwrap();
    assert_eq!(e["verdict"], "match", "{e}");
    for entry in e["report"]["endpoints"].as_array().unwrap() {
        assert!(
            entry["vantage"].as_str().unwrap().starts_with("tor"),
            "{entry}"
        );
    }
    assert_eq!(w.terminate(), Some(0));
}

/// A SOCKS5 proxy for the test: it forwards each CONNECT to the address asked for, or, while
/// `divert` holds an address, to that address instead (a hostile exit under the test's
/// control, so verdict changes can be produced without touching the shared environment).
struct DivertingSocks {
    addr: std::net::SocketAddr,
    divert: std::sync::Arc<std::sync::Mutex<Option<std::net::SocketAddr>>>,
}

impl DivertingSocks {
    fn start() -> DivertingSocks {
        use std::io::{Read as _, Write as _};
        use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let divert: std::sync::Arc<std::sync::Mutex<Option<SocketAddr>>> = Default::default();
        let d = divert.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(mut client) = client else { continue };
                let d = d.clone();
                std::thread::spawn(move || -> std::io::Result<()> {
                    let mut head = [0u8; 2];
                    client.read_exact(&mut head)?;
                    let mut methods = vec![0u8; usize::from(head[1])];
                    client.read_exact(&mut methods)?;
                    client.write_all(&[5, 0])?;
                    let mut req = [0u8; 4];
                    client.read_exact(&mut req)?;
                    let ip: IpAddr = match req[3] {
                        1 => {
                            let mut b = [0u8; 4];
                            client.read_exact(&mut b)?;
                            b.into()
                        }
                        4 => {
                            let mut b = [0u8; 16];
                            client.read_exact(&mut b)?;
                            b.into()
                        }
                        _ => return Ok(()),
                    };
                    let mut port = [0u8; 2];
                    client.read_exact(&mut port)?;
                    let asked = SocketAddr::new(ip, u16::from_be_bytes(port));
                    let to = d.lock().unwrap().unwrap_or(asked);
                    let Ok(upstream) = TcpStream::connect(to) else {
                        client.write_all(&[5, 5, 0, 1, 0, 0, 0, 0, 0, 0])?;
                        return Ok(());
                    };
                    client.write_all(&[5, 0, 0, 1, 0, 0, 0, 0, 0, 0])?;
                    let (mut c2, mut u2) = (client.try_clone()?, upstream.try_clone()?);
                    let (mut c, mut u) = (client, upstream);
                    let up = std::thread::spawn(move || {
                        let _ = std::io::copy(&mut c2, &mut u2);
                        let _ = u2.shutdown(std::net::Shutdown::Write);
                    });
                    let _ = std::io::copy(&mut u, &mut c);
                    let _ = c.shutdown(std::net::Shutdown::Write);
                    let _ = up.join();
                    Ok(())
                });
            }
        });
        DivertingSocks { addr, divert }
    }

    fn divert(&self, to: Option<&str>) {
        *self.divert.lock().unwrap() = to.map(|a| a.parse().unwrap());
    }
}

/// Verdict changes end to end: through a SOCKS proxy the test controls, the drill's domain
/// first matches, then the proxy turns hostile (the environment's MITM, another key: a
/// change to `mismatch`), then honest again (a change back to `match`). Each change runs the
/// hook once, with the previous verdict; nothing runs between changes.
#[test]
fn verdict_changes_run_the_hook_with_the_previous_verdict() {
    let env = Interop::require();
    let domain = env.str("hostile.domain").unwrap().to_owned();
    let mitm = env.str("hostile.mitm.address").unwrap().to_owned();
    let mitm_key = env.str("hostile.mitm.spki_sha256").unwrap().to_owned();
    let socks = DivertingSocks::start();
    let hooks = tempfile::tempdir().unwrap();
    let hook = recording_hook(hooks.path());
    let via = format!("socks5://{}", socks.addr);
    let mut w = Watch::start(
        &env,
        &["--via", &via, "--interval", "2s", "--exec", &hook, &domain],
    );
    let runs_file = hooks.path().join("runs");
    let wait_runs = |w: &mut Watch, n: usize| -> Vec<BTreeMap<String, String>> {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let all = runs(&std::fs::read_to_string(&runs_file).unwrap_or_default());
            if all.len() >= n {
                return all;
            }
            assert!(Instant::now() < deadline, "{all:?}\n{}", w.read("stderr"));
            assert!(
                w.child.try_wait().unwrap().is_none(),
                "{}",
                w.read("stderr")
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    let first = wait_runs(&mut w, 1);
    assert_eq!(first[0]["CERTWATCH_VERDICT"], "match", "{first:?}");
    assert_eq!(first[0]["CERTWATCH_PREVIOUS_VERDICT"], "unknown");
    assert_eq!(first[0]["CERTWATCH_VANTAGE"], "socks");

    socks.divert(Some(&mitm));
    let second = wait_runs(&mut w, 2);
    let r = &second[1];
    assert_eq!(r["CERTWATCH_CHANGE"], "verdict", "{second:?}");
    assert_eq!(r["CERTWATCH_PREVIOUS_VERDICT"], "match");
    assert_eq!(r["CERTWATCH_VERDICT"], "mismatch");
    assert_eq!(r["CERTWATCH_PRESENTED_SPKI_SHA256"], mitm_key);
    assert!(!r["CERTWATCH_EXPECTED"].contains(&mitm_key));

    socks.divert(None);
    let third = wait_runs(&mut w, 3);
    let r = &third[2];
    assert_eq!(r["CERTWATCH_PREVIOUS_VERDICT"], "mismatch", "{third:?}");
    assert_eq!(r["CERTWATCH_VERDICT"], "match");
    assert_eq!(
        r["CERTWATCH_PRESENTED_SPKI_SHA256"],
        first[0]["CERTWATCH_PRESENTED_SPKI_SHA256"]
    );

    // Nothing changes any more: no further run.
    std::thread::sleep(Duration::from_secs(7));
    assert_eq!(runs(&std::fs::read_to_string(&runs_file).unwrap()).len(), 3);
    let stdout = w.read("stdout");
    assert_eq!(stdout.lines().count(), 3, "{stdout}");
    assert!(stdout.contains("match -> mismatch"), "{stdout}");
    assert!(stdout.contains("mismatch -> match"), "{stdout}");
    assert_eq!(w.terminate(), Some(0));
}

/// An indeterminate result right after a conclusive one is checked again before it counts:
/// a failure that is gone by then raises nothing; one that persists is a change.
#[test]
fn a_transient_failure_is_rechecked_before_it_counts() {
    let env = Interop::require();
    let domain = env.str("hostile.domain").unwrap().to_owned();
    let socks = DivertingSocks::start();
    let hooks = tempfile::tempdir().unwrap();
    let hook = recording_hook(hooks.path());
    let via = format!("socks5://{}", socks.addr);
    // --interval 2s: the re-check comes 1 s after the failure.
    let mut w = Watch::start(
        &env,
        &["--via", &via, "--interval", "2s", "--exec", &hook, &domain],
    );
    let runs_file = hooks.path().join("runs");
    let count = || runs(&std::fs::read_to_string(&runs_file).unwrap_or_default()).len();
    w.wait_for("stdout", |t| t.lines().count() == 1);
    assert_eq!(count(), 1);
    // Nothing listens on the discard port: the proxy refuses, the probe is inconclusive.
    socks.divert(Some("127.0.0.1:9"));
    w.wait_for("stderr", |t| t.contains("checking again"));
    socks.divert(None);
    // The re-check matches: no change, no hook run, for several intervals.
    std::thread::sleep(Duration::from_secs(6));
    assert_eq!(count(), 1, "{}", w.read("stdout"));
    assert_eq!(w.read("stdout").lines().count(), 1);
    // A failure that persists past the re-check is a change.
    socks.divert(Some("127.0.0.1:9"));
    let stdout = w.wait_for("stdout", |t| t.lines().count() == 2);
    assert!(stdout.contains("match -> indeterminate"), "{stdout}");
    let all = runs(&std::fs::read_to_string(&runs_file).unwrap());
    assert_eq!(all[1]["CERTWATCH_VERDICT"], "indeterminate");
    assert_eq!(all[1]["CERTWATCH_PREVIOUS_VERDICT"], "match");
    assert_eq!(all[1]["CERTWATCH_PRESENTED_SPKI_SHA256"], "");
    assert_eq!(w.terminate(), Some(0));
}
