#!/usr/bin/env bash
# Regenerates the key and certificate fixtures of certwatch-core and the CLI tests, and the
# expected `3 1 1` hashes computed by the independent openssl oracle of REFERENCE §1:
#   openssl x509 -in cert.pem -pubkey -noout | openssl pkey -pubin -outform der | sha256sum
# Run from anywhere: bash crates/certwatch-core/tests/data/gen.sh (needs openssl >= 3).
# The fixtures are test data only: the private keys here protect nothing.
set -euo pipefail
cd "$(dirname "$0")"
rm -f ./*.pem ./*.der ./*.sha256 ./*.srl

# A fixture CA that issues every leaf, so that chain.pem is a real two-certificate chain.
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ca.key.pem 2>/dev/null
openssl req -x509 -new -key ca.key.pem -subj "/CN=certwatch fixture CA" -days 36500 \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign \
  -out ca.cert.pem

for kind in rsa p256 p384 ed25519; do
  case "$kind" in
    rsa) openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$kind.pkcs8.pem" 2>/dev/null ;;
    p256) openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$kind.pkcs8.pem" ;;
    p384) openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out "$kind.pkcs8.pem" ;;
    ed25519) openssl genpkey -algorithm ED25519 -out "$kind.pkcs8.pem" ;;
  esac
  # `openssl pkey -outform DER` writes the traditional format for RSA and EC: force PKCS#8.
  openssl pkcs8 -topk8 -nocrypt -in "$kind.pkcs8.pem" -outform DER -out "$kind.pkcs8.der"
  openssl pkey -in "$kind.pkcs8.pem" -pubout -out "$kind.spki.pem"
  openssl pkey -in "$kind.pkcs8.pem" -pubout -outform DER -out "$kind.spki.der"
  case "$kind" in
    rsa)
      openssl rsa -in "$kind.pkcs8.pem" -traditional -out "$kind.pkcs1.pem" 2>/dev/null
      openssl rsa -in "$kind.pkcs8.pem" -traditional -outform DER -out "$kind.pkcs1.der" 2>/dev/null
      openssl rsa -in "$kind.pkcs8.pem" -RSAPublicKey_out -out "$kind.pkcs1pub.pem" 2>/dev/null
      ;;
    p256|p384)
      openssl ec -in "$kind.pkcs8.pem" -out "$kind.sec1.pem" 2>/dev/null
      openssl ec -in "$kind.pkcs8.pem" -outform DER -out "$kind.sec1.der" 2>/dev/null
      ;;
  esac
  openssl req -new -key "$kind.pkcs8.pem" -subj "/CN=xmpp.example.net" -out "$kind.csr.pem"
  openssl x509 -req -in "$kind.csr.pem" -CA ca.cert.pem -CAkey ca.key.pem -CAcreateserial \
    -days 36500 -extfile <(printf 'subjectAltName=DNS:xmpp.example.net,DNS:example.org\nbasicConstraints=CA:FALSE\n') \
    -out "$kind.cert.pem" 2>/dev/null
  rm -f "$kind.csr.pem"
  openssl x509 -in "$kind.cert.pem" -outform DER -out "$kind.cert.der"
  cat "$kind.cert.pem" ca.cert.pem > "$kind.chain.pem"
  # The oracle of REFERENCE §1.
  openssl x509 -in "$kind.cert.pem" -pubkey -noout | openssl pkey -pubin -outform der \
    | sha256sum | cut -d' ' -f1 > "$kind.sha256"
  # Association data for selector 0 (full certificate), SHA-256 and SHA-512.
  openssl x509 -in "$kind.cert.pem" -outform DER | sha256sum | cut -d' ' -f1 > "$kind.cert.sha256"
  openssl x509 -in "$kind.cert.pem" -outform DER | sha512sum | cut -d' ' -f1 > "$kind.cert.sha512"
  openssl x509 -in "$kind.cert.pem" -pubkey -noout | openssl pkey -pubin -outform der \
    | sha512sum | cut -d' ' -f1 > "$kind.spki.sha512"
done
rm -f ca.cert.srl ./*.srl

# An encrypted private key: must be refused with a clear message.
openssl pkey -in p256.pkcs8.pem -aes-128-cbc -passout pass:fixture -out p256.encrypted.pem
