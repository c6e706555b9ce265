//! `certwatch watch`: re-check domains on an interval (with jitter), print state changes, and
//! run a hook command on each change (docs/watch.md).

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use certwatch::{Checker, Report};
use serde_json::json;

use crate::net::{self, NetArgs};

/// Exit code for usage and setup errors.
const EXIT_ERROR: u8 = 3;

/// Arguments of `certwatch watch`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = AFTER_HELP)]
pub struct WatchArgs {
    /// The XMPP domains to watch (Unicode or A-label form).
    #[arg(value_name = "DOMAIN")]
    domains: Vec<String>,
    /// Read more domains from FILE: one per line; blank lines and `#` comments are ignored.
    #[arg(long, value_name = "FILE")]
    domains_file: Option<PathBuf>,
    /// Time between two checks of a domain, such as `30s`, `15m`, `1h` or `1h 30m`; each
    /// wait is jittered by ±10%, and the domains' first checks are spread over one interval.
    #[arg(long, value_name = "DURATION", default_value = "15m", value_parser = parse_interval)]
    interval: Duration,
    /// Run CMD (with `sh -c`) on each change, with CERTWATCH_* environment variables
    /// (docs/watch.md). Hooks of one domain never overlap; a failing hook is reported and
    /// the watch goes on.
    #[arg(long, value_name = "CMD")]
    exec: Option<String>,
    /// Kill a hook that runs longer than this many seconds (and report it).
    #[arg(long, value_name = "SECS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=86400))]
    hook_timeout: u64,
    /// Print change events as JSON lines (docs/watch.md) instead of text.
    #[arg(long)]
    json: bool,
    /// Before reporting a mismatch, re-probe through N distinct Tor exits (plus directly)
    /// and classify, as `certwatch check --confirm N` does.
    #[arg(long, value_name = "N", default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=16))]
    confirm: u64,
    #[command(flatten)]
    net: NetArgs,
}

const AFTER_HELP: &str = "\
A change is: the first result of a domain (from `unknown`), a change of its verdict, or a
change of the set of keys its servers presented while the verdict stays the same (a new
key, even a matching one, is worth knowing about). Nothing is printed while nothing changes.
An indeterminate result after a conclusive one is checked again (after a tenth of the
interval, 1-30 s) before it counts.

Hook environment (see docs/watch.md for an example hook script):
  CERTWATCH_DOMAIN                  the domain (A-label)
  CERTWATCH_VERDICT                 the new verdict
  CERTWATCH_PREVIOUS_VERDICT        the previous verdict, `unknown` the first time
  CERTWATCH_CHANGE                  first, verdict or keys
  CERTWATCH_PRESENTED_SPKI_SHA256   distinct presented keys (hex), space-separated
  CERTWATCH_EXPECTED                the TLSA records, `3 1 1 <hex>` each, space-separated
  CERTWATCH_VANTAGE                 distinct vantage points, space-separated
  CERTWATCH_REPORT                  a file with the JSON report (deleted after the hook)

Exit codes:
  0  stopped by Ctrl-C or SIGTERM
  3  a usage or setup error (no domain, unreadable file, Tor bootstrap failure...)

Examples:
  certwatch watch --interval 15m example.org example.net
  certwatch watch --interval 1h --exec /usr/local/bin/certwatch-alert --domains-file domains.txt
  certwatch watch --via direct --interval 30s --json example.org";

/// Parses an interval such as `30s`, `15m`, `1h` or `1h 30m` (humantime syntax), at least
/// one second and at most 30 days.
fn parse_interval(text: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(text.trim())
        .map_err(|e| format!("{text:?} is not a duration such as 30s, 15m or 1h: {e}"))?;
    if d < Duration::from_secs(1) {
        return Err(format!("{text:?}: the interval must be at least 1s"));
    }
    if d > Duration::from_secs(30 * 86400) {
        return Err(format!("{text:?}: the interval must be at most 30 days"));
    }
    Ok(d)
}

/// The interval scaled by a jitter of ±10%: `r` in [0, 1) maps to [0.9, 1.1).
fn jittered(interval: Duration, r: f64) -> Duration {
    interval.mul_f64(0.9 + 0.2 * r.clamp(0.0, 1.0))
}

/// The offset of the first check of domain `i` of `n`: spread evenly over one interval.
fn first_offset(interval: Duration, i: usize, n: usize) -> Duration {
    if n == 0 {
        return Duration::ZERO;
    }
    let i = u32::try_from(i).unwrap_or(u32::MAX);
    let n = u32::try_from(n).unwrap_or(u32::MAX);
    interval / n * i
}

/// What a watch compares between two checks of a domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct State {
    /// The domain verdict (`match`, `mismatch`, ...).
    pub verdict: String,
    /// The distinct presented keys (SPKI SHA-256, hex).
    pub keys: BTreeSet<String>,
}

impl State {
    /// The state a report describes.
    fn of(report: &Report) -> Self {
        State {
            verdict: report.verdict.to_string(),
            keys: report
                .endpoints
                .iter()
                .filter_map(|e| e.presented_spki_sha256.clone())
                .collect(),
        }
    }
}

/// Why an event was raised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// The first result of the domain.
    First,
    /// The verdict changed.
    Verdict,
    /// The verdict is the same, the presented keys are not.
    Keys,
}

impl ChangeKind {
    fn as_str(self) -> &'static str {
        match self {
            ChangeKind::First => "first",
            ChangeKind::Verdict => "verdict",
            ChangeKind::Keys => "keys",
        }
    }
}

/// A state change of one domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Why.
    pub kind: ChangeKind,
    /// The previous state; `None` the first time (`unknown`).
    pub previous: Option<State>,
    /// The new state.
    pub current: State,
}

impl Change {
    fn previous_verdict(&self) -> &str {
        self.previous.as_ref().map_or("unknown", |p| &p.verdict)
    }
}

/// The last state of each domain: decides what is a change.
#[derive(Debug, Default)]
pub struct Tracker {
    states: HashMap<String, State>,
}

impl Tracker {
    /// The last state recorded for `domain`.
    pub fn last(&self, domain: &str) -> Option<&State> {
        self.states.get(domain)
    }

    /// Records a new state of `domain`; returns the change, if it is one.
    pub fn observe(&mut self, domain: &str, state: State) -> Option<Change> {
        let previous = self.states.insert(domain.to_owned(), state.clone());
        let kind = match &previous {
            None => ChangeKind::First,
            Some(p) if p.verdict != state.verdict => ChangeKind::Verdict,
            Some(p) if p.keys != state.keys => ChangeKind::Keys,
            Some(_) => return None,
        };
        Some(Change {
            kind,
            previous,
            current: state,
        })
    }
}

/// Whether an indeterminate result should be checked again before it counts: only right
/// after a conclusive state (an unknown or already indeterminate domain reports at once).
fn should_retry(last: Option<&State>, current: &State) -> bool {
    const INDETERMINATE: &str = "indeterminate";
    current.verdict == INDETERMINATE && last.is_some_and(|l| l.verdict != INDETERMINATE)
}

/// How long to wait before re-checking an indeterminate result: a tenth of the interval,
/// between 1 s and 30 s.
fn retry_delay(interval: Duration) -> Duration {
    (interval / 10).clamp(Duration::from_secs(1), Duration::from_secs(30))
}

/// Space-separated distinct values, in first-seen order.
fn distinct_joined<'a>(values: impl Iterator<Item = &'a str>) -> String {
    let mut seen: Vec<&str> = Vec::new();
    for v in values {
        if !seen.contains(&v) {
            seen.push(v);
        }
    }
    seen.join(" ")
}

/// The hook's environment for a change, except CERTWATCH_REPORT.
fn hook_env(domain: &str, change: &Change, report: Option<&Report>) -> Vec<(&'static str, String)> {
    let keys = change
        .current
        .keys
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(" ");
    let (expected, vantage) = match report {
        Some(r) => {
            let records: Vec<String> = r
                .endpoints
                .iter()
                .flat_map(|e| e.tlsa.iter().map(ToString::to_string))
                .collect();
            let vantages: Vec<String> = r
                .endpoints
                .iter()
                .filter_map(|e| e.vantage.map(|v| v.to_string()))
                .collect();
            (
                distinct_joined(records.iter().map(String::as_str)),
                distinct_joined(vantages.iter().map(String::as_str)),
            )
        }
        None => (String::new(), String::new()),
    };
    vec![
        ("CERTWATCH_DOMAIN", domain.to_owned()),
        ("CERTWATCH_VERDICT", change.current.verdict.clone()),
        (
            "CERTWATCH_PREVIOUS_VERDICT",
            change.previous_verdict().to_owned(),
        ),
        ("CERTWATCH_CHANGE", change.kind.as_str().to_owned()),
        ("CERTWATCH_PRESENTED_SPKI_SHA256", keys),
        ("CERTWATCH_EXPECTED", expected),
        ("CERTWATCH_VANTAGE", vantage),
    ]
}

/// The text line of a change.
fn change_line(domain: &str, change: &Change, at: &str) -> String {
    let short = |k: &str| k.get(..12).unwrap_or(k).to_owned();
    let keys = |s: &State| {
        if s.keys.is_empty() {
            "no key".to_owned()
        } else {
            s.keys
                .iter()
                .map(|k| short(k))
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    let mut line = format!(
        "{at} {domain}: {} -> {}",
        change.previous_verdict(),
        change.current.verdict
    );
    match (&change.kind, &change.previous) {
        (ChangeKind::Keys, Some(p)) => {
            let added: Vec<String> = change
                .current
                .keys
                .difference(&p.keys)
                .map(|k| format!("+{}", short(k)))
                .collect();
            let removed: Vec<String> = p
                .keys
                .difference(&change.current.keys)
                .map(|k| format!("-{}", short(k)))
                .collect();
            line.push_str(&format!(
                ", presented keys changed: {}",
                added
                    .into_iter()
                    .chain(removed)
                    .collect::<Vec<_>>()
                    .join(" ")
            ));
        }
        _ => line.push_str(&format!(" (keys: {})", keys(&change.current))),
    }
    line
}

/// The JSON line of a change event; `report` is the report's own JSON line (its field
/// order kept, as docs/json.md shows it).
fn change_json(domain: &str, change: &Change, at: &str, report: &str) -> String {
    let prev_keys: Vec<&String> = change
        .previous
        .as_ref()
        .map(|p| p.keys.iter().collect())
        .unwrap_or_default();
    let head = json!({
        "event": "change",
        "domain": domain,
        "at": at,
        "change": change.kind.as_str(),
        "previous_verdict": change.previous_verdict(),
        "verdict": change.current.verdict,
        "previous_presented_spki_sha256": prev_keys,
        "presented_spki_sha256": change.current.keys,
    })
    .to_string();
    // `head` is an object, so it ends with `}`.
    let head = head.strip_suffix('}').unwrap_or(&head);
    format!("{head},\"report\":{}}}", report.trim())
}

/// Now, RFC 3339 UTC.
fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// One entry per domain, in order: `Exämple.org` and `xn--exmple-cua.org.` are the same
/// domain. Invalid names stay, so that their first check reports the error.
fn unique_domains(domains: Vec<String>) -> Vec<String> {
    let mut unique: Vec<String> = Vec::new();
    let mut keys: Vec<String> = Vec::new();
    for d in domains {
        let key = certwatch::dns::DomainName::normalise(&d)
            .map_or_else(|_| d.clone(), |n| n.as_str().to_owned());
        if !keys.contains(&key) {
            keys.push(key);
            unique.push(d);
        }
    }
    unique
}

/// Runs the verb until interrupted; returns the exit code.
pub fn run(args: &WatchArgs) -> u8 {
    match net::runtime() {
        Ok(rt) => rt.block_on(run_async(args)),
        Err(e) => fail(&e),
    }
}

fn fail(message: &str) -> u8 {
    eprintln!("certwatch: error: {message}");
    EXIT_ERROR
}

/// Settings every domain task shares.
struct Shared {
    checker: Checker,
    interval: Duration,
    exec: Option<String>,
    hook_timeout: Duration,
    json: bool,
}

async fn run_async(args: &WatchArgs) -> u8 {
    let domains = match net::domains(&args.domains, args.domains_file.as_deref()) {
        Ok(d) => d,
        Err(e) => return fail(&e),
    };
    let unique = unique_domains(domains);
    let confirm = usize::try_from(args.confirm).unwrap_or(0);
    // Ctrl-C or SIGTERM during setup (a Tor bootstrap can take a while) also stops cleanly.
    let options = tokio::select! {
        o = net::options(&args.net, confirm) => match o {
            Ok(o) => o,
            Err(e) => return fail(&e),
        },
        () = stop_signal() => return 0,
    };
    let checker = match Checker::new(options) {
        Ok(c) => c,
        Err(e) => return fail(&e.to_string()),
    };
    let shared = Arc::new(Shared {
        checker,
        interval: args.interval,
        exec: args.exec.clone(),
        hook_timeout: Duration::from_secs(args.hook_timeout),
        json: args.json,
    });
    if net::progress_allowed() && !args.json {
        eprintln!(
            "certwatch: watching {} domain(s) every {} (±10%); Ctrl-C stops",
            unique.len(),
            humantime::format_duration(args.interval)
        );
    }
    let n = unique.len();
    let mut tasks = tokio::task::JoinSet::new();
    for (i, domain) in unique.into_iter().enumerate() {
        let shared = shared.clone();
        let offset = first_offset(args.interval, i, n);
        tasks.spawn(async move { watch_domain(&shared, domain, offset).await });
    }
    let stop = stop_signal();
    tokio::select! {
        () = stop => {
            tasks.abort_all();
            while tasks.join_next().await.is_some() {}
            0
        }
        r = async { while let Some(r) = tasks.join_next().await { if r.is_err() { return 3; } } 0 } => {
            // Domain tasks only end when aborted; if they all ended, something went wrong.
            if r != 0 { EXIT_ERROR } else { 0 }
        }
    }
}

/// Resolves on Ctrl-C (SIGINT) or SIGTERM.
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// The loop of one domain: one check at a time, the hook awaited before the next check (so
/// hooks of one domain never overlap).
async fn watch_domain(shared: &Shared, domain: String, offset: Duration) {
    let mut tracker = Tracker::default();
    let mut retried = false;
    tokio::time::sleep(offset).await;
    loop {
        let started = tokio::time::Instant::now();
        let (state, report_json, report) = match shared.checker.check(&domain).await {
            Ok(report) => (State::of(&report), report.to_json_line(), Some(report)),
            Err(e) => {
                eprintln!("certwatch: error: {domain}: {e}");
                // A check that could not run says nothing about the keys: indeterminate.
                let state = State {
                    verdict: "indeterminate".to_owned(),
                    keys: BTreeSet::new(),
                };
                let line = json!({
                    "schema_version": certwatch::SCHEMA_VERSION,
                    "domain": domain,
                    "verdict": "indeterminate",
                    "error": e.to_string(),
                })
                .to_string();
                (state, line, None)
            }
        };
        let name = report
            .as_ref()
            .map_or(domain.as_str(), |r| r.domain.as_str());
        // REFERENCE §3: indeterminate means "retry, and report if persistent". After a
        // conclusive state, an indeterminate result is checked again once, shortly, before
        // it counts as a change (a Tor circuit failure is not news).
        if !retried && should_retry(tracker.last(&domain), &state) {
            retried = true;
            let delay = retry_delay(shared.interval);
            eprintln!(
                "certwatch: {name}: indeterminate after a conclusive result; checking again in {}",
                humantime::format_duration(delay)
            );
            tokio::time::sleep(delay).await;
            continue;
        }
        retried = false;
        if let Some(change) = tracker.observe(&domain, state) {
            let at = now_rfc3339();
            if shared.json {
                println!("{}", change_json(name, &change, &at, &report_json));
            } else {
                println!("{}", change_line(name, &change, &at));
            }
            if let Some(cmd) = &shared.exec {
                let env = hook_env(name, &change, report.as_ref());
                run_hook(cmd, name, &env, &report_json, shared.hook_timeout).await;
            }
        }
        let wait = jittered(shared.interval, fastrand::f64());
        tokio::time::sleep_until(started + wait).await;
    }
}

/// Runs the hook with `sh -c`, its stdout and stderr on certwatch's stderr (stdout stays
/// for change events), the report in a temporary file kept until the hook ends. Failures
/// and timeouts are reported on stderr and never stop the watch.
async fn run_hook(
    cmd: &str,
    domain: &str,
    env: &[(&'static str, String)],
    report: &str,
    timeout: Duration,
) {
    let file = match tempfile::Builder::new()
        .prefix("certwatch-report-")
        .suffix(".json")
        .tempfile()
    {
        Ok(f) => f,
        Err(e) => {
            eprintln!("certwatch: hook for {domain}: cannot create the report file: {e}");
            return;
        }
    };
    if let Err(e) = std::fs::write(file.path(), format!("{report}\n")) {
        eprintln!(
            "certwatch: hook for {domain}: cannot write the report file {}: {e}",
            file.path().display()
        );
        return;
    }
    let mut command = tokio::process::Command::new("sh");
    command
        .arg("-c")
        .arg(cmd)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("CERTWATCH_REPORT", file.path())
        .stdin(Stdio::null())
        .stdout(stderr_stdio())
        .stderr(stderr_stdio())
        .kill_on_drop(true);
    let mut child = match command.spawn() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("certwatch: hook for {domain}: cannot run sh -c {cmd:?}: {e}");
            return;
        }
    };
    match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(status)) if status.success() => {}
        Ok(Ok(status)) => {
            eprintln!("certwatch: hook for {domain} failed ({status}): {cmd}");
        }
        Ok(Err(e)) => eprintln!("certwatch: hook for {domain}: waiting for it failed: {e}"),
        Err(_) => {
            let _ = child.kill().await;
            eprintln!(
                "certwatch: hook for {domain} did not finish within {}s and was killed: {cmd}",
                timeout.as_secs()
            );
        }
    }
    drop(file);
}

/// certwatch's stderr, for a child's output.
fn stderr_stdio() -> Stdio {
    #[cfg(unix)]
    {
        use std::os::fd::AsFd as _;
        match std::io::stderr().as_fd().try_clone_to_owned() {
            Ok(fd) => Stdio::from(fd),
            Err(_) => Stdio::null(),
        }
    }
    #[cfg(not(unix))]
    {
        Stdio::inherit()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn state(verdict: &str, keys: &[&str]) -> State {
        State {
            verdict: verdict.to_owned(),
            keys: keys.iter().map(|k| (*k).to_owned()).collect(),
        }
    }

    #[test]
    fn first_result_is_a_change_from_unknown_then_only_changes_count() {
        let mut t = Tracker::default();
        let c = t.observe("a.example", state("match", &["aa"])).unwrap();
        assert_eq!(c.kind, ChangeKind::First);
        assert_eq!(c.previous_verdict(), "unknown");
        // Same verdict, same keys: nothing.
        assert_eq!(t.observe("a.example", state("match", &["aa"])), None);
        // Another domain has its own first result.
        assert_eq!(
            t.observe("b.example", state("match", &["aa"]))
                .unwrap()
                .kind,
            ChangeKind::First
        );
        // Verdict change.
        let c = t.observe("a.example", state("mismatch", &["bb"])).unwrap();
        assert_eq!(c.kind, ChangeKind::Verdict);
        assert_eq!(c.previous_verdict(), "match");
        // Same verdict, another key set (a new key, a rollover...): a change.
        let c = t
            .observe("a.example", state("mismatch", &["bb", "cc"]))
            .unwrap();
        assert_eq!(c.kind, ChangeKind::Keys);
        assert_eq!(c.previous.unwrap().keys.len(), 1);
        // Back and forth counts each time.
        assert_eq!(
            t.observe("a.example", state("match", &["aa"]))
                .unwrap()
                .kind,
            ChangeKind::Verdict
        );
        assert_eq!(t.observe("a.example", state("match", &["aa"])), None);
    }

    #[test]
    fn hook_environment() {
        let mut t = Tracker::default();
        let c = t
            .observe("a.example", state("match", &["bb", "aa"]))
            .unwrap();
        let env: HashMap<&str, String> = hook_env("a.example", &c, None).into_iter().collect();
        assert_eq!(env["CERTWATCH_DOMAIN"], "a.example");
        assert_eq!(env["CERTWATCH_VERDICT"], "match");
        assert_eq!(env["CERTWATCH_PREVIOUS_VERDICT"], "unknown");
        assert_eq!(env["CERTWATCH_CHANGE"], "first");
        assert_eq!(env["CERTWATCH_PRESENTED_SPKI_SHA256"], "aa bb");
        assert_eq!(env["CERTWATCH_EXPECTED"], "");
    }

    #[test]
    fn change_lines_name_what_changed() {
        let mut t = Tracker::default();
        let k1 = "1".repeat(64);
        let k2 = "2".repeat(64);
        let first = t.observe("a.example", state("match", &[&k1])).unwrap();
        assert_eq!(
            change_line("a.example", &first, "T"),
            "T a.example: unknown -> match (keys: 111111111111)"
        );
        let keys = t.observe("a.example", state("match", &[&k2])).unwrap();
        assert_eq!(
            change_line("a.example", &keys, "T"),
            "T a.example: match -> match, presented keys changed: +222222222222 -111111111111"
        );
        let v: serde_json::Value =
            serde_json::from_str(&change_json("a.example", &keys, "T", "{\"x\": 1}\n")).unwrap();
        assert_eq!(v["change"], "keys");
        assert_eq!(v["previous_presented_spki_sha256"][0], k1);
        assert_eq!(v["presented_spki_sha256"][0], k2);
        assert_eq!(v["report"]["x"], 1);
    }

    #[test]
    fn an_indeterminate_result_after_a_conclusive_one_is_retried_once() {
        let ok = state("match", &["aa"]);
        let unsure = state("indeterminate", &[]);
        // First result: report at once, whatever it is.
        assert!(!should_retry(None, &unsure));
        // After a conclusive state: retry before reporting.
        assert!(should_retry(Some(&ok), &unsure));
        assert!(should_retry(Some(&state("mismatch", &["bb"])), &unsure));
        // Already indeterminate, or a conclusive result: no retry.
        assert!(!should_retry(Some(&unsure), &unsure));
        assert!(!should_retry(Some(&ok), &state("mismatch", &["bb"])));
        assert_eq!(retry_delay(Duration::from_secs(2)), Duration::from_secs(1));
        assert_eq!(
            retry_delay(Duration::from_secs(100)),
            Duration::from_secs(10)
        );
        assert_eq!(
            retry_delay(Duration::from_secs(900)),
            Duration::from_secs(30)
        );
    }

    #[test]
    fn one_task_per_domain() {
        let given = [
            "Exämple.org",
            "xn--exmple-cua.org.",
            "b.example",
            "B.EXAMPLE",
            "not a name",
        ];
        assert_eq!(
            unique_domains(given.iter().map(|d| (*d).to_owned()).collect()),
            ["Exämple.org", "b.example", "not a name"]
        );
    }

    #[test]
    fn intervals() {
        assert_eq!(parse_interval("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_interval("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_interval("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_interval(" 1h 30m "), Ok(Duration::from_secs(5400)));
        assert!(parse_interval("0s").is_err());
        assert!(parse_interval("500ms").is_err());
        assert!(parse_interval("15").is_err());
        assert!(parse_interval("fortnight").is_err());
        assert!(parse_interval("31days").is_err());
    }

    #[test]
    fn spread_and_jitter() {
        let i = Duration::from_secs(600);
        assert_eq!(first_offset(i, 0, 3), Duration::ZERO);
        assert_eq!(first_offset(i, 1, 3), Duration::from_secs(200));
        assert_eq!(first_offset(i, 2, 3), Duration::from_secs(400));
        assert_eq!(jittered(i, 0.0), Duration::from_secs(540));
        assert_eq!(jittered(i, 0.5), Duration::from_secs(600));
    }

    proptest! {
        /// Any whole number of seconds within the bounds, written as humantime prints it,
        /// parses back to itself.
        #[test]
        fn interval_round_trip(secs in 1u64..=30 * 86400) {
            let d = Duration::from_secs(secs);
            let text = humantime::format_duration(d).to_string();
            prop_assert_eq!(parse_interval(&text), Ok(d));
        }

        /// The jittered wait stays within ±10% of the interval.
        #[test]
        fn jitter_stays_within_ten_percent(secs in 1u64..=30 * 86400, r in 0.0f64..1.0) {
            let d = Duration::from_secs(secs);
            let j = jittered(d, r);
            prop_assert!(j >= d.mul_f64(0.9) && j <= d.mul_f64(1.1));
        }
    }
}
