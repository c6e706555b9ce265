//! Replays the fuzz corpus (`fuzz/corpus/xmpp_server_bytes/`) exactly as the fuzz target
//! does: no panic, a classified outcome, the same outcome in any read size; and the real
//! server transcripts in it end as those servers did.

use std::path::PathBuf;

use certwatch_xmpp::fuzzing::{acceptor, class_error, side};
use certwatch_xmpp::{Config, replay};

fn corpus() -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/xmpp_server_bytes");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect()
}

#[test]
fn every_corpus_file_ends_in_the_same_classified_outcome_in_any_read_size() {
    let files = corpus();
    assert!(
        files.len() >= 15,
        "the corpus has only {} files",
        files.len()
    );
    for (name, data) in &files {
        let Some((&ctl, server)) = data.split_first() else {
            continue;
        };
        let run = side(ctl);
        let whole = run(&[server]);
        for size in [usize::from(ctl & 0x3f) + 1, 1, 2, 3, 7, 64] {
            let chunked = run(&server.chunks(size).collect::<Vec<_>>());
            assert_eq!(chunked, whole, "{name} at read size {size}");
        }
    }
}

#[test]
fn real_server_transcripts_end_as_the_servers_did() {
    let expected = [
        ("prosody_c2s", "ok proceeded=true"),
        ("ejabberd_c2s", "ok proceeded=true"),
        ("notls_c2s", "the server does not offer STARTTLS"),
        (
            "prosody_c2s_unknown_host",
            "stream error from the peer: host-unknown (\"This server does not serve unknown.example\")",
        ),
        (
            "ejabberd_c2s_unknown_host",
            "stream error from the peer: host-unknown",
        ),
        ("injection", "injection after <proceed/>"),
        ("failure", "the server answered STARTTLS with <failure/>"),
    ];
    let files = corpus();
    for (name, want) in expected {
        let (_, data) = files
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("corpus file {name} is missing"));
        let got = match replay(Config::client("match.test"), [&data[1..]]) {
            Ok(n) => format!("ok proceeded={}", n.proceeded),
            Err(f) => class_error(&f.error),
        };
        assert_eq!(got, want, "{name}");
    }
    let (_, data) = files
        .iter()
        .find(|(n, _)| n == "client_conversations")
        .unwrap();
    assert_eq!(acceptor(&[&data[1..]]), "ok done=true starttls=true");
    // Server streams need a server configuration.
    for name in ["prosody_s2s", "ejabberd_s2s"] {
        let (_, data) = files.iter().find(|(n, _)| n == name).unwrap();
        let n = replay(Config::server("match.test", None), [&data[1..]]).unwrap();
        assert_eq!(n.header.unwrap().from.as_deref(), Some("match.test"));
    }
}
