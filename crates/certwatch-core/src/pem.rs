//! A small, strict PEM reader (RFC 7468) that keeps every section's label.

use base64::Engine;

/// One PEM section.
pub(crate) struct Section {
    /// The label, e.g. `CERTIFICATE` or `EC PRIVATE KEY`.
    pub(crate) label: String,
    /// The decoded contents (DER).
    pub(crate) der: Vec<u8>,
    /// True if RFC 1421 headers said the body is encrypted (`Proc-Type: 4,ENCRYPTED`).
    pub(crate) encrypted: bool,
}

/// Why PEM text could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PemError {
    /// A BEGIN line without its END line.
    Unterminated(String),
    /// The body of a section is not base64.
    BadBase64(String),
}

/// True if the bytes look like PEM (an encapsulation boundary appears).
pub(crate) fn looks_like_pem(bytes: &[u8]) -> bool {
    bytes.windows(11).any(|w| w == b"-----BEGIN ")
}

/// Every section of the text, in order. Text outside sections is ignored.
pub(crate) fn parse(bytes: &[u8]) -> Result<Vec<Section>, PemError> {
    let text = String::from_utf8_lossy(bytes);
    let mut out = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let line = line.trim();
        let Some(label) = line
            .strip_prefix("-----BEGIN ")
            .and_then(|l| l.strip_suffix("-----"))
        else {
            continue;
        };
        let label = label.to_owned();
        let end = format!("-----END {label}-----");
        let mut body = String::new();
        let mut encrypted = false;
        let mut closed = false;
        for l in lines.by_ref() {
            let l = l.trim();
            if l == end {
                closed = true;
                break;
            }
            if l.contains(':') {
                // RFC 1421 headers (Proc-Type, DEK-Info).
                if l.to_ascii_uppercase().contains("ENCRYPTED") {
                    encrypted = true;
                }
                continue;
            }
            body.push_str(l);
        }
        if !closed {
            return Err(PemError::Unterminated(label));
        }
        body.retain(|c| !c.is_whitespace());
        let der = base64::engine::general_purpose::STANDARD
            .decode(body.as_bytes())
            .map_err(|_| PemError::BadBase64(label.clone()))?;
        out.push(Section {
            label,
            der,
            encrypted,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_sections_and_flags() {
        let text = b"junk\n-----BEGIN A B-----\nAAEC\n-----END A B-----\n-----BEGIN X-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES\n\nAA==\n-----END X-----\n";
        let s = parse(text).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].label, "A B");
        assert_eq!(s[0].der, vec![0, 1, 2]);
        assert!(!s[0].encrypted);
        assert!(s[1].encrypted);
    }

    #[test]
    fn errors() {
        assert_eq!(
            parse(b"-----BEGIN A-----\nAAEC\n").err(),
            Some(PemError::Unterminated("A".into()))
        );
        assert_eq!(
            parse(b"-----BEGIN A-----\n!!\n-----END A-----").err(),
            Some(PemError::BadBase64("A".into()))
        );
        assert!(looks_like_pem(b"x -----BEGIN C"));
        assert!(!looks_like_pem(b"\x30\x03"));
    }
}
