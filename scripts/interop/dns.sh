# The dns part of the interop environment (under construction).
# shellcheck shell=bash
dns_packages() { :; }
dns_up() { echo '{}' >"$CW_DIR/describe/dns.json"; }
dns_down() { cw_stop_all dns; }
