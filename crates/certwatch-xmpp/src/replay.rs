//! Offline replay of a recorded server transcript through the client negotiator.

use crate::client::{Action, ClientNegotiator};
use crate::config::Config;
use crate::error::{Error, Failure};
use crate::negotiation::Negotiation;

/// Runs the client negotiator over the server's bytes, chunk by chunk, as if they arrived
/// from the network in that order, then over the end of the transport.
///
/// It always ends in a classified outcome: `Ok` when the server said `<proceed/>` with
/// nothing after it (TLS would begin), otherwise the [`Error`] with the partial record. What
/// the client would have sent is ignored. Useful to analyse captured transcripts, and used
/// by the fuzz target and the benchmarks.
///
/// ```
/// use certwatch_xmpp::{replay, Config, Error};
///
/// let transcript: &[&[u8]] = &[
///     b"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' \
///       id='1' version='1.0'><stream:features/>",
/// ];
/// let failure = replay(Config::client("example.org"), transcript.iter().copied()).unwrap_err();
/// assert!(matches!(failure.error, Error::StartTlsNotOffered));
/// assert_eq!(failure.partial.header.unwrap().id.as_deref(), Some("1"));
/// ```
pub fn replay<'a>(
    config: Config,
    chunks: impl IntoIterator<Item = &'a [u8]>,
) -> Result<Negotiation, Failure> {
    let mut n = ClientNegotiator::new(config);
    let mut started = false;
    let mut outcome: Result<(), Error> = Ok(());
    for chunk in chunks {
        outcome = n.handle_input(chunk);
        while let Some(action) = n.poll_action() {
            started |= action == Action::StartTls;
        }
        if outcome.is_err() {
            break;
        }
    }
    if outcome.is_ok() && !started {
        outcome = n.handle_eof();
    }
    match outcome {
        Ok(()) => Ok(n.into_negotiation()),
        Err(error) => Err(Failure {
            error,
            partial: Box::new(n.into_negotiation()),
        }),
    }
}
