//! JIDs (RFC 7622), parsed leniently but bounded.
//!
//! The XMPP server has already checked and routed every JID it hands to the component; this
//! parser only splits it. It lowercases the local part and the domain of the **bare** JID
//! (the key of a subscription), which is what the PRECIS profiles do for ASCII; it applies
//! no other normalisation (see `docs/xmpp.md`).

use std::fmt;

/// A parsed JID: `[local@]domain[/resource]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jid {
    /// The local part, lowercased (`None` for a server or component JID).
    pub local: Option<String>,
    /// The domain, lowercased, without a trailing dot.
    pub domain: String,
    /// The resource, as written.
    pub resource: Option<String>,
}

/// Why a JID was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid JID: {0}")]
pub struct JidError(pub &'static str);

impl Jid {
    /// Parses `s`. Each part is at most 1023 bytes; the local part and domain may not be
    /// empty when present and may not contain spaces, quotes, `<`, `>`, `&` or controls.
    pub fn parse(s: &str) -> Result<Jid, JidError> {
        if s.len() > 3071 {
            return Err(JidError("too long"));
        }
        let (bare, resource) = match s.split_once('/') {
            Some((b, r)) => (b, Some(r)),
            None => (s, None),
        };
        let (local, domain) = match bare.split_once('@') {
            Some((l, d)) => (Some(l), d),
            None => (None, bare),
        };
        let domain = domain.strip_suffix('.').unwrap_or(domain);
        let plain = |p: &str| {
            !p.is_empty()
                && p.len() <= 1023
                && p.chars()
                    .all(|c| !c.is_whitespace() && !c.is_control() && !"\"&'/:<>@".contains(c))
        };
        if !plain(domain) {
            return Err(JidError("bad domain"));
        }
        if let Some(l) = local
            && !plain(l)
        {
            return Err(JidError("bad local part"));
        }
        if let Some(r) = resource
            && (r.is_empty() || r.len() > 1023 || r.chars().any(char::is_control))
        {
            return Err(JidError("bad resource"));
        }
        Ok(Jid {
            local: local.map(str::to_lowercase),
            domain: domain.to_lowercase(),
            resource: resource.map(str::to_owned),
        })
    }

    /// The bare JID (`local@domain` or `domain`).
    pub fn bare(&self) -> Jid {
        Jid {
            local: self.local.clone(),
            domain: self.domain.clone(),
            resource: None,
        }
    }

    /// The bare JID as text.
    pub fn bare_string(&self) -> String {
        self.bare().to_string()
    }
}

impl fmt::Display for Jid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(l) = &self.local {
            write!(f, "{l}@")?;
        }
        f.write_str(&self.domain)?;
        if let Some(r) = &self.resource {
            write!(f, "/{r}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_and_bare() {
        let j = Jid::parse("Alice@Example.ORG/Phone 1").unwrap();
        assert_eq!(j.local.as_deref(), Some("alice"));
        assert_eq!(j.domain, "example.org");
        assert_eq!(j.resource.as_deref(), Some("Phone 1"));
        assert_eq!(j.bare_string(), "alice@example.org");
        assert_eq!(j.to_string(), "alice@example.org/Phone 1");
        assert_eq!(Jid::parse("c.example").unwrap().bare_string(), "c.example");
    }

    #[test]
    fn bad_jids() {
        for s in ["", "@x", "a@", "a b@x", "x/", "a@b@c", "<x>", "a@x/\u{1}"] {
            assert!(Jid::parse(s).is_err(), "{s:?}");
        }
    }
}
