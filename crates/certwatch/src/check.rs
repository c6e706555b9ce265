//! The pipeline of one domain check: normalise and discover (certwatch-dns), probe every
//! target and key type concurrently (certwatch-probe), judge (certwatch-core), and assemble
//! the [`Report`].

use std::net::IpAddr;
use std::time::Duration;

use certwatch_core::{
    Classification, Confirmation, DnssecStatus, DomainVerdict, Endpoint, EndpointVerdict,
    FailureKind, KeySeen, MatchPolicy, PinSource, PresentedChain, ProbeFailure, ProbeOutcome,
    ProbeTarget, TargetVerdict, UnixTime, Vantage, VantageResult, Verdict, Warning, WarningCode,
    agreed_key, confirm, judge_endpoint, judge_target, setup_advice,
};
use certwatch_dns::{AnswerKind, DomainName, Resolver, RrType};
use certwatch_probe::{
    CheckIsolation, ErrorClass, KeyRequest, Probe, ProbeError, ProbeErrorKind, Prober, Transport,
};
use futures::StreamExt as _;

use crate::addresses::special_use_address;
use crate::discovery::Discovery;
use crate::report::{
    ConfirmationReport, EndpointReport, ProbeErrorReport, Report, SCHEMA_VERSION, Setup,
};
use crate::survey::{KeySighting, KeySurvey, TargetKeys};
use crate::{CheckError, CheckOptions};

/// Checks one domain with these options (builds a [`Checker`] for the one call).
pub async fn check(domain: &str, options: &CheckOptions) -> Result<Report, CheckError> {
    Checker::new(options.clone())?.check(domain).await
}

/// A reusable checker: one resolver and one prober for many domains.
#[derive(Debug, Clone)]
pub struct Checker {
    options: CheckOptions,
    resolver: Resolver,
    prober: Prober,
}

/// What one probe job produced, before judging.
#[derive(Clone)]
struct Seen {
    address: IpAddr,
    key_request: Option<KeyRequest>,
    outcome: ProbeOutcome,
    vantage: Option<Vantage>,
    /// Set for a probe that failed before judging could use it (unproven key, private).
    error: Option<ProbeErrorReport>,
    /// A proven key (for the setup lines).
    proven_spki: Option<[u8; 32]>,
    /// The successful probe itself (chain, TLS facts, vantage), for evidence.
    probe: Option<Box<Probe>>,
}

impl Checker {
    /// A checker. Fails on inconsistent options or an unusable resolver configuration or
    /// trust anchor; nothing is sent yet.
    pub fn new(options: CheckOptions) -> Result<Self, CheckError> {
        options.validate()?;
        let resolver =
            Resolver::new(options.resolver_config()).map_err(CheckError::ResolverSetup)?;
        let prober = Prober::new(options.transport.clone(), options.probe_options());
        Ok(Checker {
            options,
            resolver,
            prober,
        })
    }

    /// The options.
    pub fn options(&self) -> &CheckOptions {
        &self.options
    }

    /// Checks one domain: discovery, probes of every address and key type (at most
    /// [`CheckOptions::concurrency`] at once, on one Tor circuit isolation for the whole
    /// check), judgement and setup advice.
    ///
    /// With [`CheckOptions::confirm`] above 0, every mismatching (endpoint, address, key
    /// type) target is re-probed from several vantage points before the mismatch is
    /// reported (in rounds, as [`Checker::survey`] describes) and classified with core's
    /// rules, target by target. So is, unless the transport is direct, every address of a
    /// DANE endpoint (secure, non-empty TLSA RRset) that answered with a protocol error (no
    /// STARTTLS, a TLS alert...; a timeout is no suspect): a hostile exit can strip
    /// STARTTLS as easily as present another key. Such an address is re-probed with every
    /// key type; a vantage point that completes TLS with a key in the TLSA set counts as a
    /// match, so when most vantage points do, the protocol error was the exit's
    /// (`hostile-exit` warning, the target a match), and when they see it too, it stays.
    ///
    /// A verdict is data: a mismatch is `Ok(report)` with `verdict: mismatch`. Errors are
    /// for an invalid domain and an unreachable or misconfigured resolver.
    pub async fn check(&self, domain: &str) -> Result<Report, CheckError> {
        Ok(self.run(domain, 0).await?.0.report)
    }

    /// Checks one domain like [`Checker::check`] and also returns every successful probe
    /// the check made: those of the check itself, then those of the confirmation rounds (in
    /// that order), each with the chain the server presented and proved, its TLS facts and
    /// its vantage point. This is the raw material of an evidence bundle
    /// ([`evidence::ProbeEvidence::from_probe`](crate::evidence::ProbeEvidence::from_probe)),
    /// so an alert's evidence is what the alert saw, not a later re-probe.
    pub async fn check_with_probes(
        &self,
        domain: &str,
    ) -> Result<(Report, Vec<certwatch_probe::Probe>), CheckError> {
        let (survey, probes) = self.run(domain, 0).await?;
        Ok((survey.report, probes))
    }

    /// Checks one domain like [`Checker::check`] and records, for every probe target and key
    /// type that was probed, which key each vantage point saw: the evidence `certwatch
    /// records DOMAIN` prints zone lines from.
    ///
    /// With `vantage_rounds` = 0 each target has the one sighting of the check. With
    /// `vantage_rounds` = N, every target is probed again in N rounds, each round on a fresh
    /// circuit isolation (so one new circuit per round, not per target) whose exits must
    /// all be new, unseen by the check and by earlier rounds (rounds that repeat an exit, or
    /// where no probe was conclusive, are retried, up to 3N+2 attempts, or twice that while
    /// no round has counted; fewer rounds result when the network has too few exits), and then once directly unless the transport is
    /// already direct (over the direct transport, one round only: there is one vantage
    /// point). [`TargetKeys::agreed_spki_sha256`] is set only when every vantage point that
    /// saw a key saw the same proven key, no vantage point saw an unproven key, and at
    /// least two distinct vantage points saw it.
    ///
    /// ```no_run
    /// # async fn run(checker: certwatch::Checker) -> Result<(), certwatch::CheckError> {
    /// let survey = checker.survey("example.org", 3).await?;
    /// for t in &survey.targets {
    ///     match &t.agreed_spki_sha256 {
    ///         Some(k) => println!("{}:{} [{}] {k}", t.target, t.port, t.address),
    ///         None => println!("{}:{} [{}]: vantage points disagree", t.target, t.port, t.address),
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn survey(
        &self,
        domain: &str,
        vantage_rounds: usize,
    ) -> Result<KeySurvey, CheckError> {
        Ok(self.run(domain, vantage_rounds).await?.0)
    }

    /// The DNS half of a check: normalises the domain and discovers its endpoints (SRV,
    /// addresses, TLSA, with DNSSEC statuses), without probing anything.
    ///
    /// With [`Checker::check_discovered`] this splits [`Checker::check`] in two, so that a
    /// scheduler can refresh DNS on its own schedule (following [`Discovery::min_ttl`])
    /// rather than right before each probe, where the DNS traffic would announce it.
    pub async fn discover(&self, domain: &str) -> Result<Discovery, CheckError> {
        let name = DomainName::normalise(domain).map_err(|source| CheckError::InvalidDomain {
            input: domain.trim().to_owned(),
            source,
        })?;
        let now = self.options.clock.now_unix();
        let map = self
            .resolver
            .discover(name.as_str())
            .await
            .map_err(|source| match source {
                certwatch_dns::Error::Name(source) => CheckError::InvalidDomain {
                    input: domain.trim().to_owned(),
                    source,
                },
                source => CheckError::Resolver {
                    domain: name.as_str().to_owned(),
                    source,
                },
            })?;
        if map
            .services
            .iter()
            .all(|s| s.srv.answer == AnswerKind::Failed)
        {
            self.check_resolver_reachable(name.as_str()).await?;
        }
        Ok(Discovery {
            domain: name.as_str().to_owned(),
            discovered_at: now,
            map,
        })
    }

    /// The probing half of a check: probes, judges and reports on an earlier
    /// [`Discovery`], exactly as [`Checker::check`] does after its own discovery (one fresh
    /// circuit isolation, confirmation per [`CheckOptions::confirm`]). `checked_at` is the
    /// time of the probes; the DNS facts are those of `discovery.discovered_at`.
    ///
    /// ```no_run
    /// # async fn run(checker: certwatch::Checker) -> Result<(), certwatch::CheckError> {
    /// let discovery = checker.discover("example.org").await?;
    /// let refresh_after = discovery.min_ttl().unwrap_or(std::time::Duration::from_secs(3600));
    /// // ... later, and again until refresh_after has passed:
    /// let report = checker.check_discovered(&discovery).await?;
    /// # let _ = (refresh_after, report); Ok(()) }
    /// ```
    pub async fn check_discovered(&self, discovery: &Discovery) -> Result<Report, CheckError> {
        let now = self.options.clock.now_unix();
        Ok(self.run_discovered(discovery, now, 0).await.0.report)
    }

    /// Probes, judges and reports on an earlier [`Discovery`] like
    /// [`Checker::check_discovered`], and also returns every successful probe the check
    /// made (those of the check, then those of its confirmation rounds), as
    /// [`Checker::check_with_probes`] does: the raw material of the evidence bundle of a
    /// check that used a cached discovery
    /// ([`evidence::gather_with_probes`](crate::evidence::gather_with_probes)).
    ///
    /// ```no_run
    /// # async fn run(checker: certwatch::Checker) -> Result<(), certwatch::CheckError> {
    /// let discovery = checker.discover("example.org").await?;
    /// let (report, probes) = checker.check_discovered_with_probes(&discovery).await?;
    /// let bundle =
    ///     certwatch::evidence::gather_with_probes(checker.options(), &report, &probes).await;
    /// # let _ = bundle; Ok(()) }
    /// ```
    pub async fn check_discovered_with_probes(
        &self,
        discovery: &Discovery,
    ) -> Result<(Report, Vec<Probe>), CheckError> {
        let now = self.options.clock.now_unix();
        let (survey, probes) = self.run_discovered(discovery, now, 0).await;
        Ok((survey.report, probes))
    }

    /// The pipeline: the survey (report and sightings) and every successful probe made.
    async fn run(
        &self,
        domain: &str,
        survey_rounds: usize,
    ) -> Result<(KeySurvey, Vec<Probe>), CheckError> {
        let discovery = self.discover(domain).await?;
        Ok(self
            .run_discovered(&discovery, discovery.discovered_at, survey_rounds)
            .await)
    }

    /// Probing, judgement and report on a discovery; `now` is the report's `checked_at`.
    async fn run_discovered(
        &self,
        discovery: &Discovery,
        now: u64,
        survey_rounds: usize,
    ) -> (KeySurvey, Vec<Probe>) {
        let map = &discovery.map;
        let name = discovery.domain.as_str();
        let endpoints: Vec<Endpoint> = map
            .endpoints
            .iter()
            .filter(|ep| {
                self.options
                    .services
                    .as_ref()
                    .is_none_or(|s| s.contains(&ep.id.service))
            })
            .cloned()
            .collect();

        let seen = self.probe_all(&endpoints).await;
        let policy_now = UnixTime::since_unix_epoch(Duration::from_secs(now));
        let mut verdicts: Vec<EndpointVerdict> = Vec::new();
        let mut entries = Vec::new();
        // Where each endpoint's entries begin in `entries`.
        let mut entry_base: Vec<usize> = Vec::new();
        let mut keys = Vec::new();
        // Every mismatching probe, and every DANE address with a protocol error, for the
        // confirmation. Over the direct transport there is no exit to suspect of stripping
        // TLS, and no second vantage point to ask: a protocol error stands as it is.
        let mut suspects: Vec<Suspect> = Vec::new();
        let downgrades = !matches!(self.prober.transport(), Transport::Direct);
        // Every probed target and key type, for a survey.
        let mut probed: Vec<(usize, ProbeTarget, KeyRequest, Seen)> = Vec::new();
        let mut probes: Vec<Probe> = Vec::new();
        for (e, (ep, seen)) in endpoints.iter().zip(seen).enumerate() {
            probes.extend(seen.iter().filter_map(|s| s.probe.as_deref().cloned()));
            let seen = tidy_key_types(seen);
            let outcomes: Vec<(IpAddr, ProbeOutcome)> = seen
                .iter()
                .map(|s| (s.address, s.outcome.clone()))
                .collect();
            let policy = MatchPolicy::new(&ep.domain, &ep.id.target, policy_now);
            let ev = judge_endpoint(ep, &outcomes, &policy);
            entry_base.push(entries.len());
            entries.extend(entries_of(ep, &ev, &seen));
            for (i, (t, s)) in ev.targets.iter().zip(&seen).enumerate() {
                add_suspect(&mut suspects, e, i, t, s, downgrades);
                if matches!(
                    t.verdict,
                    Verdict::NoRecords | Verdict::UnusableRecords | Verdict::NoDnssec
                ) && let Some(spki) = s.proven_spki
                {
                    let k = KeySeen::new(&ep.id.target, ep.id.port, spki, PinSource::LiveProbe);
                    if !keys.contains(&k) {
                        keys.push(k);
                    }
                }
                if let Some(kr) = s.key_request {
                    probed.push((e, t.target.clone(), kr, s.clone()));
                }
            }
            verdicts.push(ev);
        }
        let mut confirmation = None;
        let mut confirm_warnings = Vec::new();
        if self.options.confirm > 0 && !suspects.is_empty() {
            let (confirmed, more) = self
                .confirm_suspects(&endpoints, &mut verdicts, &suspects, policy_now)
                .await;
            probes.extend(more);
            for (s, v) in suspects.iter().zip(&confirmed.verdicts) {
                for i in &s.indices {
                    if let Some(entry) = entries.get_mut(entry_base[s.endpoint] + i) {
                        entry.confirmed_verdict = Some(*v);
                    }
                }
            }
            confirm_warnings = confirmed.warnings;
            confirmation = Some(confirmed.summary);
        }
        // A mismatch is an alert, not a setup matter: its endpoints get no setup lines.
        let setup_endpoints: Vec<Endpoint> = endpoints
            .iter()
            .zip(&verdicts)
            .filter(|(_, ev)| ev.verdict != Verdict::Mismatch)
            .map(|(ep, _)| ep.clone())
            .collect();
        let advice = setup_advice(&setup_endpoints, &keys, self.options.ttl);

        let mut warnings: Vec<Warning> = map.warnings.clone();
        for ev in &verdicts {
            warnings.extend(ev.warnings.iter().cloned());
            for t in &ev.targets {
                warnings.extend(t.warnings.iter().cloned());
            }
        }
        warnings.extend(confirm_warnings);
        warnings.extend(advice.warnings.iter().cloned());
        let mut unique = std::collections::HashSet::new();
        warnings.retain(|w| unique.insert(w.clone()));

        let domain_verdict = DomainVerdict::new(name, verdicts);
        let report = Report {
            schema_version: SCHEMA_VERSION,
            domain: name.to_owned(),
            checked_at: rfc3339(now),
            verdict: domain_verdict.verdict,
            endpoints: entries,
            confirmation,
            setup: Setup {
                zone_lines: advice.zone_lines,
                advice: advice.advice,
            },
            warnings,
            exit: Some(domain_verdict.exit_code()),
        };

        let mut targets: Vec<TargetKeys> = probed
            .iter()
            .map(|(e, t, _, s)| target_keys(&endpoints[*e], t, s))
            .collect();
        if survey_rounds > 0 {
            let jobs: Vec<(ProbeTarget, KeyRequest)> = probed
                .iter()
                .map(|(_, t, kr, _)| (t.clone(), *kr))
                .collect();
            let first_exits = probed.iter().filter_map(|(_, _, _, s)| exit_ip(s.vantage));
            let rounds = self
                .vantage_rounds(&jobs, survey_rounds, first_exits.collect())
                .await;
            for (tk, more) in targets.iter_mut().zip(rounds) {
                tk.sightings.extend(more.iter().map(sighting));
                probes.extend(more.into_iter().filter_map(|s| s.probe.map(|p| *p)));
            }
        }
        for tk in &mut targets {
            tk.agreed_spki_sha256 = agreement(&tk.sightings);
        }
        (
            KeySurvey {
                report,
                targets,
                vantage_rounds: survey_rounds,
            },
            probes,
        )
    }

    /// Re-probes every suspect (mismatching target, DANE address with a protocol error) in
    /// `confirm` rounds of distinct exits (plus directly), classifies each with core's rules
    /// ([`classify_suspects`]), and applies the confirmed verdicts to the endpoints. Returns
    /// the confirmation and the probes of the rounds.
    async fn confirm_suspects(
        &self,
        endpoints: &[Endpoint],
        verdicts: &mut [EndpointVerdict],
        suspects: &[Suspect],
        now: UnixTime,
    ) -> (Confirmed, Vec<Probe>) {
        let (jobs, plan) = confirmation_jobs(suspects, &self.options.key_requests);
        let first_exits = suspects
            .iter()
            .filter_map(|s| exit_ip(Some(s.first.vantage)));
        let rounds = self
            .vantage_rounds(&jobs, self.options.confirm, first_exits.collect())
            .await;
        let probes = rounds
            .iter()
            .flatten()
            .filter_map(|s| s.probe.as_deref().cloned())
            .collect();
        let confirmed = classify_suspects(
            endpoints,
            verdicts,
            suspects,
            &plan,
            &rounds,
            now,
            self.prober.transport(),
        );
        (confirmed, probes)
    }

    /// Probes every job again in `n` rounds of distinct vantage points, then directly
    /// (unless the transport is direct). Returns, per job, what each round saw.
    ///
    /// A round uses one fresh [`CheckIsolation`] for all its jobs (one new circuit, not one
    /// per job). A round counts when at least one of its probes is conclusive and none of
    /// its exits is in `exits` (the check's own exits) or was seen in an earlier round;
    /// otherwise it is retried, up to `3n + 2` attempts (twice that while no round has
    /// counted yet). Over the direct transport one round is made: there is one vantage
    /// point.
    async fn vantage_rounds(
        &self,
        jobs: &[(ProbeTarget, KeyRequest)],
        n: usize,
        mut exits: std::collections::HashSet<IpAddr>,
    ) -> Vec<Vec<Seen>> {
        let mut out: Vec<Vec<Seen>> = jobs.iter().map(|_| Vec::new()).collect();
        if jobs.is_empty() || n == 0 {
            return out;
        }
        let direct_only = matches!(self.prober.transport(), Transport::Direct);
        let wanted = if direct_only { 1 } else { n };
        let max_attempts = 3 * wanted + 2;
        let (mut rounds, mut attempts) = (0, 0);
        // When no new exit answered at all within the budget, keep trying as long again:
        // without a second exit, a hostile first exit and the direct path are exactly half,
        // and the fail-safe rule would call that a server-side interception.
        while rounds < wanted
            && (attempts < max_attempts || (rounds == 0 && attempts < 2 * max_attempts))
        {
            attempts += 1;
            let isolation = CheckIsolation::new();
            let results = self.probe_jobs(&self.prober, &isolation, jobs).await;
            if results.iter().all(is_inconclusive) {
                continue;
            }
            let round_exits: std::collections::HashSet<IpAddr> =
                results.iter().filter_map(|s| exit_ip(s.vantage)).collect();
            if round_exits.iter().any(|ip| exits.contains(ip)) {
                continue;
            }
            exits.extend(round_exits);
            rounds += 1;
            for (o, s) in out.iter_mut().zip(results) {
                o.push(s);
            }
        }
        if !direct_only {
            let direct = Prober::new(Transport::Direct, self.options.probe_options());
            let results = self.probe_jobs(&direct, &CheckIsolation::new(), jobs).await;
            for (o, s) in out.iter_mut().zip(results) {
                o.push(s);
            }
        }
        out
    }

    /// Probes the jobs with `prober` on one isolation, at most `concurrency` at once, in
    /// job order.
    async fn probe_jobs(
        &self,
        prober: &Prober,
        isolation: &CheckIsolation,
        jobs: &[(ProbeTarget, KeyRequest)],
    ) -> Vec<Seen> {
        futures::stream::iter(jobs.to_vec())
            .map(|(target, kr)| async move {
                let r = prober.probe(&target, isolation, kr).await;
                seen_of(&target, kr, r, prober.transport())
            })
            .buffered(self.options.concurrency)
            .collect()
            .await
    }

    /// Every SRV lookup failed: asks for the root SOA to tell a dead resolver from a dead
    /// zone.
    async fn check_resolver_reachable(&self, domain: &str) -> Result<(), CheckError> {
        let soa = RrType::Other(6);
        let unreachable = match self.resolver.lookup(".", soa).await {
            Ok(l) => l.answer == AnswerKind::Failed,
            Err(_) => true,
        };
        if unreachable {
            let servers = self
                .options
                .resolver
                .servers
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ");
            return Err(CheckError::ResolverUnreachable {
                domain: domain.to_owned(),
                servers,
            });
        }
        Ok(())
    }

    /// Probes every (endpoint, address, key type), at most `concurrency` at once, and returns
    /// what was seen per endpoint, in address then key-type order.
    async fn probe_all(&self, endpoints: &[Endpoint]) -> Vec<Vec<Seen>> {
        let isolation = CheckIsolation::new();
        let mut jobs = Vec::new();
        let mut refused: Vec<(usize, usize, Seen)> = Vec::new();
        for (e, ep) in endpoints.iter().enumerate() {
            for (a, target) in ep.probe_targets().into_iter().enumerate() {
                if !self.options.allow_private_targets
                    && let Some(kind) = special_use_address(target.address)
                {
                    refused.push((e, a, private_refusal(&target, kind)));
                    continue;
                }
                for kr in &self.options.key_requests {
                    jobs.push((e, a, target.clone(), *kr));
                }
            }
        }
        let prober = &self.prober;
        let isolation = &isolation;
        let mut done: Vec<(usize, usize, usize, Seen)> =
            futures::stream::iter(jobs.into_iter().enumerate())
                .map(|(order, (e, a, target, kr))| async move {
                    let result = prober.probe(&target, isolation, kr).await;
                    (
                        e,
                        a,
                        order,
                        seen_of(&target, kr, result, prober.transport()),
                    )
                })
                .buffer_unordered(self.options.concurrency)
                .collect()
                .await;
        done.extend(refused.into_iter().map(|(e, a, s)| (e, a, 0, s)));
        done.sort_by_key(|(e, a, order, _)| (*e, *a, *order));
        let mut out: Vec<Vec<Seen>> = endpoints.iter().map(|_| Vec::new()).collect();
        for (e, _, _, s) in done {
            out[e].push(s);
        }
        out
    }
}

/// Why a target awaits confirmation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SuspectKind {
    /// A mismatch of this key type: re-probed with this key type.
    Mismatch(KeyRequest),
    /// A protocol error on a DANE target (an exit may have stripped STARTTLS or broken the
    /// handshake): the address is re-probed with every key type, and each vantage point
    /// counts with the worst of its conclusive key types (a key type the server does not
    /// have is dropped when another answered, as in the check).
    Downgrade,
}

/// A target awaiting confirmation.
#[derive(Debug, Clone)]
struct Suspect {
    /// Index of its endpoint.
    endpoint: usize,
    /// Indices of the target verdicts (within the endpoint) it stands for: one for a
    /// mismatch, every key type with a protocol error on the address for a downgrade.
    indices: Vec<usize>,
    target: ProbeTarget,
    kind: SuspectKind,
    /// What the check itself saw.
    first: VantageResult,
}

/// Adds the suspect that target verdict `t` (index `i` of endpoint `e`, seen as `s`) makes,
/// if any: a mismatch, or (with `downgrades`) a protocol error where DANE makes TLS
/// mandatory. A timeout or network failure is indeterminate, never a suspect.
fn add_suspect(
    suspects: &mut Vec<Suspect>,
    e: usize,
    i: usize,
    t: &TargetVerdict,
    s: &Seen,
    downgrades: bool,
) {
    let (Some(kr), Some(v)) = (s.key_request, s.vantage) else {
        return;
    };
    if t.verdict == Verdict::Mismatch {
        suspects.push(Suspect {
            endpoint: e,
            indices: vec![i],
            target: t.target.clone(),
            kind: SuspectKind::Mismatch(kr),
            first: VantageResult::new(v, t.verdict, t.presented_spki_sha256.clone()),
        });
    } else if downgrades && t.verdict == Verdict::ProtocolError && t.dane {
        let same = suspects.iter_mut().find(|x| {
            x.kind == SuspectKind::Downgrade
                && x.endpoint == e
                && x.target.address == t.target.address
        });
        match same {
            Some(x) => x.indices.push(i),
            None => suspects.push(Suspect {
                endpoint: e,
                indices: vec![i],
                target: t.target.clone(),
                kind: SuspectKind::Downgrade,
                first: VantageResult::new(v, Verdict::ProtocolError, None),
            }),
        }
    }
}

/// The probe jobs of a confirmation (each (target, key type) once) and, per suspect, the
/// indices of its jobs.
fn confirmation_jobs(
    suspects: &[Suspect],
    key_requests: &[KeyRequest],
) -> (Vec<(ProbeTarget, KeyRequest)>, Vec<Vec<usize>>) {
    let mut jobs: Vec<(ProbeTarget, KeyRequest)> = Vec::new();
    let mut plan = Vec::new();
    for s in suspects {
        let krs: Vec<KeyRequest> = match s.kind {
            SuspectKind::Mismatch(kr) => vec![kr],
            SuspectKind::Downgrade => key_requests.to_vec(),
        };
        let mut mine = Vec::new();
        for kr in krs {
            let job = (s.target.clone(), kr);
            let j = match jobs.iter().position(|x| *x == job) {
                Some(j) => j,
                None => {
                    jobs.push(job);
                    jobs.len() - 1
                }
            };
            mine.push(j);
        }
        plan.push(mine);
    }
    (jobs, plan)
}

/// The outcome of a confirmation.
struct Confirmed {
    /// The summary for the report.
    summary: ConfirmationReport,
    /// `hostile-exit` (naming the target) and `diversity-unverified` warnings.
    warnings: Vec<Warning>,
    /// The confirmed verdict of each suspect, in order.
    verdicts: Vec<Verdict>,
}

/// What one vantage point's probes of a suspect (one per job of the suspect, all from one
/// round) say: the worst conclusive verdict over its key types (a key type the server does
/// not have dropped when another answered), `indeterminate` when none is conclusive.
fn vantage_result(
    ep: &Endpoint,
    seen: Vec<Seen>,
    policy: &MatchPolicy<'_>,
    transport: &Transport,
) -> VantageResult {
    let judged: Vec<(TargetVerdict, Option<Vantage>)> = tidy_key_types(seen)
        .into_iter()
        .map(|s| (judge_target(ep, s.address, &s.outcome, policy), s.vantage))
        .collect();
    let pick = judged
        .iter()
        .filter(|(tv, _)| tv.verdict != Verdict::Indeterminate)
        .max_by_key(|(tv, _)| tv.verdict.rank(tv.dane))
        .or_else(|| judged.first());
    match pick {
        Some((tv, v)) => VantageResult::new(
            v.unwrap_or_else(|| nominal_vantage(transport)),
            tv.verdict,
            tv.presented_spki_sha256.clone(),
        ),
        None => VantageResult::new(nominal_vantage(transport), Verdict::Indeterminate, None),
    }
}

/// Classifies every suspect with core's rules from what the check saw and what each round
/// (`rounds[job][round]`, the jobs of `plan[suspect]`) saw, sets each suspect's target
/// verdicts to the confirmed verdict, and makes each touched endpoint the worst of its
/// targets again.
fn classify_suspects(
    endpoints: &[Endpoint],
    verdicts: &mut [EndpointVerdict],
    suspects: &[Suspect],
    plan: &[Vec<usize>],
    rounds: &[Vec<Seen>],
    now: UnixTime,
    transport: &Transport,
) -> Confirmed {
    let mut confirmations: Vec<Confirmation> = Vec::new();
    let mut warnings: Vec<Warning> = Vec::new();
    let mut confirmed = Vec::new();
    for (s, jobs) in suspects.iter().zip(plan) {
        let ep = &endpoints[s.endpoint];
        let policy = MatchPolicy::new(&ep.domain, &s.target.id.target, now);
        let mut results = vec![s.first.clone()];
        let n = jobs
            .iter()
            .map(|j| rounds.get(*j).map_or(0, Vec::len))
            .min()
            .unwrap_or(0);
        for r in 0..n {
            let seen: Vec<Seen> = jobs
                .iter()
                .filter_map(|j| rounds.get(*j).and_then(|x| x.get(r)).cloned())
                .collect();
            results.push(vantage_result(ep, seen, &policy, transport));
        }
        let c = confirm(&results);
        for i in &s.indices {
            if let Some(t) = verdicts[s.endpoint].targets.get_mut(*i) {
                t.verdict = c.verdict;
            }
        }
        let what = match s.kind {
            SuspectKind::Mismatch(kr) => key_request_label(kr),
            SuspectKind::Downgrade => "protocol error",
        };
        let label = format!(
            "{} {}:{} [{}] {what}",
            s.target.id.service, s.target.id.target, s.target.id.port, s.target.address,
        );
        for w in &c.warnings {
            let w = if w.code == WarningCode::DiversityUnverified {
                w.clone()
            } else {
                Warning::new(w.code, format!("{label}: {}", w.message))
            };
            if !warnings.contains(&w) {
                warnings.push(w);
            }
        }
        confirmed.push(c.verdict);
        confirmations.push(c);
    }
    // Each endpoint that had a suspect takes the worst of its targets as confirmed; the
    // report's entries keep what the check itself saw, as evidence.
    let touched: std::collections::BTreeSet<usize> = suspects.iter().map(|s| s.endpoint).collect();
    for e in touched {
        let ev = &mut verdicts[e];
        if let Some(worst) = ev.targets.iter().max_by_key(|t| t.verdict.rank(t.dane)) {
            ev.verdict = worst.verdict;
            ev.reason = worst.reason;
            ev.dane = worst.dane;
        }
    }
    Confirmed {
        summary: combine_confirmations(&confirmations),
        warnings,
        verdicts: confirmed,
    }
}

fn key_request_label(kr: KeyRequest) -> &'static str {
    match kr {
        KeyRequest::Ec => "ec key",
        KeyRequest::Rsa => "rsa key",
        #[allow(unreachable_patterns)]
        _ => "key",
    }
}

/// The Tor exit address of a vantage, when it is one and known.
fn exit_ip(v: Option<Vantage>) -> Option<IpAddr> {
    match v {
        Some(Vantage::Tor(Some(ip))) => Some(ip),
        _ => None,
    }
}

fn is_inconclusive(s: &Seen) -> bool {
    matches!(&s.outcome, ProbeOutcome::Failed(f) if f.kind == FailureKind::Inconclusive)
}

/// The summary of several targets' confirmations: the worst classification
/// (server-side interception > indeterminate > hostile exit > consistent), the fewest
/// vantage points and distinct exits of any target, and diversity verified only if it was
/// for every target.
fn combine_confirmations(cs: &[Confirmation]) -> ConfirmationReport {
    let severity = |c: Classification| match c {
        Classification::ServerSideInterception => 3,
        Classification::Indeterminate => 2,
        Classification::HostileExit => 1,
        _ => 0,
    };
    let classification = cs
        .iter()
        .map(|c| c.classification)
        .max_by_key(|c| severity(*c))
        .unwrap_or(Classification::Indeterminate);
    ConfirmationReport {
        vantage_points: cs.iter().map(|c| c.vantage_points).min().unwrap_or(0),
        distinct_exits: cs.iter().map(|c| c.distinct_exits).min().unwrap_or(0),
        classification,
        diversity_verified: cs.iter().all(|c| c.diversity_verified),
    }
}

/// The survey entry of one probed target, with the check's own sighting.
fn target_keys(ep: &Endpoint, target: &ProbeTarget, s: &Seen) -> TargetKeys {
    TargetKeys {
        service: ep.id.service,
        target: target.id.target.clone(),
        port: target.id.port,
        address: target.address,
        sightings: vec![sighting(s)],
        agreed_spki_sha256: None,
    }
}

/// What one probe saw, for a survey.
fn sighting(s: &Seen) -> KeySighting {
    let (spki, key_type, proven) = match &s.outcome {
        ProbeOutcome::Presented(chain) => (
            chain.leaf_spki_sha256().map(hex::encode),
            chain.leaf_key_type(),
            chain.key_proven,
        ),
        _ => (None, None, false),
    };
    let error = s.error.clone().or_else(|| match &s.outcome {
        ProbeOutcome::Failed(f) => Some(ProbeErrorReport::new(f.class.clone(), f.message.clone())),
        _ => None,
    });
    KeySighting {
        vantage: s.vantage,
        spki_sha256: spki,
        key_proven: proven,
        key_type,
        error,
    }
}

/// The key every vantage point saw (REFERENCE §2): none when any saw an unproven key,
/// otherwise core's [`agreed_key`] over the proven keys.
fn agreement(sightings: &[KeySighting]) -> Option<String> {
    if sightings
        .iter()
        .any(|s| s.spki_sha256.is_some() && !s.key_proven)
    {
        return None;
    }
    let results: Vec<VantageResult> = sightings
        .iter()
        .filter_map(|s| {
            let v = s.vantage?;
            let verdict = if s.spki_sha256.is_some() {
                Verdict::Match
            } else {
                Verdict::Indeterminate
            };
            Some(VantageResult::new(v, verdict, s.spki_sha256.clone()))
        })
        .collect();
    agreed_key(&results)
}

/// The nominal vantage of a transport, for a probe that failed before its vantage was known.
fn nominal_vantage(transport: &Transport) -> Vantage {
    match transport {
        Transport::Direct => Vantage::Direct,
        Transport::Socks { .. } => Vantage::Socks,
        #[allow(unreachable_patterns)]
        _ => Vantage::Tor(None),
    }
}

fn vantage_of(v: &certwatch_probe::Vantage) -> Vantage {
    match v {
        certwatch_probe::Vantage::Direct => Vantage::Direct,
        certwatch_probe::Vantage::Socks { .. } => Vantage::Socks,
        other => Vantage::Tor(other.exit_ip()),
    }
}

fn private_refusal(target: &ProbeTarget, kind: &str) -> Seen {
    let message = format!(
        "{} ({} port {}): {} is a {kind} address; not probed (allow with --allow-private-targets)",
        target.domain, target.id.target, target.id.port, target.address
    );
    Seen {
        address: target.address,
        key_request: None,
        outcome: ProbeOutcome::Failed(ProbeFailure::new(
            FailureKind::Inconclusive,
            "private-address",
            message.clone(),
        )),
        vantage: None,
        error: Some(ProbeErrorReport::new("private-address", message)),
        proven_spki: None,
        probe: None,
    }
}

/// The JSON class of a probe failure.
fn error_class(kind: &ProbeErrorKind) -> &'static str {
    match kind {
        ProbeErrorKind::Refused => "refused",
        ProbeErrorKind::Timeout { .. } => "timeout",
        ProbeErrorKind::Network { .. } => "network",
        ProbeErrorKind::Tor { .. } => "tor",
        ProbeErrorKind::Socks { .. } => "socks",
        ProbeErrorKind::TlsAlert { .. }
        | ProbeErrorKind::TlsVersion { .. }
        | ProbeErrorKind::TlsProtocol { .. } => "tls",
        ProbeErrorKind::Xmpp { .. } => "xmpp",
        ProbeErrorKind::TooLarge { .. } => "too-large",
        ProbeErrorKind::UnprovenKey { .. } => "unproven-key",
        ProbeErrorKind::KeyTypeNotOffered { .. } => "key-type-not-offered",
        _ => "usage",
    }
}

fn seen_of(
    target: &ProbeTarget,
    kr: KeyRequest,
    result: Result<Probe, ProbeError>,
    transport: &Transport,
) -> Seen {
    match result {
        Ok(p) => {
            let ders: Vec<Vec<u8>> = p.chain.iter().map(|c| c.der().to_vec()).collect();
            let chain = PresentedChain::new(ders, true);
            let proven_spki = chain.leaf_spki_sha256();
            Seen {
                address: target.address,
                key_request: Some(kr),
                outcome: ProbeOutcome::Presented(chain),
                vantage: Some(vantage_of(&p.vantage)),
                error: None,
                proven_spki,
                probe: Some(Box::new(p)),
            }
        }
        Err(e) => {
            let vantage = Some(
                e.vantage()
                    .map_or_else(|| nominal_vantage(transport), vantage_of),
            );
            let class = error_class(e.kind());
            let message = e.to_string();
            let (outcome, error) = match e.class() {
                ErrorClass::UnprovenKey => {
                    let ders = e
                        .unproven_chain()
                        .unwrap_or_default()
                        .iter()
                        .map(|c| c.der().to_vec())
                        .collect();
                    (
                        ProbeOutcome::Presented(PresentedChain::new(ders, false)),
                        Some(ProbeErrorReport::new(class, message)),
                    )
                }
                ErrorClass::ProtocolError | ErrorClass::KeyTypeNotOffered => (
                    ProbeOutcome::Failed(ProbeFailure::new(FailureKind::Protocol, class, message)),
                    None,
                ),
                _ => (
                    ProbeOutcome::Failed(ProbeFailure::new(
                        FailureKind::Inconclusive,
                        class,
                        message,
                    )),
                    None,
                ),
            };
            Seen {
                address: target.address,
                key_request: Some(kr),
                outcome,
                vantage,
                error,
                proven_spki: None,
                probe: None,
            }
        }
    }
}

fn is_key_type_not_offered(s: &Seen) -> bool {
    matches!(&s.outcome, ProbeOutcome::Failed(f) if f.class == "key-type-not-offered")
}

/// Per address: drops "no key of this type" results when another key type answered (a
/// single-key server), and duplicate sightings of the same key. When no key type answered
/// at all, one protocol error remains.
fn tidy_key_types(seen: Vec<Seen>) -> Vec<Seen> {
    let mut out: Vec<Seen> = Vec::new();
    let mut addresses: Vec<IpAddr> = Vec::new();
    for s in &seen {
        if !addresses.contains(&s.address) {
            addresses.push(s.address);
        }
    }
    for addr in addresses {
        let mine: Vec<&Seen> = seen.iter().filter(|s| s.address == addr).collect();
        let any_other = mine.iter().any(|s| !is_key_type_not_offered(s));
        let mut keys_seen: Vec<[u8; 32]> = Vec::new();
        let mut kept_not_offered = false;
        for s in mine {
            if is_key_type_not_offered(s) {
                if any_other || kept_not_offered {
                    continue;
                }
                kept_not_offered = true;
            }
            if let Some(k) = s.proven_spki {
                if keys_seen.contains(&k) {
                    continue;
                }
                keys_seen.push(k);
            }
            out.push(Seen {
                address: s.address,
                key_request: s.key_request,
                outcome: s.outcome.clone(),
                vantage: s.vantage,
                error: s.error.clone(),
                proven_spki: s.proven_spki,
                probe: s.probe.clone(),
            });
        }
    }
    out
}

/// The JSON entries of one judged endpoint.
fn entries_of(ep: &Endpoint, ev: &EndpointVerdict, seen: &[Seen]) -> Vec<EndpointReport> {
    if ev.targets.is_empty() {
        // No address to probe: one entry that carries what DNS said.
        let status = [
            &ep.srv_dnssec,
            &ep.ipv4.dnssec,
            &ep.ipv6.dnssec,
            &ep.tlsa.dnssec,
        ]
        .into_iter()
        .cloned()
        .fold(DnssecStatus::Secure, DnssecStatus::combine);
        return vec![EndpointReport {
            service: ep.id.service,
            target: ep.id.target.clone(),
            port: ep.id.port,
            address: None,
            dnssec: status.state(),
            dnssec_reason: status.reason().map(str::to_owned),
            tlsa: ep.tlsa.records.clone(),
            verdict: ev.verdict,
            reason: Some(ev.reason),
            presented_spki_sha256: None,
            matched_record: None,
            vantage: None,
            key_type: None,
            error: None,
            confirmed_verdict: None,
        }];
    }
    ev.targets
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let s = seen.get(i);
            let error = s.and_then(|s| s.error.clone()).or_else(|| {
                t.error
                    .as_ref()
                    .map(|f| ProbeErrorReport::new(f.class.clone(), f.message.clone()))
            });
            EndpointReport {
                service: t.target.id.service,
                target: t.target.id.target.clone(),
                port: t.target.id.port,
                address: Some(t.target.address),
                dnssec: t.dnssec.state(),
                dnssec_reason: t.dnssec.reason().map(str::to_owned),
                tlsa: t.tlsa.clone(),
                verdict: t.verdict,
                reason: Some(t.reason),
                presented_spki_sha256: t.presented_spki_sha256.clone(),
                matched_record: t.matched_record.clone(),
                vantage: s.and_then(|s| s.vantage),
                key_type: t.key_type,
                error,
                confirmed_verdict: None,
            }
        })
        .collect()
}

/// Unix seconds as RFC 3339 UTC (the reports' and evidence bundles' time format).
pub(crate) fn rfc3339(secs: u64) -> String {
    let t = i64::try_from(secs).unwrap_or(i64::MAX);
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|d| {
            d.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(addr: &str, class: &str, kind: FailureKind) -> Seen {
        Seen {
            address: addr.parse().unwrap(),
            key_request: Some(KeyRequest::Rsa),
            outcome: ProbeOutcome::Failed(ProbeFailure::new(kind, class, "x")),
            vantage: Some(Vantage::Direct),
            error: None,
            proven_spki: None,
            probe: None,
        }
    }

    fn presented(addr: &str, key: u8) -> Seen {
        Seen {
            address: addr.parse().unwrap(),
            key_request: Some(KeyRequest::Ec),
            outcome: ProbeOutcome::Presented(PresentedChain::new(vec![vec![key]], true)),
            vantage: Some(Vantage::Direct),
            error: None,
            proven_spki: Some([key; 32]),
            probe: None,
        }
    }

    #[test]
    fn single_key_servers_do_not_report_the_missing_type() {
        let out = tidy_key_types(vec![
            presented("192.0.2.1", 1),
            failed("192.0.2.1", "key-type-not-offered", FailureKind::Protocol),
            failed("192.0.2.2", "key-type-not-offered", FailureKind::Protocol),
            failed("192.0.2.2", "key-type-not-offered", FailureKind::Protocol),
            presented("192.0.2.3", 2),
            presented("192.0.2.3", 2),
            failed("192.0.2.4", "timeout", FailureKind::Inconclusive),
            failed("192.0.2.4", "key-type-not-offered", FailureKind::Protocol),
        ]);
        let summary: Vec<(String, bool)> = out
            .iter()
            .map(|s| (s.address.to_string(), s.proven_spki.is_some()))
            .collect();
        assert_eq!(
            summary,
            [
                ("192.0.2.1".to_owned(), true),
                // Neither key type answered: one protocol error stays.
                ("192.0.2.2".to_owned(), false),
                // The same key through both requests counts once.
                ("192.0.2.3".to_owned(), true),
                ("192.0.2.4".to_owned(), false),
            ]
        );
        assert!(matches!(&out[3].outcome, ProbeOutcome::Failed(f) if f.class == "timeout"));
    }

    #[test]
    fn an_endpoint_without_addresses_has_one_entry_that_carries_dns() {
        let mut ep = Endpoint::new(
            "example.org",
            certwatch_core::Service::C2sStarttls,
            "example.org",
            5222,
        );
        ep.srv_dnssec = DnssecStatus::bogus("RRSIG over the SRV RRset expired");
        let policy = MatchPolicy::new(
            "example.org",
            "example.org",
            UnixTime::since_unix_epoch(Duration::from_secs(1_800_000_000)),
        );
        let ev = judge_endpoint(&ep, &[], &policy);
        let entries = entries_of(&ep, &ev, &[]);
        assert_eq!(entries.len(), 1);
        let e = &entries[0];
        assert_eq!(e.address, None);
        assert_eq!(e.verdict, Verdict::Bogus);
        assert_eq!(e.reason, Some(certwatch_core::Reason::BogusSrv));
        assert_eq!(e.dnssec, certwatch_core::DnssecState::Bogus);
        assert_eq!(
            e.dnssec_reason.as_deref(),
            Some("RRSIG over the SRV RRset expired")
        );
        assert_eq!(e.vantage, None);
    }

    #[test]
    fn a_refused_private_address_is_indeterminate_and_says_why() {
        let mut ep = Endpoint::new(
            "example.org",
            certwatch_core::Service::S2sStarttls,
            "xmpp.example.org",
            5269,
        );
        ep.ipv4 = certwatch_core::AddressRrset::new(
            DnssecStatus::Secure,
            vec!["10.0.0.7".parse().unwrap()],
        );
        ep.tlsa = certwatch_core::TlsaRrset::new(
            ep.id.tlsa_owner(),
            DnssecStatus::Secure,
            vec![format!("3 1 1 {}", "ab".repeat(32)).parse().unwrap()],
        );
        let target = ep.probe_targets().remove(0);
        let seen = vec![private_refusal(&target, "private")];
        let outcomes: Vec<_> = seen
            .iter()
            .map(|s| (s.address, s.outcome.clone()))
            .collect();
        let policy = MatchPolicy::new(
            "example.org",
            "xmpp.example.org",
            UnixTime::since_unix_epoch(Duration::from_secs(1_800_000_000)),
        );
        let ev = judge_endpoint(&ep, &outcomes, &policy);
        let entries = entries_of(&ep, &ev, &seen);
        assert_eq!(entries.len(), 1);
        let e = &entries[0];
        assert_eq!(e.verdict, Verdict::Indeterminate);
        assert_eq!(e.address, Some("10.0.0.7".parse().unwrap()));
        let err = e.error.as_ref().unwrap();
        assert_eq!(err.class, "private-address");
        assert!(
            err.message.contains("example.org") && err.message.contains("10.0.0.7"),
            "{}",
            err.message
        );
        assert_eq!(DomainVerdict::new("example.org", vec![ev]).exit_code(), 3);
    }

    fn sighting_of(vantage: &str, key: Option<&str>, proven: bool) -> KeySighting {
        KeySighting {
            vantage: Some(vantage.parse().unwrap()),
            spki_sha256: key.map(str::to_owned),
            key_proven: proven,
            key_type: None,
            error: None,
        }
    }

    #[test]
    fn agreement_needs_two_vantage_points_one_proven_key_and_no_unproven_one() {
        let s = sighting_of;
        // Two distinct vantage points, same proven key.
        assert_eq!(
            agreement(&[
                s("direct", Some("aa"), true),
                s("tor:192.0.2.1", Some("aa"), true)
            ])
            .as_deref(),
            Some("aa")
        );
        // An inconclusive vantage point does not count, nor does it block.
        assert_eq!(
            agreement(&[
                s("direct", Some("aa"), true),
                s("tor:192.0.2.1", None, false),
                s("tor:192.0.2.2", Some("aa"), true),
            ])
            .as_deref(),
            Some("aa")
        );
        // One vantage point twice is one vantage point.
        assert_eq!(
            agreement(&[s("direct", Some("aa"), true), s("direct", Some("aa"), true)]),
            None
        );
        // Disagreement.
        assert_eq!(
            agreement(&[
                s("direct", Some("aa"), true),
                s("tor:192.0.2.1", Some("bb"), true)
            ]),
            None
        );
        // The same key, but not proven on one path (a replayed chain): refuse.
        assert_eq!(
            agreement(&[
                s("direct", Some("aa"), true),
                s("tor:192.0.2.1", Some("aa"), true),
                s("tor:192.0.2.2", Some("aa"), false),
            ]),
            None
        );
    }

    fn confirmation(results: &[(&str, Verdict)]) -> Confirmation {
        let r: Vec<VantageResult> = results
            .iter()
            .map(|(v, verdict)| VantageResult::new(v.parse().unwrap(), *verdict, None))
            .collect();
        confirm(&r)
    }

    #[test]
    fn several_targets_confirmations_combine_to_the_worst() {
        let hostile = confirmation(&[
            ("tor:192.0.2.9", Verdict::Mismatch),
            ("tor:192.0.2.1", Verdict::Match),
            ("tor:192.0.2.2", Verdict::Match),
            ("direct", Verdict::Match),
        ]);
        assert_eq!(hostile.classification, Classification::HostileExit);
        let server = confirmation(&[
            ("tor:192.0.2.9", Verdict::Mismatch),
            ("tor:192.0.2.1", Verdict::Mismatch),
            ("direct", Verdict::Mismatch),
        ]);
        assert_eq!(
            server.classification,
            Classification::ServerSideInterception
        );
        let thin = confirmation(&[("direct", Verdict::Mismatch)]);
        assert_eq!(thin.classification, Classification::Indeterminate);

        let c = combine_confirmations(&[hostile.clone(), server.clone()]);
        assert_eq!(c.classification, Classification::ServerSideInterception);
        assert_eq!(c.vantage_points, 3);
        assert_eq!(c.distinct_exits, 2);
        assert!(c.diversity_verified);
        let c = combine_confirmations(&[hostile.clone(), thin.clone()]);
        assert_eq!(c.classification, Classification::Indeterminate);
        assert_eq!(c.vantage_points, 1);
        let c = combine_confirmations(&[hostile.clone(), hostile]);
        assert_eq!(c.classification, Classification::HostileExit);
        assert_eq!(c.vantage_points, 4);
        assert_eq!(c.distinct_exits, 3);
    }

    /// A leaf whose key the DANE endpoint below publishes, and one it does not.
    const PUBLISHED: &[u8] = include_bytes!("../../certwatch-core/tests/data/p256.cert.der");
    const OTHER: &[u8] = include_bytes!("../../certwatch-core/tests/data/p384.cert.der");

    fn now() -> UnixTime {
        UnixTime::since_unix_epoch(Duration::from_secs(1_800_000_000))
    }

    /// c2s xmpp.example.org:5222 at 192.0.2.1, everything secure, TLSA 3 1 1 of PUBLISHED.
    fn dane_endpoint() -> Endpoint {
        let mut ep = Endpoint::new(
            "example.org",
            certwatch_core::Service::C2sStarttls,
            "xmpp.example.org",
            5222,
        );
        ep.ipv4 = certwatch_core::AddressRrset::new(
            DnssecStatus::Secure,
            vec!["192.0.2.1".parse().unwrap()],
        );
        let key = PresentedChain::new(vec![PUBLISHED.to_vec()], true)
            .leaf_spki_sha256()
            .unwrap();
        ep.tlsa = certwatch_core::TlsaRrset::new(
            ep.id.tlsa_owner(),
            DnssecStatus::Secure,
            vec![format!("3 1 1 {}", hex::encode(key)).parse().unwrap()],
        );
        ep
    }

    fn tls(leaf: &[u8]) -> ProbeOutcome {
        ProbeOutcome::Presented(PresentedChain::new(vec![leaf.to_vec()], true))
    }

    fn stripped() -> ProbeOutcome {
        ProbeOutcome::Failed(ProbeFailure::new(
            FailureKind::Protocol,
            "xmpp",
            "XMPP negotiation failed: the stream features do not offer STARTTLS",
        ))
    }

    fn no_such_key() -> ProbeOutcome {
        ProbeOutcome::Failed(ProbeFailure::new(
            FailureKind::Protocol,
            "key-type-not-offered",
            "no ec key offered",
        ))
    }

    fn timed_out() -> ProbeOutcome {
        ProbeOutcome::Failed(ProbeFailure::new(
            FailureKind::Inconclusive,
            "timeout",
            "STARTTLS timed out",
        ))
    }

    /// A fake probe: what `vantage` saw of 192.0.2.1 asking for `kr`.
    fn fake(vantage: &str, kr: KeyRequest, outcome: ProbeOutcome) -> Seen {
        let proven_spki = match &outcome {
            ProbeOutcome::Presented(c) => c.leaf_spki_sha256(),
            _ => None,
        };
        Seen {
            address: "192.0.2.1".parse().unwrap(),
            key_request: Some(kr),
            outcome,
            vantage: Some(vantage.parse().unwrap()),
            error: None,
            proven_spki,
            probe: None,
        }
    }

    /// One confirmation round: its vantage point and what each key type saw.
    type Round = (&'static str, Vec<(KeyRequest, ProbeOutcome)>);

    /// The check's half (tidy, judge, suspects) on the check's own fake probes, then the
    /// confirmation's half on fake rounds, exactly as `run_discovered` and
    /// `confirm_suspects` chain them (the probing itself is the only part left out).
    fn fake_check(
        ep: &Endpoint,
        check: Vec<Seen>,
        rounds: &[Round],
        downgrades: bool,
    ) -> (Vec<Suspect>, EndpointVerdict, Confirmed) {
        let seen = tidy_key_types(check);
        let outcomes: Vec<(IpAddr, ProbeOutcome)> = seen
            .iter()
            .map(|s| (s.address, s.outcome.clone()))
            .collect();
        let policy = MatchPolicy::new(&ep.domain, &ep.id.target, now());
        let ev = judge_endpoint(ep, &outcomes, &policy);
        let mut suspects = Vec::new();
        for (i, (t, s)) in ev.targets.iter().zip(&seen).enumerate() {
            add_suspect(&mut suspects, 0, i, t, s, downgrades);
        }
        let (jobs, plan) = confirmation_jobs(&suspects, &[KeyRequest::Ec, KeyRequest::Rsa]);
        let per_job: Vec<Vec<Seen>> = jobs
            .iter()
            .map(|(_, kr)| {
                rounds
                    .iter()
                    .map(|(v, outs)| {
                        let o = outs.iter().find(|(k, _)| k == kr).map(|(_, o)| o.clone());
                        fake(v, *kr, o.expect("an outcome per key type"))
                    })
                    .collect()
            })
            .collect();
        let mut verdicts = vec![ev];
        let transport = Transport::Socks {
            proxy: "127.0.0.1:9050".parse().unwrap(),
        };
        let confirmed = classify_suspects(
            std::slice::from_ref(ep),
            &mut verdicts,
            &suspects,
            &plan,
            &per_job,
            now(),
            &transport,
        );
        (suspects, verdicts.remove(0), confirmed)
    }

    const BAD_EXIT: &str = "tor:198.51.100.7";

    #[test]
    fn a_starttls_strip_by_one_exit_is_a_hostile_exit_not_a_downgrade() {
        use KeyRequest::{Ec, Rsa};
        let ep = dane_endpoint();
        // The check's exit strips STARTTLS for both key types; the server has an EC key only.
        let check = vec![
            fake(BAD_EXIT, Ec, stripped()),
            fake(BAD_EXIT, Rsa, stripped()),
        ];
        let good = || vec![(Ec, tls(PUBLISHED)), (Rsa, no_such_key())];
        let rounds: Vec<Round> = vec![
            ("tor:192.0.2.11", good()),
            ("tor:192.0.2.12", good()),
            // A timeout does not count (and the missing RSA key is no protocol error when
            // another key type answered... or timed out).
            (
                "tor:192.0.2.13",
                vec![(Ec, timed_out()), (Rsa, no_such_key())],
            ),
            ("direct", good()),
        ];
        let (suspects, ev, confirmed) = fake_check(&ep, check, &rounds, true);
        // One suspect for the address, standing for both key types' entries.
        assert_eq!(suspects.len(), 1);
        assert_eq!(suspects[0].kind, SuspectKind::Downgrade);
        assert_eq!(suspects[0].indices, vec![0, 1]);
        assert_eq!(confirmed.verdicts, vec![Verdict::Match]);
        assert_eq!(
            confirmed.summary.classification,
            Classification::HostileExit
        );
        assert_eq!(ev.verdict, Verdict::Match);
        assert!(ev.targets.iter().all(|t| t.verdict == Verdict::Match));
        let w: Vec<&Warning> = confirmed
            .warnings
            .iter()
            .filter(|w| w.code == WarningCode::HostileExit)
            .collect();
        assert_eq!(w.len(), 1, "{:?}", confirmed.warnings);
        assert!(
            w[0].message.contains("tor:198.51.100.7 saw protocol-error")
                && w[0]
                    .message
                    .contains("xmpp.example.org:5222 [192.0.2.1] protocol error")
                && w[0].message.contains("1 of 4 vantage points differ"),
            "{}",
            w[0].message
        );
    }

    #[test]
    fn a_downgrade_every_vantage_point_sees_stays_a_protocol_error() {
        use KeyRequest::{Ec, Rsa};
        let ep = dane_endpoint();
        let check = vec![
            fake(BAD_EXIT, Ec, stripped()),
            fake(BAD_EXIT, Rsa, stripped()),
        ];
        let strip = || vec![(Ec, stripped()), (Rsa, stripped())];
        let rounds: Vec<Round> = vec![
            ("tor:192.0.2.11", strip()),
            ("tor:192.0.2.12", strip()),
            ("tor:192.0.2.13", strip()),
            ("direct", strip()),
        ];
        let (_, ev, confirmed) = fake_check(&ep, check, &rounds, true);
        assert_eq!(confirmed.verdicts, vec![Verdict::ProtocolError]);
        assert_eq!(
            confirmed.summary.classification,
            Classification::ServerSideInterception
        );
        assert_eq!(ev.verdict, Verdict::ProtocolError);
        assert!(ev.dane);
        assert!(
            confirmed
                .warnings
                .iter()
                .all(|w| w.code != WarningCode::HostileExit)
        );
        // A server that speaks no usable TLS at all (no key type answers, from anywhere) is
        // a downgrade too: "no key of this type" is not a completed handshake.
        let check = vec![
            fake(BAD_EXIT, Ec, no_such_key()),
            fake(BAD_EXIT, Rsa, no_such_key()),
        ];
        let none = || vec![(Ec, no_such_key()), (Rsa, no_such_key())];
        let rounds: Vec<Round> = vec![
            ("tor:192.0.2.11", none()),
            ("tor:192.0.2.12", none()),
            ("direct", none()),
        ];
        let (suspects, ev, confirmed) = fake_check(&ep, check, &rounds, true);
        assert_eq!(suspects.len(), 1);
        assert_eq!(confirmed.verdicts, vec![Verdict::ProtocolError]);
        assert_eq!(ev.verdict, Verdict::ProtocolError);
    }

    #[test]
    fn timeouts_non_dane_errors_and_direct_checks_make_no_downgrade_suspect() {
        use KeyRequest::{Ec, Rsa};
        let ep = dane_endpoint();
        // A timeout is indeterminate: nothing to confirm.
        let (suspects, ev, _) = fake_check(&ep, vec![fake(BAD_EXIT, Ec, timed_out())], &[], true);
        assert!(suspects.is_empty());
        assert_eq!(ev.verdict, Verdict::Indeterminate);
        // Over the direct transport, a protocol error stands (no exit, no second vantage).
        let check = vec![
            fake("direct", Ec, stripped()),
            fake("direct", Rsa, stripped()),
        ];
        let (suspects, ev, _) = fake_check(&ep, check, &[], false);
        assert!(suspects.is_empty());
        assert_eq!(ev.verdict, Verdict::ProtocolError);
        // No TLSA record: TLS is not mandatory, no downgrade to confirm.
        let mut plain = dane_endpoint();
        plain.tlsa.records.clear();
        let (suspects, _, _) = fake_check(&plain, vec![fake(BAD_EXIT, Ec, stripped())], &[], true);
        assert!(suspects.is_empty());
    }

    #[test]
    fn a_mismatch_through_one_exit_is_still_a_hostile_exit() {
        use KeyRequest::{Ec, Rsa};
        let ep = dane_endpoint();
        let check = vec![fake(BAD_EXIT, Ec, tls(OTHER))];
        let good = || vec![(Ec, tls(PUBLISHED)), (Rsa, no_such_key())];
        let rounds: Vec<Round> = vec![
            ("tor:192.0.2.11", good()),
            ("tor:192.0.2.12", good()),
            ("direct", good()),
        ];
        let (suspects, ev, confirmed) = fake_check(&ep, check, &rounds, true);
        assert_eq!(suspects.len(), 1);
        assert_eq!(suspects[0].kind, SuspectKind::Mismatch(Ec));
        assert_eq!(confirmed.verdicts, vec![Verdict::Match]);
        assert_eq!(
            confirmed.summary.classification,
            Classification::HostileExit
        );
        assert_eq!(ev.verdict, Verdict::Match);
        assert!(confirmed.warnings.iter().any(|w| {
            w.code == WarningCode::HostileExit
                && w.message.contains("[192.0.2.1] ec key")
                && w.message.contains("tor:198.51.100.7 saw mismatch")
        }));
    }

    #[test]
    fn checked_at_is_rfc3339_utc() {
        assert_eq!(rfc3339(1_800_000_000), "2027-01-15T08:00:00Z");
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    }
}

#[cfg(test)]
mod send_tests {
    use super::*;

    fn assert_send<T: Send>(_: &T) {}

    /// Embedders (the server, `certwatch watch`) spawn checks on a multi-threaded runtime.
    #[test]
    fn check_and_survey_futures_are_send() {
        let options = CheckOptions::new(
            Transport::Direct,
            certwatch_dns::ResolverConfig::from_servers(&["127.0.0.1:9"]).unwrap(),
        );
        let checker = Checker::new(options).unwrap();
        let f = checker.check("example.org");
        assert_send(&f);
        let g = checker.survey("example.org", 2);
        assert_send(&g);
    }
}
