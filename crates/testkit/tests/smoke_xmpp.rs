#![cfg(feature = "interop")]
//! Smoke tests of the XMPP peers that `scripts/interop-env up pki xmpp` starts.
//!
//! The peer is `openssl s_client`, the independent oracle: it negotiates STARTTLS (or direct
//! TLS), the leaf certificate it prints is hashed with `openssl x509 | openssl pkey | sha256sum`,
//! and the hash must equal the PKI description's `spki_sha256` of the key that server is said
//! to use. The client's signature algorithms are restricted so that the dual-certificate
//! Prosody has exactly one correct answer.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use certwatch_testkit::Interop;

/// Which certificate a client that accepts only these signature algorithms must get.
#[derive(Clone, Copy, Debug)]
enum KeyType {
    Ecdsa,
    Rsa,
}

impl KeyType {
    fn sigalgs(self) -> &'static str {
        match self {
            KeyType::Ecdsa => "ECDSA+SHA256:ECDSA+SHA384",
            // TLS 1.3 signs with RSA-PSS only; PKCS#1 is for TLS 1.2.
            KeyType::Rsa => "RSA-PSS+SHA256:RSA+SHA256",
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Service {
    C2sStarttls,
    C2sDirect,
    S2sStarttls,
    S2sDirect,
}

impl Service {
    fn port_key(self) -> &'static str {
        match self {
            Service::C2sStarttls => "c2s",
            Service::C2sDirect => "c2s_direct",
            Service::S2sStarttls => "s2s",
            Service::S2sDirect => "s2s_direct",
        }
    }

    fn args(self, domain: &str) -> Vec<String> {
        let a: &[&str] = match self {
            Service::C2sStarttls => &["-starttls", "xmpp", "-xmpphost", domain],
            Service::S2sStarttls => &["-starttls", "xmpp-server", "-xmpphost", domain],
            Service::C2sDirect => &["-alpn", "xmpp-client", "-servername", domain],
            Service::S2sDirect => &["-alpn", "xmpp-server", "-servername", domain],
        };
        a.iter().map(|s| s.to_string()).collect()
    }
}

/// Runs a program with `input` on stdin and returns its output (stdin closed afterwards).
fn run(program: &str, args: &[String], input: &[u8]) -> Output {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    let mut stdin = child.stdin.take().expect("stdin is piped");
    stdin.write_all(input).expect("write to the child's stdin");
    drop(stdin);
    child.wait_with_output().expect("wait for the child")
}

fn strings(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

/// The first PEM certificate in `text` (the leaf, as `openssl s_client` prints it).
fn first_pem_certificate(text: &str) -> Option<String> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let start = text.find(BEGIN)?;
    let len = text[start..].find(END)? + END.len();
    Some(format!("{}\n", &text[start..start + len]))
}

/// Hex SHA-256 of the certificate's SubjectPublicKeyInfo, computed by openssl and sha256sum.
fn spki_sha256(cert_pem: &str) -> String {
    let pubkey = run(
        "openssl",
        &strings(&["x509", "-pubkey", "-noout"]),
        cert_pem.as_bytes(),
    );
    assert!(pubkey.status.success(), "openssl x509 failed: {pubkey:?}");
    let der = run(
        "openssl",
        &strings(&["pkey", "-pubin", "-outform", "der"]),
        &pubkey.stdout,
    );
    assert!(der.status.success(), "openssl pkey failed: {der:?}");
    let sum = run("sha256sum", &[], &der.stdout);
    assert!(sum.status.success(), "sha256sum failed: {sum:?}");
    String::from_utf8(sum.stdout)
        .expect("sha256sum prints ASCII")
        .split_whitespace()
        .next()
        .expect("sha256sum prints a hash")
        .to_owned()
}

/// `timeout 20 openssl s_client ...` against the server `server` (a key under `xmpp`).
fn s_client(
    env: &Interop,
    server: &str,
    service: Service,
    domain: &str,
    key: Option<KeyType>,
) -> Output {
    let addr: IpAddr = env
        .str(&format!("xmpp.{server}.address"))
        .unwrap()
        .parse()
        .expect("an IP address");
    let port = env
        .u64(&format!("xmpp.{server}.{}", service.port_key()))
        .unwrap();
    s_client_at(SocketAddr::new(addr, port as u16), service, domain, key)
}

/// `timeout 20 openssl s_client ...` against `addr`.
fn s_client_at(addr: SocketAddr, service: Service, domain: &str, key: Option<KeyType>) -> Output {
    let mut args = strings(&["20", "openssl", "s_client", "-connect"]);
    args.push(addr.to_string());
    args.extend(service.args(domain));
    if let Some(k) = key {
        args.extend(strings(&["-sigalgs", k.sigalgs()]));
    }
    run("timeout", &args, b"")
}

/// The SPKI SHA-256 of the leaf that `server` presents for `domain` on `service`.
fn presented_spki(
    env: &Interop,
    server: &str,
    service: Service,
    domain: &str,
    key: KeyType,
) -> String {
    let out = s_client(env, server, service, domain, Some(key));
    leaf_spki(
        &out,
        &format!("{server} {service:?} for {domain} ({key:?})"),
    )
}

/// The SPKI SHA-256 of the first certificate in an `openssl s_client` output.
fn leaf_spki(out: &Output, what: &str) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let pem = first_pem_certificate(&stdout).unwrap_or_else(|| {
        panic!(
            "{what}: no certificate presented; openssl exit {:?}\nstdout:\n{stdout}\nstderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
    });
    spki_sha256(&pem)
}

fn expected(env: &Interop, key_name: &str) -> String {
    let want = env
        .str(&format!("pki.keys.{key_name}.spki_sha256"))
        .unwrap()
        .to_owned();
    assert_eq!(
        want.len(),
        64,
        "pki.keys.{key_name}.spki_sha256 is not a SHA-256 hex"
    );
    want
}

fn domains(env: &Interop, server: &str) -> Vec<String> {
    let v = env.get(&format!("xmpp.{server}.domains")).unwrap();
    let list: Vec<String> = v
        .as_array()
        .unwrap_or_else(|| panic!("xmpp.{server}.domains is not a list: {v}"))
        .iter()
        .map(|d| d.as_str().expect("a domain is a string").to_owned())
        .collect();
    assert!(!list.is_empty(), "xmpp.{server}.domains is empty");
    list
}

fn keys(env: &Interop, server: &str) -> Vec<String> {
    let v = env.get(&format!("xmpp.{server}.keys")).unwrap();
    v.as_array()
        .unwrap_or_else(|| panic!("xmpp.{server}.keys is not a list: {v}"))
        .iter()
        .map(|d| d.as_str().expect("a key name is a string").to_owned())
        .collect()
}

#[test]
fn prosody_c2s_starttls_presents_host_ec_to_an_ecdsa_client() {
    let env = Interop::require();
    let got = presented_spki(
        &env,
        "prosody",
        Service::C2sStarttls,
        "match.test",
        KeyType::Ecdsa,
    );
    assert_eq!(got, expected(&env, "host-ec"));
}

#[test]
fn prosody_is_dual_certificate_and_presents_host_rsa_to_an_rsa_only_client() {
    let env = Interop::require();
    assert_eq!(keys(&env, "prosody"), ["host-ec", "host-rsa"]);
    let got = presented_spki(
        &env,
        "prosody",
        Service::C2sStarttls,
        "match.test",
        KeyType::Rsa,
    );
    assert_eq!(got, expected(&env, "host-rsa"));
    assert_ne!(got, expected(&env, "host-ec"));
}

#[test]
fn prosody_c2s_direct_tls_presents_host_ec() {
    let env = Interop::require();
    let got = presented_spki(
        &env,
        "prosody",
        Service::C2sDirect,
        "match.test",
        KeyType::Ecdsa,
    );
    assert_eq!(got, expected(&env, "host-ec"));
}

#[test]
fn prosody_s2s_starttls_presents_host_ec() {
    let env = Interop::require();
    let got = presented_spki(
        &env,
        "prosody",
        Service::S2sStarttls,
        "match.test",
        KeyType::Ecdsa,
    );
    assert_eq!(got, expected(&env, "host-ec"));
}

#[test]
fn prosody_s2s_direct_tls_presents_host_ec_and_host_rsa() {
    let env = Interop::require();
    let ec = presented_spki(
        &env,
        "prosody",
        Service::S2sDirect,
        "match.test",
        KeyType::Ecdsa,
    );
    assert_eq!(ec, expected(&env, "host-ec"));
    let rsa = presented_spki(
        &env,
        "prosody",
        Service::S2sDirect,
        "match.test",
        KeyType::Rsa,
    );
    assert_eq!(rsa, expected(&env, "host-rsa"));
}

#[test]
fn prosody_serves_every_described_domain_over_starttls() {
    let env = Interop::require();
    let want = expected(&env, "host-ec");
    let list = domains(&env, "prosody");
    assert!(
        list.iter()
            .any(|d| d == env.str("xmpp.prosody.host").unwrap())
    );
    for domain in &list {
        let got = presented_spki(
            &env,
            "prosody",
            Service::C2sStarttls,
            domain,
            KeyType::Ecdsa,
        );
        assert_eq!(got, want, "c2s STARTTLS for {domain}");
    }
}

#[test]
fn prosody_refuses_starttls_for_a_domain_it_does_not_serve() {
    let env = Interop::require();
    let out = s_client(
        &env,
        "prosody",
        Service::C2sStarttls,
        "not-served.test",
        Some(KeyType::Ecdsa),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        first_pem_certificate(&stdout).is_none(),
        "Prosody presented a certificate for a host it does not serve:\n{stdout}"
    );
}

#[test]
fn ejabberd_presents_ejabberd_ec_on_all_four_services() {
    let env = Interop::require();
    assert_eq!(keys(&env, "ejabberd"), ["ejabberd-ec"]);
    let want = expected(&env, "ejabberd-ec");
    assert_ne!(
        want,
        expected(&env, "host-ec"),
        "the two servers must differ"
    );
    let host = env.str("xmpp.ejabberd.host").unwrap().to_owned();
    for service in [
        Service::C2sStarttls,
        Service::C2sDirect,
        Service::S2sStarttls,
        Service::S2sDirect,
    ] {
        for domain in ["multi.test", host.as_str()] {
            let got = presented_spki(&env, "ejabberd", service, domain, KeyType::Ecdsa);
            assert_eq!(got, want, "ejabberd {service:?} for {domain}");
        }
    }
}

/// Sends a stream header and returns what the server sends until its stream features end.
fn stream_features(addr: &str, port: u64, ns: &str, domain: &str) -> String {
    let mut s = TcpStream::connect(format!("{addr}:{port}"))
        .unwrap_or_else(|e| panic!("connect {addr}:{port}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "<?xml version='1.0'?><stream:stream xmlns='{ns}' \
         xmlns:stream='http://etherx.jabber.org/streams' to='{domain}' version='1.0'>"
    )
    .unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&buf);
        if text.contains("</stream:features>") || text.contains("</stream:stream>") {
            return text.into_owned();
        }
        match s.read(&mut chunk) {
            Ok(0) => return text.into_owned(),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) => panic!("read from {addr}:{port}: {e} after {text:?}"),
        }
    }
}

#[test]
fn notls_server_offers_no_starttls_on_c2s_and_s2s() {
    let env = Interop::require();
    assert_eq!(env.get("xmpp.notls.starttls").unwrap(), false);
    let addr = env.str("xmpp.notls.address").unwrap();
    let domain = &domains(&env, "notls")[0];
    for (key, ns) in [("c2s", "jabber:client"), ("s2s", "jabber:server")] {
        let port = env.u64(&format!("xmpp.notls.{key}")).unwrap();
        let features = stream_features(addr, port, ns, domain);
        assert!(
            features.contains("<stream:features"),
            "{key}: no stream features: {features}"
        );
        assert!(
            !features.contains("starttls"),
            "{key}: STARTTLS offered: {features}"
        );
    }
    // And the oracle agrees: openssl cannot negotiate TLS there. (openssl keeps waiting for a
    // STARTTLS offer that never comes, so a short timeout ends it.)
    let out = run(
        "timeout",
        &strings(&[
            "5",
            "openssl",
            "s_client",
            "-connect",
            &format!("{addr}:{}", env.u64("xmpp.notls.c2s").unwrap()),
            "-starttls",
            "xmpp",
            "-xmpphost",
            domain,
        ]),
        b"",
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        first_pem_certificate(&stdout).is_none(),
        "a certificate came from the no-TLS server:\n{stdout}"
    );
}

#[test]
fn a_starttls_server_offers_starttls_in_its_features() {
    // The control for the test above: the same probe sees <starttls/> at Prosody and ejabberd.
    let env = Interop::require();
    for server in ["prosody", "ejabberd"] {
        let addr = env.str(&format!("xmpp.{server}.address")).unwrap();
        let port = env.u64(&format!("xmpp.{server}.c2s")).unwrap();
        let features = stream_features(addr, port, "jabber:client", "match.test");
        assert!(
            features.contains("urn:ietf:params:xml:ns:xmpp-tls"),
            "{server}: {features}"
        );
    }
}

#[test]
fn prosody_answers_on_ipv6_loopback_too() {
    let env = Interop::require();
    let addr: IpAddr = env.str("xmpp.prosody.address6").unwrap().parse().unwrap();
    assert!(addr.is_ipv6());
    let port = env.u64("xmpp.prosody.c2s").unwrap() as u16;
    let out = s_client_at(
        SocketAddr::new(addr, port),
        Service::C2sStarttls,
        "match.test",
        Some(KeyType::Ecdsa),
    );
    assert_eq!(leaf_spki(&out, "Prosody on ::1"), expected(&env, "host-ec"));
}

/// A Prosody started by a test, killed (by PID) when dropped.
struct OwnProsody {
    child: std::process::Child,
    dir: PathBuf,
}

impl Drop for OwnProsody {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port(ip: IpAddr) -> u16 {
    TcpListener::bind((ip, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Hex SHA-1 by `sha1sum` (the XEP-0114 handshake digest).
fn sha1_hex(data: &str) -> String {
    let out = run("sha1sum", &[], data.as_bytes());
    assert!(out.status.success(), "sha1sum failed: {out:?}");
    String::from_utf8(out.stdout).unwrap()[..40].to_owned()
}

/// Reads from `s` until `text` contains `end` (or the peer closes).
fn read_until(s: &mut TcpStream, end: &str) -> String {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&buf).into_owned();
        if text.contains(end) {
            return text;
        }
        match s.read(&mut chunk) {
            Ok(0) => return text,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) => panic!("read: {e} after {text:?}"),
        }
    }
}

#[test]
fn a_test_can_start_its_own_prosody_with_another_key_and_a_component() {
    // The extension point for tests that change a server (a key swap, a restart) or need an
    // XEP-0114 component port: they write a config with the helper that the description names
    // and run their own Prosody.
    let env = Interop::require();
    let helper = env.path("xmpp.prosody_config").unwrap();
    let ip: IpAddr = "127.0.0.4".parse().unwrap();
    let (c2s, component) = (free_port(ip), free_port(ip));
    let dir = std::env::temp_dir().join(format!("certwatch-smoke-xmpp-{}", std::process::id()));
    let cert = env.str("pki.keys.other-ec.fullchain").unwrap();
    let key = env.str("pki.keys.other-ec.key").unwrap();
    let args = strings(&[
        "--dir",
        dir.to_str().unwrap(),
        "--listen",
        "127.0.0.4",
        "--c2s",
        &c2s.to_string(),
        "--cert",
        cert,
        key,
        "--host",
        "swap.test",
        "--component-port",
        &component.to_string(),
        "--component",
        "notify.swap.test",
        "s3cret",
    ]);
    let out = run(helper.to_str().unwrap(), &args, b"");
    assert!(out.status.success(), "prosody-config failed: {out:?}");
    let config = String::from_utf8(out.stdout).unwrap();
    let log = std::fs::File::create(dir.join("prosody.log")).unwrap();
    let child = Command::new("prosody")
        .args(["--config", config.trim(), "-F"])
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("run prosody");
    let _server = OwnProsody {
        child,
        dir: dir.clone(),
    };
    let wait = |addr: SocketAddr| {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(s) = TcpStream::connect(addr) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "own Prosody did not listen on {addr}: {}",
                std::fs::read_to_string(dir.join("prosody.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    drop(wait(SocketAddr::new(ip, c2s)));
    let out = s_client_at(
        SocketAddr::new(ip, c2s),
        Service::C2sStarttls,
        "swap.test",
        Some(KeyType::Ecdsa),
    );
    assert_eq!(leaf_spki(&out, "own Prosody"), expected(&env, "other-ec"));

    // XEP-0114: the component authenticates with SHA-1(stream id + secret).
    let handshake = |secret: &str| {
        let mut s = wait(SocketAddr::new(ip, component));
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(
            b"<stream:stream xmlns='jabber:component:accept' \
              xmlns:stream='http://etherx.jabber.org/streams' to='notify.swap.test'>",
        )
        .unwrap();
        let header = read_until(&mut s, ">");
        let id = header
            .split(" id='")
            .nth(1)
            .and_then(|rest| rest.split('\'').next())
            .unwrap_or_else(|| panic!("no stream id in {header:?}"))
            .to_owned();
        let digest = sha1_hex(&format!("{id}{secret}"));
        s.write_all(format!("<handshake>{digest}</handshake>").as_bytes())
            .unwrap();
        read_until(&mut s, "handshake")
    };
    let refused = handshake("wrong");
    assert!(
        refused.contains("not-authorized") && !refused.contains("<handshake/>"),
        "a wrong component secret was accepted: {refused}"
    );
    let accepted = handshake("s3cret");
    assert!(
        accepted.contains("<handshake/>"),
        "component refused: {accepted}"
    );
}

#[test]
fn the_other_prosody_presents_other_ec_on_all_four_services() {
    let env = Interop::require();
    assert_eq!(keys(&env, "other"), ["other-ec"]);
    let want = expected(&env, "other-ec");
    assert_ne!(want, expected(&env, "host-ec"));
    assert_ne!(
        env.str("xmpp.other.address").unwrap(),
        env.str("xmpp.prosody.address").unwrap()
    );
    for service in [
        Service::C2sStarttls,
        Service::C2sDirect,
        Service::S2sStarttls,
        Service::S2sDirect,
    ] {
        for domain in domains(&env, "other") {
            let got = presented_spki(&env, "other", service, &domain, KeyType::Ecdsa);
            assert_eq!(got, want, "other {service:?} for {domain}");
        }
    }
}

#[test]
fn prosody_listens_on_the_drill_address_with_its_own_keys() {
    let env = Interop::require();
    let addr: IpAddr = env
        .str("xmpp.prosody.drill_address")
        .unwrap()
        .parse()
        .unwrap();
    let at = SocketAddr::new(addr, env.u64("xmpp.prosody.c2s").unwrap() as u16);
    for (key, name) in [(KeyType::Ecdsa, "host-ec"), (KeyType::Rsa, "host-rsa")] {
        let out = s_client_at(at, Service::C2sStarttls, "drill.test", Some(key));
        assert_eq!(leaf_spki(&out, "drill address"), expected(&env, name));
    }
}

/// The replay server presents host-ec's genuine chain, and openssl (the independent peer)
/// refuses its handshake signature: it does not hold host-ec's key.
#[test]
fn the_replay_server_presents_the_genuine_chain_with_a_bad_signature() {
    let env = Interop::require();
    assert_eq!(env.str("replay.chain_key").unwrap(), "host-ec");
    assert_eq!(env.str("replay.signing_key").unwrap(), "other-ec");
    let addr: IpAddr = env.str("replay.address").unwrap().parse().unwrap();
    for service in [
        Service::C2sStarttls,
        Service::C2sDirect,
        Service::S2sStarttls,
        Service::S2sDirect,
    ] {
        let port = env.u64(&format!("replay.{}", service.port_key())).unwrap() as u16;
        let out = s_client_at(SocketAddr::new(addr, port), service, "replay.test", None);
        assert_eq!(
            leaf_spki(&out, "replay server"),
            expected(&env, "host-ec"),
            "{service:?}"
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("bad signature"), "{service:?}: {stderr}");
    }
}
