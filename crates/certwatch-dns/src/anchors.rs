//! Trust anchors from configuration: the IANA root, DNSKEY text, or DS text.

use std::str::FromStr;

use hickory_proto::dnssec::rdata::{DNSKEY, DNSSECRData, DS};
use hickory_proto::dnssec::{Algorithm, DigestType, TrustAnchors};
use hickory_proto::rr::{Name, RData, RecordType};

use crate::config::TrustAnchor;
use crate::error::Error;
use crate::wire::Wire;

/// A DS trust anchor parsed from text.
#[derive(Debug, Clone)]
pub(crate) struct DsAnchor {
    pub(crate) owner: Name,
    pub(crate) ds: DS,
}

/// Parses DS lines: `<owner> [ttl] [class] DS <key tag> <algorithm> <digest type> <hex>`.
pub(crate) fn parse_ds(text: &str) -> Result<Vec<DsAnchor>, Error> {
    let bad = |detail: String| Error::TrustAnchor { what: "DS", detail };
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.split(';').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let tokens: Vec<&str> = line.split_whitespace().collect();
        let Some(pos) = tokens.iter().position(|t| t.eq_ignore_ascii_case("DS")) else {
            return Err(bad(format!("no DS in `{line}`")));
        };
        if pos == 0 || tokens.len() < pos + 5 {
            return Err(bad(format!(
                "`{line}` is not `<owner> DS <tag> <alg> <type> <hex>`"
            )));
        }
        let owner =
            Name::from_str(tokens[0]).map_err(|e| bad(format!("owner `{}`: {e}", tokens[0])))?;
        let num = |i: usize| -> Result<u32, Error> {
            tokens[i]
                .parse::<u32>()
                .map_err(|_| bad(format!("`{}` is not a number in `{line}`", tokens[i])))
        };
        let tag = u16::try_from(num(pos + 1)?)
            .map_err(|_| bad(format!("key tag out of range in `{line}`")))?;
        let alg = u8::try_from(num(pos + 2)?)
            .map_err(|_| bad(format!("algorithm out of range in `{line}`")))?;
        let dtype = u8::try_from(num(pos + 3)?)
            .map_err(|_| bad(format!("digest type out of range in `{line}`")))?;
        let hex: String = tokens[pos + 4..].concat();
        let digest = decode_hex(&hex).ok_or_else(|| bad(format!("digest `{hex}` is not hex")))?;
        out.push(DsAnchor {
            owner,
            ds: DS::new(
                tag,
                Algorithm::from_u8(alg),
                DigestType::from(dtype),
                digest,
            ),
        });
    }
    if out.is_empty() {
        return Err(bad("no DS record in the text".into()));
    }
    Ok(out)
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|b| u8::from_str_radix(b, 16).ok()))
        .collect()
}

/// Builds the trust anchors; DS anchors fetch the DNSKEYs they name (through the cache).
pub(crate) async fn build(anchor: &TrustAnchor, wire: &Wire) -> Result<TrustAnchors, Error> {
    match anchor {
        TrustAnchor::IanaRoot => Ok(TrustAnchors::default()),
        TrustAnchor::DnskeyText(text) => {
            TrustAnchors::from_str(text).map_err(|e| Error::TrustAnchor {
                what: "DNSKEY",
                detail: e.to_string(),
            })
        }
        TrustAnchor::DsText(text) => {
            let ds = parse_ds(text)?;
            let mut anchors = TrustAnchors::empty();
            let mut any = false;
            for a in &ds {
                let keys: Vec<DNSKEY> = match wire.raw(&a.owner, RecordType::DNSKEY).await {
                    Ok(msg) => msg
                        .answers
                        .iter()
                        .filter(|r| r.name == a.owner)
                        .filter_map(|r| match &r.data {
                            RData::DNSSEC(DNSSECRData::DNSKEY(k)) => Some(k.clone()),
                            _ => None,
                        })
                        .collect(),
                    Err(e) => {
                        return Err(Error::DsAnchorUnmatched {
                            owner: a.owner.to_string(),
                            detail: format!("the DNSKEY query failed: {e}"),
                        });
                    }
                };
                for k in keys
                    .iter()
                    .filter(|k| a.ds.covers(&a.owner, k).unwrap_or(false))
                {
                    any = true;
                    anchors.insert_with_name(k.public_key(), (&a.owner).into());
                }
            }
            if any {
                Ok(anchors)
            } else {
                Err(Error::DsAnchorUnmatched {
                    owner: ds.first().map(|a| a.owner.to_string()).unwrap_or_default(),
                    detail: "no fetched DNSKEY has the configured digest".into(),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ds_text_parses() {
        let ds = parse_ds(". 3600 IN DS 20326 8 2 E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D\n")
            .unwrap();
        assert_eq!(ds.len(), 1);
        assert_eq!(ds[0].ds.key_tag(), 20326);
        assert!(ds[0].owner.is_root());
        assert!(parse_ds("nonsense").is_err());
        assert!(parse_ds(". DS 1 8 2 XYZ").is_err());
    }
}
