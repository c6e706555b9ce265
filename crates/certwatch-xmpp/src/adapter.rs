//! The tokio adapter: drives a negotiator over any `AsyncRead + AsyncWrite` with a per-step
//! timeout and a total deadline, and hands back the untouched stream.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

use crate::client::{Action, ClientNegotiator};
use crate::config::Config;
use crate::error::{Error, Failure, Step};
use crate::negotiation::Negotiation;
use crate::server::{ServerConfig, ServerNegotiation, ServerNegotiator};

/// Time bounds of a negotiation. Both use tokio's clock, so tests can pause it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Timeouts {
    /// The longest wait for any single read or write to make progress (default 10 s). A
    /// silent peer ends in [`Error::Timeout`].
    pub step: Duration,
    /// The whole negotiation (default 20 s). A peer that drips one byte a second ends in
    /// [`Error::Deadline`].
    pub total: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            step: Duration::from_secs(10),
            total: Duration::from_secs(20),
        }
    }
}

impl Timeouts {
    /// Bounds with the given per-step timeout and total deadline.
    pub fn new(step: Duration, total: Duration) -> Self {
        Timeouts { step, total }
    }
}

/// What the driver needs from a negotiator.
trait Machine {
    fn handle_input(&mut self, bytes: &[u8]) -> Result<(), Error>;
    fn handle_eof(&mut self) -> Result<(), Error>;
    fn poll_action(&mut self) -> Option<Action>;
    fn step(&self) -> Option<Step>;
    /// Stamps the milestones reached so far that have no time yet.
    fn progress(&mut self, _elapsed: Duration) {}
}

impl Machine for ClientNegotiator {
    fn handle_input(&mut self, bytes: &[u8]) -> Result<(), Error> {
        ClientNegotiator::handle_input(self, bytes)
    }
    fn handle_eof(&mut self) -> Result<(), Error> {
        ClientNegotiator::handle_eof(self)
    }
    fn poll_action(&mut self) -> Option<Action> {
        ClientNegotiator::poll_action(self)
    }
    fn step(&self) -> Option<Step> {
        ClientNegotiator::step(self)
    }
    fn progress(&mut self, elapsed: Duration) {
        let n = self.negotiation();
        let reached = [n.header.is_some(), n.features.is_some(), n.proceeded];
        let t = self.timings_mut();
        for (reached, stamp) in
            reached
                .into_iter()
                .zip([&mut t.stream_header, &mut t.features, &mut t.proceed])
        {
            if reached && stamp.is_none() {
                *stamp = Some(elapsed);
            }
        }
    }
}

impl Machine for ServerNegotiator {
    fn handle_input(&mut self, bytes: &[u8]) -> Result<(), Error> {
        ServerNegotiator::handle_input(self, bytes)
    }
    fn handle_eof(&mut self) -> Result<(), Error> {
        ServerNegotiator::handle_eof(self)
    }
    fn poll_action(&mut self) -> Option<Action> {
        ServerNegotiator::poll_action(self)
    }
    fn step(&self) -> Option<Step> {
        ServerNegotiator::step(self)
    }
}

/// Negotiates STARTTLS as a client and returns the stream positioned exactly where the TLS
/// handshake begins, with what the server said.
///
/// No byte after `<proceed/>` is ever read past silently: if the server sent any in the same
/// read, that is [`Error::StartTlsInjection`]. Bytes the server sends later belong to the
/// transport and reach TLS, where they can only break the handshake.
///
/// `S` may be a borrowed stream (`&mut TcpStream`) for callers that keep ownership. The
/// connection itself (and its time-out) is the caller's; the timings count from the first
/// byte sent. On failure, [`Failure::partial`] holds what the server had said.
pub async fn negotiate<S>(
    mut stream: S,
    config: &Config,
    timeouts: &Timeouts,
) -> Result<(S, Negotiation), Failure>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut machine = ClientNegotiator::new(config.clone());
    let result = drive(&mut stream, &mut machine, timeouts).await;
    finish(stream, machine, result)
}

/// Reopens the stream after TLS (after STARTTLS, or on a direct-TLS connection) and reads the
/// features: SASL mechanisms (including `-PLUS`) and XEP-0440 channel-binding types.
///
/// The stream is returned after the features; this crate sends nothing more.
pub async fn read_features_after_tls<S>(
    mut stream: S,
    config: &Config,
    timeouts: &Timeouts,
) -> Result<(S, Negotiation), Failure>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut machine = ClientNegotiator::after_tls(config.clone());
    let result = drive(&mut stream, &mut machine, timeouts).await;
    finish(stream, machine, result)
}

fn finish<S>(
    stream: S,
    mut machine: ClientNegotiator,
    result: Result<Duration, (Error, Duration)>,
) -> Result<(S, Negotiation), Failure> {
    match result {
        Ok(total) => {
            machine.timings_mut().total = Some(total);
            Ok((stream, machine.into_negotiation()))
        }
        Err((error, total)) => {
            machine.timings_mut().total = Some(total);
            Err(Failure {
                error,
                partial: Box::new(machine.into_negotiation()),
            })
        }
    }
}

/// Accepts one client as a minimal STARTTLS server (for tests and fixtures), and returns the
/// stream positioned exactly where the TLS handshake begins (after `<proceed/>`), or right
/// after the features when STARTTLS is not offered.
///
/// On a refused client (unknown host, wrong namespace), the stream error is sent before the
/// error is returned.
pub async fn accept<S>(
    mut stream: S,
    config: &ServerConfig,
    timeouts: &Timeouts,
) -> Result<(S, ServerNegotiation), Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut machine = ServerNegotiator::new(config.clone());
    match drive(&mut stream, &mut machine, timeouts).await {
        Ok(_) => Ok((stream, machine.into_negotiation())),
        Err((e, _)) => Err(e),
    }
}

/// Runs a machine to its end. Returns the elapsed time, with the error if any.
async fn drive<S, M>(
    stream: &mut S,
    machine: &mut M,
    timeouts: &Timeouts,
) -> Result<Duration, (Error, Duration)>
where
    S: AsyncRead + AsyncWrite + Unpin,
    M: Machine,
{
    let start = Instant::now();
    let deadline = start + timeouts.total;
    let mut buf = [0u8; 4096];
    let fail = |e| (e, start.elapsed());
    loop {
        let step = machine.step().unwrap_or(Step::StreamHeader);
        while let Some(action) = machine.poll_action() {
            match action {
                Action::Send(bytes) => {
                    bounded(step, deadline, timeouts, async {
                        stream.write_all(&bytes).await?;
                        stream.flush().await
                    })
                    .await
                    .map_err(fail)?;
                }
                Action::StartTls | Action::Done => return Ok(start.elapsed()),
            }
        }
        let n = bounded(step, deadline, timeouts, stream.read(&mut buf))
            .await
            .map_err(fail)?;
        let outcome = if n == 0 {
            machine.handle_eof()
        } else {
            machine.handle_input(&buf[..n])
        };
        machine.progress(start.elapsed());
        if let Err(e) = outcome {
            // Best effort: a server-side refusal has a stream error to deliver.
            while let Some(Action::Send(bytes)) = machine.poll_action() {
                let sent = bounded(step, deadline, timeouts, async {
                    stream.write_all(&bytes).await?;
                    stream.flush().await
                })
                .await;
                if sent.is_err() {
                    break;
                }
            }
            return Err(fail(e));
        }
    }
}

/// One I/O operation under the per-step timeout and the total deadline.
async fn bounded<T>(
    step: Step,
    deadline: Instant,
    timeouts: &Timeouts,
    io: impl std::future::Future<Output = std::io::Result<T>>,
) -> Result<T, Error> {
    let step_end = Instant::now() + timeouts.step;
    let (end, is_deadline) = if deadline <= step_end {
        (deadline, true)
    } else {
        (step_end, false)
    };
    match tokio::time::timeout_at(end, io).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(source)) => Err(Error::Io { step, source }),
        Err(_) if is_deadline => Err(Error::Deadline {
            step,
            after: timeouts.total,
        }),
        Err(_) => Err(Error::Timeout {
            step,
            after: timeouts.step,
        }),
    }
}
