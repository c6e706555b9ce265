-- Version 10 (issue 10): XMPP notifications (docs/xmpp.md).
--
-- XMPP subscriptions live in `subscriptions` (channel `xmpp-pubsub` or `xmpp-chat`, address
-- = the subscriber's bare JID, confirmed at once because the XMPP server authenticated the
-- sender) and their alerts in the outbox like every other channel. A PubSub node is a row of
-- `domains`; its last item is the domain's newest subscribers' alert.

-- The last item of a node: the newest alert of a domain for its subscribers.
CREATE INDEX alerts_domain_audience_at ON alerts (domain, audience, at);
-- `list` and PubSub `subscriptions`: one JID's subscriptions.
CREATE INDEX subscriptions_address ON subscriptions (address, channel);
