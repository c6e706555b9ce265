# The alerts part of the interop environment (issue 9's drills): an SMTP sink, and the
# description of the drills' own domain.
# shellcheck shell=bash
#
#   smtp    aiosmtpd (Debian's python3-aiosmtpd, run by /usr/bin/python3: a pyenv python3 first on PATH lacks it) on $CW_SMTP_ADDR:$CW_SMTP_PORT (127.0.0.22:2525),
#           no TLS, no authentication, with the Mailbox handler: every message received is one
#           file in the Maildir $CW_DIR/alerts/maildir/new (tests read it and match their own
#           recipients, which are unique per test run).
#   alert.test  a secure zone (the dns part) whose c2s SRV names xmpp.alert.test = $CW_ALERT_ADDR
#           (127.0.0.21), TLSA 3 1 1 host-ec. Nothing listens there until a drill starts its own
#           Prosody (scripts/interop/xmpp/prosody-config) with host-ec, swaps it for other-ec
#           (the MITM), or stops it (blindness).
#
# Description (describe/alerts.json, key "alerts"):
#   {"smtp": {"address": "127.0.0.22:2525", "maildir": ".../maildir"},
#    "domain": "alert.test", "address": "127.0.0.21", "port": 5222, "tlsa_key": "host-ec",
#    "prosody_config": ".../scripts/interop/xmpp/prosody-config"}

alerts_packages() { echo python3-aiosmtpd; }

alerts_down() { cw_stop_all alerts; }

alerts_up() {
  local d="$CW_DIR/alerts"
  alerts_down
  rm -rf "$d/maildir"
  mkdir -p "$d/maildir/new" "$d/maildir/cur" "$d/maildir/tmp"
  cw_start alerts smtp /usr/bin/python3 -m aiosmtpd -n -l "$CW_SMTP_ADDR:$CW_SMTP_PORT" \
    -c aiosmtpd.handlers.Mailbox "$d/maildir"
  cw_wait_tcp "$CW_SMTP_ADDR" "$CW_SMTP_PORT" 20 || cw_die "alerts: aiosmtpd does not listen on $CW_SMTP_ADDR:$CW_SMTP_PORT"
  # One real message through the sink, so a broken handler fails here, not in a test.
  python3 - "$CW_SMTP_ADDR" "$CW_SMTP_PORT" <<'PY' || cw_die "alerts: the SMTP sink refused a test message"
import smtplib, sys
with smtplib.SMTP(sys.argv[1], int(sys.argv[2]), timeout=10) as s:
    s.sendmail("env@certwatch.test", ["probe@certwatch.test"], "Subject: env check\r\n\r\nok\r\n")
PY
  ls "$d/maildir/new" | grep -q . || cw_die "alerts: the SMTP sink stored nothing"
  cw_log "alerts: SMTP sink on $CW_SMTP_ADDR:$CW_SMTP_PORT, Maildir $d/maildir"
  python3 - "$CW_SMTP_ADDR:$CW_SMTP_PORT" "$d/maildir" "$CW_ALERT_DOMAIN" "$CW_ALERT_ADDR" \
    "$CW_SCRIPTS/xmpp/prosody-config" >"$CW_DIR/describe/alerts.json" <<'PY'
import json, sys
smtp, maildir, domain, addr, cfg = sys.argv[1:]
print(json.dumps({"smtp": {"address": smtp, "maildir": maildir}, "domain": domain,
                  "address": addr, "port": 5222, "tlsa_key": "host-ec", "prosody_config": cfg}))
PY
}
