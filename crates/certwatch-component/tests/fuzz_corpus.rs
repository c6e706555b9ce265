//! Replays the fuzz corpus (`fuzz/corpus/component_stream/`) exactly as the fuzz target does:
//! no panic, and the same outcome in any read size.

use std::path::PathBuf;

use certwatch_component::fuzzing::stream_bytes;

#[test]
fn every_corpus_file_has_the_same_outcome_in_any_read_size() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/component_stream");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(
        files.len() >= 10,
        "the corpus has only {} files",
        files.len()
    );
    for path in files {
        let data = std::fs::read(&path).unwrap();
        let Some((&ctl, server)) = data.split_first() else {
            continue;
        };
        let whole = stream_bytes(&[server]);
        for size in [usize::from(ctl & 0x3f) + 1, 1, 2, 3, 7, 64] {
            let chunked = stream_bytes(&server.chunks(size).collect::<Vec<_>>());
            assert_eq!(chunked, whole, "{}: read size {size}", path.display());
        }
    }
}

#[test]
fn the_seeds_do_what_their_names_say() {
    let run = |input: &[u8]| stream_bytes(&[input]).join("\n");
    let chat = run(b"<message type='chat' id='1' from='a@x.example/r' to='fuzz.example'><body>subscribe a.example</body></message>");
    assert!(
        chat.contains("Subscribe { node: \"a.example\", channel: Chat, jid: \"a@x.example\" }"),
        "{chat}"
    );
    let restricted =
        run(b"<presence type='probe' from='a@x.example' to='fuzz.example'/><!-- bye -->");
    assert!(
        restricted.contains("<presence from='fuzz.example' to='a@x.example'/>"),
        "{restricted}"
    );
    assert!(
        restricted.contains("end: restricted XML: a comment"),
        "{restricted}"
    );
    assert!(restricted.contains("<stream:error><restricted-xml xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>"), "{restricted}");
}
