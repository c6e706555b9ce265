//! The entry point: a configured resolver that runs checks.

use std::sync::Arc;

use hickory_net::runtime::TokioRuntimeProvider;
use hickory_proto::rr::{Name, RecordType};
use hickory_resolver::NameServerPool;

use crate::anchors;
use crate::config::ResolverConfig;
use crate::discover::ServiceMap;
use crate::error::Error;
use crate::lookup::Session;
use crate::name::DomainName;
use crate::rrset::RrsetLookup;
use crate::wire::{self, Wire};

/// Which record types [`Resolver::lookup`] can be asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RrType {
    /// IPv4 addresses.
    A,
    /// IPv6 addresses.
    Aaaa,
    /// Service records.
    Srv,
    /// DANE records.
    Tlsa,
    /// CA authorisation.
    Caa,
    /// Anything else, by number.
    Other(u16),
}

impl From<RrType> for RecordType {
    fn from(t: RrType) -> RecordType {
        match t {
            RrType::A => RecordType::A,
            RrType::Aaaa => RecordType::AAAA,
            RrType::Srv => RecordType::SRV,
            RrType::Tlsa => RecordType::TLSA,
            RrType::Caa => RecordType::CAA,
            RrType::Other(n) => RecordType::from(n),
        }
    }
}

/// A validating stub resolver for certwatch checks.
///
/// Every check (`discover`, `lookup`) gets a fresh shared cache, so answers are never older
/// than the check; within a check each question goes to the network once.
#[derive(Clone)]
pub struct Resolver {
    config: Arc<ResolverConfig>,
    pool: NameServerPool<TokioRuntimeProvider>,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver")
            .field("servers", &self.config.servers)
            .finish_non_exhaustive()
    }
}

impl Resolver {
    /// A resolver with this configuration. Nothing is sent until a check runs.
    pub fn new(config: ResolverConfig) -> Result<Self, Error> {
        if config.servers.is_empty() {
            return Err(Error::NoServers);
        }
        // Check anchor text early, so that a typo fails before any packet.
        config.trust_anchor.validate()?;
        let pool = wire::pool(&config)?;
        Ok(Resolver {
            config: Arc::new(config),
            pool,
        })
    }

    async fn session(&self) -> Result<Session, Error> {
        let wire = Wire::new(self.pool.clone());
        let deadline = self.config.lookup_deadline;
        let anchors =
            tokio::time::timeout(deadline, anchors::build(&self.config.trust_anchor, &wire))
                .await
                .map_err(|_| Error::DsAnchorUnmatched {
                    owner: ".".into(),
                    detail: format!("no DNSKEY answer within {} ms", deadline.as_millis()),
                })??;
        Ok(Session::new(wire, Arc::new(anchors), self.config.clone()))
    }

    /// Normalises `domain` as typed and discovers its XMPP service map. A rejected name
    /// sends no packet.
    pub async fn discover(&self, domain: &str) -> Result<ServiceMap, Error> {
        let d = DomainName::normalise(domain)?;
        let clock = self.config.clock.clone();
        crate::runtime::with_clock(clock, async {
            let s = self.session().await?;
            Ok(s.discover(&d).await)
        })
        .await
    }

    /// Looks up one RRset (following CNAMEs) with its status, in a fresh session.
    /// `name` is a host or owner name such as `_5222._tcp.xmpp.example.org`; it is used
    /// as given (after trimming one trailing dot), without IDNA.
    pub async fn lookup(&self, name: &str, rtype: RrType) -> Result<RrsetLookup, Error> {
        let trimmed = name.trim();
        let mut n = Name::from_ascii(trimmed).map_err(|e| {
            Error::Name(crate::NameError::Idna {
                input: format!("{trimmed} ({e})"),
            })
        })?;
        n.set_fqdn(true);
        let clock = self.config.clock.clone();
        crate::runtime::with_clock(clock, async {
            let s = self.session().await?;
            Ok(s.lookup(&n, rtype.into()).await)
        })
        .await
    }
}
