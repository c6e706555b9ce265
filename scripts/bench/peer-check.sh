#!/usr/bin/env bash
# The peer of benches/compare.sh: what an operator's cron script does today, endpoint by
# endpoint. For each XMPP service of DOMAIN: `dig` the SRV RRset, the target's A RRset and
# the TLSA RRset through the validating resolver (insisting on the AD flag), then
# `openssl s_client` (-starttls xmpp / xmpp-server, or direct TLS with the XEP-0368 ALPN),
# `openssl x509 -pubkey | openssl pkey -pubin -outform DER | openssl dgst -sha256`, and
# compare with the `3 1 1` records.
#
#   PEER_RESOLVER=127.0.0.52 PEER_RESOLVER_PORT=6354 peer-check.sh DOMAIN...
#   PEER_SERVICES="xmpp-client"   # a subset (default: all four)
#
# Prints one line per endpoint; exits 0 when every endpoint matches, 2 on a mismatch,
# 3 when nothing could be checked or DNSSEC did not validate.
set -u
R=${PEER_RESOLVER:-127.0.0.52}
P=${PEER_RESOLVER_PORT:-6354}
SERVICES=${PEER_SERVICES:-"xmpp-client xmpps-client xmpp-server xmpps-server"}

q() { dig +dnssec +noall +comments +answer @"$R" -p "$P" "$1" "$2"; }
secure() { grep -q '^;; flags:.* ad[ ;]' <<<"$1"; }

worst=0
checked=0
for domain in "$@"; do
    for svc in $SERVICES; do
        case $svc in
            xmpp-client) opts=(-starttls xmpp -xmpphost "$domain") ;;
            xmpp-server) opts=(-starttls xmpp-server -xmpphost "$domain") ;;
            xmpps-client) opts=(-alpn xmpp-client) ;;
            xmpps-server) opts=(-alpn xmpp-server) ;;
            *) echo "unknown service $svc" >&2; exit 3 ;;
        esac
        srv=$(q "_$svc._tcp.$domain" SRV)
        secure "$srv" || continue
        while read -r port target; do
            [ -n "$port" ] || continue
            a=$(q "$target" A)
            tlsa=$(q "_$port._tcp.$target" TLSA)
            if ! secure "$a" || ! secure "$tlsa"; then
                echo "$domain $svc $target:$port insecure"; worst=3; continue
            fi
            pins=$(awk '$4=="TLSA" && $5==3 && $6==1 && $7==1 { h=""; for (i=8;i<=NF;i++) h=h $i; print tolower(h) }' <<<"$tlsa")
            for ip in $(awk '$4=="A" {print $5}' <<<"$a"); do
                hash=$(openssl s_client -connect "$ip:$port" -servername "$domain" "${opts[@]}" \
                        </dev/null 2>/dev/null |
                    openssl x509 -pubkey -noout 2>/dev/null |
                    openssl pkey -pubin -outform DER 2>/dev/null |
                    openssl dgst -sha256 -r | cut -d' ' -f1)
                checked=$((checked + 1))
                if grep -qx "$hash" <<<"$pins"; then
                    echo "$domain $svc $target:$port [$ip] match $hash"
                else
                    echo "$domain $svc $target:$port [$ip] MISMATCH $hash"; worst=2
                fi
            done
        done < <(awk '$4=="SRV" {print $7, $8}' <<<"$srv")
    done
done
[ "$checked" -gt 0 ] || exit 3
exit "$worst"
