//! Configuration: flags > CERTWATCH_* environment > TOML file > defaults, key by key; bad
//! values name their source; secrets never appear in Debug output.

use std::collections::HashMap;
use std::io::Write as _;
use std::time::Duration;

use certwatch_server::config::{Config, ConfigError, Via};

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn file(text: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(text.as_bytes()).unwrap();
    f
}

#[test]
fn defaults_are_the_documented_ones() {
    let c = Config::load(["certwatch-server"], &HashMap::new()).unwrap();
    assert_eq!(c.listen, "127.0.0.1:8080".parse().unwrap());
    assert_eq!(c.database, "sqlite://certwatch.sqlite3");
    assert_eq!(c.via, Via::Tor);
    assert_eq!(c.interval, Duration::from_secs(900));
    assert_eq!(c.expire_days, 30);
    assert_eq!(c.circuits_per_minute, 6);
    assert!(!c.allow_private_targets);
    assert_eq!(c.admin_token_hash, None);
    assert!(c.trusted_proxies.is_empty());
    assert_eq!(c.public_url, "http://127.0.0.1:8080");
    assert_eq!(c, {
        let mut d = Config::defaults();
        d.instance_id.clone_from(&c.instance_id);
        d
    });
}

#[test]
fn flags_beat_env_beat_file_beat_defaults() {
    let f = file(
        r#"
listen = "127.0.0.1:7000"
database = "sqlite:///var/lib/certwatch/file.sqlite3"
interval = "20m"
expire_days = 7
circuits_per_minute = 3
trusted_proxies = ["10.0.0.0/8"]
via = "direct"
"#,
    );
    let path = f.path().to_str().unwrap();
    let e = env(&[
        ("CERTWATCH_LISTEN", "127.0.0.1:7001"),
        ("CERTWATCH_INTERVAL", "30m"),
        ("CERTWATCH_EXPIRE_DAYS", "9"),
        ("OTHER_LISTEN", "ignored"),
    ]);
    let c = Config::load(
        [
            "certwatch-server",
            "--config",
            path,
            "--listen",
            "127.0.0.1:7002",
        ],
        &e,
    )
    .unwrap();
    assert_eq!(c.listen.port(), 7002, "flag beats env and file");
    assert_eq!(c.interval, Duration::from_secs(1800), "env beats file");
    assert_eq!(c.expire_days, 9, "env beats file");
    assert_eq!(c.circuits_per_minute, 3, "file beats default");
    assert_eq!(c.database, "sqlite:///var/lib/certwatch/file.sqlite3");
    assert_eq!(c.via, Via::Direct);
    assert!(c.is_trusted_proxy("10.1.2.3".parse().unwrap()));
    assert!(!c.is_trusted_proxy("192.168.1.1".parse().unwrap()));
    assert_eq!(c.jitter, Duration::from_secs(90), "default");

    // The file can also come from CERTWATCH_CONFIG.
    let e2 = env(&[("CERTWATCH_CONFIG", path)]);
    let c2 = Config::load(["certwatch-server"], &e2).unwrap();
    assert_eq!(c2.listen.port(), 7000);
}

#[test]
fn flags_cover_every_documented_setting() {
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("admin-token");
    std::fs::write(&token_file, "00112233445566778899aabbccddeeff\n").unwrap();
    let c = Config::load(
        [
            "certwatch-server",
            "--listen",
            "[::1]:8443",
            "--database",
            "postgres://cw@127.0.0.1:5433/certwatch",
            "--via",
            "socks5://127.0.0.1:9050",
            "--resolver",
            "127.0.0.1:5354",
            "--resolver",
            "::1",
            "--interval",
            "2h",
            "--jitter",
            "5m",
            "--expire-days",
            "90",
            "--circuits-per-minute",
            "12",
            "--workers",
            "8",
            "--timeout",
            "30s",
            "--check-deadline",
            "10m",
            "--confirm",
            "5",
            "--allow-private-targets",
            "--admin-token-file",
            token_file.to_str().unwrap(),
            "--trusted-proxy",
            "127.0.0.1",
            "--trusted-proxy",
            "fd00::/8",
            "--public-url",
            "https://certwatch.example/",
            "--instance-id",
            "node-a",
            "--setup-lines-min-vantages",
            "1",
        ],
        &HashMap::new(),
    )
    .unwrap();
    assert_eq!(c.listen, "[::1]:8443".parse().unwrap());
    assert_eq!(c.via, Via::Socks("127.0.0.1:9050".parse().unwrap()));
    assert_eq!(
        c.resolvers,
        vec!["127.0.0.1:5354".to_owned(), "::1".to_owned()]
    );
    assert_eq!(c.interval, Duration::from_secs(7200));
    assert_eq!(c.jitter, Duration::from_secs(300));
    assert_eq!(
        (c.expire_days, c.circuits_per_minute, c.workers, c.confirm),
        (90, 12, 8, 5)
    );
    assert_eq!(c.timeout, Duration::from_secs(30));
    assert_eq!(c.check_deadline, Duration::from_secs(600));
    assert!(c.allow_private_targets);
    assert_eq!(
        c.admin_token_hash.as_deref(),
        Some(certwatch_server::random::hash_token("00112233445566778899aabbccddeeff").as_str())
    );
    assert!(c.is_trusted_proxy("fd12::1".parse().unwrap()));
    assert!(c.is_trusted_proxy("::ffff:127.0.0.1".parse().unwrap()));
    assert_eq!(c.public_url, "https://certwatch.example");
    assert_eq!(c.instance_id, "node-a");
    assert_eq!(c.setup_lines_min_vantages, 1);
    // Neither the token's hash nor the database password is in the Debug output.
    let dbg = format!("{c:?}");
    assert!(
        !dbg.contains(c.admin_token_hash.as_deref().unwrap()),
        "{dbg}"
    );
    let c = Config::load(
        [
            "certwatch-server",
            "--database",
            "postgres://cw:hunter2@db/certwatch",
            "--via",
            "direct",
        ],
        &HashMap::new(),
    )
    .unwrap();
    assert!(!format!("{c:?}").contains("hunter2"));
}

#[test]
fn bad_values_name_their_source() {
    let err = |args: &[&str], e: &[(&str, &str)]| {
        let mut a = vec!["certwatch-server"];
        a.extend_from_slice(args);
        Config::load(a, &env(e)).unwrap_err().to_string()
    };
    assert!(err(&["--listen", "localhost"], &[]).contains("--listen"));
    assert!(err(&[], &[("CERTWATCH_LISTEN", "nope")]).contains("CERTWATCH_LISTEN"));
    assert!(err(&[], &[("CERTWATCH_EXPIRE_DAYS", "ten")]).contains("CERTWATCH_EXPIRE_DAYS"));
    assert!(err(&["--interval", "5"], &[]).contains("at least 60"));
    assert!(err(&["--interval", "fortnight"], &[]).contains("--interval"));
    // Shorter intervals, and fewer than 3 confirmation exits over Tor, only in test set-ups.
    assert!(err(&["--interval", "4s", "--allow-private-targets"], &[]).contains("at least 5"));
    assert!(err(&["--via", "tor", "--confirm", "2"], &[]).contains("at least 3"));
    let ok = |args: &[&str]| {
        let mut a = vec!["certwatch-server"];
        a.extend_from_slice(args);
        Config::load(a, &env(&[])).unwrap()
    };
    assert_eq!(
        ok(&[
            "--interval",
            "5s",
            "--jitter",
            "1s",
            "--allow-private-targets"
        ])
        .interval
        .as_secs(),
        5
    );
    assert_eq!(ok(&["--via", "direct", "--confirm", "0"]).confirm, 0);
    assert_eq!(
        ok(&["--via", "tor", "--confirm", "0", "--allow-private-targets"]).confirm,
        0
    );
    assert!(err(&["--via", "http://proxy:1"], &[]).contains("--via"));
    assert!(err(&["--via", "direct", "--tor-config", "/x"], &[]).contains("tor"));
    assert!(err(&["--circuits-per-minute", "0"], &[]).contains("out of range"));
    assert!(err(&["--admin-token-hash", "abc"], &[]).contains("64 hex"));
    assert!(err(&["--trusted-proxy", "10.0.0.0/33"], &[]).contains("prefix"));
    assert!(err(&["--no-such-flag"], &[]).contains("--no-such-flag"));
    let f = file("listen = \"127.0.0.1:1\"\nunknown_key = 1\n");
    assert!(err(&["--config", f.path().to_str().unwrap()], &[]).contains("unknown_key"));
    assert!(err(&["--config", "/nonexistent/certwatch.toml"], &[]).contains("cannot read"));
    let short = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(short.path(), "short").unwrap();
    assert!(err(&["--admin-token-file", short.path().to_str().unwrap()], &[]).contains("128 bits"));
    assert!(matches!(
        Config::load(["certwatch-server", "--help"], &HashMap::new()),
        Err(e @ ConfigError::Help(_)) if e.is_help()
    ));
}

#[test]
fn environment_lists_and_booleans() {
    let c = Config::load(
        ["certwatch-server"],
        &env(&[
            ("CERTWATCH_ALLOW_PRIVATE_TARGETS", "yes"),
            ("CERTWATCH_TRUSTED_PROXIES", "10.0.0.0/8, ::1"),
            ("CERTWATCH_RESOLVER", "127.0.0.1:5354,192.0.2.53"),
            ("CERTWATCH_VIA", "socks5://127.0.0.1:9050"),
            ("CERTWATCH_ADMIN_TOKEN_HASH", &"AB".repeat(32)),
        ]),
    )
    .unwrap();
    assert!(c.allow_private_targets);
    assert!(c.is_trusted_proxy("10.9.9.9".parse().unwrap()));
    assert!(c.is_trusted_proxy("::1".parse().unwrap()));
    assert!(!c.is_trusted_proxy("::2".parse().unwrap()));
    assert_eq!(
        c.resolvers,
        vec!["127.0.0.1:5354".to_owned(), "192.0.2.53".to_owned()]
    );
    assert_eq!(c.via, Via::Socks("127.0.0.1:9050".parse().unwrap()));
    assert_eq!(c.admin_token_hash, Some("ab".repeat(32)));
    // A flag turns it on; the environment may turn it off when no flag is given.
    let off = Config::load(
        ["certwatch-server"],
        &env(&[("CERTWATCH_ALLOW_PRIVATE_TARGETS", "false")]),
    )
    .unwrap();
    assert!(!off.allow_private_targets);
    let e = Config::load(
        ["certwatch-server"],
        &env(&[("CERTWATCH_ALLOW_PRIVATE_TARGETS", "maybe")]),
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("CERTWATCH_ALLOW_PRIVATE_TARGETS"),
        "{e}"
    );
}

#[test]
fn alert_outbox_and_mail_settings_follow_the_precedence() {
    let c = Config::load(["certwatch-server"], &HashMap::new()).unwrap();
    assert_eq!(c.blind_after, Duration::from_secs(6 * 3600));
    assert_eq!(c.remind_after, Duration::from_secs(24 * 3600));
    assert_eq!(
        (c.alert_policy().blind_after, c.alert_policy().remind_after),
        (21_600, 86_400)
    );
    let r = c.retry_policy();
    assert_eq!((r.base_delay, r.max_delay, r.max_attempts), (30, 3600, 10));
    assert_eq!(c.outbox_interval, Duration::from_secs(5));
    assert_eq!(c.outbox_lease, Duration::from_secs(900));
    assert_eq!(c.outbox_batch, 5);
    assert_eq!(c.outbox_stale_after, Duration::from_secs(3600));
    assert!(c.smtp.is_none() && c.admin_email.is_none() && c.admin_webhook.is_none());
    assert!(c.email_options().is_none());
    assert_eq!(c.digest_hour, 7);

    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("smtp-password");
    std::fs::write(&pw, "file-password\n").unwrap();
    let secret = dir.path().join("admin-secret");
    std::fs::write(&secret, format!("{}\n", "ab".repeat(16))).unwrap();
    let f = file(&format!(
        r#"
blind_after = "2h"
remind_after = 7200
retry_base_delay = "10s"
retry_max_attempts = 4
outbox_batch = 9
smtp_url = "smtp+starttls://alerts@mail.example:2587"
smtp_from = "certwatch <alerts@example.org>"
smtp_password_file = "{}"
admin_email = "root@example.org"
admin_webhook_url = "https://hooks.example/admin"
admin_webhook_secret_file = "{}"
digest_hour = 5
"#,
        pw.display(),
        secret.display()
    ));
    let e = env(&[
        ("CERTWATCH_BLIND_AFTER", "3h"),
        ("CERTWATCH_RETRY_MAX_DELAY", "20m"),
        ("CERTWATCH_OUTBOX_INTERVAL", "2s"),
        ("CERTWATCH_DIGEST_HOUR", "6"),
    ]);
    let c = Config::load(
        [
            "certwatch-server",
            "--config",
            f.path().to_str().unwrap(),
            "--blind-after",
            "4h",
            "--outbox-lease",
            "5m",
            "--outbox-stale-after",
            "30m",
            "--retry-max-attempts",
            "6",
        ],
        &e,
    )
    .unwrap();
    assert_eq!(c.blind_after, Duration::from_secs(4 * 3600), "flag");
    assert_eq!(c.remind_after, Duration::from_secs(7200), "file");
    let r = c.retry_policy();
    assert_eq!((r.base_delay, r.max_delay, r.max_attempts), (10, 1200, 6));
    assert_eq!(c.outbox_interval, Duration::from_secs(2), "env");
    assert_eq!(c.outbox_lease, Duration::from_secs(300));
    assert_eq!(c.outbox_batch, 9);
    assert_eq!(c.outbox_stale_after, Duration::from_secs(1800));
    assert_eq!(c.digest_hour, 6, "env beats file");
    let smtp = c.smtp.as_ref().unwrap();
    assert_eq!((smtp.host.as_str(), smtp.port), ("mail.example", 2587));
    assert_eq!(
        smtp.security,
        certwatch_server::notify::email::SmtpSecurity::StartTls
    );
    assert_eq!(smtp.user.as_deref(), Some("alerts"));
    assert_eq!(smtp.password.as_deref(), Some("file-password"));
    let opts = c.email_options().unwrap();
    assert_eq!(
        opts.credentials,
        Some(("alerts".to_owned(), "file-password".to_owned()))
    );
    assert_eq!(c.admin_email.as_deref(), Some("root@example.org"));
    let hook = c.admin_webhook.as_ref().unwrap();
    assert_eq!(hook.url, "https://hooks.example/admin");
    assert_eq!(hook.secret, "ab".repeat(16));
    // Secrets never appear in Debug.
    let dbg = format!("{c:?}");
    assert!(
        !dbg.contains("file-password") && !dbg.contains(&"ab".repeat(16)),
        "{dbg}"
    );

    // The environment's password and secret beat the files.
    let e = env(&[
        ("CERTWATCH_SMTP_PASSWORD", "env-password"),
        ("CERTWATCH_ADMIN_WEBHOOK_SECRET", &"cd".repeat(16)),
    ]);
    let c = Config::load(
        ["certwatch-server", "--config", f.path().to_str().unwrap()],
        &e,
    )
    .unwrap();
    assert_eq!(
        c.smtp.as_ref().unwrap().password.as_deref(),
        Some("env-password")
    );
    assert_eq!(c.admin_webhook.unwrap().secret, "cd".repeat(16));

    // TLS modes and default ports; bad values.
    let smtp = |url: &str| {
        Config::load(
            [
                "certwatch-server",
                "--smtp-url",
                url,
                "--smtp-from",
                "a@example.org",
            ],
            &HashMap::new(),
        )
    };
    let s = smtp("smtps://mail.example").unwrap().smtp.unwrap();
    assert_eq!(
        (s.port, s.security, s.user),
        (
            465,
            certwatch_server::notify::email::SmtpSecurity::Tls,
            None
        )
    );
    let s = smtp("smtp://127.0.0.1:2525").unwrap().smtp.unwrap();
    assert_eq!(
        (s.host.as_str(), s.port, s.security),
        (
            "127.0.0.1",
            2525,
            certwatch_server::notify::email::SmtpSecurity::Plain
        )
    );
    let err = smtp("smtps://u:hunter2@mail.example")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("--smtp-url") && err.contains("no password"),
        "{err}"
    );
    assert!(smtp("http://mail.example").is_err());
    let err = |args: &[&str]| {
        let mut a = vec!["certwatch-server"];
        a.extend_from_slice(args);
        Config::load(a, &HashMap::new()).unwrap_err().to_string()
    };
    assert!(err(&["--smtp-url", "smtp://m.example"]).contains("smtp_from"));
    assert!(err(&["--admin-email", "root@example.org"]).contains("smtp_url"));
    assert!(err(&["--admin-webhook-url", "https://h.example/"]).contains("secret"));
    assert!(err(&["--blind-after", "0"]).contains("at least"));
    assert!(err(&["--digest-hour", "24"]).contains("out of range"));
    assert!(err(&["--retry-max-delay", "1s"]).contains("retry_base_delay"));
    let f = file("smtp_password = \"x\"\n");
    assert!(err(&["--config", f.path().to_str().unwrap()]).contains("smtp_password"));
}
