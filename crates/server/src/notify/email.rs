//! Email through lettre (SMTP, rustls with ring): the double opt-in confirmation message and
//! the alert messages, each with an unsubscribe link, and the outbox pass for the `email`
//! channel. The relay is the operator's (configured, not user input), so the SSRF guard does
//! not apply to it; recipients are parsed as mailboxes and refused when invalid.

use std::time::Duration;

use lettre::message::{Mailbox, header::ContentType};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::store::{Delivery, RetryPolicy, Store, StoreError};

use super::webhook::OutboxPass;

/// Why an email could not be made or sent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EmailError {
    /// An address is not a valid mailbox (the address itself is not kept: errors are
    /// logged and stored).
    #[error("not a valid email address: {reason}")]
    Address {
        /// Why.
        reason: String,
    },
    /// The relay settings are unusable.
    #[error("SMTP relay {host}: {reason}")]
    Relay {
        /// The relay host.
        host: String,
        /// Why.
        reason: String,
    },
    /// The message could not be built.
    #[error("cannot build the message: {0}")]
    Build(String),
    /// The relay refused or failed.
    #[error("SMTP: {0}")]
    Send(String),
    /// The relay did not finish in time.
    #[error("SMTP: no answer within {0:?}")]
    Timeout(Duration),
    /// The whole delivery did not finish within its deadline
    /// ([`super::worker::EMAIL_DEADLINE`]).
    #[error("SMTP: the delivery did not finish within {0:?}")]
    Deadline(Duration),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How the relay is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// TLS from the first byte (submissions, port 465).
    Tls,
    /// STARTTLS required (submission, port 587).
    StartTls,
    /// Plain text: only for a relay on the same host (and tests).
    Plain,
}

/// The relay and the sender address.
#[derive(Debug, Clone)]
pub struct EmailOptions {
    /// Relay host name.
    pub host: String,
    /// Relay port.
    pub port: u16,
    /// TLS mode.
    pub security: SmtpSecurity,
    /// Login, if the relay wants one.
    pub credentials: Option<(String, String)>,
    /// The From mailbox (`certwatch <alerts@example.org>`).
    pub from: String,
    /// Per message: connect, dialogue and data.
    pub timeout: Duration,
}

/// Sends certwatch's mails.
#[derive(Clone)]
pub struct EmailSender {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    timeout: Duration,
}

impl std::fmt::Debug for EmailSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailSender")
            .field("from", &self.from.to_string())
            .finish_non_exhaustive()
    }
}

fn mailbox(address: &str) -> Result<Mailbox, EmailError> {
    address.parse::<Mailbox>().map_err(|e| EmailError::Address {
        reason: super::webhook::redact(&e.to_string()),
    })
}

impl EmailSender {
    /// A sender for this relay.
    pub fn new(options: &EmailOptions) -> Result<EmailSender, EmailError> {
        let relay = |reason: String| EmailError::Relay {
            host: options.host.clone(),
            reason,
        };
        let tls = || TlsParameters::new(options.host.clone()).map_err(|e| relay(e.to_string()));
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&options.host)
            .port(options.port)
            .timeout(Some(options.timeout));
        builder = match options.security {
            SmtpSecurity::Tls => builder.tls(Tls::Wrapper(tls()?)),
            SmtpSecurity::StartTls => builder.tls(Tls::Required(tls()?)),
            SmtpSecurity::Plain => builder.tls(Tls::None),
        };
        if let Some((user, password)) = &options.credentials {
            builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
        }
        Ok(EmailSender {
            transport: builder.build(),
            from: mailbox(&options.from)?,
            timeout: options.timeout,
        })
    }

    fn message(
        &self,
        to: &str,
        subject: String,
        body: String,
        now: i64,
    ) -> Result<Message, EmailError> {
        let date = std::time::UNIX_EPOCH + Duration::from_secs(u64::try_from(now).unwrap_or(0));
        Message::builder()
            .date(date)
            .from(self.from.clone())
            .to(mailbox(to)?)
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(body)
            .map_err(|e| EmailError::Build(e.to_string()))
    }

    /// Sends `message` (bounded by the timeout).
    pub async fn send(&self, message: Message) -> Result<(), EmailError> {
        match tokio::time::timeout(self.timeout, self.transport.send(message)).await {
            Err(_) => Err(EmailError::Timeout(self.timeout)),
            // Relays quote the recipient in their refusals.
            Ok(Err(e)) => Err(EmailError::Send(super::webhook::redact(&e.to_string()))),
            Ok(Ok(_)) => Ok(()),
        }
    }

    /// Double opt-in: records an unconfirmed subscription of `address` to `domain` and
    /// mails it the confirmation link (valid `ttl` seconds) and the unsubscribe link.
    /// Nothing else is ever sent before the link is followed. `false` (nothing sent) when
    /// the address is already confirmed.
    pub async fn subscribe(
        &self,
        store: &Store,
        domain: &str,
        address: &str,
        now: i64,
        ttl: i64,
        public_url: &str,
    ) -> Result<bool, EmailError> {
        mailbox(address)?;
        let Some(tokens) = store
            .add_opt_in_subscription(domain, "email", address, now, ttl)
            .await?
        else {
            return Ok(false);
        };
        let domain = crate::store::normalise_domain(domain)?;
        let unsubscribe = unsubscribe_link(public_url, &tokens.unsubscribe);
        let body = format!(
            "Someone (hopefully you) asked certwatch to alert {address} when the XMPP \
             domain {domain} shows signs of TLS interception, broken DNSSEC, or when the \
             monitor cannot see it.\n\nTo confirm, open this page and press its button:\n{}\n\n\
             If you did not ask for this, ignore this message: nothing will be sent. \
             To delete your address now:\n{unsubscribe}\n",
            confirm_link(public_url, &tokens.confirm),
        );
        let mut message = self.message(
            address,
            format!("Confirm certwatch alerts for {domain}"),
            body,
            now,
        )?;
        add_unsubscribe_headers(&mut message, &unsubscribe);
        self.send(message).await?;
        Ok(true)
    }

    /// The alert message of one delivery, with its delivery id and unsubscribe link, dated
    /// `now`.
    pub fn alert_message(
        &self,
        d: &Delivery,
        public_url: &str,
        unsubscribe_token: &str,
        now: i64,
    ) -> Result<Message, EmailError> {
        let base = public_url.trim_end_matches('/');
        let unsubscribe = unsubscribe_link(public_url, unsubscribe_token);
        let a = &d.alert;
        if super::digest::is_digest(d) {
            let (subject, body) = super::digest::email_text(d, public_url, unsubscribe_token);
            let mut message = self.message(&d.address, subject, body, now)?;
            message
                .headers_mut()
                .insert_raw(lettre::message::header::HeaderValue::new(
                    lettre::message::header::HeaderName::new_from_ascii_str("X-Certwatch-Delivery"),
                    d.id.clone(),
                ));
            return Ok(message);
        }
        let what = match a.condition.as_str() {
            "mismatch" => "a key that is not in its DANE TLSA records (interception)",
            "bogus" => "DNSSEC records that do not validate (bogus)",
            "signature-expiring" => "DNSSEC signatures that expire soon",
            "downgrade" => "a DANE endpoint that stopped offering TLS",
            "blind" => "no conclusive check for too long (the monitor is blind)",
            other => other,
        };
        let (subject, lead) = match a.kind.as_str() {
            "recovered" => (
                format!("[certwatch] {} recovered: {}", a.domain, a.condition),
                format!("RECOVERED: {} no longer shows {what}.", a.domain),
            ),
            "reminder" => (
                format!("[certwatch] still: {} {}", a.domain, a.condition),
                format!("STILL GOING ON: {} shows {what}.", a.domain),
            ),
            _ => (
                format!("[certwatch] ALERT {}: {}", a.domain, a.condition),
                format!("ALERT: {} shows {what}.", a.domain),
            ),
        };
        let evidence = a
            .evidence_id
            .map(|id| {
                format!(
                    "Evidence (signed, verify it with the key at {base}/evidence-key):\n\
                     {base}/domains/{}/evidence/{id}.json\n",
                    a.domain
                )
            })
            .unwrap_or_default();
        let body = format!(
            "{lead}\n{}\nIncident {} opened at {} (Unix time); this check at {}.\n\
             Details: {base}/domains/{}\n{evidence}Delivery id: {}\n\n\
             Unsubscribe (deletes your address): {unsubscribe}\n",
            a.detail
                .as_deref()
                .map(|x| format!("\n{x}\n"))
                .unwrap_or_default(),
            a.incident_id,
            a.opened_at,
            a.at,
            a.domain,
            d.id
        );
        let mut message = self.message(&d.address, subject, body, now)?;
        // Receivers deduplicate on the delivery id (also in the body).
        message
            .headers_mut()
            .insert_raw(lettre::message::header::HeaderValue::new(
                lettre::message::header::HeaderName::new_from_ascii_str("X-Certwatch-Delivery"),
                d.id.clone(),
            ));
        add_unsubscribe_headers(&mut message, &unsubscribe);
        Ok(message)
    }
}

/// The confirmation link of a double opt-in message: `<public_url>/subscriptions/confirm?token=<T>`
/// (a page with a button; following the link alone confirms nothing, since mail scanners
/// fetch links).
pub fn confirm_link(public_url: &str, token: &str) -> String {
    format!(
        "{}/subscriptions/confirm?token={token}",
        public_url.trim_end_matches('/')
    )
}

/// The unsubscribe link of every message: `<public_url>/subscriptions/unsubscribe?token=<U>`
/// (a page with a button, and the RFC 8058 one-click target).
pub fn unsubscribe_link(public_url: &str, token: &str) -> String {
    format!(
        "{}/subscriptions/unsubscribe?token={token}",
        public_url.trim_end_matches('/')
    )
}

/// `List-Unsubscribe: <link>` and `List-Unsubscribe-Post: List-Unsubscribe=One-Click`
/// (RFC 2369, RFC 8058): mail clients offer an unsubscribe button that POSTs to the link.
fn add_unsubscribe_headers(message: &mut Message, link: &str) {
    use lettre::message::header::{HeaderName, HeaderValue};
    let headers = message.headers_mut();
    headers.insert_raw(HeaderValue::new(
        HeaderName::new_from_ascii_str("List-Unsubscribe"),
        format!("<{link}>"),
    ));
    headers.insert_raw(HeaderValue::new(
        HeaderName::new_from_ascii_str("List-Unsubscribe-Post"),
        "List-Unsubscribe=One-Click".to_owned(),
    ));
}

/// One pass of the outbox for the `email` channel: claims due email deliveries, sends them
/// concurrently ([`super::worker::send_bounded`], the host being the recipient's domain),
/// each under [`super::worker::EMAIL_DEADLINE`], and marks each delivered or failed (the
/// store's backoff).
#[allow(clippy::too_many_arguments)]
pub async fn run_email_once(
    store: &Store,
    sender: &EmailSender,
    instance: &str,
    now: i64,
    lease: i64,
    max: u32,
    retry: RetryPolicy,
    public_url: &str,
) -> Result<OutboxPass, EmailError> {
    let claimed = store
        .claim_channel_deliveries("email", instance, now, lease, max)
        .await?;
    let items = claimed
        .into_iter()
        .map(|d| (recipient_domain(&d.address), d))
        .collect::<Vec<_>>();
    let results = super::worker::send_bounded(items, |d| {
        send_one(store, sender, d, now, retry, public_url)
    })
    .await;
    Ok(OutboxPass::tally(results)?)
}

/// The domain of an address (the per-host bound of a pass).
fn recipient_domain(address: &str) -> String {
    address
        .rsplit_once('@')
        .map(|(_, d)| d.trim_end_matches('>').to_ascii_lowercase())
        .unwrap_or_default()
}

/// Sends one claimed delivery under the deadline and records the outcome: `true` delivered,
/// `false` a failed attempt.
async fn send_one(
    store: &Store,
    sender: &EmailSender,
    d: Delivery,
    now: i64,
    retry: RetryPolicy,
    public_url: &str,
) -> Result<bool, StoreError> {
    let token = store
        .unsubscribe_token(&d.alert.domain, &d.channel, &d.address)
        .await?;
    super::worker::failpoint("before-send", &d.id).await;
    let deadline = super::worker::EMAIL_DEADLINE;
    let send = async {
        match sender.alert_message(&d, public_url, &token, now) {
            Ok(m) => sender.send(m).await,
            Err(e) => Err(e),
        }
    };
    let result = tokio::time::timeout(deadline, send)
        .await
        .unwrap_or(Err(EmailError::Deadline(deadline)));
    match result {
        Ok(()) => super::worker::delivered(store, &d.id, now).await,
        Err(e) => {
            let error = super::webhook::redact(&e.to_string());
            tracing::warn!(
                delivery = %d.id,
                subscription = d.subscription_id,
                error = %error,
                "email delivery failed"
            );
            store.mark_attempt_failed(&d.id, now, &error, retry).await?;
            Ok(false)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_errors_do_not_carry_the_address() {
        let e = mailbox("bob@@example.org").unwrap_err();
        assert!(!e.to_string().contains("bob"), "{e}");
        assert!(!format!("{e:?}").contains("bob"), "{e:?}");
        assert_eq!(recipient_domain("Bob@Example.ORG"), "example.org");
    }
}
