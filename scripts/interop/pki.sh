# The test PKI: a private CA and the server keys and certificates the other parts use.
# shellcheck shell=bash
# Keys (kept across up/down so that signed zones stay valid):
#   host-ec   P-256, Prosody's ECDSA key (the one the "match" TLSA records pin)
#   host-rsa  RSA-2048, Prosody's RSA key (dual-certificate server)
#   other-ec  P-256, a key no server uses by default: pinned by "mismatch", or the next key
#   ejabberd-ec P-256, ejabberd's key
# Each has <name>.key (PKCS#8 PEM), <name>.crt (leaf signed by the CA), <name>.fullchain.pem.

pki_packages() { echo openssl ca-certificates; }

pki_up() {
  local d="$CW_DIR/pki" name
  mkdir -p "$d"
  if [ ! -s "$d/ca.crt" ]; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
      -subj "/CN=certwatch interop test CA" -keyout "$d/ca.key" -out "$d/ca.crt" 2>/dev/null
  fi
  # Every service domain, and a wildcard under it for SRV targets such as xmpp.match.test, so
  # that DANE-TA and PKIX name checks (RFC 7671 section 5.2, RFC 7673) can pass.
  local san="DNS:$CW_PROSODY_HOST,DNS:$CW_EJABBERD_HOST,DNS:*.hosts.test" dom
  for dom in "${CW_XMPP_DOMAINS[@]}"; do san="$san,DNS:$dom,DNS:*.$dom"; done
  for name in host-ec host-rsa other-ec ejabberd-ec; do
    # Keys are kept (the zones' 3 1 1 records hash them); certificates are reissued on the
    # same key whenever the name list changes.
    [ -s "$d/$name.crt" ] && [ "$(cat "$d/$name.san" 2>/dev/null)" = "$san" ] && continue
    if [ ! -s "$d/$name.key" ]; then
      case $name in
        *-rsa) openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$d/$name.key" 2>/dev/null ;;
        *) openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$d/$name.key" 2>/dev/null ;;
      esac
    fi
    openssl req -new -key "$d/$name.key" -subj "/CN=$CW_PROSODY_HOST" -out "$d/$name.csr" 2>/dev/null
    printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth,clientAuth\nbasicConstraints=CA:FALSE\n' "$san" >"$d/$name.ext"
    openssl x509 -req -in "$d/$name.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial \
      -days 825 -extfile "$d/$name.ext" -out "$d/$name.crt" 2>/dev/null
    cat "$d/$name.crt" "$d/ca.crt" >"$d/$name.fullchain.pem"
    printf '%s' "$san" >"$d/$name.san"
    rm -f "$d/$name.csr" "$d/$name.ext"
  done
  chmod 644 "$d"/*.key   # the XMPP servers run as their own users
  python3 - "$d" >"$CW_DIR/describe/pki.json" <<PY
import json, sys
d = sys.argv[1]
keys = {}
for name in ["host-ec", "host-rsa", "other-ec", "ejabberd-ec"]:
    keys[name] = {"key": f"{d}/{name}.key", "cert": f"{d}/{name}.crt",
                  "fullchain": f"{d}/{name}.fullchain.pem"}
spki = dict(l.split() for l in """$(for n in host-ec host-rsa other-ec ejabberd-ec; do echo "$n $(cw_spki_sha256 "$d/$n.crt")"; done)""".strip().splitlines())
for name in keys:
    keys[name]["spki_sha256"] = spki[name]
print(json.dumps({"ca": f"{d}/ca.crt", "keys": keys}, indent=2))
PY
}

pki_down() { :; }
